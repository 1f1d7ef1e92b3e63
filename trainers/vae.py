"""The one-level VAE: encoder q(z|x), prior p(z) (any PriorLayer), decoder + likelihood p(x|z).

Training, β control, block-wise optimisation and distribution are those of
`trainers.latent_model.LatentModel`; this module implements its latent interface for one
diagonal-Gaussian z (code = z, D = latent_dim):

    q(z|x) = N(z; mu(x), diag sigma²(x)),   z = mu + sigma * eps,   log p(latents) = log p(z)
    KL(q(z|x) || p(z)) in closed form when TFP has it registered (standard normal prior),
    else Monte Carlo.
"""

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from tfpriors.priors import prior_log_prob
from trainers.latent_model import LatentModel
from trainers.latent_types import Inference, PosteriorSample, closed_form_kl

tfd = tfp.distributions

__all__ = ["VAE"]


def diagonal_gaussian(loc, log_var):
    """N(loc, diag exp(log_var)) as a MultivariateNormalDiag (batch loc.shape[:-1])."""
    return tfd.MultivariateNormalDiag(loc=loc, scale_diag=tf.exp(0.5 * log_var))


def encode_with_prior_inputs(encoder, prior, x):
    """(q params of x, prior distribution) with one encoder call for x and the prior's inputs.

    A prior that defines `encoder_inputs()` (the VampPrior's pseudo-inputs) has them encoded in
    the same batched call as x: [B + K, ...] -> split, instead of two calls.

    Returns:
      (loc [B, d], log_var [B, d], the prior's distribution).
    """
    extra = getattr(prior, "encoder_inputs", None)
    if extra is None:
        loc, log_var = encoder(x)
        return loc, log_var, prior.distribution(encoder)
    batch = tf.shape(x)[0]
    loc, log_var = encoder(tf.concat([x, tf.cast(extra(), x.dtype)], axis=0))   # [B+K, d]
    return loc[:batch], log_var[:batch], prior.distribution_from_encoded(loc[batch:], log_var[batch:])


@keras.saving.register_keras_serializable(package="tfpriors")
class VAE(LatentModel):
    """Variational autoencoder with a learnable prior.

    Args:
      encoder: an encoder layer, x [B, H, W, C] -> (loc, log_var) [B, D].
      decoder: a decoder layer, z [..., D] -> params [..., H, W, C].
      prior: a PriorLayer.
      likelihood: a likelihood layer (Bernoulli, Gaussian, Laplace).
      objective: ELBO (default, 1 sample) or IWAE.
      beta: a BetaController (default ConstantBeta(1)).
      seed: int, the base of the stateless seeds.

    The latent interface is documented in `trainers.latent_model`; here the code is z itself.
    """

    _SUBLAYERS = ("encoder", "decoder")

    def __init__(self, encoder, decoder, prior, likelihood, objective=None, beta=None, seed=0,
                 **kwargs):
        if encoder.latent_dim != decoder.latent_dim or encoder.latent_dim != prior.latent_dim:
            raise ValueError(f"Expected encoder, decoder and prior to share latent_dim. Received: "
                             f"encoder={encoder.latent_dim}, decoder={decoder.latent_dim}, "
                             f"prior={prior.latent_dim}")
        if tuple(encoder.input_shape_) != tuple(decoder.output_shape_):
            raise ValueError(f"Expected the decoder's output shape to equal the encoder's input shape. "
                             f"Received: {decoder.output_shape_} and {encoder.input_shape_}")
        super().__init__(seed, data_shape=encoder.input_shape_, latent_dim=encoder.latent_dim,
                         **kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self._attach(prior, likelihood, objective, beta)

    def _layers_and_input_shapes(self, input_shape):
        return [(self.encoder, input_shape), (self.decoder, (None, self.latent_dim))] + \
            super()._layers_and_input_shapes(input_shape)

    @property
    def prior_encoder(self):
        """The encoder a posterior-coupled prior (VampPrior) is built from."""
        return self.encoder

    # ------------------------------------------------------------------ latent interface
    def infer(self, x):
        loc, log_var, prior = encode_with_prior_inputs(self.encoder, self.prior, x)
        return Inference(posterior=diagonal_gaussian(loc, log_var), prior=prior, context={})

    def posterior(self, x):
        """q(z|x): MultivariateNormalDiag with batch shape [B] and event shape [D]."""
        return diagonal_gaussian(*self.encoder(x))

    def posterior_and_prior(self, x):
        """(q(z|x), p(z)) from one batched encoder call (see `encode_with_prior_inputs`)."""
        inference = self.infer(x)
        return inference.posterior, inference.prior

    def sample_posterior(self, inference, eps):
        q = inference.posterior
        # loc + scale * eps through q's own bijector, as q.sample does: TFP then finds eps in the
        # bijector's cache when log_prob(z) inverts it, so log q is bitwise q.sample's.
        z = q.bijector.forward(eps)                                          # [S, B, D]
        return PosteriorSample(code=z, log_q=q.log_prob(z), parts={"q": q})

    def log_prior(self, inference, code, seed=None, parts=None):
        return prior_log_prob(self.prior, inference.prior, code, seed=seed)

    def likelihood_params(self, code):
        return self.decoder(code)

    def analytic_kl(self, inference):
        return closed_form_kl(inference.posterior, inference.prior, self.prior)

    def kl_divergence(self, inference, sample, log_prior):
        kl = self.analytic_kl(inference)
        return kl if kl is not None else tf.reduce_mean(sample.log_q - log_prior, axis=0)

    def encode(self, x):
        """Posterior means E_q[z|x], [B, D]."""
        return self.encoder(x)[0]

    def encode_distribution(self, x):
        """(loc, scale) [B, D] of q(z|x) = N(loc, diag scale²)."""
        loc, log_var = self.encoder(x)
        return loc, tf.exp(0.5 * log_var)

    def _complete_code(self, distribution, num_samples, seed):
        return distribution.sample(num_samples, seed=seed)                 # [N, D]

    # ------------------------------------------------------------------ serialisation
    def get_config(self):
        ser = keras.saving.serialize_keras_object
        return dict(self._base_config(), encoder=ser(self.encoder), decoder=ser(self.decoder))
