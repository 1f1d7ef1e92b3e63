"""Data sets and tf.data pipelines: pendulum, MNIST (IDX), sklearn digits, binarization.

Every loader returns numpy arrays of float32 images [N, H, W, C] in [0, 1]; `make_dataset` turns
them into batched `tf.data` pipelines with optional dynamic or static binarization, and
`load_dataset(name)` bundles a train/held-out split with the recommended likelihood.

The TFDS builders (`Pendulum`, `MnistIdx`, `load_pendulum_tfds`, `load_mnist_tfds`) live in
`tfpriors.datasets.tfds_builders`; they are re-exported lazily so that importing this package
does not import tensorflow_datasets.
"""

from tfpriors.datasets.digits import load_digits_images
from tfpriors.datasets.idx import read_idx, write_idx
from tfpriors.datasets.mnist import (binarized_sha256, fixed_binarize, load_mnist,
                                     mnist_heldout_binarized)
from tfpriors.datasets.pendulum import load_pendulum, make_pendulum, render_pendulum
from tfpriors.datasets.pipeline import check_images, make_dataset
from tfpriors.datasets.registry import DATASETS, DatasetSplits, load_dataset

_TFDS_NAMES = ("Pendulum", "PendulumConfig", "MnistIdx", "MnistIdxConfig", "load_pendulum_tfds",
               "load_mnist_tfds")

__all__ = ["render_pendulum", "make_pendulum", "load_pendulum", "read_idx", "write_idx",
           "load_mnist", "fixed_binarize", "binarized_sha256", "mnist_heldout_binarized",
           "make_dataset", "check_images", "load_digits_images", "load_dataset", "DatasetSplits",
           "DATASETS", *_TFDS_NAMES]


def __getattr__(name):
    if name in _TFDS_NAMES:
        from tfpriors.datasets import tfds_builders
        return getattr(tfds_builders, name)
    raise AttributeError(f"module 'tfpriors.datasets' has no attribute {name!r}")
