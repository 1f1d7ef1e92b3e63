"""Mixture-of-Gaussians prior (VampPrior paper, Sec. 3, "MoG").

p(z) = sum_k w_k N(z; mu_k, diag(sigma_k^2)),  w uniform (1/K) or learned through softmax logits.
"""

import math

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from tfpriors._validation import check_positive_float, check_positive_int
from tfpriors.distributions.mixture import DiagonalGaussianMixture
from tfpriors.priors.base import PriorLayer

tfd = tfp.distributions

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
    """Learnable mixture of K diagonal Gaussians.

    Args:
      latent_dim: D.
      num_components: K >= 1.
      learn_weights: learn the mixture weights (softmax of K logits); else uniform 1/K.
      init_scale: initial standard deviation of every component.
      min_scale: lower bound on the standard deviations (scale = min_scale + softplus(raw)).
      init_spread: standard deviation of the random initial means.
    """

    def __init__(self, latent_dim, num_components=10, learn_weights=False, init_scale=1.0,
                 min_scale=1e-3, init_spread=1.0, **kwargs):
        super().__init__(latent_dim, **kwargs)
        self.num_components = check_positive_int("num_components", num_components)
        self.learn_weights = bool(learn_weights)
        self.init_scale = check_positive_float("init_scale", init_scale)
        self.min_scale = check_positive_float("min_scale", min_scale)
        self.init_spread = check_positive_float("init_spread", init_spread)
        if self.init_scale <= self.min_scale:
            raise ValueError(f"Expected `init_scale` > `min_scale`. Received: init_scale={init_scale}, "
                             f"min_scale={min_scale}")

    def build(self, input_shape=None):
        k, d = self.num_components, self.latent_dim
        self.loc = self.add_weight(name="loc", shape=(k, d),
                                   initializer=keras.initializers.RandomNormal(stddev=self.init_spread))
        raw = math.log(math.expm1(self.init_scale - self.min_scale))   # softplus^-1
        self.raw_scale = self.add_weight(name="raw_scale", shape=(k, d),
                                         initializer=keras.initializers.Constant(raw))
        self.logits = self.add_weight(name="logits", shape=(k,), initializer="zeros",
                                      trainable=self.learn_weights)
        self.built = True

    def distribution(self, encoder=None):
        scale = self.min_scale + tf.nn.softplus(self.raw_scale.value)   # [K, D]
        return gaussian_mixture(self.logits.value, self.loc.value, scale)

    def get_config(self):
        config = super().get_config()
        config.update(num_components=self.num_components, learn_weights=self.learn_weights,
                      init_scale=self.init_scale, min_scale=self.min_scale,
                      init_spread=self.init_spread)
        return config
