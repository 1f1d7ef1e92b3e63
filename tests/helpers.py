"""Small model factories shared by the tests (tiny shapes, fixed seeds)."""

import keras
import numpy as np

from tfpriors.likelihoods import BernoulliLikelihood
from tfpriors.networks import MLPDecoder, MLPEncoder
from tfpriors.priors import MixtureOfGaussiansPrior, StandardNormalPrior, VampPrior
from trainers import VAE

SHAPE = (4, 4, 1)
LATENT = 3


def make_prior(kind, latent_dim=LATENT, shape=SHAPE, **kwargs):
    if kind == "standard_normal":
        return StandardNormalPrior(latent_dim)
    if kind == "mog":
        return MixtureOfGaussiansPrior(latent_dim, num_components=4, learn_weights=True, **kwargs)
    if kind == "vampprior":
        return VampPrior(latent_dim, num_pseudo_inputs=5, input_shape_=shape, learn_weights=True,
                         **kwargs)
    raise ValueError(kind)


def make_vae(prior_kind="vampprior", shape=SHAPE, latent_dim=LATENT, seed=0, **kwargs):
    keras.utils.set_random_seed(seed)
    model = VAE(MLPEncoder(latent_dim, shape, hidden_units=(16,), gated=True),
                MLPDecoder(latent_dim, shape, hidden_units=(16,), gated=True),
                make_prior(prior_kind, latent_dim, shape), BernoulliLikelihood(), seed=seed, **kwargs)
    model.build((None,) + shape)
    return model


def binary_images(n, shape=SHAPE, seed=0):
    return (np.random.default_rng(seed).random((n,) + shape) > 0.5).astype("float32")
