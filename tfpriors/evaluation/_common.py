"""Shared pieces of the evaluation functions: input checks, padded batches and the result type.

Every evaluation function takes a model with the latent interface of `trainers.latent_model`
(VAE, HVAE, CP-VAE: `infer`, `sample_posterior`, `log_prior`, `likelihood_distribution`, `encode`,
`decode`, `posterior`, `prior_distribution`, `data_shape`, `latent_dim`) and images [N, H, W, C]. Batches are padded to a fixed size
(repeating the last image) so that a compiled function sees a single input shape; the
padded rows are dropped from the results.
"""

import dataclasses
import math

import numpy as np

from tfpriors._validation import check_finite_array, check_non_negative_int

__all__ = ["Estimate", "check_images", "check_seed", "padded_batches", "to_float"]


def check_images(model, images, min_examples=1):
    """Returns `images` as a float32 numpy array [N, H, W, C] after checking shape and values.

    Args:
      model: a model with `data_shape` (H, W, C).
      images: array-like [N, H, W, C].
      min_examples: the smallest accepted N.

    Raises:
      ValueError: if the shape is not (N,) + model.data_shape with N >= min_examples, or if
        the images hold NaN or infinite values.
    """
    array = np.asarray(images, dtype=np.float32)
    expected = tuple(int(s) for s in model.data_shape)
    if array.ndim != len(expected) + 1 or tuple(array.shape[1:]) != expected:
        raise ValueError(f"Expected `images` of shape (N,) + {expected}. "
                         f"Received an array of shape {array.shape}")
    if array.shape[0] < min_examples:
        raise ValueError(f"Expected at least {min_examples} image(s). "
                         f"Received an array of shape {array.shape}")
    return check_finite_array("images", array)


def check_seed(seed):
    """Returns the int seed as the int32 [2] stateless seed [seed, 0]; seed must be in [0, 2**31)."""
    seed = check_non_negative_int("seed", seed)
    if seed >= 2 ** 31:
        raise ValueError(f"Expected `seed` < 2**31. Received: seed={seed}")
    return np.array([seed, 0], np.int32)


def padded_batches(images, batch_size):
    """Yields (start, batch [batch_size, ...], num_valid) covering `images` in order.

    The last batch is padded by repeating the last image, so that every batch has the same
    shape (one trace, one XLA compilation). `batch_size` is reduced to N when N is smaller.
    """
    n = images.shape[0]
    batch_size = min(batch_size, n)
    for start in range(0, n, batch_size):
        batch = images[start:start + batch_size]
        valid = batch.shape[0]
        if valid < batch_size:
            pad = np.repeat(batch[-1:], batch_size - valid, axis=0)
            batch = np.concatenate([batch, pad], axis=0)
        yield start, batch, valid


def to_float(value):
    """A Python float from a numpy scalar (keeps JSON serialisation simple)."""
    return float(np.asarray(value))


@dataclasses.dataclass(frozen=True)
class Estimate:
    """A per-example quantity and its summary.

    Attributes:
      name: what is estimated, e.g. "log_likelihood".
      per_example: float64 numpy array [N], one value per image, in nats.
      details: further per-example arrays [N] (e.g. the ELBO's two terms).
      info: settings and scalars that describe how the estimate was made (JSON-serialisable).
    """

    name: str
    per_example: np.ndarray
    details: dict = dataclasses.field(default_factory=dict)
    info: dict = dataclasses.field(default_factory=dict)

    @property
    def mean(self):
        """The mean over examples, a Python float."""
        return to_float(np.mean(self.per_example))

    @property
    def std_error(self):
        """The standard error of the mean over examples (0 for a single example)."""
        n = self.per_example.shape[0]
        return 0.0 if n < 2 else to_float(np.std(self.per_example, ddof=1) / math.sqrt(n))

    def to_dict(self, include_per_example=False):
        """A JSON-serialisable summary: mean, std_error, the mean of each detail and `info`.

        Args:
          include_per_example: also list the per-example values and details.
        """
        out = {"mean": self.mean, "std_error": self.std_error,
               "num_examples": int(self.per_example.shape[0])}
        for key, values in self.details.items():
            out[f"{key}_mean"] = to_float(np.mean(values))
        out.update(self.info)
        if include_per_example:
            out["per_example"] = [float(v) for v in self.per_example]
            for key, values in self.details.items():
                out[key] = [float(v) for v in values]
        return out

