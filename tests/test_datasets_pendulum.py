"""Tests for the pendulum images (Klushyn et al. 2019, Sec. 4.1)."""

import numpy as np
import pytest
from scipy import stats

from tfpriors.datasets.pendulum import (load_pendulum, make_pendulum, pendulum_angles,
                                        render_pendulum)

TWO_PI = 2 * np.pi


def _centroid_angle(images, min_radius=3.0):
    """Angle of the intensity-weighted centroid of the pixels at radius >= min_radius."""
    size = images.shape[-2]
    r = np.arange(size) - (size - 1) / 2
    rows, cols = np.meshgrid(r, r, indexing="ij")                     # [S, S]
    weights = images[..., 0] * (np.hypot(rows, cols) >= min_radius)   # [N, S, S]
    mean_r = (weights * rows).sum((-2, -1)) / weights.sum((-2, -1))
    mean_c = (weights * cols).sum((-2, -1)) / weights.sum((-2, -1))
    return np.arctan2(mean_c, mean_r)                                 # 0 = down, pi/2 = right


def _angle_error(a, b):
    return np.abs(np.angle(np.exp(1j * (a - b))))


def test_make_pendulum_shapes_dtypes_and_range():
    images, angles = make_pendulum(500, seed=3)
    assert images.shape == (500, 16, 16, 1) and images.dtype == np.float32
    assert angles.shape == (500,)
    assert images.min() == 0.0 and images.max() == 1.0
    assert np.all(angles >= 0) and np.all(angles < TWO_PI)
    # Bob and rod stay inside the image: the border is empty for every angle.
    assert images[:, [0, -1]].max() == 0.0 and images[:, :, [0, -1]].max() == 0.0


def test_default_size_is_the_papers():
    images, angles = make_pendulum(seed=0)
    assert images.shape == (15000, 16, 16, 1) and angles.shape == (15000,)
    # Uniform joint angles on [0, 2 pi): Kolmogorov-Smirnov against U(0, 2 pi).
    assert stats.kstest(angles, stats.uniform(0, TWO_PI).cdf).pvalue > 0.01


def test_deterministic_for_a_seed_and_different_for_another():
    x1, a1 = make_pendulum(200, seed=7)
    x2, a2 = make_pendulum(200, seed=7)
    x3, a3 = make_pendulum(200, seed=8)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(a1, a2)
    assert not np.allclose(a1, a3)
    assert np.abs(x1 - x3).max() > 0.5


def test_images_are_a_function_of_the_angle_only():
    _, angles = make_pendulum(50, seed=1)
    images, _ = make_pendulum(50, seed=1)
    np.testing.assert_array_equal(images, render_pendulum(angles))
    # 2 pi periodic.
    np.testing.assert_allclose(render_pendulum(angles + TWO_PI), images, atol=1e-5)


def test_nearby_angles_are_closer_than_far_angles():
    base = np.linspace(0, TWO_PI, 64, endpoint=False)
    ref = render_pendulum(base)

    def dist(delta):
        return np.sqrt(((render_pendulum(base + delta) - ref) ** 2).sum((1, 2, 3)))  # [64]

    d_small, d_mid, d_far, d_opposite = dist(0.05), dist(0.3), dist(1.0), dist(np.pi)
    assert np.all(d_small < d_mid) and np.all(d_mid < d_far) and np.all(d_mid < d_opposite)


def test_anti_aliasing_makes_the_image_continuous_in_the_angle():
    # Every tiny rotation changes the image (no plateaus, as hard rasterization would give),
    # and by an amount proportional to the step (no jumps).
    base = np.linspace(0, TWO_PI, 360, endpoint=False)
    delta = 1e-3
    diff = np.sqrt(((render_pendulum(base + delta) - render_pendulum(base)) ** 2).sum((1, 2, 3)))
    assert diff.min() > 0.1 * delta
    assert diff.max() < 20 * delta


def test_centroid_recovers_the_angle():
    angles = np.linspace(0, TWO_PI, 720, endpoint=False) + 0.001
    estimate = _centroid_angle(render_pendulum(angles))
    assert _angle_error(estimate, angles).max() < 0.02
    # The stated convention: 0 hangs down, pi / 2 points right.
    down, right = render_pendulum([0.0, np.pi / 2])[..., 0]
    assert down[13, 7] == 1.0 and down[2, 7] == 0.0
    assert right[7, 13] == 1.0 and right[7, 2] == 0.0


def test_render_is_vectorised_over_any_batch_shape_and_size():
    angles = np.array([[0.1, 0.2, 0.3], [1.0, 2.0, 3.0]])
    images = render_pendulum(angles)
    assert images.shape == (2, 3, 16, 16, 1)
    np.testing.assert_array_equal(images[1, 2], render_pendulum(3.0))
    assert render_pendulum(3.0).shape == (16, 16, 1)
    big = render_pendulum([0.5], size=32)
    assert big.shape == (1, 32, 32, 1)
    assert _angle_error(_centroid_angle(big, 6.0), 0.5)[0] < 0.02


def test_angle_stream_is_prefix_consistent():
    np.testing.assert_array_equal(pendulum_angles(100, 4), pendulum_angles(250, 4)[:100])


def test_load_pendulum_train_is_make_pendulum_and_held_out_is_disjoint():
    train_x, train_a, val_x, val_a = load_pendulum(300, 60, seed=2)
    x, a = make_pendulum(300, seed=2)
    np.testing.assert_array_equal(train_x, x)
    np.testing.assert_array_equal(train_a, a)
    assert val_x.shape == (60, 16, 16, 1) and val_a.shape == (60,)
    np.testing.assert_array_equal(val_a, pendulum_angles(360, 2)[300:])
    assert np.intersect1d(train_a, val_a).size == 0
    flat_train = {row.tobytes() for row in train_x.reshape(300, -1)}
    assert not any(row.tobytes() in flat_train for row in val_x.reshape(60, -1))


def test_errors():
    with pytest.raises(ValueError, match="num_examples"):
        make_pendulum(-1)
    with pytest.raises(ValueError, match="num_examples"):
        make_pendulum(2.5)
    with pytest.raises(ValueError, match="validation_size"):
        load_pendulum(10, -3)
    with pytest.raises(ValueError, match="finite"):
        render_pendulum([0.0, np.nan])
    with pytest.raises(ValueError, match="size"):
        render_pendulum([0.0], size=0)
    assert make_pendulum(0)[0].shape == (0, 16, 16, 1)


def test_blur_zero_is_the_sharp_rendering_and_blur_is_a_normalised_gaussian_filter():
    from scipy.ndimage import gaussian_filter
    angles = np.array([0.0, 1.0, 4.0])
    sharp = render_pendulum(angles)
    np.testing.assert_array_equal(render_pendulum(angles, blur=0.0), sharp)
    blurred = render_pendulum(angles, blur=1.5)
    reference = gaussian_filter(sharp.astype(np.float64), sigma=(0, 1.5, 1.5, 0), mode="reflect")
    reference /= reference.max(axis=(1, 2, 3), keepdims=True)
    np.testing.assert_allclose(blurred, reference, atol=1e-6)
    assert blurred.dtype == np.float32 and blurred.min() >= 0.0
    np.testing.assert_allclose(blurred.max(axis=(1, 2, 3)), 1.0)


def test_blur_widens_the_overlap_between_angles():
    # Sharp images stop overlapping by ~45 degrees; blurred ones still differ less at 45 than at 180.
    angles = np.radians([0.0, 45.0, 180.0])
    for blur, max_ratio in ((0.0, None), (1.5, 0.85)):
        x = render_pendulum(angles, blur=blur).reshape(3, -1)
        ratio = np.linalg.norm(x[0] - x[1]) / np.linalg.norm(x[0] - x[2])
        if max_ratio is None:
            assert ratio > 0.95
        else:
            assert ratio < max_ratio


def test_blur_passes_through_load_pendulum_and_rejects_bad_values():
    train, _, val, _ = load_pendulum(num_examples=8, validation_size=4, blur=1.0)
    sharp_train, _, _, _ = load_pendulum(num_examples=8, validation_size=4)
    assert train.shape == sharp_train.shape and val.shape == (4, 16, 16, 1)
    assert not np.allclose(train, sharp_train)
    for bad in (-0.5, float("nan"), "wide"):
        with pytest.raises(ValueError, match="blur"):
            render_pendulum(np.zeros(2), blur=bad)
