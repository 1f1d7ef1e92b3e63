"""Importance-sampling log-likelihood against the closed form of a linear-Gaussian VAE."""

import gc
import re
import weakref

import numpy as np
import pytest
import tensorflow as tf

from tests.test_evaluation_toy import exact_log_marginal, inexact_encoder, make_model, toy_images
from tfpriors.evaluation import log_likelihood
from tfpriors.evaluation._sampling import batch_noise, chunk_layout, example_noise


@pytest.fixture(scope="module")
def exact_model():
    return make_model()


@pytest.fixture(scope="module")
def inexact_model():
    return make_model(encoder=inexact_encoder())


def test_exact_posterior_proposal_gives_exact_value_for_any_sample_count(exact_model):
    """With q(z|x) = p(z|x) every weight equals p(x): the estimate is exact even for S = 3."""
    images = toy_images(3)
    result = log_likelihood(exact_model, images, num_samples=3, chunk_size=2, seed=1)
    np.testing.assert_allclose(result.per_example, exact_log_marginal(images), atol=1e-4)
    # all weights equal: the effective sample size is S
    np.testing.assert_allclose(result.details["log_effective_sample_size"], np.log(3), atol=1e-4)


def test_inexact_proposal_with_5000_samples_is_within_005_nats(inexact_model):
    images = toy_images(3)
    result = log_likelihood(inexact_model, images, num_samples=5000, chunk_size=1000, seed=0)
    exact = exact_log_marginal(images)
    np.testing.assert_allclose(result.per_example, exact, atol=0.05)
    assert result.mean == pytest.approx(exact.mean(), abs=0.05)
    assert result.info["num_samples"] == 5000 and result.info["units"] == "nats"
    # a wrong normalising constant (e.g. dropping log S or a 2*pi term) would be off by > 1 nat
    assert np.all(result.details["log_effective_sample_size"] < np.log(5000))


def test_chunked_equals_unchunked_and_batch_size_does_not_matter(inexact_model):
    """The noise of sample s of image n depends only on (seed, n, s)."""
    images = toy_images(5, seed=3)
    ref = log_likelihood(inexact_model, images, num_samples=60, chunk_size=60, batch_size=5, seed=4)
    for chunk_size, batch_size in ((7, 5), (1, 2), (64, 3), (25, 1)):
        got = log_likelihood(inexact_model, images, num_samples=60, chunk_size=chunk_size,
                             batch_size=batch_size, seed=4)
        np.testing.assert_allclose(got.per_example, ref.per_example, rtol=0, atol=1e-5)
    other_seed = log_likelihood(inexact_model, images, num_samples=60, chunk_size=60, batch_size=5,
                                seed=5)
    assert np.abs(other_seed.per_example - ref.per_example).max() > 1e-4
    # the images' results do not depend on which other images are evaluated with them
    alone = log_likelihood(inexact_model, images[:2], num_samples=60, chunk_size=60, seed=4)
    np.testing.assert_allclose(alone.per_example, ref.per_example[:2], atol=1e-5)


@pytest.mark.parametrize("latent_dim", [2, 5, 8])
def test_noise_is_addressed_by_example_and_sample_index(latent_dim):
    """eps_{n,s} is a fixed function of (seed, n, s): slices of a stream equal shorter streams."""
    key, counter = tf.raw_ops.StatelessRandomGetKeyCounter(seed=tf.constant([3, 4], tf.int32))
    full = example_noise(key, counter, 7, 0, 60, latent_dim).numpy()          # [60, D]
    assert full.shape == (60, latent_dim)
    np.testing.assert_array_equal(example_noise(key, counter, 7, 25, 35, latent_dim).numpy(), full[25:])
    np.testing.assert_array_equal(example_noise(key, counter, 7, 59, 1, latent_dim).numpy(), full[59:])
    batch = batch_noise(key, counter, 6, 25, 35, 3, latent_dim).numpy()      # [35, 3, D]
    np.testing.assert_array_equal(batch[:, 1], full[25:])
    other = example_noise(key, counter, 8, 0, 60, latent_dim).numpy()
    assert not np.allclose(other, full)
    # standard normal and independent across examples and samples
    many = batch_noise(key, counter, 0, 0, 2000, 4, latent_dim).numpy().reshape(-1, 4 * latent_dim)
    assert abs(many.mean()) < 0.03 and abs(many.std() - 1.0) < 0.03
    corr = np.corrcoef(many, rowvar=False)
    assert np.abs(corr - np.eye(4 * latent_dim)).max() < 0.1


def test_chunk_layout_covers_all_samples_with_little_waste():
    for s in (1, 7, 60, 5000, 5001):
        for c in (1, 3, 250, 10000):
            n, size = chunk_layout(s, c)
            assert size <= c and n * size >= s and n * size - s < n


def test_jit_compile_gives_the_exact_value(exact_model):
    images = toy_images(2)
    result = log_likelihood(exact_model, images, num_samples=8, chunk_size=3, seed=0, jit_compile=True)
    np.testing.assert_allclose(result.per_example, exact_log_marginal(images), atol=1e-4)


@pytest.mark.parametrize("kwargs, message", [
    (dict(num_samples=-1), "Expected `num_samples` to be a positive int. Received: num_samples=-1"),
    (dict(num_samples=0), "Received: num_samples=0"),
    (dict(num_samples=10.0), "Expected `num_samples` to be a positive int"),
    (dict(chunk_size=0), "Expected `chunk_size` to be a positive int. Received: chunk_size=0"),
    (dict(batch_size=-3), "Expected `batch_size` to be a positive int"),
    (dict(seed=-1), "Expected `seed` to be a non-negative int"),
])
def test_invalid_settings_raise(exact_model, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        log_likelihood(exact_model, toy_images(1), **kwargs)


def test_invalid_images_raise(exact_model):
    with pytest.raises(ValueError, match=r"Expected `images` of shape \(N,\) \+ \(2, 2, 1\)\. "
                                         r"Received an array of shape \(3, 2, 2\)"):
        log_likelihood(exact_model, np.zeros((3, 2, 2)), num_samples=2)
    with pytest.raises(ValueError, match=r"Received an array of shape \(2, 3, 3, 1\)"):
        log_likelihood(exact_model, np.zeros((2, 3, 3, 1)), num_samples=2)
    bad = toy_images(2)
    bad[1, 0, 1, 0] = np.nan
    with pytest.raises(ValueError,
                       match="Expected `images` to hold only finite values. Received: 1 NaN"):
        log_likelihood(exact_model, bad, num_samples=2)
    with pytest.raises(ValueError, match="at least 1 image"):
        log_likelihood(exact_model, np.zeros((0, 2, 2, 1)), num_samples=2)


def test_cached_functions_do_not_keep_the_model_alive():
    model = make_model()
    log_likelihood(model, toy_images(1), num_samples=2)
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None
