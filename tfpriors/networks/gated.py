"""The gating non-linearity of Tomczak & Welling (2018), Sec. 4: h(x) * sigmoid(g(x))."""

import keras

__all__ = ["GatedDense", "dense_stack"]


@keras.saving.register_keras_serializable(package="tfpriors")
class GatedDense(keras.layers.Layer):
    """Gated dense layer  y = (W_h x + b_h) * sigmoid(W_g x + b_g)  (Dauphin et al. 2016).

    The h and g projections are computed by one matmul into 2 * units columns, which halves
    the number of kernel launches on CPU.

    Args:
      units: output width.
      kernel_initializer: initializer of the fused [in, 2 * units] kernel; the VampPrior code
        uses He-normal initialisation.
    """

    def __init__(self, units, kernel_initializer="he_normal", **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self._dense = keras.layers.Dense(2 * self.units, kernel_initializer=self.kernel_initializer,
                                         name="hg")

    def build(self, input_shape):
        self._dense.build(input_shape)

    def call(self, x):
        hg = self._dense(x)                                   # [..., 2 * units]
        h, g = hg[..., :self.units], hg[..., self.units:]
        return h * keras.ops.sigmoid(g)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units,
                      kernel_initializer=keras.initializers.serialize(self.kernel_initializer))
        return config


def dense_stack(hidden_units, activation, gated, prefix):
    """Returns a list of hidden layers: GatedDense if `gated`, else Dense with `activation`."""
    if gated:
        return [GatedDense(u, name=f"{prefix}_gated_{i}") for i, u in enumerate(hidden_units)]
    return [keras.layers.Dense(u, activation=activation, kernel_initializer="he_normal",
                               name=f"{prefix}_dense_{i}") for i, u in enumerate(hidden_units)]
