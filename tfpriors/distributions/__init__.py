"""Pure `tfp.distributions` subclasses: math only, no Keras, no weights."""

from tfpriors.distributions.hierarchical import HierarchicalGaussian
from tfpriors.distributions.mixture import DiagonalGaussianMixture
from tfpriors.distributions.vgmm import VariationalGaussianMixture

__all__ = ["HierarchicalGaussian", "DiagonalGaussianMixture", "VariationalGaussianMixture"]
