"""tf.data input pipelines over in-memory images, with dynamic or static binarization.

Binarization (as used for MNIST in the VampPrior and VHP papers):
  dynamic: x_bin ~ Bernoulli(x), redrawn every epoch (every time the data set is iterated),
    a data augmentation that curbs overfitting (Salakhutdinov & Murray 2008 binarized once;
    Burda et al. 2016 and Tomczak & Welling 2018 resample).
  static: x_bin ~ Bernoulli(x) drawn once with a fixed seed (`fixed_binarize`, numpy
    RandomState), identical in every epoch.

Randomness is reproducible: shuffling uses `seed`; dynamic binarization draws
`tf.random.stateless_uniform` with the per-batch key (seed, k_b), where k_b comes from
`tf.data.Dataset.random(seed, rerandomize_each_iteration=True)`, a stream that is the same for
every fresh data set built with that seed and different in each iteration of one data set.

tf.data autotuning is switched off (`pipeline_options`). With it on, TF 2.21 starts a model
thread per iterator that sleeps 10 ms, 20 ms, 40 ms, ... between optimisation rounds. Deleting
the iterator (Keras does so after every `fit`, and at the end of every epoch without
`steps_per_epoch`) can then wait until that thread's next wake-up, 10 * (2^n - 1) ms after the
iterator was made (inferred from the timings, not read in TF's source). Measured here: `fit`
returned at 20.48 s after 10.6 s of training in 2 of 3 runs (`benchmarks/README.md`, "fit return delay").
These pipelines are in memory, so fixed parallelism (one map call per core, two prefetched
batches) loses nothing.
"""

import os

import numpy as np
import tensorflow as tf

from tfpriors._validation import check_finite_array, check_non_negative_int, check_positive_int
from tfpriors.datasets.mnist import fixed_binarize

__all__ = ["make_dataset", "check_images", "pipeline_options", "BINARIZATIONS"]

BINARIZATIONS = (None, "dynamic", "static")
PREFETCH_BATCHES = 2


def pipeline_options():
    """tf.data options of every tfpriors pipeline: autotuning off (see the module docstring),
    so iterators are deleted at once instead of waiting for the autotune thread."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return options


def _map_parallelism():
    """Parallel calls of the binarization map: one per core TF may use (fixed, not AUTOTUNE)."""
    return max(1, tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count() or 1)


def check_images(name, images):
    """Checks that `images` is a finite numeric array of shape [N, H, W, C].

    Args:
      name: argument name used in error messages.
      images: array-like.

    Returns:
      the images as a numpy array.

    Raises:
      ValueError: on a rank other than 4 (message shows expected [N, H, W, C] and the received
        shape), a non-numeric dtype, or NaN/infinite values.
    """
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"Expected `{name}` of shape [N, H, W, C] (rank 4). Received shape "
                         f"{list(images.shape)} (rank {images.ndim})")
    if images.dtype.kind not in "biuf":
        raise ValueError(f"Expected `{name}` to be a numeric array. Received dtype {images.dtype}")
    return check_finite_array(name, images)


def _binarize_batch(seed, with_labels=False):
    """Map function (x [B, H, W, C], key [] int64) -> Bernoulli(x) sample [B, H, W, C]; with
    labels ((x, y), key) -> (Bernoulli(x) sample, y)."""
    def binarize(x, key):
        u = tf.random.stateless_uniform(tf.shape(x), seed=tf.stack([seed, key]),
                                        dtype=tf.float32)           # [B, H, W, C]
        return tf.cast(u < x, tf.float32)

    def binarize_images(xy, key):
        return binarize(xy[0], key), xy[1]
    return binarize_images if with_labels else binarize


def make_dataset(images, batch_size, binarization=None, shuffle=True, seed=0, labels=None,
                 drop_remainder=False):
    """Batched `tf.data.Dataset` over in-memory images, optionally binarized.

    Pipeline: from_tensor_slices -> cache -> shuffle (reshuffled every epoch) -> batch ->
    [dynamic: Bernoulli resampling per batch] -> prefetch(2). The cache comes before the random
    map, so only the binarization is recomputed each epoch. Autotuning is off
    (`pipeline_options`).

    Args:
      images: [N, H, W, C] float array; with binarization the values are Bernoulli
        probabilities and must lie in [0, 1]. uint8 input is divided by 255.
      batch_size: B >= 1.
      binarization: None (use the values as they are), "dynamic" (resample every epoch) or
        "static" (binarize once with `fixed_binarize(images, seed)`).
      shuffle: shuffle the examples, differently in every epoch (reproducible for a seed).
      seed: int seed of shuffling and binarization.
      labels: optional [N, ...] array; batches are then (x, y) tuples, else x.
      drop_remainder: drop the last incomplete batch.

    Returns:
      tf.data.Dataset yielding float32 x [B, H, W, C] (or (x, y)).

    Raises:
      ValueError: on a wrong rank, non-finite values, values outside [0, 1] when binarizing,
        a non-positive `batch_size`, an unknown `binarization`, or labels of another length.
    """
    batch_size = check_positive_int("batch_size", batch_size)
    if binarization not in BINARIZATIONS:       # check_choice sorts its choices, None included
        raise ValueError(f"Expected `binarization` to be one of {list(BINARIZATIONS)}. "
                         f"Received: binarization={binarization!r}")
    seed = check_non_negative_int("seed", seed)
    images = check_images("images", images)
    if images.dtype == np.uint8:
        images = images.astype(np.float32) / np.float32(255.0)
    images = images.astype(np.float32, copy=False)
    if binarization is not None and images.size and (images.min() < 0.0 or images.max() > 1.0):
        raise ValueError(f"Expected `images` in [0, 1] for binarization={binarization!r}. "
                         f"Received values in [{images.min()}, {images.max()}]")
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape[:1] != images.shape[:1]:
            raise ValueError(f"Expected `labels` with {images.shape[0]} rows (one per image). "
                             f"Received shape {list(labels.shape)}")
    if binarization == "static":
        images = fixed_binarize(images, seed).astype(np.float32)

    ds = tf.data.Dataset.from_tensor_slices(images if labels is None else (images, labels))
    ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(max(int(images.shape[0]), 1), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    if binarization == "dynamic":
        keys = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        binarize = _binarize_batch(tf.constant(seed, tf.int64), with_labels=labels is not None)
        ds = tf.data.Dataset.zip(ds, keys).map(binarize, num_parallel_calls=_map_parallelism())
    return ds.prefetch(PREFETCH_BATCHES).with_options(pipeline_options())
