"""Shared pieces of the encoders and decoders: input-shape checks and the bounded log-variance head."""

import keras
import tensorflow as tf
from keras import ops

__all__ = ["EncoderBase", "DecoderBase", "restore_batch_shape", "gaussian_head_layers",
           "bounded_gaussian_heads"]


def gaussian_head_layers(latent_dim, log_var_bounds):
    """Checked (min, max) log-variance bounds and the loc and log_var Dense heads of width D."""
    lo, hi = (float(b) for b in log_var_bounds)
    if not lo < hi:
        raise ValueError(f"Expected `log_var_bounds` = (min, max) with min < max. "
                         f"Received: log_var_bounds={log_var_bounds!r}")
    return ((lo, hi), keras.layers.Dense(latent_dim, name="loc"),
            keras.layers.Dense(latent_dim, name="log_var"))


def bounded_gaussian_heads(loc_head, log_var_head, h, bounds):
    """Features h [..., F] -> (loc, log_var clipped to bounds), each [..., D], in float32.

    Under a mixed-precision policy the layers compute in bfloat16/float16; the Gaussian's
    parameters leave the network in float32 so that every density is computed in float32.
    """
    loc = ops.cast(loc_head(h), "float32")
    log_var = ops.cast(log_var_head(h), "float32")
    return loc, ops.clip(log_var, bounds[0], bounds[1])


def restore_batch_shape(flat, z, event_shape):
    """Reshapes decoder output [N, prod(event)] back to z's batch shape: [..., *event_shape]."""
    target = tf.concat([tf.shape(z)[:-1], tf.constant(event_shape, tf.int32)], axis=0)
    out = tf.reshape(tf.cast(flat, tf.float32), target)   # float32 likelihood parameters
    return tf.ensure_shape(out, z.shape[:-1].concatenate(event_shape)) if z.shape.rank else out


def _shape_tuple(shape):
    return tuple(int(s) for s in shape)


class EncoderBase(keras.layers.Layer):
    """Base of every encoder: `call(x) -> (loc [B, D], log_var [B, D])`.

    log_var is bounded to [log_var_min, log_var_max] with a hard clip, as the VampPrior code's
    Hardtanh(-6, 2): it keeps q(z|x) from collapsing to a point or exploding.

    Args:
      latent_dim: D, the number of latent dimensions.
      input_shape_: the shape of one image (H, W, C); checked on build with a clear error.
      log_var_bounds: (min, max) of the log-variance.
    """

    def __init__(self, latent_dim, input_shape_, log_var_bounds=(-6.0, 2.0), **kwargs):
        super().__init__(**kwargs)
        from tfpriors._validation import check_positive_int
        self.latent_dim = check_positive_int("latent_dim", latent_dim)
        self.input_shape_ = _shape_tuple(input_shape_)
        self.log_var_bounds, self.loc_head, self.log_var_head = gaussian_head_layers(
            self.latent_dim, log_var_bounds)

    def check_input_shape(self, input_shape):
        received = tuple(input_shape[-len(self.input_shape_):])
        if tuple(None if s is None else int(s) for s in received) != self.input_shape_:
            raise ValueError(f"Expected images of shape (batch,) + {self.input_shape_}. "
                             f"Received input of shape {tuple(input_shape)}")

    def heads(self, h):
        """Maps features [B, F] to (loc, bounded log_var), each [B, D]."""
        return bounded_gaussian_heads(self.loc_head, self.log_var_head, h, self.log_var_bounds)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.latent_dim), (input_shape[0], self.latent_dim)

    def get_config(self):
        config = super().get_config()
        config.update(latent_dim=self.latent_dim, input_shape_=list(self.input_shape_),
                      log_var_bounds=list(self.log_var_bounds))
        return config


class DecoderBase(keras.layers.Layer):
    """Base of every decoder: `call(z [..., D]) -> params [..., H, W, C]` (one value per pixel)."""

    def __init__(self, latent_dim, output_shape_, **kwargs):
        super().__init__(**kwargs)
        from tfpriors._validation import check_positive_int
        self.latent_dim = check_positive_int("latent_dim", latent_dim)
        self.output_shape_ = _shape_tuple(output_shape_)

    def check_latent_shape(self, z_shape):
        if z_shape[-1] is not None and int(z_shape[-1]) != self.latent_dim:
            raise ValueError(f"Expected latents with last dimension {self.latent_dim}. "
                             f"Received shape {tuple(z_shape)}")

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + self.output_shape_

    def get_config(self):
        config = super().get_config()
        config.update(latent_dim=self.latent_dim, output_shape_=list(self.output_shape_))
        return config
