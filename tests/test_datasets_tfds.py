"""Round trips through the offline TFDS builders into a temporary data_dir."""

import numpy as np
import pytest

tfds = pytest.importorskip("tensorflow_datasets")

from tfpriors.datasets.idx import write_idx  # noqa: E402
from tfpriors.datasets.mnist import load_mnist, mnist_heldout_binarized  # noqa: E402
from tfpriors.datasets.pendulum import load_pendulum  # noqa: E402
from tfpriors.datasets.registry import load_dataset  # noqa: E402
from tfpriors.datasets.tfds_builders import (MnistIdx, Pendulum, PendulumConfig,  # noqa: E402
                                             load_mnist_tfds, load_pendulum_tfds)

tfds.disable_progress_bar()


def _write_mnist(directory, n_train=12, n_test=5):
    rng = np.random.default_rng(1)
    write_idx(directory / "train-images-idx3-ubyte.gz",
              rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8))
    write_idx(directory / "train-labels-idx1-ubyte.gz",
              rng.integers(0, 10, n_train).astype(np.uint8))
    write_idx(directory / "t10k-images-idx3-ubyte.gz",
              rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8))
    write_idx(directory / "t10k-labels-idx1-ubyte.gz", rng.integers(0, 10, n_test).astype(np.uint8))


def test_pendulum_builder_round_trip(tmp_path):
    config = PendulumConfig(name="tiny", num_train=40, num_test=10, seed=3)
    arrays = load_pendulum_tfds(tmp_path, config)
    for a, b in zip(arrays, load_pendulum(40, 10, seed=3)):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)            # float64 angles survive bit-exactly
    builder = Pendulum(data_dir=str(tmp_path), config=config)
    assert builder.is_prepared()
    assert builder.info.splits["train"].num_examples == 40
    assert builder.info.splits["test"].num_examples == 10
    assert builder.info.supervised_keys == ("image", "angle")
    # tfds.load-style reading of the prepared data, as (image, angle) pairs.
    ds = builder.as_dataset(split="test", as_supervised=True, shuffle_files=False)
    images, angles = zip(*tfds.as_numpy(ds))
    assert np.stack(images).shape == (10, 16, 16, 1)
    np.testing.assert_allclose(np.sort(angles), np.sort(arrays[3]))


def test_tfds_load_by_registered_name(tmp_path):
    # Importing tfpriors.datasets.tfds_builders registers `pendulum`; tfds.load prepares it offline.
    ds = tfds.load("pendulum/small", data_dir=str(tmp_path), split="test", batch_size=-1,
                   download_and_prepare_kwargs={
                       "download_config": tfds.download.DownloadConfig(try_download_gcs=False)})
    test = tfds.as_numpy(ds)
    order = np.argsort(test["index"])
    _, _, val_x, val_a = load_pendulum(1000, 200, seed=0)
    np.testing.assert_array_equal(test["image"][order], val_x)
    np.testing.assert_array_equal(test["angle"][order], val_a)
    # A config without a test split.
    config = PendulumConfig(name="no_test", num_train=20, num_test=0, seed=0)
    train_x, _, empty_x, empty_a = load_pendulum_tfds(tmp_path, config)
    assert train_x.shape == (20, 16, 16, 1)
    assert empty_x.shape == (0, 16, 16, 1) and empty_a.shape == (0,)
    assert isinstance(tfds.builder("pendulum", config=config, data_dir=str(tmp_path)), Pendulum)


def test_mnist_idx_builder_matches_the_idx_loader(tmp_path):
    manual = tmp_path / "manual"
    manual.mkdir()
    _write_mnist(manual)
    data_dir = tmp_path / "tfds"
    with pytest.raises(FileNotFoundError, match="manual_dir"):
        load_mnist_tfds(data_dir, validation_size=4)
    via_tfds = load_mnist_tfds(data_dir, manual, validation_size=4, include_test=True)
    direct = load_mnist(manual, validation_size=4, include_test=True)
    assert len(via_tfds) == 6
    for a, b in zip(via_tfds, direct):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    # Prepared: reading again needs no manual_dir.
    raw = load_mnist_tfds(data_dir, validation_size=4, dtype="uint8")
    np.testing.assert_array_equal(raw[2], load_mnist(manual, 4, dtype="uint8")[2])
    builder = MnistIdx(data_dir=str(data_dir), config=MnistIdx.BUILDER_CONFIGS[0])
    assert not builder.is_prepared()       # the default config (V = 10,000) was not built
    # Fixed held-out bits are the same through either route.
    bits_tfds = mnist_heldout_binarized(manual, validation_size=4, data_dir=data_dir)
    bits_idx = mnist_heldout_binarized(manual, validation_size=4)
    np.testing.assert_array_equal(bits_tfds[0], bits_idx[0])
    assert bits_tfds[2] == bits_idx[2]
    via_registry = load_dataset("mnist", path=manual, validation_size=4, data_dir=data_dir)
    assert via_registry.info["val_sha256"] == bits_idx[2]
