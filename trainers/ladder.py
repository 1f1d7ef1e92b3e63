"""LaDDer (Lin & Clark 2020): a VAE whose prior is a prior VAE with a variational DP-GMM hyper prior.

    p(z) = integral p_alpha(z|t) p_xi(t) dt,   q_beta(t|z),   p_xi(t) a DP-GMM (Sec. 3.1-3.2)

trained on the bound (Eq. 8)

    L''(x) = E_q(z|x)[log p(x|z) - log q(z|x) + E_q(t|z)[log p(z|t) - log q(t|z) + log p_xi(t)]]

by block coordinate ascent (Sec. 3.3): xi maximises the DP-GMM's variational bound (Eq. 6) on
the current encodings t (scikit-learn, `tfpriors.priors.VGMMHyperPrior.fit`); then the prior
VAE (alpha, beta) takes gradient steps with xi fixed; then the data VAE (theta, phi) with the
prior fixed. Here the prior is a `HierarchicalPrior(bound="elbo", hyper_prior=VGMMHyperPrior)`
(more rungs: a HierarchicalPrior as the hyper prior of another), the gradient blocks are the
model's "model" and "prior" parameter blocks, each with its own optimiser state, and

* `BlockSchedule` opens them in turn, step by step (default: one prior step, then one model
  step), as a function of the saved step counter, so a resumed run continues the cycle;
* `HyperPriorFitting`, a callback that `LaDDer.fit` adds, refits xi at the start of every
  `fast_every`-th epoch (a warm-started fit) and every `accurate_every`-th epoch (a fresh fit
  with pruning), on the innermost hyper-latent means of the first `num_encodings` training
  images. Its random state is (seed, epoch), so a resumed run fits as the uninterrupted one.

The hyper prior starts as N(0, I) (Sec. 3.3); the first fit is at epoch `start_epoch`.
"""

import keras
import numpy as np
import tensorflow as tf

from tfpriors._validation import check_non_negative_int, check_positive_int
from tfpriors.priors.vgmm import VGMMHyperPrior
from tfpriors.priors.vhp import HierarchicalPrior
from trainers.distribute import replica_batch_slice
from trainers.vae import VAE

__all__ = ["BlockSchedule", "HyperPriorFitting", "LaDDer", "build_ladder"]


@keras.saving.register_keras_serializable(package="tfpriors")
class BlockSchedule:
    """Block coordinate ascent over gradient steps: a cycle of (block name, steps) phases.

    Args:
      phases: sequence of (block name, number of steps >= 1); in phase i only block i is
        updated. Blocks not named are always updated.
      sweep: instead, every training step updates each named block once, in the phases'
        order, on the same batch and noise (Sec. 3.3's iteration: the prior VAE, then the data
        VAE with the prior just updated); the step counts are then not used. Each block then
        sees every batch, at two gradient passes per step; the block optimiser's global step
        (and a learning-rate schedule on it) advances once per block update.

    `gates(step)` -> {block: bool tensor} for the 0-based training step `step`.
    """

    def __init__(self, phases=(("prior", 1), ("model", 1)), sweep=False):
        phases = [(str(name), check_positive_int("phase steps", steps)) for name, steps in phases]
        if not phases:
            raise ValueError("Expected at least one (block, steps) phase. Received: none")
        self.phases = phases
        self.sweep = bool(sweep)

    @property
    def cycle_length(self):
        return sum(steps for _, steps in self.phases)

    def gates(self, step):
        """{block name: bool scalar}: True for the block whose phase holds `step`."""
        position = tf.math.floormod(tf.cast(step, tf.int64), self.cycle_length)
        gates, start = {}, 0
        for name, steps in self.phases:
            inside = tf.logical_and(position >= start, position < start + steps)
            gates[name] = inside if name not in gates else tf.logical_or(gates[name], inside)
            start += steps
        return gates

    def get_config(self):
        return {"phases": [list(p) for p in self.phases], "sweep": self.sweep}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class HyperPriorFitting(keras.callbacks.Callback):
    """Refits LaDDer's DP-GMM hyper prior on the encodings at the start of scheduled epochs.

    Args:
      images: array [N, H, W, C] or a tf.data.Dataset of image batches (or (image, label)).
      num_encodings: how many images (the first ones) are encoded for each fit.
      fast_every, accurate_every: epochs between fast / accurate fits (0: never).
      start_epoch: the first epoch (0-based) that starts with a fit.
      batch_size: encoding batch size for arrays.

    An accurate fit takes the place of a fast one in the epochs both schedules name.
    """

    def __init__(self, images, num_encodings=10000, fast_every=1, accurate_every=10,
                 start_epoch=1, batch_size=500):
        super().__init__()
        self.images = images
        self.num_encodings = check_positive_int("num_encodings", num_encodings)
        self.fast_every = check_non_negative_int("fast_every", fast_every)
        self.accurate_every = check_non_negative_int("accurate_every", accurate_every)
        self.start_epoch = check_non_negative_int("start_epoch", start_epoch)
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.history = []

    def kind(self, epoch):
        """"accurate", "fast" or None: the fit that starts `epoch`."""
        if epoch < self.start_epoch:
            return None
        since = epoch - self.start_epoch
        if self.accurate_every and since % self.accurate_every == 0:
            return "accurate"
        if self.fast_every and since % self.fast_every == 0:
            return "fast"
        return None

    def _batches(self):
        if isinstance(self.images, tf.data.Dataset):
            taken = 0
            for batch in self.images:
                x = batch[0] if isinstance(batch, (tuple, list)) else batch
                yield x[:self.num_encodings - taken]
                taken += int(x.shape[0])
                if taken >= self.num_encodings:
                    return
        else:
            images = np.asarray(self.images)[:self.num_encodings]
            for start in range(0, len(images), self.batch_size):
                yield images[start:start + self.batch_size]

    def encodings(self, epoch=0):
        """Samples of the innermost hyper latent t for the first `num_encodings` images, [N, M]:
        z ~ q(z|x), then t ~ q(t|z) rung by rung, seeded by (model seed, epoch, batch)."""
        model, out = self.model, []
        for index, x in enumerate(self._batches()):
            seed = tf.constant([model.seed, epoch * 100003 + index], tf.int32)
            z_seed, t_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
            loc, scale = model.encode_distribution(tf.convert_to_tensor(x, tf.float32))
            z = loc + scale * tf.random.stateless_normal(tf.shape(loc), seed=z_seed)
            out.append(keras.ops.convert_to_numpy(model.prior.sample_hyper(z, t_seed)))
        return np.concatenate(out)

    def on_epoch_begin(self, epoch, logs=None):
        kind = self.kind(epoch)
        if kind is None:
            return
        hyper = self.model.prior.innermost_hyper_prior
        mixture = hyper.fit(self.encodings(epoch), accurate=kind == "accurate",
                            seed=self.model.seed * 100003 + epoch)
        self.history.append({"epoch": epoch, "kind": kind, "active": hyper.num_active,
                             "iterations": int(mixture.n_iter_),
                             "lower_bound": float(mixture.lower_bound_)})

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["hyper_prior_components"] = float(self.model.prior.innermost_hyper_prior.num_active)


@keras.saving.register_keras_serializable(package="tfpriors")
class LaDDer(VAE):
    """The LaDDer VAE: a VAE with a generative prior trained by block coordinate ascent.

    Args:
      encoder, decoder, likelihood, objective, beta, seed: as for `trainers.VAE`.
      prior: a HierarchicalPrior whose innermost hyper prior is a VGMMHyperPrior.
      schedule: a BlockSchedule over the "model" and "prior" blocks (default: alternate steps).
      hyper_fit: dict of `HyperPriorFitting` settings (num_encodings, fast_every,
        accurate_every, start_epoch, batch_size) used by `fit`.

    Raises:
      ValueError: for a prior that is not a LaDDer generative prior, or a schedule naming
        blocks the model does not have.
    """

    def __init__(self, encoder, decoder, prior, likelihood, objective=None, beta=None, seed=0,
                 schedule=None, hyper_fit=None, **kwargs):
        if not (isinstance(prior, HierarchicalPrior)
                and isinstance(prior.innermost_hyper_prior, VGMMHyperPrior)):
            raise ValueError(f"Expected a HierarchicalPrior whose innermost hyper prior is a "
                             f"VGMMHyperPrior (LaDDer's generative prior). Received: {prior!r}")
        kwargs.setdefault("name", "ladder")
        super().__init__(encoder, decoder, prior, likelihood, objective=objective, beta=beta,
                         seed=seed, **kwargs)
        if isinstance(schedule, dict):
            schedule = keras.saving.deserialize_keras_object(schedule)
        self.schedule = schedule if schedule is not None else BlockSchedule()
        unknown = {name for name, _ in self.schedule.phases} - {"model", "prior"}
        if unknown:
            raise ValueError(f"Expected schedule phases of the blocks 'model' and 'prior'. "
                             f"Received: {sorted(unknown)}")
        self.hyper_fit = dict(hyper_fit or {})
        HyperPriorFitting(None, **self.hyper_fit)                 # validates the settings

    def block_gates(self):
        """The controller's gates and the schedule's, both required (REWO's closed prior stays
        closed). `rng_step` has advanced already in train_step, so this step is rng_step - 1."""
        gates = dict(self.beta_controller.block_gates())
        for name, gate in self.schedule.gates(self.rng_step.value - 1).items():
            gates[name] = gate if name not in gates else tf.logical_and(gates[name], gate)
        return gates

    def train_step(self, data):
        """One step; with `schedule.sweep`, one gradient pass and update per block in order."""
        if not self.schedule.sweep:
            return super().train_step(data)
        x = self._unpack(data)
        seed = self._next_seed()
        beta = self.beta_controller.beta()
        batch_slice = replica_batch_slice(tf.shape(x)[0])
        controller_gates = self.beta_controller.block_gates()
        blocks = self.parameter_blocks()
        for name, _ in self.schedule.phases:
            with tf.GradientTape() as tape:
                terms = self.objective(self, x, beta, seed, batch_slice=batch_slice)
                loss = self._loss(terms, batch_slice)
            grads = tape.gradient(loss, blocks[name])
            gates = {block: tf.constant(block == name) for block in blocks}
            if name in controller_gates:
                gates[name] = tf.logical_and(gates[name], controller_gates[name])
            self.optimizer.apply_block_gradients(zip(grads, blocks[name]), gates=gates)
        return self._finish_train_step(terms, beta, batch_slice)

    def cluster(self, x):
        """q(k | t(x)) over the hyper prior's components, [B, M] (pruned components: 0), with
        t(x) the innermost hyper-latent mean of the posterior mean of x: LaDDer's components
        against the classes (Sec. 4.2, Fig. 4)."""
        return self.prior.hyper_components(self.encode(x))

    def fit(self, x=None, *args, **kwargs):
        """keras.Model.fit with the hyper-prior fits of the block coordinate ascent.

        The `HyperPriorFitting` callback is added (on `x`, an array or a tf.data.Dataset)
        unless `callbacks` already holds one.
        """
        callbacks = list(kwargs.pop("callbacks", None) or [])
        if not any(isinstance(c, HyperPriorFitting) for c in callbacks):
            callbacks.insert(0, HyperPriorFitting(x, **self.hyper_fit))
        return super().fit(x, *args, callbacks=callbacks, **kwargs)

    def get_config(self):
        return dict(super().get_config(), schedule=keras.saving.serialize_keras_object(self.schedule),
                    hyper_fit=self.hyper_fit)


def build_ladder(data_shape, latent_dim, hyper_latent_dim, likelihood, hidden_units=(256, 256),
                 prior_hidden_units=(256, 256), max_components=50, schedule=None, hyper_fit=None,
                 beta=None, objective=None, gated=True, seed=0, hyper_prior_kwargs=None,
                 identity_scale=None):
    """A LaDDer model with gated MLP networks (the MNIST setting of VHP/VampPrior).

    Args:
      data_shape: (H, W, C).
      latent_dim: D, dim z.
      hyper_latent_dim: M, dim t (LaDDer: lower than D).
      likelihood: a likelihood layer (LaDDer's images: `LaplaceLikelihood`).
      hidden_units: widths of the data encoder and decoder.
      prior_hidden_units: widths of q(t|z) and p(z|t).
      max_components: the DP truncation level.
      schedule, hyper_fit, beta, objective, seed: as for `LaDDer`.
      gated: gated dense layers throughout.
      hyper_prior_kwargs: more `VGMMHyperPrior` arguments.
      identity_scale: with M = D, the prior VAE's residual identity start
        (`HierarchicalPrior`'s argument); None: a random start.
    """
    from tfpriors.networks import MLPDecoder, MLPEncoder
    hyper = VGMMHyperPrior(hyper_latent_dim, max_components=max_components,
                           **(hyper_prior_kwargs or {}))
    prior = HierarchicalPrior(latent_dim, hyper_latent_dim, hidden_units=prior_hidden_units,
                              gated=gated, num_samples=1, bound="elbo", hyper_prior=hyper,
                              identity_scale=identity_scale)
    return LaDDer(MLPEncoder(latent_dim, data_shape, hidden_units=hidden_units, gated=gated),
                  MLPDecoder(latent_dim, data_shape, hidden_units=hidden_units, gated=gated),
                  prior, likelihood, objective=objective, beta=beta, seed=seed,
                  schedule=schedule, hyper_fit=hyper_fit)
