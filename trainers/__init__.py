"""Keras trainers for tfpriors: the VAE model, objectives, β controllers and the CLIs.

Importing `trainers` registers every serialisable class of the package (networks, likelihoods,
priors, objectives, controllers, learning-rate schedule, block optimiser, VAE, HVAE, CP-VAE, LaDDer), so
`keras.models.load_model("model.keras")` works after a plain `import trainers`;
`trainers.load_model(path)` also checks that the file is a readable Keras archive first.
"""

import tfpriors.likelihoods  # noqa: F401  (registers the likelihood layers)
import tfpriors.networks  # noqa: F401  (registers the encoders and decoders)
import tfpriors.priors  # noqa: F401  (registers the prior layers)

from trainers.beta import BetaController, ConstantBeta, LinearWarmup, get_beta_controller
from trainers.constraint_control import GECO, REWO, SigmoidREWO  # registers geco, rewo, rewo_sigmoid
from trainers.learning_rate import WarmupLearningRate
from trainers.objectives import ELBO, IWAE, get_objective
from trainers.run_io import load_model
from trainers.cpvae import CPVAE
from trainers.cpvae_init import GMMInitialisation, initialize_from_gmm
from trainers.hvae import HVAE
from trainers.ladder import BlockSchedule, LaDDer
from trainers.latent_model import LatentModel
from trainers.vae import VAE

__all__ = ["LatentModel", "VAE", "HVAE", "CPVAE", "initialize_from_gmm", "GMMInitialisation", "LaDDer", "BlockSchedule", "ELBO", "IWAE", "get_objective", "BetaController", "ConstantBeta",
           "LinearWarmup", "GECO", "REWO", "SigmoidREWO", "get_beta_controller",
           "WarmupLearningRate", "load_model"]
