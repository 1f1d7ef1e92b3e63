"""β schedules follow their formulas step by step and keep their state through save/load."""

import keras
import numpy as np
import pytest

from trainers.beta import ConstantBeta, LinearWarmup, get_beta_controller


def test_linear_warmup_follows_its_formula():
    ctl = LinearWarmup(warmup_steps=4, start=0.2, end=1.0)
    ctl.build()
    seen = [float(ctl.beta())]
    for _ in range(6):
        ctl.update(0.0)
        seen.append(float(ctl.beta()))
    np.testing.assert_allclose(seen, [0.2, 0.4, 0.6, 0.8, 1.0, 1.0, 1.0], rtol=1e-6)
    zero = LinearWarmup(warmup_steps=0)
    zero.build()
    assert float(zero.beta()) == 1.0


def test_constant_and_config_round_trip():
    ctl = ConstantBeta(0.5)
    ctl.build()
    ctl.update(3.0)
    assert float(ctl.beta()) == 0.5
    for obj in (ctl, LinearWarmup(7, start=0.1)):
        clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(obj))
        assert clone.get_config() == obj.get_config()


def test_bad_arguments():
    with pytest.raises(ValueError, match="warmup_steps.*Received: warmup_steps=-3"):
        LinearWarmup(-3)
    with pytest.raises(ValueError, match="controller"):
        get_beta_controller("cosine")
    with pytest.raises(ValueError, match="initial_beta"):
        ConstantBeta(-1.0)
