"""Active units of the latent space (Burda et al. 2016, Sec. 5.2).

A latent dimension d is active if its posterior mean varies across the data:

    A_d = Cov_x( E_q(z|x)[z_d] ) > threshold     (threshold 10^-2 in the paper)

The covariance is the population variance (ddof = 0) of the posterior means over the images.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from tfpriors._validation import check_positive_float, check_positive_int
from tfpriors.evaluation._common import check_images

__all__ = ["active_units", "ActiveUnits"]


@dataclasses.dataclass(frozen=True)
class ActiveUnits:
    """Result of `active_units`.

    Attributes:
      count: number of active dimensions.
      variances: float64 [D], Var_x(E_q[z_d|x]) per dimension.
      active: bool [D], variances > threshold.
      threshold: the threshold used.
    """

    count: int
    variances: np.ndarray
    active: np.ndarray
    threshold: float

    def to_dict(self):
        """JSON-serialisable summary."""
        return {"count": int(self.count), "threshold": float(self.threshold),
                "latent_dim": int(self.variances.shape[0]),
                "variances": [float(v) for v in self.variances]}


def active_units(model, images, threshold=0.01, batch_size=100):
    """Counts the latent dimensions whose posterior mean varies across `images`.

    Args:
      model: a model with `encode(x) -> E_q[z|x]` [B, D].
      images: array [N, H, W, C], N >= 2.
      threshold: a dimension is active if its variance exceeds this (Burda et al.: 0.01).
      batch_size: images per encoder call.

    Returns:
      ActiveUnits with the count and the per-dimension variances.

    Raises:
      ValueError: on a non-positive threshold or batch_size, fewer than 2 images, the wrong
        image shape or NaN/inf values.
    """
    threshold = check_positive_float("threshold", threshold)
    batch_size = check_positive_int("batch_size", batch_size)
    images = check_images(model, images, min_examples=2)
    means = np.concatenate([model.encode(tf.constant(images[s:s + batch_size])).numpy()
                            for s in range(0, images.shape[0], batch_size)]).astype(np.float64)  # [N, D]
    variances = np.var(means, axis=0)                                                      # [D]
    active = variances > threshold
    return ActiveUnits(count=int(active.sum()), variances=variances, active=active, threshold=threshold)
