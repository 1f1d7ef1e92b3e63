"""saved_models/export_samplers.py: a sampler with its held-out fixture, measured through the
exported signature, on a tiny MNIST-shaped model and synthetic IDX files."""

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import load_script, make_vae
from tests.test_benchmark_mnist_table1 import _fake_mnist
from tfpriors.export import load_sampler


def _load_script():
    return load_script("saved_models/export_samplers.py")


def unpack_fixture(directory):
    """The fixture's images, float32 [N, 28, 28, 1] (binarized, or intensities x / 255), and labels."""
    data = np.load(Path(directory) / "heldout_fixture.npz")
    shape = tuple(int(s) for s in data["shape"])
    if "bits" in data:
        return np.unpackbits(data["bits"])[:int(np.prod(shape))].reshape(shape).astype(np.float32), \
            data["labels"]
    return data["uint8"].reshape(shape).astype(np.float32) / 255.0, data["labels"]


@pytest.mark.slow
def test_a_fixture_is_stored_and_its_log_likelihood_recorded(tmp_path):
    exporter = _load_script()
    _fake_mnist(tmp_path)
    model = make_vae("vampprior", shape=(28, 28, 1))
    model.save(tmp_path / "m.keras")
    (tmp_path / "c.json").write_text(json.dumps({"command": "test"}))
    (tmp_path / "r.json").write_text(json.dumps({"test_log_likelihood": -1.0}))
    assert exporter.main(["--name", "tiny", "--model", str(tmp_path / "m.keras"), "--config",
                          str(tmp_path / "c.json"), "--metrics", str(tmp_path / "r.json"),
                          "--out-dir", str(tmp_path / "out"), "--fixture-images", "6",
                          "--fixture-samples", "20", "--data-dir", str(tmp_path)]) == 0
    target = tmp_path / "out" / "tiny"
    metrics = json.loads((target / "metrics.json").read_text())
    assert metrics["test_log_likelihood"] == -1.0 and metrics["fixture"]["images"] == 6
    images, labels = unpack_fixture(target)
    assert images.shape == (6, 28, 28, 1) and set(np.unique(images)) <= {0.0, 1.0}
    assert labels.shape == (6,)
    sampler = load_sampler(target)
    again = sampler.signatures["log_likelihood"](images=tf.constant(images), num_samples=tf.constant(20),
                                                 seed=tf.constant([0, 0]))["log_likelihood"]
    np.testing.assert_allclose(again.numpy().mean(), metrics["fixture"]["mean"], atol=1e-4)


@pytest.mark.slow
def test_a_real_valued_fixture_for_a_laplace_model(tmp_path):
    from tfpriors.likelihoods import LaplaceLikelihood
    exporter = _load_script()
    _fake_mnist(tmp_path)
    model = make_vae("standard_normal", shape=(28, 28, 1), likelihood=LaplaceLikelihood())
    model.save(tmp_path / "m.keras")
    (tmp_path / "c.json").write_text("{}")
    assert exporter.main(["--name", "real", "--model", str(tmp_path / "m.keras"), "--config",
                          str(tmp_path / "c.json"), "--metrics", str(tmp_path / "c.json"),
                          "--out-dir", str(tmp_path / "out"), "--fixture-images", "4",
                          "--fixture-values", "real", "--fixture-samples", "10",
                          "--data-dir", str(tmp_path)]) == 0
    images, _ = unpack_fixture(tmp_path / "out" / "real")
    metrics = json.loads((tmp_path / "out" / "real" / "metrics.json").read_text())
    assert metrics["fixture"]["values"] == "real" and images.shape == (4, 28, 28, 1)
    assert len(np.unique(images)) > 2 and images.max() <= 1.0


@pytest.mark.slow
def test_a_cluster_model_records_each_fixture_images_category(tmp_path):
    import keras
    from tfpriors.likelihoods import BernoulliLikelihood
    from tfpriors.priors import MixtureOfGaussiansPrior
    from trainers.cpvae import build_cpvae
    exporter = _load_script()
    _fake_mnist(tmp_path)
    keras.utils.set_random_seed(0)
    model = build_cpvae((28, 28, 1), MixtureOfGaussiansPrior(2, num_components=4), BernoulliLikelihood(),
                        hidden_units=(8,))
    model.build()
    model.save(tmp_path / "m.keras")
    (tmp_path / "c.json").write_text("{}")
    assert exporter.main(["--name", "cp", "--model", str(tmp_path / "m.keras"), "--config",
                          str(tmp_path / "c.json"), "--metrics", str(tmp_path / "c.json"),
                          "--out-dir", str(tmp_path / "out"), "--fixture-images", "6",
                          "--fixture-samples", "5", "--data-dir", str(tmp_path)]) == 0
    images, _ = unpack_fixture(tmp_path / "out" / "cp")
    metrics = json.loads((tmp_path / "out" / "cp" / "metrics.json").read_text())
    expected = np.argmax(model.cluster(tf.constant(images)).numpy(), axis=-1)
    assert metrics["fixture"]["clusters"] == expected.tolist()


def test_fixture_flags_are_checked(tmp_path):
    exporter = _load_script()
    common = ["--name", "n", "--model", "m", "--config", "c", "--metrics", "r"]
    with pytest.raises(SystemExit):
        exporter.parse_args(common + ["--fixture-images", "5"])
    with pytest.raises(SystemExit):
        exporter.parse_args(common + ["--fixture-images", "-1", "--data-dir", str(tmp_path)])
