"""The two-level hierarchical Gaussian distribution of the variational hierarchical prior (VHP).

Klushyn et al. (2019), "Learning Hierarchical Priors in VAEs", Eq. (7):

    p(z) = integral N(z; mu(zeta), diag(sigma^2(zeta))) N(zeta; 0, I) dzeta

LaDDer (Lin & Clark 2020, Sec. 3.1) replaces N(zeta; 0, I) by a learned hyper prior p(zeta)
(a variational DP-GMM, or another hierarchical prior: one more rung); `hyper_distribution`
makes it a parameter, and N(0, I) is its default.

a continuous mixture of diagonal Gaussians. The marginal has no closed form; it is bounded
with a diagonal-Gaussian proposal q(zeta|z) = N(zeta; m(z), diag(s^2(z))) and K importance
samples (Eq. 8, Burda et al. 2016):

    log p(z) >= log 1/K sum_k p(z|zeta_k) N(zeta_k; 0, I) / q(zeta_k|z),   zeta_k ~ q(zeta|z)

which increases with K and is exact for any K when q(zeta|z) is the true posterior p(zeta|z).
Sampling is exact and ancestral (Eq. 13): zeta ~ N(0, I), then z ~ p(z|zeta).

Legend: K importance samples, N samples, D = dim z, M = dim zeta, `...` the batch of z.
"""

import math

import tensorflow as tf
import tensorflow_probability as tfp

from tfpriors._validation import check_positive_int

tfd = tfp.distributions

__all__ = ["HierarchicalGaussian"]

_LOG_2PI = math.log(2.0 * math.pi)


def _diag_normal_log_prob(x, loc, scale):
    """log N(x; loc, diag(scale^2)) summed over the last axis, keeping the normalising constant."""
    u = (x - loc) / scale
    return -0.5 * tf.reduce_sum(u * u + _LOG_2PI, axis=-1) - tf.reduce_sum(tf.math.log(scale), axis=-1)


def _standard_normal_log_prob(x):
    return -0.5 * tf.reduce_sum(x * x + _LOG_2PI, axis=-1)


class HierarchicalGaussian(tfd.Distribution):
    """p(z) = E_{zeta ~ N(0, I_M)} N(z; mu(zeta), diag(sigma^2(zeta))), batch shape [], event shape [D].

    Args:
      conditional_fn: callable zeta [..., M] -> (loc [..., D], scale [..., D]) of p(z|zeta).
      proposal_fn: callable z [..., D] -> (loc [..., M], scale [..., M]) of q(zeta|z).
      latent_dim: D.
      hyper_latent_dim: M.
      log_prob_num_samples: importance samples used by `log_prob` (see below).
      log_prob_chunk_size: `log_prob` evaluates the samples in chunks of this size (memory).
      log_prob_seed: int pair, the fixed stateless seed of `log_prob`.
      hyper_distribution: the hyper prior p(zeta), a tfd.Distribution with event shape [M];
        None: N(0, I_M). Sampling draws zeta from it.
      hyper_log_prob_fn: optional callable (zeta [..., M], seed) -> [...] log p(zeta) (or a
        stochastic lower bound on it, for a hyper prior that is itself hierarchical); None uses
        `hyper_distribution.log_prob`.
      validate_args, allow_nan_stats, name: as for every tfd.Distribution.

    `log_prob` has no closed form. It returns the importance-weighted estimate
    `importance_weighted_log_prob(z, log_prob_num_samples, log_prob_seed)`: a deterministic
    function of z (fixed seed) that is a lower bound on log p(z) in expectation and converges
    to it as the number of samples grows. Training and evaluation use the explicitly seeded
    `importance_weighted_log_prob` / `elbo_log_prob` instead (through the prior layer).

    Sampling is reparameterised: z = mu(zeta) + sigma(zeta) * eps with zeta = eps', so
    gradients reach the parameters of `conditional_fn`.
    """

    def __init__(self, conditional_fn, proposal_fn, latent_dim, hyper_latent_dim,
                 log_prob_num_samples=128, log_prob_chunk_size=16, log_prob_seed=(0, 0),
                 hyper_distribution=None, hyper_log_prob_fn=None, validate_args=False, allow_nan_stats=True, name="HierarchicalGaussian"):
        parameters = dict(locals())
        if not callable(conditional_fn) or not callable(proposal_fn):
            raise ValueError("Expected `conditional_fn` and `proposal_fn` to be callables. Received: "
                             f"{type(conditional_fn).__name__} and {type(proposal_fn).__name__}")
        self._conditional_fn = conditional_fn
        self._proposal_fn = proposal_fn
        self._latent_dim = check_positive_int("latent_dim", latent_dim)
        self._hyper_latent_dim = check_positive_int("hyper_latent_dim", hyper_latent_dim)
        self._log_prob_num_samples = check_positive_int("log_prob_num_samples", log_prob_num_samples)
        self._log_prob_chunk_size = check_positive_int("log_prob_chunk_size", log_prob_chunk_size)
        seed = tuple(int(s) for s in log_prob_seed)
        if len(seed) != 2:
            raise ValueError(f"Expected `log_prob_seed` to be a pair of ints. Received: "
                             f"log_prob_seed={log_prob_seed!r}")
        self._log_prob_seed = seed
        if hyper_log_prob_fn is not None and hyper_distribution is None:
            raise ValueError("Expected `hyper_distribution` with `hyper_log_prob_fn` (sampling "
                             "draws zeta from it). Received: hyper_distribution=None")
        if hyper_distribution is not None and hyper_log_prob_fn is None:
            hyper_log_prob_fn = lambda zeta, seed: hyper_distribution.log_prob(zeta)  # noqa: E731
        self._hyper_distribution = hyper_distribution
        self._hyper_log_prob_fn = hyper_log_prob_fn
        super().__init__(dtype=tf.float32, reparameterization_type=tfd.FULLY_REPARAMETERIZED,
                         validate_args=validate_args, allow_nan_stats=allow_nan_stats,
                         parameters=parameters, name=name)

    # ------------------------------------------------------------------ properties
    @property
    def conditional_fn(self):
        """zeta [..., M] -> (loc, scale) [..., D] of p(z|zeta)."""
        return self._conditional_fn

    @property
    def proposal_fn(self):
        """z [..., D] -> (loc, scale) [..., M] of q(zeta|z)."""
        return self._proposal_fn

    @property
    def latent_dim(self):
        return self._latent_dim

    @property
    def hyper_distribution(self):
        """p(zeta), or None for N(0, I)."""
        return self._hyper_distribution

    @property
    def hyper_latent_dim(self):
        return self._hyper_latent_dim

    @classmethod
    def _parameter_properties(cls, dtype, num_classes=None):
        return {}   # the parameters are callables, not tensors: no batch shape to infer

    def _batch_shape(self):
        return tf.TensorShape([])

    def _batch_shape_tensor(self):
        return tf.constant([], tf.int32)

    def _event_shape(self):
        return tf.TensorShape([self._latent_dim])

    def _event_shape_tensor(self):
        return tf.constant([self._latent_dim], tf.int32)

    # ------------------------------------------------------------------ sampling (Eq. 13)
    def sample_with_hyper_latents(self, sample_shape=(), seed=None):
        """Ancestral samples (z, zeta): zeta ~ p(zeta) (N(0, I_M) by default), z ~ p(z|zeta)  (Eq. 13).

        Args:
          sample_shape: int or shape S.
          seed: stateless seed (int32 [2]) or anything `tfp.random.sanitize_seed` accepts.

        Returns:
          z [*S, D] and zeta [*S, M].
        """
        shape = tf.reshape(tf.convert_to_tensor(sample_shape, tf.int32), [-1])
        zeta_seed, z_seed = tfp.random.split_seed(seed, n=2, salt="HierarchicalGaussian")
        if self._hyper_distribution is None:
            zeta = tf.random.stateless_normal(
                tf.concat([shape, [self._hyper_latent_dim]], 0), seed=zeta_seed)  # [*S, M]
        else:
            zeta = self._hyper_distribution.sample(shape, seed=zeta_seed)        # [*S, M]
        loc, scale = self._conditional_fn(zeta)                                 # [*S, D] each
        eps = tf.random.stateless_normal(tf.shape(loc), seed=z_seed)             # [*S, D]
        return loc + scale * eps, zeta

    def _sample_n(self, n, seed=None):
        z, _ = self.sample_with_hyper_latents([n], seed=seed)
        return z                                                                # [n, D]

    # ------------------------------------------------------------------ bounds on log p(z) (Eq. 8)
    def _log_weights(self, z, num_samples, seed):
        """log w_k = log p(z|zeta_k) + log p(zeta_k) - log q(zeta_k|z), zeta_k ~ q: [K, ...]."""
        z = tf.convert_to_tensor(z, tf.float32)
        loc, scale = self._proposal_fn(z)                                       # [..., M] each
        shape = tf.concat([[num_samples], tf.shape(loc)], 0)
        seed = tfp.random.sanitize_seed(seed, salt="HierarchicalGaussian.bound")
        eps = tf.random.stateless_normal(shape, seed=seed)                      # [K, ..., M]
        zeta = loc + scale * eps                                                # [K, ..., M]
        log_q = _diag_normal_log_prob(zeta, loc, scale)                         # [K, ...]
        if self._hyper_log_prob_fn is None:
            log_p_zeta = _standard_normal_log_prob(zeta)                        # [K, ...]
        else:
            log_p_zeta = self._hyper_log_prob_fn(
                zeta, tfp.random.split_seed(seed, n=1, salt="HierarchicalGaussian.hyper")[0])
        cond_loc, cond_scale = self._conditional_fn(zeta)                       # [K, ..., D]
        log_p_z_given_zeta = _diag_normal_log_prob(z, cond_loc, cond_scale)     # [K, ...]
        return log_p_z_given_zeta + log_p_zeta - log_q

    def importance_weighted_log_prob(self, z, num_samples, seed=None):
        """The K-sample importance-weighted lower bound on log p(z) (Eq. 8).

            log 1/K sum_k p(z|zeta_k) N(zeta_k; 0, I) / q(zeta_k|z),   zeta_k ~ q(zeta|z)

        Args:
          z: latents [..., D].
          num_samples: K >= 1.
          seed: int32 [2] stateless seed (None draws a random one).

        Returns:
          [...] bounds in nats; E[bound] increases with K towards log p(z).

        Raises:
          ValueError: if `num_samples` is not a positive int.
        """
        k = check_positive_int("num_samples", num_samples)
        log_w = self._log_weights(z, k, seed)                                   # [K, ...]
        return tf.reduce_logsumexp(log_w, axis=0) - math.log(k)

    def elbo_log_prob(self, z, num_samples=1, seed=None):
        """The evidence lower bound on log p(z), averaged over K samples (App. B.4 ablation).

            1/K sum_k [log p(z|zeta_k) + log N(zeta_k; 0, I) - log q(zeta_k|z)],  zeta_k ~ q(zeta|z)

        Args, Returns and Raises: as `importance_weighted_log_prob`. Equal to log p(z) for any K
        when q is the true posterior; otherwise below the K-sample IW bound.
        """
        k = check_positive_int("num_samples", num_samples)
        return tf.reduce_mean(self._log_weights(z, k, seed), axis=0)

    def _log_prob(self, z):
        k, chunk = self._log_prob_num_samples, min(self._log_prob_chunk_size, self._log_prob_num_samples)
        num_chunks = -(-k // chunk)
        base_seed = tf.constant(self._log_prob_seed, tf.int32)
        z = tf.convert_to_tensor(z, tf.float32)
        ids = tf.range(chunk)

        def body(c, acc):
            log_w = self._log_weights(z, chunk, tf.random.experimental.stateless_fold_in(base_seed, c))
            valid = tf.reshape(c * chunk + ids < k,
                               tf.concat([[chunk], tf.ones([tf.rank(z) - 1], tf.int32)], 0))
            log_w = tf.where(valid, log_w, -float("inf"))                      # [C, ...]
            return c + 1, tf.reduce_logsumexp(tf.stack([acc, tf.reduce_logsumexp(log_w, 0)]), 0)

        acc = tf.fill(tf.shape(z)[:-1], tf.constant(-float("inf"), tf.float32))
        _, acc = tf.while_loop(lambda c, _: c < num_chunks, body, (tf.constant(0), acc))
        return acc - math.log(k)
