"""Keras trainers for tfpriors: the VAE model, objectives, β controllers and the CLIs."""

from trainers.beta import BetaController, ConstantBeta, LinearWarmup, get_beta_controller
from trainers.constraint_control import GECO, REWO, SigmoidREWO  # registers geco, rewo, rewo_sigmoid
from trainers.objectives import ELBO, IWAE, get_objective
from trainers.vae import VAE

__all__ = ["VAE", "ELBO", "IWAE", "get_objective", "BetaController", "ConstantBeta",
           "LinearWarmup", "GECO", "REWO", "SigmoidREWO", "get_beta_controller"]
