"""scikit-learn's bundled 8x8 handwritten digits (UCI optdigits test set; no download).

1,797 images with integer intensities 0..16, scaled here to [0, 1] by dividing by 16.
"""

import numpy as np

from tfpriors._validation import check_non_negative_int

__all__ = ["load_digits_images", "DIGITS_NUM_EXAMPLES"]

DIGITS_NUM_EXAMPLES = 1797


def load_digits_images(validation_size=297, seed=0):
    """The sklearn digits as images with a deterministic train/validation split.

    The examples are permuted with `numpy.random.RandomState(seed).permutation` and the last
    `validation_size` of the permutation are held out (default: 1,500 train, 297 validation).

    Args:
      validation_size: V held-out images, 0 <= V <= 1797.
      seed: permutation seed.

    Returns:
      (train_images float32 [1797 - V, 8, 8, 1] in [0, 1], train_labels int64 [1797 - V],
      val_images float32 [V, 8, 8, 1], val_labels int64 [V]).

    Raises:
      ValueError: if `validation_size` is negative or larger than 1797.
    """
    from sklearn.datasets import load_digits

    validation_size = check_non_negative_int("validation_size", validation_size)
    bunch = load_digits()
    images = (bunch.images.astype(np.float32) / np.float32(16.0))[..., None]   # [1797, 8, 8, 1]
    labels = bunch.target.astype(np.int64)                                   # [1797]
    n = images.shape[0]
    if validation_size > n:
        raise ValueError(f"Expected `validation_size` <= {n}. "
                         f"Received: validation_size={validation_size}")
    order = np.random.RandomState(seed).permutation(n)
    train, val = order[:n - validation_size], order[n - validation_size:]
    return images[train], labels[train], images[val], labels[val]
