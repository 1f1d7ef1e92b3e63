"""LaDDer: the learned hyper prior against a closed-form marginal, gradients for every prior-VAE
parameter, block coordinate ascent (closed blocks do not move, the controller's gates still
hold), resuming after save/load, stacked rungs and argument checks."""

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from scipy import stats

from tests.test_vhp import A, B, SIGMA, conditional
from tfpriors.datasets import load_dataset
from tfpriors.distributions import HierarchicalGaussian
from tfpriors.likelihoods import LaplaceLikelihood
from tfpriors.networks import MLPDecoder, MLPEncoder
from tfpriors.priors import HierarchicalPrior, StandardNormalPrior, VGMMHyperPrior
from trainers import REWO
from trainers.ladder import BlockSchedule, HyperPriorFitting, LaDDer, build_ladder

tfd = tfp.distributions


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0).train_images[:400]


def small_ladder(seed=0, **kwargs):
    keras.utils.set_random_seed(seed)
    kwargs.setdefault("hyper_fit", {"num_encodings": 400, "accurate_every": 2})
    model = build_ladder((8, 8, 1), 4, 2, LaplaceLikelihood(), hidden_units=(32,),
                         prior_hidden_units=(16,), max_components=6, seed=seed, **kwargs)
    model.build()
    return model


def test_a_learned_hyper_prior_gives_the_closed_form_marginal():
    # zeta ~ N(m0, S0), z | zeta ~ N(A zeta + b, sigma^2 I): z ~ N(A m0 + b, A S0 A^T + sigma^2 I).
    m0, chol = np.array([0.5, -1.0]), np.array([[0.8, 0.0], [0.3, 0.5]])
    hyper = tfd.MultivariateNormalTriL(m0.astype("float32"), chol.astype("float32"))
    marginal = stats.multivariate_normal(A @ m0 + B, A @ chol @ chol.T @ A.T + SIGMA ** 2 * np.eye(3))

    def proposal(z):   # a fixed, deliberately broad proposal
        return tf.zeros(tf.concat([tf.shape(z)[:-1], [2]], 0)) + m0, 1.5 * tf.ones(
            tf.concat([tf.shape(z)[:-1], [2]], 0))

    dist = HierarchicalGaussian(conditional, proposal, 3, 2, hyper_distribution=hyper)
    z = dist.sample(20000, seed=[1, 2]).numpy().astype(np.float64)
    np.testing.assert_allclose(z.mean(0), marginal.mean, atol=0.04)
    np.testing.assert_allclose(np.cov(z.T), marginal.cov, atol=0.06)
    probe = marginal.rvs(6, random_state=3).astype("float32")
    iw = dist.importance_weighted_log_prob(probe, 20000, seed=[5, 6]).numpy()
    np.testing.assert_allclose(iw, marginal.logpdf(probe), atol=0.05)


def test_every_prior_vae_parameter_gets_a_gradient_and_the_hyper_prior_none(digits):
    model = small_ladder()
    model.prior.innermost_hyper_prior.fit(
        np.random.default_rng(0).normal(size=(300, 2)) * [1.0, 0.3], accurate=True)
    x = tf.constant(digits[:32])
    with tf.GradientTape() as tape:
        terms = model.objective(model, x, tf.constant(1.0), tf.constant([0, 1]))
        loss = tf.reduce_mean(terms["loss"])
    prior_vars = model.prior.trainable_variables
    grads = tape.gradient(loss, prior_vars)
    assert len(prior_vars) >= 8
    for var, grad in zip(prior_vars, grads):
        assert grad is not None and np.abs(grad.numpy()).sum() > 0, var.path
    hyper = model.prior.innermost_hyper_prior
    assert hyper.trainable_variables == [] and len(hyper.non_trainable_variables) == 7
    assert set(map(id, model.parameter_blocks()["prior"])) == set(map(id, prior_vars))


def _snapshot(variables):
    return [v.numpy().copy() for v in variables]


def test_block_coordinate_ascent_moves_one_block_per_step(digits):
    model = small_ladder(schedule=BlockSchedule([("prior", 2), ("model", 1)]))
    model.compile(keras.optimizers.Adam(1e-2))
    blocks = model.parameter_blocks()
    x = digits[:50]
    expected = ["prior", "prior", "model", "prior", "prior", "model"]
    for open_block in expected:
        before = {name: _snapshot(v) for name, v in blocks.items()}
        model.train_on_batch(x)
        for name, variables in blocks.items():
            moved = [not np.array_equal(a, v.numpy()) for a, v in zip(before[name], variables)]
            if name == open_block:
                assert all(moved), name
            else:
                assert not any(moved), name
    steps = {name: int(opt.iterations.numpy()) for name, opt in model.optimizer.blocks.items()}
    assert steps == {"prior": 4, "model": 2}


def test_the_controller_gates_still_hold_under_the_schedule(digits):
    model = small_ladder(beta=REWO(kappa=0.05))          # REWO: prior closed until its switch
    model.compile(keras.optimizers.Adam(1e-2))
    prior_vars = model.parameter_blocks()["prior"]
    before = _snapshot(prior_vars)
    for _ in range(4):
        model.train_on_batch(digits[:50])
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(before, prior_vars))


def test_training_fits_the_hyper_prior_and_resumes_bitwise_after_save_load(digits, tmp_path):
    def run(epochs, initial_epoch=0, model=None):
        model = model or small_ladder(seed=3)
        if getattr(model, "optimizer", None) is None:
            model.compile(keras.optimizers.Adam(1e-3))
        fitting = HyperPriorFitting(digits, num_encodings=400, accurate_every=2)
        history = model.fit(digits, epochs=epochs, initial_epoch=initial_epoch, batch_size=50,
                            shuffle=False, verbose=0, callbacks=[fitting])
        return model, history, fitting

    straight, history, fitting = run(4)
    assert [f["kind"] for f in fitting.history] == ["accurate", "fast", "accurate"]
    assert np.all(np.isfinite(history.history["loss"]))
    assert history.history["hyper_prior_components"][0] == 1.0     # epoch 0: still N(0, I)
    assert history.history["loss"][-1] < history.history["loss"][0]

    first, _, _ = run(2)
    first.save(tmp_path / "ladder.keras")
    loaded = keras.saving.load_model(tmp_path / "ladder.keras")
    assert isinstance(loaded, LaDDer) and loaded.schedule.phases == first.schedule.phases
    resumed, _, _ = run(4, initial_epoch=2, model=loaded)
    for a, b in zip(straight.weights, resumed.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)


def test_two_rungs_train_and_fit_the_innermost_hyper_prior(digits):
    keras.utils.set_random_seed(0)
    inner = HierarchicalPrior(2, 1, hidden_units=(8,), num_samples=1, bound="elbo",
                              hyper_prior=VGMMHyperPrior(1, max_components=4))
    outer = HierarchicalPrior(4, 2, hidden_units=(16,), num_samples=1, bound="elbo",
                              hyper_prior=inner)
    model = LaDDer(MLPEncoder(4, (8, 8, 1), hidden_units=(32,)), MLPDecoder(4, (8, 8, 1), hidden_units=(32,)),
                   outer, LaplaceLikelihood(), hyper_fit={"num_encodings": 200, "accurate_every": 1})
    model.build()
    model.compile(keras.optimizers.Adam(1e-3))
    history = model.fit(digits, epochs=2, batch_size=50, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert outer.innermost_hyper_prior is inner.hyper_prior
    assert int(inner.hyper_prior.fits.numpy()) == 1
    assert outer.encode_hyper(tf.zeros([3, 4])).shape == (3, 1)
    z, _ = outer.distribution().sample_with_hyper_latents(5, seed=[1, 1])
    assert z.shape == (5, 4)


def test_bad_models_and_schedules_are_clear_errors():
    enc, dec = MLPEncoder(4, (8, 8, 1), hidden_units=(8,)), MLPDecoder(4, (8, 8, 1), hidden_units=(8,))
    with pytest.raises(ValueError, match="VGMMHyperPrior"):
        LaDDer(enc, dec, HierarchicalPrior(4, 2, hidden_units=(8,)), LaplaceLikelihood())
    with pytest.raises(ValueError, match="PriorLayer over 2 dimensions"):
        HierarchicalPrior(4, 2, hidden_units=(8,), hyper_prior=StandardNormalPrior(3))
    with pytest.raises(ValueError, match="'model' and 'prior'"):
        small_ladder(schedule=BlockSchedule([("decoder", 1)]))
    with pytest.raises(ValueError, match="phase steps"):
        BlockSchedule([("prior", 0)])
    with pytest.raises(ValueError, match="num_encodings"):
        small_ladder(hyper_fit={"num_encodings": 0})


def test_a_sweep_updates_both_blocks_on_every_batch_prior_first(digits):
    model = small_ladder(schedule=BlockSchedule([("prior", 1), ("model", 1)], sweep=True))
    model.compile(keras.optimizers.Adam(1e-2))
    blocks = model.parameter_blocks()
    for _ in range(3):
        before = {name: _snapshot(v) for name, v in blocks.items()}
        model.train_on_batch(digits[:50])
        for name, variables in blocks.items():
            assert all(not np.array_equal(a, v.numpy()) for a, v in zip(before[name], variables)), name
    steps = {name: int(opt.iterations.numpy()) for name, opt in model.optimizer.blocks.items()}
    assert steps == {"prior": 3, "model": 3} and int(model.rng_step.numpy()) == 3
    # The prior's update comes first: its step equals one alternating step on the same batch.
    alternating = small_ladder(schedule=BlockSchedule([("prior", 1), ("model", 1)]))
    swept = small_ladder(schedule=BlockSchedule([("prior", 1), ("model", 1)], sweep=True))
    for m in (alternating, swept):
        m.compile(keras.optimizers.Adam(1e-2))
        m.train_on_batch(digits[:50])
    for a, b in zip(alternating.parameter_blocks()["prior"], swept.parameter_blocks()["prior"]):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert BlockSchedule.from_config(swept.schedule.get_config()).sweep


def test_the_identity_start_begins_at_the_hyper_prior_smoothed_by_its_scale():
    # With identity_scale s, p(z|t) = N(t, s^2 I) at the start, so p(z) is the DP-GMM with every
    # covariance widened by s^2 I, exactly.
    s = 0.3
    keras.utils.set_random_seed(0)
    model = build_ladder((8, 8, 1), 2, 2, LaplaceLikelihood(), hidden_units=(16,),
                         prior_hidden_units=(16,), max_components=4, identity_scale=s)
    model.build()
    hyper = model.prior.innermost_hyper_prior
    rng = np.random.default_rng(0)
    hyper.fit(np.concatenate([rng.normal(-2.0, 0.5, (200, 2)), rng.normal(2.0, 0.8, (200, 2))]),
              accurate=True)
    mixture = hyper.distribution()
    weights = mixture.mixture_distribution.probs_parameter().numpy()
    locs = mixture.components_distribution.mean().numpy()
    covs = mixture.components_distribution.covariance().numpy()
    z = model.prior_distribution().sample(6, seed=[3, 4]).numpy()   # where p(z) has its mass
    exact = np.log(sum(w * stats.multivariate_normal(m, c + s ** 2 * np.eye(2)).pdf(z)
                       for w, m, c in zip(weights, locs, covs)))
    estimate = model.prior_distribution().importance_weighted_log_prob(z, 50000, seed=[1, 2])
    np.testing.assert_allclose(estimate, exact, atol=0.02)
