"""The VAE trainer: every trainable variable gets a gradient for every prior and objective,
save/load gives identical outputs, metrics are reported, bad input is a clear error."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import SHAPE, binary_images, make_vae
from trainers import ELBO, IWAE, LinearWarmup

PRIORS = ["standard_normal", "mog", "vampprior"]


@pytest.mark.parametrize("prior", PRIORS)
@pytest.mark.parametrize("objective", [ELBO(2), IWAE(3)])
def test_every_trainable_variable_gets_a_gradient(prior, objective):
    model = make_vae(prior, objective=objective)
    x = tf.constant(binary_images(6))
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(objective(model, x, tf.constant(1.0), tf.constant([1, 2]))["loss"])
    grads = tape.gradient(loss, model.trainable_variables)
    missing = [v.path for v, g in zip(model.trainable_variables, grads)
               if g is None or not np.any(g.numpy())]
    assert not missing, missing
    names = " ".join(v.path for v in model.trainable_variables)
    if prior == "vampprior":
        assert "pseudo_inputs" in names and "logits" in names
    if prior == "mog":
        assert "loc" in names and "raw_scale" in names and "logits" in names


def test_elbo_equals_reconstruction_minus_analytic_kl_and_is_below_iwae():
    model = make_vae("standard_normal")
    x = tf.constant(binary_images(4))
    seed = tf.constant([3, 4])
    t = ELBO(1)(model, x, tf.constant(1.0), seed)
    q = model.posterior(x)
    kl_closed = 0.5 * tf.reduce_sum(q.variance() + q.mean() ** 2 - 1 - tf.math.log(q.variance()), -1)
    np.testing.assert_allclose(t["kl"], kl_closed, rtol=1e-4)
    np.testing.assert_allclose(t["elbo"], -t["reconstruction"] - t["kl"], rtol=1e-6)
    big = ELBO(2000)(model, x, tf.constant(1.0), seed)["elbo"]
    iw = -IWAE(2000)(model, x, tf.constant(1.0), seed)["loss"]
    assert np.all(iw.numpy() >= big.numpy())


@pytest.mark.parametrize("jit", [False, True])
def test_fit_reports_metrics_and_save_load_round_trips(tmp_path, jit):
    model = make_vae("vampprior", beta=LinearWarmup(warmup_steps=10))
    model.compile(keras.optimizers.Adam(1e-3), jit_compile=jit, steps_per_execution=2)
    x = binary_images(40)
    history = model.fit(x, batch_size=10, epochs=2, verbose=0, validation_data=(x[:20],))
    for key in ("loss", "reconstruction", "kl", "elbo", "beta", "val_elbo"):
        assert np.all(np.isfinite(history.history[key])), key
    np.testing.assert_allclose(float(model.beta_controller.beta()), 0.8, rtol=1e-6)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(loaded(x[:5]).numpy(), model(x[:5]).numpy())
    np.testing.assert_array_equal(loaded.sample(4, seed=[1, 1])[0], model.sample(4, seed=[1, 1])[0])
    assert int(loaded.rng_step.value) == int(model.rng_step.value) == 8
    assert float(loaded.beta_controller.beta()) == float(model.beta_controller.beta())
    assert json.dumps(loaded.get_config()) == json.dumps(model.get_config())


def test_resumed_training_equals_uninterrupted_training(tmp_path):
    x = binary_images(20)
    full = make_vae("mog", beta=LinearWarmup(warmup_steps=5))
    full.compile(keras.optimizers.Adam(1e-3))
    full.fit(x, batch_size=10, epochs=2, shuffle=False, verbose=0)
    part = make_vae("mog", beta=LinearWarmup(warmup_steps=5))
    part.compile(keras.optimizers.Adam(1e-3))
    part.fit(x, batch_size=10, epochs=1, shuffle=False, verbose=0)
    part.save(tmp_path / "half.keras")
    resumed = keras.models.load_model(tmp_path / "half.keras")
    resumed.fit(x, batch_size=10, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(full.weights, resumed.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6, err_msg=a.path)


def test_bad_input_is_a_clear_error():
    model = make_vae("standard_normal")
    model.compile(keras.optimizers.Adam(1e-3))
    with pytest.raises(ValueError, match=r"Expected a batch of images of shape \(batch,\) \+ \(4, 4, 1\)"):
        model.fit(np.zeros((8, 5, 5, 1), "float32"), batch_size=4, verbose=0)
    bad = binary_images(8)
    bad[3, 1, 1, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        model.fit(bad, batch_size=4, verbose=0)
    with pytest.raises(ValueError, match="num_samples.*Received: num_samples=-1"):
        ELBO(-1)
    with pytest.raises(ValueError, match="num_samples.*Received: num_samples=0"):
        IWAE(0)
    with pytest.raises(ValueError, match="latent_dim"):
        from tfpriors.networks import MLPDecoder, MLPEncoder
        from tfpriors.likelihoods import BernoulliLikelihood
        from tfpriors.priors import StandardNormalPrior
        from trainers import VAE
        VAE(MLPEncoder(2, SHAPE), MLPDecoder(3, SHAPE), StandardNormalPrior(2), BernoulliLikelihood())


def test_build_twice_is_a_no_op_but_still_checks_the_shape():
    from tests.helpers import make_vae
    model = make_vae("vampprior")
    weights = [w.numpy() for w in model.weights]
    model.build()
    model.build_from_config(model.get_build_config())
    after = [w.numpy() for w in model.weights]
    assert len(after) == len(weights)
    for new, old in zip(after, weights):
        np.testing.assert_array_equal(new, old)
    with pytest.raises(ValueError, match="Expected a batch of images"):
        model.build((None, 5, 5, 1))
