"""benchmarks/cpvae_mnist.py and benchmarks/cpvae_latent_gmm.py end to end on synthetic IDX files."""

import json

import pytest

from tests.helpers import load_script
from tests.test_benchmark_mnist_table1 import _fake_mnist


@pytest.mark.slow
def test_a_seed_records_its_clustering_and_the_gmm_probe_reads_its_model(tmp_path, capsys):
    _fake_mnist(tmp_path)
    out = tmp_path / "out"
    mnist = load_script("benchmarks/cpvae_mnist.py")
    assert mnist.main(["--data-dir", str(tmp_path), "--out-dir", str(out), "--seeds", "3",
                       "--epochs", "1", "--warmup-epochs", "1", "--nll-samples", "2",
                       "--nll-examples", "4", "--verbose", "0"]) == 0
    config = json.loads((out / "seed3" / "config.json").read_text())
    assert config["cpvae_z_input"] == "probabilities" and config["components"] == 10
    summary = json.loads((out / "results.json").read_text())
    seed = summary["seeds"]["3"]
    assert set(summary["seeds"]) == {"3"} and 0.0 < seed["accuracy"] <= seed["majority_accuracy"] <= 1.0
    assert "| many-to-one |" in (out / "results.md").read_text()

    probe = load_script("benchmarks/cpvae_latent_gmm.py")
    capsys.readouterr()
    records = tmp_path / "gmm.jsonl"
    assert probe.main([str(out / "seed3"), "--data-dir", str(tmp_path), "--encodings", "200",
                       "--covariances", "diag", "--n-init", "1", "--out", str(records)]) == 0
    record = json.loads(records.read_text().splitlines()[0])
    assert record == json.loads(capsys.readouterr().out.splitlines()[-1])
    assert record["z_input"] == "probabilities" and record["categories"] == 10
    assert record["decoder_input"] == "z_and_c"
    # the head's accuracy is the one the run measured, on the same binarized held-out images
    assert record["head"]["accuracy"] == pytest.approx(seed["accuracy"])
    assert record["head"]["majority_accuracy"] == pytest.approx(seed["majority_accuracy"])
    assert 0.0 < record["gmm_diag"]["accuracy"] <= 1.0 and "gmm_full" not in record


def test_the_gmm_probe_refuses_a_directory_without_a_model(tmp_path):
    probe = load_script("benchmarks/cpvae_latent_gmm.py")
    with pytest.raises(SystemExit) as stop:
        probe.main([str(tmp_path), "--data-dir", str(tmp_path)])
    assert stop.value.code == 2


def test_the_gmm_initialisation_and_size_flags_reach_the_training_run():
    from trainers.config import build_parser, parse_config
    mnist = load_script("benchmarks/cpvae_mnist.py")
    args = mnist.parse_args(["--data-dir", "D", "--epochs", "4", "--gmm-init-epoch", "2",
                             "--gmm-covariance", "full"])
    config = parse_config(build_parser("t"), mnist.seed_flags(args, 0) + ["--run-dir", "R"])
    assert config["cpvae_gmm_init_epoch"] == 2 and config["cpvae_gmm_covariance"] == "full"
    plain = mnist.seed_flags(mnist.parse_args(["--data-dir", "D"]), 0)
    assert parse_config(build_parser("t"), plain + ["--run-dir", "R"])["cpvae_gmm_init_epoch"] == 0
    assert parse_config(build_parser("t"), plain + ["--run-dir", "R"])["latent_dim"] == 40
    assert parse_config(build_parser("t"), plain + ["--run-dir", "R"])["cpvae_decoder_input"] == "z_and_c"
    sized = mnist.seed_flags(mnist.parse_args(["--data-dir", "D", "--latent-dim", "10",
                                               "--hidden-units", "500", "500", "2000",
                                               "--decoder-input", "z",
                                               "--prior-covariance", "full"]), 0)
    config = parse_config(build_parser("t"), sized + ["--run-dir", "R"])
    assert config["latent_dim"] == 10 and list(config["hidden_units"]) == [500, 500, 2000]
    assert config["cpvae_decoder_input"] == "z" and config["mog_covariance"] == "full"
    assert parse_config(build_parser("t"), plain + ["--run-dir", "R"])["mog_covariance"] == "diagonal"
    from trainers.config import _prior
    assert _prior(config, (28, 28, 1), None).covariance == "full"
    for wrong in (["--epochs", "2", "--gmm-init-epoch", "3"], ["--gmm-init-epoch", "1", "--freeze-prior"],
                  ["--latent-dim", "0"], ["--hidden-units", "300", "0"]):
        with pytest.raises(SystemExit):
            mnist.parse_args(["--data-dir", "D", *wrong])
