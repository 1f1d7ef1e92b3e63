"""Block-wise optimisation: one optimiser state and step counter per parameter block.

A model's trainable variables fall into named blocks (`VAE.parameter_blocks()`: the encoder and
decoder, the prior, later a hyper prior). `BlockOptimizer` wraps the optimiser the user
compiles with and gives every block its own copy of it, built from the same configuration, so
that each block has its own moments and its own step count t:

    Adam on block b:  m_b <- β1 m_b + (1 - β1) g_b,  v_b <- β2 v_b + (1 - β2) g_b²,
                      θ_b <- θ_b - lr(T) * (m_b / (1 - β1^t_b)) / (sqrt(v_b / (1 - β2^t_b)) + ε)

with t_b counting only the steps on which block b was updated and T the global step (the
wrapper's `iterations`). Every step the trainer passes a gate per block (a boolean tensor,
e.g. REWO's `{"prior": main_phase}`): a block whose gate is False is not updated at all (its
weights, moments and t_b keep their exact values), and a block that is opened late starts like a
fresh optimiser (t_b = 0, zero moments), whatever the other blocks did meanwhile.

Why not one optimiser with the gated block's gradients multiplied by zero: Keras' Adam keeps
one step count for all variables, so after N gated steps the first real update of the block is
divided by (1 - β1^(N+1)) ≈ 1 instead of (1 - β1) while its second moment is still near zero:
the block's first updates are several times the learning rate (tests/test_blocks.py measures
it), and a block that has trained before keeps moving on its momentum while "frozen".

Options of the wrapped optimiser act per block: `clipnorm` clips each variable as before, but
`global_clipnorm` clips each block's gradients by that block's norm, not the norm of all of them.

Learning-rate schedules are evaluated at the global step T (the run's timeline: a warm-up or
decay is a function of training progress, shared by every block); `learning_rate` reads and
sets the shared rate, so Keras callbacks that change it act on every block.

Implementation: the gate is applied without `tf.cond` (a merge_call under `tf.distribute`
cannot sit inside a cond branch): the gated block's variables (weights, slots, t_b) are read,
the block's optimiser applies its update, and every variable is then assigned
`where(gate, new, old)` in the cross-replica context (`extended.update`), so frozen values are
bitwise unchanged on every device. Blocks without a gate skip the copy.

State: the block optimisers are saved with the model (`.keras` files, `save_weights`,
`BackupAndRestore`) under `optimizer/block_optimizers`. A file written by a single optimiser
(before this module existed) loads with a warning and fresh block states.
"""

import warnings

import keras
import tensorflow as tf

__all__ = ["BlockOptimizer"]


def _as_tf_variable(variable):
    return variable.value if isinstance(variable, keras.Variable) else variable


def _restore_where_closed(distribution, gate, pairs):
    """In the cross-replica context: var <- where(gate, var, old) for every (var, old)."""
    def keep_or_restore(var, old, gate):
        return var.assign(tf.where(gate, var, tf.cast(old, var.dtype)))

    # gate and old are per-replica values under a strategy (equal in every replica); update()
    # hands each device its own.
    for var, old in pairs:
        distribution.extended.update(var, keep_or_restore, args=(old, gate), group=False)


@keras.saving.register_keras_serializable(package="tfpriors")
class BlockOptimizer(keras.optimizers.Optimizer):
    """An optimiser per parameter block, driven by per-block gates (see the module docstring).

    Args:
      optimizer: the optimiser to copy per block: a `keras.optimizers.Optimizer`, its name
        ('adam') or its serialised config. Its learning rate (float or schedule) becomes the
        shared rate.
      name: the wrapper's name.

    The block partition comes from the model: `set_partition(fn)` with fn() -> dict
    {block name: list of variables}; `VAE.compile` sets it. Without a partition every variable
    is one block, "all".
    """

    def __init__(self, optimizer="adam", name="block_optimizer", **kwargs):
        template = keras.optimizers.get(optimizer)
        if isinstance(template, BlockOptimizer):
            template = template.template()
        if isinstance(template, keras.optimizers.LossScaleOptimizer):
            raise ValueError("Expected an optimizer without loss scaling: block-wise optimisation "
                             "does not support mixed_float16 (use mixed_bfloat16, which needs no "
                             f"loss scale). Received: {type(template).__name__}")
        config = template.get_config()
        lr = config["learning_rate"]
        if isinstance(lr, dict):
            lr = keras.saving.deserialize_keras_object(lr)
        for key in ("learning_rate", "name"):
            kwargs.pop(key, None)
        super().__init__(learning_rate=lr, name=name, **kwargs)
        # The class and config only: an optimiser held as an attribute would be saved too.
        self._template_class = type(template)
        self._template_config = config
        self._partition = None
        object.__setattr__(self, "block_names", [])
        object.__setattr__(self, "block_optimizers", [])

    def template(self):
        """A new optimiser built from the wrapped optimiser's configuration."""
        return self._template_class.from_config(dict(self._template_config))

    # ------------------------------------------------------------------ blocks
    def set_partition(self, partition):
        """partition: callable () -> dict {block name: list of variables}, read at build."""
        self._partition = partition

    def _blocks(self, var_list):
        if self._partition is None:
            return {"all": list(var_list)}
        blocks = {name: list(vs) for name, vs in self._partition().items()}
        in_blocks = {id(v) for vs in blocks.values() for v in vs}
        missing = [v.path for v in var_list if id(v) not in in_blocks]
        if missing:
            raise ValueError(f"Expected every trainable variable to belong to a parameter block. "
                             f"Received variables outside {sorted(blocks)}: {missing}")
        return blocks

    def _block_optimizer(self, name):
        config = dict(self._template_config, name=f"{name}_optimizer")
        # A variable that `apply_block_gradients` sets to the shared rate before every update.
        rate = config["learning_rate"]
        config["learning_rate"] = float(rate) if isinstance(rate, (int, float)) else 0.0
        return self._template_class.from_config(config)

    @property
    def blocks(self):
        """dict {block name: its optimiser} (after build)."""
        return dict(zip(self.block_names, self.block_optimizers))

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        names, optimizers = [], []
        for name, variables in self._blocks(var_list).items():
            optimizer = self._block_optimizer(name)
            optimizer.build(variables)
            names.append(name)
            optimizers.append(optimizer)
        # Plain attribute assignment: Keras' saver walks these lists (optimizer/block_optimizers).
        object.__setattr__(self, "block_names", names)
        object.__setattr__(self, "block_optimizers", optimizers)
        self._block_of = {id(v): name for name, opt in zip(names, optimizers)
                          for v in opt._trainable_variables}

    # ------------------------------------------------------------------ updates
    def apply_block_gradients(self, grads_and_vars, gates=None):
        """Applies each block's gradients with its own optimiser.

        Args:
          grads_and_vars: (gradient, variable) pairs of any trainable variables; None
            gradients are skipped.
          gates: dict {block name: bool scalar tensor}; a block whose gate is False is left
            exactly as it is. Blocks not named are always updated.
        """
        grads_and_vars = list(grads_and_vars)
        if not self.built:
            self.build([v for _, v in grads_and_vars])
        gates = dict(gates or {})
        unknown = set(gates) - set(self.block_names)
        if unknown:
            raise ValueError(f"Expected gates for the blocks {self.block_names}. "
                             f"Received gates for {sorted(unknown)}")
        per_block = {name: [] for name in self.block_names}
        for grad, var in grads_and_vars:
            if grad is None:
                continue
            if id(var) not in self._block_of:
                raise ValueError(f"Expected variables of the blocks {self.block_names}. "
                                 f"Received {var.path}, which is in none")
            per_block[self._block_of[id(var)]].append((grad, var))
        # A tensor, not the shared rate's variable: assigning a variable to an optimiser's
        # attribute would make Keras track it as one of that optimiser's variables.
        rate = tf.convert_to_tensor(self._get_current_learning_rate())
        for name, optimizer in self.blocks.items():
            if not per_block[name]:
                continue
            optimizer._learning_rate.assign(tf.cast(rate, optimizer._learning_rate.dtype))
            grads, variables = zip(*per_block[name])
            gate = gates.get(name)
            if gate is None:
                optimizer.apply(list(grads), list(variables))
                continue
            gate = tf.cast(gate, tf.bool)
            state = [_as_tf_variable(v) for v in list(variables) + optimizer.variables
                     if v is not optimizer._learning_rate]
            old = [tf.identity(v) for v in state]
            with tf.control_dependencies(old):
                optimizer.apply(list(grads), list(variables))
            tf.__internal__.distribute.interim.maybe_merge_call(
                _restore_where_closed, self._distribution_strategy, gate, list(zip(state, old)))
        self._iterations.assign_add(1)

    def apply(self, grads, trainable_variables=None):
        """Keras' optimiser API: every block updated (no gates)."""
        if trainable_variables is None:
            trainable_variables = self._trainable_variables
        self.apply_block_gradients(zip(grads, trainable_variables))

    # ------------------------------------------------------------------ saving
    def load_own_variables(self, store):
        if len(store.keys()) != len(self.variables):
            warnings.warn(
                f"The saved optimizer state has {len(store.keys())} variables, the block-wise "
                f"optimizer {len(self.variables)} (its step and learning rate): the file was "
                f"written by a single optimizer. Its state is not restored; every block starts "
                f"with a fresh optimizer state.", stacklevel=2)
            return
        super().load_own_variables(store)

    def get_config(self):
        return {"name": self.name,
                "optimizer": keras.saving.serialize_keras_object(self.template())}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        optimizer = keras.saving.deserialize_keras_object(config.pop("optimizer"),
                                                          custom_objects=custom_objects)
        return cls(optimizer, **config)
