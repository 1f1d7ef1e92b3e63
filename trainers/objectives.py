"""Training objectives: the S-sample ELBO and the K-sample IWAE bound, for any prior.

Both take the model's public pieces (posterior q(z|x), prior p(z), likelihood p(x|z)) and return
per-example terms [B]. Legend: S samples, B batch, D latents, H W C image.

ELBO (β-weighted):   loss = -1/S sum_s log p(x|z_s) + β KL(q(z|x) || p(z)),  z_s ~ q(z|x)
    KL is analytic when both sides are diagonal Gaussians (prior.analytic_kl), else the
    S-sample Monte-Carlo estimate 1/S sum_s [log q(z_s|x) - log p(z_s)].
IWAE (Burda et al. 2016):  loss = -log 1/K sum_k exp(log p(x|z_k) + β [log p(z_k) - log q(z_k|x)])
    which is the importance-weighted bound for β = 1.
"""

import math

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from tfpriors._validation import check_positive_int
from tfpriors.priors import prior_log_prob

tfd = tfp.distributions

__all__ = ["ELBO", "IWAE", "get_objective"]


def _sample_terms(model, x, num_samples, seed, batch_slice=None):
    """Draws z ~ q(z|x) and returns the log-densities needed by both objectives.

    Args:
      model: the VAE.
      x: [B, H, W, C] images (a replica's share of the global batch under a strategy).
      num_samples: S.
      seed: int32 [2] stateless seed of the step.
      batch_slice: None, or a `trainers.distribute.BatchSlice` (offset, global_size) placing x
        in the global batch. Every random number is then the one single-device training on the
        global batch uses for the same example (see `_replica_noise_terms`).

    Returns:
      dict with q (the posterior), z [S, B, D], params [S, B, H, W, C], log_px, log_pz, log_qz [S, B].
    """
    prior_seed, sample_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    q, prior = model.posterior_and_prior(x)
    if batch_slice is None:
        z = q.sample(num_samples, seed=sample_seed)                 # [S, B, D]
        log_pz = None
    else:
        z, log_pz = _replica_noise_terms(model, q, prior, num_samples, sample_seed, prior_seed,
                                         batch_slice)
    params = model.decoder(z)                                    # [S, B, H, W, C]
    log_px = model.likelihood.distribution(params).log_prob(x)   # [S, B]
    if log_pz is None:
        log_pz = prior_log_prob(model.prior, prior, z, seed=prior_seed)  # [S, B]
    log_qz = q.log_prob(z)                                       # [S, B]
    return dict(q=q, prior=prior, z=z, params=params, log_px=log_px, log_pz=log_pz, log_qz=log_qz)


def _replica_noise_terms(model, q, prior, num_samples, sample_seed, prior_seed, batch_slice):
    """z ~ q(z|x) and log p(z) for a replica with the noise of the global batch's rows.

    Stateless random ops are not sliceable: the numbers drawn for shape [S, B_global, D] in rows
    offset..offset+B are not those drawn for shape [S, B, D]. So the replica draws what
    single-device training draws for the whole global batch and keeps its own rows:

    * posterior: `MultivariateNormalDiag(loc, scale).sample(S, seed)` equals, bitwise,
      loc + scale * eps with eps the same call on a standard normal of the same shape (TFP
      samples the standard normal and applies scale then shift). The replica samples eps for
      [S, B_global, D] (S x B_global x D normals, negligible), slices its rows, and forms
      loc + scale * eps, so z and its reparameterisation gradient match single-device training.
    * prior: a prior with a stochastic bound (`log_prob_estimate`, the VHP's importance
      samples of ζ) draws its noise with the shape of z. The replica pads its z with zero rows
      to [S, B_global, D], evaluates the bound with the step's prior seed and keeps its rows.
      The padding rows are constants whose results are dropped (no gradient); the price is
      that each replica evaluates that prior on the global batch. Closed-form priors draw no
      noise and are evaluated on the local rows only.
    """
    offset, global_size = batch_slice
    loc, scale = q.loc, q.scale.diag                                                   # [B, D]
    local, dim = tf.shape(loc)[0], tf.shape(loc)[1]
    standard = tfd.MultivariateNormalDiag(loc=tf.zeros([global_size, dim], loc.dtype),
                                          scale_diag=tf.ones([global_size, dim], loc.dtype))
    eps = standard.sample(num_samples, seed=sample_seed)[:, offset:offset + local]   # [S, B, D]
    z = loc + scale * eps                                                               # [S, B, D]
    if getattr(model.prior, "log_prob_estimate", None) is None:
        return z, None                    # closed form: no noise, evaluated on the local rows
    padded = tf.pad(z, [[0, 0], [offset, global_size - offset - local], [0, 0]])     # [S, Bg, D]
    log_pz = prior_log_prob(model.prior, prior, padded, seed=prior_seed)              # [S, Bg]
    return z, log_pz[:, offset:offset + local]


def _constraint(model, x, params):
    """Per-example reconstruction error C (mean squared error per pixel), averaged over samples: [B]."""
    return tf.reduce_mean(model.likelihood.reconstruction_error(x, params), axis=0)


class Objective:
    """Base: `__call__(model, x, beta, seed, batch_slice=None) -> dict of [B] tensors` with keys
    loss, reconstruction (= -E log p(x|z)), kl, elbo (β = 1), constraint.

    `batch_slice` (a `trainers.distribute.BatchSlice`, given by the trainer under a
    distribution strategy with several replicas) places x in the global batch so that the
    replica draws the same noise as single-device training on the global batch."""

    def __init__(self, num_samples=1):
        self.num_samples = check_positive_int("num_samples", num_samples)

    def get_config(self):
        return {"num_samples": self.num_samples}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@keras.saving.register_keras_serializable(package="tfpriors")
class ELBO(Objective):
    """The β-weighted evidence lower bound with `num_samples` samples of z per example."""

    def __call__(self, model, x, beta, seed, batch_slice=None):
        t = _sample_terms(model, x, self.num_samples, seed, batch_slice)
        reconstruction = -tf.reduce_mean(t["log_px"], axis=0)                  # [B]
        if getattr(model.prior, "analytic_kl", False):
            kl = tfd.kl_divergence(t["q"], t["prior"])                         # [B]
        else:
            kl = tf.reduce_mean(t["log_qz"] - t["log_pz"], axis=0)              # [B]
        return dict(loss=reconstruction + beta * kl, reconstruction=reconstruction, kl=kl,
                    elbo=-reconstruction - kl, constraint=_constraint(model, x, t["params"]))


@keras.saving.register_keras_serializable(package="tfpriors")
class IWAE(Objective):
    """The importance-weighted bound with `num_samples` = K importance samples (Burda et al. 2016)."""

    def __init__(self, num_samples=5):
        super().__init__(num_samples)

    def __call__(self, model, x, beta, seed, batch_slice=None):
        t = _sample_terms(model, x, self.num_samples, seed, batch_slice)
        log_ratio = t["log_pz"] - t["log_qz"]                                  # [S, B]
        log_w = t["log_px"] + beta * log_ratio
        bound = tf.reduce_logsumexp(log_w, axis=0) - math.log(self.num_samples)  # [B]
        reconstruction = -tf.reduce_mean(t["log_px"], axis=0)
        kl = -tf.reduce_mean(log_ratio, axis=0)
        return dict(loss=-bound, reconstruction=reconstruction, kl=kl,
                    elbo=-reconstruction - kl, constraint=_constraint(model, x, t["params"]))


OBJECTIVES = {"elbo": ELBO, "iwae": IWAE}


def get_objective(name, num_samples=1):
    """Builds an objective by name: 'elbo' or 'iwae'."""
    if name not in OBJECTIVES:
        raise ValueError(f"Expected `objective` to be one of {sorted(OBJECTIVES)}. Received: {name!r}")
    return OBJECTIVES[name](num_samples=num_samples)
