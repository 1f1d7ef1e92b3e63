"""VampPrior: a mixture of the encoder's posteriors at K learnable pseudo-inputs.

Tomczak & Welling (2018), Eq. (9) and, with learned weights, Eq. (16):

    p(z) = sum_k w_k q_phi(z | u_k),   w = softmax(logits)  (uniform 1/K unless learned)

The pseudo-inputs u_k have the shape of an image. They are initialised from noise
N(0.05, 0.01) (the paper's code) or from random training examples, and pass through
Hardtanh(0, 1) as in the paper's code so that they stay valid images. With
`trainable_pseudo_inputs=False` and data initialisation this is "VampPrior data" (Sec. 4).
All K pseudo-inputs are encoded in one batched call per step.
"""

import keras
import numpy as np
import tensorflow as tf

from tfpriors._validation import check_choice, check_finite_array, check_positive_int
from tfpriors.priors.base import PriorLayer
from tfpriors.priors.mixture import gaussian_mixture

__all__ = ["VampPrior"]


@keras.saving.register_keras_serializable(package="tfpriors")
class VampPrior(PriorLayer):
    """Variational mixture of posteriors prior.

    Args:
      latent_dim: D.
      num_pseudo_inputs: K >= 1 (the paper uses 500 on MNIST).
      input_shape_: (H, W, C) of one image, the shape of a pseudo-input.
      init: 'noise' (N(init_mean, init_stddev), paper's code) or 'data' (call
        `initialize_from_data` before training).
      learn_weights: learn the mixture weights w (Eq. 16); else uniform.
      trainable_pseudo_inputs: False keeps the pseudo-inputs fixed ("VampPrior data").
      clip_pseudo_inputs: pass pseudo-inputs through Hardtanh(0, 1).
      init_mean, init_stddev: of the noise initialisation.
    """

    def __init__(self, latent_dim, num_pseudo_inputs=500, input_shape_=(28, 28, 1), init="noise",
                 learn_weights=False, trainable_pseudo_inputs=True, clip_pseudo_inputs=True,
                 init_mean=0.05, init_stddev=0.01, **kwargs):
        super().__init__(latent_dim, **kwargs)
        self.num_pseudo_inputs = check_positive_int("num_pseudo_inputs", num_pseudo_inputs)
        self.input_shape_ = tuple(int(s) for s in input_shape_)
        self.init = check_choice("init", init, ("noise", "data"))
        self.learn_weights = bool(learn_weights)
        self.trainable_pseudo_inputs = bool(trainable_pseudo_inputs)
        self.clip_pseudo_inputs = bool(clip_pseudo_inputs)
        self.init_mean = float(init_mean)
        self.init_stddev = float(init_stddev)

    def build(self, input_shape=None):
        self.raw_pseudo_inputs = self.add_weight(
            name="pseudo_inputs", shape=(self.num_pseudo_inputs,) + self.input_shape_,
            initializer=keras.initializers.RandomNormal(self.init_mean, self.init_stddev),
            trainable=self.trainable_pseudo_inputs)
        self.logits = self.add_weight(name="logits", shape=(self.num_pseudo_inputs,),
                                      initializer="zeros", trainable=self.learn_weights)
        self.built = True

    @property
    def num_components(self):
        """K: one mixture component q(z | u_k) per pseudo-input."""
        return self.num_pseudo_inputs

    def initialize_from_data(self, images, seed=0):
        """Sets the pseudo-inputs to K training images drawn without replacement.

        Args:
          images: array [N, H, W, C] with N >= K, values in [0, 1].
          seed: numpy seed of the draw.
        """
        images = check_finite_array("images", np.asarray(images, np.float32))
        if images.shape[1:] != self.input_shape_ or images.shape[0] < self.num_pseudo_inputs:
            raise ValueError(f"Expected at least {self.num_pseudo_inputs} images of shape "
                             f"{self.input_shape_}. Received an array of shape {images.shape}")
        if not self.built:
            self.build()
        idx = np.random.default_rng(seed).choice(images.shape[0], self.num_pseudo_inputs, replace=False)
        self.raw_pseudo_inputs.assign(images[np.sort(idx)])

    def pseudo_inputs(self):
        """The pseudo-inputs u_k as images, [K, H, W, C]."""
        u = self.raw_pseudo_inputs.value
        return tf.clip_by_value(u, 0.0, 1.0) if self.clip_pseudo_inputs else u

    def distribution(self, encoder=None):
        if encoder is None:
            raise ValueError("VampPrior needs the encoder q(z|x) to build p(z): pass "
                             "`distribution(encoder)`. Received: encoder=None")
        return self.distribution_from_encoded(*encoder(self.pseudo_inputs()))

    def encoder_inputs(self):
        """The inputs this prior passes through the encoder, [K, H, W, C]: the trainer encodes
        them together with the data batch in one call (one matmul chain instead of two)."""
        return self.pseudo_inputs()

    def distribution_from_encoded(self, loc, log_var):
        """The mixture from the encoder's outputs at the pseudo-inputs, loc and log_var [K, D]."""
        return gaussian_mixture(self.logits.value, loc, tf.exp(0.5 * log_var))

    def get_config(self):
        config = super().get_config()
        config.update(num_pseudo_inputs=self.num_pseudo_inputs, input_shape_=list(self.input_shape_),
                      init=self.init, learn_weights=self.learn_weights,
                      trainable_pseudo_inputs=self.trainable_pseudo_inputs,
                      clip_pseudo_inputs=self.clip_pseudo_inputs, init_mean=self.init_mean,
                      init_stddev=self.init_stddev)
        return config
