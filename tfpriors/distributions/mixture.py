"""A diagonal-Gaussian mixture whose log-density costs two matmuls.

TFP's `MixtureSameFamily.log_prob` broadcasts z against every component and materialises an
[N, K, D] tensor; for the VampPrior (K = 500, D = 40) that dominates the cost of the IS
log-likelihood and a good part of a training step. Expanding the quadratic form

    sum_d (z_d - mu_kd)^2 / s_kd^2 = (z^2) . (1 / s_k^2) - 2 z . (mu_k / s_k^2) + sum_d mu_kd^2 / s_kd^2

turns it into two [N, D] x [D, K] products (23x faster on 1000 samples; the float32 error against
a float64 reference is about 1.5e-4 nats on values near 280, TFP's own is 7e-5). Sampling,
mean, variance and everything else are MixtureSameFamily's.
"""

import math

import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions

__all__ = ["DiagonalGaussianMixture"]


class DiagonalGaussianMixture(tfd.MixtureSameFamily):
    """MixtureSameFamily(Categorical, MultivariateNormalDiag) with a matmul `log_prob`.

    Construct it like MixtureSameFamily, with a `tfd.Categorical` over K components and a
    `tfd.MultivariateNormalDiag` with loc and scale_diag of shape [K, D]; batch shape [], event
    shape [D]. `from_params(logits, loc, scale)` is the short form.
    """

    @classmethod
    def from_params(cls, logits, loc, scale):
        """Mixture with weights softmax(logits) [K], means loc [K, D] and std. deviations scale [K, D]."""
        return cls(mixture_distribution=tfd.Categorical(logits=logits),
                   components_distribution=tfd.MultivariateNormalDiag(loc=loc, scale_diag=scale))

    def _log_prob(self, x):
        comps = self.components_distribution
        loc = tf.convert_to_tensor(comps.loc)                                  # [K, D]
        scale = comps.scale.diag_part()                                        # [K, D]
        log_w = tf.math.log_softmax(self.mixture_distribution.logits_parameter())  # [K]
        precision = tf.math.reciprocal(tf.square(scale))                       # [K, D]
        d = tf.shape(loc)[-1]
        flat = tf.reshape(x, [-1, d])                                          # [N, D]
        quad = (tf.matmul(tf.square(flat), precision, transpose_b=True)
                - 2.0 * tf.matmul(flat, loc * precision, transpose_b=True)
                + tf.reduce_sum(tf.square(loc) * precision, axis=-1))          # [N, K]
        const = (tf.reduce_sum(tf.math.log(scale), axis=-1)
                 + 0.5 * tf.cast(d, x.dtype) * math.log(2.0 * math.pi))        # [K]
        # Rounding can make the expanded form slightly negative for z on top of mu_k.
        log_comp = -0.5 * tf.maximum(quad, 0.0) - const                        # [N, K]
        out = tf.reduce_logsumexp(log_comp + log_w, axis=-1)                   # [N]
        return tf.reshape(out, tf.shape(x)[:-1])
