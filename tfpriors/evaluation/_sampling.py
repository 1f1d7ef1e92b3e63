"""Streamed posterior sampling: the engine behind the IS log-likelihood, the ELBO and the prior fit.

For each image x_n, S samples z_{n,s} ~ q(z|x_n) (all latents, `model.sample_posterior` of the noise
eps_{n,s}; for one Gaussian z: mu_n + sigma_n * eps_{n,s}) are drawn in chunks
of C samples inside one graph loop (`tf.while_loop`), and only running per-example statistics
are kept, so peak memory depends on B * C (batch times chunk), not on S:

    log_w_{n,s} = log p(x_n|z_{n,s}) + log p(z_{n,s}) - log q(z_{n,s}|x_n)
    lse_w  = logsumexp_s log_w       (streamed: logaddexp of the chunks' logsumexps)
    lse_2w = logsumexp_s 2 log_w     (for the effective sample size)
    sums of log p(x|z), log p(z), log q(z|x)

Noise addressing. eps_{n,s} is a fixed function of (seed, n, s): Philox (the algorithm of
`tf.random.stateless_normal`) returns 4 normals per step of its 128-bit counter; the global
example index n shifts the high 64-bit word of the counter and the sample index s shifts
the low word by s * ceil(D/4). Results are therefore identical (up to float rounding of the
batched matmuls) for every chunk size and batch size, and the first S samples of a run with
S' > S samples are the samples of the run with S. This holds within one execution mode:
XLA (`jit_compile=True`) draws different (equally valid) numbers than the TF kernels.
A prior known only through a stochastic bound (`log_prob_estimate`) gets one seed per
(batch, chunk), so its results, and only its, change with chunk_size and batch_size.

Memory: the graph loop runs one chunk at a time (parallel_iterations=1); the measured peak
RSS is the same for S = 5000 and S = 50000.

Legend: S samples per image, C samples per chunk, B images per batch, D latents, H W Ch image.
"""

import math
import weakref

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfpriors.evaluation._common import padded_batches

tfd = tfp.distributions

__all__ = ["example_noise", "batch_noise", "chunk_layout", "chunk_log_weights",
           "posterior_sample_statistics"]

_PHILOX = tf.random.Algorithm.PHILOX.value
# One chunk in flight at a time: tf.while_loop's default (10) lets independent iterations run
# concurrently, which multiplies the peak memory by up to 10 without a speed-up on CPU.
_PARALLEL_ITERATIONS = 1


def example_noise(key, counter, example_index, first_sample, num_samples, latent_dim):
    """Standard-normal noise eps_{n,s} for samples s = first_sample .. first_sample + num_samples - 1.

    Args:
      key, counter: uint64 [1] and [2], from `tf.raw_ops.StatelessRandomGetKeyCounter(seed)`.
      example_index: int64 scalar n, the global index of the image.
      first_sample: int64 scalar, the index of the first sample.
      num_samples: int, the number of samples (static).
      latent_dim: int D (static).

    Returns:
      float32 [num_samples, D].
    """
    steps = (latent_dim + 3) // 4                                       # counter steps per sample
    low = tf.cast(tf.cast(first_sample, tf.int64) * steps, tf.uint64)
    high = tf.cast(tf.cast(example_index, tf.int64), tf.uint64)
    flat = tf.raw_ops.StatelessRandomNormalV2(
        shape=[num_samples * 4 * steps], key=key, counter=counter + tf.stack([low, high]),
        alg=_PHILOX)                                                    # [num_samples * 4 * steps]
    return tf.reshape(flat, [num_samples, 4 * steps])[:, :latent_dim]   # [num_samples, D]


def batch_noise(key, counter, first_index, first_sample, num_samples, batch_size, latent_dim):
    """Noise of a batch of consecutive examples: [C, B, D]."""
    first_index = tf.cast(first_index, tf.int64)
    per_example = [example_noise(key, counter, first_index + b, first_sample, num_samples, latent_dim)
                   for b in range(batch_size)]                          # B x [C, D]
    return tf.stack(per_example, axis=1)                                # [C, B, D]


def chunk_layout(num_samples, chunk_size):
    """Returns (num_chunks, samples per chunk): chunks of at most `chunk_size`, as even as possible.

    ceil(S / chunk_size) chunks of ceil(S / num_chunks) samples, so at most num_chunks - 1
    samples of the last chunk are drawn and masked out.
    """
    num_chunks = -(-num_samples // chunk_size)
    return num_chunks, -(-num_samples // num_chunks)


def _logaddexp(a, b):
    """log(exp(a) + exp(b)) elementwise, exact when both are -inf."""
    return tf.reduce_logsumexp(tf.stack([a, b]), axis=0)


def chunk_log_weights(model, x, inference, eps, prior_seed, chunk_index, first_sample,
                      sample_ids, num_samples, with_likelihood=True):
    """Importance log-weights of one chunk of C samples for a batch of B images.

        latents = model.sample_posterior(inference, eps)   (VAE: z = loc + scale * eps)
        log w = log p(x|latents) + log p(latents) - log q(latents|x)

    Samples whose index first_sample + sample_ids is >= num_samples get log w = -inf.
    log p(latents) is `model.log_prior` seeded with fold_in(prior_seed, chunk_index) (VHP: its bound).

    Returns:
      (log_w, log_px, log_pz, log_qz) each [C, B], and valid bool [C, 1]. log_px is zeros when
      `with_likelihood` is False.
    """
    sample = model.sample_posterior(inference, eps)                     # code [C, B, D]
    log_qz = sample.log_q                                               # [C, B]
    log_pz = model.log_prior(inference, sample.code,
                             seed=tf.random.experimental.stateless_fold_in(prior_seed, chunk_index),
                             parts=sample.parts)
    if with_likelihood:
        log_px = model.likelihood_distribution(sample.code).log_prob(x)   # [C, B]
    else:
        log_px = tf.zeros_like(log_qz)
    valid = (first_sample + sample_ids < num_samples)[:, None]          # [C, 1]
    log_w = tf.where(valid, log_px + log_pz - log_qz, -np.inf)          # [C, B]
    return log_w, log_px, log_pz, log_qz, valid


_STEPS = {}   # (id(model), settings) -> tf.function; entries are dropped when the model is freed


def _cached_step(model, *settings):
    """The compiled per-batch function of `model` and `settings`, traced once and reused."""
    key = (id(model),) + settings
    step = _STEPS.get(key)
    if step is None:
        step = _make_step(weakref.ref(model), *settings)
        _STEPS[key] = step
        weakref.finalize(model, _STEPS.pop, key, None)
    return step


def _make_step(model_ref, num_samples, chunk_size, batch_size, with_likelihood, jit_compile):
    """Builds the tf.function (x [B, H, W, Ch], first_index int64, seed int32 [2]) -> dict of [B].

    The function holds only a weak reference to the model (read when tracing), so that the
    cache does not keep models alive.
    """
    model = model_ref()
    num_chunks, chunk = chunk_layout(num_samples, chunk_size)
    noise_dim = int(model.noise_dim)
    shape = (batch_size,) + tuple(int(s) for s in model.data_shape)

    def step(x, first_index, seed):
        model = model_ref()
        noise_seed, prior_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        prior_seed = tf.random.experimental.stateless_fold_in(prior_seed, first_index)
        key, counter = tf.raw_ops.StatelessRandomGetKeyCounter(seed=noise_seed)
        inference = model.infer(x)                     # once per call, not per chunk
        sample_ids = tf.range(chunk, dtype=tf.int64)                    # [C]

        def body(c, lse_w, lse_2w, sum_px, sum_pz, sum_qz):
            first_sample = tf.cast(c, tf.int64) * chunk
            eps = batch_noise(key, counter, first_index, first_sample, chunk, batch_size,
                               noise_dim)                               # [C, B, N]
            log_w, log_px, log_pz, log_qz, valid = chunk_log_weights(
                model, x, inference, eps, prior_seed, c, first_sample, sample_ids,
                num_samples, with_likelihood)
            zero = tf.zeros_like(log_w)
            return (c + 1,
                    _logaddexp(lse_w, tf.reduce_logsumexp(log_w, axis=0)),
                    _logaddexp(lse_2w, tf.reduce_logsumexp(2.0 * log_w, axis=0)),
                    sum_px + tf.reduce_sum(tf.where(valid, log_px, zero), axis=0),
                    sum_pz + tf.reduce_sum(tf.where(valid, log_pz, zero), axis=0),
                    sum_qz + tf.reduce_sum(tf.where(valid, log_qz, zero), axis=0))

        neg_inf = tf.fill([batch_size], tf.constant(-np.inf, tf.float32))
        zeros = tf.zeros([batch_size])
        _, lse_w, lse_2w, sum_px, sum_pz, sum_qz = tf.while_loop(
            lambda c, *_: c < num_chunks, body,
            (tf.constant(0, tf.int32), neg_inf, neg_inf, zeros, zeros, zeros),
            parallel_iterations=_PARALLEL_ITERATIONS)
        out = {"lse_w": lse_w, "lse_2w": lse_2w, "sum_log_px": sum_px, "sum_log_pz": sum_pz,
               "sum_log_qz": sum_qz}
        analytic_kl = model.analytic_kl(inference)                      # [B] or None
        if analytic_kl is not None:
            out["analytic_kl"] = analytic_kl
        return out

    signature = [tf.TensorSpec(shape, tf.float32), tf.TensorSpec([], tf.int64),
                 tf.TensorSpec([2], tf.int32)]
    return tf.function(step, input_signature=signature, jit_compile=jit_compile)


def posterior_sample_statistics(model, images, num_samples, chunk_size, batch_size, seed,
                                with_likelihood=True, jit_compile=False):
    """Per-example statistics of S posterior samples, streamed in chunks (see the module docstring).

    Args:
      model: a model with the latent interface of `trainers.latent_model` (VAE, HVAE).
      images: checked float32 array [N, H, W, Ch].
      num_samples: S.
      chunk_size: C, samples per chunk (the peak memory grows with B * C).
      batch_size: B, images per call.
      seed: int32 [2] stateless seed.
      with_likelihood: run the decoder (False when only prior terms are needed).
      jit_compile: compile the per-batch function with XLA.

    Returns:
      dict of float64 numpy arrays [N]:
        log_mean_weight = log 1/S sum_s w_s (the importance-sampling estimate of log p(x)),
        log_ess = log of the effective sample size (sum_s w_s)^2 / sum_s w_s^2,
        mean_log_px, mean_log_pz, mean_log_qz = sample means of the three log-densities,
        analytic_kl = KL(q(z|x) || p(z)) in closed form, only if `model.analytic_kl` has one.
    """
    step = _cached_step(model, num_samples, chunk_size, min(batch_size, images.shape[0]),
                        bool(with_likelihood), bool(jit_compile))
    seed = tf.constant(seed, tf.int32)
    parts = []
    for start, batch, valid in padded_batches(images, batch_size):
        out = step(tf.constant(batch), tf.constant(start, tf.int64), seed)
        parts.append({k: v.numpy()[:valid].astype(np.float64) for k, v in out.items()})
    stats = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    log_s = math.log(num_samples)
    result = {"log_mean_weight": stats["lse_w"] - log_s,
              "log_ess": 2.0 * stats["lse_w"] - stats["lse_2w"],
              "mean_log_px": stats["sum_log_px"] / num_samples,
              "mean_log_pz": stats["sum_log_pz"] / num_samples,
              "mean_log_qz": stats["sum_log_qz"] / num_samples}
    if "analytic_kl" in stats:
        result["analytic_kl"] = stats["analytic_kl"]
    return result
