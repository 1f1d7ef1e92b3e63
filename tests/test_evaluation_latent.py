"""Active units, KL per dimension and reconstruction error against numpy/scipy references."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from scipy import integrate, stats
from scipy.special import expit

from tests.test_evaluation_toy import (NOISE, SHAPE, W, B, LinearDecoder, LinearEncoder,
                                       exact_encoder, inexact_encoder, make_model,
                                       numpy_mixture_log_prob, posterior_moments, set_mixture,
                                       toy_images)
from tfpriors.evaluation import active_units, kl_per_dimension, reconstruction_error
from tfpriors.likelihoods import BernoulliLikelihood
from tfpriors.priors import MixtureOfGaussiansPrior, StandardNormalPrior

tfd = tfp.distributions


def controlled_model():
    """D = 4: dim 0 varies strongly, dim 1 barely (var ~ 2e-4), dim 2 never, dim 3 a little (~0.02)."""
    a = np.zeros((4, 4))
    a[0, :2] = 1.0
    a[1, 0] = 0.02
    a[3, 0] = 0.2
    encoder = LinearEncoder(a, np.array([0.5, -1.0, 3.0, 0.0]), np.log(np.full(4, 0.3)))
    decoder = LinearDecoder(weight=np.ones((4, 4)) * 0.1, bias=np.zeros(4))
    return make_model(encoder=encoder, decoder=decoder, prior=StandardNormalPrior(4)), encoder


def test_active_units_counts_the_dimensions_whose_mean_varies():
    model, encoder = controlled_model()
    images = toy_images(300, seed=5)
    result = active_units(model, images, batch_size=64)
    means, _ = posterior_moments(encoder, images)
    np.testing.assert_allclose(result.variances, means.var(axis=0), rtol=1e-5, atol=1e-12)
    assert result.count == 2 and result.active.tolist() == [True, False, False, True]
    assert active_units(model, images, threshold=0.05).count == 1
    summary = result.to_dict()
    assert summary["count"] == 2 and summary["latent_dim"] == 4 and len(summary["variances"]) == 4


def test_active_units_needs_two_images():
    model, _ = controlled_model()
    with pytest.raises(ValueError, match="at least 2 image"):
        active_units(model, toy_images(1))
    with pytest.raises(ValueError, match="Expected `threshold` to be a positive number"):
        active_units(model, toy_images(3), threshold=-0.1)


def test_kl_per_dimension_standard_normal_is_the_closed_form_and_sums_to_the_kl():
    encoder = inexact_encoder()
    model = make_model(encoder=encoder)
    images = toy_images(5, seed=6)
    result = kl_per_dimension(model, images)
    m, v = posterior_moments(encoder, images)
    want = 0.5 * (v + m ** 2 - 1.0 - np.log(v))                                # [N, D]
    assert result.reference == "prior_marginal_gaussian" and result.num_samples == 0
    np.testing.assert_allclose(result.per_example, want, atol=1e-5)
    np.testing.assert_allclose(result.per_dimension, want.mean(axis=0), atol=1e-5)
    total = tfd.kl_divergence(model.posterior(images), model.prior_distribution()).numpy().mean()
    assert result.total == pytest.approx(total, abs=1e-4)


def test_kl_per_dimension_mixture_uses_the_exact_marginal():
    """KL(q(z_d|x) || sum_k w_k N(mu_kd, s_kd^2)) by scipy quadrature, per image and dimension."""
    logits, loc, scale = np.array([0.3, -0.5, 0.0]), np.array([[-1.0, 0.5], [1.5, -0.5], [0.0, 2.0]]), \
        np.array([[0.5, 0.8], [0.3, 0.6], [1.2, 0.4]])
    encoder = inexact_encoder()
    prior = MixtureOfGaussiansPrior(2, num_components=3, learn_weights=True)
    model = make_model(encoder=encoder, prior=prior)
    set_mixture(prior, logits, loc, scale)
    images = toy_images(2, seed=7)
    result = kl_per_dimension(model, images, num_samples=20000, batch_size=1)
    assert result.reference == "prior_marginal_mixture" and result.num_samples == 20000
    m, v = posterior_moments(encoder, images)
    for n in range(2):
        for d in range(2):
            q = stats.norm(m[n, d], np.sqrt(v[n, d]))

            def log_marginal(z):                                               # z [...] -> [...]
                z = np.asarray(z, np.float64)[..., None]
                return numpy_mixture_log_prob(z, logits, loc[:, d:d + 1], scale[:, d:d + 1])

            lo, hi = m[n, d] - 10 * np.sqrt(v[n, d]), m[n, d] + 10 * np.sqrt(v[n, d])
            grid = np.linspace(lo, hi, 20001)
            want = integrate.simpson(q.pdf(grid) * (q.logpdf(grid) - log_marginal(grid)), x=grid)
            # 5 standard errors of the 20000-sample mean of log p_d(z_d)
            spread = log_marginal(q.rvs(size=4000, random_state=n * 2 + d)).std()
            assert result.per_example[n, d] == pytest.approx(want, abs=5 * spread / np.sqrt(20000))
            assert spread / np.sqrt(20000) < 0.01


def test_kl_per_dimension_falls_back_to_standard_normal():
    class ShiftedIndependentPrior(StandardNormalPrior):
        def distribution(self, encoder=None):
            return tfd.Independent(tfd.Normal(tf.fill([self.latent_dim], 2.0), 3.0), 1)

    encoder = exact_encoder()
    model = make_model(encoder=encoder, prior=ShiftedIndependentPrior(2))
    images = toy_images(3)
    result = kl_per_dimension(model, images)
    m, v = posterior_moments(encoder, images)
    assert result.reference == "standard_normal"
    np.testing.assert_allclose(result.per_example, 0.5 * (v + m ** 2 - 1.0 - np.log(v)), atol=1e-5)


def test_reconstruction_error_gaussian():
    encoder = inexact_encoder()
    model = make_model(encoder=encoder)
    images = toy_images(5, seed=8)
    result = reconstruction_error(model, images, batch_size=2)
    m, _ = posterior_moments(encoder, images)
    x = images.reshape(5, -1)
    mean = m @ W.T + B
    np.testing.assert_allclose(result.per_example, ((x - mean) ** 2).mean(axis=1), rtol=1e-5)
    np.testing.assert_allclose(result.details["nll_per_pixel"],
                               -stats.norm(mean, NOISE).logpdf(x).mean(axis=1), rtol=1e-5)


def test_reconstruction_error_bernoulli_nll_is_the_binary_cross_entropy():
    encoder = inexact_encoder()
    model = make_model(encoder=encoder, likelihood=BernoulliLikelihood())
    images = np.random.default_rng(9).uniform(0.0, 1.0, size=(4,) + SHAPE).astype(np.float32)
    images[0] = (images[0] > 0.5)
    result = reconstruction_error(model, images)
    m, _ = posterior_moments(encoder, images)
    x = images.reshape(4, -1)
    p = expit(m @ W.T + B)
    np.testing.assert_allclose(result.per_example, ((x - p) ** 2).mean(axis=1), rtol=1e-5)
    bce = -(x * np.log(p) + (1 - x) * np.log(1 - p)).mean(axis=1)
    np.testing.assert_allclose(result.details["nll_per_pixel"], bce, rtol=1e-5)
