"""The variational Dirichlet-process Gaussian mixture (LaDDer's hyper prior; Lin & Clark 2020, Sec. 3.2).

A truncated Dirichlet-process mixture of M full-covariance Gaussians fitted by mean-field
variational inference (Blei & Jordan 2006; Bishop 2006, Sec. 10.2), with the variational factors

    q(v_m) = Beta(gamma_m1, gamma_m2)       stick-breaking weights, w_m = v_m prod_{j<m} (1 - v_j)
    q(mu_m, Lambda_m) = N(mu_m; m_m, (kappa_m Lambda_m)^-1) W(Lambda_m; W_m, nu_m)

(scikit-learn's `BayesianGaussianMixture(weight_concentration_prior_type="dirichlet_process",
covariance_type="full")`, whose fitted attributes are these parameters: weight_concentration_ =
(gamma_1, gamma_2), mean_precision_ = kappa, means_ = m, degrees_of_freedom_ = nu,
covariances_ = (nu W)^-1).

Held in TensorFlow it is a `tfd.MixtureSameFamily` of `MultivariateNormalTriL` components at
(m_m, (nu_m W_m)^-1) with the mixture logits

    l_m = E_q[log w_m] + 1/2 (E_q[log |Lambda_m|] - log |nu_m W_m|) - D / (2 kappa_m)

    E_q[log w_m] = psi(gamma_m1) - psi(gamma_m1 + gamma_m2) + sum_{j<m} psi(gamma_j2) - psi(gamma_j1 + gamma_j2)
    E_q[log |Lambda_m|] = sum_{i<D} psi((nu_m - i) / 2) + D log 2 + log |W_m|

so that l_m + log N(t; m_m, (nu_m W_m)^-1) = E_q[log w_m + log N(t; mu_m, Lambda_m^-1)], the
per-component term of the variational bound (Eq. 6). `score_samples(t)` = logsumexp_m of these
terms is scikit-learn's `score_samples` (the expected log-density, a lower bound by Jensen);
`log_prob(t)` is the same function normalised over t (it subtracts the constant logsumexp_m l_m),
a proper density whose gradient in t is score_samples'. Training and sampling use `log_prob`.

Components can be inactive (pruned): their logits are -inf. Legend: M components, D = dim t.
"""

import math

import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions

__all__ = ["VariationalGaussianMixture", "variational_mixture_logits"]

_LOG_2 = math.log(2.0)


def variational_mixture_logits(weight_concentration, mean_precision, degrees_of_freedom,
                               covariance_cholesky, active=None):
    """The mixture logits l_m of the module docstring, [M] (inactive components: -inf).

    Args:
      weight_concentration: [2, M] Beta parameters (gamma_1, gamma_2) of the stick breaks.
      mean_precision: [M] kappa.
      degrees_of_freedom: [M] nu (> D - 1).
      covariance_cholesky: [M, D, D] lower Cholesky factors of (nu W)^-1.
      active: optional bool [M]; the active components must come first (stick-breaking order).
    """
    gamma1, gamma2 = weight_concentration[0], weight_concentration[1]
    digamma_sum = tf.math.digamma(gamma1 + gamma2)
    stick_rest = tf.math.digamma(gamma2) - digamma_sum                           # [M]
    e_log_w = (tf.math.digamma(gamma1) - digamma_sum
               + tf.concat([[0.0], tf.cumsum(stick_rest)[:-1]], 0))              # [M]
    d = tf.cast(tf.shape(covariance_cholesky)[-1], tf.float32)
    dims = tf.range(d)                                                           # [D]
    # E log|Lambda| - log|nu W| = sum psi((nu - i)/2) + D log 2 - D log nu.
    e_log_det_gap = (tf.reduce_sum(tf.math.digamma(0.5 * (degrees_of_freedom[:, None] - dims)), -1)
                     + d * _LOG_2 - d * tf.math.log(degrees_of_freedom))          # [M]
    logits = e_log_w + 0.5 * e_log_det_gap - 0.5 * d / mean_precision           # [M]
    if active is not None:
        logits = tf.where(active, logits, tf.constant(-float("inf"), logits.dtype))
    return logits


class VariationalGaussianMixture(tfd.MixtureSameFamily):
    """The fitted variational DP-GMM as a distribution over t: batch shape [], event shape [D].

    Args:
      weight_concentration: [2, M] (gamma_1, gamma_2).
      mean_precision: [M] kappa.
      means: [M, D] m.
      degrees_of_freedom: [M] nu.
      covariances: [M, D, D] (nu W)^-1, symmetric positive definite.
      active: optional bool [M], False for pruned components (the active ones first).
      validate_args, allow_nan_stats, name: as for every tfd.Distribution.

    `log_prob` is normalised; `score_samples` equals scikit-learn's (module docstring).
    """

    def __init__(self, weight_concentration, mean_precision, means, degrees_of_freedom,
                 covariances, active=None, validate_args=False, allow_nan_stats=True,
                 name="VariationalGaussianMixture"):
        parameters = dict(locals())
        with tf.name_scope(name):
            self._weight_concentration = tf.convert_to_tensor(weight_concentration, tf.float32)
            self._mean_precision = tf.convert_to_tensor(mean_precision, tf.float32)
            self._degrees_of_freedom = tf.convert_to_tensor(degrees_of_freedom, tf.float32)
            means = tf.convert_to_tensor(means, tf.float32)
            covariances = tf.convert_to_tensor(covariances, tf.float32)
            self._active = None if active is None else tf.convert_to_tensor(active, tf.bool)
            if self._weight_concentration.shape.rank != 2 or self._weight_concentration.shape[0] != 2:
                raise ValueError(f"Expected `weight_concentration` of shape [2, M] (a Dirichlet "
                                 f"process's stick-breaking Beta parameters). Received: "
                                 f"{self._weight_concentration.shape}")
            if means.shape.rank != 2 or covariances.shape.rank != 3:
                raise ValueError(f"Expected `means` [M, D] and `covariances` [M, D, D]. Received: "
                                 f"{means.shape} and {covariances.shape}")
            scale_tril = tf.linalg.cholesky(covariances)                             # [M, D, D]
            self._logits = variational_mixture_logits(
                self._weight_concentration, self._mean_precision, self._degrees_of_freedom,
                scale_tril, self._active)
            super().__init__(
                mixture_distribution=tfd.Categorical(logits=self._logits),
                components_distribution=tfd.MultivariateNormalTriL(loc=means, scale_tril=scale_tril),
                validate_args=validate_args, allow_nan_stats=allow_nan_stats, name=name)
        self._parameters = {k: v for k, v in parameters.items() if k not in ("self", "__class__")}

    @classmethod
    def _parameter_properties(cls, dtype, num_classes=None):
        return {}   # built from the variational parameters, no batch shape to infer

    @property
    def logits(self):
        """The mixture logits l_m [M] (unnormalised; -inf for inactive components)."""
        return self._logits

    def score_samples(self, t):
        """scikit-learn's `BayesianGaussianMixture.score_samples`: logsumexp_m E_q[log w_m N_m(t)].

        Args:
          t: [..., D].

        Returns:
          [...] = log_prob(t) + logsumexp_m l_m (a constant below 0 by Jensen's inequality).
        """
        return self.log_prob(t) + tf.reduce_logsumexp(self._logits)

    def component_posterior(self, t):
        """q(k | t) over the components, [..., M] (scikit-learn's `predict_proba`)."""
        t = tf.convert_to_tensor(t, tf.float32)
        log_joint = (tf.math.log_softmax(self._logits)
                     + self.components_distribution.log_prob(t[..., None, :]))        # [..., M]
        return tf.nn.softmax(log_joint, axis=-1)
