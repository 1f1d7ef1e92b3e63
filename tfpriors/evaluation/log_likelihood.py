"""Marginal log-likelihood log p(x) by importance sampling, in bounded memory.

Burda et al. (2016), Sec. 5 and Appendix; Tomczak & Welling (2018), Sec. 4 ("the
log-likelihood was estimated using importance sampling with 5000 samples"):

    log p(x) ~= log 1/S sum_{s=1..S} p(x|z_s) p(z_s) / q(z_s|x),   z_s ~ q(z|x)

The estimate is consistent (it converges to log p(x) as S grows) and, by Jensen's inequality,
a stochastic lower bound for finite S. The S samples are drawn in chunks inside one graph
loop and combined with a streamed log-sum-exp, so the peak memory depends on
batch_size * chunk_size and not on S (see `tfpriors.evaluation._sampling`).

`log_likelihood` evaluates a numpy array in fixed-size batches; `log_likelihood_graph` is the
same estimate as pure graph ops for a batch of any size and a run-time S (the serving
signature `log_likelihood` of `tfpriors.export` is built on it).
"""

import time

import numpy as np
import tensorflow as tf

from tfpriors._validation import check_positive_int
from tfpriors.evaluation._common import Estimate, check_images, check_seed
from tfpriors.evaluation._sampling import (_logaddexp, chunk_log_weights, example_noise,
                                          posterior_sample_statistics)

__all__ = ["log_likelihood", "log_likelihood_graph", "DEFAULT_CHUNK_SIZE", "DEFAULT_BATCH_SIZE"]

# chunk * batch = 1000 rows per decoder call: as fast as larger blocks on a 2-core CPU while
# the [rows, K, D] intermediates of tfp's MixtureSameFamily.log_prob stay near 80 MB for
# K = 500. Measured on the gated 784-300-300-40 VampPrior model (K = 500), S = 5000:
# 2.3 images/s (5.9 with jit_compile) and a peak RSS of ~1.0 GB, flat in S.
DEFAULT_CHUNK_SIZE = 250
DEFAULT_BATCH_SIZE = 4


def check_sampling_args(num_samples, chunk_size, batch_size):
    """Validates the sampling settings shared by the IS estimate, the ELBO and the prior fit."""
    return (check_positive_int("num_samples", num_samples), check_positive_int("chunk_size", chunk_size),
            check_positive_int("batch_size", batch_size))


def estimate_from_statistics(stats, num_samples, info):
    """The log-likelihood Estimate from `posterior_sample_statistics` output."""
    return Estimate(name="log_likelihood", per_example=stats["log_mean_weight"],
                    details={"log_effective_sample_size": stats["log_ess"]},
                    info={"num_samples": num_samples, "units": "nats", **info})


def log_likelihood(model, images, num_samples=5000, chunk_size=DEFAULT_CHUNK_SIZE,
                   batch_size=DEFAULT_BATCH_SIZE, seed=0, jit_compile=False):
    """Importance-sampling estimate of log p(x) per image, with q(z|x) as the proposal.

    Args:
      model: a model with the latent interface of `trainers.latent_model` (VAE, HVAE). The
        prior's log-density comes from `model.log_prior` (a prior's own stochastic bound where
        it has one).
      images: array [N, H, W, C] with (H, W, C) = model.data_shape, finite values.
      num_samples: S, importance samples per image (5000 in the VampPrior paper).
      chunk_size: samples per chunk; peak memory grows with chunk_size * batch_size.
      batch_size: images per compiled call.
      seed: int in [0, 2**31). The noise of sample s of image n is a fixed function of
        (seed, n, s), so results do not depend on chunk_size or batch_size.
      jit_compile: compile with XLA: a few seconds of compilation, then about 2.5x faster for
        mixture priors on a 2-core CPU (XLA fuses MixtureSameFamily.log_prob); XLA draws
        other (equally valid) random numbers than the TF kernels.

    Returns:
      Estimate with per_example log p(x_n) in nats (float64 [N]), `mean`, `std_error`,
      details["log_effective_sample_size"] = log (sum_s w_s)^2 / sum_s w_s^2 per image
      (a diagnostic of the proposal: near log S is good, near 0 means one sample dominates),
      and info with the settings and the wall time.

    Raises:
      ValueError: if num_samples, chunk_size or batch_size is not a positive int, if seed is
        not an int in [0, 2**31), or if images have the wrong shape or NaN/inf values.
    """
    return sampled_estimate(estimate_from_statistics, model, images, num_samples, chunk_size,
                            batch_size, seed, jit_compile, with_likelihood=True)


def sampled_estimate(estimate_fn, model, images, num_samples, chunk_size, batch_size, seed,
                     jit_compile, with_likelihood):
    """Validates the arguments, streams the posterior samples and turns their statistics into an
    Estimate with `estimate_fn(stats, num_samples, info)` (shared by the sampled estimators)."""
    num_samples, chunk_size, batch_size = check_sampling_args(num_samples, chunk_size, batch_size)
    seed_pair = check_seed(seed)
    images = check_images(model, images)
    start = time.perf_counter()
    stats = posterior_sample_statistics(model, images, num_samples, chunk_size, batch_size,
                                        seed_pair, with_likelihood=with_likelihood,
                                        jit_compile=jit_compile)
    info = {"chunk_size": chunk_size, "batch_size": batch_size, "seed": seed,
            "jit_compile": bool(jit_compile), "seconds": time.perf_counter() - start}
    return estimate_fn(stats, num_samples, info)


def log_likelihood_graph(model, images, num_samples, seed, chunk_size=DEFAULT_CHUNK_SIZE):
    """The importance-sampling estimate of log p(x) as graph ops: any batch size, run-time S.

        log p(x_n) ~= logsumexp_s log w_{n,s} - log S,
        log w_{n,s} = log p(x_n|z_{n,s}) + log p(z_{n,s}) - log q(z_{n,s}|x_n),
        z_{n,s} = model.sample_posterior(eps_{n,s})  ~  q(z|x_n)   (all latents)

    The S samples are drawn in ceil(S / C) chunks of C = chunk_size inside a `tf.while_loop`
    that keeps only the running log-sum-exp (lse <- logaddexp(lse, logsumexp over the chunk)),
    so the peak memory grows with B * C and not with S; samples past S in the last chunk are
    masked with log w = -inf. log p(z) comes from `tfpriors.priors.prior_log_prob` (VHP: the
    prior's own importance-weighted bound, with one seed per chunk).

    The noise is addressed like `log_likelihood`'s: eps_{n,s} is a fixed function of (seed, n, s)
    with n the row of `images`. With seed = [s, 0] the result therefore equals
    `log_likelihood(model, images, S, chunk_size=C, batch_size=B, seed=s)` up to float rounding,
    for every chunk size when log p(z) has a closed form, and for a stochastic prior bound when
    both use the same chunks (S a multiple of C).

    Args:
      model: a model with the latent interface of `trainers.latent_model`.
      images: float32 [B, H, W, C] (B may be unknown when tracing; the values are not checked).
      num_samples: S >= 1, a Python int or an int32 scalar tensor.
      seed: int32 [2] stateless seed.
      chunk_size: C, samples per loop iteration (a Python int).

    Returns:
      float32 [B], the estimates in nats.

    Raises:
      ValueError: if `chunk_size` is not a positive int.
    """
    chunk = check_positive_int("chunk_size", chunk_size)
    noise_dim = int(model.noise_dim)
    images = tf.convert_to_tensor(images, tf.float32)
    num_samples = tf.convert_to_tensor(num_samples, tf.int32)
    # The seed derivation of `_sampling`'s per-batch step with first_index = 0.
    noise_seed, prior_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    prior_seed = tf.random.experimental.stateless_fold_in(prior_seed, tf.constant(0, tf.int64))
    key, counter = tf.raw_ops.StatelessRandomGetKeyCounter(seed=noise_seed)
    inference = model.infer(images)
    example_ids = tf.range(tf.shape(images, out_type=tf.int64)[0])      # [B]
    sample_ids = tf.range(chunk, dtype=tf.int64)                        # [C]
    total = tf.cast(num_samples, tf.int64)

    def noise(first_sample):
        per_example = tf.map_fn(
            lambda n: example_noise(key, counter, n, first_sample, chunk, noise_dim), example_ids,
            fn_output_signature=tf.TensorSpec([chunk, noise_dim], tf.float32))   # [B, C, N]
        return tf.transpose(per_example, [1, 0, 2])                     # [C, B, D]

    def body(c, lse):
        first_sample = tf.cast(c, tf.int64) * chunk
        log_w = chunk_log_weights(model, images, inference, noise(first_sample), prior_seed, c,
                                  first_sample, sample_ids, total)[0]   # [C, B]
        return c + 1, _logaddexp(lse, tf.reduce_logsumexp(log_w, axis=0))

    num_chunks = (num_samples + chunk - 1) // chunk
    lse = tf.fill(tf.shape(example_ids), tf.constant(-np.inf, tf.float32))   # [B]
    _, lse = tf.while_loop(lambda c, _: c < num_chunks, body, (tf.constant(0, tf.int32), lse),
                           parallel_iterations=1)   # one chunk in flight: bounded memory
    return lse - tf.math.log(tf.cast(num_samples, tf.float32))
