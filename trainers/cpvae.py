"""CP-VAE: a discrete c beside z with a conditional prior p(c) p(z|c) learned jointly (Lavda et al.).

    generative:  p(x|z, c) p(z|c) p(c),   p(z|c_k) = N(mu_k, diag sigma_k^2)      (Eq. 5)
    inference:   q(c|x) = Cat(pi(x)), then q(z|x, c) from [h(x), pi(x)]   (Fig. 2; or [h(x), c])
    ELBO (Eqs. 7-9):  E_q log p(x|z, c) - KL(q(c|x) || p(c)) - sum_k pi_k KL(q(z|x, c_k) || p(z|c_k))

What q(z|x, c) sees (`z_input`). The paper's encoder (Sec. 3.2, Fig. 2) feeds the category
probabilities pi(x) with h(x) into the layer for z: mu(x, pi), sigma(x, pi). Then q(z|x, c_k) is one
Gaussian for every k, and the KL term sum_k pi_k KL(q(z|x) || p(z|c_k)) can only be small if pi
puts its mass on the components p(z|c_k) that lie where q(z|x) lies: q(c|x) is pushed towards the
GMM responsibilities of the encoding, the signal that makes c cluster (`z_input="probabilities"`,
the default). With `z_input="category"`, q(z|x, c_k) takes the one-hot c_k and can place an
encoding inside every component at once, so the KL term no longer says which category x belongs
to; only the decoder's use of c does (measured on MNIST: benchmarks/README.md).

What the decoder sees (`decoder_input`). The paper's p(x|z, c) (Sec. 3.1) decodes [z, c]
(`decoder_input="z_and_c"`, the default): c is then also a code for the image, and the
reconstruction term rewards any q(c|x) that helps the decoder, whether or not it follows the
components p(z|c_k) the encodings lie in. With `decoder_input="z"` the decoder is p(x|z), as in
VaDE (Jiang et al. 2017, Eq. 2), and c reaches the ELBO only through the prior terms: with the
paper's z head, q(c|x) is then pulled towards the mixture responsibilities of its encoding alone.
*Not in the paper*: an option for clustering, measured on MNIST in benchmarks/README.md.

The prior is any mixture prior layer (`num_components` K): its mixture weights are p(c), its
components p(z|c_k) (the MoG prior: learned means and scales, uniform or learned weights; the
VampPrior: q(z|u_k)). Both KL terms are exact: the first over the K categories, the second with
q(z|x, c_k) evaluated for every k (one batched call) and TFP's registered Gaussian KL.
*Not in the paper*: the MoG prior with covariance="full" gives p(z|c_k) = N(mu_k, L_k L_k^T),
whose KL from the diagonal q(z|x, c_k) is TFP's closed form for two linear-operator Gaussians.

Sampling c. The code of the latent interface is [z, one-hot c] (D + K); the noise is D + K
standard normals, the last K turned into Gumbel(0, 1) noise g = -log(-log Phi(eps)). The drawn
c is the exact Gumbel-max category one_hot(argmax(logits + g)), so log q, log p and the IS
log-likelihood are those of the discrete model; its gradient is the Gumbel-softmax relaxation's,
softmax((logits + g) / tau), passed straight through (Jang et al. 2017, "ST Gumbel-Softmax").
*Deviation from the paper*, which decodes the relaxed c itself: the straight-through sample keeps
every estimator exact for the discrete c. The temperature anneals with the step counter,
tau_t = max(tau_min, tau_0 exp(-rate t)) (Jang et al.'s schedule), so it resumes with the model.

Generation (Eq. 14): c from the aggregated posterior q(c) = 1/N sum_n q(c|x_n), estimated over
training images with `estimate_aggregated_posterior(images)` (until then p(c)), then
z ~ p(z|c), then x. `cluster(x)` returns q(c|x).
"""

import math

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfpriors._validation import check_finite_array, check_positive_float, check_positive_int
from tfpriors.networks import ConditionalDecoder, ConditionalGaussian, FeatureNetwork
from trainers.latent_model import LatentModel
from trainers.latent_types import Inference, PosteriorSample, closed_form_kl
from trainers.vae import diagonal_gaussian

tfd = tfp.distributions

__all__ = ["CPVAE", "build_cpvae"]

_EPS = 1e-7


def gumbel_from_normal(eps):
    """Gumbel(0, 1) noise from standard normals: -log(-log Phi(eps)), Phi clipped to (0, 1)."""
    u = tf.clip_by_value(0.5 * (1.0 + tf.math.erf(eps / math.sqrt(2.0))), _EPS, 1.0 - _EPS)
    return -tf.math.log(-tf.math.log(u))


@keras.saving.register_keras_serializable(package="tfpriors")
class CPVAE(LatentModel):
    """VAE with a discrete c and the conditional prior p(c) p(z|c).

    Args:
      features: h(x), a FeatureNetwork (x [B, H, W, C] -> [B, F]).
      encoder_z: q(z|x, c), a ConditionalGaussian on [h (F), c (K)].
      decoder: p(x|z, c)'s parameters, a ConditionalDecoder on [z (D), c (K)].
      prior: a mixture prior layer over z with K components (p(c) its weights, p(z|c_k) its
        components).
      likelihood, objective, beta, seed: as for `trainers.VAE`.
      initial_temperature, min_temperature, temperature_rate: the Gumbel-softmax temperature
        tau_t = max(min, initial * exp(-rate * t)), t the training step.
      z_input: "probabilities" (the paper: q(z|x, c) = q(z|x) from [h(x), pi(x)]) or "category"
        (q(z|x, c_k) from [h(x), one-hot c_k], a different Gaussian per category).
      decoder_input: "z_and_c" (the paper: p(x|z, c), the decoder on [z, c]) or "z" (p(x|z), the
        decoder on z alone, as in VaDE).
    """

    Z_INPUTS = ("probabilities", "category")
    DECODER_INPUTS = ("z_and_c", "z")

    _SUBLAYERS = ("features", "encoder_z", "decoder")

    def __init__(self, features, encoder_z, decoder, prior, likelihood, objective=None, beta=None,
                 seed=0, initial_temperature=1.0, min_temperature=0.5, temperature_rate=1e-4,
                 z_input="probabilities", decoder_input="z_and_c", **kwargs):
        k = prior.num_components
        if k is None:
            raise ValueError(f"Expected a mixture prior (num_components K) for the CP-VAE's p(c) "
                             f"p(z|c). Received: {type(prior).__name__}")
        if decoder_input not in self.DECODER_INPUTS:
            raise ValueError(f"Expected `decoder_input` one of {self.DECODER_INPUTS}. Received: "
                             f"{decoder_input!r}")
        d, shape = prior.latent_dim, tuple(features.input_shape_)
        expected = {"encoder_z latent_dim": (encoder_z.latent_dim, d),
                    "encoder_z inputs": (list(encoder_z.input_dims), [features.units, k]),
                    "decoder inputs": (list(decoder.input_dims),
                                       _decoder_input_dims(decoder_input, d, k)),
                    "decoder output": (tuple(decoder.output_shape_), shape)}
        wrong = {name: v for name, v in expected.items() if v[0] != v[1]}
        if wrong:
            raise ValueError(f"Expected the CP-VAE's parts to fit together (D = {d}, K = {k}, "
                             f"images {shape}). Received (got, expected): " +
                             ", ".join(f"{n}: {g} vs {e}" for n, (g, e) in wrong.items()))
        super().__init__(seed, data_shape=shape, latent_dim=d + k, **kwargs)
        self.features = features
        self.cluster_head = keras.layers.Dense(k, name="cluster_logits")
        self.encoder_z = encoder_z
        self.decoder = decoder
        self.num_clusters, self.z_dim = k, d
        self.initial_temperature = check_positive_float("initial_temperature", initial_temperature)
        self.min_temperature = check_positive_float("min_temperature", min_temperature)
        if not 0.0 <= float(temperature_rate) < math.inf:
            raise ValueError(f"Expected `temperature_rate` >= 0. Received: {temperature_rate!r}")
        self.temperature_rate = float(temperature_rate)
        if z_input not in self.Z_INPUTS:
            raise ValueError(f"Expected `z_input` one of {self.Z_INPUTS}. Received: {z_input!r}")
        self.z_input, self.decoder_input = z_input, decoder_input
        self._attach(prior, likelihood, objective, beta)

    def _layers_and_input_shapes(self, input_shape):
        return [(self.features, input_shape), (self.cluster_head, (None, self.features.units)),
                (self.encoder_z, None), (self.decoder, None)] + \
            super()._layers_and_input_shapes(input_shape)

    def build(self, input_shape=None):
        built = self.built
        super().build(input_shape)
        if not built:
            self.aggregated_posterior = self.add_weight(
                name="aggregated_posterior", shape=(self.num_clusters,), trainable=False,
                initializer="zeros")          # zeros: not estimated yet, p(c) is used

    @property
    def prior_encoder(self):
        """The encoder a VampPrior's components q(z|u_k) need (q(z|x, c) is per category; the
        pseudo-inputs use the category of their own q(c|u_k))."""
        return _PseudoInputEncoder(self)

    # ------------------------------------------------------------------ pieces
    def split(self, code):
        """code [..., D + K] -> (z [..., D], c [..., K])."""
        return code[..., :self.z_dim], code[..., self.z_dim:]

    def cluster_logits(self, x):
        return self.cluster_head(self.features(x))

    def cluster(self, x):
        """q(c|x), [B, K]."""
        return tf.nn.softmax(self.cluster_logits(x))

    def temperature(self):
        t = tf.cast(self.rng_step.value, tf.float32)
        return tf.maximum(self.min_temperature,
                          self.initial_temperature * tf.exp(-self.temperature_rate * t))

    def _prior_parts(self, prior):
        """(log p(c) [K], p(z|c_k) with batch [K]) of the prior layer's mixture."""
        log_pc = tf.math.log_softmax(prior.mixture_distribution.logits_parameter())
        return log_pc, self.prior.component_distribution(prior)

    def _p_z_given_c(self, prior, c):
        """p(z|c) for one-hot (or straight-through) c [..., K]: N(c mu, diag (c sigma)^2), or
        N(c mu, (c L)(c L)^T) for full-covariance components p(z|c_k) = N(mu_k, L_k L_k^T)."""
        return _gaussian_from_components(self.prior.component_distribution(prior),
                                         lambda t: tf.tensordot(c, t, axes=[[-1], [0]]))

    # ------------------------------------------------------------------ latent interface
    def infer(self, x):
        h = self.features(x)                                                  # [B, F]
        logits = self.cluster_head(h)                                         # [B, K]
        prior = self.prior.distribution(self.prior_encoder)
        context = {"h": h, "logits": logits}
        if self.z_input == "probabilities":        # one q(z|x) for the sample and the KL
            context["q_z"] = self._shared_z(h, logits)
        return Inference(posterior=tfd.Categorical(logits=logits), prior=prior, context=context)

    def posterior(self, x):
        """q(z|x) = sum_k q(c_k|x) q(z|x, c_k), the marginal posterior of z: batch [B], event [D]
        (with z_input="probabilities" every q(z|x, c_k) is the same Gaussian, returned as such)."""
        h = self.features(x)
        logits = self.cluster_head(h)
        if self.z_input == "probabilities":
            return diagonal_gaussian(*self._shared_z(h, logits))
        loc, log_var = self._all_categories(h, logits)                        # [K, B, D]
        return tfd.MixtureSameFamily(
            tfd.Categorical(logits=logits),
            tfd.MultivariateNormalDiag(loc=tf.transpose(loc, [1, 0, 2]),
                                       scale_diag=tf.exp(0.5 * tf.transpose(log_var, [1, 0, 2]))))

    def _shared_z(self, h, logits):
        """(loc, log_var) [B, D] of q(z|x) from [h(x), pi(x)] (z_input="probabilities")."""
        return self.encoder_z([h, tf.nn.softmax(logits)])

    def _z_given(self, h, logits, c, shared=None):
        """(loc, log_var) of q(z|x, c) for c [..., K] (one-hot or straight-through); with
        z_input="probabilities" it is q(z|x) from pi(x), whatever c: [B, D] (`shared` if given,
        the one `infer` computed)."""
        if self.z_input == "probabilities":
            return shared if shared is not None else self._shared_z(h, logits)
        return self.encoder_z([h, c])

    def _all_categories(self, h, logits, shared=None):
        """q(z|x, c_k) for every k: (loc, log_var) [K, B, D] ([1, B, D] with z_input="probabilities",
        one Gaussian for every k)."""
        if self.z_input == "probabilities":
            loc, log_var = self._z_given(h, logits, None, shared)
            return loc[None], log_var[None]
        eye = tf.eye(self.num_clusters)[:, None, :]                           # [K, 1, K]
        return self.encoder_z([h, eye])

    def sample_posterior(self, inference, eps):
        eps_z, eps_c = eps[..., :self.z_dim], eps[..., self.z_dim:]
        logits = inference.context["logits"]                                  # [B, K]
        perturbed = logits + gumbel_from_normal(eps_c)                        # [S, B, K]
        hard = tf.one_hot(tf.argmax(perturbed, axis=-1), self.num_clusters)
        relaxed = tf.nn.softmax(perturbed / self.temperature())
        c = hard + (relaxed - tf.stop_gradient(relaxed))       # value exactly hard, ST gradient
        q_z = diagonal_gaussian(*self._z_given(inference.context["h"], logits, c,
                                               inference.context.get("q_z")))  # [S, B] or [B]
        z = q_z.bijector.forward(eps_z)                                       # [S, B, D]
        log_qc = tf.reduce_sum(c * tf.math.log_softmax(logits), axis=-1)      # log pi_c
        return PosteriorSample(code=tf.concat([z, c], axis=-1), log_q=log_qc + q_z.log_prob(z),
                               parts={"q_z": q_z})

    def log_prior(self, inference, code, seed=None, parts=None):
        z, c = self.split(code)
        log_pc, _ = self._prior_parts(inference.prior)
        return tf.reduce_sum(c * log_pc, axis=-1) + self._p_z_given_c(inference.prior, c).log_prob(z)

    def likelihood_params(self, code):
        z, c = self.split(code)
        return self.decoder([z, c] if self.decoder_input == "z_and_c" else [z])

    def kl_divergence(self, inference, sample, log_prior):
        """KL(q(c|x) || p(c)) + sum_k pi_k KL(q(z|x, c_k) || p(z|c_k)), exact (Eqs. 8-9)."""
        logits = inference.context["logits"]
        log_pi = tf.math.log_softmax(logits)                                  # [B, K]
        pi = tf.exp(log_pi)
        log_pc, components = self._prior_parts(inference.prior)
        kl_c = tf.reduce_sum(pi * (log_pi - log_pc), axis=-1)                 # [B]
        loc, log_var = self._all_categories(inference.context["h"], logits,
                                            inference.context.get("q_z"))     # [K or 1, B, D]
        q_all = diagonal_gaussian(loc, log_var)                               # batch [K, B]
        p_all = _gaussian_from_components(components, lambda t: t[:, None])   # batch [K, 1]
        kl_z = closed_form_kl(q_all, p_all)                                   # [K, B]
        return kl_c + tf.reduce_sum(tf.transpose(pi) * kl_z, axis=0)

    def analytic_kl(self, inference):
        return self.kl_divergence(inference, None, None)

    def encode(self, x):
        """[E q(z|x, c*), one-hot c*] with c* the most likely category: [B, D + K]."""
        return self.encode_distribution(x)[0]

    def encode_distribution(self, x):
        """(loc, scale) [B, D + K]: q(z|x, c*) and the one-hot c* (scale 0)."""
        h = self.features(x)
        logits = self.cluster_head(h)
        c = tf.one_hot(tf.argmax(logits, axis=-1), self.num_clusters)
        loc, log_var = self._z_given(h, logits, c)
        return tf.concat([loc, c], -1), tf.concat([tf.exp(0.5 * log_var), tf.zeros_like(c)], -1)

    def estimate_aggregated_posterior(self, images, batch_size=500):
        """Sets q(c) = 1/N sum_n q(c|x_n) (Eq. 14) over `images` [N, H, W, C]; returns it [K]."""
        images = check_finite_array("images", np.asarray(images, np.float32))
        self._check_shape((None,) + images.shape[1:])
        batch_size = check_positive_int("batch_size", batch_size)
        total = np.zeros(self.num_clusters)
        for start in range(0, len(images), batch_size):
            total += self.cluster(tf.constant(images[start:start + batch_size])).numpy().sum(0)
        self.aggregated_posterior.assign((total / len(images)).astype(np.float32))
        return total / len(images)

    def _category_logits(self, prior):
        """log q(c) if estimated, else log p(c): the categories generation draws from."""
        estimated = tf.reduce_sum(self.aggregated_posterior.value) > 0.0
        log_qc = tf.math.log(tf.maximum(self.aggregated_posterior.value, 1e-30))
        return tf.where(estimated, log_qc, self._prior_parts(prior)[0])

    def sample_latents(self, num_samples, seed):
        """c ~ q(c) (Eq. 14; p(c) before it is estimated), z ~ p(z|c): code [N, D + K]."""
        prior = self.prior_distribution()
        seed_c, seed_z = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        c = tfd.OneHotCategorical(logits=self._category_logits(prior), dtype=tf.float32).sample(
            num_samples, seed=seed_c)                                         # [N, K]
        z = self._p_z_given_c(prior, c).sample(seed=seed_z)
        return tf.concat([z, c], axis=-1)

    def sample_component(self, component, num_samples, seed):
        """(mean images, code [N, D + K]) with c = component and z ~ p(z|c_component)."""
        prior = self.prior_distribution()
        c = tf.tile(tf.one_hot(component, self.num_clusters)[None], [num_samples, 1])
        z = self._p_z_given_c(prior, c).sample(seed=seed)
        code = tf.concat([z, c], axis=-1)
        return self.decode(code), code

    # ------------------------------------------------------------------ serialisation
    def get_config(self):
        ser = keras.saving.serialize_keras_object
        return dict(self._base_config(), initial_temperature=self.initial_temperature,
                    min_temperature=self.min_temperature, temperature_rate=self.temperature_rate,
                    z_input=self.z_input, decoder_input=self.decoder_input,
                    **{name: ser(getattr(self, name)) for name in self._SUBLAYERS})


def _gaussian_from_components(components, transform):
    """A Gaussian whose mean and scale are `transform` of the components' (p(z|c_k), batch [K]):
    `transform` maps the leading K axis of the means [K, D] and of the standard deviations [K, D]
    or, for full covariances (a scale that is not diagonal: the MoG prior with covariance="full"),
    of the Cholesky factors [K, D, D]."""
    loc = transform(components.mean())
    if isinstance(components.scale, tf.linalg.LinearOperatorDiag):
        return tfd.MultivariateNormalDiag(loc=loc, scale_diag=transform(components.stddev()))
    return tfd.MultivariateNormalTriL(loc=loc, scale_tril=transform(components.scale.to_dense()))


def _decoder_input_dims(decoder_input, d, k):
    """The decoder's input widths: [D, K] for p(x|z, c), [D] for p(x|z)."""
    return [d, k] if decoder_input == "z_and_c" else [d]


class _PseudoInputEncoder:
    """The encoder a VampPrior calls on its pseudo-inputs u_k: q(z|u_k, c*(u_k))."""

    def __init__(self, model):
        self.model = model

    def __call__(self, x):
        h = self.model.features(x)
        logits = self.model.cluster_head(h)
        c = tf.one_hot(tf.argmax(logits, axis=-1), self.model.num_clusters)
        return self.model._z_given(h, logits, c)


def build_cpvae(data_shape, prior, likelihood, hidden_units=(300, 300), gated=True, **kwargs):
    """The CP-VAE with MLPs: h(x) = hidden_units, q(z|x, c) one layer on [h, pi(x)] (or [h, c],
    `z_input`), and p(x|z, c) an MLP on [z, c] (or p(x|z) on z, `decoder_input`; `hidden_units`
    reversed).

    Args:
      data_shape: (H, W, C).
      prior: a mixture prior layer (`num_components` K, `latent_dim` D).
      likelihood: a likelihood layer.
      hidden_units: widths of h(x); the last is F.
      gated: gated dense layers (VampPrior paper) or ReLU.
      kwargs: objective, beta, seed, temperature settings, z_input, decoder_input, name.
    """
    units = tuple(int(u) for u in hidden_units)
    d, k = prior.latent_dim, prior.num_components
    if k is None:
        raise ValueError(f"Expected a mixture prior (num_components K) for the CP-VAE's p(c) "
                         f"p(z|c). Received: {type(prior).__name__}")
    return CPVAE(FeatureNetwork(data_shape, units, gated=gated, name="h_x"),
                 ConditionalGaussian(d, [units[-1], k], branch_units=(), hidden_units=(units[-1],),
                                     gated=gated, name="q_z"),
                 ConditionalDecoder(data_shape,
                                    _decoder_input_dims(kwargs.get("decoder_input", "z_and_c"), d, k),
                                    branch_units=(),
                                    hidden_units=tuple(reversed(units)), gated=gated, name="p_x"),
                 prior, likelihood, **kwargs)
