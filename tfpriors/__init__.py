"""tfpriors: learnable priors for variational autoencoders in TensorFlow 2, Keras 3 and TFP."""

__version__ = "0.1.0"
