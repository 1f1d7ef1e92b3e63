"""Evaluation of any model with the latent interface (`trainers.latent_model`), written once for
all priors and models.

All values are in nats and keep every normalising constant:

- `log_likelihood`: importance-sampling estimate of log p(x) (5000 samples, bounded memory).
- `elbo`: the evidence lower bound (analytic KL where it exists).
- `prior_cross_entropy`: E_q(z)[log p(z)], the prior's fit to the aggregate posterior (LaDDer).
- `reconstruction_error`: per-pixel MSE and NLL of decode(encode(x)).
- `active_units`: Burda et al.'s count of latent dimensions in use.
- `kl_per_dimension`: KL(q(z_d|x) || p_d) per dimension.
- `evaluate_all`: all of the above as a JSON-serialisable dict.
- `fit_prior_to_encodings` / `encodings_log_prior`: a prior fitted alone to a frozen VAE's
  posteriors and its E_q(z)[log p(z)] on held-out posteriors (LaDDer's Table 2 protocol).
- `cluster_metrics` / `assignment_metrics`: Hungarian-matched and many-to-one accuracy, NMI and
  ARI of a discrete latent (CP-VAE) or of any cluster assignments.
"""

from tfpriors.evaluation._common import Estimate
from tfpriors.evaluation.active_units import ActiveUnits, active_units
from tfpriors.evaluation.clustering import (assignment_metrics, cluster_accuracy, cluster_metrics,
                                            majority_accuracy)
from tfpriors.evaluation.elbo import elbo
from tfpriors.evaluation.encodings_fit import encodings_log_prior, fit_prior_to_encodings
from tfpriors.evaluation.evaluate_all import evaluate_all
from tfpriors.evaluation.kl_per_dimension import KLPerDimension, kl_per_dimension
from tfpriors.evaluation.log_likelihood import log_likelihood
from tfpriors.evaluation.prior_fit import prior_cross_entropy
from tfpriors.evaluation.reconstruction import reconstruction_error

__all__ = ["log_likelihood", "elbo", "prior_cross_entropy", "reconstruction_error", "active_units",
           "kl_per_dimension", "evaluate_all", "cluster_accuracy", "majority_accuracy",
           "assignment_metrics", "cluster_metrics", "Estimate",
           "ActiveUnits", "KLPerDimension", "fit_prior_to_encodings", "encodings_log_prior"]
