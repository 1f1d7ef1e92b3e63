"""Learning-rate warm-up: a linear ramp of the optimiser's step size over the first steps.

    lr(t) = peak * (start + (1 - start) * min(t / T, 1)),   t = optimiser step, T = warm-up steps

so the rate starts at `start * peak` and is `peak` from step T on. With T = 0 it is `peak` from
the first step.

Why the pendulum runs use it (benchmarks/README.md, "Pendulum"): the topology of the latent ring that VHP + REWO
learns is set within the first hundred Adam steps. At a constant 1e-3, Adam moves every weight
of a freshly initialised network by about 1e-3 per step in the sign of its gradient, and in some
seeds the encoder's curve folds over itself at once; REWO's β then rises on a folded loop and
never unfolds it. Starting at a tenth of the rate (the VHP paper's own 1e-4, Table 3) and ramping
up kept the early curve a simple loop in the seeds we screened, and the full rate afterwards
reaches the paper's figure in a CPU-sized budget (4 of 5 blurred seeds at or below 0.054 rad,
against 3 of 5 at a constant 1e-3). The step counter is the optimiser's `iterations`, which
`.keras` files and `BackupAndRestore` checkpoints save, so a resumed run continues the ramp where
it stopped.
"""

import math

import keras

from tfpriors._validation import check_non_negative_int

__all__ = ["WarmupLearningRate", "learning_rate_for"]


@keras.saving.register_keras_serializable(package="tfpriors")
class WarmupLearningRate(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from `start * peak` to `peak` over `warmup_steps` optimiser steps.

    Args:
      peak: the learning rate after the warm-up, > 0.
      warmup_steps: T >= 0 steps of the ramp (0: constant `peak`).
      start: the first step's rate as a fraction of `peak`, in (0, 1].

    Raises:
      ValueError: for a non-positive or non-finite `peak`, a negative or non-integer
        `warmup_steps`, or `start` outside (0, 1].
    """

    def __init__(self, peak, warmup_steps, start=0.1):
        peak_value = _as_float(peak)
        if not (math.isfinite(peak_value) and peak_value > 0.0):
            raise ValueError(f"Expected `peak` (learning rate) to be a finite number > 0. Received: "
                             f"peak={peak!r}")
        start_value = _as_float(start)
        if not (0.0 < start_value <= 1.0):
            raise ValueError(f"Expected `start` (first rate as a fraction of peak) in (0, 1]. "
                             f"Received: start={start!r}")
        self.peak = peak_value
        self.warmup_steps = check_non_negative_int("warmup_steps", warmup_steps)
        self.start = start_value

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        if self.warmup_steps == 0:
            return keras.ops.full_like(step, self.peak)
        progress = keras.ops.minimum(step / float(self.warmup_steps), 1.0)
        return self.peak * (self.start + (1.0 - self.start) * progress)

    def get_config(self):
        return {"peak": self.peak, "warmup_steps": self.warmup_steps, "start": self.start}


def learning_rate_for(learning_rate, warmup_steps, start=0.1):
    """What to pass to an optimiser: the plain rate when `warmup_steps` is 0, else the ramp."""
    if check_non_negative_int("warmup_steps", warmup_steps) == 0:
        return learning_rate
    return WarmupLearningRate(learning_rate, warmup_steps, start)


def _as_float(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")
