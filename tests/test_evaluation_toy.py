"""A linear-Gaussian VAE built from the real classes, with closed forms to test the evaluation.

    p(z) = N(0, I_D),   p(x|z) = N(W z + b, s^2 I_P),   so  p(x) = N(b, W W^T + s^2 I)
    p(z|x) = N(Sigma W^T (x - b) / s^2, Sigma),  Sigma = (I + W^T W / s^2)^-1

W has orthogonal columns, so Sigma is diagonal and the exact posterior is a valid
diagonal-Gaussian encoder. The other test_evaluation_* modules import the helpers below.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

from tfpriors.likelihoods import GaussianLikelihood
from tfpriors.networks.base import restore_batch_shape
from tfpriors.priors import StandardNormalPrior
from trainers import VAE

SHAPE = (2, 2, 1)          # P = 4 pixels
NOISE = 0.5                # s
W = np.array([[1.0, 0.3], [0.5, -0.6], [-1.0, 0.3], [0.5, 0.6]])   # [P, D], orthogonal columns
B = np.array([0.1, -0.2, 0.3, 0.0])


class LinearDecoder(keras.layers.Layer):
    """params = W z + b, reshaped to the image: z [..., D] -> [..., H, W, C]."""

    def __init__(self, weight=W, bias=B, output_shape_=SHAPE, **kwargs):
        super().__init__(**kwargs)
        self.weight = np.asarray(weight, np.float32)
        self.bias = np.asarray(bias, np.float32)
        self.output_shape_ = tuple(output_shape_)
        self.latent_dim = self.weight.shape[1]

    def build(self, input_shape=None):
        self.built = True

    def call(self, z):
        flat = tf.reshape(z, [-1, self.latent_dim]) @ self.weight.T + self.bias   # [N, P]
        return restore_batch_shape(flat, z, self.output_shape_)


class LinearEncoder(keras.layers.Layer):
    """loc = A vec(x) + c, log_var constant: x [B, H, W, C] -> ([B, D], [B, D])."""

    def __init__(self, a, c, log_var, input_shape_=SHAPE, **kwargs):
        super().__init__(**kwargs)
        self.a = np.asarray(a, np.float32)
        self.c = np.asarray(c, np.float32)
        self.log_var = np.asarray(log_var, np.float32)
        self.input_shape_ = tuple(input_shape_)
        self.latent_dim = self.a.shape[0]

    def build(self, input_shape=None):
        self.built = True

    def call(self, x):
        flat = tf.reshape(x, [-1, self.a.shape[1]])                               # [B, P]
        loc = flat @ self.a.T + self.c                                            # [B, D]
        return loc, tf.zeros_like(loc) + self.log_var


def exact_posterior_params(weight=W, bias=B, noise=NOISE):
    """(A, c, log_var) of the exact posterior p(z|x) (diagonal because W^T W is)."""
    gram = weight.T @ weight / noise ** 2
    assert np.allclose(gram, np.diag(np.diag(gram)))
    sigma = np.linalg.inv(np.eye(weight.shape[1]) + gram)
    a = sigma @ weight.T / noise ** 2
    return a, -a @ bias, np.log(np.diag(sigma))


def exact_encoder():
    return LinearEncoder(*exact_posterior_params())


def inexact_encoder():
    """A decent proposal: shifted means and inflated variances of the exact posterior."""
    a, c, log_var = exact_posterior_params()
    return LinearEncoder(a, c + np.array([0.2, -0.1]), log_var + np.log(1.5 ** 2))


def make_model(encoder=None, decoder=None, prior=None, likelihood=None):
    decoder = decoder if decoder is not None else LinearDecoder()
    encoder = encoder if encoder is not None else exact_encoder()
    prior = prior if prior is not None else StandardNormalPrior(decoder.latent_dim)
    likelihood = likelihood if likelihood is not None else GaussianLikelihood(scale=NOISE)
    model = VAE(encoder, decoder, prior, likelihood)
    model.build((None,) + tuple(decoder.output_shape_))
    return model


def toy_images(n=3, seed=0):
    return np.random.default_rng(seed).uniform(-1.0, 1.5, size=(n,) + SHAPE).astype(np.float32)


def exact_log_marginal(images):
    """log N(vec(x); b, W W^T + s^2 I) per image, float64 [N]."""
    cov = W @ W.T + NOISE ** 2 * np.eye(W.shape[0])
    return stats.multivariate_normal(B, cov).logpdf(images.reshape(len(images), -1).astype(np.float64))


# ----------------------------------------------------------------- tests of the toy itself
def test_exact_encoder_is_the_bayes_posterior():
    """Bayes' rule on a grid: p(z|x) ∝ p(z) p(x|z) matches the encoder's Gaussian."""
    x = toy_images(1)[0].reshape(-1).astype(np.float64)
    loc, log_var = (t.numpy()[0] for t in exact_encoder()(toy_images(1)))
    g0, g1 = np.meshgrid(np.linspace(-4, 4, 161), np.linspace(-4, 4, 161), indexing="ij")
    z = np.stack([g0.ravel(), g1.ravel()], axis=1)
    log_joint = (stats.multivariate_normal(np.zeros(2)).logpdf(z)
                 + stats.norm(z @ W.T + B, NOISE).logpdf(x).sum(axis=1))
    post = np.exp(log_joint - log_joint.max())
    post /= post.sum()
    mean = post @ z
    var = post @ (z - mean) ** 2
    np.testing.assert_allclose(loc, mean, atol=1e-3)
    np.testing.assert_allclose(np.exp(log_var), var, rtol=1e-2)


def test_toy_model_likelihood_matches_scipy():
    model = make_model()
    z = np.array([[0.3, -1.2]], np.float32)
    x = toy_images(1)
    got = model.likelihood_distribution(z).log_prob(x).numpy()[0]
    want = stats.norm(z[0] @ W.T + B, NOISE).logpdf(x.reshape(-1)).sum()
    assert got == pytest.approx(want, abs=1e-4)


def posterior_moments(encoder, images):
    """(means, variances) of the toy encoder's q(z|x), float64 [N, D] each."""
    loc, log_var = encoder(images)
    return loc.numpy().astype(np.float64), np.exp(log_var.numpy().astype(np.float64))


def set_mixture(prior, logits, loc, scale):
    """Sets a built MixtureOfGaussiansPrior to the given weights, means [K, D] and scales [K, D]."""
    prior.logits.assign(np.asarray(logits, np.float32))
    prior.loc.assign(np.asarray(loc, np.float32))
    prior.raw_scale.assign(np.log(np.expm1(np.asarray(scale) - prior.min_scale)).astype(np.float32))


def numpy_mixture_log_prob(z, logits, loc, scale):
    """log sum_k w_k N(z; loc_k, diag(scale_k^2)) for z [..., D], float64."""
    from scipy.special import logsumexp
    log_w = np.asarray(logits) - logsumexp(logits)
    comp = stats.norm(np.asarray(loc), np.asarray(scale)).logpdf(z[..., None, :]).sum(-1)   # [..., K]
    return logsumexp(comp + log_w, axis=-1)


class BoundOnlyPrior(StandardNormalPrior):
    """N(0, I) whose `log_prob_estimate` returns log p(z) - 1: a prior known only through a bound.

    Evaluation must go through `tfpriors.priors.prior_log_prob`, which prefers the estimate, so
    every log p(z) it uses is shifted by exactly -1 nat.
    """

    def log_prob_estimate(self, distribution, z, seed=None):
        seed.shape.assert_is_compatible_with([2])
        return distribution.log_prob(z) - 1.0
