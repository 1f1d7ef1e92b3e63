"""Tests for IDX reading and the MNIST loader on tiny synthetic IDX files (never the real data)."""

import gzip
import hashlib

import numpy as np
import pytest

from tfpriors.datasets.idx import read_idx, write_idx
from tfpriors.datasets.mnist import (MNIST_DIR_ENV, binarized_sha256, fixed_binarize, load_mnist,
                                     mnist_heldout_binarized)


def _write_mnist(directory, n_train=12, n_test=5, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": rng.integers(0, 10, n_train).astype(np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, n_test).astype(np.uint8),
    }
    for name, array in arrays.items():
        write_idx(directory / name, array)
    return arrays


# The pythae benchmark's reference code (pythae_vamp.py), restated for a bit-exact comparison.
def _reference_read_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = int.from_bytes(raw[0:4], "big") & 0xFF
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _reference_fixed_binarize(x_uint8, seed=0):
    rs = np.random.RandomState(seed)
    return rs.binomial(1, x_uint8.astype(np.float64) / 255.0).astype(np.uint8)


def test_read_idx_parses_a_hand_built_file(tmp_path):
    data = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    raw = bytes([0, 0, 0x08, 3]) + (2).to_bytes(4, "big") + (3).to_bytes(4, "big") \
        + (4).to_bytes(4, "big") + data.tobytes()
    path = tmp_path / "x-idx3-ubyte.gz"
    with gzip.open(path, "wb") as f:
        f.write(raw)
    out = read_idx(path)
    assert out.dtype == np.uint8 and out.shape == (2, 3, 4)
    np.testing.assert_array_equal(out, data)
    # Big-endian int32 payload.
    ints = np.array([1, -2, 70000], dtype=">i4")
    with gzip.open(tmp_path / "i.gz", "wb") as f:
        f.write(bytes([0, 0, 0x0C, 1]) + (3).to_bytes(4, "big") + ints.tobytes())
    np.testing.assert_array_equal(read_idx(tmp_path / "i.gz", expected_dtype=None), [1, -2, 70000])


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_write_then_read_round_trip(tmp_path, dtype):
    array = (np.arange(30) - 7).reshape(5, 6).astype(dtype)
    write_idx(tmp_path / "a.gz", array)
    out = read_idx(tmp_path / "a.gz", expected_dtype=dtype, expected_ndim=2)
    assert out.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(out, array)


def test_missing_file_names_the_path(tmp_path):
    path = tmp_path / "nope" / "train-images-idx3-ubyte.gz"
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte.gz") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_truncated_gzip_raises_value_error(tmp_path):
    write_idx(tmp_path / "a.gz", np.zeros((50, 28, 28), np.uint8) + 3)
    raw = (tmp_path / "a.gz").read_bytes()
    (tmp_path / "cut.gz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="expected a complete gzip"):
        read_idx(tmp_path / "cut.gz")
    (tmp_path / "plain.gz").write_bytes(b"not gzip at all, just text")
    with pytest.raises(ValueError, match="gzip"):
        read_idx(tmp_path / "plain.gz")


def test_truncated_payload_says_expected_and_received_bytes(tmp_path):
    with gzip.open(tmp_path / "short.gz", "wb") as f:
        f.write(bytes([0, 0, 0x08, 1]) + (10).to_bytes(4, "big") + bytes(7))
    with pytest.raises(ValueError, match=r"expected 18 bytes .* Received 15 bytes"):
        read_idx(tmp_path / "short.gz")
    with gzip.open(tmp_path / "header.gz", "wb") as f:
        f.write(bytes([0, 0, 0x08, 3]) + (10).to_bytes(4, "big"))
    with pytest.raises(ValueError, match="header"):
        read_idx(tmp_path / "header.gz")


def test_wrong_magic_dtype_and_rank(tmp_path):
    with gzip.open(tmp_path / "magic.gz", "wb") as f:
        f.write(bytes([0x1F, 0x8B, 0x08, 1]) + (1).to_bytes(4, "big") + bytes(1))
    with pytest.raises(ValueError, match=r"magic.*Received magic 0x1f8b0801"):
        read_idx(tmp_path / "magic.gz")
    with gzip.open(tmp_path / "code.gz", "wb") as f:
        f.write(bytes([0, 0, 0x07, 1]) + (1).to_bytes(4, "big") + bytes(1))
    with pytest.raises(ValueError, match="type code"):
        read_idx(tmp_path / "code.gz")
    write_idx(tmp_path / "f.gz", np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError, match=r"expected IDX data of type uint8.*float32"):
        read_idx(tmp_path / "f.gz")
    with pytest.raises(ValueError, match=r"rank 3.*Received rank 2"):
        read_idx(tmp_path / "f.gz", expected_dtype=np.float32, expected_ndim=3)
    with pytest.raises(ValueError, match="dtype"):
        write_idx(tmp_path / "b.gz", np.zeros(3, np.uint64))


def test_load_mnist_split_matches_the_reference_split(tmp_path):
    arrays = _write_mnist(tmp_path)
    xtr, ytr, xva, yva = load_mnist(tmp_path, validation_size=4)
    images = arrays["train-images-idx3-ubyte.gz"]
    labels = arrays["train-labels-idx1-ubyte.gz"]
    assert xtr.shape == (8, 28, 28, 1) and xva.shape == (4, 28, 28, 1)
    assert xtr.dtype == np.float32 and ytr.dtype == np.int64
    np.testing.assert_array_equal(xtr[..., 0], images[:8].astype(np.float32) / 255)
    np.testing.assert_array_equal(xva[..., 0], images[8:].astype(np.float32) / 255)
    np.testing.assert_array_equal(ytr, labels[:8])
    np.testing.assert_array_equal(yva, labels[8:])
    raw = load_mnist(tmp_path, validation_size=4, dtype="uint8", include_test=True)
    assert len(raw) == 6 and raw[0].dtype == np.uint8
    np.testing.assert_array_equal(raw[2][..., 0], images[8:])
    np.testing.assert_array_equal(raw[4][..., 0], arrays["t10k-images-idx3-ubyte.gz"])
    np.testing.assert_array_equal(raw[5], arrays["t10k-labels-idx1-ubyte.gz"])
    all_train = load_mnist(tmp_path, validation_size=0)
    assert all_train[0].shape == (12, 28, 28, 1) and all_train[2].shape == (0, 28, 28, 1)


def test_load_mnist_errors(tmp_path, monkeypatch):
    _write_mnist(tmp_path)
    with pytest.raises(ValueError, match=r"validation_size.* <= 12"):
        load_mnist(tmp_path, validation_size=13)
    with pytest.raises(ValueError, match="dtype"):
        load_mnist(tmp_path, dtype="float16")
    with pytest.raises(FileNotFoundError, match="MNIST.s gzipped IDX files.*no such directory"):
        load_mnist(tmp_path / "missing")
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(11, np.uint8))
    with pytest.raises(ValueError, match="12 images and 11 labels"):
        load_mnist(tmp_path, validation_size=2)
    monkeypatch.delenv(MNIST_DIR_ENV, raising=False)
    with pytest.raises(ValueError, match=MNIST_DIR_ENV):
        load_mnist(None)


def test_path_from_environment_variable(tmp_path, monkeypatch):
    _write_mnist(tmp_path)
    monkeypatch.setenv(MNIST_DIR_ENV, str(tmp_path))
    assert load_mnist(validation_size=3)[2].shape == (3, 28, 28, 1)


def test_fixed_binarize_matches_numpy_randomstate_exactly():
    x = np.random.default_rng(5).integers(0, 256, (7, 28, 28, 1), dtype=np.uint8)
    expected = np.random.RandomState(0).binomial(1, x.astype(np.float64) / 255.0).astype(np.uint8)
    bits = fixed_binarize(x, seed=0)
    assert bits.dtype == np.uint8 and set(np.unique(bits)) <= {0, 1}
    np.testing.assert_array_equal(bits, expected)
    # Shape does not matter: the pythae script binarizes [N, 784].
    np.testing.assert_array_equal(bits.reshape(7, 784),
                                  _reference_fixed_binarize(x.reshape(7, 784)))
    assert not np.array_equal(fixed_binarize(x, seed=1), bits)
    # Float probabilities are used as they are.
    p = np.full((3, 4, 4, 1), 0.25)
    np.testing.assert_array_equal(fixed_binarize(p, 3),
                                  np.random.RandomState(3).binomial(1, p).astype(np.uint8))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fixed_binarize(np.array([0.5, 1.5]))
    with pytest.raises(ValueError, match="uint8"):
        binarized_sha256(np.zeros(3, np.float32))


def test_heldout_binarized_equals_the_pythae_reference_pipeline(tmp_path):
    _write_mnist(tmp_path, n_train=15)
    # Reference: read, reshape to [N, 784], hold out the last V, binarize once, hash.
    xtr = _reference_read_idx(tmp_path / "train-images-idx3-ubyte.gz").reshape(-1, 784)
    ref_bits = _reference_fixed_binarize(xtr[15 - 6:], seed=0)
    ref_sha = hashlib.sha256(np.ascontiguousarray(ref_bits).tobytes()).hexdigest()
    bits, labels, sha = mnist_heldout_binarized(tmp_path, validation_size=6)
    assert bits.shape == (6, 28, 28, 1) and labels.shape == (6,)
    np.testing.assert_array_equal(bits.reshape(6, 784), ref_bits)
    assert sha == ref_sha == binarized_sha256(bits)
