"""Likelihood log-densities against scipy, and the learned scale gets a gradient."""

import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

from tfpriors.likelihoods import (BernoulliLikelihood, GaussianLikelihood, LaplaceLikelihood,
                                  get_likelihood)

RNG = np.random.default_rng(0)
PARAMS = RNG.normal(size=(3, 2, 2, 1)).astype("float32")


def test_bernoulli_from_logits_matches_scipy():
    x = (RNG.random((3, 2, 2, 1)) > 0.5).astype("float32")
    p = 1 / (1 + np.exp(-PARAMS))
    expected = stats.bernoulli(p).logpmf(x).sum(axis=(1, 2, 3))
    np.testing.assert_allclose(BernoulliLikelihood().distribution(PARAMS).log_prob(x), expected, rtol=1e-5)
    # Large logits stay finite (computed from logits, not probabilities).
    assert np.isfinite(BernoulliLikelihood().distribution(PARAMS * 1e4).log_prob(x)).all()


@pytest.mark.parametrize("cls,ref", [(GaussianLikelihood, stats.norm), (LaplaceLikelihood, stats.laplace)])
def test_location_scale_matches_scipy(cls, ref):
    lik = cls(scale=0.3)
    lik.build()
    x = RNG.random((3, 2, 2, 1)).astype("float32")
    expected = ref(PARAMS, 0.3).logpdf(x).sum(axis=(1, 2, 3))
    np.testing.assert_allclose(lik.distribution(PARAMS).log_prob(x), expected, rtol=1e-5)
    np.testing.assert_allclose(lik.mean(PARAMS), PARAMS)


def test_learned_scale_gets_gradient_and_fixed_scale_is_not_trainable():
    lik = GaussianLikelihood(scale=0.5, learn_scale=True)
    lik.build()
    with tf.GradientTape() as tape:
        loss = -tf.reduce_sum(lik.distribution(PARAMS).log_prob(PARAMS + 0.1))
    assert tape.gradient(loss, lik.trainable_variables)[0] is not None
    fixed = GaussianLikelihood(scale=0.5)
    fixed.build()
    assert fixed.trainable_variables == []


def test_bad_arguments():
    with pytest.raises(ValueError, match="scale.*Received"):
        GaussianLikelihood(scale=-1.0)
    with pytest.raises(ValueError, match="likelihood.*Received: likelihood='poisson'"):
        get_likelihood("poisson")
