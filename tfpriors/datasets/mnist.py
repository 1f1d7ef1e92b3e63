"""MNIST from local gzipped IDX files, with the fixed held-out binarization of the pythae benchmark.

Split (same as the peer benchmark script `pythae_vamp.py` without `--test-dir`): of the 60,000
training images the first 60,000 - V are the training split and the last V = 10,000 the held-out
split. The held-out images are binarized ONCE with
`numpy.random.RandomState(0).binomial(1, x_uint8 / 255.0)` (float64 probabilities), and
`sha256(bits.tobytes())` of the C-contiguous uint8 array identifies the exact bits, so two
libraries can check that they evaluate on the same data.
"""

import hashlib
import os

import numpy as np

from tfpriors._validation import check_choice, check_non_negative_int
from tfpriors.datasets.idx import read_idx

__all__ = ["load_mnist", "mnist_heldout_binarized", "fixed_binarize", "binarized_sha256",
           "resolve_mnist_dir", "MNIST_FILES", "MNIST_DIR_ENV"]

MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
MNIST_DIR_ENV = "TFPRIORS_MNIST_DIR"


def resolve_mnist_dir(path=None):
    """The directory holding the MNIST IDX files: `path`, else the $TFPRIORS_MNIST_DIR variable.

    Raises:
      ValueError: if neither is given.
      FileNotFoundError: if the directory does not exist.
    """
    if path is None:
        path = os.environ.get(MNIST_DIR_ENV)
        if not path:
            raise ValueError("Expected `path` (a directory with train-images-idx3-ubyte.gz) or the "
                             f"environment variable {MNIST_DIR_ENV}. Received path=None and no "
                             "environment variable")
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise FileNotFoundError(f"Expected a directory with MNIST's gzipped IDX files "
                                f"(train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz). "
                                f"Received: {path!r} (no such directory)")
    return path


def _read_pair(path, images_file, labels_file):
    """Images uint8 [N, H, W, 1] and labels uint8 [N] from two IDX files, sizes checked."""
    images = read_idx(os.path.join(path, images_file), np.uint8, expected_ndim=3)
    labels = read_idx(os.path.join(path, labels_file), np.uint8, expected_ndim=1)
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"Expected as many labels as images in {path}. Received "
                         f"{images.shape[0]} images and {labels.shape[0]} labels")
    return images[..., None], labels


def load_mnist(path=None, validation_size=10000, dtype="float32", include_test=False):
    """Loads MNIST from gzipped IDX files, holding out the last `validation_size` training images.

    Args:
      path: directory with `train-images-idx3-ubyte.gz` and `train-labels-idx1-ubyte.gz`
        (and the `t10k-*` files if `include_test`); None reads $TFPRIORS_MNIST_DIR.
      validation_size: V, the number of trailing training images held out (10,000 as in the
        pythae benchmark's default); 0 keeps all of them for training.
      dtype: "float32" for intensities x / 255 in [0, 1], "uint8" for the raw 0..255 values.
      include_test: also return the official 10,000 test images (`t10k-*`).

    Returns:
      (train_images [N - V, 28, 28, 1], train_labels [N - V], val_images [V, 28, 28, 1],
      val_labels [V]) and, if `include_test`, (test_images, test_labels) appended. Labels are
      int64.

    Raises:
      FileNotFoundError: if the directory or a file is missing.
      ValueError: on a corrupt file, or if `validation_size` exceeds the number of images.
    """
    validation_size = check_non_negative_int("validation_size", validation_size)
    check_choice("dtype", dtype, ("float32", "uint8"))
    path = resolve_mnist_dir(path)
    images, labels = _read_pair(path, MNIST_FILES["train_images"], MNIST_FILES["train_labels"])
    n = images.shape[0]
    if validation_size > n:
        raise ValueError(f"Expected `validation_size` <= {n} (the number of training images). "
                         f"Received: validation_size={validation_size}")
    parts = [images[:n - validation_size], labels[:n - validation_size],
             images[n - validation_size:], labels[n - validation_size:]]
    if include_test:
        parts += list(_read_pair(path, MNIST_FILES["test_images"], MNIST_FILES["test_labels"]))
    out = []
    for i, part in enumerate(parts):
        if i % 2:                                  # labels
            out.append(part.astype(np.int64))
        elif dtype == "float32":
            out.append(part.astype(np.float32) / np.float32(255.0))
        else:
            out.append(np.ascontiguousarray(part))
    return tuple(out)


def fixed_binarize(x, seed=0):
    """Binarizes once: bit ~ Bernoulli(p) drawn with `numpy.random.RandomState(seed).binomial`.

    Bit-identical to `fixed_binarize` of the pythae benchmark script for uint8 input, because
    the probabilities are formed the same way (float64 x / 255) and RandomState draws in C order
    whatever the array's shape.

    Args:
      x: uint8 intensities 0..255 (p = x / 255 in float64) or floats in [0, 1] (p = x).
      seed: RandomState seed (0 for the benchmark's held-out set).

    Returns:
      uint8 array of x's shape with values in {0, 1}.

    Raises:
      ValueError: if float input is outside [0, 1] or not finite.
    """
    x = np.asarray(x)
    if x.dtype == np.uint8:
        p = x.astype(np.float64) / 255.0
    else:
        p = x.astype(np.float64)
        if not np.all(np.isfinite(p)) or p.size and (p.min() < 0.0 or p.max() > 1.0):
            raise ValueError("Expected probabilities in [0, 1]. Received values in "
                             f"[{np.nanmin(p)}, {np.nanmax(p)}] (NaN or inf present: "
                             f"{not np.all(np.isfinite(p))})")
    return np.random.RandomState(seed).binomial(1, p).astype(np.uint8)


def binarized_sha256(bits):
    """SHA-256 hex digest of a uint8 bit array's C-order bytes (as the pythae script hashes).

    The bytes of [N, 28, 28, 1] and of the script's [N, 784] arrays are the same.

    Raises:
      ValueError: if `bits` is not uint8.
    """
    bits = np.asarray(bits)
    if bits.dtype != np.uint8:
        raise ValueError(f"Expected a uint8 array. Received dtype {bits.dtype}")
    return hashlib.sha256(np.ascontiguousarray(bits).tobytes()).hexdigest()


def mnist_heldout_binarized(path=None, validation_size=10000, seed=0, data_dir=None):
    """The fixed-binarized held-out set of the pythae benchmark and its SHA-256.

    Args:
      path: MNIST IDX directory (see `load_mnist`); with `data_dir`, the manual_dir used to
        prepare the TFDS copy if it is not prepared yet.
      validation_size: V, trailing training images held out (10,000).
      seed: RandomState seed of the one-off binarization (0).
      data_dir: optional TFDS data_dir with a prepared `mnist_idx` builder; read from there.

    Returns:
      bits: uint8 [V, 28, 28, 1] in {0, 1}.
      labels: int64 [V].
      sha256: hex digest of `bits` (equal to the script's `test_binarized_sha256`).

    Raises:
      FileNotFoundError, ValueError: as `load_mnist` / `load_mnist_tfds`.
    """
    if data_dir is not None:
        from tfpriors.datasets.tfds_builders import load_mnist_tfds
        _, _, images, labels = load_mnist_tfds(data_dir, manual_dir=path,
                                               validation_size=validation_size, dtype="uint8")
    else:
        _, _, images, labels = load_mnist(path, validation_size, dtype="uint8")
    bits = fixed_binarize(images, seed)
    return bits, labels, binarized_sha256(bits)
