"""Block-wise optimisation (trainers/blocks.py): own state per block, closed blocks untouched."""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import binary_images, make_vae
from trainers import REWO
from trainers.beta import BetaController
from trainers.blocks import BlockOptimizer

RATE = 1e-3


@keras.saving.register_keras_serializable(package="tfpriors_tests")
class OpenPriorAt(BetaController):
    """β = 1; the prior's block opens at step `open_at` (REWO's switch at a known step)."""

    def __init__(self, open_at=3, **kwargs):
        super().__init__(**kwargs)
        self.open_at = int(open_at)

    def block_gates(self):
        return {"prior": self.step.value >= self.open_at}

    def get_config(self):
        return dict(super().get_config(), open_at=self.open_at)


def _toy(gated_rate=RATE):
    """Two separable quadratic blocks; returns (a, b, optimizer, step(gate_open))."""
    a = keras.Variable(np.linspace(-1, 1, 4).astype("float32"), name="a")
    b = keras.Variable(np.linspace(2, 3, 4).astype("float32"), name="b")
    optimizer = BlockOptimizer(keras.optimizers.Adam(gated_rate))
    optimizer.set_partition(lambda: {"x": [a], "y": [b]})
    optimizer.build([a, b])

    @tf.function
    def step(gate_open):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(a ** 2) + tf.reduce_sum((b - 0.5) ** 2 * tf.range(1.0, 5.0))
        grads = tape.gradient(loss, [a.value, b.value])
        optimizer.apply_block_gradients(zip(grads, [a, b]), gates={"y": gate_open})
    return a, b, optimizer, step


def test_shared_adam_with_a_zeroed_gradient_overshoots_which_blocks_avoid():
    """The defect: under one Adam, a block whose gradient was multiplied by 0 for N steps takes
    first steps of several times the rate (bias correction at the shared step, zero moments)."""
    x = keras.Variable(np.ones(3, np.float32))
    shared = keras.optimizers.Adam(RATE)
    shared.build([x])
    apply = tf.function(lambda g: shared.apply([g], [x]))
    for _ in range(1000):
        apply(tf.zeros(3))
    before = x.numpy().copy()
    apply(tf.ones(3))
    assert np.all((before - x.numpy()) / RATE > 2.5)           # a fresh Adam moves by 1.0 x rate


def test_a_block_opened_late_starts_like_a_fresh_optimizer():
    a, b, optimizer, step = _toy()
    for _ in range(200):
        step(tf.constant(False))
    assert int(optimizer.blocks["y"].iterations) == 0 and int(optimizer.blocks["x"].iterations) == 200
    fresh_b = keras.Variable(b.numpy(), name="fresh_b")
    fresh = keras.optimizers.Adam(RATE)
    fresh.build([fresh_b])
    for _ in range(5):
        step(tf.constant(True))
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum((fresh_b - 0.5) ** 2 * tf.range(1.0, 5.0))
        fresh.apply(tape.gradient(loss, [fresh_b.value]), [fresh_b])
        np.testing.assert_allclose(b.numpy(), fresh_b.numpy(), rtol=0, atol=1e-7)
    assert int(optimizer.blocks["y"].iterations) == 5 and int(optimizer.iterations) == 205


def test_a_closed_block_is_bitwise_unchanged_after_it_has_trained():
    a, b, optimizer, step = _toy()
    for _ in range(10):
        step(tf.constant(True))
    frozen = [v.numpy().copy() for v in [b] + optimizer.blocks["y"].variables]
    a_before = a.numpy().copy()
    for _ in range(10):                                # non-zero gradients and momentum
        step(tf.constant(False))
    for value, v in zip(frozen, [b] + optimizer.blocks["y"].variables):
        np.testing.assert_array_equal(v.numpy(), value, err_msg=v.path)
    assert not np.array_equal(a.numpy(), a_before)     # the open block trained on


def _fit_steps(model, x, steps):
    model.fit(x[:10 * steps], batch_size=10, epochs=1, shuffle=False, verbose=0)


def _state(model):
    """Every weight and every block optimiser variable, keyed by position (paths carry the
    model's instance number)."""
    state = {f"{i:03d}:{w.path.rsplit('/', 1)[-1]}": w.numpy() for i, w in enumerate(model.weights)}
    state.update({f"{n}:{i:03d}": v.numpy() for n, opt in model.optimizer.blocks.items()
                  for i, v in enumerate(opt.variables)})
    return state


def _assert_first_adam_step(model, prior_before):
    """The prior took one step, a fresh Adam's: every weight with a gradient well above ε moved
    by the rate, none by more."""
    moves = np.concatenate([np.abs(w.numpy() - v).ravel()
                            for v, w in zip(prior_before, model.prior.trainable_weights)]) / RATE
    moved = moves[moves > 1e-3]
    assert moved.size > 0.5 * moves.size
    assert np.all(moved <= 1.0 + 1e-3) and np.median(moved) > 0.9
    assert int(model.optimizer.blocks["prior"].iterations) == 1


def test_vae_prior_is_untouched_until_its_block_opens_then_steps_like_a_fresh_adam():
    x = binary_images(60)
    model = make_vae("mog", beta=OpenPriorAt(open_at=3))
    model.compile(keras.optimizers.Adam(RATE))
    prior_before = [w.numpy().copy() for w in model.prior.trainable_weights]
    _fit_steps(model, x, 3)
    for value, w in zip(prior_before, model.prior.trainable_weights):
        np.testing.assert_array_equal(w.numpy(), value, err_msg=w.path)
    assert int(model.optimizer.blocks["prior"].iterations) == 0
    assert int(model.optimizer.blocks["model"].iterations) == 3
    _fit_steps(model, x[30:], 1)
    _assert_first_adam_step(model, prior_before)


@pytest.mark.parametrize("saved_at", [2, 4])          # before and after the prior's block opens
def test_save_and_load_mid_phase_keep_every_block_state(tmp_path, saved_at):
    x = binary_images(60)
    full = make_vae("vampprior", beta=OpenPriorAt(open_at=3))
    full.compile(keras.optimizers.Adam(RATE))
    _fit_steps(full, x, 6)
    part = make_vae("vampprior", beta=OpenPriorAt(open_at=3))
    part.compile(keras.optimizers.Adam(RATE))
    _fit_steps(part, x, saved_at)
    part.save(tmp_path / "part.keras")
    resumed = keras.models.load_model(tmp_path / "part.keras")
    for key, value in _state(part).items():
        np.testing.assert_array_equal(_state(resumed)[key], value, err_msg=key)
    _fit_steps(resumed, x[10 * saved_at:], 6 - saved_at)
    reference = _state(full)
    assert reference.keys() == _state(resumed).keys()
    for key, value in _state(resumed).items():
        np.testing.assert_allclose(value, reference[key], rtol=1e-5, atol=1e-6, err_msg=key)


def test_rewo_closes_the_prior_block_in_its_initial_phase_and_opens_it_fresh():
    x = binary_images(40)
    model = make_vae("mog", beta=REWO(kappa=1e-3, nu=1.0, initial_beta=0.1))   # never satisfied
    model.compile(keras.optimizers.Adam(RATE), jit_compile=True)
    prior_before = [w.numpy().copy() for w in model.prior.trainable_weights]
    _fit_steps(model, x, 4)
    assert float(model.beta_controller.main_phase.numpy()) == 0.0
    for value, w in zip(prior_before, model.prior.trainable_weights):
        np.testing.assert_array_equal(w.numpy(), value, err_msg=w.path)
    assert int(model.optimizer.blocks["prior"].iterations) == 0
    # REWO's switch (forced here: the phase flag is the controller's saved state). The prior's
    # first update is a fresh Adam's: at most the rate per weight, the rate where |g| >> ε.
    model.beta_controller.main_phase.assign(1.0)
    _fit_steps(model, x, 1)
    _assert_first_adam_step(model, prior_before)
    assert int(model.optimizer.blocks["model"].iterations) == 5


def test_schedules_run_on_the_global_step_and_rate_changes_reach_every_block():
    a, b, optimizer, step = _toy()
    optimizer.learning_rate = 5e-4                       # as Keras' LR callbacks do
    step(tf.constant(True))
    for block in optimizer.blocks.values():
        assert np.isclose(float(block.learning_rate), 5e-4)
    schedule = keras.optimizers.schedules.ExponentialDecay(1e-2, decay_steps=1, decay_rate=0.5)
    a2 = keras.Variable(np.ones(2, np.float32))
    b2 = keras.Variable(np.ones(2, np.float32))
    sched = BlockOptimizer(keras.optimizers.Adam(schedule))
    sched.set_partition(lambda: {"x": [a2], "y": [b2]})
    for t in range(3):
        sched.apply_block_gradients([(tf.ones(2), a2), (tf.ones(2), b2)],
                                    gates={"y": tf.constant(t == 2)})
    # the late block's first step uses the rate of global step 2: 1e-2 * 0.5^2
    assert np.isclose(float(sched.blocks["y"].learning_rate), 2.5e-3)
    np.testing.assert_allclose(1.0 - b2.numpy(), 2.5e-3, rtol=1e-4)


def test_single_optimizer_files_load_with_a_warning_and_fresh_block_states(tmp_path):
    model = make_vae("mog")
    keras.Model.compile(model, keras.optimizers.Adam(RATE))   # a plain optimiser, as files used to
    model.optimizer.build(model.trainable_variables)
    model.save(tmp_path / "single.keras")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = keras.models.load_model(tmp_path / "single.keras")
    assert any("written by a single optimizer" in str(w.message) for w in caught)
    assert isinstance(loaded.optimizer, BlockOptimizer)
    _fit_steps(loaded, binary_images(20), 2)
    assert int(loaded.optimizer.blocks["prior"].iterations) == 2


def test_bad_block_input_is_a_clear_error():
    a, b, optimizer, step = _toy()
    with pytest.raises(ValueError, match=r"Expected gates for the blocks \['x', 'y'\]"):
        optimizer.apply_block_gradients([(tf.ones(4), a)], gates={"prior": tf.constant(True)})
    stray = keras.Variable(np.ones(2, np.float32), name="stray")
    with pytest.raises(ValueError, match="stray.*in none"):
        optimizer.apply_block_gradients([(tf.ones(2), stray)])
    incomplete = BlockOptimizer("adam")
    incomplete.set_partition(lambda: {"x": [a]})
    with pytest.raises(ValueError, match="outside.*b"):
        incomplete.build([a, b])
    with pytest.raises(ValueError, match="mixed_float16"):
        BlockOptimizer(keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam()))
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = make_vae("standard_normal")
    finally:
        keras.mixed_precision.set_global_policy("float32")
    with pytest.raises(ValueError, match="Received: mixed_float16"):
        model.compile(keras.optimizers.Adam())


def test_config_round_trip():
    optimizer = BlockOptimizer(keras.optimizers.Adam(3e-4, beta_1=0.8))
    again = BlockOptimizer.from_config(optimizer.get_config())
    assert again.template().get_config()["beta_1"] == pytest.approx(0.8)
    assert float(again.learning_rate) == pytest.approx(3e-4)


def test_weights_files_and_backups_hold_every_block_state(tmp_path):
    """`save_weights` / `load_weights`, which BackupAndRestore uses, keep the block optimisers."""
    x = binary_images(40)
    model = make_vae("mog", beta=OpenPriorAt(open_at=2))
    model.compile(keras.optimizers.Adam(RATE))
    _fit_steps(model, x, 3)
    model.save_weights(tmp_path / "backup.weights.h5")
    fresh = make_vae("mog", beta=OpenPriorAt(open_at=2))
    fresh.compile(keras.optimizers.Adam(RATE))
    fresh.optimizer.build(fresh.trainable_variables)
    fresh.load_weights(tmp_path / "backup.weights.h5")
    assert int(fresh.optimizer.blocks["prior"].iterations) == 1
    for key, value in _state(model).items():
        np.testing.assert_array_equal(_state(fresh)[key], value, err_msg=key)
