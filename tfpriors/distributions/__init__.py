"""Pure `tfp.distributions` subclasses: math only, no Keras, no weights."""

from tfpriors.distributions.hierarchical import HierarchicalGaussian

__all__ = ["HierarchicalGaussian"]
