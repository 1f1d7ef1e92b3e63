"""Variational hierarchical prior (VHP; Klushyn et al. 2019, Sec. 2.2).

    p_Theta(z) = integral p_Theta(z|zeta) N(zeta; 0, I) dzeta                      (Eq. 7)

with p_Theta(z|zeta) and the proposal q_Phi(zeta|z) diagonal Gaussians whose parameters are
MLPs (Table 3: FC 256 x 4, ReLU, on the pendulum; gated FC 256 x 2 on MNIST). In the objective
log p(z) is replaced by the K-sample importance-weighted bound of Eq. (8) (`bound="iw"`), or by
the plain ELBO of the second stochastic layer (`bound="elbo"`, the ablation of App. B.4).
`tfpriors.priors.prior_log_prob` routes to `log_prob_estimate`, so both ELBO and IWAE
objectives of the trainer train Theta and Phi through the bound.
"""

import math

import keras
import tensorflow as tf

from tfpriors._validation import check_choice, check_positive_int
from tfpriors.distributions import HierarchicalGaussian
from tfpriors.networks.gated import dense_stack
from tfpriors.priors.base import PriorLayer

__all__ = ["HierarchicalPrior"]


class _GaussianMLP(keras.layers.Layer):
    """x [..., in] -> (loc, scale) [..., out] of a diagonal Gaussian, log-variance clipped."""

    def __init__(self, in_dim, out_dim, hidden_units, activation, gated, log_var_bounds, prefix,
                 **kwargs):
        super().__init__(**kwargs)
        self.in_dim, self.out_dim = in_dim, out_dim
        self.log_var_bounds = log_var_bounds
        self.hidden = dense_stack(hidden_units, activation, gated, prefix)
        self.loc_head = keras.layers.Dense(out_dim, name=f"{prefix}_loc")
        self.log_var_head = keras.layers.Dense(out_dim, name=f"{prefix}_log_var")

    def build(self, input_shape=None):
        shape = (None, self.in_dim)
        for layer in self.hidden:
            layer.build(shape)
            shape = (None, layer.units)
        self.loc_head.build(shape)
        self.log_var_head.build(shape)
        self.built = True

    def call(self, x):
        h = tf.reshape(x, [-1, self.in_dim])                                    # [N, in]
        for layer in self.hidden:
            h = layer(h)
        lo, hi = self.log_var_bounds
        log_var = tf.clip_by_value(self.log_var_head(h), lo, hi)                # [N, out]
        out_shape = tf.concat([tf.shape(x)[:-1], [self.out_dim]], 0)
        loc = tf.reshape(self.loc_head(h), out_shape)                           # [..., out]
        return loc, tf.reshape(tf.exp(0.5 * log_var), out_shape)


@keras.saving.register_keras_serializable(package="tfpriors")
class HierarchicalPrior(PriorLayer):
    """Learnable two-level prior p(z) = E_{N(zeta; 0, I)} p(z|zeta) with an amortised proposal.

    Args:
      latent_dim: D, the dimension of z.
      hyper_latent_dim: M, the dimension of zeta; None uses M = D (the paper does not state M;
        on the pendulum D = 2).
      hidden_units: widths of both MLPs (Table 3, pendulum: (256, 256, 256, 256)).
      activation: hidden activation of the plain MLPs (Table 3: ReLU).
      gated: gated dense layers instead (Table 3, MNIST: GatedFC 256, 256).
      num_samples: K, the importance samples of the bound (Table 3: K = 16 on the pendulum).
      bound: "iw" (Eq. 8) or "elbo" (App. B.4 ablation: the ELBO of the second layer).
      log_var_bounds: (min, max) clip range of the log-variances of p(z|zeta) and q(zeta|z).
      log_prob_num_samples: samples of the deterministic estimate behind `distribution().log_prob`
        (plots and other non-training uses).

    Raises:
      ValueError: for a non-positive dimension, width or K, an unknown bound or bad bounds.
    """

    def __init__(self, latent_dim, hyper_latent_dim=None, hidden_units=(256, 256, 256, 256),
                 activation="relu", gated=False, num_samples=16, bound="iw",
                 log_var_bounds=(-8.0, 2.0), log_prob_num_samples=128, **kwargs):
        super().__init__(latent_dim, **kwargs)
        self.hyper_latent_dim = check_positive_int(
            "hyper_latent_dim", self.latent_dim if hyper_latent_dim is None else hyper_latent_dim)
        self.hidden_units = tuple(check_positive_int("hidden_units", u) for u in hidden_units)
        self.activation = activation
        self.gated = bool(gated)
        self.num_samples = check_positive_int("num_samples", num_samples)
        self.bound = check_choice("bound", bound, ("iw", "elbo"))
        lo, hi = (float(b) for b in log_var_bounds)
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ValueError(f"Expected `log_var_bounds` = (min, max) with finite min < max. "
                             f"Received: log_var_bounds={log_var_bounds!r}")
        self.log_var_bounds = (lo, hi)
        self.log_prob_num_samples = check_positive_int("log_prob_num_samples", log_prob_num_samples)
        d, m = self.latent_dim, self.hyper_latent_dim
        self.conditional = _GaussianMLP(m, d, self.hidden_units, activation, self.gated,
                                        self.log_var_bounds, "conditional", name="conditional")
        self.proposal = _GaussianMLP(d, m, self.hidden_units, activation, self.gated,
                                     self.log_var_bounds, "proposal", name="proposal")

    def build(self, input_shape=None):
        self.conditional.build()
        self.proposal.build()
        self.built = True

    def distribution(self, encoder=None):
        """The HierarchicalGaussian p(z) built from the current weights (batch [], event [D])."""
        return HierarchicalGaussian(self.conditional, self.proposal, self.latent_dim,
                                    self.hyper_latent_dim,
                                    log_prob_num_samples=self.log_prob_num_samples)

    def log_prob_estimate(self, distribution, z, seed=None):
        """The layer's bound on log p(z): IW with K = num_samples (Eq. 8) or the ELBO (App. B.4).

        Args:
          distribution: the HierarchicalGaussian returned by `distribution()`.
          z: latents [..., D].
          seed: int32 [2] stateless seed.

        Returns:
          [...] lower bounds on log p(z).
        """
        if self.bound == "iw":
            return distribution.importance_weighted_log_prob(z, self.num_samples, seed=seed)
        return distribution.elbo_log_prob(z, self.num_samples, seed=seed)

    def get_config(self):
        config = super().get_config()
        config.update(hyper_latent_dim=self.hyper_latent_dim, hidden_units=list(self.hidden_units),
                      activation=self.activation, gated=self.gated, num_samples=self.num_samples,
                      bound=self.bound, log_var_bounds=list(self.log_var_bounds),
                      log_prob_num_samples=self.log_prob_num_samples)
        return config
