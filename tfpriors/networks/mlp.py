"""Fully connected encoder and decoder, plain (ReLU) or gated as in the VampPrior paper.

VampPrior paper, Sec. 4 ("VAE (L=1)"): 784-300-300-40 with gated dense layers, the decoder
mirrored, He-normal initialisation and log-variance through Hardtanh(-6, 2).
"""

import math

import keras
from keras import ops

from tfpriors.networks.base import DecoderBase, EncoderBase, restore_batch_shape
from tfpriors.networks.gated import dense_stack

__all__ = ["MLPEncoder", "MLPDecoder"]


@keras.saving.register_keras_serializable(package="tfpriors")
class MLPEncoder(EncoderBase):
    """q(z|x) network: flatten -> hidden layers -> (loc, log_var).

    Args:
      latent_dim: D.
      input_shape_: (H, W, C) of one image.
      hidden_units: widths of the hidden layers, default (300, 300).
      activation: activation of the plain layers (ignored when `gated`).
      gated: use GatedDense hidden layers (VampPrior paper).
      log_var_bounds: clip range of the log-variance.

    Shapes: x [B, H, W, C] -> loc, log_var [B, D].
    """

    def __init__(self, latent_dim, input_shape_, hidden_units=(300, 300), activation="relu",
                 gated=False, log_var_bounds=(-6.0, 2.0), **kwargs):
        super().__init__(latent_dim, input_shape_, log_var_bounds, **kwargs)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.activation = activation
        self.gated = bool(gated)
        self.hidden = dense_stack(self.hidden_units, activation, self.gated, "enc")

    def build(self, input_shape):
        self.check_input_shape(input_shape)
        shape = (None, math.prod(self.input_shape_))
        for layer in self.hidden:
            layer.build(shape)
            shape = (None, layer.units)
        self.loc_head.build(shape)
        self.log_var_head.build(shape)

    def call(self, x):
        h = ops.reshape(x, (-1, math.prod(self.input_shape_)))   # [B, H*W*C]
        for layer in self.hidden:
            h = layer(h)
        return self.heads(h)

    def get_config(self):
        config = super().get_config()
        config.update(hidden_units=list(self.hidden_units), activation=self.activation,
                      gated=self.gated)
        return config


@keras.saving.register_keras_serializable(package="tfpriors")
class MLPDecoder(DecoderBase):
    """p(x|z) network: hidden layers -> one parameter per pixel.

    Shapes: z [..., D] -> params [..., H, W, C].
    """

    def __init__(self, latent_dim, output_shape_, hidden_units=(300, 300), activation="relu",
                 gated=False, **kwargs):
        super().__init__(latent_dim, output_shape_, **kwargs)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.activation = activation
        self.gated = bool(gated)
        self.hidden = dense_stack(self.hidden_units, activation, self.gated, "dec")
        self.out = keras.layers.Dense(math.prod(self.output_shape_), name="params")

    def build(self, input_shape):
        self.check_latent_shape(input_shape)
        shape = (None, self.latent_dim)
        for layer in self.hidden:
            layer.build(shape)
            shape = (None, layer.units)
        self.out.build(shape)

    def call(self, z):
        h = ops.reshape(z, (-1, self.latent_dim))                 # [N, D], N = prod(batch)
        for layer in self.hidden:
            h = layer(h)
        return restore_batch_shape(self.out(h), z, self.output_shape_)

    def get_config(self):
        config = super().get_config()
        config.update(hidden_units=list(self.hidden_units), activation=self.activation,
                      gated=self.gated)
        return config
