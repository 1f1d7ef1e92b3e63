"""Networks on several inputs: the conditionals of the two-level HVAE.

Tomczak & Welling (2018), Sec. 3.3 and the HVAE of their code: each input has its own hidden
branch (gated dense), the branches are concatenated and pass through a trunk, then

    ConditionalGaussian -> (loc, bounded log_var)   for q(z1|x, z2) and p(z1|z2)
    ConditionalDecoder  -> one parameter per pixel  for p(x|z1, z2)

    q(z1|x, z2):  x -> gated 300, z2 -> gated 300, concat -> gated 300 -> loc, log_var
    p(z1|z2):     z2 -> gated 300 -> gated 300 -> loc, log_var
    p(x|z1, z2):  z1 -> gated 300, z2 -> gated 300, concat -> gated 300 -> params

Inputs may have different leading shapes that broadcast: x [B, P] (flattened once per batch)
beside z2 [S, B, d2] computes the x branch once and broadcasts it over the S samples.
With no branch and no trunk layers the network is linear in its inputs (used for the
closed-form linear-Gaussian checks).
"""

import functools
import math

import keras
import tensorflow as tf
from keras import ops

from tfpriors._validation import check_positive_int
from tfpriors.networks.base import bounded_gaussian_heads, gaussian_head_layers, restore_batch_shape
from tfpriors.networks.gated import dense_stack

__all__ = ["ConditionalGaussian", "ConditionalDecoder", "FeatureNetwork"]


class _BranchJoin(keras.layers.Layer):
    """A hidden branch per input, concatenated, then a trunk: `features(inputs) -> [..., F]`."""

    def __init__(self, input_dims, branch_units=(300,), hidden_units=(300,), gated=True,
                 activation="relu", **kwargs):
        super().__init__(**kwargs)
        self.input_dims = [check_positive_int("input_dims", d) for d in input_dims]
        if not self.input_dims:
            raise ValueError("Expected at least one input dimension. Received: input_dims=[]")
        self.branch_units = tuple(int(u) for u in branch_units)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.gated = bool(gated)
        self.activation = activation
        self.branches = [dense_stack(self.branch_units, activation, self.gated, f"{self.name}_in{i}")
                         for i in range(len(self.input_dims))]
        self.trunk = dense_stack(self.hidden_units, activation, self.gated, f"{self.name}_trunk")

    def _build_features(self):
        width = 0
        for dim, branch in zip(self.input_dims, self.branches):
            shape = (None, dim)
            for layer in branch:
                layer.build(shape)
                shape = (None, layer.units)
            width += shape[-1]
        shape = (None, width)
        for layer in self.trunk:
            layer.build(shape)
            shape = (None, layer.units)
        return shape[-1]

    def features(self, inputs):
        if len(inputs) != len(self.input_dims):
            raise ValueError(f"Expected {len(self.input_dims)} inputs of last dimensions "
                             f"{self.input_dims}. Received {len(inputs)} inputs")
        hs = []
        for dim, branch, h in zip(self.input_dims, self.branches, inputs):
            if h.shape[-1] is not None and int(h.shape[-1]) != dim:
                raise ValueError(f"Expected inputs with last dimensions {self.input_dims}. "
                                 f"Received shapes {[tuple(t.shape) for t in inputs]}")
            h = ops.cast(h, self.compute_dtype)
            for layer in branch:
                h = layer(h)
            hs.append(h)
        target = functools.reduce(tf.broadcast_dynamic_shape, [tf.shape(h)[:-1] for h in hs])
        h = tf.concat([tf.broadcast_to(h, tf.concat([target, tf.shape(h)[-1:]], 0)) for h in hs],
                      axis=-1)
        for layer in self.trunk:
            h = layer(h)
        return h

    def get_config(self):
        config = super().get_config()
        config.update(input_dims=list(self.input_dims), branch_units=list(self.branch_units),
                      hidden_units=list(self.hidden_units), gated=self.gated,
                      activation=self.activation)
        return config


@keras.saving.register_keras_serializable(package="tfpriors")
class ConditionalGaussian(_BranchJoin):
    """A diagonal Gaussian over `latent_dim` variables given several inputs.

    Args:
      latent_dim: d, the dimension of the variable.
      input_dims: last dimension of each input (an image input is passed flattened).
      branch_units, hidden_units: widths of each input's branch and of the trunk.
      gated: GatedDense hidden layers (VampPrior paper), else Dense with `activation`.
      log_var_bounds: clip range of the log-variance (Hardtanh(-6, 2) in the paper's code).

    Shapes: inputs [..., d_i] (broadcastable leading shapes) -> loc, log_var [..., d].
    """

    def __init__(self, latent_dim, input_dims, branch_units=(300,), hidden_units=(300,),
                 gated=True, activation="relu", log_var_bounds=(-6.0, 2.0), **kwargs):
        super().__init__(input_dims, branch_units, hidden_units, gated, activation, **kwargs)
        self.latent_dim = check_positive_int("latent_dim", latent_dim)
        self.log_var_bounds, self.loc_head, self.log_var_head = gaussian_head_layers(
            self.latent_dim, log_var_bounds)

    def build(self, input_shape=None):
        width = self._build_features()
        self.loc_head.build((None, width))
        self.log_var_head.build((None, width))

    def call(self, inputs):
        return bounded_gaussian_heads(self.loc_head, self.log_var_head, self.features(inputs),
                                      self.log_var_bounds)

    def get_config(self):
        config = super().get_config()
        config.update(latent_dim=self.latent_dim, log_var_bounds=list(self.log_var_bounds))
        return config


@keras.saving.register_keras_serializable(package="tfpriors")
class FeatureNetwork(keras.layers.Layer):
    """Image features h(x): flatten -> hidden layers, [B, H, W, C] -> [B, F] (F = last width).

    The shared trunk of an encoder with several heads (the CP-VAE's q(c|x) and q(z|x, c)).
    """

    def __init__(self, input_shape_, hidden_units=(300, 300), gated=True, activation="relu",
                 **kwargs):
        super().__init__(**kwargs)
        self.input_shape_ = tuple(int(s) for s in input_shape_)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        if not self.hidden_units:
            raise ValueError("Expected at least one hidden layer. Received: hidden_units=()")
        self.gated = bool(gated)
        self.activation = activation
        self.hidden = dense_stack(self.hidden_units, activation, self.gated, f"{self.name}_h")

    @property
    def units(self):
        return self.hidden_units[-1]

    def build(self, input_shape=None):
        shape = (None, math.prod(self.input_shape_))
        for layer in self.hidden:
            layer.build(shape)
            shape = (None, layer.units)

    def call(self, x):
        h = ops.reshape(ops.cast(x, self.compute_dtype), (-1, math.prod(self.input_shape_)))
        for layer in self.hidden:
            h = layer(h)
        return h

    def get_config(self):
        config = super().get_config()
        config.update(input_shape_=list(self.input_shape_), hidden_units=list(self.hidden_units),
                      gated=self.gated, activation=self.activation)
        return config


@keras.saving.register_keras_serializable(package="tfpriors")
class ConditionalDecoder(_BranchJoin):
    """p(x|inputs) parameters: one value per pixel of `output_shape_` given several inputs.

    Shapes: inputs [..., d_i] -> params [..., H, W, C].
    """

    def __init__(self, output_shape_, input_dims, branch_units=(300,), hidden_units=(300,),
                 gated=True, activation="relu", **kwargs):
        super().__init__(input_dims, branch_units, hidden_units, gated, activation, **kwargs)
        self.output_shape_ = tuple(int(s) for s in output_shape_)
        self.out = keras.layers.Dense(math.prod(self.output_shape_), name="params")

    def build(self, input_shape=None):
        self.out.build((None, self._build_features()))

    def call(self, inputs):
        h = self.features(inputs)
        return restore_batch_shape(self.out(h), h[..., :1], self.output_shape_)

    def get_config(self):
        config = super().get_config()
        config.update(output_shape_=list(self.output_shape_))
        return config
