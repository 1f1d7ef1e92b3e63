"""One entry point for the data sets of the experiments: `load_dataset(name, **kwargs)`.

| name     | images              | held-out split                          | likelihood |
|----------|---------------------|-----------------------------------------|------------|
| pendulum | 16x16 in [0, 1]     | next 1,500 angles of the stream         | gaussian   |
| mnist    | 28x28 in [0, 1]     | last 10,000 train images, fixed bits    | bernoulli  |
| digits   | 8x8 in [0, 1]       | 297 images of a seeded permutation      | bernoulli  |
"""

import dataclasses
from typing import Optional

import numpy as np

from tfpriors._validation import check_choice
from tfpriors.datasets.digits import load_digits_images
from tfpriors.datasets.mnist import binarized_sha256, fixed_binarize, load_mnist
from tfpriors.datasets.pendulum import PENDULUM_NUM_EXAMPLES, blur_images, load_pendulum

__all__ = ["DatasetSplits", "load_dataset", "DATASETS"]


@dataclasses.dataclass(frozen=True)
class DatasetSplits:
    """Train and held-out arrays of one data set plus how to model them.

    Attributes:
      name: registry name.
      train_images: float32 [N, H, W, C] in [0, 1].
      train_labels: [N] (angles for the pendulum, classes otherwise).
      val_images: float32 [V, H, W, C].
      val_labels: [V].
      image_shape: (H, W, C).
      likelihood: recommended p(x|z) family, "gaussian" or "bernoulli".
      binarization: recommended `make_dataset(..., binarization=)` for the training images
        (None: use them as they are).
      info: extras, e.g. `val_sha256` of MNIST's fixed held-out bits.
    """
    name: str
    train_images: np.ndarray
    train_labels: np.ndarray
    val_images: np.ndarray
    val_labels: np.ndarray
    image_shape: tuple
    likelihood: str
    binarization: Optional[str] = None
    info: dict = dataclasses.field(default_factory=dict)


def _pendulum(num_examples=PENDULUM_NUM_EXAMPLES, validation_size=1500, seed=0, data_dir=None,
              blur=0.0):
    if data_dir is not None:
        from tfpriors.datasets.tfds_builders import PendulumConfig, load_pendulum_tfds
        config = PendulumConfig(name=f"n{num_examples}_v{validation_size}_s{seed}",
                                num_train=num_examples, num_test=validation_size, seed=seed)
        if (num_examples, validation_size, seed) == (PENDULUM_NUM_EXAMPLES, 1500, 0):
            config = "default"
        arrays = load_pendulum_tfds(data_dir, config)
        arrays = (blur_images(arrays[0], blur), arrays[1], blur_images(arrays[2], blur), arrays[3])
    else:
        arrays = load_pendulum(num_examples, validation_size, seed, blur=blur)
    return DatasetSplits("pendulum", *arrays, image_shape=arrays[0].shape[1:],
                         likelihood="gaussian", binarization=None)


def _mnist(path=None, validation_size=10000, data_dir=None, binarize_validation=True,
           binarization="dynamic"):
    """Training intensities for dynamic binarization; held-out set fixed-binarized (seed 0)."""
    check_choice("binarization", binarization, ("dynamic", "static"))
    if data_dir is not None:
        from tfpriors.datasets.tfds_builders import load_mnist_tfds
        xtr, ytr, xva, yva = load_mnist_tfds(data_dir, path, validation_size, dtype="uint8")
    else:
        xtr, ytr, xva, yva = load_mnist(path, validation_size, dtype="uint8")
    info = {}
    if binarize_validation:
        bits = fixed_binarize(xva, seed=0)                       # [V, 28, 28, 1] uint8
        info["val_sha256"] = binarized_sha256(bits)
        val_images = bits.astype(np.float32)
    else:
        val_images = xva.astype(np.float32) / np.float32(255.0)
    train_images = xtr.astype(np.float32) / np.float32(255.0)
    return DatasetSplits("mnist", train_images, ytr, val_images, yva,
                         image_shape=train_images.shape[1:], likelihood="bernoulli",
                         binarization=binarization, info=info)


def _digits(validation_size=297, seed=0, likelihood="bernoulli"):
    check_choice("likelihood", likelihood, ("bernoulli", "gaussian"))
    arrays = load_digits_images(validation_size, seed)
    return DatasetSplits("digits", *arrays, image_shape=arrays[0].shape[1:],
                         likelihood=likelihood,
                         binarization="dynamic" if likelihood == "bernoulli" else None)


DATASETS = {"pendulum": _pendulum, "mnist": _mnist, "digits": _digits}


def load_dataset(name, **kwargs):
    """Loads a registered data set with its train/held-out split.

    Args:
      name: "pendulum", "mnist" or "digits".
      **kwargs: passed on:
        pendulum: num_examples=15000, validation_size=1500, seed=0, data_dir=None (TFDS),
          blur=0.0 (Gaussian blur std in pixels, `tfpriors.datasets.pendulum`).
        mnist: path=None (IDX directory, else $TFPRIORS_MNIST_DIR), validation_size=10000,
          data_dir=None (read through the `mnist_idx` TFDS builder), binarize_validation=True
          (held-out bits = numpy RandomState(0).binomial(1, x / 255), as the pythae benchmark),
          binarization="dynamic" (recommended training binarization).
        digits: validation_size=297, seed=0, likelihood="bernoulli" or "gaussian".

    Returns:
      DatasetSplits.

    Raises:
      ValueError: for an unknown name (message lists the known ones) or bad arguments.
      TypeError: for an unknown keyword argument.
    """
    check_choice("name", name, tuple(DATASETS))
    return DATASETS[name](**kwargs)
