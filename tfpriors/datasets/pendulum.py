"""Artificial pendulum images (Klushyn et al. 2019, *Learning Hierarchical Priors in VAEs*, 4.1).

"We created a dataset of 15,000 images of a moving pendulum. Each image has a size of 16 x 16
pixels and the joint angles are distributed uniformly in the range [0, 2 pi). Thus, the joint angle
is the only degree of freedom."

The paper does not publish its renderer; this one draws a rod from the image centre (the pivot)
to a round bob, both with analytic anti-aliasing, so that the image is a continuous function of
the angle and nothing else varies (no noise, no other parameters).

Geometry, in pixel units for size S (pixel (i, j) has its centre at row i, column j):
  pivot      c = ((S - 1) / 2, (S - 1) / 2)
  bob centre b(theta) = c + L (cos theta, sin theta)   as (row, column), L = 5 S / 16
  i.e. theta = 0 hangs straight down, theta = pi / 2 points right, theta = pi points up.
  intensity  I = max(clip(w_rod + 1/2 - d_rod, 0, 1), clip(r_bob + 1/2 - d_bob, 0, 1))
  with d_rod the distance of the pixel centre to the segment [c, b], w_rod = S / 32 the rod's
  half-width, d_bob the distance to b and r_bob = 3 S / 32 the bob radius. The clipped ramp of
  width one pixel approximates the area of the pixel covered by the shape (standard analytic
  anti-aliasing), so a sub-pixel move of the bob changes the pixel values continuously.

Optional blur (`blur` = b > 0 pixels): each image is convolved with an isotropic Gaussian of
standard deviation b (scipy.ndimage.gaussian_filter, reflecting borders) and divided by its own
maximum, so intensities still span [0, 1]. Blurring widens the range of angles over which two
images overlap: at b = 0 the distance ||x(0) - x(theta)|| reaches its maximum by theta ~ 45 degrees
and the top two principal components (the cos/sin modes) explain 23% of the variance; at
b = 1.5 it saturates near 90 degrees and they explain 49%. `render_pendulum`/`load_pendulum` default
to b = 0 (sharp); the main job (`python -m trainers.train`) and the pendulum tables of benchmarks/README.md use
b = 1.5, and every reported figure says which one it used.
"""

import math

import numpy as np

from tfpriors._validation import check_non_negative_int, check_positive_int


def _check_blur(blur):
    try:
        value = float(blur)
    except (TypeError, ValueError):
        value = float("nan")
    if not (math.isfinite(value) and value >= 0.0):
        raise ValueError(f"Expected `blur` (Gaussian blur std in pixels) to be a finite number >= 0. "
                         f"Received: blur={blur!r}")
    return value


def blur_images(images, blur):
    """Gaussian blur of std `blur` pixels over the two image axes, each image rescaled to max 1.

    Args:
      images: float array [..., S, S, 1].
      blur: b >= 0; b = 0 returns `images` unchanged.

    Returns:
      float32 array of the same shape, values in [0, 1].
    """
    blur = _check_blur(blur)
    if blur == 0.0:
        return images
    from scipy.ndimage import gaussian_filter
    images = np.asarray(images, np.float64)
    sigma = (0,) * (images.ndim - 3) + (blur, blur, 0)
    out = gaussian_filter(images, sigma=sigma, mode="reflect")
    peak = out.max(axis=(-3, -2, -1), keepdims=True)
    return (out / np.maximum(peak, 1e-12)).astype(np.float32)

__all__ = ["render_pendulum", "blur_images", "make_pendulum", "load_pendulum", "pendulum_angles",
           "PENDULUM_SIZE", "PENDULUM_NUM_EXAMPLES"]

PENDULUM_SIZE = 16
PENDULUM_NUM_EXAMPLES = 15000
TWO_PI = 2.0 * math.pi

# Fractions of the image size: at S = 16 the rod is 5 px long and 1 px wide, the bob 3 px wide,
# so the bob (plus its anti-aliasing ramp) stays inside the image for every angle.
_LENGTH = 5.0 / 16.0
_ROD_HALF_WIDTH = 0.5 / 16.0
_BOB_RADIUS = 1.5 / 16.0


def render_pendulum(angles, size=PENDULUM_SIZE, blur=0.0):
    """Renders anti-aliased pendulum images for given joint angles (vectorised).

    Args:
      angles: array-like of joint angles in radians, any shape [...]; any real value (the
        image is 2 pi-periodic in the angle). 0 hangs down, pi / 2 points right.
      size: image height and width S in pixels (default 16 as in the paper).
      blur: Gaussian blur std in pixels (module docstring); 0 (default) renders sharp images.

    Returns:
      float32 array [..., S, S, 1] with values in [0, 1].

    Raises:
      ValueError: if `size` is not a positive int, `blur` is negative or `angles` holds NaN
        or infinite values.
    """
    size = check_positive_int("size", size)
    blur = _check_blur(blur)
    angles = np.asarray(angles, dtype=np.float64)
    if not np.all(np.isfinite(angles)):
        raise ValueError("Expected `angles` to hold only finite values. Received: "
                         f"{int(np.size(angles) - np.count_nonzero(np.isfinite(angles)))} NaN or "
                         f"infinite entries in an array of shape {angles.shape}")
    batch_shape = angles.shape
    theta = angles.reshape(-1, 1, 1)                                  # [N, 1, 1]
    centre = (size - 1) / 2.0
    length = _LENGTH * size
    rows = np.arange(size, dtype=np.float64).reshape(1, size, 1) - centre   # [1, S, 1]
    cols = np.arange(size, dtype=np.float64).reshape(1, 1, size) - centre   # [1, 1, S]
    bob_r = length * np.cos(theta)                                    # [N, 1, 1]
    bob_c = length * np.sin(theta)                                    # [N, 1, 1]

    # Distance to the segment from the pivot (origin) to the bob: project onto the rod,
    # clamp the projection to [0, L], measure to the closest point.
    t = np.clip((rows * bob_r + cols * bob_c) / length ** 2, 0.0, 1.0)   # [N, S, S]
    d_rod = np.hypot(rows - t * bob_r, cols - t * bob_c)              # [N, S, S]
    d_bob = np.hypot(rows - bob_r, cols - bob_c)                      # [N, S, S]

    rod = np.clip(_ROD_HALF_WIDTH * size + 0.5 - d_rod, 0.0, 1.0)
    bob = np.clip(_BOB_RADIUS * size + 0.5 - d_bob, 0.0, 1.0)
    images = np.maximum(rod, bob).astype(np.float32)                  # [N, S, S]
    return blur_images(images.reshape(batch_shape + (size, size, 1)), blur)


def pendulum_angles(num_examples, seed=0):
    """Joint angles drawn uniformly from [0, 2 pi) with numpy's default generator.

    The stream is prefix-consistent: the first n angles for a seed are the same whatever
    `num_examples` >= n is asked for (this is what keeps the held-out split of `load_pendulum`
    disjoint from its training split).

    Args:
      num_examples: N >= 0.
      seed: seed of `numpy.random.default_rng`.

    Returns:
      float64 [N] angles, each in [0, 2 pi). Kept in float64: float32 has only ~10^7 values in
      [0, 2 pi), so 15,000 float32 draws would collide with a held-out set by chance.

    Raises:
      ValueError: if `num_examples` is negative or not an int.
    """
    num_examples = check_non_negative_int("num_examples", num_examples)
    rng = np.random.default_rng(seed)
    angles = rng.uniform(0.0, TWO_PI, size=num_examples)                # [N]
    # low + (high - low) U can round up to 2 pi; fold it back so the range is half-open.
    return np.where(angles >= TWO_PI, 0.0, angles)


def make_pendulum(num_examples=PENDULUM_NUM_EXAMPLES, seed=0, size=PENDULUM_SIZE, blur=0.0):
    """The pendulum data set: images and their joint angles, deterministic for a seed.

    Args:
      num_examples: N >= 0 (15,000 in the paper).
      seed: seed of the angle generator (`pendulum_angles`).
      size: image size S (16 in the paper).
      blur: Gaussian blur std in pixels (`render_pendulum`).

    Returns:
      images: float32 [N, S, S, 1] in [0, 1].
      angles: float64 [N], uniform in [0, 2 pi), the only degree of freedom.

    Raises:
      ValueError: if `num_examples` is negative or `size` is not a positive int.
    """
    angles = pendulum_angles(num_examples, seed)
    return render_pendulum(angles, size, blur), angles


def load_pendulum(num_examples=PENDULUM_NUM_EXAMPLES, validation_size=1500, seed=0,
                  size=PENDULUM_SIZE, blur=0.0):
    """Training set of `make_pendulum(num_examples, seed)` plus a disjoint held-out set.

    The held-out angles are the next `validation_size` draws of the same generator stream, so
    the training images are exactly `make_pendulum(num_examples, seed)` and no held-out
    angle is a training angle (checked).

    Args:
      num_examples: N training images (default 15,000).
      validation_size: V held-out images (default 1,500, i.e. 10% of N).
      seed: generator seed.
      size: image size S.
      blur: Gaussian blur std in pixels (`render_pendulum`).

    Returns:
      (train_images [N, S, S, 1], train_angles [N], val_images [V, S, S, 1], val_angles [V]).

    Raises:
      ValueError: on negative sizes.
    """
    num_examples = check_non_negative_int("num_examples", num_examples)
    validation_size = check_non_negative_int("validation_size", validation_size)
    angles = pendulum_angles(num_examples + validation_size, seed)      # [N + V]
    train_angles, val_angles = angles[:num_examples], angles[num_examples:]
    if np.intersect1d(train_angles, val_angles).size:
        # Probability ~ N V 2^-52 for float64 draws; re-drawing would break the prefix property.
        raise ValueError(f"Held-out angles coincide with training angles for seed={seed}; "
                         "choose another seed.")
    return (render_pendulum(train_angles, size, blur), train_angles,
            render_pendulum(val_angles, size, blur), val_angles)
