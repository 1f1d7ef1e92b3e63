"""GECO, REWO and the App. B.1 controller follow the paper's equations step by step (numpy
references below), switch phase at the first Ĉ_t < κ², keep their state through save/load and
run inside `fit` with and without XLA."""

import json

import keras
import numpy as np
import pytest

from tests.helpers import SHAPE
from tfpriors.likelihoods import GaussianLikelihood
from tfpriors.networks import MLPDecoder, MLPEncoder
from tfpriors.priors.vhp import HierarchicalPrior
from trainers import VAE
from trainers.beta import get_beta_controller
from trainers.constraint_control import GECO, REWO, SigmoidREWO


# ---------------------------------------------------------------- numpy references (Klushyn et al. 2019)
def running_average(cs, alpha):
    """Ĉ_t = (1 - α) Ĉ_ba + α Ĉ_{t-1}, Ĉ_0 = Ĉ_ba of the first batch."""
    out, prev = [], cs[0]
    for c in cs:
        prev = (1 - alpha) * c + alpha * prev
        out.append(prev)
    return np.array(out)


def geco_reference(cs, kappa, nu, alpha, beta0):
    """Eq. (5): λ_t = λ_{t-1} exp(ν (Ĉ_t - κ²)), β = 1/λ."""
    lam, betas = 1.0 / beta0, []
    for c_hat in running_average(cs, alpha):
        lam = lam * np.exp(nu * (c_hat - kappa ** 2))
        betas.append(1.0 / lam)
    return np.array(betas)


def f_beta(beta, delta, tau):
    """Eq. (12): (1 - H(δ)) tanh(τ (β - 1)) - H(δ)."""
    h = np.heaviside(delta, 0.5)
    return (1 - h) * np.tanh(tau * (beta - 1)) - h


def rewo_reference(cs, kappa, nu, tau, alpha, beta0, initial_phase=True):
    """Alg. 1 with Eq. (11); β capped at 1 once at or below 1. Returns β_t and the phase flags."""
    beta, main, betas, phases = beta0, not initial_phase, [], []
    for c_hat in running_average(cs, alpha):
        delta = c_hat - kappa ** 2
        if c_hat < kappa ** 2:
            main = True
        if main:
            beta = min(beta * np.exp(nu * f_beta(beta, delta, tau) * delta), max(beta, 1.0))
        betas.append(beta)
        phases.append(float(main))
    return np.array(betas), np.array(phases)


def sigmoid_rewo_reference(cs, kappa, nu, tau, alpha, beta0):
    """Alg. 1 with App. B.1, Eqs. (14)-(15): γ_t = γ_{t-1} exp(ν δ_t), β_t = 1 / (1 + τ γ_t)."""
    gamma, main, betas = (1.0 / beta0 - 1.0) / tau, False, []
    for c_hat in running_average(cs, alpha):
        if c_hat < kappa ** 2:
            main = True
        if main:
            gamma = gamma * np.exp(nu * (c_hat - kappa ** 2))
        betas.append(1.0 / (1.0 + tau * gamma))
    return np.array(betas)


def run(ctl, cs):
    """Feeds the scripted batch constraints; returns the per-step state after each update."""
    ctl.build()
    states = []
    for c in cs:
        ctl.update(np.float32(c))
        states.append({k: float(v) for k, v in ctl.state().items()} | {"gate": float(ctl.prior_gate())})
    return {k: np.array([s[k] for s in states]) for k in states[0]}


# Batch constraints around κ² = 0.01 (κ = 0.1): violated, satisfied (the running average
# crosses at step 6), violated again, then satisfied.
SCRIPT = np.array([0.05, 0.04, 0.03, 0.02, 0.012, 0.002, 0.0, 0.03, 0.04, 0.005, 0.0, 0.001, 0.0, 0.0])


def test_running_average_starts_at_the_first_batch():
    out = run(GECO(kappa=0.1, nu=1.0, alpha=0.7), SCRIPT)
    np.testing.assert_allclose(out["constraint_average"], running_average(SCRIPT, 0.7), rtol=1e-6)
    assert out["constraint_average"][0] == pytest.approx(SCRIPT[0])


def test_geco_follows_eq_5():
    out = run(GECO(kappa=0.1, nu=20.0, alpha=0.5, initial_beta=0.8), SCRIPT)
    expected = geco_reference(SCRIPT, 0.1, 20.0, 0.5, 0.8)
    np.testing.assert_allclose(out["beta"], expected, rtol=1e-5)
    assert np.all(out["gate"] == 1.0)
    # λ rises (β falls) while Ĉ_t > κ² and falls (β rises) while Ĉ_t < κ².
    rises = np.diff(np.concatenate([[0.8], out["beta"]])) > 0
    np.testing.assert_array_equal(rises, running_average(SCRIPT, 0.5) < 0.01)


def test_rewo_follows_eqs_11_12_and_switches_phase_at_the_first_c_below_kappa_squared():
    kappa, nu, tau, alpha, beta0 = 0.1, 50.0, 3.0, 0.5, 0.05
    out = run(REWO(kappa=kappa, nu=nu, tau=tau, alpha=alpha, initial_beta=beta0), SCRIPT)
    expected, phases = rewo_reference(SCRIPT, kappa, nu, tau, alpha, beta0)
    np.testing.assert_allclose(out["beta"], expected, rtol=1e-5)
    switch = int(np.argmax(running_average(SCRIPT, alpha) < kappa ** 2))
    assert switch == 6
    np.testing.assert_array_equal(out["prior_gate"], phases)
    np.testing.assert_array_equal(out["gate"], [0.0] * switch + [1.0] * (len(SCRIPT) - switch))
    np.testing.assert_allclose(out["beta"][:switch], beta0)          # frozen in the initial phase
    assert out["beta"][switch] > beta0                               # first update at the switch
    # Violated again at step 8-9: β decreases as in GECO (f_β = -1), the phase stays "main".
    c_hat = running_average(SCRIPT, alpha)
    for t in range(switch + 1, len(SCRIPT)):
        if c_hat[t] > kappa ** 2:
            np.testing.assert_allclose(out["beta"][t], out["beta"][t - 1] * np.exp(-nu * (c_hat[t] - kappa ** 2)),
                                       rtol=1e-5)
    assert np.all(out["beta"] <= 1.0)


def test_rewo_without_initial_phase_updates_from_the_first_step():
    out = run(REWO(kappa=0.1, nu=50.0, alpha=0.5, initial_beta=0.05, initial_phase=False), SCRIPT)
    expected, phases = rewo_reference(SCRIPT, 0.1, 50.0, 3.0, 0.5, 0.05, initial_phase=False)
    np.testing.assert_allclose(out["beta"], expected, rtol=1e-5)
    assert np.all(phases == 1.0) and np.all(out["gate"] == 1.0)


@pytest.mark.parametrize("beta0", [0.1, 5.0])
def test_rewo_beta_converges_to_one_from_below_and_from_above(beta0):
    cs = np.zeros(250)                   # the constraint holds throughout: δ = -κ²
    out = run(REWO(kappa=0.3, nu=2.0, tau=3.0, alpha=0.0, initial_beta=beta0), cs)
    expected, _ = rewo_reference(cs, 0.3, 2.0, 3.0, 0.0, beta0)
    np.testing.assert_allclose(out["beta"], expected, rtol=1e-5)
    path = np.concatenate([[beta0], out["beta"]])
    steps = np.diff(path)
    if beta0 < 1:
        assert np.all(steps >= 0) and np.all(path <= 1.0)
    else:
        assert np.all(steps <= 0) and np.all(path >= 1.0 - 1e-6)
    assert out["beta"][-1] == pytest.approx(1.0, abs=1e-5)


def test_rewo_caps_beta_at_one_where_eq_11_would_step_over():
    # ν τ κ² = 15 > 1: one step of Eq. (11) from β = 0.5 lands far above 1.
    kappa, nu, tau, beta0 = 1.0, 5.0, 3.0, 0.5
    raw = beta0 * np.exp(nu * f_beta(beta0, -kappa ** 2, tau) * -kappa ** 2)
    assert raw > 1.5
    out = run(REWO(kappa=kappa, nu=nu, tau=tau, alpha=0.0, initial_beta=beta0), np.zeros(3))
    np.testing.assert_array_equal(out["beta"], [1.0, 1.0, 1.0])


def test_sigmoid_rewo_follows_eqs_14_15():
    kappa, nu, tau, alpha, beta0 = 0.1, 200.0, 3.0, 0.5, 0.05
    out = run(SigmoidREWO(kappa=kappa, nu=nu, tau=tau, alpha=alpha, initial_beta=beta0), SCRIPT)
    expected = sigmoid_rewo_reference(SCRIPT, kappa, nu, tau, alpha, beta0)
    np.testing.assert_allclose(out["beta"], expected, rtol=1e-5)
    np.testing.assert_array_equal(out["gate"], [0.0] * 6 + [1.0] * (len(SCRIPT) - 6))
    assert np.all((out["beta"] > 0) & (out["beta"] < 1)) and out["beta"][6] > beta0
    np.testing.assert_allclose(np.exp(out["log_gamma"]), (1 / expected - 1) / tau, rtol=1e-4)


def test_defaults_config_round_trip_and_registry():
    rewo = REWO()
    assert (rewo.kappa, rewo.nu, rewo.tau, rewo.alpha, rewo.initial_beta) == (0.02, 5.0, 3.0, 0.99, 1e-3)
    assert (GECO().kappa, GECO().nu, GECO().initial_beta) == (0.02, 5.0, 1.0)
    for ctl in (GECO(0.1, 2.0, alpha=0.5, initial_beta=0.3), REWO(0.2, nu=1.0, initial_phase=False),
                SigmoidREWO(0.3, tau=2.0, initial_beta=0.2)):
        clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(ctl))
        assert type(clone) is type(ctl) and clone.get_config() == ctl.get_config()
    assert isinstance(get_beta_controller("rewo", kappa=0.05), REWO)
    assert isinstance(get_beta_controller("geco"), GECO)
    assert isinstance(get_beta_controller("rewo_sigmoid"), SigmoidREWO)


@pytest.mark.parametrize("cls", [GECO, REWO, SigmoidREWO])
def test_bad_arguments_are_clear_errors(cls):
    with pytest.raises(ValueError, match="kappa.*Received: kappa=0"):
        cls(kappa=0)
    with pytest.raises(ValueError, match="kappa.*Received: kappa=-0.1"):
        cls(kappa=-0.1)
    with pytest.raises(ValueError, match="nu.*Received: nu=0"):
        cls(nu=0)
    with pytest.raises(ValueError, match=r"alpha.*\[0, 1\).*Received: alpha=1.0"):
        cls(alpha=1.0)
    with pytest.raises(ValueError, match="alpha.*Received: alpha=-0.2"):
        cls(alpha=-0.2)
    with pytest.raises(ValueError, match="initial_beta.*Received: initial_beta=0"):
        cls(initial_beta=0)
    if cls is not GECO:
        with pytest.raises(ValueError, match="tau.*Received: tau=-3"):
            cls(tau=-3)
    if cls is SigmoidREWO:
        with pytest.raises(ValueError, match=r"initial_beta.*\(0, 1\).*Received: initial_beta=1.0"):
            cls(initial_beta=1.0)


# ---------------------------------------------------------------- inside the trainer
def make_model(controller, seed=0):
    keras.utils.set_random_seed(seed)
    model = VAE(MLPEncoder(2, SHAPE, hidden_units=(16,)), MLPDecoder(2, SHAPE, hidden_units=(16,)),
                HierarchicalPrior(2, hidden_units=(8, 8), num_samples=4), GaussianLikelihood(scale=0.3),
                beta=controller, seed=seed)
    model.build((None,) + SHAPE)
    model.compile(keras.optimizers.Adam(1e-2))
    return model


def images(n, seed=0):
    return np.random.default_rng(seed).random((n,) + SHAPE).astype("float32")


def test_resumed_training_equals_uninterrupted_training_across_the_phase_switch(tmp_path):
    x = images(16)
    fit = dict(batch_size=16, shuffle=False, verbose=0)          # one step per epoch

    def rewo(kappa):
        return REWO(kappa=kappa, nu=200.0, alpha=0.5, initial_beta=0.01)

    # In the initial phase nothing depends on κ: a probe run gives Ĉ_t, and κ is placed so
    # that the switch happens at step 5, after the save at step 3.
    probe = make_model(rewo(1e-4)).fit(x, epochs=5, **fit).history["constraint_average"]
    assert min(probe[:4]) > probe[4], probe
    kappa = float(np.sqrt((min(probe[:4]) + probe[4]) / 2))

    full = make_model(rewo(kappa))
    full_history = full.fit(x, epochs=7, **fit).history
    assert full_history["prior_gate"] == [0.0] * 4 + [1.0] * 3
    part = make_model(rewo(kappa))
    part.fit(x, epochs=3, **fit)
    assert float(part.beta_controller.prior_gate()) == 0.0
    part.save(tmp_path / "half.keras")
    resumed = keras.models.load_model(tmp_path / "half.keras")
    assert isinstance(resumed.beta_controller, REWO)
    resumed_history = resumed.fit(x, epochs=4, **fit).history
    for key in ("beta_last", "constraint_average", "prior_gate"):
        np.testing.assert_allclose(resumed_history[key], full_history[key][3:], rtol=1e-5, err_msg=key)
    assert full_history["beta_last"][-1] > 0.01                  # β moved after the switch
    assert len(full.weights) == len(resumed.weights)
    for a, b in zip(full.weights, resumed.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6, err_msg=a.path)
    ctl = resumed.beta_controller
    assert int(ctl.step.value) == 7 and float(ctl.main_phase.value) == 1.0
    assert json.dumps(resumed.get_config()) == json.dumps(part.get_config())


@pytest.mark.parametrize("jit", [False, True])
def test_short_fit_with_rewo_and_vhp_logs_the_controller_state(jit):
    # jit=False: κ tiny, the constraint never holds, the prior stays frozen (gate 0).
    # jit=True: κ large, the constraint holds at once, the prior trains and β rises.
    kappa = 1e-3 if not jit else 2.0
    model = make_model(REWO(kappa=kappa, nu=5.0, alpha=0.5, initial_beta=0.01))
    model.compile(keras.optimizers.Adam(1e-2), jit_compile=jit)
    before = [v.numpy().copy() for v in model.prior.trainable_variables]
    history = model.fit(images(60), batch_size=10, epochs=5, verbose=0).history
    for key in ("loss", "beta", "beta_last", "constraint_average", "prior_gate", "constraint"):
        assert key in history and np.all(np.isfinite(history[key])), key
    assert int(model.beta_controller.step.value) == 30
    changed = [not np.array_equal(b, v.numpy()) for b, v in zip(before, model.prior.trainable_variables)]
    if jit:
        assert all(changed) and history["prior_gate"][-1] == 1.0
        assert history["beta_last"][-1] > 0.01
    else:
        assert not any(changed) and history["prior_gate"] == [0.0] * 5
        assert history["beta_last"] == [pytest.approx(0.01)] * 5


def test_geco_beta_never_underflows_to_zero_and_recovers():
    from trainers.constraint_control import GECO
    ctl = GECO(kappa=0.02, nu=5.0, alpha=0.0)
    ctl.build()
    for _ in range(200):                      # C = 0.6 >> κ²: β shrinks by exp(-3) per step
        ctl.update(0.6)
    low = float(ctl.beta())
    assert low > 0.0
    for _ in range(5):                        # constraint satisfied: β grows again
        ctl.update(0.0)
    assert float(ctl.beta()) > low
