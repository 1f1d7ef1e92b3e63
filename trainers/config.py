"""Run configuration: the command-line flags of `python -m trainers.train`, JSON config files,
and the factory that turns a configuration into a compiled model (VAE or, with --model hvae, HVAE).

A configuration is a flat dict whose keys are the flag names with underscores. A JSON file given
with --config supplies values; flags given on the command line override it.
"""

import argparse
import json
import warnings
from pathlib import Path

import keras
import tensorflow as tf

from tfpriors._validation import check_non_negative_int, check_positive_float, check_positive_int
from tfpriors.likelihoods import get_likelihood
from tfpriors.networks import ConvDecoder, ConvEncoder, MLPDecoder, MLPEncoder
from tfpriors.priors import (HierarchicalPrior, MixtureOfGaussiansPrior, StandardNormalPrior,
                             VampPrior, VGMMHyperPrior)
from trainers.beta import get_beta_controller
from trainers.cli import ArgumentParser
from trainers.distribute import STRATEGIES, is_distributed
from trainers.learning_rate import learning_rate_for
from trainers.objectives import get_objective
from trainers.cpvae import build_cpvae
from trainers.cpvae_flags import add_cpvae_flags
from trainers.cpvae_init import check_gmm_init_config
from trainers.hvae import build_hvae
from trainers.ladder import BlockSchedule, LaDDer
from trainers.vae import VAE

__all__ = ["build_parser", "parse_config", "build_model"]


def build_parser(description):
    """The flags shared by train/tune; every flag documents itself in --help."""
    p = ArgumentParser(description=description)
    p.add_argument("--config", help="JSON file of flag values (keys are flag names with underscores); "
                                    "flags given on the command line override it")
    g = p.add_argument_group("data")
    g.add_argument("--dataset", choices=["pendulum", "mnist", "digits"], default="pendulum",
                   help="pendulum: generated 16x16 images (VHP paper Sec. 4.1); mnist: gzipped IDX "
                        "files in --data-dir; digits: scikit-learn's bundled 8x8 digits")
    g.add_argument("--data-dir", default=None,
                   help="MNIST: directory holding train-images-idx3-ubyte.gz etc., or a TFDS data_dir")
    g.add_argument("--num-examples", type=int, default=15000, help="pendulum: number of training images")
    g.add_argument("--blur", type=float, default=1.5,
                   help="pendulum: Gaussian blur std in pixels of the rendered images (1.5: the "
                        "variant on which VHP + REWO reaches the paper's OLS error, see "
                        "benchmarks/README.md; 0: the sharp images of load_dataset('pendulum')'s "
                        "default)")
    g.add_argument("--validation-size", type=int, default=None,
                   help="held-out examples (default: dataset's own; MNIST 10,000)")
    g.add_argument("--binarization", choices=["none", "dynamic", "static"], default=None,
                   help="Bernoulli binarisation of the inputs (default: dynamic for mnist, none otherwise)")
    g = p.add_argument_group("model")
    g.add_argument("--model", choices=["vae", "hvae", "cpvae", "ladder"], default="vae",
                   help="vae: one latent z; hvae: the VampPrior paper's two-level VAE (Sec. 3.3) with "
                        "the prior on z2 (--latent-dim) and p(z1|z2) (--z1-dim), gated MLPs of "
                        "--hidden-units[0] units (the paper: 300, 40 + 40 latents); cpvae: Lavda et "
                        "al.'s discrete c (--components categories, --prior mog or vampprior) beside z; "
                        "ladder: Lin & Clark's LaDDer, the VAE with a prior VAE on z (--vhp-* flags; "
                        "the paper's bound: --vhp-bound elbo --vhp-samples 1) whose hyper prior on t "
                        "(--hyper-dim) is a variational DP-GMM, trained by block coordinate ascent")
    g.add_argument("--z1-dim", type=int, default=None,
                   help="hvae: dimension of z1 (default: --latent-dim)")
    g.add_argument("--temperature", type=float, default=1.0,
                   help="cpvae: initial Gumbel-softmax temperature τ_0 of the sampled c")
    g.add_argument("--min-temperature", type=float, default=0.5,
                   help="cpvae: the temperature's floor; τ_t = max(floor, τ_0 exp(-rate t))")
    g.add_argument("--temperature-rate", type=float, default=1e-4,
                   help="cpvae: per-step decay rate of the temperature (0: constant)")
    g.add_argument("--freeze-prior", action="store_true",
                   help="keep the prior's parameters at their random initialisation (not trained): "
                        "an ablation, e.g. the CP-VAE as the authors' public code trains it, whose "
                        "p(z|c) never reaches the optimiser")
    add_cpvae_flags(g)
    g.add_argument("--hyper-dim", type=int, default=None,
                   help="vhp/ladder: dimension of the hyper latent zeta / t (default: --latent-dim "
                        "for vhp; half of it, at least 1, for ladder)")
    g.add_argument("--max-components", type=int, default=50,
                   help="ladder: truncation level of the hyper prior's Dirichlet process")
    g.add_argument("--hyper-concentration", type=float, default=None,
                   help="ladder: the Dirichlet process' concentration alpha_0 (scikit-learn's "
                        "weight_concentration_prior; default 1 / --max-components). Larger values "
                        "keep more mixture components")
    g.add_argument("--prior-steps", type=int, default=1,
                   help="ladder: gradient steps of the prior VAE per block-coordinate cycle")
    g.add_argument("--model-steps", type=int, default=1,
                   help="ladder: gradient steps of the data VAE per block-coordinate cycle")
    g.add_argument("--block-sweep", action="store_true",
                   help="ladder: update the prior VAE and then the data VAE on every batch (two "
                        "gradient passes per step; --prior-steps/--model-steps are then unused) "
                        "instead of alternating steps")
    g.add_argument("--hyper-fit-every", type=int, default=1,
                   help="ladder: epochs between fast (warm-started) fits of the hyper prior")
    g.add_argument("--hyper-accurate-every", type=int, default=10,
                   help="ladder: epochs between accurate fits (fresh, with pruning) of the hyper prior")
    g.add_argument("--hyper-encodings", type=int, default=10000,
                   help="ladder: training images whose samples t ~ q(t|z) each hyper-prior fit uses")
    g.add_argument("--architecture", choices=["mlp", "gated", "conv"], default="mlp",
                   help="mlp: ReLU MLP; gated: the VampPrior paper's gated MLP; conv: small conv nets")
    g.add_argument("--hidden-units", type=int, nargs="+", default=[256, 256, 256, 256],
                   help="hidden widths of the MLPs (conv: width of the dense layer); default FC 256x4 "
                        "as the VHP paper's Table 3 (the VampPrior paper's gated MLP: --architecture "
                        "gated --hidden-units 300 300)")
    g.add_argument("--latent-dim", type=int, default=2,
                   help="dimension D of z (hvae: of z2, the latent the prior models)")
    g.add_argument("--prior", choices=["standard_normal", "mog", "vampprior", "vhp"],
                   default="vhp",
                   help="the prior p(z); vhp: hierarchical prior of Klushyn et al. 2019")
    g.add_argument("--components", type=int, default=50,
                   help="K: mixture components (mog) or pseudo-inputs (vampprior; the paper uses 500)")
    g.add_argument("--mog-covariance", choices=list(MixtureOfGaussiansPrior.COVARIANCES),
                   default="diagonal", help="mog: diagonal (the papers') or full covariances")
    g.add_argument("--pseudo-init", choices=["noise", "data"], default="noise",
                   help="vampprior: initialise pseudo-inputs from N(0.05, 0.01) or random training images")
    g.add_argument("--fixed-pseudo-inputs", action="store_true",
                   help="vampprior: keep data-initialised pseudo-inputs fixed ('VampPrior data')")
    g.add_argument("--learn-weights", action="store_true",
                   help="learn the mixture weights (weighted VampPrior, Eq. 16; MoG weights)")
    g.add_argument("--vhp-hidden-units", type=int, nargs="+", default=[256, 256, 256, 256],
                   help="vhp: hidden widths of p(z|ζ) and q(ζ|z) (Table 3: FC 256x4)")
    g.add_argument("--vhp-samples", type=int, default=16,
                   help="vhp: importance samples K of ζ in the bound on log p(z) (Eq. 8)")
    g.add_argument("--vhp-bound", choices=["iw", "elbo"], default="iw",
                   help="vhp: importance-weighted bound (Eq. 8) or plain ELBO second layer (App. B.4)")
    g.add_argument("--vhp-identity-scale", type=float, default=None,
                   help="vhp/ladder with --hyper-dim = --latent-dim: residual p(z|ζ), q(ζ|z) "
                        "starting as N(ζ, s²I), N(z, s²I) with this s (default: a random start)")
    g.add_argument("--likelihood", choices=["bernoulli", "gaussian", "laplace"], default=None,
                   help="p(x|z) (default: bernoulli for binarised data, gaussian otherwise)")
    g.add_argument("--scale", type=float, default=0.1, help="gaussian/laplace: (initial) scale")
    g.add_argument("--learn-scale", action=argparse.BooleanOptionalAction, default=True,
                   help="gaussian/laplace: learn the scale (one scalar, starting at --scale); "
                        "--no-learn-scale keeps it fixed at --scale")
    g = p.add_argument_group("objective and beta")
    g.add_argument("--objective", choices=["elbo", "iwae"], default="elbo",
                   help="ELBO with --num-samples samples or the IWAE bound with --num-samples samples")
    g.add_argument("--num-samples", type=int, default=1, help="samples of z per example in training")
    g.add_argument("--beta", choices=["constant", "warmup", "geco", "rewo", "rewo_sigmoid"],
                   default="rewo",
                   help="β controller: constant --beta-value; linear warm-up over --warmup-epochs; "
                        "GECO (Eq. 5); REWO (Alg. 1); rewo_sigmoid (App. B.1)")
    g.add_argument("--beta-value", type=float, default=1.0, help="constant β")
    g.add_argument("--warmup-epochs", type=int, default=10,
                   help="warm-up length in epochs (the VampPrior paper uses 100)")
    g.add_argument("--kappa", type=float, default=0.02,
                   help="geco/rewo: constraint E[C] <= κ² on the per-pixel squared error")
    g.add_argument("--nu", type=float, default=5.0, help="geco/rewo: β update rate ν")
    g.add_argument("--tau", type=float, default=3.0, help="rewo: slope τ of f_β")
    g.add_argument("--alpha", type=float, default=0.99, help="geco/rewo: running-average weight α")
    g.add_argument("--initial-beta", type=float, default=0.1,
                   help="geco/rewo/rewo_sigmoid: initial β (REWO Alg. 1 asks for β ≪ 1; 0.1 is what "
                        "the pendulum runs of benchmarks/README.md use)")
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=int, default=30, help="training epochs")
    g.add_argument("--batch-size", type=int, default=64, help="minibatch size")
    g.add_argument("--learning-rate", type=float, default=1e-3,
                   help="Adam learning rate (VHP paper: 1e-4; 1e-3 reaches the same state in a "
                        "CPU-sized budget)")
    g.add_argument("--lr-warmup-steps", type=int, default=3000,
                   help="ramp the learning rate linearly from --lr-warmup-start x --learning-rate to "
                        "--learning-rate over this many optimiser steps (0: constant rate); keeps "
                        "the pendulum's latent ring from folding, see trainers/learning_rate.py")
    g.add_argument("--lr-warmup-start", type=float, default=0.1,
                   help="the first step's learning rate as a fraction of --learning-rate, in (0, 1]")
    g.add_argument("--steps-per-execution", type=int, default=10,
                   help="train steps per tf.function call (cuts Python overhead); 1 under "
                        "--strategy mirrored/multi_worker (a Keras 3 limitation)")
    g.add_argument("--jit-compile", action="store_true",
                   help="compile train steps with XLA (not with --strategy mirrored/multi_worker)")
    g.add_argument("--seed", type=int, default=0, help="seed of weights, data order and sampling")
    g = p.add_argument_group("distribution")
    g.add_argument("--strategy", choices=list(STRATEGIES), default="default",
                   help="default: one device, no tf.distribute; mirrored: MirroredStrategy, one "
                        "synchronous replica per local GPU (or per logical CPU device, see "
                        "--logical-cpus); multi_worker: MultiWorkerMirroredStrategy across the "
                        "processes listed in the TF_CONFIG environment variable (start one process "
                        "per worker with the same flags; only the chief writes --run-dir). "
                        "--batch-size is the global batch, split evenly over the replicas; the "
                        "updates equal single-device training on the same batches")
    g.add_argument("--logical-cpus", type=int, default=None,
                   help="split the host CPU into N logical devices before TensorFlow starts, so "
                        "that --strategy mirrored runs N replicas on a CPU-only machine (they "
                        "share the cores: for testing the distributed path, not for speed); "
                        "default: leave the devices alone")
    g = p.add_argument_group("outputs")
    g.add_argument("--run-dir", default="runs/default",
                   help="output directory; an interrupted run in it resumes from its backup")
    g.add_argument("--nll-samples", type=int, default=1000,
                   help="importance samples per example for the final log-likelihood (papers: 5000)")
    g.add_argument("--nll-examples", type=int, default=500,
                   help="held-out examples for the final log-likelihood")
    g.add_argument("--no-export", action="store_true", help="skip the SavedModel export")
    g.add_argument("--verbose", type=int, default=1, choices=[0, 1, 2], help="Keras fit verbosity")
    return p


def parse_config(parser, argv=None):
    """Parses flags, merging a JSON --config file under the command-line values.

    Raises:
      FileNotFoundError / ValueError for a missing or malformed config file or unknown keys.
    """
    args = parser.parse_args(argv)
    if args.config:
        path = Path(args.config)
        if not path.is_file():
            raise FileNotFoundError(f"Expected a JSON config file. Received: --config {path} (no such file)")
        try:
            values = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"Expected a JSON object in {path}. Received invalid JSON: {err}") from err
        known = set(vars(args))
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"Expected config keys among the flags {sorted(known)}. Received unknown "
                             f"keys {unknown} in {path}")
        parser.set_defaults(**values)
        args = parser.parse_args(argv)
    config = vars(args)
    for key in ("epochs", "batch_size", "latent_dim", "components", "num_samples", "vhp_samples",
                "steps_per_execution", "nll_samples", "nll_examples"):
        check_positive_int(key, config[key])
    if config.get("logical_cpus") is not None:
        check_positive_int("logical_cpus", config["logical_cpus"])
    if config.get("z1_dim") is not None:
        check_positive_int("z1_dim", config["z1_dim"])
    model = config.get("model", "vae")
    for key in ("temperature", "min_temperature"):
        if key in config:
            check_positive_float(key, config[key])
    if config.get("temperature_rate", 0.0) < 0:
        raise ValueError(f"Expected --temperature-rate >= 0. Received: {config['temperature_rate']}")
    if model == "ladder":
        if config["prior"] != "vhp":
            raise ValueError(f"Expected --prior vhp (the default) with --model ladder: its prior is "
                             f"the prior VAE of the --vhp-* flags. Received: --prior {config['prior']}")
        for key in ("max_components", "prior_steps", "model_steps", "hyper_encodings"):
            check_positive_int(key, config[key])
        for key in ("hyper_fit_every", "hyper_accurate_every"):
            check_non_negative_int(key, config[key])
        if config.get("hyper_concentration") is not None:
            check_positive_float("hyper_concentration", config["hyper_concentration"])
    if config.get("hyper_dim") is not None:
        check_positive_int("hyper_dim", config["hyper_dim"])
    if model in ("hvae", "cpvae") and config["architecture"] == "conv":
        raise ValueError(f"Expected --architecture mlp or gated with --model {model} (its "
                         f"conditionals are MLPs). Received: --architecture conv")
    if model == "cpvae" and config["prior"] not in ("mog", "vampprior"):
        raise ValueError(f"Expected --prior mog or vampprior with --model cpvae (p(c) p(z|c) are "
                         f"a mixture's weights and components). Received: --prior {config['prior']}")
    check_gmm_init_config(config)
    check_non_negative_int("warmup_epochs", config["warmup_epochs"])
    check_non_negative_int("lr_warmup_steps", config["lr_warmup_steps"])
    learning_rate_for(config["learning_rate"], config["lr_warmup_steps"], config["lr_warmup_start"])
    # Built once here only to run their argument checks (κ, ν, τ, α, β₀, the decoder scale) before
    # any data is loaded; build_model builds the ones it trains.
    _beta_controller(config, steps_per_epoch=1)
    _likelihood({**config, "likelihood": config["likelihood"] or "gaussian"})   # checks --scale
    return config


def _networks(config, shape):
    d, units = config["latent_dim"], config["hidden_units"]
    if config["architecture"] == "conv":
        return (ConvEncoder(d, shape, hidden_units=units[0]), ConvDecoder(d, shape, hidden_units=units[0]))
    gated = config["architecture"] == "gated"
    return (MLPEncoder(d, shape, hidden_units=units, gated=gated),
            MLPDecoder(d, shape, hidden_units=units, gated=gated))


def _prior(config, shape, train_images):
    d, k = config["latent_dim"], config["components"]
    if config["prior"] == "standard_normal":
        return StandardNormalPrior(d)
    if config["prior"] == "vhp":
        hyper_prior, m, gated = None, config.get("hyper_dim"), False
        if config.get("model") == "ladder":
            m = m or max(1, d // 2)
            hyper_prior = VGMMHyperPrior(
                m, max_components=config["max_components"],
                weight_concentration_prior=config.get("hyper_concentration"))
            gated = config["architecture"] == "gated"   # VHP's networks stay plain (Table 3)
        return HierarchicalPrior(d, m, hidden_units=config["vhp_hidden_units"], gated=gated,
                                 num_samples=config["vhp_samples"], bound=config["vhp_bound"],
                                 hyper_prior=hyper_prior,
                                 identity_scale=config.get("vhp_identity_scale"))
    if config["prior"] == "mog":
        return MixtureOfGaussiansPrior(d, num_components=k, learn_weights=config["learn_weights"],
                                       covariance=config.get("mog_covariance", "diagonal"))
    prior = VampPrior(d, num_pseudo_inputs=k, input_shape_=shape, init=config["pseudo_init"],
                      learn_weights=config["learn_weights"],
                      trainable_pseudo_inputs=not config["fixed_pseudo_inputs"])
    if config["pseudo_init"] == "data":
        prior.initialize_from_data(train_images, seed=config["seed"])
    return prior


def _likelihood(config):
    """The likelihood layer named by config["likelihood"] (resolved by `load_data`)."""
    name = config["likelihood"]
    return get_likelihood(name, **({} if name == "bernoulli" else
                                   {"scale": config["scale"], "learn_scale": config["learn_scale"]}))


def _beta_controller(config, steps_per_epoch):
    name = config["beta"]
    if name == "warmup":
        return get_beta_controller("warmup", warmup_steps=config["warmup_epochs"] * steps_per_epoch)
    if name == "constant":
        return get_beta_controller("constant", beta=config["beta_value"])
    kwargs = dict(kappa=config["kappa"], nu=config["nu"], alpha=config["alpha"])
    if name != "geco":
        kwargs["tau"] = config["tau"]
    if config.get("initial_beta") is not None:
        kwargs["initial_beta"] = config["initial_beta"]
    return get_beta_controller(name, **kwargs)


def build_model(config, shape, train_images, steps_per_epoch, strategy=None):
    """Builds and compiles the VAE described by `config` for images of `shape`.

    Args:
      config: a dict from `parse_config`.
      shape: (H, W, C) of one image.
      train_images: [N, H, W, C] training images (for data-initialised pseudo-inputs).
      steps_per_epoch: converts --warmup-epochs to steps (global batches per epoch).
      strategy: a `tf.distribute.Strategy` (see `trainers.distribute.get_strategy`); the model
        is created, built and compiled in its scope so that Keras' fit runs the train step in
        every replica. None: the current (default) strategy. Under a strategy the model is
        compiled with steps_per_execution=1 (with a warning) and --jit-compile is an error;
        both are Keras 3 limitations (`trainers.distribute.is_distributed`).

    Raises:
      ValueError: for --jit-compile under a strategy.
    """
    strategy = strategy if strategy is not None else tf.distribute.get_strategy()
    steps_per_execution = config["steps_per_execution"]
    if is_distributed(strategy):
        if config["jit_compile"]:
            raise ValueError("Expected --jit-compile off with --strategy mirrored/multi_worker: XLA "
                             "cannot compile a step whose variables live on several devices. "
                             "Received: --jit-compile")
        if steps_per_execution > 1:
            warnings.warn(f"--steps-per-execution {steps_per_execution} -> 1 under a tf.distribute "
                          f"strategy (Keras 3's multi-step loop fails there, keras-team/keras#19246)",
                          stacklevel=2)
            steps_per_execution = 1
    with strategy.scope():
        return _build_model(config, shape, train_images, steps_per_epoch, steps_per_execution)


def _build_model(config, shape, train_images, steps_per_epoch, steps_per_execution):
    keras.utils.set_random_seed(config["seed"])
    # Layers draw their initialiser seeds when constructed: the VAE's networks come first, as
    # they always have, so that a seed gives the same weights as before.
    networks = (_networks(config, shape) if config.get("model", "vae") in ("vae", "ladder")
                else None)
    likelihood = _likelihood(config)
    beta = _beta_controller(config, steps_per_epoch)
    prior = _prior(config, shape, train_images)
    objective = get_objective(config["objective"], config["num_samples"])
    if config.get("model") == "cpvae":
        model = build_cpvae(shape, prior, likelihood, hidden_units=config["hidden_units"],
                            gated=config["architecture"] == "gated", objective=objective, beta=beta,
                            seed=config["seed"], initial_temperature=config["temperature"],
                            min_temperature=config["min_temperature"],
                            temperature_rate=config["temperature_rate"],
                            z_input=config.get("cpvae_z_input", "probabilities"),
                            decoder_input=config.get("cpvae_decoder_input", "z_and_c"))
    elif networks is None:
        model = build_hvae(shape, prior, likelihood,
                           latent_dims=(config.get("z1_dim") or config["latent_dim"],
                                        config["latent_dim"]),
                           hidden_units=config["hidden_units"][0],
                           gated=config["architecture"] == "gated", objective=objective, beta=beta,
                           seed=config["seed"])
    elif config.get("model") == "ladder":
        model = LaDDer(*networks, prior, likelihood, objective=objective, beta=beta,
                       seed=config["seed"],
                       schedule=BlockSchedule([("prior", config["prior_steps"]),
                                               ("model", config["model_steps"])],
                                              sweep=config.get("block_sweep", False)),
                       hyper_fit={"num_encodings": config["hyper_encodings"],
                                  "fast_every": config["hyper_fit_every"],
                                  "accurate_every": config["hyper_accurate_every"]})
    else:
        model = VAE(*networks, prior, likelihood, objective=objective, beta=beta,
                    seed=config["seed"])
    model.build((None,) + tuple(shape))
    if config.get("freeze_prior"):
        model.prior.trainable = False        # its block of the block optimiser is then empty
    rate = learning_rate_for(config["learning_rate"], config.get("lr_warmup_steps", 0),
                             config.get("lr_warmup_start", 0.1))
    model.compile(keras.optimizers.Adam(rate), jit_compile=config["jit_compile"],
                  steps_per_execution=steps_per_execution)
    return model
