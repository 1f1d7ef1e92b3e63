"""Linear interpolation in latent space between the posterior means of two images.

The baseline that graph-based interpolation (Klushyn et al. 2019, Sec. 2.3) and the
shortest-likely-path interpolation (Lin & Clark 2020, LaDDer, Sec. 3.4, there called "shortest
path (SP) interpolation") are compared against:

    z_t = (1 - t) z_start + t z_end,   t = 0, 1 / (T - 1), ..., 1,

with z_start = E_q[z | x_start] and z_end = E_q[z | x_end], decoded to the mean images
E[x | z_t] with `model.decode`.
"""

import dataclasses

import numpy as np

from tfpriors._validation import check_finite_array, check_positive_int

__all__ = ["Interpolation", "linear_path", "linear_interpolation", "encode_endpoints",
           "decode_latents"]


@dataclasses.dataclass(frozen=True)
class Interpolation:
    """An interpolation: latent frames, their decoded images and (for graphs) the node path.

    Attributes:
      latents: float64 [T, D] latent frames, first = start, last = end.
      images: float32 [T, H, W, C] mean images E[x | z_t] (None when nothing was decoded).
      path: the `GraphPath` the frames were taken from (graph interpolation), else None.
    """
    latents: np.ndarray
    images: np.ndarray = None
    path: object = None


def linear_path(z_start, z_end, num_steps):
    """Equally spaced points on the segment from `z_start` to `z_end`, both included.

    Args:
      z_start: array-like [D].
      z_end: array-like [D].
      num_steps: T >= 2, the number of points.

    Returns:
      float64 [T, D] with row t equal to (1 - t / (T - 1)) z_start + t / (T - 1) z_end.

    Raises:
      ValueError: if the endpoints are not finite vectors of the same length or T < 2.
    """
    z_start = _check_vector("z_start", z_start)
    z_end = _check_vector("z_end", z_end, size=z_start.shape[0])
    num_steps = check_positive_int("num_steps", num_steps)
    if num_steps < 2:
        raise ValueError("Expected `num_steps` >= 2 (the path holds both endpoints). "
                         f"Received: num_steps={num_steps}")
    t = np.linspace(0.0, 1.0, num_steps)[:, None]                      # [T, 1]
    path = (1.0 - t) * z_start[None, :] + t * z_end[None, :]           # [T, D]
    # Pin the endpoints exactly (1 - 1) * a + 1 * b can differ from b in the last bit.
    path[0], path[-1] = z_start, z_end
    return path


def linear_interpolation(model, x_start, x_end, num_steps):
    """Decoded linear interpolation between the posterior means of two images.

    Args:
      model: a model with `encode(x) -> [B, D]`, `decode(z) -> [..., H, W, C]` and `data_shape`
        (e.g. `trainers.VAE`).
      x_start: one image [H, W, C] (or [1, H, W, C]).
      x_end: one image [H, W, C] (or [1, H, W, C]).
      num_steps: T >= 2 frames, endpoints included.

    Returns:
      `Interpolation` with latents [T, D] and images [T, H, W, C]; path is None.

    Raises:
      ValueError: on images of the wrong shape or non-finite values, or T < 2.
    """
    z_start, z_end = encode_endpoints(model, x_start, x_end)           # [D], [D]
    latents = linear_path(z_start, z_end, num_steps)                   # [T, D]
    return Interpolation(latents=latents, images=decode_latents(model, latents))


def encode_endpoints(model, x_start, x_end):
    """Posterior means (float64 [D], [D]) of two images, encoded in one batch."""
    batch = np.stack([_check_image(model, "x_start", x_start),
                      _check_image(model, "x_end", x_end)])            # [2, H, W, C]
    z = np.asarray(model.encode(batch), dtype=np.float64)              # [2, D]
    return z[0], z[1]


def decode_latents(model, latents):
    """Mean images E[x | z] as float32 numpy [T, H, W, C] for latents [T, D]."""
    latents = np.asarray(latents, dtype=np.float32)
    return np.asarray(model.decode(latents), dtype=np.float32)


def _check_image(model, name, image):
    expected = tuple(int(s) for s in model.data_shape)
    array = np.asarray(image, dtype=np.float32)
    if array.shape == (1,) + expected:
        array = array[0]
    if array.shape != expected:
        raise ValueError(f"Expected `{name}` to be one image of shape {expected} (or "
                         f"{(1,) + expected}). Received an array of shape {array.shape}")
    return check_finite_array(name, array)


def _check_vector(name, value, size=None):
    array = np.asarray(value, dtype=np.float64)
    if array.ndim != 1 or array.shape[0] < 1:
        raise ValueError(f"Expected `{name}` to be a vector [D]. Received an array of shape "
                         f"{array.shape}")
    if size is not None and array.shape[0] != size:
        raise ValueError(f"Expected `{name}` to have shape ({size},) like the other endpoint. "
                         f"Received an array of shape {array.shape}")
    return check_finite_array(name, array)
