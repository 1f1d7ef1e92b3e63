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
"""

import numpy as np
import tensorflow as tf

from tfpriors._validation import check_finite_array, check_non_negative_int, check_positive_int
from tfpriors.datasets.mnist import fixed_binarize

__all__ = ["make_dataset", "check_images", "BINARIZATIONS"]

BINARIZATIONS = (None, "dynamic", "static")


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


def _binarize_batch(seed):
    """Map function (x [B, H, W, C], key [] int64) -> Bernoulli(x) sample [B, H, W, C]."""
    def binarize(x, key):
        u = tf.random.stateless_uniform(tf.shape(x), seed=tf.stack([seed, key]),
                                        dtype=tf.float32)           # [B, H, W, C]
        return tf.cast(u < x, tf.float32)
    return binarize


def make_dataset(images, batch_size, binarization=None, shuffle=True, seed=0, labels=None,
                 drop_remainder=False):
    """Batched `tf.data.Dataset` over in-memory images, optionally binarized.

    Pipeline: from_tensor_slices -> cache -> shuffle (reshuffled every epoch) -> batch ->
    [dynamic: Bernoulli resampling per batch] -> prefetch. The cache comes before the random
    map, so only the binarization is recomputed each epoch.

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
        binarize = _binarize_batch(tf.constant(seed, tf.int64))
        if labels is None:
            ds = tf.data.Dataset.zip(ds, keys).map(binarize, num_parallel_calls=tf.data.AUTOTUNE)
        else:
            ds = tf.data.Dataset.zip(ds, keys).map(
                lambda xy, key: (binarize(xy[0], key), xy[1]),
                num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)
