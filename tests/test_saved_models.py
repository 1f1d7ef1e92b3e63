"""The shipped samplers in saved_models/ load, serve every signature and still measure what
their metrics.json records."""

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tfpriors.datasets import load_dataset, render_pendulum
from tfpriors.export import load_sampler
from tfpriors.probes import pendulum_angle_error

SAVED = Path(__file__).resolve().parents[1] / "saved_models"


def _load(name):
    directory = SAVED / name
    config = json.loads((directory / "config.json").read_text())
    metrics = json.loads((directory / "metrics.json").read_text())
    return load_sampler(directory), config, metrics


@pytest.fixture(scope="module")
def pendulum():
    return _load("pendulum_vhp_rewo")


@pytest.fixture(scope="module")
def digits():
    return _load("digits_vampprior")


def test_pendulum_sampler_signatures_and_shapes(pendulum):
    sampler, config, _ = pendulum
    assert {"serving_default", "sample", "encode", "decode", "log_likelihood"} <= set(sampler.signatures)
    assert "sample_component" not in sampler.signatures   # VHP is not a finite mixture
    out = sampler.signatures["sample"](num_samples=tf.constant(8), seed=tf.constant([1, 2]))
    assert out["images"].shape == (8, 16, 16, 1) and out["z"].shape == (8, 2)
    again = sampler.signatures["sample"](num_samples=tf.constant(8), seed=tf.constant([1, 2]))
    np.testing.assert_array_equal(out["images"].numpy(), again["images"].numpy())
    assert config["flags"]["prior"] == "vhp" and config["flags"]["beta"] == "rewo"


def test_pendulum_sampler_still_encodes_the_angle_as_recorded(pendulum):
    # The OLS probe on fresh renders (same blur as training) lands near the recorded error.
    sampler, config, metrics = pendulum
    angles = np.random.default_rng(5).uniform(0, 2 * np.pi, 1200)
    images = render_pendulum(angles, blur=config["blur"])
    means = sampler.signatures["encode"](images=tf.constant(images))["loc"].numpy()
    probe = pendulum_angle_error(means[:600], angles[:600], eval_means=means[600:],
                                 eval_angles=angles[600:])
    assert probe["error_rad"] < 2 * metrics["ols_abs_error_rad"] + 0.02
    assert metrics["ols_abs_error_rad"] <= 0.054


def test_digits_sampler_reproduces_its_recorded_log_likelihood(digits):
    sampler, config, metrics = digits
    val = load_dataset("digits", seed=config["flags"]["seed"]).val_images
    recorded = metrics["log_likelihood"]
    out = sampler.signatures["log_likelihood"](images=tf.constant(val, tf.float32),
                                               num_samples=tf.constant(recorded["num_samples"]),
                                               seed=tf.constant([recorded["seed"], 0]))
    assert out["log_likelihood"].shape == (len(val),)
    np.testing.assert_allclose(np.mean(out["log_likelihood"].numpy()), recorded["mean"], atol=0.05)


def test_digits_sampler_component_draws_and_bad_requests(digits):
    sampler, config, _ = digits
    k = config["flags"]["components"]
    out = sampler.signatures["sample_component"](component=tf.constant(k - 1),
                                                 num_samples=tf.constant(5), seed=tf.constant([3, 4]))
    assert out["images"].shape == (5, 8, 8, 1)
    with pytest.raises(tf.errors.InvalidArgumentError, match="component"):
        sampler.signatures["sample_component"](component=tf.constant(k), num_samples=tf.constant(5),
                                               seed=tf.constant([3, 4]))


MNIST_SAMPLERS = ["mnist_vampprior", "mnist_hvae_vampprior"]


@pytest.fixture(scope="module", params=MNIST_SAMPLERS)
def mnist_sampler(request):
    return request.param, _load(request.param)


def _check_fixture_log_likelihood(name, sampler, metrics):
    """The held-out images shipped with the sampler (no MNIST needed) and their labels, after
    checking the exported log_likelihood on each against the recorded one."""
    from tests.test_export_samplers import unpack_fixture
    images, labels = unpack_fixture(SAVED / name)
    fixture = metrics["fixture"]
    assert images.shape == (fixture["images"], 28, 28, 1)
    out = sampler.signatures["log_likelihood"](images=tf.constant(images),
                                               num_samples=tf.constant(fixture["num_samples"]),
                                               seed=tf.constant(fixture["seed"]))["log_likelihood"]
    np.testing.assert_allclose(out.numpy(), fixture["per_image"], atol=0.01)
    return images, labels


def test_mnist_sampler_reproduces_its_fixture_log_likelihood(mnist_sampler):
    name, (sampler, _, metrics) = mnist_sampler
    _check_fixture_log_likelihood(name, sampler, metrics)
    fixture = metrics["fixture"]
    # The fixture's images are typical: their mean is within 5 nats of the full held-out figure.
    assert abs(fixture["mean"] - metrics["test_log_likelihood"]) < 5.0


def test_mnist_sampler_draws_images_and_components(mnist_sampler):
    name, (sampler, config, metrics) = mnist_sampler
    assert {"sample", "encode", "decode", "log_likelihood", "sample_component"} <= set(sampler.signatures)
    out = sampler.signatures["sample"](num_samples=tf.constant(6), seed=tf.constant([1, 2]))
    images = out["images"].numpy()
    assert images.shape == (6, 28, 28, 1) and np.all((images >= 0) & (images <= 1))
    k = config["config"]["components"]
    part = sampler.signatures["sample_component"](component=tf.constant(k - 1),
                                                  num_samples=tf.constant(3), seed=tf.constant([3, 4]))
    assert part["images"].shape == (3, 28, 28, 1)
    assert metrics["prior"] == "vampprior" and metrics["final_samples"] == 5000
    assert metrics["heldout_images"] == 10000


# ------------------------------------------------------------------ samplers with a `cluster` signature
CLUSTER_SAMPLERS = ["mnist_cpvae", "mnist_ladder"]


@pytest.fixture(scope="module", params=CLUSTER_SAMPLERS)
def cluster_sampler(request):
    return request.param, _load(request.param)


def test_cluster_sampler_reproduces_its_fixture_log_likelihood_and_categories(cluster_sampler):
    name, (sampler, _, metrics) = cluster_sampler
    images, labels = _check_fixture_log_likelihood(name, sampler, metrics)
    fixture = metrics["fixture"]
    probabilities = sampler.signatures["cluster"](images=tf.constant(images))["probabilities"].numpy()
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-5)
    assert np.argmax(probabilities, -1).tolist() == fixture["clusters"]
    # the fixture's categories, mapped to digits as on the whole held-out set, are as accurate
    clustering = metrics["clustering"]
    mapping = {int(k): v for k, v in clustering["mapping"].items()}
    on_fixture = np.mean([mapping.get(k, -1) == y for k, y in zip(fixture["clusters"], labels)])
    assert abs(on_fixture - clustering["accuracy"]) < 0.15, (on_fixture, clustering["accuracy"])


def test_cluster_sampler_draws_every_category(cluster_sampler):
    name, (sampler, config, metrics) = cluster_sampler
    out = sampler.signatures["sample"](num_samples=tf.constant(6), seed=tf.constant([1, 2]))
    images = out["images"].numpy()
    assert images.shape == (6, 28, 28, 1) and np.all(np.isfinite(images))
    if "sample_component" in sampler.signatures:                  # the CP-VAE: c = k, z ~ p(z|c_k)
        k, d = config["components"], config["latent_dim"]          # the run's config.json
        for component in range(k):
            part = sampler.signatures["sample_component"](component=tf.constant(component),
                                                          num_samples=tf.constant(3), seed=tf.constant([3, 4]))
            assert part["images"].shape == (3, 28, 28, 1)
            np.testing.assert_array_equal(np.argmax(part["z"].numpy()[:, d:], -1), [component] * 3)
