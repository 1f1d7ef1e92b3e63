"""Fitting a prior to a frozen VAE's posteriors and measuring the fit (LaDDer, Sec. 4.1, Table 2).

The protocol: train a VAE with a standard normal prior, freeze it, encode N images into their
posteriors q(z|x_n) = N(loc_n, diag scale_n^2), fit each prior alone to them by maximising

    E_q(z)[log p(z)] = 1/N sum_n E_q(z|x_n)[log p(z)]

over fresh draws z ~ q(z|x_n) (Adam; a prior with only a bound on log p(z), VHP or LaDDer,
maximises its training bound), then report E_q(z)[log p(z)] on the posteriors of held-out
images. A prior whose log p(z) has no closed form (VHP, LaDDer) is evaluated by importance
sampling through its proposal q(t|z) with `prior_samples` samples, a lower bound that tightens
as the samples grow. LaDDer's prior is fitted by its block coordinate ascent: at the start of
every epoch its DP-GMM hyper prior is refitted to samples t ~ q(t|z) (`hyper_fit`), then the
prior VAE takes its gradient steps.
"""

import numpy as np
import tensorflow as tf

from tfpriors._validation import (check_choice, check_finite_array, check_positive_float,
                                  check_positive_int)
from tfpriors.evaluation._common import Estimate
from tfpriors.priors.base import prior_log_prob
from tfpriors.priors.vgmm import VGMMHyperPrior
from tfpriors.priors.vhp import HierarchicalPrior

__all__ = ["fit_prior_to_encodings", "encodings_log_prior", "step_size_schedule",
           "LEARNING_RATE_SCHEDULES"]


def _check_posteriors(loc, scale):
    loc = check_finite_array("loc", np.asarray(loc, np.float32))
    scale = check_finite_array("scale", np.asarray(scale, np.float32))
    if loc.ndim != 2 or loc.shape != scale.shape or len(loc) < 2:
        raise ValueError(f"Expected posterior `loc` and `scale` of one shape [N >= 2, D]. "
                         f"Received: {loc.shape} and {scale.shape}")
    if np.any(scale <= 0):
        raise ValueError("Expected `scale` > 0 (posterior standard deviations). Received "
                         f"{int(np.sum(scale <= 0))} entries <= 0")
    return loc, scale


def _draw(loc, scale, seed):
    return loc + scale * tf.random.stateless_normal(tf.shape(loc), seed=seed)


LEARNING_RATE_SCHEDULES = ("constant", "cosine")


def step_size_schedule(name, learning_rate, total_steps):
    """Adam's step size for `fit_prior_to_encodings`: a float ("constant") or a Keras schedule.

    "cosine": learning_rate * (1 + cos(pi * min(i, T) / T)) / 2 at step i of T = total_steps.
    """
    import keras
    check_choice("learning_rate_schedule", name, LEARNING_RATE_SCHEDULES)
    if name == "constant":
        return learning_rate
    return keras.optimizers.schedules.CosineDecay(learning_rate, check_positive_int(
        "total_steps", total_steps))


def fit_prior_to_encodings(prior_layer, loc, scale, encoder=None, epochs=50, batch_size=100,
                           learning_rate=1e-3, seed=0, hyper_fit_every=1, hyper_accurate_every=10,
                           learning_rate_schedule="constant", verbose=False):
    """Trains `prior_layer` alone to maximise E_q(z)[log p(z)] over fixed posteriors.

    Args:
      prior_layer: a PriorLayer of latent_dim D (built here if needed).
      loc, scale: arrays [N, D] of the frozen posteriors.
      encoder: the frozen encoder, for priors built from it (VampPrior).
      epochs, batch_size, learning_rate: Adam over shuffled batches of posteriors, one fresh
        draw z per posterior and step.
      seed: int; the draws of step t use (seed, t), the shuffles (seed, epoch).
      hyper_fit_every, hyper_accurate_every: for a LaDDer prior (innermost hyper prior a
        VGMMHyperPrior), epochs between fast / accurate refits of the hyper prior; the first
        epoch starts with an accurate one.
      learning_rate_schedule: "constant", or "cosine": the step size of step i out of the
        fit's T steps is learning_rate * (1 + cos(pi i / T)) / 2, falling to 0 at the end, so
        that the last epochs average out the noise of the sampled bound instead of ending at
        wherever the last noisy step left the parameters.
      verbose: print the epoch's mean training bound.

    Returns:
      list of the epochs' mean log p(z) (or training bound), one float per epoch.

    Raises:
      ValueError: on posteriors of the wrong shape, non-finite values or scales <= 0, or bad
        settings.
    """
    import keras
    loc, scale = _check_posteriors(loc, scale)
    epochs = check_positive_int("epochs", epochs)
    batch_size = check_positive_int("batch_size", batch_size)
    learning_rate = check_positive_float("learning_rate", learning_rate)
    steps_per_epoch = max(1, len(loc) // batch_size)
    learning_rate = step_size_schedule(learning_rate_schedule, learning_rate,
                                       epochs * steps_per_epoch)
    if not prior_layer.built:
        prior_layer.build()
    hyper = prior_layer.innermost_hyper_prior if isinstance(prior_layer, HierarchicalPrior) else None
    ladder = isinstance(hyper, VGMMHyperPrior)
    variables = prior_layer.trainable_variables
    optimizer = keras.optimizers.Adam(learning_rate)
    if variables:
        optimizer.build(variables)
    step = tf.Variable(0, dtype=tf.int32)

    @tf.function
    def train_step(batch_loc, batch_scale):
        s = tf.stack([tf.constant(seed, tf.int32), step])
        draw_seed, bound_seed = tf.unstack(tf.random.experimental.stateless_split(s, 2))
        z = _draw(batch_loc, batch_scale, draw_seed)
        with tf.GradientTape() as tape:
            log_p = prior_log_prob(prior_layer, prior_layer.distribution(encoder), z,
                                   seed=bound_seed)
            loss = -tf.reduce_mean(log_p)
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        step.assign_add(1)
        return -loss

    history = []
    for epoch in range(epochs):
        if ladder and (epoch % hyper_accurate_every == 0 or epoch % hyper_fit_every == 0):
            t_seed = tf.constant([seed, 1000003 + epoch], tf.int32)
            z = _draw(loc, scale, tf.random.experimental.stateless_fold_in(t_seed, 0))
            t = prior_layer.sample_hyper(z, tf.random.experimental.stateless_fold_in(t_seed, 1))
            hyper.fit(np.asarray(t), accurate=epoch % hyper_accurate_every == 0,
                      seed=seed * 1000 + epoch)
        if not variables:   # nothing to fit (N(0, I)): one measurement stands for every epoch
            value = history[-1] if history else float(encodings_log_prior(
                prior_layer, loc, scale, encoder, num_samples=1, seed=seed).mean)
            history.append(value)
            continue
        order = np.random.default_rng([seed, epoch]).permutation(len(loc))
        values = [float(train_step(loc[idx], scale[idx]))
                  for idx in np.array_split(order, steps_per_epoch)]
        history.append(float(np.mean(values)))
        if verbose:
            print(f"epoch {epoch + 1}/{epochs}: E log p(z) (training bound) {history[-1]:.3f}")
    return history


def encodings_log_prior(prior_layer, loc, scale, encoder=None, num_samples=10, prior_samples=1000,
                        batch_size=100, seed=0):
    """E_q(z|x_n)[log p(z)] per posterior, by S draws each (LaDDer Table 2's measure).

    Args:
      prior_layer: a built PriorLayer.
      loc, scale: arrays [N, D] of the posteriors.
      encoder: the encoder, for priors built from it (VampPrior).
      num_samples: S draws z ~ q(z|x_n) per posterior.
      prior_samples: importance samples through q(t|z) for a HierarchicalPrior (VHP, LaDDer);
        closed-form priors ignore it.
      batch_size: posteriors per evaluation batch.
      seed: int.

    Returns:
      Estimate with per_example [N] and mean E_q(z)[log p(z)] in nats (higher is better).
    """
    loc, scale = _check_posteriors(loc, scale)
    num_samples = check_positive_int("num_samples", num_samples)
    prior_samples = check_positive_int("prior_samples", prior_samples)
    distribution = prior_layer.distribution(encoder)
    hierarchical = isinstance(prior_layer, HierarchicalPrior)

    @tf.function
    def batch_log_prior(batch_loc, batch_scale, base):
        draw_seed, bound_seed = tf.unstack(tf.random.experimental.stateless_split(base, 2))
        z = _draw(batch_loc, batch_scale, draw_seed)
        if hierarchical:
            return distribution.importance_weighted_log_prob(z, prior_samples, seed=bound_seed)
        return prior_log_prob(prior_layer, distribution, z, seed=bound_seed)

    out = []
    for b, start in enumerate(range(0, len(loc), batch_size)):
        batch_loc = tf.constant(loc[start:start + batch_size])
        batch_scale = tf.constant(scale[start:start + batch_size])
        total = 0.0
        for s in range(num_samples):
            base = tf.constant([seed, b * num_samples + s], tf.int32)
            total = total + batch_log_prior(batch_loc, batch_scale, base).numpy().astype(np.float64)
        out.append(total / num_samples)
    per_example = np.concatenate(out)
    return Estimate(name="prior_cross_entropy", per_example=per_example,
                    info={"num_samples": num_samples, "prior_samples": prior_samples if hierarchical
                          else None, "sign": "E_q(z)[log p(z)], higher is better", "units": "nats"})
