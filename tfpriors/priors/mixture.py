"""Mixture-of-Gaussians prior (VampPrior paper, Sec. 3, "MoG"), diagonal or full covariances.

p(z) = sum_k w_k N(z; mu_k, Sigma_k),  w uniform (1/K) or learned through softmax logits, and

    Sigma_k = diag(sigma_k^2)    (covariance="diagonal", the VampPrior and CP-VAE papers' MoG), or
    Sigma_k = L_k L_k^T          (covariance="full"), L_k lower triangular with a positive diagonal.

The full form parametrises L_k by its D(D+1)/2 free entries through TFP's FillScaleTriL bijector:
the diagonal is min_scale + softplus(raw), the entries below it are free. *Not in the papers*:
with full covariances p(z|c_k) can follow clusters that are not axis-aligned (the CP-VAE's
clustering; measured on MNIST in benchmarks/README.md).
"""

import math

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfpriors._validation import check_positive_float, check_positive_int
from tfpriors.distributions.mixture import DiagonalGaussianMixture
from tfpriors.priors.base import PriorLayer

tfd = tfp.distributions
tfb = tfp.bijectors

__all__ = ["MixtureOfGaussiansPrior", "gaussian_mixture"]


def gaussian_mixture(logits, loc, scale):
    """A vectorised diagonal-Gaussian mixture.

    Args:
      logits: [K] unnormalised log-weights.
      loc: [K, D] component means.
      scale: [K, D] component standard deviations.

    Returns:
      DiagonalGaussianMixture (a tfd.MixtureSameFamily with a matmul log_prob), batch shape []
      and event shape [D]; `sample` draws the component from Categorical(logits) and then z
      from that component.
    """
    return DiagonalGaussianMixture.from_params(logits, loc, scale)


@keras.saving.register_keras_serializable(package="tfpriors")
class MixtureOfGaussiansPrior(PriorLayer):
    """Learnable mixture of K Gaussians with diagonal or full covariances.

    Args:
      latent_dim: D.
      num_components: K >= 1.
      learn_weights: learn the mixture weights (softmax of K logits); else uniform 1/K.
      init_scale: initial standard deviation of every component (Sigma_k = init_scale^2 I).
      min_scale: lower bound on the standard deviations (diagonal) or on the diagonal of the
        Cholesky factors L_k (full): min_scale + softplus(raw).
      init_spread: standard deviation of the random initial means.
      covariance: "diagonal" (weights loc [K, D], raw_scale [K, D]) or "full" (loc [K, D],
        raw_scale_tril [K, D(D+1)/2], the FillScaleTriL parameters of L_k).
    """

    COVARIANCES = ("diagonal", "full")

    def __init__(self, latent_dim, num_components=10, learn_weights=False, init_scale=1.0,
                 min_scale=1e-3, init_spread=1.0, covariance="diagonal", **kwargs):
        super().__init__(latent_dim, **kwargs)
        self.num_components = check_positive_int("num_components", num_components)
        self.learn_weights = bool(learn_weights)
        self.init_scale = check_positive_float("init_scale", init_scale)
        self.min_scale = check_positive_float("min_scale", min_scale)
        self.init_spread = check_positive_float("init_spread", init_spread)
        if self.init_scale <= self.min_scale:
            raise ValueError(f"Expected `init_scale` > `min_scale`. Received: init_scale={init_scale}, "
                             f"min_scale={min_scale}")
        if covariance not in self.COVARIANCES:
            raise ValueError(f"Expected `covariance` one of {self.COVARIANCES}. Received: "
                             f"{covariance!r}")
        self.covariance = covariance

    def _scale_tril_bijector(self):
        return tfb.FillScaleTriL(diag_shift=self.min_scale)

    def build(self, input_shape=None):
        k, d = self.num_components, self.latent_dim
        self.loc = self.add_weight(name="loc", shape=(k, d),
                                   initializer=keras.initializers.RandomNormal(stddev=self.init_spread))
        raw = math.log(math.expm1(self.init_scale - self.min_scale))   # softplus^-1
        if self.covariance == "diagonal":
            self.raw_scale = self.add_weight(name="raw_scale", shape=(k, d),
                                             initializer=keras.initializers.Constant(raw))
        else:
            self.raw_scale_tril = self.add_weight(name="raw_scale_tril", shape=(k, d * (d + 1) // 2),
                                                  initializer="zeros")
            self.raw_scale_tril.assign(self._scale_tril_bijector().inverse(
                tf.eye(d, batch_shape=[k]) * self.init_scale))
        self.logits = self.add_weight(name="logits", shape=(k,), initializer="zeros",
                                      trainable=self.learn_weights)
        self.built = True

    def scale_tril(self):
        """L_k [K, D, D] (covariance="full"; for "diagonal", diag(sigma_k))."""
        if self.covariance == "diagonal":
            return tf.linalg.diag(self.min_scale + tf.nn.softplus(self.raw_scale.value))
        return self._scale_tril_bijector().forward(self.raw_scale_tril.value)

    def distribution(self, encoder=None):
        if self.covariance == "diagonal":
            scale = self.min_scale + tf.nn.softplus(self.raw_scale.value)   # [K, D]
            return gaussian_mixture(self.logits.value, self.loc.value, scale)
        return tfd.MixtureSameFamily(
            mixture_distribution=tfd.Categorical(logits=self.logits.value),
            components_distribution=tfd.MultivariateNormalTriL(loc=self.loc.value,
                                                               scale_tril=self.scale_tril()))

    def assign_components(self, loc, covariance, weights=None):
        """Sets mu_k <- loc [K, D] and Sigma_k <- covariance [K, D, D] (a diagonal prior keeps the
        diagonal of each), and the weights w [K] if given and the prior learns them.

        Standard deviations (diagonal) and Cholesky diagonals (full) are floored at
        min_scale + 1e-6, the least the prior can represent.

        Raises:
          ValueError: for wrong shapes or a covariance that is not positive definite.
        """
        k, d = self.num_components, self.latent_dim
        loc, covariance = np.asarray(loc, np.float64), np.asarray(covariance, np.float64)
        if loc.shape != (k, d) or covariance.shape != (k, d, d):
            raise ValueError(f"Expected loc [{k}, {d}] and covariance [{k}, {d}, {d}]. Received: "
                             f"{loc.shape} and {covariance.shape}")
        if self.covariance == "diagonal":
            std = np.sqrt(np.maximum(np.diagonal(covariance, axis1=1, axis2=2), 0.0))
            shifted = np.maximum(std - self.min_scale, 1e-6)
            self.raw_scale.assign(np.log(np.expm1(shifted)).astype(np.float32))   # softplus^-1
        else:
            try:
                chol = np.linalg.cholesky(covariance)
            except np.linalg.LinAlgError as err:
                raise ValueError(f"Expected positive-definite covariances. Received: {err}") from None
            diagonal = np.maximum(np.diagonal(chol, axis1=1, axis2=2), self.min_scale + 1e-6)
            chol = np.tril(chol, -1) + diagonal[..., None] * np.eye(d)
            self.raw_scale_tril.assign(self._scale_tril_bijector().inverse(
                tf.constant(chol, tf.float32)))
        self.loc.assign(loc.astype(np.float32))
        if weights is not None and self.learn_weights:
            self.logits.assign(np.log(np.asarray(weights, np.float64)).astype(np.float32))

    def get_config(self):
        config = super().get_config()
        config.update(num_components=self.num_components, learn_weights=self.learn_weights,
                      init_scale=self.init_scale, min_scale=self.min_scale,
                      init_spread=self.init_spread, covariance=self.covariance)
        return config
