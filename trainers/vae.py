"""The VAE trainer: a `keras.Model` with a custom train_step/test_step for any prior and objective.

    encoder q(z|x)  ->  prior p(z) (any PriorLayer)  ->  decoder + likelihood p(x|z)
    loss from an Objective (ELBO, IWAE) with β from a BetaController (constant, warm-up, GECO, REWO)

Works with `fit` (progress bars that end at their total, callbacks, steps_per_execution,
jit_compile) and `.keras` save/load. Randomness is stateless: step t uses the seed (seed, t),
with t a saved counter, so a resumed run draws the same numbers as an uninterrupted one.

Distributed training (`tf.distribute` MirroredStrategy / MultiWorkerMirroredStrategy; build
and compile the model in `strategy.scope()`, see `trainers.distribute`) gives the same updates
as single-device training on the same global batches:

* gradients: Keras' optimizer all-reduces them by SUM, so a replica's loss is the sum over its
  examples divided by the global batch size (all-gathered), i.e. its share of the global mean;
* noise: each replica draws the noise of the global batch and keeps its own rows
  (`trainers.objectives._replica_noise_terms`), so every example sees the numbers it would see
  on one device;
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
import tensorflow_probability as tfp

from tfpriors._validation import check_finite_array
from trainers.beta import ConstantBeta
from trainers.distribute import (cross_replica_sum, is_distributed, logs_for_keras,
                                 replica_batch_slice)
from trainers.objectives import ELBO
from trainers.progbar import with_exact_progbar

tfd = tfp.distributions

__all__ = ["VAE"]

_METRICS = ("loss", "reconstruction", "kl", "elbo", "constraint", "beta")
_TERMS = ("loss", "reconstruction", "kl", "elbo", "constraint")


@keras.saving.register_keras_serializable(package="tfpriors")
class VAE(keras.Model):
    """Variational autoencoder with a learnable prior.

    Args:
      encoder: an encoder layer, x [B, H, W, C] -> (loc, log_var) [B, D].
      decoder: a decoder layer, z [..., D] -> params [..., H, W, C].
      prior: a PriorLayer.
      likelihood: a likelihood layer (Bernoulli, Gaussian, Laplace).
      objective: ELBO (default, 1 sample) or IWAE.
      beta: a BetaController (default ConstantBeta(1)).
      seed: int, the base of the stateless seeds.

    Public interface used by `tfpriors.evaluation`, `tfpriors.interpolation` and the exporter:
      posterior(x) -> tfd (batch [B], event [D]); prior_distribution() -> tfd (event [D]);
      likelihood_distribution(z) -> tfd (batch z.shape[:-1], event [H, W, C]);
      encode(x) -> posterior means; decode(z) -> mean images; sample(n, seed) -> images.
    """

    def __init__(self, encoder, decoder, prior, likelihood, objective=None, beta=None, seed=0,
                 **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.prior = prior
        self.likelihood = likelihood
        self.objective = objective if objective is not None else ELBO()
        self.beta_controller = beta if beta is not None else ConstantBeta(1.0)
        self.seed = int(seed)
        if encoder.latent_dim != decoder.latent_dim or encoder.latent_dim != prior.latent_dim:
            raise ValueError(f"Expected encoder, decoder and prior to share latent_dim. Received: "
                             f"encoder={encoder.latent_dim}, decoder={decoder.latent_dim}, "
                             f"prior={prior.latent_dim}")
        if tuple(encoder.input_shape_) != tuple(decoder.output_shape_):
            raise ValueError(f"Expected the decoder's output shape to equal the encoder's input shape. "
                             f"Received: {decoder.output_shape_} and {encoder.input_shape_}")
        self.data_shape = tuple(encoder.input_shape_)
        self.latent_dim = encoder.latent_dim
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
        for layer, shape in ((self.encoder, input_shape), (self.decoder, (None, self.latent_dim)),
                             (self.prior, (None,) + self.data_shape),
                             (self.likelihood, (None,) + self.data_shape),
                             (self.beta_controller, None)):
            if not layer.built:
                layer.build(shape)
        # Assigned inside the replica context under a strategy: ONLY_FIRST_REPLICA makes that
        # legal and keeps all copies equal (every replica adds the same 1).
        self.rng_step = self.add_weight(name="rng_step", shape=(), dtype="int64",
                                        initializer="zeros", trainable=False,
                                        aggregation="only_first_replica")
        self.built = True

    def get_build_config(self):
        return {"input_shape": [None] + list(self.data_shape)}

    def build_from_config(self, config):
        self.build(tuple(config["input_shape"]))

    def _check_shape(self, shape):
        received = tuple(None if s is None else int(s) for s in shape)
        if len(received) != len(self.data_shape) + 1 or received[1:] != self.data_shape:
            raise ValueError(f"Expected a batch of images of shape (batch,) + {self.data_shape}. "
                             f"Received shape {received}")

    # ------------------------------------------------------------------ public interface
    def posterior(self, x):
        """q(z|x): MultivariateNormalDiag with batch shape [B] and event shape [D]."""
        loc, log_var = self.encoder(x)
        return tfd.MultivariateNormalDiag(loc=loc, scale_diag=tf.exp(0.5 * log_var))

    def posterior_and_prior(self, x):
        """(q(z|x), p(z)) with one encoder call when the prior is built from encoder outputs.

        A prior that defines `encoder_inputs()` (the VampPrior's pseudo-inputs) has them encoded
        in the same batched call as x: [B + K, ...] -> split, instead of two calls.
        """
        extra = getattr(self.prior, "encoder_inputs", None)
        if extra is None:
            return self.posterior(x), self.prior_distribution()
        inputs = extra()
        batch = tf.shape(x)[0]
        loc, log_var = self.encoder(tf.concat([x, tf.cast(inputs, x.dtype)], axis=0))  # [B+K, D]
        posterior = tfd.MultivariateNormalDiag(loc=loc[:batch], scale_diag=tf.exp(0.5 * log_var[:batch]))
        return posterior, self.prior.distribution_from_encoded(loc[batch:], log_var[batch:])

    def prior_distribution(self):
        """p(z): a tfd distribution with event shape [D], rebuilt from the current weights."""
        return self.prior.distribution(self.encoder)

    def likelihood_distribution(self, z):
        """p(x|z): batch shape z.shape[:-1], event shape [H, W, C]."""
        return self.likelihood.distribution(self.decoder(z))

    def encode(self, x):
        """Posterior means E_q[z|x], [B, D]."""
        return self.encoder(x)[0]

    def decode(self, z):
        """Mean images E[x|z], [..., H, W, C]."""
        return self.likelihood.mean(self.decoder(z))

    def sample(self, num_samples, seed):
        """Draws z ~ p(z) (component by weight, then z) and returns (mean images, z).

        Args:
          num_samples: int.
          seed: int32 [2] stateless seed; the same seed gives the same samples.
        """
        z = self.prior_distribution().sample(num_samples, seed=seed)   # [N, D]
        return self.decode(z), z

    def call(self, x, training=False):
        """Reconstructs x through the posterior mean: E[x | z = E_q[z|x]]."""
        return self.decode(self.encode(x))

    # ------------------------------------------------------------------ training
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

    def train_step(self, data):
        x = self._unpack(data)
        seed = self._next_seed()
        beta = self.beta_controller.beta()
        batch_slice = replica_batch_slice(tf.shape(x)[0])       # None with a single replica
        with tf.GradientTape() as tape:
            terms = self.objective(self, x, beta, seed, batch_slice=batch_slice)
            if batch_slice is None:
                loss = tf.reduce_mean(terms["loss"])
            else:
                # Gradients are summed over replicas: each contributes sum_local / B_global.
                loss = tf.reduce_sum(terms["loss"]) / tf.cast(batch_slice.global_size, tf.float32)
        variables = self.trainable_variables
        grads = tape.gradient(loss, variables)
        gate = self.beta_controller.prior_gate()
        prior_ids = {id(v) for v in self.prior.trainable_variables}
        grads = [g * gate if (g is not None and id(v) in prior_ids) else g
                 for g, v in zip(grads, variables)]
        self.optimizer.apply_gradients(
            [(g, v) for g, v in zip(grads, variables) if g is not None])
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
    def get_config(self):
        ser = keras.saving.serialize_keras_object
        return {"encoder": ser(self.encoder), "decoder": ser(self.decoder), "prior": ser(self.prior),
                "likelihood": ser(self.likelihood), "objective": ser(self.objective),
                "beta": ser(self.beta_controller), "seed": self.seed, "name": self.name}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("encoder", "decoder", "prior", "likelihood", "objective", "beta"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)
