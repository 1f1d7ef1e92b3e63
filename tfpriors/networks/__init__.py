"""Encoders and decoders: Keras 3 layers with `get_config`.

Encoders map images [B, H, W, C] to the parameters (loc, log_var) of a diagonal Gaussian
q(z|x), each [B, D], with the log-variance bounded. Decoders map latents [..., D] to one
parameter per pixel [..., H, W, C] (Bernoulli logits or the location of a Gaussian/Laplace);
the likelihood layer (`tfpriors.likelihoods`) turns it into a distribution. The conditionals of
the two-level HVAE take several inputs (`tfpriors.networks.conditional`).
"""

from tfpriors.networks.gated import GatedDense
from tfpriors.networks.mlp import MLPDecoder, MLPEncoder
from tfpriors.networks.conv import ConvDecoder, ConvEncoder
from tfpriors.networks.conditional import ConditionalDecoder, ConditionalGaussian, FeatureNetwork

__all__ = ["GatedDense", "MLPEncoder", "MLPDecoder", "ConvEncoder", "ConvDecoder",
           "ConditionalGaussian", "ConditionalDecoder", "FeatureNetwork"]
