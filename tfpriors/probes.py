"""Pendulum probes: the OLS angle regression of Table 1 and angle checks for decoded frames.

Klushyn et al. 2019, Sec. 4.1 and App. B.3: "To validate whether the obtained latent
representation is informative, we apply a linear regression after transforming the latent
space to polar coordinates. The goal is to predict the joint angle of the pendulum." Table 1
reports the absolute error (VHP + REWO 0.054, VHP + GECO 0.53, ...). Fig. 14 plots the joint
angle against arcsin(z_2 / r) with r "estimated from the learned latent representation". The
paper leaves the centre, the direction and offset of the latent angle, the wrap-around and the
error's units open; `pendulum_angle_error` fixes them (see its docstring).

Angles are in radians throughout; differences are wrapped to (-pi, pi] by `wrap_angle`.
Legend for shape comments: N fit examples, M evaluation examples, D latent size, T frames,
R reference images.
"""

import math

import numpy as np

from tfpriors._validation import check_finite_array

__all__ = ["wrap_angle", "fit_circle", "pendulum_angle_error", "neighbour_angle_error",
           "model_angle_error", "model_neighbour_angle_error", "match_angles",
           "angle_path_summary"]

_CENTRES = ("circle", "mean", "origin")


def wrap_angle(angles):
    """Wraps angles to (-pi, pi]: returns a - 2 pi m with the integer m that lands there."""
    angles = np.asarray(angles, dtype=np.float64)
    return math.pi - np.mod(math.pi - angles, 2.0 * math.pi)


def fit_circle(points):
    """Algebraic least-squares circle fit (Kasa 1976) to 2-D points.

    Minimises sum_i (x_i^2 + y_i^2 + a x_i + b y_i + e)^2 over (a, b, e), a linear least-squares
    problem; centre = (-a / 2, -b / 2), radius = sqrt(|centre|^2 - e). Exact for points on a
    circle, and unlike the mean of the points it is not pulled towards densely populated arcs.

    Args:
      points: array-like [N, 2], N >= 3.

    Returns:
      (centre float64 [2], radius float).

    Raises:
      ValueError: on a bad shape, non-finite values, or points that fix no circle (fewer than
        three distinct non-collinear points).
    """
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2 or points.shape[0] < 3:
        raise ValueError("Expected `points` of shape [N, 2] with N >= 3. Received an array of "
                         f"shape {points.shape}")
    check_finite_array("points", points)
    # Centre the data first: the normal equations are then well conditioned far from 0.
    shift = points.mean(axis=0)
    p = points - shift                                                    # [N, 2]
    design = np.concatenate([p, np.ones((p.shape[0], 1))], axis=1)        # [N, 3]
    target = -np.sum(p ** 2, axis=1)                                      # [N]
    sol, _, rank, sing = np.linalg.lstsq(design, target, rcond=None)
    if rank < 3 or sing[-1] <= 1e-9 * sing[0]:
        raise ValueError("Expected latent means that spread around a ring (at least three "
                         "non-collinear points). Received points that fix no circle")
    centre = -0.5 * sol[:2]
    radius_sq = float(np.sum(centre ** 2) - sol[2])
    return centre + shift, math.sqrt(max(radius_sq, 0.0))


def pendulum_angle_error(latent_means, true_angles, centre=None, eval_means=None,
                         eval_angles=None):
    """Circular OLS probe: how well the polar angle of the latent means predicts the joint angle.

    Definition (fitted on (latent_means, true_angles), evaluated on (eval_means, eval_angles),
    which default to the fitting set):

    1. Plane. For D = 2 the latent means u_i = z_i are used as they are. For D > 2 they are
       projected on the first two principal components of the fitting means:
       u_i = (z_i - m) V, m the fitting mean, V [D, 2] the top right singular vectors.
    2. Centre c of the latent ring, in plane coordinates: `centre=None` or "circle" fits a
       circle by least squares (`fit_circle`, default: exact for a ring however unevenly the
       encoder spreads the angles along it); "mean" takes the mean of the fitting u_i; "origin"
       takes z = 0 (the paper's arcsin(z_2 / r) measures the angle around the origin); an
       array [D] gives the centre in latent coordinates (projected like the means).
    3. Latent angle phi_i = atan2(u_i2 - c_2, u_i1 - c_1).
    4. Circular regression of the true angle theta_i on phi_i with unit slope of either sign,
       theta ~ s phi + b (mod 2 pi), s in {+1, -1}: for each s the offset minimising
       sum_i |exp(i theta_i) - exp(i (s phi_i + b))|^2 = sum_i 2 - 2 cos(theta_i - s phi_i - b)
       (least squares on the unit circle) is the circular mean
       b_s = atan2(mean sin(theta - s phi), mean cos(theta - s phi)); s is the sign with the
       larger mean resultant length R_s = |mean exp(i (theta - s phi))|. The slope is not
       otherwise free: a ring traversed once maps [0, 2 pi) onto itself.
    5. Error: mean over the evaluation set of |wrap(theta_j - s phi_j - b)| in radians, with
       wrap to (-pi, pi] (so 0.01 and 2 pi - 0.01 are 0.02 apart, not 6.26). This is the
       "absolute error" of Table 1 under this definition.

    Args:
      latent_means: array-like [N, D], D >= 2, posterior means E_q[z | x_i] of the fitting set.
      true_angles: array-like [N] joint angles in radians (any range).
      centre: None, "circle", "mean", "origin" or array-like [D] (see step 2).
      eval_means: None or array-like [M, D] posterior means of held-out pendulum images.
      eval_angles: None or array-like [M]; given together with `eval_means`.

    Returns:
      dict with
        error_rad: mean absolute circular error on the evaluation set (radians);
        fit_error_rad: the same on the fitting set;
        max_error_rad: largest absolute circular error on the evaluation set;
        slope_sign: +1 or -1 (direction of the latent angle relative to the joint angle);
        offset: b in (-pi, pi];
        centre: float64 [2] ring centre in plane coordinates (latent coordinates if D = 2);
        radius: mean distance of the fitting u_i to the centre;
        radial_spread: std / mean of those distances (0 for a perfect ring);
        resultant_length: R_s in [0, 1], fit quality (1 = exact fit, about 0 = no relation);
        components: None (D = 2) or float64 [D, 2] principal directions V;
        plane_origin: None (D = 2) or float64 [D] the mean m subtracted before projecting;
        num_fit, num_eval: N and M.

    Raises:
      ValueError: on shapes that do not match (naming expected and received), D < 2, N < 3,
        non-finite values, only one of eval_means/eval_angles, a bad `centre`, or fitting
        means that fix no circle.
    """
    fit_z, fit_theta = _check_pair("latent_means", latent_means, "true_angles", true_angles)
    if fit_z.shape[0] < 3:
        raise ValueError("Expected at least 3 fitting examples. Received "
                         f"latent_means of shape {fit_z.shape}")
    if (eval_means is None) != (eval_angles is None):
        raise ValueError("Expected `eval_means` and `eval_angles` both given or both None. "
                         f"Received: eval_means is {'None' if eval_means is None else 'given'}, "
                         f"eval_angles is {'None' if eval_angles is None else 'given'}")
    if eval_means is None:
        eval_z, eval_theta = fit_z, fit_theta
    else:
        eval_z, eval_theta = _check_pair("eval_means", eval_means, "eval_angles", eval_angles)
        if eval_z.shape[1] != fit_z.shape[1]:
            raise ValueError(f"Expected `eval_means` of shape [M, {fit_z.shape[1]}] like "
                             f"`latent_means`. Received an array of shape {eval_z.shape}")

    latent_dim = fit_z.shape[1]
    if latent_dim == 2:
        origin, basis = None, None
        fit_u, eval_u = fit_z, eval_z                                     # [N, 2], [M, 2]
    else:
        origin = fit_z.mean(axis=0)                                       # [D]
        _, _, vt = np.linalg.svd(fit_z - origin, full_matrices=False)
        basis = vt[:2].T                                                  # [D, 2]
        fit_u, eval_u = (fit_z - origin) @ basis, (eval_z - origin) @ basis

    ring_centre = _ring_centre(centre, fit_u, latent_dim, origin, basis)  # [2]
    fit_phi = _polar_angle(fit_u, ring_centre)                            # [N]
    eval_phi = _polar_angle(eval_u, ring_centre)                          # [M]

    best = None
    for sign in (1, -1):
        residual = fit_theta - sign * fit_phi                             # [N]
        mean_cos, mean_sin = np.mean(np.cos(residual)), np.mean(np.sin(residual))
        length = math.hypot(mean_cos, mean_sin)
        if best is None or length > best[2] + 1e-12:
            best = (sign, math.atan2(mean_sin, mean_cos), length)
    sign, offset, resultant = best
    offset = float(wrap_angle(offset))

    fit_err = np.abs(wrap_angle(fit_theta - sign * fit_phi - offset))     # [N]
    eval_err = np.abs(wrap_angle(eval_theta - sign * eval_phi - offset))  # [M]
    radii = np.linalg.norm(fit_u - ring_centre, axis=1)                   # [N]
    radius = float(np.mean(radii))
    return {
        "error_rad": float(np.mean(eval_err)),
        "fit_error_rad": float(np.mean(fit_err)),
        "max_error_rad": float(np.max(eval_err)),
        "slope_sign": int(sign),
        "offset": offset,
        "centre": ring_centre,
        "radius": radius,
        "radial_spread": float(np.std(radii) / radius) if radius > 0 else float("inf"),
        "resultant_length": float(resultant),
        "components": basis,
        "plane_origin": origin,
        "num_fit": int(fit_z.shape[0]),
        "num_eval": int(eval_z.shape[0]),
    }


def neighbour_angle_error(latent_means, true_angles, eval_means, eval_angles, k=5):
    """Shape-free companion of the OLS probe: k-nearest-neighbour circular regression.

    Not in the paper. The OLS probe assumes the latent curve winds once around its centre
    (star-shaped); a curve that keeps every angle apart but is dented or bent scores badly
    there. This probe asks only whether nearby latent means have nearby joint angles:

        prediction_j = circular mean of theta_i over the k fitting means u_i nearest (Euclidean)
                       to the evaluation mean z_j = atan2(sum sin theta_i, sum cos theta_i);
        error = mean_j |wrap(theta_j - prediction_j)| in radians.

    A curve that passes each angle once, whatever its shape, gives an error near the angular
    spacing of the fitting set; a curve that crosses or folds onto itself (different angles
    encoded at the same place) gives large errors there.

    Args:
      latent_means: array-like [N, D], D >= 2, posterior means of the fitting set.
      true_angles: array-like [N] their joint angles (radians).
      eval_means: array-like [M, D] posterior means of held-out images.
      eval_angles: array-like [M] their joint angles.
      k: neighbours per prediction, 1 <= k <= N.

    Returns:
      dict with error_rad (mean absolute circular error on the evaluation set), max_error_rad,
      k, num_fit and num_eval.

    Raises:
      ValueError: on shapes that do not match, non-finite values or k outside [1, N].
    """
    fit_z, fit_theta = _check_pair("latent_means", latent_means, "true_angles", true_angles)
    eval_z, eval_theta = _check_pair("eval_means", eval_means, "eval_angles", eval_angles)
    if eval_z.shape[1] != fit_z.shape[1]:
        raise ValueError(f"Expected `eval_means` of shape [M, {fit_z.shape[1]}] like "
                         f"`latent_means`. Received an array of shape {eval_z.shape}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= fit_z.shape[0]:
        raise ValueError(f"Expected an integer `k` in [1, {fit_z.shape[0]}] (the number of "
                         f"fitting examples). Received: k={k!r}")
    from sklearn.neighbors import NearestNeighbors
    index = NearestNeighbors(n_neighbors=int(k)).fit(fit_z).kneighbors(
        eval_z, return_distance=False)                                    # [M, k]
    neighbours = fit_theta[index]                                         # [M, k]
    prediction = np.arctan2(np.sin(neighbours).sum(axis=1), np.cos(neighbours).sum(axis=1))
    error = np.abs(wrap_angle(eval_theta - prediction))                   # [M]
    return {"error_rad": float(np.mean(error)), "max_error_rad": float(np.max(error)),
            "k": int(k), "num_fit": int(fit_z.shape[0]), "num_eval": int(eval_z.shape[0])}


def model_angle_error(model, splits):
    """`pendulum_angle_error` of a trained model as Table 1 reports it: fitted on the posterior
    means E_q[z|x] of the training images, evaluated on those of the held-out images.

    Args:
      model: anything with `encode(images) -> [N, D]` posterior means (e.g. `trainers.VAE`).
      splits: pendulum `DatasetSplits` (train/val images and their joint angles as labels).

    Returns:
      the dict of `pendulum_angle_error` (error_rad on the held-out images, fit_error_rad, ...).
    """
    fit_means, eval_means = _encode_splits(model, splits)
    return pendulum_angle_error(fit_means, splits.train_labels, eval_means=eval_means,
                                eval_angles=splits.val_labels)


def model_neighbour_angle_error(model, splits, k=5):
    """`neighbour_angle_error` of a trained model on the splits `model_angle_error` uses."""
    fit_means, eval_means = _encode_splits(model, splits)
    return neighbour_angle_error(fit_means, splits.train_labels, eval_means, splits.val_labels,
                                 k=k)


def _encode_splits(model, splits):
    """Posterior means E_q[z|x] of the training and held-out images, as float arrays."""
    return (np.asarray(model.encode(splits.train_images)),
            np.asarray(model.encode(splits.val_images)))


def match_angles(frames, reference_angles, reference_images=None, return_details=False):
    """Angle of the nearest (L2) reference image for each frame.

    Used to judge decoded pendulum interpolations: a good path's matched angles move through
    the intermediate angles in order without jumps (see `angle_path_summary`).

    Args:
      frames: array-like [T, ...], e.g. decoded images [T, H, W, C].
      reference_angles: array-like [R] angles (radians) of the reference images.
      reference_images: array-like [R, ...] with the frames' trailing shape, or None to render
        them with `tfpriors.datasets.pendulum.render_pendulum(reference_angles, size=H)`
        (frames must then be [T, H, H, 1]).
      return_details: also return the matched indices and distances.

    Returns:
      float64 [T] matched angles, or (angles [T], indices int64 [T], distances [T]) with
      return_details=True. Ties go to the first reference.

    Raises:
      ValueError: on shapes that do not match (naming expected and received) or non-finite
        values.
    """
    frames = np.asarray(frames, dtype=np.float64)
    if frames.ndim < 2 or frames.shape[0] < 1:
        raise ValueError("Expected `frames` of shape [T, ...] with T >= 1 and at least one "
                         f"value per frame. Received an array of shape {frames.shape}")
    check_finite_array("frames", frames)
    angles = np.asarray(reference_angles, dtype=np.float64)
    if angles.ndim != 1 or angles.shape[0] < 1:
        raise ValueError("Expected `reference_angles` of shape [R] with R >= 1. Received an "
                         f"array of shape {angles.shape}")
    check_finite_array("reference_angles", angles)
    if reference_images is None:
        if frames.ndim != 4 or frames.shape[1] != frames.shape[2] or frames.shape[3] != 1:
            raise ValueError("Expected square single-channel `frames` [T, S, S, 1] to render "
                             f"references for. Received an array of shape {frames.shape}; "
                             "pass `reference_images` instead")
        from tfpriors.datasets.pendulum import render_pendulum
        reference_images = render_pendulum(angles, size=frames.shape[1])
    refs = np.asarray(reference_images, dtype=np.float64)
    expected = (angles.shape[0],) + frames.shape[1:]
    if refs.shape != expected:
        raise ValueError(f"Expected `reference_images` of shape {expected} (one per reference "
                         f"angle, frames' trailing shape). Received an array of shape "
                         f"{refs.shape}")
    check_finite_array("reference_images", refs)

    f = frames.reshape(frames.shape[0], -1)                               # [T, P]
    r = refs.reshape(refs.shape[0], -1)                                   # [R, P]
    sq = (np.sum(f ** 2, axis=1)[:, None] - 2.0 * f @ r.T
          + np.sum(r ** 2, axis=1)[None, :])                              # [T, R]
    index = np.argmin(sq, axis=1)                                         # [T]
    matched = angles[index]
    if not return_details:
        return matched
    distances = np.sqrt(np.maximum(sq[np.arange(f.shape[0]), index], 0.0))
    return matched, index.astype(np.int64), distances


def angle_path_summary(angles):
    """Step sizes and direction of a sequence of angles, with wrap-around.

    steps_t = wrap(angles_{t+1} - angles_t) in (-pi, pi] (the shorter way round).

    Args:
      angles: array-like [T], T >= 2, radians.

    Returns:
      dict with steps (float64 [T - 1]), max_jump_rad (max |step|), monotonic (True when all
      non-zero steps share one sign: the angles pass through the intermediate values in
      order), total_rotation_rad (sum of steps, signed) and direction (+1, -1, or 0 if no
      non-zero step or mixed signs).

    Raises:
      ValueError: on a bad shape or non-finite values.
    """
    angles = np.asarray(angles, dtype=np.float64)
    if angles.ndim != 1 or angles.shape[0] < 2:
        raise ValueError("Expected `angles` of shape [T] with T >= 2. Received an array of "
                         f"shape {angles.shape}")
    check_finite_array("angles", angles)
    steps = wrap_angle(np.diff(angles))                                   # [T-1]
    signs = np.sign(steps[steps != 0])
    monotonic = bool(signs.size == 0 or np.all(signs == signs[0]))
    direction = int(signs[0]) if signs.size and monotonic else 0
    return {"steps": steps, "max_jump_rad": float(np.max(np.abs(steps))),
            "monotonic": monotonic, "total_rotation_rad": float(np.sum(steps)),
            "direction": direction}


def _check_pair(means_name, means, angles_name, angles):
    z = np.asarray(means, dtype=np.float64)
    theta = np.asarray(angles, dtype=np.float64)
    if z.ndim != 2 or z.shape[1] < 2:
        raise ValueError(f"Expected `{means_name}` of shape [N, D] with D >= 2 (a ring needs a "
                         f"plane). Received an array of shape {z.shape}")
    if theta.shape != (z.shape[0],):
        raise ValueError(f"Expected `{angles_name}` of shape ({z.shape[0]},), one angle per row "
                         f"of `{means_name}`. Received an array of shape {theta.shape}")
    check_finite_array(means_name, z)
    check_finite_array(angles_name, theta)
    return z, theta


def _ring_centre(centre, fit_u, latent_dim, origin, basis):
    """The ring centre [2] in plane coordinates (see step 2 of `pendulum_angle_error`)."""
    if centre is None or (isinstance(centre, str) and centre == "circle"):
        return fit_circle(fit_u)[0]
    if isinstance(centre, str):
        if centre == "mean":
            return fit_u.mean(axis=0)
        if centre == "origin":
            return np.zeros(2) if basis is None else (-origin) @ basis
        raise ValueError(f"Expected `centre` to be None, one of {list(_CENTRES)} or an array "
                         f"[{latent_dim}]. Received: centre={centre!r}")
    array = np.asarray(centre, dtype=np.float64)
    if array.shape != (latent_dim,):
        raise ValueError(f"Expected `centre` to be None, one of {list(_CENTRES)} or an array of "
                         f"shape ({latent_dim},). Received an array of shape {array.shape}")
    check_finite_array("centre", array)
    return array.copy() if basis is None else (array - origin) @ basis


def _polar_angle(u, centre):
    return np.arctan2(u[:, 1] - centre[1], u[:, 0] - centre[0])
