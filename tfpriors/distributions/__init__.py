"""Pure `tfp.distributions` subclasses: math only, no Keras, no weights."""

from tfpriors.distributions.hierarchical import HierarchicalGaussian
from tfpriors.distributions.mixture import DiagonalGaussianMixture

__all__ = ["HierarchicalGaussian", "DiagonalGaussianMixture"]
