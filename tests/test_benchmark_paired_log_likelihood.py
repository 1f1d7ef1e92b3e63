"""benchmarks/paired_log_likelihood.py: the paired difference against a brute-force numpy one, on
both kinds of record, and clear errors for records that are not paired."""

import json

import numpy as np
import pytest

from tests.helpers import load_script


def _vampprior_record(path, values, sha="abc123"):
    path.write_text(json.dumps({"config": {"test_binarized_sha256": sha},
                                "eval": {"test_log_likelihood_per_image": list(values)}}))
    return str(path)


def _prior_fit_record(path, values, sha="d1g3st"):
    path.write_text(json.dumps({"heldout_log_prior": float(np.mean(values)),
                                "heldout_log_prior_per_image": list(values),
                                "heldout_sha256": sha}))
    return str(path)


def test_the_paired_difference_matches_numpy(tmp_path, capsys):
    script = load_script("benchmarks/paired_log_likelihood.py")
    rng = np.random.default_rng(0)
    a = rng.normal(-90.0, 20.0, 300)
    b = a + rng.normal(0.3, 0.5, 300)
    for make in (_vampprior_record, _prior_fit_record):
        assert script.main([make(tmp_path / "a.json", a), make(tmp_path / "b.json", b)]) == 0
        result = json.loads(capsys.readouterr().out)
        diff = b - a
        assert result["images"] == 300 and result["b_higher_on"] == int((diff > 0).sum())
        np.testing.assert_allclose(result["mean_b_minus_a"], diff.mean(), rtol=1e-12)
        np.testing.assert_allclose(result["standard_error"], diff.std(ddof=1) / np.sqrt(300),
                                   rtol=1e-10)
        np.testing.assert_allclose([result["mean_a"], result["mean_b"]], [a.mean(), b.mean()])
        # Pairing removes the spread between images: far below either mean's standard error.
        assert result["standard_error"] < 0.1 * a.std(ddof=1) / np.sqrt(300)


def test_records_that_are_not_paired_are_refused(tmp_path):
    script = load_script("benchmarks/paired_log_likelihood.py")
    a = _prior_fit_record(tmp_path / "a.json", [-4.0, -3.5], sha="one")
    with pytest.raises(ValueError, match="same test images"):
        script.main([a, _prior_fit_record(tmp_path / "b.json", [-4.0, -3.9], sha="two")])
    with pytest.raises(ValueError, match="same test images"):
        script.main([a, _prior_fit_record(tmp_path / "c.json", [-4.0, -3.9, -3.0], sha="one")])
    with pytest.raises(ValueError, match="with neither"):
        (tmp_path / "d.json").write_text(json.dumps({"eval": {}}))
        script.main([a, str(tmp_path / "d.json")])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        script.main([a, str(tmp_path / "missing.json")])
