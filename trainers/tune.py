"""Hyperparameter search for the VAE with KerasTuner, ending in a normal run directory.

    python -m trainers.tune --help
    python -m trainers.tune                                  # random search, 6 trials, pendulum
    python -m trainers.tune --tuner hyperband --epochs 9     # Hyperband, max_epochs = 9
    python -m trainers.tune --tune-objective loglik --priors mog vampprior

Searched: the prior (--priors) and its size K (mog/vampprior only), the latent size, the β
controller (--betas) and its κ, ν (geco/rewo only), and the learning rate (log-uniform). Every
other flag of `python -m trainers.train` is accepted and stays fixed for all trials.

The objective is the validation ELBO (val_elbo, best epoch) or, with --tune-objective loglik,
the importance-sampled log-likelihood of a validation subset after training (val_loglik).
After the search the best configuration is re-trained with `trainers.train.train`, which writes
the run directory (model.keras, saved_model/, config.json, metrics.json, history.json, logs/,
plots); tuning_summary.json there lists every trial. KerasTuner's own state lives in
--directory/--project-name: an interrupted search resumes unless --overwrite is given.
"""

import math
import sys
import time
from pathlib import Path

import keras
import keras_tuner as kt
import numpy as np

from tfpriors._validation import check_non_negative_int, check_positive_int
from trainers.cli import run
from trainers.config import build_model, build_parser, parse_config
from trainers.cpvae_init import gmm_init_callbacks
from trainers.run_io import (load_data, print_summary, training_dataset, validation_dataset,
                             write_json)
from trainers.search_space import CONTROLLERS, PRIORS, SearchSpace, check_choices

__all__ = ["SearchSpace", "VAEHyperModel", "build_tune_parser", "parse_tune_config",
           "validate_tune_config", "active_values", "make_tuner", "tuning_summary", "tune", "main"]

OBJECTIVES = {"elbo": "val_elbo", "loglik": "val_loglik"}
TUNERS = ("random", "hyperband")

# Train flags whose defaults differ for a search: small enough to finish in a few minutes on CPU.
TUNE_DEFAULTS = {"epochs": 5, "num_examples": 3000, "run_dir": "runs/tuned", "verbose": 2}

# Notes appended to the help of train flags that the search overrides or reinterprets.
_SEARCHED_FLAG_NOTES = {
    "prior": "tune: searched over --priors",
    "components": "tune: searched over --components-range for mog/vampprior",
    "latent_dim": "tune: searched over --latent-dim-range",
    "beta": "tune: searched over --betas",
    "kappa": "tune: searched over --kappa-range for geco/rewo",
    "nu": "tune: searched over --nu-range for geco/rewo",
    "learning_rate": "tune: searched over --learning-rate-range",
    "epochs": "tune: epochs of every trial and of the final re-training; hyperband: max_epochs",
    "run_dir": "tune: the best configuration is re-trained here; tuning_summary.json is written here",
}


# ---------------------------------------------------------------------------------- flags
def build_tune_parser():
    """The train flags plus the search-space and tuner flags; every flag documents itself."""
    parser = build_parser(__doc__.splitlines()[0])
    for action in parser._actions:
        if action.dest in _SEARCHED_FLAG_NOTES:
            action.help = f"{action.help} [{_SEARCHED_FLAG_NOTES[action.dest]}]"
    _add_search_space_flags(parser.add_argument_group("search space"))
    _add_tuner_flags(parser.add_argument_group("search"))
    parser.set_defaults(**TUNE_DEFAULTS)
    return parser


def _add_search_space_flags(g):
    g.add_argument("--priors", nargs="+", choices=PRIORS, default=list(SearchSpace.priors),
                   help="priors to choose from (hyperparameter 'prior')")
    g.add_argument("--components-range", nargs=2, type=int, metavar=("MIN", "MAX"),
                   default=list(SearchSpace.components),
                   help="mog/vampprior: K components or pseudo-inputs, log-uniform in [MIN, MAX] "
                        "(hyperparameter 'components'; MIN = MAX fixes it)")
    g.add_argument("--latent-dim-range", nargs=2, type=int, metavar=("MIN", "MAX"),
                   default=list(SearchSpace.latent_dim),
                   help="latent size D, uniform integer in [MIN, MAX] (hyperparameter 'latent_dim')")
    g.add_argument("--betas", nargs="+", choices=CONTROLLERS, default=list(SearchSpace.betas),
                   help="β controllers to choose from (hyperparameter 'beta'); constant uses "
                        "--beta-value, warmup uses --warmup-epochs")
    g.add_argument("--kappa-range", nargs=2, type=float, metavar=("MIN", "MAX"),
                   default=list(SearchSpace.kappa),
                   help="geco/rewo: κ, log-uniform in [MIN, MAX] (hyperparameter 'kappa')")
    g.add_argument("--nu-range", nargs=2, type=float, metavar=("MIN", "MAX"),
                   default=list(SearchSpace.nu),
                   help="geco/rewo: β update rate ν, log-uniform in [MIN, MAX] (hyperparameter 'nu')")
    g.add_argument("--learning-rate-range", nargs=2, type=float, metavar=("MIN", "MAX"),
                   default=list(SearchSpace.learning_rate),
                   help="Adam learning rate, log-uniform in [MIN, MAX] (hyperparameter 'learning_rate')")


def _add_tuner_flags(g):
    g.add_argument("--tuner", choices=TUNERS, default="random",
                   help="random: random search of --max-trials trials; hyperband: Hyperband with "
                        "max_epochs = --epochs, capped at --max-trials trials")
    g.add_argument("--max-trials", type=int, default=6,
                   help="number of trials (hyperband: upper bound on its schedule's trials)")
    g.add_argument("--hyperband-factor", type=int, default=3,
                   help="hyperband: reduction factor of successive halving (>= 2)")
    g.add_argument("--executions-per-trial", type=int, default=1,
                   help="trainings per hyperparameter set; their objective values are averaged")
    g.add_argument("--tune-objective", choices=sorted(OBJECTIVES), default="elbo",
                   help="elbo: maximise the validation ELBO (val_elbo, best epoch); loglik: maximise "
                        "the importance-sampled log p(x) of --loglik-subset validation images after "
                        "training (val_loglik). Named so because --objective is the training bound")
    g.add_argument("--loglik-samples", type=int, default=100,
                   help="loglik objective: importance samples per validation image")
    g.add_argument("--loglik-subset", type=int, default=200,
                   help="loglik objective: number of validation images (the first ones)")
    g.add_argument("--directory", default=None,
                   help="KerasTuner directory of trial states and checkpoints; None means <run-dir>/tuner")
    g.add_argument("--project-name", default="vae_search", help="KerasTuner project name in --directory")
    g.add_argument("--overwrite", action="store_true",
                   help="start the search afresh instead of resuming the project in --directory")


# ---------------------------------------------------------------------------------- validation
def validate_tune_config(config):
    """Checks the tuner flags of a parsed config; returns it with the search space normalised.

    Raises:
      ValueError naming the flag, what was expected and what was received.
    """
    config = dict(config)
    check_non_negative_int("seed", config["seed"])
    for key in ("max_trials", "executions_per_trial", "loglik_samples", "loglik_subset"):
        check_positive_int(key, config[key])
    if check_positive_int("hyperband_factor", config["hyperband_factor"]) < 2:
        raise ValueError(f"Expected `hyperband_factor` >= 2. Received: "
                         f"hyperband_factor={config['hyperband_factor']}")
    check_choices("tuner", [config["tuner"]], TUNERS)
    check_choices("tune_objective", [config["tune_objective"]], sorted(OBJECTIVES))
    space = SearchSpace.from_config(config)
    config.update(priors=list(space.priors), betas=list(space.betas),
                  components_range=list(space.components), latent_dim_range=list(space.latent_dim),
                  kappa_range=list(space.kappa), nu_range=list(space.nu),
                  learning_rate_range=list(space.learning_rate))
    if config["directory"] is None:
        config["directory"] = str(Path(config["run_dir"]) / "tuner")
    return config


def parse_tune_config(argv=None):
    """Parses and validates the tune flags (JSON --config merged under them), like parse_config."""
    return validate_tune_config(parse_config(build_tune_parser(), argv))


# ---------------------------------------------------------------------------------- hypermodel
class VAEHyperModel(kt.HyperModel):
    """Builds the VAE of one trial: the base config with the trial's hyperparameters.

    Args:
      base_config: a config dict with resolved likelihood/binarization (`run_io.load_data`).
      space: a SearchSpace.
      splits: the data set's DatasetSplits (image shape, training images for data-initialised
        pseudo-inputs, validation images for the loglik objective).
      objective: "elbo" (return the Keras History) or "loglik" (also estimate log p(x)).
      loglik_samples, loglik_subset: importance samples and validation images of the estimate.
    """

    def __init__(self, base_config, space, splits, objective="elbo", loglik_samples=100,
                 loglik_subset=200):
        super().__init__(name="vae")
        self.base_config = dict(base_config)
        self.space = space
        self.splits = splits
        self.objective = check_choices("objective", [objective], sorted(OBJECTIVES))[0]
        self.loglik_samples = check_positive_int("loglik_samples", loglik_samples)
        self.loglik_subset = check_positive_int("loglik_subset", loglik_subset)
        self.steps_per_epoch = math.ceil(len(splits.train_images) / self.base_config["batch_size"])

    def trial_config(self, hp):
        """The full config of the trial described by `hp`."""
        config = dict(self.base_config)
        config.update(self.space.declare(hp))
        return config

    def build(self, hp):
        """The compiled VAE of this trial, called once on a zero batch so that every variable
        exists before KerasTuner checkpoints or restores its weights."""
        config = self.trial_config(hp)
        shape = tuple(self.splits.image_shape)
        model = build_model(config, shape, self.splits.train_images, self.steps_per_epoch)
        model(np.zeros((1,) + shape, np.float32))
        model.prior_distribution()
        return model

    def fit(self, hp, model, *args, **kwargs):
        """Trains the trial's model; a NaN/inf loss fails the trial.

        Returns the History (objective val_elbo) or, for the loglik objective, a dict of the
        last epoch's metrics plus val_loglik, the mean importance-sampled log p(x).
        """
        kwargs["callbacks"] = gmm_init_callbacks(self.trial_config(hp), self.splits.train_images) + \
            list(kwargs.get("callbacks") or [])
        history = model.fit(*args, **kwargs)
        losses = history.history.get("loss", [])
        if not losses or not np.all(np.isfinite(losses)):
            raise kt.errors.FailedTrialError(f"Training loss became NaN/inf with hyperparameters "
                                             f"{active_values(hp)}")
        if self.objective == "elbo":
            return history
        return self._loglik_results(model, history)

    def _loglik_results(self, model, history):
        from tfpriors.evaluation import log_likelihood
        images = self.splits.val_images[:self.loglik_subset]
        estimate = log_likelihood(model, images, num_samples=self.loglik_samples,
                                  seed=self.base_config["seed"])
        if not np.isfinite(estimate.mean):
            raise kt.errors.FailedTrialError("The validation log-likelihood is NaN/inf")
        results = {key: float(values[-1]) for key, values in history.history.items()}
        results["val_loglik"] = float(estimate.mean)
        return results


def active_values(hp):
    """The values of the active hyperparameters (plus tuner/* bookkeeping values of Hyperband)."""
    space_names = {h.name for h in hp.space}
    return {name: value for name, value in hp.values.items()
            if name not in space_names or hp.is_active(name)}


# ---------------------------------------------------------------------------------- search
def make_tuner(hypermodel, config):
    """The RandomSearch or Hyperband tuner described by the tune config."""
    # KerasTuner replaces a seed of 0 by a random one (`seed or random.randint(...)`): offset it
    # so that --seed 0, the default, also gives a reproducible sequence of trials.
    common = dict(objective=kt.Objective(OBJECTIVES[config["tune_objective"]], direction="max"),
                  executions_per_trial=config["executions_per_trial"], seed=config["seed"] + 1,
                  directory=config["directory"], project_name=config["project_name"],
                  overwrite=config["overwrite"])
    if config["tuner"] == "random":
        return kt.RandomSearch(hypermodel, max_trials=config["max_trials"], **common)
    tuner = kt.Hyperband(hypermodel, max_epochs=config["epochs"], factor=config["hyperband_factor"],
                       **common)
    tuner.oracle.max_trials = config["max_trials"]   # the oracle stops creating trials beyond it
    return tuner


def _best_trial(tuner):
    """The best completed trial; RuntimeError with the failures' last lines if there is none."""
    best = tuner.oracle.get_best_trials(1)
    if best:
        return best[0]
    failures = [f"trial {t.trial_id} {t.status}: {_last_line(t.message)}"
                for t in tuner.oracle.trials.values()]
    raise RuntimeError("Expected at least one completed trial. Received none:\n  " +
                       "\n  ".join(failures or ["no trials were run"]))


def _last_line(message):
    lines = [line for line in (message or "").strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _finite_or_none(value):
    return float(value) if value is not None and np.isfinite(value) else None


def tuning_summary(tuner, best, config, search_seconds):
    """A JSON-serialisable record of the search: settings and every trial, best one flagged."""
    trials = []
    for trial_id in sorted(tuner.oracle.trials):
        trial = tuner.oracle.trials[trial_id]
        record = {"trial_id": trial_id, "hyperparameters": active_values(trial.hyperparameters),
                  "score": _finite_or_none(trial.score), "status": trial.status,
                  "best_step": trial.best_step, "best": trial_id == best.trial_id}
        if trial.message:
            record["message"] = _last_line(trial.message)
        trials.append(record)
    return {"tuner": config["tuner"],
            "objective": {"name": OBJECTIVES[config["tune_objective"]], "direction": "max"},
            "search_space": {key: config[key] for key in (
                "priors", "components_range", "latent_dim_range", "betas", "kappa_range",
                "nu_range", "learning_rate_range")},
            "max_trials": config["max_trials"], "epochs": config["epochs"],
            "search_seconds": search_seconds, "num_trials": len(trials),
            "best_trial_id": best.trial_id, "best_score": _finite_or_none(best.score),
            "best_hyperparameters": active_values(best.hyperparameters), "trials": trials}


def _train_config(config):
    """The winning config restricted to train's flags (config.json then works as train --config)."""
    train_keys = vars(build_parser("train").parse_args([])).keys()
    return {**{key: config[key] for key in train_keys}, "config": None}


def tune(config):
    """Runs the search, re-trains the best configuration into --run-dir and writes
    tuning_summary.json there. Returns (summary dict, metrics dict of the re-trained model)."""
    from trainers.train import train
    splits, config = load_data(config)
    hypermodel = VAEHyperModel(config, SearchSpace.from_config(config), splits,
                               objective=config["tune_objective"],
                               loglik_samples=config["loglik_samples"],
                               loglik_subset=config["loglik_subset"])
    tuner = make_tuner(hypermodel, config)
    start = time.perf_counter()
    tuner.search(training_dataset(splits, config), epochs=config["epochs"],
                 validation_data=validation_dataset(splits, 500),
                 callbacks=[keras.callbacks.TerminateOnNaN()], verbose=config["verbose"])
    search_seconds = time.perf_counter() - start
    best = _best_trial(tuner)
    winning = hypermodel.trial_config(best.hyperparameters.copy())
    summary = tuning_summary(tuner, best, config, search_seconds)
    summary["best_config"] = {key: winning[key] for key in summary["best_hyperparameters"]
                              if key in winning}
    run_dir = Path(config["run_dir"])
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / "tuning_summary.json", summary)     # kept if the re-training fails
    metrics = train(_train_config(winning))
    return summary, metrics


def main(argv=None):
    parser = build_tune_parser()
    try:
        config = validate_tune_config(parse_config(parser, argv))
    except (ValueError, FileNotFoundError) as err:
        parser.error(str(err))
    summary, metrics = tune(config)
    print(f"best trial {summary['best_trial_id']} ({summary['objective']['name']} = "
          f"{summary['best_score']}): {summary['best_hyperparameters']}")
    print(f"run directory: {config['run_dir']}")
    print_summary(metrics)
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
