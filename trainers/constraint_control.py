"""Constraint-based β controllers: GECO and REWO (Klushyn et al. 2019, Sec. 2; App. B.1).

The VAE objective is read as the Lagrangian of "minimise KL subject to E[C] <= κ²" (Eq. 4),
with β = 1/λ and C the reconstruction error (the trainer passes the batch mean Ĉ_ba of the
per-pixel squared error). Every controller keeps the running average (Sec. 2.1)

    Ĉ_t = (1 - α) Ĉ_ba + α Ĉ_{t-1},   Ĉ_0 = Ĉ_ba  (so Ĉ_1 = Ĉ_ba of the first batch),
    δ_t = Ĉ_t - κ²   (δ > 0: constraint violated)

and then updates β:

  GECO (Eq. 5):       λ_t = λ_{t-1} exp(ν δ_t),  i.e.  β_t = β_{t-1} exp(-ν δ_t).
  REWO (Alg. 1, Eqs. 11-12):
                      β_t = β_{t-1} exp(ν f_β(β_{t-1}, δ_t; τ) δ_t),
                      f_β(β, δ; τ) = (1 - H(δ)) tanh(τ (β - 1)) - H(δ),
                      H the Heaviside step. Violated: β_t = β_{t-1} exp(-ν δ) (= GECO);
                      satisfied: β moves towards 1 from either side.
  SigmoidREWO (App. B.1, Eqs. 14-15):
                      γ_t = γ_{t-1} exp(ν δ_t),  β_t = 1 / (1 + τ γ_t)   (β in (0, 1)),
                      equivalently logit β_t = logit β_{t-1} - ν δ_t.

REWO's initial phase (Alg. 1): β stays at its initial value (β ≪ 1) and only the encoder and
decoder are trained (`prior_gate()` = 0, the prior's parameter block closed: see
`trainers.blocks`) until Ĉ_t < κ² for the first time; from that step on β
is updated every step and the prior is trained jointly (`prior_gate()` = 1), for good.

Distributed training: `constraint` is the global batch mean (the trainer all-reduces it), and
the state weights (Ĉ, phase, log γ) are ONLY_FIRST_REPLICA weights (`add_state_weight`), so
every replica updates the same state the same way.

Timing: the trainer reads `beta()` and `prior_gate()` before `update(C)` of the same step (C
comes out of the forward pass that also gives the loss), so a value computed from batch t is
used from step t + 1 on; Alg. 1 uses it within step t. This one-step lag is the only deviation.
"""

import math

import keras
import tensorflow as tf

from tfpriors._validation import check_positive_float
from trainers.beta import CONTROLLERS, BetaController

__all__ = ["GECO", "REWO", "SigmoidREWO"]

_SMALLEST_BETA = 1.1754944e-38   # smallest normal float32


def _check_alpha(alpha):
    try:
        value = float(alpha)
    except (TypeError, ValueError):
        value = float("nan")
    if not 0.0 <= value < 1.0:
        raise ValueError(f"Expected `alpha` (running-average weight of the past) in [0, 1). "
                         f"Received: alpha={alpha!r}")
    return value


class _ConstraintController(BetaController):
    """Base of the constraint-based controllers: the running average Ĉ_t and δ_t = Ĉ_t - κ².

    Args:
      kappa: κ > 0; the constraint is E[C] <= κ².
      nu: ν > 0, the learning rate of the β (λ) update.
      alpha: α in [0, 1), the weight of the past in the running average Ĉ_t.
      initial_beta: β_0 > 0.

    Subclasses define `_next_beta(c_hat)` (assigns β from Ĉ_t) and may add state in `build`.
    """

    def __init__(self, kappa, nu, alpha=0.99, initial_beta=1.0, **kwargs):
        initial_beta = check_positive_float("initial_beta", initial_beta)
        super().__init__(initial_beta=initial_beta, **kwargs)
        self.kappa = check_positive_float("kappa", kappa)
        self.nu = check_positive_float("nu", nu)
        self.alpha = _check_alpha(alpha)

    def build(self, input_shape=None):
        super().build(input_shape)
        self.constraint_average = self.add_state_weight("constraint_average", "zeros")

    def update(self, constraint):
        """Ĉ_t = (1 - α) C + α Ĉ_{t-1} (Ĉ_0 = C), then the subclass's β update."""
        c = tf.cast(tf.convert_to_tensor(constraint), tf.float32)
        previous = tf.where(tf.equal(self.step.value, 0), c, self.constraint_average.value)
        c_hat = (1.0 - self.alpha) * c + self.alpha * previous
        self.constraint_average.assign(c_hat)
        self._next_beta(c_hat)
        super().update(constraint)

    def state(self):
        return {"beta": self.beta(),
                "constraint_average": tf.convert_to_tensor(self.constraint_average.value)}

    def get_config(self):
        config = super().get_config()
        config.update(kappa=self.kappa, nu=self.nu, alpha=self.alpha)
        return config


@keras.saving.register_keras_serializable(package="tfpriors")
class GECO(_ConstraintController):
    """GECO (Rezende & Viola 2018) as in Klushyn et al. (2019), Eq. (5), with β = 1/λ.

        λ_t = λ_{t-1} exp(ν (Ĉ_t - κ²)),   β_t = 1 / λ_t = β_{t-1} exp(-ν (Ĉ_t - κ²))

    β is unbounded above (the update settles where Ĉ = κ²); the prior is always trained.

    Args:
      kappa: κ (pendulum, Table 3: 0.02).
      nu: ν (pendulum, Table 3: 5).
      alpha: α of the running average; the paper gives no value, 0.99 is GECO's (Rezende & Viola).
      initial_beta: β_0 = 1/λ_0, default 1 (λ_0 = 1 as in GECO).
    """

    def __init__(self, kappa=0.02, nu=5.0, alpha=0.99, initial_beta=1.0, **kwargs):
        super().__init__(kappa, nu, alpha, initial_beta, **kwargs)

    def _next_beta(self, c_hat):
        delta = c_hat - self.kappa ** 2
        # A violated constraint early in training (C around 0.5 >> κ²) shrinks β by exp(-ν δ) per
        # step; in float32 it would reach exactly 0 within ~40 steps and never move again. The
        # floor at the smallest normal float32 keeps the multiplicative update able to recover.
        beta = self.beta_variable.value * tf.exp(-self.nu * delta)
        self.beta_variable.assign(tf.maximum(beta, _SMALLEST_BETA))


class _PhasedController(_ConstraintController):
    """Adds REWO's initial phase: β frozen and prior gated off until Ĉ_t < κ² first holds."""

    def __init__(self, kappa, nu, tau, alpha, initial_beta, initial_phase, **kwargs):
        super().__init__(kappa, nu, alpha, initial_beta, **kwargs)
        self.tau = check_positive_float("tau", tau)
        self.initial_phase = bool(initial_phase)

    def build(self, input_shape=None):
        super().build(input_shape)
        # 0.0 in the initial phase, 1.0 in the main phase (float so that it logs and multiplies).
        self.main_phase = self.add_state_weight(
            "main_phase", keras.initializers.Constant(0.0 if self.initial_phase else 1.0))

    def prior_gate(self):
        return tf.convert_to_tensor(self.main_phase.value)

    def block_gates(self):
        """The prior's block is closed in the initial phase (`trainers.blocks`): its optimiser
        starts, like a fresh one, at the first step of the main phase."""
        return {"prior": self.main_phase.value > 0.5}

    def _enter_main_phase(self, delta):
        """Switches to the main phase at the first Ĉ_t < κ²; returns the (new) phase flag."""
        main = tf.maximum(self.main_phase.value, tf.cast(delta < 0.0, tf.float32))
        self.main_phase.assign(main)
        return main

    def state(self):
        state = super().state()
        state["prior_gate"] = self.prior_gate()
        return state

    def get_config(self):
        config = super().get_config()
        config.update(tau=self.tau, initial_phase=self.initial_phase)
        return config


@keras.saving.register_keras_serializable(package="tfpriors")
class REWO(_PhasedController):
    """REWO: reconstruction-error-based weighting of the objective (Alg. 1, Eqs. 11-12).

        δ_t = Ĉ_t - κ²
        f_β(β, δ; τ) = (1 - H(δ)) tanh(τ (β - 1)) - H(δ)
        β_t = min(β_{t-1} exp(ν f_β(β_{t-1}, δ_t; τ) δ_t), max(β_{t-1}, 1))   (main phase only)

    The `min` enforces the paper's β in (0, 1] ("we impose β ∈ (0, 1]") for runs started at
    β_0 <= 1: Eq. (11) alone can step over 1 when ν τ |δ| > 1, which needs ν τ κ² > 1 because
    |δ| <= κ² whenever the constraint holds (0.3 with the pendulum values, so it never binds
    there). A β_0 > 1 (allowed by Eq. 11, App. B.1) only decreases until it reaches 1.

    Args:
      kappa: κ (pendulum, Table 3: 0.02).
      nu: ν (pendulum, Table 3: 5).
      tau: τ, slope of the tanh (Fig. 1: 3).
      alpha: α of the running average (not given in the paper; 0.99 as in GECO).
      initial_beta: β_0; Alg. 1 only says β ≪ 1, default 1e-3 (our choice).
      initial_phase: start in the initial phase (Alg. 1); False starts in the main phase.
    """

    def __init__(self, kappa=0.02, nu=5.0, tau=3.0, alpha=0.99, initial_beta=1e-3,
                 initial_phase=True, **kwargs):
        super().__init__(kappa, nu, tau, alpha, initial_beta, initial_phase, **kwargs)

    def _next_beta(self, c_hat):
        delta = c_hat - self.kappa ** 2
        main = self._enter_main_phase(delta)
        beta = self.beta_variable.value
        step = tf.cast(delta > 0.0, tf.float32)                     # H(δ); H(0) is irrelevant (δ = 0)
        f_beta = (1.0 - step) * tf.tanh(self.tau * (beta - 1.0)) - step
        updated = tf.minimum(beta * tf.exp(self.nu * f_beta * delta), tf.maximum(beta, 1.0))
        self.beta_variable.assign(tf.where(main > 0.0, updated, beta))


@keras.saving.register_keras_serializable(package="tfpriors")
class SigmoidREWO(_PhasedController):
    """REWO with the alternative β update of App. B.1 (Eqs. 14-15): β = 1 / (1 + τ γ).

        γ_t = γ_{t-1} exp(ν (Ĉ_t - κ²)),   β_t = 1 / (1 + τ γ_t)      (main phase only)

    a GECO update of the shifted multiplier λ = 1 + τ γ >= 1, so β stays in (0, 1) and is the
    logistic sigmoid of -log(τ γ): logit β_t = logit β_{t-1} - ν δ_t. γ_0 follows from β_0:
    γ_0 = (1/β_0 - 1) / τ, hence 0 < β_0 < 1 (App. B.1: only Eq. 11 allows any β_0 > 0).
    γ is stored as log γ.

    Args: as `REWO`; `initial_beta` must lie in (0, 1).
    """

    def __init__(self, kappa=0.02, nu=5.0, tau=3.0, alpha=0.99, initial_beta=1e-3,
                 initial_phase=True, **kwargs):
        super().__init__(kappa, nu, tau, alpha, initial_beta, initial_phase, **kwargs)
        if not self.initial_beta < 1.0:
            raise ValueError(f"Expected `initial_beta` in (0, 1) for the App. B.1 update "
                             f"β = 1/(1 + τγ). Received: initial_beta={initial_beta!r}")

    def build(self, input_shape=None):
        super().build(input_shape)
        log_gamma = math.log((1.0 / self.initial_beta - 1.0) / self.tau)
        self.log_gamma = self.add_state_weight("log_gamma", keras.initializers.Constant(log_gamma))

    def _next_beta(self, c_hat):
        delta = c_hat - self.kappa ** 2
        main = self._enter_main_phase(delta)
        log_gamma = self.log_gamma.value + main * self.nu * delta
        self.log_gamma.assign(log_gamma)
        # 1 / (1 + τ γ) = sigmoid(-(log τ + log γ)), stable for any γ.
        self.beta_variable.assign(tf.sigmoid(-(math.log(self.tau) + log_gamma)))

    def state(self):
        state = super().state()
        state["log_gamma"] = tf.convert_to_tensor(self.log_gamma.value)
        return state


CONTROLLERS.update(geco=GECO, rewo=REWO, rewo_sigmoid=SigmoidREWO)
