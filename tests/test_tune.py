"""The tune command: --help documents every flag, bad search settings are clear errors, the
HyperModel builds what the hyperparameters say, and tiny random/Hyperband searches end in a
run directory with a loadable model, a SavedModel and tuning_summary.json."""

import json
import re

import keras
import keras_tuner as kt
import numpy as np
import pytest
import tensorflow as tf

from tfpriors.priors import HierarchicalPrior, MixtureOfGaussiansPrior, StandardNormalPrior, VampPrior
from trainers import GECO, REWO, ConstantBeta, LinearWarmup, tune
from trainers.config import build_parser
from trainers.run_io import load_data

# Digits (1,500 8x8 training images), one or two epochs, tiny networks and evaluation.
TINY = ["--dataset", "digits", "--epochs", "1", "--hidden-units", "16", "--vhp-hidden-units", "8", "8",
        "--vhp-samples", "2", "--components-range", "3", "6", "--latent-dim-range", "2", "3",
        "--nll-samples", "10", "--nll-examples", "20", "--verbose", "0"]


def _hypermodel(tmp_path, *flags):
    config = tune.parse_tune_config(TINY + ["--run-dir", str(tmp_path / "run"), *flags])
    splits, config = load_data(config)
    return tune.VAEHyperModel(config, tune.SearchSpace.from_config(config), splits), config


def _set(hypermodel, **values):
    """HyperParameters with the search space declared and the given values chosen."""
    hp = kt.HyperParameters()
    hypermodel.space.declare(hp)
    hp.values.update(values)
    return hp


def test_help_documents_every_flag_and_accepts_every_train_flag():
    parser = tune.build_tune_parser()
    assert not [a.dest for a in parser._actions if not a.help]
    train_flags = {a.dest for a in build_parser("train")._actions}
    assert train_flags <= {a.dest for a in parser._actions}
    text = parser.format_help()
    for flag in ("--priors", "--components-range", "--latent-dim-range", "--betas", "--kappa-range",
                 "--nu-range", "--learning-rate-range", "--tuner", "--max-trials", "--tune-objective",
                 "--loglik-samples", "--loglik-subset", "--directory", "--project-name", "--overwrite",
                 "--executions-per-trial", "--hyperband-factor", "--seed", "--epochs"):
        assert flag in text
    assert "searched over --priors" in text       # the overridden train flags say so


def test_bad_search_settings_are_clear_errors(tmp_path, capsys):
    cases = [(["--max-trials", "0"], "Received: max_trials=0"),
             (["--latent-dim-range", "5", "2"], "MIN <= MAX. Received: MIN=5 > MAX=2"),
             (["--learning-rate-range", "0", "1e-3"], "learning_rate_range MIN"),
             (["--kappa-range", "0.3", "0.1"], "kappa_range"),
             (["--components-range", "0", "4"], "components_range MIN"),
             (["--hyperband-factor", "1"], "hyperband_factor` >= 2"),
             (["--executions-per-trial", "0"], "executions_per_trial"),
             (["--loglik-samples", "0"], "loglik_samples")]
    for flags, message in cases:
        with pytest.raises(ValueError, match=re.escape(message)):
            tune.parse_tune_config(flags)
    cfg = tmp_path / "c.json"
    for key, value, message in (("priors", [], "at least one value in `priors`"),
                                ("betas", ["geco", "annealing"], "Received: \\['annealing'\\]"),
                                ("nu_range", [1.0], "two bounds")):
        cfg.write_text(json.dumps({key: value}))
        with pytest.raises(ValueError, match=message):
            tune.parse_tune_config(["--config", str(cfg)])
    with pytest.raises(SystemExit) as exit_info:     # the CLI reports them as usage errors
        tune.main(["--max-trials", "0"])
    assert exit_info.value.code == 2
    assert "Expected `max_trials` to be a positive int" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        tune.main(["--priors"])                       # argparse: expected at least one argument


def test_hypermodel_builds_the_sampled_prior_and_controller(tmp_path):
    hypermodel, config = _hypermodel(tmp_path, "--betas", "constant", "warmup", "geco", "rewo")
    cases = [
        (dict(prior="standard_normal", latent_dim=2, beta="constant", learning_rate=1e-3),
         StandardNormalPrior, ConstantBeta),
        (dict(prior="mog", components=5, latent_dim=3, beta="geco", kappa=0.05, nu=2.0,
              learning_rate=2e-4), MixtureOfGaussiansPrior, GECO),
        (dict(prior="vampprior", components=4, latent_dim=2, beta="rewo", kappa=0.1, nu=7.0,
              learning_rate=5e-4), VampPrior, REWO),
        (dict(prior="vhp", latent_dim=3, beta="warmup", learning_rate=1e-4), HierarchicalPrior,
         LinearWarmup),
    ]
    for values, prior_class, controller_class in cases:
        model = hypermodel.build(_set(hypermodel, **values))
        assert type(model.prior) is prior_class and type(model.beta_controller) is controller_class
        assert model.latent_dim == values["latent_dim"]
        rate = model.optimizer.get_config()["optimizer"]["config"]["learning_rate"]  # the warm-up schedule's peak
        peak = rate["config"]["peak"] if isinstance(rate, dict) else rate
        assert np.isclose(peak, values["learning_rate"])
        size = getattr(model.prior, "num_components", getattr(model.prior, "num_pseudo_inputs", None))
        assert size == values.get("components")
        if "kappa" in values:
            assert (model.beta_controller.kappa, model.beta_controller.nu) == (values["kappa"], values["nu"])
    # Conditional hyperparameters: K only for mog/vampprior, κ and ν only for geco/rewo.
    hp = _set(hypermodel, prior="standard_normal", components=5, beta="constant", kappa=0.05)
    active = tune.active_values(hp)
    assert "components" not in active and "kappa" not in active and "nu" not in active
    assert hypermodel.trial_config(hp)["components"] == config["components"]


def test_same_seed_gives_the_same_trials(tmp_path):
    hypermodel, config = _hypermodel(tmp_path, "--betas", "constant", "--priors", "standard_normal",
                                     "mog", "--max-trials", "3")

    def first_trials(name):
        tuner = tune.make_tuner(hypermodel, {**config, "project_name": name, "overwrite": True})
        return [tuner.oracle.create_trial(f"t{i}").hyperparameters.values for i in range(3)]

    assert first_trials("a") == first_trials("b")


def _check_run_directory(run_dir, expected_trials, objective):
    summary = json.loads((run_dir / "tuning_summary.json").read_text())
    assert summary["objective"] == {"name": objective, "direction": "max"}
    assert summary["num_trials"] == len(summary["trials"]) == expected_trials
    best = [t for t in summary["trials"] if t["best"]]
    assert len(best) == 1 and best[0]["trial_id"] == summary["best_trial_id"]
    scores = [t["score"] for t in summary["trials"] if t["status"] == "COMPLETED"]
    assert best[0]["score"] == summary["best_score"] == max(scores)
    config = json.loads((run_dir / "config.json").read_text())
    for key, value in summary["best_config"].items():
        assert config[key] == value
    assert "tuner" not in config and "priors" not in config     # a plain train config
    model = keras.saving.load_model(run_dir / "model.keras")
    assert model.latent_dim == config["latent_dim"]
    assert "log_likelihood" in json.loads((run_dir / "metrics.json").read_text())
    return summary, config


@pytest.mark.slow
def test_random_search_writes_a_run_directory_and_summary(tmp_path):
    run_dir = tmp_path / "run"
    assert tune.main(TINY + ["--run-dir", str(run_dir), "--max-trials", "2", "--tuner", "random"]) == 0
    summary, config = _check_run_directory(run_dir, 2, "val_elbo")
    assert {t["status"] for t in summary["trials"]} == {"COMPLETED"}
    assert (run_dir / "tuner" / "vae_search" / "oracle.json").is_file()
    sample = tf.saved_model.load(str(run_dir / "saved_model")).signatures["sample"]
    images = sample(num_samples=tf.constant(3), seed=tf.constant([1, 2]))["images"]
    assert images.shape == (3, 8, 8, 1)


@pytest.mark.slow
def test_hyperband_with_loglik_objective(tmp_path):
    run_dir = tmp_path / "run"
    # max_epochs 2, factor 2: two 1-epoch trials, the better one continued to 2 epochs (from its
    # checkpoint), then a fresh 2-epoch bracket, cut at --max-trials 3.
    args = TINY + ["--run-dir", str(run_dir), "--tuner", "hyperband", "--epochs", "2",
                   "--hyperband-factor", "2", "--max-trials", "3", "--tune-objective", "loglik",
                   "--loglik-samples", "5", "--loglik-subset", "20", "--no-export",
                   "--priors", "mog", "vampprior", "--betas", "constant", "geco"]
    assert tune.main(args) == 0
    summary, config = _check_run_directory(run_dir, 3, "val_loglik")
    assert config["prior"] in ("mog", "vampprior") and config["beta"] in ("constant", "geco")
    epochs = sorted(t["hyperparameters"]["tuner/epochs"] for t in summary["trials"])
    assert epochs == [1, 1, 2]
    assert all(t["score"] is not None for t in summary["trials"])


def test_a_trial_runs_the_cpvae_gmm_initialisation(tmp_path, monkeypatch):
    import trainers.cpvae_init as cpvae_init
    calls = []
    original = cpvae_init.initialize_from_gmm
    monkeypatch.setattr(cpvae_init, "initialize_from_gmm",
                        lambda model, images, **kw: calls.append(len(images)) or original(model, images, **kw))
    hypermodel, config = _hypermodel(tmp_path, "--model", "cpvae", "--prior", "mog", "--priors", "mog",
                                     "--architecture", "gated", "--cpvae-gmm-init-epoch", "1")
    hp = _set(hypermodel, prior="mog", components=3, latent_dim=2, beta="warmup", learning_rate=1e-3)
    model = hypermodel.build(hp)
    x = hypermodel.splits.train_images[:256]
    hypermodel.fit(hp, model, x, batch_size=128, epochs=1, verbose=0)
    assert calls == [len(hypermodel.splits.train_images)]
