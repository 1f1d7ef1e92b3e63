"""Variational hierarchical prior (VHP; Klushyn et al. 2019, Sec. 2.2).

    p_Theta(z) = integral p_Theta(z|zeta) N(zeta; 0, I) dzeta                      (Eq. 7)

with p_Theta(z|zeta) and the proposal q_Phi(zeta|z) diagonal Gaussians whose parameters are
MLPs (Table 3: FC 256 x 4, ReLU, on the pendulum; gated FC 256 x 2 on MNIST). In the objective
log p(z) is replaced by the K-sample importance-weighted bound of Eq. (8) (`bound="iw"`), or by
the plain ELBO of the second stochastic layer (`bound="elbo"`, the ablation of App. B.4).
`identity_scale` (not in the papers) makes both networks residual maps that start as the
identity, so that p(z) starts as the hyper prior smoothed by N(0, s^2 I).
`tfpriors.priors.prior_log_prob` routes to `log_prob_estimate`, so both ELBO and IWAE
objectives of the trainer train Theta and Phi through the bound.

LaDDer's generative prior (Lin & Clark 2020, Sec. 3.1) is the same unit with the hyper prior a
parameter: `hyper_prior` is any prior layer over zeta (LaDDer: `VGMMHyperPrior`, or another
`HierarchicalPrior` for one more rung) and the bound the prior VAE's ELBO (Eq. 4, `bound="elbo"`).
"""

import math

import keras
import tensorflow as tf

from tfpriors._validation import check_choice, check_positive_int
from tfpriors.distributions import HierarchicalGaussian
from tfpriors.networks.gated import dense_stack
from tfpriors.priors.base import PriorLayer, prior_log_prob

__all__ = ["HierarchicalPrior"]


class _GaussianMLP(keras.layers.Layer):
    """x [..., in] -> (loc, scale) [..., out] of a diagonal Gaussian, log-variance clipped.

    With `identity_scale` = s (in = out) the mean is x + f(x) and both output layers start at
    zero, the log-variance's bias at 2 log s: the map starts as N(x, s^2 I).
    """

    def __init__(self, in_dim, out_dim, hidden_units, activation, gated, log_var_bounds, prefix,
                 identity_scale=None, **kwargs):
        super().__init__(**kwargs)
        self.in_dim, self.out_dim = in_dim, out_dim
        self.log_var_bounds = log_var_bounds
        self.identity_scale = identity_scale
        self.hidden = dense_stack(hidden_units, activation, gated, prefix)
        loc_init, log_var_init = {}, {}
        if identity_scale is not None:
            loc_init = dict(kernel_initializer="zeros", bias_initializer="zeros")
            log_var_bias = keras.initializers.Constant(2.0 * math.log(identity_scale))
            log_var_init = dict(kernel_initializer="zeros", bias_initializer=log_var_bias)
        self.loc_head = keras.layers.Dense(out_dim, name=f"{prefix}_loc", **loc_init)
        self.log_var_head = keras.layers.Dense(out_dim, name=f"{prefix}_log_var", **log_var_init)

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
        flat_x = h
        for layer in self.hidden:
            h = layer(h)
        lo, hi = self.log_var_bounds
        log_var = tf.clip_by_value(self.log_var_head(h), lo, hi)                # [N, out]
        loc = self.loc_head(h)
        if self.identity_scale is not None:
            loc = flat_x + loc                                                  # the skip
        out_shape = tf.concat([tf.shape(x)[:-1], [self.out_dim]], 0)
        return tf.reshape(loc, out_shape), tf.reshape(tf.exp(0.5 * log_var), out_shape)


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
      hyper_prior: a PriorLayer over zeta (latent_dim M) replacing N(0, I); None: N(0, I).
      identity_scale: None, or s > 0 with M = D: both networks become residual maps,
        p(z|zeta) = N(zeta + f(zeta), sigma(zeta)^2) and q(zeta|z) = N(z + g(z), ...), starting
        as N(zeta, s^2 I) and N(z, s^2 I). p(z) then starts as the hyper prior smoothed at
        scale s (with LaDDer's DP-GMM: close to a Gaussian mixture fitted to z) and the IW bound
        starts nearly tight. Not in the papers: the prior VAE's usual start is a random map.

    Raises:
      ValueError: for a non-positive dimension, width or K, an unknown bound or bad bounds, or
        a hyper prior of another dimension than M; for an identity_scale that is not positive,
        whose log-variance 2 log s is outside log_var_bounds, or with M != D.
    """

    def __init__(self, latent_dim, hyper_latent_dim=None, hidden_units=(256, 256, 256, 256),
                 activation="relu", gated=False, num_samples=16, bound="iw",
                 log_var_bounds=(-8.0, 2.0), log_prob_num_samples=128, hyper_prior=None,
                 identity_scale=None, **kwargs):
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
        if isinstance(hyper_prior, dict):
            hyper_prior = keras.saving.deserialize_keras_object(hyper_prior)
        if hyper_prior is not None and (not isinstance(hyper_prior, PriorLayer)
                                        or hyper_prior.latent_dim != m):
            raise ValueError(f"Expected `hyper_prior` to be a PriorLayer over {m} dimensions (the "
                             f"hyper latent). Received: {hyper_prior!r}")
        self.hyper_prior = hyper_prior
        self.identity_scale = self._check_identity_scale(identity_scale)
        self.conditional = _GaussianMLP(m, d, self.hidden_units, activation, self.gated,
                                        self.log_var_bounds, "conditional",
                                        identity_scale=self.identity_scale, name="conditional")
        self.proposal = _GaussianMLP(d, m, self.hidden_units, activation, self.gated,
                                     self.log_var_bounds, "proposal",
                                     identity_scale=self.identity_scale, name="proposal")

    def _check_identity_scale(self, scale):
        if scale is None:
            return None
        scale = float(scale)
        lo, hi = self.log_var_bounds
        if not (math.isfinite(scale) and scale > 0 and lo <= 2.0 * math.log(scale) <= hi):
            raise ValueError(f"Expected `identity_scale` > 0 with 2 log(identity_scale) in "
                             f"log_var_bounds {self.log_var_bounds}. Received: {scale!r}")
        if self.hyper_latent_dim != self.latent_dim:
            raise ValueError(f"Expected hyper_latent_dim = latent_dim = {self.latent_dim} with "
                             f"`identity_scale` (the identity map needs equal dimensions). "
                             f"Received: hyper_latent_dim={self.hyper_latent_dim}")
        return scale

    def build(self, input_shape=None):
        self.conditional.build()
        self.proposal.build()
        if self.hyper_prior is not None and not self.hyper_prior.built:
            self.hyper_prior.build()
        self.built = True

    def distribution(self, encoder=None):
        """The HierarchicalGaussian p(z) built from the current weights (batch [], event [D])."""
        hyper, hyper_log_prob_fn = None, None
        if self.hyper_prior is not None:
            hyper = self.hyper_prior.distribution()
            hyper_log_prob_fn = lambda zeta, seed: prior_log_prob(  # noqa: E731
                self.hyper_prior, hyper, zeta, seed=seed)
        return HierarchicalGaussian(self.conditional, self.proposal, self.latent_dim,
                                    self.hyper_latent_dim,
                                    log_prob_num_samples=self.log_prob_num_samples,
                                    hyper_distribution=hyper, hyper_log_prob_fn=hyper_log_prob_fn)

    def encode_hyper(self, z):
        """The innermost rung's hyper latent of z: the proposal means, rung after rung.

        Args:
          z: [..., D].

        Returns:
          [..., M'] the means of q(zeta|z) (through every stacked HierarchicalPrior), the
          encodings LaDDer fits its hyper prior to.
        """
        loc, _ = self.proposal(tf.convert_to_tensor(z, tf.float32))
        if isinstance(self.hyper_prior, HierarchicalPrior):
            return self.hyper_prior.encode_hyper(loc)
        return loc

    def hyper_components(self, z):
        """q(k | t(z)) over the components of the innermost hyper prior (a VGMMHyperPrior),
        [..., M], with t(z) = `encode_hyper(z)`."""
        return self.innermost_hyper_prior.distribution().component_posterior(self.encode_hyper(z))

    def sample_hyper(self, z, seed):
        """Draws the innermost rung's hyper latent of z: zeta ~ q(zeta|z), rung after rung.

        Args:
          z: [..., D].
          seed: int32 [2] stateless seed.

        Returns:
          [..., M'] samples of the aggregate hyper posterior's conditionals, the encodings
          LaDDer fits its hyper prior to (Sec. 3.2: the prior encoding samples t_i).
        """
        loc, scale = self.proposal(tf.convert_to_tensor(z, tf.float32))
        here, inner = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        zeta = loc + scale * tf.random.stateless_normal(tf.shape(loc), seed=here)
        if isinstance(self.hyper_prior, HierarchicalPrior):
            return self.hyper_prior.sample_hyper(zeta, inner)
        return zeta

    @property
    def innermost_hyper_prior(self):
        """The prior layer at the top of the stack of rungs (None: N(0, I))."""
        if isinstance(self.hyper_prior, HierarchicalPrior):
            return self.hyper_prior.innermost_hyper_prior
        return self.hyper_prior

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
                      log_prob_num_samples=self.log_prob_num_samples,
                      identity_scale=self.identity_scale,
                      hyper_prior=(None if self.hyper_prior is None
                                   else keras.saving.serialize_keras_object(self.hyper_prior)))
        return config
