"""Tests for the sklearn digits loader and the `load_dataset` registry."""

import numpy as np
import pytest
from sklearn.datasets import load_digits

from tfpriors.datasets.digits import load_digits_images
from tfpriors.datasets.idx import write_idx
from tfpriors.datasets.mnist import binarized_sha256, fixed_binarize
from tfpriors.datasets.pendulum import load_pendulum
from tfpriors.datasets.registry import DatasetSplits, load_dataset


def _write_mnist(directory, n_train=12):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8)
    write_idx(directory / "train-images-idx3-ubyte.gz", images)
    write_idx(directory / "train-labels-idx1-ubyte.gz",
              rng.integers(0, 10, n_train).astype(np.uint8))
    return images


def test_digits_shapes_range_and_deterministic_split():
    xtr, ytr, xva, yva = load_digits_images()
    assert xtr.shape == (1500, 8, 8, 1) and xva.shape == (297, 8, 8, 1)
    assert xtr.dtype == np.float32 and ytr.dtype == np.int64
    assert xtr.min() == 0.0 and xtr.max() == 1.0 and xva.max() <= 1.0
    assert set(np.unique(ytr)) == set(range(10))
    again = load_digits_images()
    for a, b in zip(again, (xtr, ytr, xva, yva)):
        np.testing.assert_array_equal(a, b)
    # The split is the documented permutation of the sklearn arrays, images / 16.
    bunch = load_digits()
    order = np.random.RandomState(0).permutation(1797)
    np.testing.assert_array_equal(xva[..., 0] * 16, bunch.images[order[1500:]])
    np.testing.assert_array_equal(ytr, bunch.target[order[:1500]])
    other = load_digits_images(validation_size=100, seed=1)
    assert other[0].shape == (1697, 8, 8, 1)
    assert not np.array_equal(other[3], yva[:100])
    with pytest.raises(ValueError, match="validation_size"):
        load_digits_images(validation_size=1798)


def test_registry_pendulum():
    data = load_dataset("pendulum", num_examples=120, validation_size=30, seed=4)
    assert isinstance(data, DatasetSplits)
    assert data.name == "pendulum" and data.likelihood == "gaussian" and data.binarization is None
    assert data.image_shape == (16, 16, 1)
    assert data.train_images.shape == (120, 16, 16, 1) and data.val_images.shape == (30, 16, 16, 1)
    for a, b in zip((data.train_images, data.train_labels, data.val_images, data.val_labels),
                    load_pendulum(120, 30, 4)):
        np.testing.assert_array_equal(a, b)
    assert np.intersect1d(data.train_labels, data.val_labels).size == 0


def test_registry_mnist_holds_out_fixed_bits(tmp_path):
    images = _write_mnist(tmp_path)
    data = load_dataset("mnist", path=tmp_path, validation_size=5)
    assert data.likelihood == "bernoulli" and data.binarization == "dynamic"
    assert data.image_shape == (28, 28, 1)
    np.testing.assert_array_equal(data.train_images[..., 0], images[:7].astype(np.float32) / 255)
    expected_bits = np.random.RandomState(0).binomial(
        1, images[7:].astype(np.float64) / 255.0).astype(np.uint8)
    np.testing.assert_array_equal(data.val_images[..., 0], expected_bits.astype(np.float32))
    assert data.info["val_sha256"] == binarized_sha256(expected_bits[..., None])
    raw = load_dataset("mnist", path=tmp_path, validation_size=5, binarize_validation=False)
    np.testing.assert_array_equal(raw.val_images[..., 0], images[7:].astype(np.float32) / 255)
    assert raw.info == {}
    np.testing.assert_array_equal(fixed_binarize(images[7:]), expected_bits)


def test_registry_digits_and_errors():
    data = load_dataset("digits", likelihood="gaussian")
    assert data.likelihood == "gaussian" and data.binarization is None
    assert data.image_shape == (8, 8, 1) and data.val_images.shape == (297, 8, 8, 1)
    assert load_dataset("digits").likelihood == "bernoulli"
    with pytest.raises(ValueError, match=r"Expected `name` to be one of .*'pendulum'.*cifar"):
        load_dataset("cifar")
    with pytest.raises(ValueError, match="likelihood"):
        load_dataset("digits", likelihood="laplace")
    with pytest.raises(TypeError):
        load_dataset("pendulum", colour=True)
    with pytest.raises(ValueError, match="num_examples"):
        load_dataset("pendulum", num_examples=-5)
