"""A small convolutional encoder and decoder for images whose sides are divisible by 4."""

import keras
from keras import ops

from tfpriors.networks.base import DecoderBase, EncoderBase, restore_batch_shape

__all__ = ["ConvEncoder", "ConvDecoder"]


def _check_divisible(shape):
    if len(shape) != 3 or shape[0] % 4 or shape[1] % 4:
        raise ValueError(f"Expected an image shape (H, W, C) with H and W divisible by 4 for the conv "
                         f"networks. Received: {tuple(shape)}")


@keras.saving.register_keras_serializable(package="tfpriors")
class ConvEncoder(EncoderBase):
    """Conv(f, 3x3, stride 2) -> Conv(2f, 3x3, stride 2) -> Dense(hidden) -> (loc, log_var).

    Shapes: x [B, H, W, C] -> loc, log_var [B, D].
    """

    def __init__(self, latent_dim, input_shape_, filters=32, hidden_units=256,
                 log_var_bounds=(-6.0, 2.0), **kwargs):
        super().__init__(latent_dim, input_shape_, log_var_bounds, **kwargs)
        _check_divisible(self.input_shape_)
        self.filters = int(filters)
        self.hidden_units = int(hidden_units)
        self.conv1 = keras.layers.Conv2D(self.filters, 3, 2, "same", activation="relu", name="conv1")
        self.conv2 = keras.layers.Conv2D(2 * self.filters, 3, 2, "same", activation="relu", name="conv2")
        self.flatten = keras.layers.Flatten()
        self.dense = keras.layers.Dense(self.hidden_units, activation="relu", name="dense")

    def build(self, input_shape):
        self.check_input_shape(input_shape)
        h, w, c = self.input_shape_
        self.conv1.build((None, h, w, c))
        self.conv2.build((None, h // 2, w // 2, self.filters))
        self.dense.build((None, (h // 4) * (w // 4) * 2 * self.filters))
        self.loc_head.build((None, self.hidden_units))
        self.log_var_head.build((None, self.hidden_units))

    def call(self, x):
        h = self.dense(self.flatten(self.conv2(self.conv1(x))))   # [B, hidden]
        return self.heads(h)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, hidden_units=self.hidden_units)
        return config


@keras.saving.register_keras_serializable(package="tfpriors")
class ConvDecoder(DecoderBase):
    """Dense -> reshape to (H/4, W/4, 2f) -> ConvT(f, stride 2) -> ConvT(C, stride 2).

    Shapes: z [..., D] -> params [..., H, W, C].
    """

    def __init__(self, latent_dim, output_shape_, filters=32, hidden_units=256, **kwargs):
        super().__init__(latent_dim, output_shape_, **kwargs)
        _check_divisible(self.output_shape_)
        self.filters = int(filters)
        self.hidden_units = int(hidden_units)
        h, w, c = self.output_shape_
        self.dense = keras.layers.Dense(self.hidden_units, activation="relu", name="dense")
        self.to_grid = keras.layers.Dense((h // 4) * (w // 4) * 2 * self.filters, activation="relu",
                                          name="to_grid")
        self.deconv1 = keras.layers.Conv2DTranspose(self.filters, 3, 2, "same", activation="relu",
                                                    name="deconv1")
        self.deconv2 = keras.layers.Conv2DTranspose(c, 3, 2, "same", name="deconv2")

    def build(self, input_shape):
        self.check_latent_shape(input_shape)
        h, w, _ = self.output_shape_
        self.dense.build((None, self.latent_dim))
        self.to_grid.build((None, self.hidden_units))
        self.deconv1.build((None, h // 4, w // 4, 2 * self.filters))
        self.deconv2.build((None, h // 2, w // 2, self.filters))

    def call(self, z):
        h, w, _ = self.output_shape_
        flat_z = ops.reshape(z, (-1, self.latent_dim))                       # [N, D]
        grid = ops.reshape(self.to_grid(self.dense(flat_z)), (-1, h // 4, w // 4, 2 * self.filters))
        params = self.deconv2(self.deconv1(grid))                            # [N, H, W, C]
        return restore_batch_shape(params, z, self.output_shape_)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, hidden_units=self.hidden_units)
        return config
