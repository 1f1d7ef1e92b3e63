"""ELBO against closed forms of the linear-Gaussian VAE."""

import numpy as np
import pytest

from tests.test_evaluation_toy import (NOISE, SHAPE, W, B, BoundOnlyPrior, exact_log_marginal,
                                       inexact_encoder, make_model, posterior_moments, toy_images)
from tfpriors.evaluation import elbo, log_likelihood


def closed_form_terms(encoder, images):
    """E_q[log p(x|z)] and KL(q || N(0, I)) per image for the linear-Gaussian decoder."""
    m, v = posterior_moments(encoder, images)                                   # [N, D]
    x = images.reshape(len(images), -1).astype(np.float64)                      # [N, P]
    resid = x - m @ W.T - B
    trace = (v * (W ** 2).sum(axis=0)).sum(axis=1)                              # tr(W diag(v) W^T)
    p = x.shape[1]
    expected = (-0.5 * p * np.log(2 * np.pi * NOISE ** 2)
                - ((resid ** 2).sum(1) + trace) / (2 * NOISE ** 2))
    kl = 0.5 * (v + m ** 2 - 1.0 - np.log(v)).sum(axis=1)
    return expected, kl


def test_exact_posterior_with_monte_carlo_kl_gives_log_marginal_per_sample():
    """log p(x|z) + log p(z) - log q(z|x) = log p(x) for every z when q is the posterior."""
    model = make_model(prior=BoundOnlyPrior(2))
    images = toy_images(3)
    result = elbo(model, images, num_samples=1, seed=3)
    assert result.info["kl_estimate"] == "monte_carlo"
    # BoundOnlyPrior lowers log p(z) by exactly 1 nat, through tfpriors.priors.prior_log_prob
    np.testing.assert_allclose(result.per_example, exact_log_marginal(images) - 1.0, atol=1e-4)
    ll = log_likelihood(model, images, num_samples=4, seed=3)
    np.testing.assert_allclose(ll.per_example, exact_log_marginal(images) - 1.0, atol=1e-4)


def test_analytic_kl_and_expected_log_likelihood_match_closed_forms():
    encoder = inexact_encoder()
    model = make_model(encoder=encoder)
    images = toy_images(4, seed=1)
    expected, kl = closed_form_terms(encoder, images)
    result = elbo(model, images, num_samples=4000, chunk_size=1000, seed=0)
    assert result.info["kl_estimate"] == "analytic"
    np.testing.assert_allclose(result.details["kl"], kl, atol=1e-4)
    # Monte-Carlo tolerance: 5 standard errors of the 4000-sample mean of log p(x|z)
    rng = np.random.default_rng(0)
    m, v = posterior_moments(encoder, images)
    z = m + np.sqrt(v) * rng.standard_normal((4000,) + m.shape)                 # [S, N, D]
    log_px = -0.5 * (((images.reshape(len(images), -1) - z @ W.T - B) / NOISE) ** 2).sum(-1)
    tol = 5 * log_px.std(axis=0) / np.sqrt(4000)
    assert np.all(np.abs(result.details["expected_log_likelihood"] - expected) < tol)
    np.testing.assert_allclose(result.per_example, result.details["expected_log_likelihood"] - kl,
                               atol=1e-4)
    # the ELBO is below the log-likelihood by KL(q(z|x) || p(z|x)) > 0 for the inexact encoder
    assert np.all(result.per_example < exact_log_marginal(images))


def test_elbo_uses_the_first_samples_of_log_likelihood():
    model = make_model(encoder=inexact_encoder(), prior=BoundOnlyPrior(2))
    images = toy_images(2)
    one = elbo(model, images, num_samples=1, seed=5)
    ll_one = log_likelihood(model, images, num_samples=1, seed=5)
    np.testing.assert_allclose(one.per_example, ll_one.per_example, atol=1e-5)


def test_invalid_arguments_raise():
    model = make_model()
    with pytest.raises(ValueError,
                       match="Expected `num_samples` to be a positive int. Received: num_samples=0"):
        elbo(model, toy_images(1), num_samples=0)
    with pytest.raises(ValueError, match=r"Expected `images` of shape \(N,\) \+ \(2, 2, 1\)"):
        elbo(model, np.zeros((1,) + SHAPE[:2]))
