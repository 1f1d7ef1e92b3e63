"""E_q(z)[log p(z)] (LaDDer Table 2 sign) against closed forms and brute-force numpy."""

import numpy as np
import pytest

from tests.test_evaluation_toy import (BoundOnlyPrior, inexact_encoder, make_model,
                                       numpy_mixture_log_prob, posterior_moments, set_mixture,
                                       toy_images)
from tfpriors.evaluation import prior_cross_entropy
from tfpriors.priors import MixtureOfGaussiansPrior

LOGITS = np.array([0.3, -0.5, 0.0])
LOC = np.array([[-1.0, 0.5], [1.5, -0.5], [0.0, 2.0]])
SCALE = np.array([[0.5, 0.8], [0.3, 0.6], [1.2, 0.4]])


def test_standard_normal_prior_matches_closed_form_and_sign():
    """E_q[log N(z; 0, I)] = sum_d -1/2 log(2 pi) - (m_d^2 + v_d) / 2: negative, higher is better."""
    encoder = inexact_encoder()
    model = make_model(encoder=encoder)
    images = toy_images(4, seed=2)
    m, v = posterior_moments(encoder, images)
    want = (-0.5 * np.log(2 * np.pi) - 0.5 * (m ** 2 + v)).sum(axis=1)
    result = prior_cross_entropy(model, images, num_samples=4000, chunk_size=1000, seed=0)
    # per-image MC std of log p(z) is sqrt(sum_d (v_d^2 / 2 + m_d^2 v_d)) for a Gaussian
    tol = 5 * np.sqrt((v ** 2 / 2 + m ** 2 * v).sum(axis=1)) / np.sqrt(4000)
    assert np.all(np.abs(result.per_example - want) < tol)
    assert result.mean < 0 and "higher is better" in result.info["sign"]


def test_mixture_prior_matches_brute_force_numpy():
    encoder = inexact_encoder()
    prior = MixtureOfGaussiansPrior(2, num_components=3, learn_weights=True)
    model = make_model(encoder=encoder, prior=prior)
    set_mixture(prior, LOGITS, LOC, SCALE)
    images = toy_images(3, seed=4)
    m, v = posterior_moments(encoder, images)
    rng = np.random.default_rng(1)
    z = m + np.sqrt(v) * rng.standard_normal((100_000,) + m.shape)             # [S', N, D]
    log_p = numpy_mixture_log_prob(z, LOGITS, LOC, SCALE)                       # [S', N]
    want = log_p.mean(axis=0)
    result = prior_cross_entropy(model, images, num_samples=3000, chunk_size=1000, seed=0)
    tol = 5 * log_p.std(axis=0) * np.sqrt(1 / 3000 + 1 / 100_000)
    assert np.all(np.abs(result.per_example - want) < tol)
    assert result.mean == pytest.approx(want.mean(), abs=tol.max())


def test_uses_the_priors_stochastic_bound():
    """prior_log_prob dispatches to log_prob_estimate: the same samples give exactly -1 nat."""
    images = toy_images(2)
    exact = prior_cross_entropy(make_model(), images, num_samples=50, seed=7)
    bound = prior_cross_entropy(make_model(prior=BoundOnlyPrior(2)), images, num_samples=50, seed=7)
    np.testing.assert_allclose(bound.per_example, exact.per_example - 1.0, atol=1e-5)


def test_invalid_arguments_raise():
    with pytest.raises(ValueError,
                       match="Expected `chunk_size` to be a positive int. Received: chunk_size=-5"):
        prior_cross_entropy(make_model(), toy_images(1), chunk_size=-5)
