"""Argument checks of the graph interpolation: errors name what was expected and received."""

import numpy as np

from tfpriors._validation import check_finite_array, check_positive_int

__all__ = ["_check_points", "_check_endpoint", "_check_num_frames", "_check_seed"]


def _check_points(points, name="points", min_rows=2):
    array = np.array(points, dtype=np.float64)                            # a private copy
    if array.ndim != 2 or array.shape[0] < min_rows or array.shape[1] < 1:
        raise ValueError(f"Expected `{name}` of shape [N, D] with N >= {min_rows} and D >= 1. "
                         f"Received an array of shape {array.shape}")
    return check_finite_array(name, array)


def _check_endpoint(name, value, latent_dim):
    array = np.asarray(value, dtype=np.float64)
    if array.shape != (latent_dim,):
        raise ValueError(f"Expected `{name}` of shape ({latent_dim},), the graph's latent size. "
                         f"Received an array of shape {array.shape}")
    return check_finite_array(name, array)


def _check_num_frames(num_frames):
    num_frames = check_positive_int("num_frames", num_frames)
    if num_frames < 2:
        raise ValueError("Expected `num_frames` >= 2 (the path holds both endpoints). "
                         f"Received: num_frames={num_frames}")
    return num_frames


def _check_seed(seed):
    array = np.asarray(seed)
    if array.shape == (2,) and array.dtype.kind in "iu":
        if np.any(array < -2 ** 31) or np.any(array >= 2 ** 31):
            raise ValueError(f"Expected an int32 [2] `seed`. Received: seed={array.tolist()}")
        return array.astype(np.int32)
    if isinstance(seed, bool) or array.shape != () or array.dtype.kind not in "iu" \
            or not 0 <= int(array) < 2 ** 31:
        raise ValueError("Expected `seed` to be an int in [0, 2**31) or an int32 [2] array. "
                         f"Received: seed={seed!r}")
    return np.array([int(array), 0], np.int32)
