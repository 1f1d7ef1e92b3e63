"""KL divergence per latent dimension, averaged over the data.

For a diagonal Gaussian posterior q(z|x) = prod_d N(z_d; m_d, s_d^2) the per-dimension term is

    KL_d = 1/N sum_n KL( q(z_d|x_n) || r_d )

with the reference r_d chosen from the prior distribution p(z):

  * p(z) a MultivariateNormalDiag N(mu, diag(sigma^2)) (e.g. the standard normal prior):
    r_d = N(mu_d, sigma_d^2), the prior's marginal, and KL_d is the closed form
        log(sigma_d / s_d) + (s_d^2 + (m_d - mu_d)^2) / (2 sigma_d^2) - 1/2.
    The KL then factorises: sum_d KL_d = KL(q(z|x) || p(z)).
  * p(z) a MixtureSameFamily of MultivariateNormalDiag (MoG prior, VampPrior):
    r_d = p_d(z_d) = sum_k w_k N(z_d; mu_kd, sigma_kd^2), the prior's exact 1-D marginal.
        KL_d = -H[q(z_d|x)] - E_q[log p_d(z_d)]
    with the entropy H = 1/2 log(2 pi e s_d^2) in closed form and the expectation by
    Monte Carlo (`num_samples` samples per image). The prior does not factorise, so
    sum_d KL_d differs from KL(q(z|x) || p(z)) in general.
  * any other prior: r_d = N(0, 1) (closed form), so the values measure how far each
    dimension moves from an uninformative reference.
"""

import dataclasses
import math

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfpriors._validation import check_positive_int
from tfpriors.evaluation._common import check_images, check_seed
from tfpriors.evaluation._sampling import batch_noise

tfd = tfp.distributions

__all__ = ["kl_per_dimension", "KLPerDimension"]


@dataclasses.dataclass(frozen=True)
class KLPerDimension:
    """Result of `kl_per_dimension`.

    Attributes:
      per_dimension: float64 [D], KL_d averaged over the images, nats.
      per_example: float64 [N, D].
      reference: "prior_marginal_gaussian", "prior_marginal_mixture" or "standard_normal".
      num_samples: Monte-Carlo samples per image (0 when the closed form was used).
    """

    per_dimension: np.ndarray
    per_example: np.ndarray
    reference: str
    num_samples: int

    @property
    def total(self):
        """sum_d KL_d, a Python float."""
        return float(np.sum(self.per_dimension))

    def to_dict(self):
        """JSON-serialisable summary."""
        return {"total": self.total, "reference": self.reference, "num_samples": int(self.num_samples),
                "units": "nats", "per_dimension": [float(v) for v in self.per_dimension]}


def _gaussian_kl(m, s, mu, sigma):
    """Elementwise KL(N(m, s^2) || N(mu, sigma^2))."""
    return tf.math.log(sigma / s) + (tf.square(s) + tf.square(m - mu)) / (2.0 * tf.square(sigma)) - 0.5


def _is_diagonal_mixture(prior):
    return (isinstance(prior, tfd.MixtureSameFamily)
            and isinstance(prior.components_distribution, tfd.MultivariateNormalDiag)
            and prior.batch_shape.rank == 0)


def _mixture_marginal_kl(loc, scale, eps, prior):
    """KL(q(z_d|x) || p_d) per image and dimension, [B, D], from noise eps [S, B, D]."""
    comps = prior.components_distribution
    log_w = tf.math.log_softmax(prior.mixture_distribution.logits_parameter())       # [K]
    z = loc + scale * eps                                                             # [S, B, D]
    log_comp = tfd.Normal(comps.loc, comps.stddev()).log_prob(z[..., None, :])        # [S, B, K, D]
    log_marginal = tf.reduce_logsumexp(log_comp + log_w[:, None], axis=-2)           # [S, B, D]
    entropy = 0.5 * math.log(2.0 * math.pi * math.e) + tf.math.log(scale)            # [B, D]
    return -entropy - tf.reduce_mean(log_marginal, axis=0)                            # [B, D]


def kl_per_dimension(model, images, num_samples=10, batch_size=32, seed=0):
    """KL(q(z_d|x) || r_d) per latent dimension d, averaged over `images` (see module docstring).

    Args:
      model: a model with `posterior(x)` (MultivariateNormalDiag) and `prior_distribution()`.
      images: array [N, H, W, C] with (H, W, C) = model.data_shape, finite values.
      num_samples: Monte-Carlo samples per image, used only for a mixture prior.
      batch_size: images per call; a mixture prior with K components holds
        [num_samples, batch_size, K, D] floats.
      seed: int in [0, 2**31); the samples are those of `log_likelihood` with the same seed.

    Returns:
      KLPerDimension with per_dimension [D] (nats), per_example [N, D] and the reference used.

    Raises:
      ValueError: on invalid settings, wrong image shape or NaN/inf values.
    """
    num_samples = check_positive_int("num_samples", num_samples)
    batch_size = check_positive_int("batch_size", batch_size)
    seed_pair = check_seed(seed)
    images = check_images(model, images)
    prior = model.prior_distribution()
    if isinstance(prior, tfd.MultivariateNormalDiag):
        reference = "prior_marginal_gaussian"
    elif _is_diagonal_mixture(prior):
        reference = "prior_marginal_mixture"
        noise_seed = tf.unstack(tf.random.experimental.stateless_split(tf.constant(seed_pair), 2))[0]
        key, counter = tf.raw_ops.StatelessRandomGetKeyCounter(seed=noise_seed)
    else:
        reference = "standard_normal"
    latent_dim = int(prior.event_shape[-1])
    rows = []
    for start in range(0, images.shape[0], batch_size):
        x = tf.constant(images[start:start + batch_size])
        q = model.posterior(x)
        if not isinstance(q, tfd.MultivariateNormalDiag):
            raise ValueError("Expected a diagonal-Gaussian posterior q(z|x) for the KL per dimension. "
                             f"Received: {type(q).__name__} (e.g. the CP-VAE's mixture over c)")
        m, s = q.loc, q.stddev()                                                      # [B, D]
        if reference == "prior_marginal_gaussian":
            kl = _gaussian_kl(m, s, prior.loc, prior.stddev())
        elif reference == "standard_normal":
            kl = _gaussian_kl(m, s, 0.0, 1.0)
        else:
            eps = batch_noise(key, counter, start, 0, num_samples, int(x.shape[0]), latent_dim)
            kl = _mixture_marginal_kl(m, s, eps, prior)
        rows.append(kl.numpy().astype(np.float64))
    per_example = np.concatenate(rows)                                                # [N, D]
    return KLPerDimension(per_dimension=per_example.mean(axis=0), per_example=per_example,
                          reference=reference,
                          num_samples=num_samples if reference == "prior_marginal_mixture" else 0)
