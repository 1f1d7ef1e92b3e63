"""The values of the latent interface (`trainers.latent_model`): what `infer` and
`sample_posterior` return, and the closed-form KL test shared by the models."""

import collections

import tensorflow_probability as tfp

tfd = tfp.distributions

__all__ = ["Inference", "PosteriorSample", "closed_form_kl"]

Inference = collections.namedtuple("Inference", ["posterior", "prior", "context"])
Inference.__doc__ = """What `infer(x)` computes once per batch (see the module docstring)."""
PosteriorSample = collections.namedtuple("PosteriorSample", ["code", "log_q", "parts"])
PosteriorSample.__doc__ = """Draws of every latent: code [S, B, D], log q(code|x) [S, B], parts."""


def closed_form_kl(q, p, prior_layer=None):
    """KL(q || p) [batch] if TFP has a KL registered for (type(q), type(p)), else None.

    `tfd.kl_divergence` raises NotImplementedError for an unregistered pair (mixtures, the
    VHP's hierarchical prior); that is the test, so a KL registered later is used automatically.
    None also when `prior_layer` defines its density through a stochastic bound
    (`log_prob_estimate`): the KL must use the log p(z) that training and evaluation use.
    """
    if prior_layer is not None and getattr(prior_layer, "log_prob_estimate", None) is not None:
        return None
    try:
        return tfd.kl_divergence(q, p)
    except NotImplementedError:
        return None
