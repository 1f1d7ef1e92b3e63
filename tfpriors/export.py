"""SavedModel export of a trained VAE as a stateless sampler for serving (TF-Serving, saved_model_cli).

The archive holds three signatures, built on the model's public interface
(`prior_distribution`, `posterior`, `decode`):

    sample   (num_samples int32 [], seed int32 [2]) -> images [N, H, W, C], z [N, D]
             z ~ p(z) drawn with TFP stateless sampling, images = E[x | z]
             (also exported as `serving_default`)
    encode   (images float32 [B, H, W, C])          -> loc [B, D], scale [B, D]
             the parameters of q(z|x) = N(loc, diag(scale^2))
    decode   (z float32 [B, D])                      -> images [B, H, W, C], E[x | z]

Sampling is a pure function of `seed`: the same seed gives bitwise-equal output in any
process that loads the archive, because every random op is a stateless TFP op seeded from
the input tensor. For a VampPrior, p(z) = (1/K) sum_k q(z | u_k) (Tomczak & Welling 2018,
Eq. 9) is rebuilt inside the graph from the encoder at the pseudo-inputs u_k, so the
pseudo-inputs, mixture logits and encoder weights are all saved with the archive.

Inputs are validated inside the graph: a bad `num_samples` or `seed` raises
`tf.errors.InvalidArgumentError` at run time, from Python and from `saved_model_cli run`
alike; image and latent shapes are enforced by the input signatures.
"""

import os

import keras
import numpy as np
import tensorflow as tf

from tfpriors._validation import check_non_negative_int, check_positive_int

__all__ = ["export_sampler", "load_sampler", "SIGNATURES"]

SIGNATURES = ("sample", "encode", "decode")


def _ensure_built(model):
    """Builds `model` and runs it once on a zero batch so every variable exists before tracing."""
    if not model.built:
        model.build((None,) + tuple(model.data_shape))
    # A model trained with a custom train_step is never called; call it once (and the prior,
    # which the forward pass does not touch) so lazily created state is in place.
    model(np.zeros((1,) + tuple(model.data_shape), np.float32))
    model.prior_distribution()


def _versioned_path(path, version):
    path = os.fspath(path)
    if version is None:
        return path
    return os.path.join(path, str(check_non_negative_int("version", version)))


def export_sampler(model, path, max_samples=10000, version=None, verbose=False):
    """Writes `model` as a SavedModel with `sample`, `encode` and `decode` signatures.

    Args:
      model: a `trainers.VAE` (or any object with `data_shape`, `latent_dim`, `prior_distribution()`,
        `posterior(x)` and `decode(z)` that is a Keras layer/model owning all its variables).
      path: directory to write to (created; files of an existing SavedModel there are replaced).
      max_samples: largest `num_samples` the `sample` signature accepts, a positive int.
      version: None writes to `path`; an int >= 0 writes to `path/<version>`, the layout
        TF-Serving watches (`<model_name>/<version>/saved_model.pb`).
      verbose: print the endpoints as Keras' ExportArchive does.

    Returns:
      The directory the SavedModel was written to (str).

    Raises:
      ValueError: if `max_samples` is not a positive int or `version` not a non-negative int.

    The exported functions are not XLA-compiled (XLA changes the random numbers; see
    STACK_NOTES "Randomness"). At run time `sample` raises InvalidArgumentError if
    `num_samples` is negative or larger than `max_samples`, or `seed` does not have shape [2].
    """
    max_samples = check_positive_int("max_samples", max_samples)
    out_dir = _versioned_path(path, version)
    _ensure_built(model)
    height, width, channels = (int(s) for s in model.data_shape)
    latent_dim = int(model.latent_dim)

    def sample(num_samples, seed):
        checks = [
            tf.debugging.assert_non_negative(
                num_samples, message="Expected `num_samples` >= 0"),
            tf.debugging.assert_less_equal(
                num_samples, tf.constant(max_samples, tf.int32),
                message=f"Expected `num_samples` <= max_samples={max_samples}"),
            tf.debugging.assert_equal(
                tf.size(seed), 2, message="Expected `seed` to be an int32 tensor of shape [2]"),
        ]
        with tf.control_dependencies(checks):
            num_samples = tf.identity(num_samples)
            seed = tf.ensure_shape(tf.identity(seed), [2])   # static shape for TFP's seed handling
        z = model.prior_distribution().sample(num_samples, seed=seed)   # [N, D]
        images = model.decode(z)                                         # [N, H, W, C]
        return {"images": images, "z": z}

    def encode(images):
        posterior = model.posterior(images)   # batch [B], event [D]
        return {"loc": posterior.mean(), "scale": posterior.stddev()}   # [B, D] each

    def decode(z):
        return {"images": model.decode(z)}   # [B, H, W, C]

    archive = keras.export.ExportArchive()
    archive.track(model)
    # The first endpoint added also becomes `serving_default`.
    archive.add_endpoint("sample", sample, input_signature=[
        tf.TensorSpec([], tf.int32, name="num_samples"),
        tf.TensorSpec([None], tf.int32, name="seed")])
    archive.add_endpoint("encode", encode, input_signature=[
        tf.TensorSpec([None, height, width, channels], tf.float32, name="images")])
    archive.add_endpoint("decode", decode, input_signature=[
        tf.TensorSpec([None, latent_dim], tf.float32, name="z")])
    archive.write_out(out_dir, verbose=verbose)
    return out_dir


def load_sampler(path, version=None):
    """Loads an archive written by `export_sampler`.

    Args:
      path: the directory given to `export_sampler`.
      version: the same `version` given to `export_sampler` (None for an unversioned archive).

    Returns:
      The restored object: call `obj.sample(num_samples, seed)`, `obj.encode(images)`,
      `obj.decode(z)` (each returns a dict of tensors), or use `obj.signatures[name]`.
    """
    return tf.saved_model.load(_versioned_path(path, version))
