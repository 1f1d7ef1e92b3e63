"""The two-level hierarchical VAE of Tomczak & Welling (2018), Sec. 3.3, Eqs. (10)-(15).

    generative:  p(x|z1, z2) p(z1|z2) p(z2),   p(z2) any PriorLayer (standard normal, MoG,
                 VampPrior p(z2) = 1/K sum_k q(z2|u_k) with the pseudo-inputs through q(z2|x))
    inference:   q(z1|x, z2) q(z2|x)
    ELBO (Eq. 13): E_q[log p(x|z1, z2) + log p(z1|z2) + log p(z2) - log q(z1|x, z2) - log q(z2|x)]

Every density is a diagonal Gaussian except p(z2) (the prior layer) and p(x|z1, z2) (the
likelihood). The code of the latent interface is [z1, z2] (D = d1 + d2), drawn from the noise
eps = [eps1, eps2]: z2 = mu2(x) + sigma2(x) eps2, then z1 = mu1(x, z2) + sigma1(x, z2) eps1.

KL of the ELBO: with a prior that has a closed-form KL to q(z2|x) (standard normal),
    KL = KL(q(z2|x) || p(z2)) + E_q(z2|x) KL(q(z1|x, z2) || p(z1|z2))
in closed form per level (the outer expectation over the S drawn z2); otherwise the
Monte-Carlo mean of log q - log p over both levels.

`build_hvae` makes the paper's networks (gated MLPs of 300 units, 40 + 40 latents).
"""

import math

import keras
import tensorflow as tf

from tfpriors.networks import ConditionalDecoder, ConditionalGaussian, MLPEncoder
from tfpriors.priors import prior_log_prob
from trainers.latent_model import LatentModel
from trainers.latent_types import Inference, PosteriorSample, closed_form_kl
from trainers.vae import diagonal_gaussian, encode_with_prior_inputs

__all__ = ["HVAE", "build_hvae"]


@keras.saving.register_keras_serializable(package="tfpriors")
class HVAE(LatentModel):
    """Two-level VAE with a learnable prior on the top latent z2.

    Args:
      encoder_z2: q(z2|x), an encoder layer (x [B, H, W, C] -> loc, log_var [B, d2]); a
        VampPrior encodes its pseudo-inputs with it.
      encoder_z1: q(z1|x, z2), a ConditionalGaussian on [x flattened (H*W*C), z2 (d2)].
      prior_z1: p(z1|z2), a ConditionalGaussian on [z2 (d2)].
      decoder: p(x|z1, z2)'s parameters, a ConditionalDecoder on [z1 (d1), z2 (d2)].
      prior: a PriorLayer over z2.
      likelihood, objective, beta, seed: as for `trainers.VAE`.
    """

    _SUBLAYERS = ("encoder_z2", "encoder_z1", "prior_z1", "decoder")

    def __init__(self, encoder_z2, encoder_z1, prior_z1, decoder, prior, likelihood,
                 objective=None, beta=None, seed=0, **kwargs):
        shape = tuple(encoder_z2.input_shape_)
        d2, d1 = encoder_z2.latent_dim, encoder_z1.latent_dim
        expected = {"prior": (prior.latent_dim, d2),
                    "encoder_z1 inputs": (list(encoder_z1.input_dims), [math.prod(shape), d2]),
                    "prior_z1 latent_dim": (prior_z1.latent_dim, d1),
                    "prior_z1 inputs": (list(prior_z1.input_dims), [d2]),
                    "decoder inputs": (list(decoder.input_dims), [d1, d2]),
                    "decoder output": (tuple(decoder.output_shape_), shape)}
        wrong = {k: v for k, v in expected.items() if v[0] != v[1]}
        if wrong:
            raise ValueError("Expected the HVAE's parts to fit together (d1 = dim z1, d2 = dim z2, "
                             "images of shape " + str(shape) + "). Received (got, expected): " +
                             ", ".join(f"{k}: {got} vs {want}" for k, (got, want) in wrong.items()))
        super().__init__(seed, data_shape=shape, latent_dim=d1 + d2, **kwargs)
        self.encoder_z2 = encoder_z2
        self.encoder_z1 = encoder_z1
        self.prior_z1 = prior_z1
        self.decoder = decoder
        self.latent_dims = (d1, d2)
        self._attach(prior, likelihood, objective, beta)

    def _layers_and_input_shapes(self, input_shape):
        return [(self.encoder_z2, input_shape), (self.encoder_z1, None), (self.prior_z1, None),
                (self.decoder, None)] + super()._layers_and_input_shapes(input_shape)

    @property
    def prior_encoder(self):
        """q(z2|x): the encoder a VampPrior over z2 passes its pseudo-inputs through."""
        return self.encoder_z2

    def split(self, code):
        """code [..., d1 + d2] -> (z1 [..., d1], z2 [..., d2])."""
        d1 = self.latent_dims[0]
        return code[..., :d1], code[..., d1:]

    def _flat(self, x):
        return tf.reshape(x, [-1, math.prod(self.data_shape)])

    def _p_z1(self, z2):
        return diagonal_gaussian(*self.prior_z1([z2]))

    # ------------------------------------------------------------------ latent interface
    def infer(self, x):
        loc, log_var, prior = encode_with_prior_inputs(self.encoder_z2, self.prior, x)
        return Inference(posterior=diagonal_gaussian(loc, log_var), prior=prior,
                         context={"x_flat": self._flat(x)})

    def posterior(self, x):
        """q(z2|x), the posterior of the latent the prior layer models: batch [B], event [d2]."""
        return diagonal_gaussian(*self.encoder_z2(x))

    def sample_posterior(self, inference, eps):
        eps1, eps2 = self.split(eps)
        q2 = inference.posterior
        z2 = q2.bijector.forward(eps2)          # loc + scale * eps2, cached for log_prob  [S, B, d2]
        q1 = diagonal_gaussian(*self.encoder_z1([inference.context["x_flat"], z2]))   # [S, B]
        z1 = q1.bijector.forward(eps1)                                         # [S, B, d1]
        # p(z1|z2) at the drawn z2, once: log_prior and kl_divergence read it from the parts.
        return PosteriorSample(code=tf.concat([z1, z2], axis=-1),
                               log_q=q2.log_prob(z2) + q1.log_prob(z1),
                               parts={"q1": q1, "q2": q2, "p_z1": self._p_z1(z2)})

    def log_prior(self, inference, code, seed=None, parts=None):
        z1, z2 = self.split(code)
        p_z1 = parts["p_z1"] if parts is not None else self._p_z1(z2)
        return prior_log_prob(self.prior, inference.prior, z2, seed=seed) + p_z1.log_prob(z1)

    def likelihood_params(self, code):
        return self.decoder(list(self.split(code)))

    def kl_divergence(self, inference, sample, log_prior):
        top = closed_form_kl(inference.posterior, inference.prior, self.prior)  # [B] or None
        if top is None:
            return tf.reduce_mean(sample.log_q - log_prior, axis=0)
        lower = closed_form_kl(sample.parts["q1"], sample.parts["p_z1"])        # [S, B]
        return top + tf.reduce_mean(lower, axis=0)

    def encode(self, x):
        """[E q(z1|x, m2), m2] with m2 = E q(z2|x): [B, d1 + d2]."""
        return self.encode_distribution(x)[0]

    def encode_distribution(self, x):
        """(loc, scale) [B, d1 + d2]: q(z2|x)'s and q(z1|x, z2)'s at z2 = E q(z2|x)."""
        loc2, log_var2 = self.encoder_z2(x)
        loc1, log_var1 = self.encoder_z1([self._flat(x), loc2])
        return (tf.concat([loc1, loc2], axis=-1),
                tf.exp(0.5 * tf.concat([log_var1, log_var2], axis=-1)))

    def _complete_code(self, distribution, num_samples, seed):
        seed_z2, seed_z1 = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        z2 = distribution.sample(num_samples, seed=seed_z2)                    # [N, d2]
        z1 = self._p_z1(z2).sample(seed=seed_z1)                               # [N, d1]
        return tf.concat([z1, z2], axis=-1)

    # ------------------------------------------------------------------ serialisation
    def get_config(self):
        ser = keras.saving.serialize_keras_object
        return dict(self._base_config(), **{name: ser(getattr(self, name)) for name in self._SUBLAYERS})


def build_hvae(data_shape, prior, likelihood, latent_dims=(40, 40), hidden_units=300,
               gated=True, log_var_bounds=(-6.0, 2.0), **kwargs):
    """The HVAE with the VampPrior paper's networks (Sec. 4, "HVAE (L=2)"):

        q(z2|x):      x -> 300 -> 300 -> d2            (an MLPEncoder)
        q(z1|x, z2):  [x -> 300, z2 -> 300] -> 300 -> d1
        p(z1|z2):     z2 -> 300 -> 300 -> d1
        p(x|z1, z2):  [z1 -> 300, z2 -> 300] -> 300 -> H*W*C

    Args:
      data_shape: (H, W, C).
      prior: a PriorLayer with latent_dim d2.
      likelihood: a likelihood layer.
      latent_dims: (d1, d2), 40 + 40 in the paper.
      hidden_units: width of every hidden layer.
      gated: gated dense layers (the paper) or ReLU.
      kwargs: objective, beta, seed, name.
    """
    d1, d2 = (int(d) for d in latent_dims)
    units = int(hidden_units)
    pixels = math.prod(data_shape)
    net = dict(gated=gated)
    return HVAE(
        MLPEncoder(d2, data_shape, hidden_units=(units, units), log_var_bounds=log_var_bounds,
                   name="q_z2", **net),
        ConditionalGaussian(d1, [pixels, d2], branch_units=(units,), hidden_units=(units,),
                            log_var_bounds=log_var_bounds, name="q_z1", **net),
        ConditionalGaussian(d1, [d2], branch_units=(units,), hidden_units=(units,),
                            log_var_bounds=log_var_bounds, name="p_z1", **net),
        ConditionalDecoder(data_shape, [d1, d2], branch_units=(units,), hidden_units=(units,),
                           name="p_x", **net),
        prior, likelihood, **kwargs)
