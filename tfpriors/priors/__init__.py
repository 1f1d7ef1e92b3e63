"""Prior layers: Keras 3 layers that own a prior's weights and return a tfp distribution over z."""

from tfpriors.priors.base import PriorLayer, prior_log_prob
from tfpriors.priors.mixture import MixtureOfGaussiansPrior, gaussian_mixture
from tfpriors.priors.standard_normal import StandardNormalPrior
from tfpriors.priors.vampprior import VampPrior
from tfpriors.priors.vgmm import VGMMHyperPrior
from tfpriors.priors.vhp import HierarchicalPrior

__all__ = ["PriorLayer", "prior_log_prob", "StandardNormalPrior", "MixtureOfGaussiansPrior",
           "VampPrior", "HierarchicalPrior", "VGMMHyperPrior", "gaussian_mixture", "PRIORS"]

PRIORS = {"standard_normal": StandardNormalPrior, "mog": MixtureOfGaussiansPrior,
          "vampprior": VampPrior, "vhp": HierarchicalPrior}
