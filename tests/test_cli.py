"""The train/evaluate commands: --help documents every flag, a tiny run writes a full run
directory, JSON configs merge under flags, bad configs are clear errors."""

import json

import numpy as np
import pytest

from trainers import evaluate, train
from trainers.config import build_parser, parse_config

TINY = ["--dataset", "pendulum", "--num-examples", "300", "--validation-size", "100", "--epochs", "2",
        "--batch-size", "50", "--hidden-units", "32", "--components", "5", "--nll-samples", "20",
        "--nll-examples", "30", "--verbose", "0", "--learn-scale"]


def test_help_documents_every_flag():
    parser = build_parser("train")
    undocumented = [a.dest for a in parser._actions if not a.help]
    assert not undocumented
    text = parser.format_help()
    for flag in ("--prior", "--beta", "--kappa", "--jit-compile", "--run-dir", "--config"):
        assert flag in text


def test_config_file_merges_under_flags(tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"epochs": 7, "latent_dim": 3}))
    config = parse_config(build_parser("t"), ["--config", str(cfg), "--epochs", "2"])
    assert config["epochs"] == 2 and config["latent_dim"] == 3
    cfg.write_text(json.dumps({"epochz": 7}))
    with pytest.raises(ValueError, match="unknown keys \\['epochz'\\]"):
        parse_config(build_parser("t"), ["--config", str(cfg)])
    with pytest.raises(FileNotFoundError, match="no such file"):
        parse_config(build_parser("t"), ["--config", str(tmp_path / "missing.json")])
    with pytest.raises(ValueError, match="Received: components=0"):
        parse_config(build_parser("t"), ["--components", "0"])


@pytest.mark.slow
def test_train_then_evaluate_writes_a_complete_run_directory(tmp_path):
    run_dir = tmp_path / "run"
    assert train.main(TINY + ["--run-dir", str(run_dir)]) == 0
    for name in ("model.keras", "config.json", "metrics.json", "history.json", "latent_space.png",
                 "training_curves.png", "reconstructions.png", "samples.png",
                 "saved_model/saved_model.pb"):
        assert (run_dir / name).exists(), name
    assert any((run_dir / "logs").rglob("events.out.tfevents.*"))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["log_likelihood"]["mean"] >= metrics["elbo"]["mean"] - 1.0
    probe = metrics["pendulum_ols_error"]                  # Table 1's probe on the held-out images
    assert 0.0 <= probe["error_rad"] <= np.pi and probe["num_eval"] == 100
    config = json.loads((run_dir / "config.json").read_text())
    assert config["blur"] == 1.5 and config["lr_warmup_steps"] == 3000       # the main job's defaults
    assert evaluate.main(["--run-dir", str(run_dir), "--num-samples", "20", "--examples", "10"]) == 0
    assert "log_likelihood" in json.loads((run_dir / "evaluation.json").read_text())
    with pytest.raises(FileNotFoundError, match="model.keras"):
        evaluate.main(["--run-dir", str(tmp_path / "nothing")])


@pytest.mark.slow
def test_train_accepts_vhp_prior_and_rewo_controller(tmp_path):
    run_dir = tmp_path / "vhp"
    args = TINY + ["--run-dir", str(run_dir), "--prior", "vhp", "--vhp-hidden-units", "16", "16",
                   "--vhp-samples", "4", "--beta", "rewo", "--kappa", "0.5", "--initial-beta", "0.01",
                   "--no-export", "--epochs", "1"]
    assert train.main(args) == 0
    config = json.loads((run_dir / "config.json").read_text())
    assert config["prior"] == "vhp" and config["beta"] == "rewo"
    history = json.loads((run_dir / "history.json").read_text())
    assert "constraint_average" in history and "prior_gate" in history
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert 0 < metrics["final_beta"] <= 1


@pytest.mark.slow
def test_train_runs_the_two_level_hvae_end_to_end(tmp_path):
    run_dir = tmp_path / "hvae"
    args = TINY + ["--run-dir", str(run_dir), "--model", "hvae", "--latent-dim", "3", "--z1-dim", "2",
                   "--architecture", "gated", "--prior", "vampprior", "--beta", "warmup",
                   "--warmup-epochs", "1", "--epochs", "1"]
    assert train.main(args) == 0
    from trainers import HVAE, load_model
    model = load_model(run_dir / "model.keras")
    assert isinstance(model, HVAE) and model.latent_dims == (2, 3) and model.latent_dim == 5
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert np.isfinite(metrics["log_likelihood"]["mean"])
    assert metrics["log_likelihood"]["mean"] >= metrics["elbo"]["mean"] - 1.0
    assert (run_dir / "saved_model" / "saved_model.pb").exists()
    with pytest.raises(ValueError, match="--model hvae.*--architecture conv"):
        parse_config(build_parser("t"), ["--model", "hvae", "--architecture", "conv"])
    with pytest.raises(ValueError, match="z1_dim"):
        parse_config(build_parser("t"), ["--model", "hvae", "--z1-dim", "0"])


@pytest.mark.slow
def test_train_runs_ladder_end_to_end_and_exports_it(tmp_path):
    run_dir = tmp_path / "ladder"
    args = TINY + ["--run-dir", str(run_dir), "--model", "ladder", "--latent-dim", "4",
                   "--hyper-dim", "2", "--max-components", "5", "--vhp-bound", "elbo",
                   "--vhp-samples", "1", "--vhp-hidden-units", "16", "--architecture", "gated",
                   "--beta", "constant", "--hyper-encodings", "200", "--hyper-accurate-every", "1",
                   "--block-sweep", "--hyper-concentration", "2.5", "--epochs", "2"]
    assert train.main(args) == 0
    from trainers import LaDDer, load_model
    model = load_model(run_dir / "model.keras")
    assert isinstance(model, LaDDer) and model.prior.hyper_latent_dim == 2 and model.schedule.sweep
    assert model.prior.innermost_hyper_prior.weight_concentration_prior == 2.5
    assert model.cluster(np.zeros((3, 16, 16, 1), np.float32)).shape == (3, 5)
    assert int(model.prior.innermost_hyper_prior.fits.numpy()) == 1    # epoch 1 starts with one
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert np.isfinite(metrics["log_likelihood"]["mean"])
    assert (run_dir / "saved_model" / "saved_model.pb").exists()
    with pytest.raises(ValueError, match="--prior vhp"):
        parse_config(build_parser("t"), ["--model", "ladder", "--prior", "mog"])
    with pytest.raises(ValueError, match="max_components"):
        parse_config(build_parser("t"), ["--model", "ladder", "--max-components", "0"])
    with pytest.raises(ValueError, match="hyper_concentration"):
        parse_config(build_parser("t"), ["--model", "ladder", "--hyper-concentration", "0"])


def test_the_identity_start_flag_reaches_the_hierarchical_prior():
    from trainers.config import build_model
    for model in ("vae", "ladder"):
        config = parse_config(build_parser("t"), ["--model", model, "--prior", "vhp",
                                                  "--latent-dim", "3", "--hyper-dim", "3",
                                                  "--vhp-identity-scale", "0.2",
                                                  "--likelihood", "gaussian"])
        built = build_model(config, (16, 16, 1), np.zeros((20, 16, 16, 1), np.float32), 10)
        assert built.prior.identity_scale == 0.2
    config = parse_config(build_parser("t"), ["--model", "ladder", "--latent-dim", "4",
                                              "--vhp-identity-scale", "0.2",
                                              "--likelihood", "gaussian"])
    with pytest.raises(ValueError, match="hyper_latent_dim = latent_dim = 4"):
        build_model(config, (16, 16, 1), np.zeros((20, 16, 16, 1), np.float32), 10)


@pytest.mark.slow
def test_train_runs_the_cpvae_with_cluster_metrics(tmp_path):
    run_dir = tmp_path / "cpvae"
    args = ["--dataset", "digits", "--epochs", "1", "--batch-size", "50", "--hidden-units", "16",
            "--latent-dim", "2", "--model", "cpvae", "--prior", "mog", "--components", "10",
            "--beta", "constant", "--nll-samples", "10", "--nll-examples", "20", "--verbose", "0",
            "--run-dir", str(run_dir)]
    assert train.main(args) == 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert 0.0 <= metrics["clustering"]["accuracy"] <= 1.0
    assert (run_dir / "component_samples.png").exists()        # one row per category
    # the paper's head: q(z|x) is one diagonal Gaussian, measured against the prior's marginal p(z)
    assert len(metrics["kl_per_dimension"]["per_dimension"]) == 2
    assert metrics["kl_per_dimension"]["reference"] == "prior_marginal_mixture"
    from trainers import CPVAE, load_model
    model = load_model(run_dir / "model.keras")
    assert isinstance(model, CPVAE) and float(model.aggregated_posterior.numpy().sum()) == pytest.approx(1.0)
    assert model.z_input == "probabilities"
    with pytest.raises(ValueError, match="--prior mog or vampprior with --model cpvae"):
        parse_config(build_parser("t"), ["--model", "cpvae", "--prior", "vhp"])


@pytest.mark.slow
def test_train_freezes_the_prior_at_its_initialisation(tmp_path):
    """--freeze-prior: the prior's weights stay those a fresh build with the same seed draws, the
    rest of the model trains; with --cpvae-z-input category q(z|x) is a mixture over c."""
    run_dir = tmp_path / "frozen"
    args = ["--dataset", "digits", "--epochs", "1", "--batch-size", "50", "--hidden-units", "16",
            "--latent-dim", "2", "--model", "cpvae", "--prior", "mog", "--components", "4",
            "--beta", "constant", "--nll-samples", "10", "--nll-examples", "20", "--verbose", "0",
            "--freeze-prior", "--cpvae-z-input", "category", "--run-dir", str(run_dir)]
    assert train.main(args) == 0
    from trainers import load_model
    from trainers.config import build_model
    from trainers.run_io import load_data
    trained = load_model(run_dir / "model.keras")
    config = parse_config(build_parser("t"), args)
    splits, config = load_data(config)
    fresh = build_model(config, splits.image_shape, splits.train_images, 10)
    assert trained.z_input == "category" and not trained.prior.trainable_variables
    for before, after in zip(fresh.prior.weights, trained.prior.weights):
        np.testing.assert_array_equal(before.numpy(), after.numpy())
    assert not np.allclose(fresh.cluster_head.kernel.numpy(), trained.cluster_head.kernel.numpy())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["kl_per_dimension"] == {"skipped": "the posterior q(z|x) is not a diagonal Gaussian"}
