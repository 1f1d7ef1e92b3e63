"""SavedModel export of a trained VAE as a stateless sampler for serving (TF-Serving, saved_model_cli).

The archive holds these signatures, built on the latent interface of `trainers.latent_model`
(`sample`, `sample_component`, `encode_distribution`, `decode`, and the IS estimator's
`infer`/`sample_posterior`/`log_prior`), so every model (VAE, HVAE) exports the same way. Legend:
N samples, B images, D = the code size (VAE: dim z; HVAE: dim z1 + dim z2, code [z1, z2]),
(H, W, C) = model.data_shape, K mixture components.

    sample            (num_samples int32 [], seed int32 [2]) -> images [N, H, W, C], z [N, D]
                      z_n ~ p(z) by TFP's stateless sampling (a mixture draws the component
                      k ~ Categorical(w), then z ~ p_k), images = E[x | z].
                      Also exported as `serving_default`.
    encode            (images float32 [B, H, W, C]) -> loc [B, D], scale [B, D]
                      the parameters of q(z|x) = N(loc, diag(scale^2)).
    decode            (z float32 [B, D]) -> images [B, H, W, C], E[x | z].
    log_likelihood    (images float32 [B, H, W, C], num_samples int32 [], seed int32 [2])
                      -> log_likelihood [B], in nats: the importance-sampled marginal
                          log p(x) ~= log 1/S sum_s p(x|z_s) p(z_s) / q(z_s|x),  z_s ~ q(z|x)
                      with S = num_samples, streamed in chunks of `log_likelihood_chunk_size`
                      samples with a running log-sum-exp (memory grows with B * chunk, not S).
                      For the hierarchical prior (VHP) log p(z) is itself the prior's
                      importance-weighted bound, as in training (`tfpriors.priors.prior_log_prob`).
                      A stochastic lower bound on log p(x) for finite S (Jensen), consistent as
                      S grows. `seed = [s, 0]` reproduces
                      `tfpriors.evaluation.log_likelihood(model, images, S, seed=s)` (see
                      `tfpriors.evaluation.log_likelihood.log_likelihood_graph`).
    cluster           (images float32 [B, H, W, C]) -> probabilities [B, K], q(c|x) of a model
                      with a discrete latent c (CP-VAE) or components (LaDDer: q(k|t(x)) of
                      its hyper prior) only.
    sample_component  (component int32 [], num_samples int32 [], seed int32 [2])
                      -> images [N, H, W, C], z [N, D] with z_n ~ p_k(z), the k-th mixture
                      component N(mu_k, diag(sigma_k^2)) alone (k = component). Only for mixture
                      priors, i.e. when the prior layer has `num_components`: MoG and VampPrior
                      (for which p_k(z) = q(z | u_k), the encoder at pseudo-input u_k).

Sampling is a pure function of `seed`: the same seed gives bitwise-equal output in any
process that loads the archive, because every random op is a stateless op seeded from the
input tensor. For a VampPrior, p(z) = sum_k w_k q(z | u_k) (Tomczak & Welling 2018, Eq. 9/16)
is rebuilt inside the graph from the encoder at the pseudo-inputs u_k, so the pseudo-inputs,
mixture logits and encoder weights are all saved with the archive.

Inputs are validated inside the graph and a bad request raises `tf.errors.InvalidArgumentError`
("Expected ... Received: ...") at run time, from Python, `saved_model_cli run` and TF-Serving
alike: `num_samples` outside [0, max_samples] (`sample`, `sample_component`) or
[1, max_log_likelihood_samples] (`log_likelihood`), a `seed` not of shape [2], a `component`
outside [0, K), images whose shape is not [B, H, W, C] or that hold NaN/inf, z not [B, D] or
not finite. Image and latent inputs are declared with unknown dimensions ([None] * 4 and
[None, None]) so that a wrong shape reaches these checks instead of failing the signature match.

Layout: `export_sampler(model, "saved_models/name")` writes `saved_models/name/1/`, the
`<model_name>/<version>/saved_model.pb` layout TF-Serving watches (it serves the highest
version); `load_sampler("saved_models/name")` loads that highest version.
"""

import os

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfpriors._validation import check_non_negative_int, check_positive_int
from tfpriors.evaluation.log_likelihood import log_likelihood_graph

tfd = tfp.distributions

__all__ = ["export_sampler", "load_sampler", "find_version_dir", "SIGNATURES",
           "MIXTURE_SIGNATURES", "CLUSTER_SIGNATURES"]

SIGNATURES = ("sample", "encode", "decode", "log_likelihood", "sample_component")
# Exported only when the prior is a mixture (MoG, VampPrior).
MIXTURE_SIGNATURES = ("sample_component",)
# Only for models with a discrete latent or components (`cluster(x)`: the CP-VAE, LaDDer).
CLUSTER_SIGNATURES = ("cluster",)


# ---------------------------------------------------------------------- in-graph validation
def _assert(condition, template, *values):
    """An Assert op raising InvalidArgumentError with `template` formatted with `values` ({})."""
    return tf.debugging.Assert(condition, [tf.strings.format(template, values)])


def _after(checks, *tensors):
    """`tensors` gated on the assert ops `checks`: nothing downstream runs on invalid input."""
    with tf.control_dependencies(checks):
        out = tuple(tf.identity(t) for t in tensors)
    return out if len(out) > 1 else out[0]


def _check_num_samples(num_samples, minimum, maximum, signature, cap_name):
    return _assert(
        tf.logical_and(num_samples >= minimum, num_samples <= maximum),
        f"Expected `num_samples` in [{minimum}, {maximum}] for `{signature}` (the upper bound is "
        f"the `{cap_name}` of the export). Received: num_samples={{}}", num_samples)


def _checked_seed(seed):
    check = _assert(tf.equal(tf.size(seed), 2),
                    "Expected `seed` to be an int32 tensor of shape [2]. Received: shape {}",
                    tf.shape(seed))
    # TFP's seed handling needs the static shape [2]. Not `tf.ensure_shape`: on this small
    # int32 input its EnsureShape failed before the assert ran (a message without "Expected"),
    # although it depends on the assert; padding and slicing is valid for any length.
    with tf.control_dependencies([check]):
        return tf.concat([seed, tf.zeros([2], tf.int32)], axis=0)[:2]


def _checked_batch(name, tensor, trailing_shape):
    """`tensor` [B, *trailing_shape] with finite values, or InvalidArgumentError naming both shapes."""
    expected = [int(s) for s in trailing_shape]
    shape = tf.shape(tensor)
    shape_ok = tf.reduce_all(tf.equal(shape[1:], tf.constant(expected, tf.int32)))
    num_bad = tf.reduce_sum(tf.cast(tf.logical_not(tf.math.is_finite(tensor)), tf.int32))
    checks = [
        _assert(shape_ok, f"Expected `{name}` of shape [batch, {', '.join(map(str, expected))}]. "
                          "Received: shape {}", shape),
        _assert(tf.equal(num_bad, 0), f"Expected `{name}` to hold only finite values. "
                                      "Received: {} NaN or infinite entries", num_bad),
    ]
    return tf.ensure_shape(_after(checks, tensor), [None] + expected)


# ---------------------------------------------------------------------- the signatures
def _make_sample(model, max_samples):
    def sample(num_samples, seed):
        """z ~ p(z) [N, D] and images = E[x|z] [N, H, W, C]."""
        check = _check_num_samples(num_samples, 0, max_samples, "sample", "max_samples")
        num_samples = _after([check], num_samples)
        images, z = model.sample(num_samples, _checked_seed(seed))                # [N, D]
        return {"images": images, "z": z}
    return sample


def _make_sample_component(model, max_samples, num_components):
    def sample_component(component, num_samples, seed):
        """z ~ p_k(z) [N, D], the component k of the mixture alone, and images = E[x|z]."""
        checks = [
            _check_num_samples(num_samples, 0, max_samples, "sample_component", "max_samples"),
            _assert(tf.logical_and(component >= 0, component < num_components),
                    f"Expected `component` in [0, {num_components}) (the prior has "
                    f"{num_components} mixture components). Received: component={{}}", component),
        ]
        component, num_samples = _after(checks, component, num_samples)
        images, z = model.sample_component(component, num_samples, _checked_seed(seed))
        return {"images": images, "z": z}
    return sample_component


def _make_cluster(model):
    def cluster(images):
        """q(c|x) [B, K], the category probabilities of a model with a discrete latent (CP-VAE)."""
        return {"probabilities": model.cluster(_checked_batch("images", images, model.data_shape))}
    return cluster


def _make_encode(model):
    def encode(images):
        """loc, scale [B, D] of q(z|x) = N(loc, diag(scale^2))."""
        loc, scale = model.encode_distribution(_checked_batch("images", images, model.data_shape))
        return {"loc": loc, "scale": scale}
    return encode


def _make_decode(model):
    def decode(z):
        """E[x|z] [B, H, W, C]."""
        return {"images": model.decode(_checked_batch("z", z, [model.latent_dim]))}
    return decode


def _make_log_likelihood(model, max_samples, chunk_size):
    def log_likelihood(images, num_samples, seed):
        """log p(x) [B] by importance sampling with S = num_samples samples of q(z|x)."""
        images = _checked_batch("images", images, model.data_shape)
        check = _check_num_samples(num_samples, 1, max_samples, "log_likelihood",
                                   "max_log_likelihood_samples")
        num_samples = _after([check], num_samples)
        return {"log_likelihood": log_likelihood_graph(model, images, num_samples,
                                                       _checked_seed(seed), chunk_size)}
    return log_likelihood


def _input_specs():
    """name -> tf.TensorSpec of every signature input."""
    return {"num_samples": tf.TensorSpec([], tf.int32, name="num_samples"),
            "seed": tf.TensorSpec([None], tf.int32, name="seed"),
            "component": tf.TensorSpec([], tf.int32, name="component"),
            "images": tf.TensorSpec([None, None, None, None], tf.float32, name="images"),
            "z": tf.TensorSpec([None, None], tf.float32, name="z")}


# ---------------------------------------------------------------------- export and load
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


def export_sampler(model, path, max_samples=10000, version=1, verbose=False,
                   max_log_likelihood_samples=10000, log_likelihood_chunk_size=100):
    """Writes `model` as a SavedModel with the signatures listed in the module docstring.

    Args:
      model: a `trainers.latent_model.LatentModel` (VAE, HVAE), or any Keras model with its
        latent interface that owns all its variables.
      path: directory to write to (created; files of an existing SavedModel there are replaced).
      max_samples: largest `num_samples` that `sample` and `sample_component` accept (>= 1).
      version: an int >= 0 (default 1) writes to `path/<version>`, the layout TF-Serving
        watches (`<model_name>/<version>/saved_model.pb`); None writes to `path` itself.
      verbose: print the endpoints as Keras' ExportArchive does.
      max_log_likelihood_samples: largest `num_samples` that `log_likelihood` accepts (>= 1).
      log_likelihood_chunk_size: importance samples per loop iteration of `log_likelihood`;
        its peak memory grows with batch size * chunk size.

    Returns:
      The directory the SavedModel was written to (str).

    Raises:
      ValueError: if a cap or the chunk size is not a positive int or `version` is neither None
        nor a non-negative int.

    The exported functions are not XLA-compiled (XLA changes the random numbers; see
    STACK_NOTES "Randomness"). `sample_component` is written only for mixture priors.
    """
    max_samples = check_positive_int("max_samples", max_samples)
    max_ll = check_positive_int("max_log_likelihood_samples", max_log_likelihood_samples)
    chunk_size = check_positive_int("log_likelihood_chunk_size", log_likelihood_chunk_size)
    out_dir = _versioned_path(path, version)
    _ensure_built(model)
    num_components = model.num_components
    spec = _input_specs()

    endpoints = [   # the first endpoint added also becomes `serving_default`
        ("sample", _make_sample(model, max_samples), ["num_samples", "seed"]),
        ("encode", _make_encode(model), ["images"]),
        ("decode", _make_decode(model), ["z"]),
        ("log_likelihood", _make_log_likelihood(model, max_ll, chunk_size),
         ["images", "num_samples", "seed"]),
    ]
    if num_components is not None:
        endpoints.append(("sample_component",
                          _make_sample_component(model, max_samples, num_components),
                          ["component", "num_samples", "seed"]))
    if callable(getattr(model, "cluster", None)):
        endpoints.append(("cluster", _make_cluster(model), ["images"]))
    archive = keras.export.ExportArchive()
    archive.track(model)
    for name, fn, inputs in endpoints:
        archive.add_endpoint(name, fn, input_signature=[spec[i] for i in inputs])
    archive.write_out(out_dir, verbose=verbose)
    return out_dir


def find_version_dir(path):
    """The SavedModel directory of `path`: `path` itself if it holds saved_model.pb, else its
    highest numeric version subdirectory that does (the version TF-Serving would serve).

    Raises:
      FileNotFoundError: if neither exists.
    """
    path = os.fspath(path)
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        return path
    versions = []
    if os.path.isdir(path):
        versions = [int(name) for name in os.listdir(path)
                    if name.isdigit() and os.path.isfile(os.path.join(path, name, "saved_model.pb"))]
    if not versions:
        raise FileNotFoundError(
            f"Expected a SavedModel (saved_model.pb) in {path!r} or in numeric version "
            f"subdirectories <version>/saved_model.pb of it. Received: "
            f"{sorted(os.listdir(path)) if os.path.isdir(path) else 'no such directory'}")
    return os.path.join(path, str(max(versions)))


def load_sampler(path, version=None):
    """Loads an archive written by `export_sampler`.

    Args:
      path: a SavedModel directory, or a model directory of numeric version subdirectories
        (`export_sampler`'s default layout), of which the highest version is loaded.
      version: load `path/<version>` instead of searching.

    Returns:
      The restored object: call `obj.sample(num_samples, seed)`, `obj.encode(images)`,
      `obj.decode(z)`, `obj.log_likelihood(images, num_samples, seed)` and, for mixture priors,
      `obj.sample_component(component, num_samples, seed)` (each returns a dict of tensors), or
      use `obj.signatures[name]`.

    Raises:
      FileNotFoundError: if no SavedModel is found.
    """
    return tf.saved_model.load(find_version_dir(_versioned_path(path, version)))
