"""Smoothness factor of an interpolated movement (Klushyn et al. 2019, Sec. 4.2, Fig. 7).

The paper defines it as "the RMS of the second order finite difference along the interpolated
path"; smaller is smoother. It is computed on the reconstructions (observation space: joint
features for the motion-capture data, pixels for images). Made precise here: for frames
x_0, ..., x_{T-1}, each with F entries x_{t,f},

    d_{t,f} = x_{t+1,f} - 2 x_{t,f} + x_{t-1,f},          t = 1..T-2   (unit frame spacing)
    S = sqrt( 1 / ((T - 2) F) * sum_t sum_f d_{t,f}^2 )
      = sqrt( mean_t ||x_{t+1} - 2 x_t + x_{t-1}||^2 / F ).

With `per_feature=True` the mean runs over t only, giving one RMS per entry [F...]: average it
over a joint's features for the per-joint bars of Fig. 7. S is 0 exactly when the frames change
at a constant rate (x_t affine in t). S depends on the frame spacing, so compare paths decoded
at the same number of frames, e.g. resampled to equal arc length in latent space
(`resample_path`); the paper averages S over 100 interpolations on each of 10 graphs.
"""

import numpy as np

from tfpriors._validation import check_finite_array

__all__ = ["second_difference", "smoothness_factor"]


def second_difference(frames):
    """Second-order finite differences along the first axis.

    Args:
      frames: array-like [T, ...] with T >= 3.

    Returns:
      float64 [T - 2, ...]: frames[t + 1] - 2 frames[t] + frames[t - 1] for t = 1..T-2.

    Raises:
      ValueError: if T < 3, there is no frame axis, or the values are not finite.
    """
    frames = np.asarray(frames, dtype=np.float64)
    if frames.ndim < 1 or frames.shape[0] < 3:
        raise ValueError("Expected `frames` of shape [T, ...] with T >= 3 (a second difference "
                         f"needs three frames). Received an array of shape {frames.shape}")
    check_finite_array("frames", frames)
    return frames[2:] - 2.0 * frames[1:-1] + frames[:-2]                 # [T-2, ...]


def smoothness_factor(frames, per_feature=False):
    """RMS of the second-order finite difference along a path of frames (see module docstring).

    Args:
      frames: array-like [T, ...] (e.g. decoded images [T, H, W, C] or motion features
        [T, F]), T >= 3, frames in path order.
      per_feature: False for one number over all frames and entries; True for the RMS over
        frames of each entry, shape [...].

    Returns:
      float (per_feature=False) or float64 array [...] (per_feature=True), >= 0.

    Raises:
      ValueError: if T < 3 or the frames hold NaN or infinite values.
    """
    d = second_difference(frames)                                        # [T-2, ...]
    if per_feature:
        return np.sqrt(np.mean(d ** 2, axis=0))                          # [...]
    return float(np.sqrt(np.mean(d ** 2)))
