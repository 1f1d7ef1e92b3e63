"""Shortest likely path (SLP) interpolation (Lin & Clark 2020, LaDDer, Sec. 3.4, Eq. 9).

Between fixed endpoints s_0 and s_{J+1}, the J free points s_1..s_J minimise

    O_SLP = w_len * sum_j ||s_{j+1} - s_j||  +  w_std * std_j ||s_{j+1} - s_j||  -  w_lik * sum_{j=1..J} log p(s_j)

(path length, equal step lengths, path likelihood) with Adam, in any latent space whose density
can be evaluated: z under the model's prior, or LaDDer's hyper latent t under its hyper prior.
The free points start on the straight line (the shortest path, SP) bent slightly to one seeded
side, so that a density symmetric about the line does not hold them on a saddle and they do not
split between its sides.
"""

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from tfpriors._validation import check_positive_float, check_positive_int
from tfpriors.interpolation.linear import (Interpolation, decode_latents, encode_endpoints,
                                           linear_path)

__all__ = ["SLPResult", "shortest_likely_path", "slp_objective", "slp_interpolation",
           "hyper_latents_to_code"]


@dataclasses.dataclass(frozen=True)
class SLPResult:
    """The optimised path and its objective.

    Attributes:
      path: float64 [J + 2, D], endpoints included.
      objective: float64 [steps] O_SLP after each Adam step.
      terms: dict of the final path's "length", "step_std" and "mean_log_prob" (of the free points).
    """
    path: np.ndarray
    objective: np.ndarray
    terms: dict


def slp_objective(path, log_prob_fn, length_weight=1.0, std_weight=1.0, likelihood_weight=1.0):
    """O_SLP (Eq. 9) of a whole path [J + 2, D] and its terms (length, step std, sum log p)."""
    steps = tf.norm(path[1:] - path[:-1], axis=-1)                          # [J + 1]
    length = tf.reduce_sum(steps)
    step_std = tf.math.reduce_std(steps)
    log_p = tf.reduce_sum(log_prob_fn(path[1:-1]))                          # over the J free points
    return length_weight * length + std_weight * step_std - likelihood_weight * log_p, \
        (length, step_std, log_p)


def shortest_likely_path(log_prob_fn, start, end, num_points=8, length_weight=1.0, std_weight=10.0,
                         likelihood_weight=1.0, steps=500, learning_rate=0.02, perturbation=0.05,
                         seed=0):
    """Minimises O_SLP over J free points between `start` and `end` (Eq. 9).

    Args:
      log_prob_fn: callable points [J, D] (float32) -> [J] log-densities, differentiable.
      start, end: array-like [D], the fixed endpoints.
      num_points: J >= 1 free points.
      length_weight, std_weight, likelihood_weight: w_len, w_std (>= 0) and w_lik (> 0). The
        paper gives no values; w_std = 10 keeps J = 10 points evenly round a unit ring, where
        w_std = 1 lets them bunch at the ends and jump across (tests/test_slp.py).
      steps: Adam steps.
      learning_rate: Adam's rate.
      perturbation: the free points start on the straight line bent sideways by this fraction
        of the endpoints' distance (a half sine along one seeded direction orthogonal to it).
      seed: int, the bend direction's seed.

    Returns:
      `SLPResult`.

    Raises:
      ValueError: for endpoints of different sizes or non-finite values, J < 1, steps < 1,
        negative weights or a non-positive likelihood weight or rate.
    """
    num_points = check_positive_int("num_points", num_points)
    steps = check_positive_int("steps", steps)
    learning_rate = check_positive_float("learning_rate", learning_rate)
    likelihood_weight = check_positive_float("likelihood_weight", likelihood_weight)
    for name, value in (("length_weight", length_weight), ("std_weight", std_weight),
                        ("perturbation", perturbation)):
        if not (np.isfinite(value) and value >= 0):
            raise ValueError(f"Expected `{name}` >= 0. Received: {name}={value!r}")
    line = linear_path(start, end, num_points + 2)                           # [J + 2, D]
    free = tf.Variable((line[1:-1] + _bow(line, perturbation, seed)).astype(np.float32))  # [J, D]
    ends = tf.constant(line[[0, -1]].astype(np.float32))                     # [2, D]
    optimizer = keras.optimizers.Adam(learning_rate)
    optimizer.build([free])

    def full_path():
        return tf.concat([ends[:1], free, ends[1:]], 0)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            objective, _ = slp_objective(full_path(), log_prob_fn, length_weight, std_weight,
                                         likelihood_weight)
        optimizer.apply_gradients([(tape.gradient(objective, free), free)])
        return objective

    history = np.array([float(step()) for _ in range(steps)])
    path = full_path()
    _, (length, step_std, log_p) = slp_objective(path, log_prob_fn, length_weight, std_weight,
                                                 likelihood_weight)
    if not np.all(np.isfinite(history)):
        raise FloatingPointError("The SLP objective became non-finite: the density's log_prob "
                                 "returned -inf or NaN on the path; lower the learning rate.")
    return SLPResult(path=np.asarray(path, np.float64), objective=history,
                     terms={"length": float(length), "step_std": float(step_std),
                            "mean_log_prob": float(log_p) / num_points})


def _bow(line, size, seed):
    """A smooth sideways bend of the straight line's free points, [J, D]: size * |end - start| *
    sin(pi u) along one seeded random direction orthogonal to the line (none in 1-D).

    Bending every point to the same side, rather than jittering each, lets a density that is
    symmetric about the line (a ring) be passed round one side instead of zig-zagging."""
    direction = line[-1] - line[0]
    length = float(np.linalg.norm(direction))
    if line.shape[1] < 2 or size == 0:
        return np.zeros_like(line[1:-1])
    v = np.random.default_rng(seed).normal(size=line.shape[1])
    if length > 0:
        v -= v.dot(direction) / length ** 2 * direction
    v /= np.linalg.norm(v)
    u = np.linspace(0.0, 1.0, len(line))[1:-1]
    return size * (length or 1.0) * np.sin(np.pi * u)[:, None] * v[None, :]


def slp_interpolation(model, x_start, x_end, num_points=8, space="z", **kwargs):
    """SLP between the posterior means of two images, decoded.

    Args:
      model: a model with the latent interface (`trainers.latent_model`).
      x_start, x_end: one image each [H, W, C].
      num_points: J free points (J + 2 frames).
      space: "z": the path lives in z under the model's prior p(z); "t": in LaDDer's innermost
        hyper latent under its hyper prior, each point decoded through the means of p(z|t)
        (rung by rung) and the decoder.
      **kwargs: the weights, steps, learning_rate, perturbation and seed of `shortest_likely_path`.

    Returns:
      (`Interpolation` with latents [J + 2, D] in `space` and images, `SLPResult`).

    Raises:
      ValueError: for an unknown space, or space "t" on a model without a generative prior.
    """
    z_start, z_end = encode_endpoints(model, x_start, x_end)
    if space == "z":
        log_prob_fn = model.prior_distribution().log_prob
        start, end = z_start, z_end
    elif space == "t":
        log_prob_fn = _hyper_prior_layer(model).distribution().log_prob
        ends = model.prior.encode_hyper(np.stack([z_start, z_end]).astype(np.float32))
        start, end = (np.asarray(e, np.float64) for e in tf.unstack(ends))
    else:
        raise ValueError(f"Expected space 'z' or 't'. Received: space={space!r}")
    result = shortest_likely_path(log_prob_fn, start, end, num_points=num_points, **kwargs)
    codes = result.path if space == "z" else hyper_latents_to_code(model, result.path)
    return Interpolation(latents=result.path, images=decode_latents(model, codes)), result


def _rungs(model):
    rungs, layer = [], model.prior
    while hasattr(layer, "encode_hyper"):
        rungs.append(layer)
        layer = layer.hyper_prior
    return rungs, layer


def _hyper_prior_layer(model):
    rungs, layer = _rungs(model)
    if not rungs or layer is None:
        raise ValueError(f"Expected a model whose prior has a learned hyper prior (LaDDer) for "
                         f"space='t'. Received a prior {type(model.prior).__name__}")
    return layer


def hyper_latents_to_code(model, points):
    """z for innermost hyper latents t [N, M]: the means of p(.|t), rung by rung, [N, D]."""
    rungs, _ = _rungs(model)
    code = tf.convert_to_tensor(np.asarray(points, np.float32))
    for rung in reversed(rungs):
        code = rung.conditional(code)[0]
    return np.asarray(code, np.float64)
