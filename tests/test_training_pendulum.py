"""A VampPrior VAE trained a few hundred steps on pendulum data beats its untrained self."""

import keras
import numpy as np
import tensorflow as tf

from tfpriors.datasets import load_pendulum, make_dataset
from tfpriors.likelihoods import GaussianLikelihood
from tfpriors.networks import MLPDecoder, MLPEncoder
from tfpriors.priors import VampPrior
from trainers import VAE


def validation_elbo(model, images):
    terms = model.objective(model, tf.constant(images), tf.constant(1.0), tf.constant([5, 6]))
    return float(tf.reduce_mean(terms["elbo"]))


def test_training_improves_validation_elbo():
    shape = (16, 16, 1)
    train, _, val, _ = load_pendulum(num_examples=2000, validation_size=300, seed=0)
    keras.utils.set_random_seed(0)
    model = VAE(MLPEncoder(2, shape, hidden_units=(64, 64)), MLPDecoder(2, shape, hidden_units=(64, 64)),
                VampPrior(2, num_pseudo_inputs=10, input_shape_=shape),
                GaussianLikelihood(scale=0.1), seed=0)
    model.build((None,) + shape)
    model.compile(keras.optimizers.Adam(1e-3), steps_per_execution=20)
    before = validation_elbo(model, val)
    model.fit(make_dataset(train, 50, seed=0), epochs=8, verbose=0)          # 320 steps
    after = validation_elbo(model, val)
    assert np.isfinite(after)
    assert after > before + 0.25 * abs(before), (before, after)
