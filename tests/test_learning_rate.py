"""The learning-rate warm-up: the ramp's values against its closed form, bad arguments, the
optimiser following it step by step, and a save/load mid-ramp that continues where it stopped."""

import keras
import numpy as np
import pytest

from trainers.config import build_model, build_parser, parse_config
from trainers.learning_rate import WarmupLearningRate, learning_rate_for


def _closed_form(peak, warmup, start, step):
    return peak * (start + (1 - start) * min(step / warmup, 1.0))


@pytest.mark.parametrize("step", [0, 1, 37, 99, 100, 101, 5000])
def test_ramp_matches_its_closed_form(step):
    schedule = WarmupLearningRate(1e-3, 100, start=0.1)
    np.testing.assert_allclose(float(schedule(step)), _closed_form(1e-3, 100, 0.1, step), rtol=1e-6)


def test_zero_warmup_is_the_constant_rate():
    schedule = WarmupLearningRate(3e-4, 0)
    assert [float(schedule(s)) for s in (0, 10, 10**6)] == pytest.approx([3e-4] * 3)
    assert learning_rate_for(3e-4, 0) == 3e-4
    assert isinstance(learning_rate_for(3e-4, 5), WarmupLearningRate)


@pytest.mark.parametrize("kwargs, message", [
    (dict(peak=0.0, warmup_steps=10), "peak=0.0"),
    (dict(peak=float("nan"), warmup_steps=10), "peak=nan"),
    (dict(peak="fast", warmup_steps=10), "peak='fast'"),
    (dict(peak=1e-3, warmup_steps=-1), "warmup_steps"),
    (dict(peak=1e-3, warmup_steps=2.5), "warmup_steps"),
    (dict(peak=1e-3, warmup_steps=10, start=0.0), "start=0.0"),
    (dict(peak=1e-3, warmup_steps=10, start=1.5), "start=1.5"),
])
def test_bad_arguments_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        WarmupLearningRate(**kwargs)


def test_cli_flags_are_checked_and_reach_the_optimizer():
    with pytest.raises(ValueError, match="lr_warmup_steps"):
        parse_config(build_parser("t"), ["--lr-warmup-steps", "-3"])
    with pytest.raises(ValueError, match="start=2.0"):
        parse_config(build_parser("t"), ["--lr-warmup-steps", "10", "--lr-warmup-start", "2"])
    config = parse_config(build_parser("t"), [
        "--hidden-units", "8", "--vhp-hidden-units", "8", "--vhp-samples", "2", "--likelihood", "gaussian",
        "--learning-rate", "2e-3", "--lr-warmup-steps", "40", "--lr-warmup-start", "0.25"])
    x = np.random.default_rng(0).uniform(size=(8, 4, 4, 1)).astype("float32")
    model = build_model(config, (4, 4, 1), x, steps_per_epoch=1)
    schedule = model.optimizer.get_config()["optimizer"]["config"]["learning_rate"]
    assert schedule["class_name"] == "WarmupLearningRate"
    assert schedule["config"] == {"peak": 2e-3, "warmup_steps": 40, "start": 0.25}


def _regression_model(warmup):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(WarmupLearningRate(1e-2, warmup)), loss="mse")
    return model


def test_optimizer_follows_the_ramp_and_a_reloaded_model_continues_it(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 3)).astype("float32")
    y = x @ np.array([[1.0], [-2.0], [0.5]], "float32")
    fit = dict(batch_size=16, shuffle=False, verbose=0)
    model = _regression_model(warmup=20)
    model.fit(x, y, epochs=2, **fit)                                    # 8 steps
    assert int(model.optimizer.iterations.numpy()) == 8
    np.testing.assert_allclose(float(model.optimizer.learning_rate), _closed_form(1e-2, 20, 0.1, 8),
                               rtol=1e-6)
    model.save(tmp_path / "half.keras")
    resumed = keras.models.load_model(tmp_path / "half.keras")
    assert resumed.optimizer.get_config()["learning_rate"]["class_name"] == "WarmupLearningRate"
    assert int(resumed.optimizer.iterations.numpy()) == 8
    model.fit(x, y, epochs=2, **fit)
    resumed.fit(x, y, epochs=2, **fit)
    np.testing.assert_allclose(float(resumed.optimizer.learning_rate),
                               _closed_form(1e-2, 20, 0.1, 16), rtol=1e-6)
    for a, b in zip(model.weights, resumed.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-7)
    # The ramp changes the trajectory: the same run without warm-up ends elsewhere.
    constant = _regression_model(warmup=0)
    constant.fit(x, y, epochs=4, **fit)
    assert not np.allclose(constant.weights[0].numpy(), model.weights[0].numpy())
