"""Reconstruction error of x -> E_q[z|x] -> E[x|z]: per-pixel MSE and per-pixel negative log-likelihood.

LaDDer (Lin & Clark 2020), Table 3, reports the per-pixel reconstruction error; the MSE here
is that quantity:

    mse(x)  = 1/P sum_i (x_i - E[x_i | z = E_q[z|x]])^2,           P = H * W * C
    nll(x)  = -1/P log p(x | z = E_q[z|x])   (nats per pixel; the binary cross-entropy for
              a Bernoulli likelihood, which keeps every normalising constant for the others)
"""

import math

import numpy as np
import tensorflow as tf

from tfpriors._validation import check_positive_int
from tfpriors.evaluation._common import Estimate, check_images

__all__ = ["reconstruction_error"]


def reconstruction_error(model, images, batch_size=100):
    """Per-image mean squared error of decode(encode(x)) and per-pixel NLL at the posterior mean.

    Args:
      model: a model with `encode`, `decode` and `likelihood_distribution` (trainers.VAE).
      images: array [N, H, W, C] with (H, W, C) = model.data_shape, finite values.
      batch_size: images per call.

    Returns:
      Estimate with per_example MSE (float64 [N]) and details["nll_per_pixel"].

    Raises:
      ValueError: if batch_size is not a positive int or the images have the wrong shape or
        NaN/inf values.
    """
    batch_size = check_positive_int("batch_size", batch_size)
    images = check_images(model, images)
    num_pixels = math.prod(images.shape[1:])
    mse, nll = [], []
    for start in range(0, images.shape[0], batch_size):
        x = tf.constant(images[start:start + batch_size])                   # [B, H, W, C]
        z = model.encode(x)                                                  # [B, D]
        x_hat = model.decode(z)                                              # [B, H, W, C]
        mse.append(tf.reduce_mean(tf.math.squared_difference(x, x_hat), axis=[1, 2, 3]).numpy())
        nll.append(-model.likelihood_distribution(z).log_prob(x).numpy() / num_pixels)
    return Estimate(name="reconstruction_error",
                    per_example=np.concatenate(mse).astype(np.float64),
                    details={"nll_per_pixel": np.concatenate(nll).astype(np.float64)},
                    info={"metric": "per-pixel mean squared error of decode(encode(x))",
                          "nll_definition": "-log p(x | z = E_q[z|x]) / pixels, nats"})
