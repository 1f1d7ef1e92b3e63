"""The standard normal prior p(z) = N(0, I)."""

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from tfpriors.priors.base import PriorLayer

tfd = tfp.distributions

__all__ = ["StandardNormalPrior"]


@keras.saving.register_keras_serializable(package="tfpriors")
class StandardNormalPrior(PriorLayer):
    """p(z) = N(z; 0, I_D). No weights; the KL to a diagonal Gaussian posterior is analytic
    (TFP registers KL(MultivariateNormalDiag || MultivariateNormalDiag))."""

    def distribution(self, encoder=None):
        zeros = tf.zeros([self.latent_dim])
        return tfd.MultivariateNormalDiag(loc=zeros, scale_diag=tf.ones_like(zeros))
