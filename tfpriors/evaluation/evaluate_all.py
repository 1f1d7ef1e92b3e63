"""Every evaluation metric of a model on one image set, as a JSON-serialisable dict.

The IS log-likelihood, the ELBO and the prior fit E_q(z)[log p(z)] come from one streamed
pass over the same `num_samples` posterior samples per image (the ELBO and the prior fit
are then S-sample averages, with lower variance than one-sample estimates). Reconstruction
error, active units and the KL per dimension are computed from the posterior means and
variances.
"""

import time

import tensorflow_probability as tfp

from tfpriors._validation import check_positive_float, check_positive_int
from tfpriors.evaluation._common import check_images, check_seed
from tfpriors.evaluation._sampling import posterior_sample_statistics
from tfpriors.evaluation.active_units import active_units
from tfpriors.evaluation.elbo import estimate_from_statistics as elbo_from_statistics
from tfpriors.evaluation.kl_per_dimension import kl_per_dimension
from tfpriors.evaluation.log_likelihood import (DEFAULT_BATCH_SIZE, DEFAULT_CHUNK_SIZE,
                                                check_sampling_args)
from tfpriors.evaluation.log_likelihood import estimate_from_statistics as ll_from_statistics
from tfpriors.evaluation.prior_fit import estimate_from_statistics as prior_fit_from_statistics
from tfpriors.evaluation.reconstruction import reconstruction_error

tfd = tfp.distributions

__all__ = ["evaluate_all"]


def evaluate_all(model, images, num_samples=5000, chunk_size=DEFAULT_CHUNK_SIZE,
                 batch_size=DEFAULT_BATCH_SIZE, seed=0, jit_compile=False,
                 active_units_threshold=0.01, kl_num_samples=10, include_per_example=False):
    """Evaluates `model` on `images` with every metric of `tfpriors.evaluation`.

    Args:
      model: a model with the latent interface of `trainers.latent_model`.
      images: array [N, H, W, C] (N >= 2 for the active units), finite values.
      num_samples: importance samples per image, shared by the log-likelihood, ELBO and
        prior-fit estimates (5000 as in the VampPrior paper).
      chunk_size, batch_size, seed, jit_compile: as in `log_likelihood`.
      active_units_threshold: the variance threshold of `active_units`.
      kl_num_samples: Monte-Carlo samples of `kl_per_dimension` (mixture priors only).
      include_per_example: also list per-image values.

    Returns:
      dict with keys "num_examples", "log_likelihood", "elbo", "prior_cross_entropy",
      "reconstruction_error", "active_units", "kl_per_dimension" (each a dict, values in
      nats) and "seconds"; only Python scalars, strings and lists, so `json.dumps` works.

    Raises:
      ValueError: on invalid settings, wrong image shape or NaN/inf values.
    """
    num_samples, chunk_size, batch_size = check_sampling_args(num_samples, chunk_size, batch_size)
    seed_pair = check_seed(seed)
    check_positive_float("active_units_threshold", active_units_threshold)
    check_positive_int("kl_num_samples", kl_num_samples)
    images = check_images(model, images, min_examples=2)
    start = time.perf_counter()
    stats = posterior_sample_statistics(model, images, num_samples, chunk_size, batch_size,
                                        seed_pair, with_likelihood=True, jit_compile=jit_compile)
    sampling_seconds = time.perf_counter() - start
    info = {"seed": seed}
    ll_info = {"chunk_size": chunk_size, "batch_size": batch_size, "jit_compile": bool(jit_compile),
               **info}
    estimates = {
        "log_likelihood": ll_from_statistics(stats, num_samples, ll_info),
        "elbo": elbo_from_statistics(stats, num_samples, info),
        "prior_cross_entropy": prior_fit_from_statistics(stats, num_samples, info),
        "reconstruction_error": reconstruction_error(model, images),
    }
    result = {"num_examples": int(images.shape[0])}
    result.update({name: est.to_dict(include_per_example) for name, est in estimates.items()})
    result["active_units"] = active_units(model, images, threshold=active_units_threshold).to_dict()
    if isinstance(model.posterior(images[:1]), tfd.MultivariateNormalDiag):
        result["kl_per_dimension"] = kl_per_dimension(model, images, num_samples=kl_num_samples,
                                                      seed=seed).to_dict()
    else:   # a posterior that is a mixture over a discrete latent (CP-VAE) has no per-dimension KL
        result["kl_per_dimension"] = {"skipped": "the posterior q(z|x) is not a diagonal Gaussian"}
    result["seconds"] = {"sampling": sampling_seconds, "total": time.perf_counter() - start}
    return result
