"""The evidence lower bound per image, with an analytic KL where one exists.

    ELBO(x) = E_q(z|x)[log p(x|z)] - KL(q(z|x) || p(z))      (z: all latents)

KL is analytic when `model.analytic_kl` has a closed form (TFP registers one for the pair of
distributions: a standard normal prior and a one-level Gaussian posterior), else the
Monte-Carlo estimate E_q[log q(z|x) - log p(z)] with the same samples as the first term
(Kingma & Welling 2014, Eqs. 3 and 7). Every normalising constant is kept: nats per image.
"""

from tfpriors.evaluation._common import Estimate
from tfpriors.evaluation.log_likelihood import (DEFAULT_BATCH_SIZE, DEFAULT_CHUNK_SIZE,
                                                sampled_estimate)

__all__ = ["elbo"]


def estimate_from_statistics(stats, num_samples, info):
    """The ELBO Estimate from `posterior_sample_statistics` output."""
    analytic = "analytic_kl" in stats
    kl = stats["analytic_kl"] if analytic else stats["mean_log_qz"] - stats["mean_log_pz"]
    expected = stats["mean_log_px"]
    return Estimate(name="elbo", per_example=expected - kl,
                    details={"expected_log_likelihood": expected, "kl": kl},
                    info={"num_samples": num_samples,
                          "kl_estimate": "analytic" if analytic else "monte_carlo",
                          "units": "nats", **info})


def elbo(model, images, num_samples=1, chunk_size=DEFAULT_CHUNK_SIZE, batch_size=DEFAULT_BATCH_SIZE,
         seed=0, jit_compile=False):
    """ELBO per image, averaged over `num_samples` samples z ~ q(z|x).

    Args:
      model: a model with the latent interface of `trainers.latent_model`.
      images: array [N, H, W, C] with (H, W, C) = model.data_shape, finite values.
      num_samples: S samples per image (1 is the training estimate; more lowers the variance).
      chunk_size, batch_size, seed, jit_compile: as in `log_likelihood`; the samples are the
        first S samples that `log_likelihood` draws with the same seed.

    Returns:
      Estimate with per_example ELBO in nats, details "expected_log_likelihood"
      (E_q[log p(x|z)]) and "kl" (KL(q(z|x) || p(z))), info["kl_estimate"] = "analytic" or
      "monte_carlo".

    Raises:
      ValueError: on invalid settings or images (see `log_likelihood`).
    """
    return sampled_estimate(estimate_from_statistics, model, images, num_samples, chunk_size,
                            batch_size, seed, jit_compile, with_likelihood=True)
