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


def _sample_terms(model, x, num_samples, seed):
    """Draws z ~ q(z|x) and returns the log-densities needed by both objectives.

    Returns:
      dict with q (the posterior), z [S, B, D], params [S, B, H, W, C], log_px, log_pz, log_qz [S, B].
    """
    prior_seed, sample_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    q, prior = model.posterior_and_prior(x)
    z = q.sample(num_samples, seed=sample_seed)                 # [S, B, D]
    params = model.decoder(z)                                    # [S, B, H, W, C]
    log_px = model.likelihood.distribution(params).log_prob(x)   # [S, B]
    log_pz = prior_log_prob(model.prior, prior, z, seed=prior_seed)  # [S, B]
    log_qz = q.log_prob(z)                                       # [S, B]
    return dict(q=q, prior=prior, z=z, params=params, log_px=log_px, log_pz=log_pz, log_qz=log_qz)


def _constraint(model, x, params):
    """Per-example reconstruction error C (mean squared error per pixel), averaged over samples: [B]."""
    return tf.reduce_mean(model.likelihood.reconstruction_error(x, params), axis=0)


class Objective:
    """Base: `__call__(model, x, beta, seed) -> dict of [B] tensors` with keys
    loss, reconstruction (= -E log p(x|z)), kl, elbo (β = 1), constraint."""

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

    def __call__(self, model, x, beta, seed):
        t = _sample_terms(model, x, self.num_samples, seed)
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

    def __call__(self, model, x, beta, seed):
        t = _sample_terms(model, x, self.num_samples, seed)
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
