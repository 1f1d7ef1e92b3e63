"""Small model factories shared by the tests (tiny shapes, fixed seeds)."""

import importlib.util
from pathlib import Path

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


def make_vae(prior_kind="vampprior", shape=SHAPE, latent_dim=LATENT, seed=0, likelihood=None,
             **kwargs):
    keras.utils.set_random_seed(seed)
    model = VAE(MLPEncoder(latent_dim, shape, hidden_units=(16,), gated=True),
                MLPDecoder(latent_dim, shape, hidden_units=(16,), gated=True),
                make_prior(prior_kind, latent_dim, shape), likelihood or BernoulliLikelihood(),
                seed=seed, **kwargs)
    model.build((None,) + shape)
    return model


def binary_images(n, shape=SHAPE, seed=0):
    return (np.random.default_rng(seed).random((n,) + shape) > 0.5).astype("float32")


def assert_kl_matches_monte_carlo(model, images, num_samples, seed, num_stderr=4.0):
    """model.kl_divergence against the Monte-Carlo mean of log q - log p over `num_samples` draws
    of the latent interface, within `num_stderr` standard errors per image."""
    import tensorflow as tf
    x = tf.constant(images)
    inference = model.infer(x)
    eps = tf.random.stateless_normal([num_samples, len(images), model.noise_dim], seed=seed)
    sample = model.sample_posterior(inference, eps)
    log_p = model.log_prior(inference, sample.code)
    exact = model.kl_divergence(inference, sample, log_p).numpy()
    terms = (sample.log_q - log_p).numpy()                                  # [S, B]
    monte_carlo, stderr = terms.mean(axis=0), terms.std(axis=0) / np.sqrt(num_samples)
    assert np.all(np.abs(monte_carlo - exact) < num_stderr * stderr), (exact, monte_carlo, stderr)


def load_script(relative_path):
    """A repository script (e.g. "benchmarks/mnist_table1.py") imported as a module."""
    path = Path(__file__).resolve().parents[1] / relative_path
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
