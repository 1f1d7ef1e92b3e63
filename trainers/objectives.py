"""Training objectives: the S-sample ELBO and the K-sample IWAE bound, for any prior.

Both are written on the latent interface of `trainers.latent_model` (z below stands for all
latents, e.g. (z1, z2) in the HVAE) and return per-example terms [B]. Legend: S samples,
B batch, D code size, H W C image.

ELBO (β-weighted):   loss = -1/S sum_s log p(x|z_s) + β KL(q(z|x) || p(z)),  z_s ~ q(z|x)
    KL from `model.kl_divergence`: in closed form where TFP has one registered for the
    distributions, else the S-sample Monte-Carlo estimate 1/S sum_s [log q(z_s|x) - log p(z_s)].
IWAE (Burda et al. 2016):  loss = -log 1/K sum_k exp(log p(x|z_k) + β [log p(z_k) - log q(z_k|x)])
    which is the importance-weighted bound for β = 1.
"""

import math

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from tfpriors._validation import check_positive_int

tfd = tfp.distributions

__all__ = ["ELBO", "IWAE", "get_objective"]


def _sample_terms(model, x, num_samples, seed, batch_slice=None):
    """Draws the latents from q and returns the log-densities needed by both objectives.

    Written on the latent interface (`trainers.latent_model`), so it serves every model.

    Args:
      model: a LatentModel (VAE, HVAE).
      x: [B, H, W, C] images (a replica's share of the global batch under a strategy).
      num_samples: S.
      seed: int32 [2] stateless seed of the step.
      batch_slice: None, or a `trainers.distribute.BatchSlice` (offset, global_size) placing x
        in the global batch. Every random number is then the one single-device training on the
        global batch uses for the same example (see `_replica_noise`).

    Returns:
      dict with inference, sample (code [S, B, D], log_q), params [S, B, H, W, C],
      log_px, log_pz (log p(latents)), log_qz [S, B].
    """
    prior_seed, sample_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    inference = model.infer(x)
    local = tf.shape(x)[0]
    rows = local if batch_slice is None else batch_slice.global_size
    # MultivariateNormalDiag(0, 1).sample(S, seed) is the noise of q.sample(S, seed): TFP draws
    # it and applies q's bijector (scale, then shift), which is what sample_posterior does.
    standard = tfd.MultivariateNormalDiag(loc=tf.zeros([rows, model.noise_dim]),
                                          scale_diag=tf.ones([rows, model.noise_dim]))
    eps = standard.sample(num_samples, seed=sample_seed)                        # [S, rows, N]
    if batch_slice is not None:
        eps = eps[:, batch_slice.offset:batch_slice.offset + local]             # [S, B, N]
    sample = model.sample_posterior(inference, eps)
    if batch_slice is not None and model.stochastic_prior:
        log_pz = _replica_noise(model, inference, sample.code, prior_seed, batch_slice)
    else:
        log_pz = model.log_prior(inference, sample.code, seed=prior_seed, parts=sample.parts)
    params = model.likelihood_params(sample.code)                               # [S, B, H, W, C]
    log_px = model.likelihood.distribution(params).log_prob(x)                  # [S, B]
    return dict(inference=inference, sample=sample, params=params, log_px=log_px,
                log_pz=log_pz, log_qz=sample.log_q)


def _replica_noise(model, inference, code, prior_seed, batch_slice):
    """log p(latents) for a replica, with the prior noise of the global batch's rows.

    Stateless random ops are not sliceable: the numbers drawn for shape [S, B_global, D] in
    rows offset..offset+B are not those drawn for shape [S, B, D]. The posterior noise is
    therefore drawn for the global batch and sliced (`_sample_terms`). A prior with a
    stochastic bound (`log_prob_estimate`, the VHP's importance samples of ζ) draws its own
    noise with the shape of the code: the replica pads its code with zero rows to
    [S, B_global, D], evaluates the bound with the step's prior seed and keeps its rows. The
    padding rows are constants whose results are dropped (no gradient); the price is that each
    replica evaluates that prior on the global batch. Closed-form priors draw no noise and are
    evaluated on the local rows only.
    """
    offset, global_size = batch_slice
    local = tf.shape(code)[1]
    padded = tf.pad(code, [[0, 0], [offset, global_size - offset - local], [0, 0]])   # [S, Bg, D]
    log_pz = model.log_prior(inference, padded, seed=prior_seed)                      # [S, Bg]
    return log_pz[:, offset:offset + local]


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
        kl = model.kl_divergence(t["inference"], t["sample"], t["log_pz"])     # [B]
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
