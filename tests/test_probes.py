"""Tests for tfpriors.probes: circular OLS angle probe, nearest-reference angles, path summary."""

import math

import numpy as np
import pytest

from tfpriors.probes import (angle_path_summary, fit_circle, match_angles, model_angle_error,
                             model_neighbour_angle_error, neighbour_angle_error,
                             pendulum_angle_error, wrap_angle)

TWO_PI = 2.0 * math.pi


def ring_means(theta, sign, offset, centre=(0.7, -0.3), radius=1.7, angle_noise=0.0):
    """Latent means on a circle whose polar angle phi satisfies theta = sign * phi + offset."""
    phi = sign * (np.asarray(theta) - offset) + angle_noise
    return np.asarray(centre) + radius * np.stack([np.cos(phi), np.sin(phi)], axis=1)


def test_wrap_angle_range():
    np.testing.assert_allclose(wrap_angle([math.pi, -math.pi, 3 * math.pi, TWO_PI - 0.01, 0.0]),
                               [math.pi, math.pi, math.pi, -0.01, 0.0], atol=1e-12)


@pytest.mark.parametrize("sign, offset", [(1, -2.5), (-1, 2.0), (-1, math.pi)])
def test_probe_recovers_rotation_reflection_offset_exactly(sign, offset):
    theta = np.random.default_rng(0).uniform(0, TWO_PI, 200)
    out = pendulum_angle_error(ring_means(theta, sign, offset), theta)
    assert out["error_rad"] < 1e-9 and out["fit_error_rad"] < 1e-9
    assert out["slope_sign"] == sign
    assert abs(wrap_angle(out["offset"] - offset)) < 1e-9
    np.testing.assert_allclose(out["centre"], [0.7, -0.3], atol=1e-9)
    assert out["radius"] == pytest.approx(1.7, rel=1e-9)
    assert out["resultant_length"] == pytest.approx(1.0, abs=1e-12)
    assert out["components"] is None and out["num_eval"] == 200


def test_circle_fit_beats_mean_on_uneven_ring():
    # Angles crowded on one side of the ring: the mean of the means is pulled off-centre.
    theta = np.random.default_rng(1).beta(2.0, 5.0, 300) * TWO_PI
    z = ring_means(theta, 1, 0.4)
    assert pendulum_angle_error(z, theta)["error_rad"] < 1e-9
    assert pendulum_angle_error(z, theta, centre="mean")["error_rad"] > 0.05
    # A known centre given in latent coordinates; "origin" is wrong here (centre is not 0).
    assert pendulum_angle_error(z, theta, centre=[0.7, -0.3])["error_rad"] < 1e-9
    assert pendulum_angle_error(z, theta, centre="origin")["error_rad"] > 0.05


def test_probe_projects_higher_dimensional_latents():
    rng = np.random.default_rng(2)
    theta = rng.uniform(0, TWO_PI, 150)
    plane = ring_means(theta, -1, 1.0, centre=(0.0, 0.0), radius=2.0)      # [N, 2]
    rotation, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    z = np.concatenate([plane, np.zeros((150, 2))], axis=1) @ rotation.T + np.array([1, 2, 3, 4])
    out = pendulum_angle_error(z, theta)
    assert out["error_rad"] < 1e-9
    assert out["components"].shape == (4, 2) and out["plane_origin"].shape == (4,)
    # The explicit centre is given in latent coordinates and projected.
    out_c = pendulum_angle_error(z, theta, centre=np.array([1.0, 2.0, 3.0, 4.0]))
    assert out_c["error_rad"] < 1e-9


def test_probe_error_on_noisy_data_equals_hand_value():
    delta = 0.2
    theta = np.random.default_rng(3).uniform(0, TWO_PI, 100)
    noise = delta * (-1.0) ** np.arange(100)         # symmetric: the offset stays exact
    out = pendulum_angle_error(ring_means(theta, -1, 0.5, angle_noise=noise), theta)
    assert out["error_rad"] == pytest.approx(delta, rel=1e-9)
    assert out["max_error_rad"] == pytest.approx(delta, rel=1e-9)
    assert out["resultant_length"] == pytest.approx(math.cos(delta), rel=1e-9)
    assert abs(wrap_angle(out["offset"] - 0.5)) < 1e-9


def test_probe_held_out_evaluation():
    rng = np.random.default_rng(4)
    fit_theta, eval_theta = rng.uniform(0, TWO_PI, 80), rng.uniform(0, TWO_PI, 60)
    noise = rng.uniform(-0.3, 0.3, 60)
    out = pendulum_angle_error(ring_means(fit_theta, 1, 1.2), fit_theta,
                               eval_means=ring_means(eval_theta, 1, 1.2, angle_noise=noise),
                               eval_angles=eval_theta)
    assert out["fit_error_rad"] < 1e-9
    assert out["error_rad"] == pytest.approx(np.mean(np.abs(noise)), rel=1e-9)
    assert out["num_fit"] == 80 and out["num_eval"] == 60


def test_probe_wraps_around_zero_and_two_pi():
    # Joint angles just above 0 and just below 2 pi, offset straddling +-pi: a probe that did
    # not wrap (linear mean of residuals, |theta - pred| without wrap) would report ~pi errors.
    rng = np.random.default_rng(5)
    theta = np.mod(rng.uniform(-0.4, 0.4, 120), TWO_PI)
    assert theta.min() < 0.1 and theta.max() > TWO_PI - 0.1
    z = ring_means(theta, 1, math.pi, angle_noise=0.1 * (-1.0) ** np.arange(120))
    out = pendulum_angle_error(z, theta)
    assert out["error_rad"] == pytest.approx(0.1, rel=1e-6)
    assert abs(wrap_angle(out["offset"] - math.pi)) < 1e-6


def test_fit_circle_exact_and_degenerate():
    t = np.linspace(0, 1.0, 7)                        # a short arc only
    centre, radius = fit_circle(np.stack([3 + 0.5 * np.cos(t), -1 + 0.5 * np.sin(t)], axis=1))
    np.testing.assert_allclose(centre, [3, -1], atol=1e-9)
    assert radius == pytest.approx(0.5, rel=1e-9)
    with pytest.raises(ValueError, match="fix no circle"):
        fit_circle(np.stack([np.arange(5.0), 2 * np.arange(5.0)], axis=1))


@pytest.mark.parametrize("kwargs, match", [
    (dict(latent_means=np.zeros((10, 1)), true_angles=np.zeros(10)), r"D >= 2.*\(10, 1\)"),
    (dict(latent_means=np.zeros((10, 2)), true_angles=np.zeros(9)),
     r"`true_angles` of shape \(10,\).*\(9,\)"),
    (dict(latent_means=np.zeros((2, 2)), true_angles=np.zeros(2)), "at least 3"),
    (dict(latent_means=np.full((10, 2), np.nan), true_angles=np.zeros(10)), "finite"),
    (dict(eval_means=np.zeros((5, 2))), "both given or both None"),
    (dict(eval_means=np.zeros((5, 3)), eval_angles=np.zeros(5)), r"\[M, 2\].*\(5, 3\)"),
    (dict(centre="median"), r"centre.*'median'"),
    (dict(centre=np.zeros(3)), r"shape \(2,\).*\(3,\)"),
])
def test_probe_bad_inputs(kwargs, match):
    theta = np.linspace(0, TWO_PI, 10, endpoint=False)
    args = dict(latent_means=ring_means(theta, 1, 0.0), true_angles=theta)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        pendulum_angle_error(**args)


def test_match_angles_explicit_references():
    rng = np.random.default_rng(6)
    refs = rng.random((12, 3, 3, 1))
    angles = np.linspace(0, TWO_PI, 12, endpoint=False)
    frames = refs[[3, 7, 0, 11]] + 0.01 * rng.normal(size=(4, 3, 3, 1))
    np.testing.assert_allclose(match_angles(frames, angles, refs), angles[[3, 7, 0, 11]])
    matched, index, dist = match_angles(frames, angles, refs, return_details=True)
    np.testing.assert_array_equal(index, [3, 7, 0, 11])
    np.testing.assert_allclose(dist, np.linalg.norm((frames - refs[index]).reshape(4, -1), axis=1),
                               rtol=1e-9)
    with pytest.raises(ValueError, match=r"\(12, 3, 3, 1\).*\(12, 3, 3\)"):
        match_angles(frames, angles, refs[..., 0])
    with pytest.raises(ValueError, match=r"`reference_angles` of shape \[R\]"):
        match_angles(frames, angles[:, None], refs)


def test_match_angles_with_rendered_pendulum():
    pendulum = pytest.importorskip("tfpriors.datasets.pendulum")
    grid = np.linspace(0, TWO_PI, 360, endpoint=False)
    true = np.array([0.1, 1.0, 2.0, 3.0, 5.5, 6.2])
    frames = pendulum.render_pendulum(true, size=16)
    matched = match_angles(frames, grid)                  # references rendered on the fly
    assert np.max(np.abs(wrap_angle(matched - true))) <= math.radians(0.5) + 1e-9
    np.testing.assert_array_equal(matched, match_angles(frames, grid,
                                                        pendulum.render_pendulum(grid, 16)))


def test_angle_path_summary():
    ok = angle_path_summary([6.1, 6.25, 0.1, 0.3])       # crosses 2 pi -> 0 going forward
    np.testing.assert_allclose(ok["steps"], [0.15, 0.1 + TWO_PI - 6.25, 0.2], atol=1e-12)
    assert ok["monotonic"] and ok["direction"] == 1
    assert ok["max_jump_rad"] == pytest.approx(0.2, abs=1e-12)
    assert ok["total_rotation_rad"] == pytest.approx(0.3 + TWO_PI - 6.1, abs=1e-12)
    back = angle_path_summary([0.5, 0.4, 0.4, 0.2])
    assert back["monotonic"] and back["direction"] == -1
    bad = angle_path_summary([0.0, 0.2, 1.5, 1.4])
    assert not bad["monotonic"] and bad["direction"] == 0
    assert bad["max_jump_rad"] == pytest.approx(1.3, abs=1e-12)
    with pytest.raises(ValueError, match=r"T >= 2.*\(1,\)"):
        angle_path_summary([1.0])


def bent_ring(theta, bend):
    """A simple closed curve that is not star-shaped for large `bend`: the unit circle pushed
    through the plane bijection (x, y) -> (x, y + bend x^2)."""
    return np.stack([np.cos(theta), np.sin(theta) + bend * np.cos(theta) ** 2], axis=1)


def test_neighbour_probe_matches_brute_force_numpy():
    rng = np.random.default_rng(3)
    fit_z, fit_theta = rng.normal(size=(60, 3)), rng.uniform(0, TWO_PI, 60)
    eval_z, eval_theta = rng.normal(size=(25, 3)), rng.uniform(0, TWO_PI, 25)
    out = neighbour_angle_error(fit_z, fit_theta, eval_z, eval_theta, k=4)
    dist = np.linalg.norm(eval_z[:, None, :] - fit_z[None, :, :], axis=2)    # [25, 60]
    expected = []
    for j in range(25):
        near = fit_theta[np.argsort(dist[j])[:4]]
        pred = math.atan2(np.sin(near).sum(), np.cos(near).sum())
        expected.append(abs(wrap_angle(eval_theta[j] - pred)))
    assert out["error_rad"] == pytest.approx(np.mean(expected), rel=1e-12)
    assert out["max_error_rad"] == pytest.approx(np.max(expected), rel=1e-12)
    assert (out["k"], out["num_fit"], out["num_eval"]) == (4, 60, 25)


def test_neighbour_probe_ignores_shape_where_the_ols_probe_does_not():
    rng = np.random.default_rng(4)
    fit_theta, eval_theta = rng.uniform(0, TWO_PI, 2000), rng.uniform(0, TWO_PI, 500)
    fit_z, eval_z = bent_ring(fit_theta, 3.0), bent_ring(eval_theta, 3.0)
    ols = pendulum_angle_error(fit_z, fit_theta, eval_means=eval_z, eval_angles=eval_theta)
    knn = neighbour_angle_error(fit_z, fit_theta, eval_z, eval_theta)
    assert ols["error_rad"] > 0.5          # the polar angle is not monotone along the bent curve
    assert knn["error_rad"] < 0.01         # but every angle has its own place on it
    circle = neighbour_angle_error(ring_means(fit_theta, 1, 0.3), fit_theta,
                                   ring_means(eval_theta, 1, 0.3), eval_theta)
    assert circle["error_rad"] < 0.01


def test_neighbour_probe_sees_a_curve_that_crosses_itself():
    # Figure eight: theta = 0 and theta = pi are both encoded at the origin.
    rng = np.random.default_rng(5)
    fit_theta, eval_theta = rng.uniform(0, TWO_PI, 2000), rng.uniform(0, TWO_PI, 500)

    def eight(t):
        return np.stack([np.sin(t), np.sin(t) * np.cos(t)], axis=1)
    out = neighbour_angle_error(eight(fit_theta), fit_theta, eight(eval_theta), eval_theta)
    assert out["max_error_rad"] > 2.0
    circle = neighbour_angle_error(ring_means(fit_theta, 1, 0.0), fit_theta,
                                   ring_means(eval_theta, 1, 0.0), eval_theta)
    assert out["error_rad"] > 3 * circle["error_rad"]


@pytest.mark.parametrize("kwargs, message", [
    ({"k": 0}, "k` in \\[1, 10\\]"),
    ({"k": 11}, "k` in \\[1, 10\\]"),
    ({"k": True}, "integer `k`"),
    ({"eval_means": np.zeros((4, 3))}, "eval_means` of shape \\[M, 2\\]"),
    ({"eval_angles": np.zeros(3)}, "eval_angles` of shape \\(4,\\)"),
    ({"eval_means": np.full((4, 2), np.nan)}, "eval_means"),
])
def test_neighbour_probe_rejects_bad_input(kwargs, message):
    args = {"latent_means": np.random.default_rng(6).normal(size=(10, 2)),
            "true_angles": np.zeros(10), "eval_means": np.zeros((4, 2)),
            "eval_angles": np.zeros(4), "k": 5}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        neighbour_angle_error(**args)


def test_model_level_probes_encode_train_and_held_out_images():
    from types import SimpleNamespace
    rng = np.random.default_rng(7)
    train_theta, val_theta = rng.uniform(0, TWO_PI, 300), rng.uniform(0, TWO_PI, 50)
    # "Images" are the angles themselves; the fake encoder puts them on a bent ring.
    splits = SimpleNamespace(train_images=train_theta, train_labels=train_theta,
                             val_images=val_theta, val_labels=val_theta)
    model = SimpleNamespace(encode=lambda images: bent_ring(np.asarray(images), 3.0))
    ols = model_angle_error(model, splits)
    assert ols["num_fit"] == 300 and ols["num_eval"] == 50
    assert ols["error_rad"] == pytest.approx(pendulum_angle_error(
        bent_ring(train_theta, 3.0), train_theta, eval_means=bent_ring(val_theta, 3.0),
        eval_angles=val_theta)["error_rad"], rel=1e-12)
    knn = model_neighbour_angle_error(model, splits, k=3)
    assert knn["k"] == 3 and knn["num_eval"] == 50
    assert knn["error_rad"] < 0.05 < ols["error_rad"]
