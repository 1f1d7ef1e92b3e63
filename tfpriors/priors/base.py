"""The prior-layer protocol shared by every learnable prior.

A prior layer is a Keras 3 layer that owns the prior's weights (`add_weight` in `build`) and
returns a fresh `tfp.distributions.Distribution` over z (batch shape [], event shape [D]) from
`distribution(encoder)`, built inside the caller's gradient tape so that every weight gets a
gradient. Priors that are coupled to the posterior (VampPrior) use the encoder they are given;
the others ignore it. Priors whose `log_prob` has no closed form expose a stochastic bound
through `log_prob_estimate(distribution, z, seed)` (see `tfpriors.priors.prior_log_prob`).
"""

import keras

from tfpriors._validation import check_positive_int

__all__ = ["PriorLayer", "prior_log_prob"]


class PriorLayer(keras.layers.Layer):
    """Base class of the prior layers.

    Args:
      latent_dim: D, the dimension of z.

    Subclasses implement `distribution(self, encoder=None) -> tfd.Distribution` and, if the
    prior needs data-shaped weights (pseudo-inputs), `build(input_shape)` with the image shape.
    A mixture prior sets `num_components` (K) and, unless its distribution is a
    `tfd.MixtureSameFamily`, overrides `component_distribution`.
    """

    #: K for a mixture prior whose components can be sampled alone; None otherwise.
    num_components = None

    def __init__(self, latent_dim, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim = check_positive_int("latent_dim", latent_dim)

    def build(self, input_shape=None):
        self.built = True

    def component_distribution(self, distribution):
        """The K components of `distribution` (from `self.distribution`) as one distribution with
        batch shape [K] and event shape [D].

        Raises:
          ValueError: if this prior is not a mixture (`num_components` is None).
        """
        if self.num_components is None:
            raise ValueError(f"Expected a mixture prior (MoG, VampPrior) to sample a component. "
                             f"Received: {type(self).__name__}, which has no components")
        return distribution.components_distribution

    def get_config(self):
        config = super().get_config()
        config.update(latent_dim=self.latent_dim)
        return config


def prior_log_prob(prior_layer, distribution, z, seed=None):
    """log p(z) if the prior has a closed form, otherwise the prior's own stochastic bound.

    Args:
      prior_layer: the PriorLayer that built `distribution`.
      distribution: the tfd.Distribution returned by `prior_layer.distribution(...)`.
      z: latents [..., D].
      seed: int32 [2] stateless seed, used only by priors with a stochastic bound.

    Returns:
      [...] log-densities (or lower bounds on them) in nats.
    """
    estimate = getattr(prior_layer, "log_prob_estimate", None)
    if estimate is not None:
        return estimate(distribution, z, seed=seed)
    return distribution.log_prob(z)
