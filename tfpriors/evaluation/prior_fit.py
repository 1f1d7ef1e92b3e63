"""How well the prior fits the aggregate posterior: E_q(z)[log p(z)] (LaDDer, Lin & Clark 2020).

LaDDer, Eq. (3) and Table 2: with the aggregate posterior q(z) = 1/N sum_n q(z|x_n),

    E_q(z)[log p(z)] = 1/N sum_n E_q(z|x_n)[log p(z)]
                    ~= 1/(N S) sum_n sum_s log p(z_{n,s}),   z_{n,s} ~ q(z|x_n)

LaDDer calls this the "cross-entropy" between the aggregate posterior and the prior and
reports it with this sign: higher is better, typically negative (e.g. -19.0 nats for a
standard normal prior on MNIST). It is the negative of the cross-entropy H(q(z), p(z)).
"""

from tfpriors.evaluation._common import Estimate
from tfpriors.evaluation.log_likelihood import (DEFAULT_BATCH_SIZE, DEFAULT_CHUNK_SIZE,
                                                sampled_estimate)

__all__ = ["prior_cross_entropy"]


def estimate_from_statistics(stats, num_samples, info):
    """The prior-fit Estimate from `posterior_sample_statistics` output."""
    return Estimate(name="prior_cross_entropy", per_example=stats["mean_log_pz"],
                    info={"num_samples": num_samples, "sign": "E_q(z)[log p(z)], higher is better",
                          "units": "nats", **info})


def prior_cross_entropy(model, images, num_samples=100, chunk_size=DEFAULT_CHUNK_SIZE,
                        batch_size=DEFAULT_BATCH_SIZE, seed=0, jit_compile=False):
    """E_q(z)[log p(z)] (LaDDer Table 2 sign: higher is better), one term per image.

    Only the encoder and the prior run (no decoder). The prior's log-density comes from
    `tfpriors.priors.prior_log_prob`: for a prior with only a stochastic lower bound on
    log p(z), the result is a lower bound too.

    Args:
      model: a model with the latent interface of `trainers.latent_model`.
      images: array [N, H, W, C], the x_n that define the aggregate posterior.
      num_samples: S samples z ~ q(z|x_n) per image.
      chunk_size, batch_size, seed, jit_compile: as in `log_likelihood` (same samples).

    Returns:
      Estimate whose per_example[n] = 1/S sum_s log p(z_{n,s}) and whose mean is
      E_q(z)[log p(z)] in nats.

    Raises:
      ValueError: on invalid settings or images (see `log_likelihood`).
    """
    return sampled_estimate(estimate_from_statistics, model, images, num_samples, chunk_size,
                            batch_size, seed, jit_compile, with_likelihood=False)
