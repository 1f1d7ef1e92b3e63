"""benchmarks/ladder_prior_fit.py end to end on synthetic IDX files: one record per prior, the
frozen VAE reused by a second process, the collected table."""

import json

import pytest

from tests.helpers import load_script
from tests.test_benchmark_mnist_table1 import _fake_mnist


def _tiny(data_dir, out, priors):
    return ["--data-dir", str(data_dir), "--out-dir", str(out), "--latent-dims", "2",
            "--priors", *priors, "--train-images", "200", "--encodings", "200",
            "--heldout-images", "100", "--vae-epochs", "1", "--prior-epochs", "2",
            "--hidden-units", "8", "--prior-hidden-units", "8", "--gmm-components", "3",
            "--pseudo-inputs", "3", "--max-components", "3", "--accurate-every", "2",
            "--eval-samples", "1", "--prior-samples", "4", "--reuse-vae", "--verbose", "0"]


@pytest.mark.slow
def test_priors_fitted_in_two_runs_share_the_frozen_vae_and_one_table(tmp_path):
    script = load_script("benchmarks/ladder_prior_fit.py")
    _fake_mnist(tmp_path)
    out = tmp_path / "out"
    assert script.main(_tiny(tmp_path, out, ["normal", "gmm"])) == 0
    vae_file = out / "d2" / "vae.keras"
    trained = vae_file.stat().st_mtime_ns
    assert json.loads((out / "d2" / "vae.json").read_text())["vae_seconds"] > 0
    # A second run fits other priors to the same frozen VAE (--reuse-vae) and adds its records;
    # LaDDer's log p(z) is importance-sampled with 2 and then 4 samples on the same draws z.
    assert script.main(_tiny(tmp_path, out, ["vampprior_data", "ladder"])
                       + ["--prior-samples", "2", "4"]) == 0
    assert vae_file.stat().st_mtime_ns == trained
    results = json.loads((out / "results.json").read_text())
    priors = results["d2"]["priors"]
    assert set(priors) == {"normal", "gmm", "vampprior_data", "ladder"}
    assert all(r["heldout_log_prior"] < 0 and r["std_error"] > 0 for r in priors.values())
    assert 1 <= priors["ladder"]["hyper_prior_components"] <= 3
    assert 0.0 <= priors["ladder"]["components_vs_digits"]["accuracy"] <= 1.0
    assert (out / "d2" / "densities.png").exists()
    # Every record carries its per-image values on the same held-out draws, so that two priors
    # fitted in different runs compare image by image.
    records = {n: json.loads((out / "d2" / f"{n}.json").read_text()) for n in priors}
    assert len({r["heldout_sha256"] for r in records.values()}) == 1
    for r in records.values():
        values = r["heldout_log_prior_per_image"]
        assert len(values) == 100 and abs(sum(values) / 100 - r["heldout_log_prior"]) < 1e-4
    assert "heldout_log_prior_per_image" not in priors["gmm"]                # not in results.json
    [fewer] = records["ladder"]["fewer_prior_samples"]
    assert fewer["prior_samples"] == 2 and fewer["last_minus_this_std_error"] > 0
    assert abs(records["ladder"]["heldout_log_prior"] - fewer["heldout_log_prior"]
               - fewer["last_minus_this"]) < 1e-9
    assert records["vampprior_data"]["fewer_prior_samples"] == []          # exact: one evaluation
    paired = load_script("benchmarks/paired_log_likelihood.py")
    assert paired.main([str(out / "d2" / "normal.json"), str(out / "d2" / "ladder.json")]) == 0
    table = (out / "results.md").read_text().splitlines()
    assert table[0].startswith("| D | normal | gmm | vampprior | vampprior_data")
    assert table[2].startswith("| 2 | ") and len(table) == 4       # header, rule, D = 2, paper


def test_the_bound_and_hyper_prior_flags_reach_the_priors():
    script = load_script("benchmarks/ladder_prior_fit.py")
    base = ["--data-dir", "D"]
    args = script.parse_args(base + ["--iw-samples", "64", "--hyper-concentration", "2.5"])
    ladder = script.make_prior("ladder_iw", args, 2, 2)
    assert ladder.num_samples == 64 and ladder.innermost_hyper_prior.weight_concentration_prior == 2.5
    assert script.make_prior("vhp", args, 2, 2).num_samples == 64
    assert script.make_prior("ladder", args, 2, 2).num_samples == 1        # the paper's ELBO bound
    default = script.parse_args(base)
    assert script.make_prior("ladder_iw", default, 2, 2).num_samples == 16
    assert script.make_prior("ladder", default, 2, 2).innermost_hyper_prior \
        .weight_concentration_prior is None                                  # 1 / M
    from tfpriors.evaluation import encodings_fit
    assert default.lr_schedule == "constant"
    assert script.parse_args(base + ["--lr-schedule", "cosine"]).lr_schedule == "cosine"
    for schedule in encodings_fit.LEARNING_RATE_SCHEDULES:      # the flag offers every schedule
        script.parse_args(base + ["--lr-schedule", schedule])
    assert script.parse_args(base + ["--prior-samples", "500", "5000"]).prior_samples == [500, 5000]
    assert script.make_prior("ladder_iw", default, 2, 2).identity_scale is None
    start = script.parse_args(base + ["--prior-identity-scale", "0.1"])
    for name in ("vhp", "ladder", "ladder_iw"):
        assert script.make_prior(name, start, 2, 2).identity_scale == 0.1
    for wrong in (["--iw-samples", "0"], ["--hyper-concentration", "0"], ["--prior-samples", "500", "0"],
                  ["--lr-schedule", "linear"]):
        with pytest.raises(SystemExit):
            script.parse_args(base + wrong)


def test_collected_rows_go_by_latent_size_then_folder_name(tmp_path):
    script = load_script("benchmarks/ladder_prior_fit.py")
    for folder, d in (("d16", 16), ("d2_rerun", 2), ("d2", 2), ("d2_again", 2)):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "normal.json").write_text(json.dumps(
            {"latent_dim": d, "hyper_dim": d, "prior": "normal", "heldout_log_prior": -1.0,
             "std_error": 0.1}))
    assert list(script.collect(tmp_path)) == ["d2", "d2_again", "d2_rerun", "d16"]
