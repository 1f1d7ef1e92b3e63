"""The latent-variable model trainer and the interface every estimator is written against.

`LatentModel` is a `keras.Model` with a custom train_step/test_step for any model with latents,
any prior and any objective; `trainers.VAE` (one z) and `trainers.HVAE` (z1, z2) implement its
interface. Legend: S samples, B batch, N = noise_dim, D = latent_dim (the flat code), H W C image.

The latent interface (what objectives, `tfpriors.evaluation`, interpolation and the exporter use):

    inference = model.infer(x)
        Everything computed once per batch: the posterior's parameters and the prior
        distribution (a VampPrior's pseudo-inputs are encoded in the same call as x). An
        `Inference(posterior, prior, context)`: `posterior` and `prior` are the distributions of
        the latent the prior layer models (VAE: q(z|x), p(z); HVAE: q(z2|x), p(z2)).
    sample = model.sample_posterior(inference, eps)
        Reparameterised draws from the whole posterior: eps [S, B, N] standard normal ->
        `PosteriorSample(code [S, B, D], log_q [S, B], parts)`. The code is every latent,
        concatenated (HVAE: [z1, z2]); `parts` holds per-level distributions.
    model.log_prior(inference, code, seed, parts=None) -> [S, B]
        log p(latents), the joint density without the likelihood (HVAE: log p(z1|z2) + log p(z2));
        a prior known only through a stochastic bound (VHP) returns its bound, seeded by `seed`.
        Depends on the batch only through `code` (so rows can be padded, see objectives).
        `parts`: the sample's parts when `code` is that sample's code, so that conditionals
        computed while sampling (the HVAE's p(z1|z2)) are not computed again.
    model.likelihood_params(code) -> [S, B, H, W, C];  model.likelihood_distribution(code)
    model.kl_divergence(inference, sample, log_prior) -> [B]
        KL(q || p) of the latents: in closed form where TFP has a KL registered for the pair of
        distributions (`tfd.kl_divergence`) and the prior has no stochastic bound, else the
        Monte-Carlo mean of log q - log p.
    model.analytic_kl(inference) -> [B] or None: the closed-form KL when the whole KL has one.
    model.encode(x) -> [B, D] posterior means; model.encode_distribution(x) -> (loc, scale) [B, D]
    model.decode(code) -> mean images; model.sample_latents(n, seed) -> code [n, D];
    model.sample(n, seed) -> (images, code); model.num_components (K of a mixture prior or
    None) and model.sample_component(k, n, seed) -> (images, code).
    model.posterior(x), model.prior_distribution(): the prior layer's latent, as in `infer`.

Training: loss from an Objective (ELBO, IWAE) with β from a BetaController (constant,
warm-up, GECO, REWO); each parameter block (`parameter_blocks`) has its own optimiser state
(`trainers.blocks.BlockOptimizer`), and the controller's `block_gates` close blocks.

Works with `fit` (progress bars that end at their total, callbacks, steps_per_execution,
jit_compile) and `.keras` save/load. Randomness is stateless: step t uses the seed (seed, t),
with t a saved counter, so a resumed run draws the same numbers as an uninterrupted one.

Distributed training (`tf.distribute` MirroredStrategy / MultiWorkerMirroredStrategy; build
and compile the model in `strategy.scope()`, see `trainers.distribute`) gives the same updates
as single-device training on the same global batches:

* gradients: Keras' optimizer all-reduces them by SUM, so a replica's loss is the sum over its
  examples divided by the global batch size (all-gathered), i.e. its share of the global mean;
* noise: each replica draws the noise of the global batch and keeps its own rows
  (`trainers.objectives._sample_terms`; a prior's stochastic bound: `_replica_noise`), so every
  example sees the numbers it would see on one device;
* metrics and β control: the per-example sums of loss, terms and constraint are all-reduced
  (SUM) before the trackers and `beta_controller.update`, so every replica feeds the same global
  batch mean of C to the controller and computes the same β, Ĉ and phase;
* state: rng_step and the controller's weights are ON_WRITE variables with ONLY_FIRST_REPLICA
  aggregation, the assignment allowed in the replica context; since every replica assigns the
  same value all copies stay identical.

With one replica (no strategy) all of this is skipped and the arithmetic is the plain one.
"""

import inspect

import keras
import numpy as np
import tensorflow as tf

from tfpriors._validation import check_finite_array
from trainers.beta import ConstantBeta
from trainers.blocks import BlockOptimizer
from trainers.distribute import (cross_replica_sum, is_distributed, logs_for_keras,
                                 replica_batch_slice)
from trainers.latent_types import Inference, PosteriorSample, closed_form_kl  # noqa: F401
from trainers.objectives import ELBO
from trainers.progbar import with_exact_progbar

__all__ = ["LatentModel", "Inference", "PosteriorSample", "closed_form_kl"]

_METRICS = ("loss", "reconstruction", "kl", "elbo", "constraint", "beta")
_TERMS = ("loss", "reconstruction", "kl", "elbo", "constraint")

class LatentModel(keras.Model):
    """Base of the latent-variable models: training, metrics, β control, block-wise optimisation.

    Args:
      seed: int, the base of the stateless seeds.
      data_shape: (H, W, C) of one image.
      latent_dim: D, the size of the flat code.

    `_attach` args:
      prior: a PriorLayer over the latent it models.
      likelihood: a likelihood layer (Bernoulli, Gaussian, Laplace).
      objective: ELBO (default, 1 sample) or IWAE.
      beta: a BetaController (default ConstantBeta(1)).

    Subclasses call `super().__init__(seed, data_shape, latent_dim)`, assign their networks,
    then `self._attach(prior, likelihood, objective, beta)` (this order keeps `model.weights`
    in the order networks, prior, likelihood, controller), and implement the latent interface
    (module docstring), `_layers_and_input_shapes` and `get_config`.
    """

    def __init__(self, seed=0, data_shape=None, latent_dim=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = int(seed)
        self.data_shape = tuple(data_shape)
        self.latent_dim = int(latent_dim)

    def _attach(self, prior, likelihood, objective=None, beta=None):
        """Sets the prior layer, likelihood, objective and β controller, and the metric trackers."""
        self.prior = prior
        self.likelihood = likelihood
        self.objective = objective if objective is not None else ELBO()
        self.beta_controller = beta if beta is not None else ConstantBeta(1.0)
        self.trackers = {name: keras.metrics.Mean(name=name) for name in _METRICS}

    # ------------------------------------------------------------------ building
    def build(self, input_shape=None):
        input_shape = (None,) + self.data_shape if input_shape is None else tuple(input_shape)
        self._check_shape(input_shape)
        if self.built:
            # Idempotent: a second build (e.g. keras-tuner's build_from_config on a built model)
            # must not try to create the rng counter again.
            return
        # Sub-layers restored from a .keras file arrive already built from their own build config.
        for layer, shape in self._layers_and_input_shapes(input_shape):
            if not layer.built:
                layer.build(shape)
        # Assigned inside the replica context under a strategy: ONLY_FIRST_REPLICA makes that
        # legal and keeps all copies equal (every replica adds the same 1).
        self.rng_step = self.add_weight(name="rng_step", shape=(), dtype="int64",
                                        initializer="zeros", trainable=False,
                                        aggregation="only_first_replica")
        self.built = True

    def _layers_and_input_shapes(self, input_shape):
        """(layer, input shape) of every sub-layer, in build order (subclasses extend)."""
        return [(self.prior, (None,) + self.data_shape),
                (self.likelihood, (None,) + self.data_shape), (self.beta_controller, None)]

    def get_build_config(self):
        return {"input_shape": [None] + list(self.data_shape)}

    def build_from_config(self, config):
        self.build(tuple(config["input_shape"]))

    def _check_shape(self, shape):
        received = tuple(None if s is None else int(s) for s in shape)
        if len(received) != len(self.data_shape) + 1 or received[1:] != self.data_shape:
            raise ValueError(f"Expected a batch of images of shape (batch,) + {self.data_shape}. "
                             f"Received shape {received}")

    # ------------------------------------------------------------------ shared interface
    @property
    def noise_dim(self):
        """N, standard normals per posterior draw (one per latent dimension)."""
        return self.latent_dim

    @property
    def stochastic_prior(self):
        """True if log p(z) is the prior's own stochastic bound (VHP), seeded per step."""
        return getattr(self.prior, "log_prob_estimate", None) is not None

    def posterior(self, x):
        """q of the prior layer's latent given x (VAE: q(z|x); HVAE: q(z2|x))."""
        return self.infer(x).posterior

    def prior_distribution(self):
        """The prior layer's distribution, rebuilt from the current weights."""
        return self.prior.distribution(self.prior_encoder)

    def likelihood_distribution(self, code):
        """p(x|latents): batch shape code.shape[:-1], event shape [H, W, C]."""
        return self.likelihood.distribution(self.likelihood_params(code))

    def decode(self, code):
        """Mean images E[x|latents], [..., H, W, C]."""
        return self.likelihood.mean(self.likelihood_params(code))

    def analytic_kl(self, inference):
        """The whole KL(q || p) [B] in closed form, or None (see `closed_form_kl`)."""
        return None

    def sample(self, num_samples, seed):
        """Draws latents from the prior and returns (mean images, code [N, D]).

        Args:
          num_samples: int.
          seed: int32 [2] stateless seed; the same seed gives the same samples.
        """
        code = self.sample_latents(num_samples, seed)
        return self.decode(code), code

    @property
    def num_components(self):
        """K if the prior layer is a mixture (its `num_components`), else None."""
        return self.prior.num_components

    def sample_component(self, component, num_samples, seed):
        """(mean images, code [N, D]) with the prior layer's latent drawn from mixture component
        `component` alone (MoG, VampPrior: q(z | u_k)); the levels below follow the model.

        Raises:
          ValueError: if the prior is not a mixture.
        """
        components = self.prior.component_distribution(self.prior_distribution())  # batch [K]
        code = self._complete_code(components[component], num_samples, seed)
        return self.decode(code), code

    def sample_latents(self, num_samples, seed):
        """code [N, D] ~ p(latents)."""
        return self._complete_code(self.prior_distribution(), num_samples, seed)

    def call(self, x, training=False):
        """Reconstructs x through the posterior mean: E[x | code = encode(x)]."""
        return self.decode(self.encode(x))

    # ------------------------------------------------------------------ training
    def parameter_blocks(self):
        """{block name: trainable variables}: the blocks that get their own optimiser state.

        "model": every network of the model and the likelihood; "prior": the prior layer's
        weights (the block REWO keeps closed in its initial phase).
        """
        prior_ids = {id(v) for v in self.prior.trainable_variables}
        return {"model": [v for v in self.trainable_variables if id(v) not in prior_ids],
                "prior": [v for v in self.trainable_variables if id(v) in prior_ids]}

    def block_gates(self):
        """{block name: bool scalar tensor}: the parameter blocks this train step updates.

        The β controller's (`BetaController.block_gates`); models with their own block schedule
        (LaDDer's block coordinate ascent) add theirs."""
        return self.beta_controller.block_gates()

    def compile(self, optimizer="rmsprop", *args, **kwargs):
        """keras.Model.compile with the optimiser copied per parameter block.

        `optimizer` (any Keras optimiser, its name or a `BlockOptimizer`) is wrapped in a
        `trainers.blocks.BlockOptimizer`: each block of `parameter_blocks()` gets its own state
        and step count, and `beta_controller.block_gates()` closes blocks (REWO's initial phase)
        without touching them. `model.optimizer.blocks` holds the per-block optimisers.
        """
        if self.dtype_policy.name == "mixed_float16":
            raise ValueError("Expected a float32 or mixed_bfloat16 dtype policy: Keras wraps the "
                             "optimiser in a loss-scale optimiser under mixed_float16, which "
                             "block-wise optimisation does not support. Received: mixed_float16")
        if not isinstance(optimizer, BlockOptimizer):
            optimizer = BlockOptimizer(optimizer)
        optimizer.set_partition(self.parameter_blocks)
        super().compile(optimizer, *args, **kwargs)

    def compile_from_config(self, config):
        """Recompiles a loaded model (Keras skips `compile` when a model overrides it)."""
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if self.built:
            self.optimizer.build(self.trainable_variables)   # before the saved state is loaded

    @property
    def metrics(self):
        return list(self.trackers.values())

    def _next_seed(self):
        step = self.rng_step.value
        self.rng_step.assign_add(1)
        return tf.stack([tf.constant(self.seed, tf.int32), tf.cast(step, tf.int32)])

    def _unpack(self, data):
        x = data[0] if isinstance(data, (tuple, list)) else data
        x = tf.convert_to_tensor(x, tf.float32)
        self._check_shape(x.shape)
        return x

    def _global_means(self, terms, batch_slice):
        """Global batch means of the per-example terms, identical in every replica.

        One all-reduce (SUM) of the per-replica sums; divided by the global batch size.
        Returns None with a single replica (the trackers then take the [B] values directly).
        """
        if batch_slice is None:
            return None
        sums = cross_replica_sum(tf.stack([tf.reduce_sum(terms[name]) for name in _TERMS]))
        means = tf.unstack(sums / tf.cast(batch_slice.global_size, sums.dtype))
        return dict(zip(_TERMS, means))

    def _update_trackers(self, terms, beta, means=None, batch_slice=None):
        """Updates the Mean trackers and returns the logs.

        Single replica: the trackers average the per-example values. Several replicas: each
        replica adds the global batch mean with the global batch size as weight, so every
        replica's tracker holds the same per-example mean as a single-device run.
        """
        for name in _TERMS:
            if means is None:
                self.trackers[name].update_state(terms[name])
            else:
                self.trackers[name].update_state(
                    means[name], sample_weight=tf.cast(batch_slice.global_size, tf.float32))
        self.trackers["beta"].update_state(beta)
        logs = {name: tracker.result() for name, tracker in self.trackers.items()}
        logs["beta_last"] = beta
        # The controller's own state after this step (e.g. GECO/REWO: C moving average, phase).
        for key, value in self.beta_controller.state().items():
            if key != "beta":
                logs[key] = value
        return logs_for_keras(logs)

    def _loss(self, terms, batch_slice):
        """The scalar loss of a step from the per-example terms."""
        if batch_slice is None:
            return tf.reduce_mean(terms["loss"])
        # Gradients are summed over replicas: each contributes sum_local / B_global.
        return tf.reduce_sum(terms["loss"]) / tf.cast(batch_slice.global_size, tf.float32)

    def train_step(self, data):
        x = self._unpack(data)
        seed = self._next_seed()
        beta = self.beta_controller.beta()
        batch_slice = replica_batch_slice(tf.shape(x)[0])       # None with a single replica
        with tf.GradientTape() as tape:
            terms = self.objective(self, x, beta, seed, batch_slice=batch_slice)
            loss = self._loss(terms, batch_slice)
        variables = self.trainable_variables
        grads = tape.gradient(loss, variables)
        self.optimizer.apply_block_gradients(zip(grads, variables),
                                             gates=self.block_gates())
        return self._finish_train_step(terms, beta, batch_slice)

    def _finish_train_step(self, terms, beta, batch_slice):
        """β control and metrics after the step's updates."""
        means = self._global_means(terms, batch_slice)
        constraint = tf.reduce_mean(terms["constraint"]) if means is None else means["constraint"]
        self.beta_controller.update(constraint)
        return self._update_trackers(terms, beta, means, batch_slice)

    def test_step(self, data):
        x = self._unpack(data)
        seed = tf.constant([self.seed + 1, 0], tf.int32)
        beta = self.beta_controller.beta()
        batch_slice = replica_batch_slice(tf.shape(x)[0])
        terms = self.objective(self, x, beta, seed, batch_slice=batch_slice)
        return self._update_trackers(terms, beta, self._global_means(terms, batch_slice),
                                     batch_slice)

    def fit(self, x=None, *args, **kwargs):
        """keras.Model.fit, after checking in-memory data for shape and NaN/inf values.

        The progress bar is a `trainers.progbar.ExactProgbarLogger`, which ends at the epoch's
        batch count when steps_per_execution does not divide it (Keras' own shows e.g. 240/235),
        unless `callbacks` holds a ProgbarLogger or is a CallbackList.

        Raises:
          ValueError: for steps_per_execution > 1 or jit_compile under a tf.distribute strategy,
            which Keras 3 cannot run (see `trainers.distribute.is_distributed`).
        """
        if not self.built:
            self.build()
        if is_distributed(self.distribute_strategy):
            if self.steps_per_execution > 1:
                raise ValueError(
                    f"Expected steps_per_execution=1 under a tf.distribute strategy: Keras' "
                    f"multi-step loop cannot run the replicas' merge_call (keras-team/keras#19246). "
                    f"Received: steps_per_execution={self.steps_per_execution}")
            if getattr(self, "jit_compile", False):
                raise ValueError(
                    "Expected jit_compile=False under a tf.distribute strategy: XLA cannot compile a "
                    "step that reads variables on several devices. Received: jit_compile=True")
        if isinstance(x, np.ndarray):
            check_finite_array("x", x)
            self._check_shape((None,) + x.shape[1:])
        bound = inspect.signature(super().fit).bind(x, *args, **kwargs)
        bound.apply_defaults()
        bound.arguments["callbacks"] = with_exact_progbar(bound.arguments["callbacks"],
                                                          bound.arguments["verbose"])
        return super().fit(*bound.args, **bound.kwargs)

    # ------------------------------------------------------------------ serialisation
    def _base_config(self):
        ser = keras.saving.serialize_keras_object
        return {"prior": ser(self.prior), "likelihood": ser(self.likelihood),
                "objective": ser(self.objective), "beta": ser(self.beta_controller),
                "seed": self.seed, "name": self.name}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in cls._SUBLAYERS + ("prior", "likelihood", "objective", "beta"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)
