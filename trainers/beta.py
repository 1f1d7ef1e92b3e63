"""β schedules and controllers as strategy objects of the VAE trainer.

A controller is a Keras layer whose state lives in non-trainable weights, so it is saved in
`.keras` files and checkpoints and resumes where it stopped. The trainer calls, once per step:

    beta = controller.beta()            # β used in this step's loss  (scalar tensor)
    gates = controller.block_gates()    # {block name: bool}: which parameter blocks are updated
    ...  apply gradients, block by block (trainers.blocks.BlockOptimizer)  ...
    controller.update(constraint)       # constraint: this step's reconstruction error C (scalar)

Constraint-based controllers (GECO, REWO; Klushyn et al. 2019) read `constraint`; schedules ignore it.

Distributed training: the trainer passes the same (all-reduced, global batch mean) constraint
to every replica, and every state weight is created with `add_state_weight`: synchronisation
ON_WRITE (the default for non-trainable weights under a strategy) with ONLY_FIRST_REPLICA
aggregation, which allows `assign` inside the replica context and writes the first replica's
value to all copies. Since all replicas compute the same value, every replica holds the same
β, step, Ĉ and phase. Without a strategy the aggregation has no effect.
"""

import keras
import tensorflow as tf

from tfpriors._validation import check_non_negative_int

__all__ = ["BetaController", "ConstantBeta", "LinearWarmup", "get_beta_controller"]


class BetaController(keras.layers.Layer):
    """Base class: holds β in a non-trainable weight and a step counter."""

    def __init__(self, initial_beta=1.0, **kwargs):
        super().__init__(**kwargs)
        self.initial_beta = float(initial_beta)
        if not self.initial_beta >= 0.0:
            raise ValueError(f"Expected `initial_beta` >= 0. Received: initial_beta={initial_beta!r}")

    def add_state_weight(self, name, initializer, dtype=None):
        """A scalar non-trainable state weight that `update` may assign in a replica context
        (ONLY_FIRST_REPLICA aggregation; see the module docstring)."""
        return self.add_weight(name=name, shape=(), dtype=dtype, initializer=initializer,
                               trainable=False, aggregation="only_first_replica")

    def build(self, input_shape=None):
        self.beta_variable = self.add_state_weight(
            "beta", keras.initializers.Constant(self.initial_beta))
        self.step = self.add_state_weight("step", "zeros", dtype="int64")
        self.built = True

    def beta(self):
        """β for the current step, a float32 scalar tensor."""
        return tf.convert_to_tensor(self.beta_variable.value)

    def prior_gate(self):
        """1.0 when the prior's weights are trained this step, 0.0 otherwise."""
        return tf.constant(1.0)

    def block_gates(self):
        """{parameter block name: bool scalar tensor}: the blocks updated this step.

        Blocks not named are always updated. A closed block is not touched at all: its weights,
        optimiser moments and step count keep their values (`trainers.blocks`)."""
        return {}

    def update(self, constraint):
        """Advances the controller by one step given this step's constraint value C."""
        self.step.assign_add(1)

    def state(self):
        """The controller's state as a dict of tensors (logged per step)."""
        return {"beta": self.beta()}

    def get_config(self):
        config = super().get_config()
        config.update(initial_beta=self.initial_beta)
        return config


@keras.saving.register_keras_serializable(package="tfpriors")
class ConstantBeta(BetaController):
    """β fixed at `beta` (β = 1 is the ELBO)."""

    def __init__(self, beta=1.0, **kwargs):
        kwargs.pop("initial_beta", None)
        super().__init__(initial_beta=beta, **kwargs)

    def get_config(self):
        config = super().get_config()
        config["beta"] = config.pop("initial_beta")
        return config


@keras.saving.register_keras_serializable(package="tfpriors")
class LinearWarmup(BetaController):
    """Linear warm-up (Bowman et al. 2016; Sønderby et al. 2016) over `warmup_steps` steps.

        β_t = start + (end - start) * min(1, t / warmup_steps)

    The VampPrior paper warms up over 100 epochs: warmup_steps = 100 * steps_per_epoch.
    """

    def __init__(self, warmup_steps, start=0.0, end=1.0, **kwargs):
        kwargs.pop("initial_beta", None)
        super().__init__(initial_beta=start, **kwargs)
        self.warmup_steps = check_non_negative_int("warmup_steps", warmup_steps)
        self.start, self.end = float(start), float(end)

    def update(self, constraint):
        super().update(constraint)
        frac = 1.0 if self.warmup_steps == 0 else tf.minimum(
            1.0, tf.cast(self.step.value, tf.float32) / float(self.warmup_steps))
        self.beta_variable.assign(self.start + (self.end - self.start) * frac)

    def build(self, input_shape=None):
        super().build(input_shape)
        if self.warmup_steps == 0:
            self.beta_variable.assign(self.end)

    def get_config(self):
        config = super().get_config()
        config.pop("initial_beta")
        config.update(warmup_steps=self.warmup_steps, start=self.start, end=self.end)
        return config


CONTROLLERS = {"constant": ConstantBeta, "warmup": LinearWarmup}


def get_beta_controller(name, **kwargs):
    """Builds a controller by name ('constant', 'warmup', and those registered later)."""
    if name not in CONTROLLERS:
        raise ValueError(f"Expected `beta` controller to be one of {sorted(CONTROLLERS)}. "
                         f"Received: {name!r}")
    return CONTROLLERS[name](**kwargs)
