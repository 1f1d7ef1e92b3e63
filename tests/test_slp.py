"""Shortest likely path (LaDDer Eq. 9): round a ring density where the straight line crosses
the empty middle, a higher mean log-density than the linear path, the objective's terms, model
interpolation in z and in LaDDer's hyper latent t, and argument checks."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from tests.test_ladder import small_ladder
from tfpriors.datasets import load_dataset
from tfpriors.interpolation import linear_path, shortest_likely_path, slp_interpolation, slp_objective

tfd = tfp.distributions


def ring(num=64, radius=1.0, width=0.1):
    angles = np.linspace(0.0, 2.0 * np.pi, num, endpoint=False)
    loc = radius * np.stack([np.cos(angles), np.sin(angles)], 1)
    return tfd.MixtureSameFamily(tfd.Categorical(logits=np.zeros(num, np.float32)),
                                 tfd.MultivariateNormalDiag(loc.astype(np.float32),
                                                            np.full((num, 2), width, np.float32)))


def test_the_path_goes_round_a_ring_and_is_more_likely_than_the_line():
    density = ring()
    result = shortest_likely_path(density.log_prob, [1.0, 0.0], [-1.0, 0.0], num_points=10,
                                  std_weight=10.0, steps=800, seed=0)
    path = result.path
    assert path.shape == (12, 2)
    np.testing.assert_array_equal(path[[0, -1]], [[1.0, 0.0], [-1.0, 0.0]])
    radii = np.linalg.norm(path, axis=1)
    assert np.all(np.abs(radii - 1.0) < 0.05)                  # on the ring, not through 0
    angles = np.unwrap(np.arctan2(path[:, 1], path[:, 0]))
    assert np.all(np.diff(np.sign(np.diff(angles))) == 0)      # monotone: round one side
    assert abs(abs(angles[-1] - angles[0]) - np.pi) < 1e-3
    line = linear_path([1.0, 0.0], [-1.0, 0.0], 12)[1:-1].astype(np.float32)
    assert result.terms["mean_log_prob"] > float(tf.reduce_mean(density.log_prob(line))) + 10.0
    assert result.objective[-1] < result.objective[0]
    np.testing.assert_allclose(result.terms["length"], np.pi, rtol=0.02)   # half the circle


def test_the_objective_adds_length_step_spread_and_log_density():
    density = tfd.MultivariateNormalDiag(tf.zeros(2), tf.ones(2))
    path = tf.constant([[0.0, 0.0], [1.0, 0.0], [1.0, 2.0], [1.0, 3.0]])
    value, (length, spread, log_p) = slp_objective(path, density.log_prob, 2.0, 3.0, 0.5)
    steps = np.array([1.0, 2.0, 1.0])
    expected_log_p = density.log_prob(path[1:3]).numpy().sum()
    np.testing.assert_allclose(length, 4.0)
    np.testing.assert_allclose(spread, steps.std(), rtol=1e-6)
    np.testing.assert_allclose(log_p, expected_log_p, rtol=1e-6)
    np.testing.assert_allclose(value, 2 * 4.0 + 3 * steps.std() - 0.5 * expected_log_p, rtol=1e-5)


@pytest.mark.parametrize("space", ["z", "t"])
def test_interpolation_on_a_ladder_model_in_z_and_in_t(space):
    model = small_ladder()
    model.prior.innermost_hyper_prior.fit(np.random.default_rng(0).normal(size=(200, 2)),
                                          accurate=True)
    images = load_dataset("digits", seed=0).val_images
    frames, result = slp_interpolation(model, images[0], images[1], num_points=4, space=space,
                                       steps=20)
    dim = 4 if space == "z" else 2
    assert frames.latents.shape == (6, dim) and frames.images.shape == (6, 8, 8, 1)
    assert np.all(np.isfinite(frames.images)) and np.all(np.isfinite(result.objective))


def test_bad_arguments_are_clear_errors():
    density = ring()
    with pytest.raises(ValueError, match="num_points"):
        shortest_likely_path(density.log_prob, [1.0, 0.0], [-1.0, 0.0], num_points=0)
    with pytest.raises(ValueError, match="std_weight"):
        shortest_likely_path(density.log_prob, [1.0, 0.0], [-1.0, 0.0], std_weight=-1.0)
    with pytest.raises(ValueError, match="likelihood_weight"):
        shortest_likely_path(density.log_prob, [1.0, 0.0], [-1.0, 0.0], likelihood_weight=0.0)
    with pytest.raises(ValueError):
        shortest_likely_path(density.log_prob, [1.0, 0.0], [-1.0, 0.0, 2.0])
    from tests.helpers import make_vae
    vae = make_vae("standard_normal")
    image = np.zeros((4, 4, 1), np.float32)
    with pytest.raises(ValueError, match="learned hyper prior"):
        slp_interpolation(vae, image, image, space="t")
    with pytest.raises(ValueError, match="space 'z' or 't'"):
        slp_interpolation(vae, image, image, space="x")
