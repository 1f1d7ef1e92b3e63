"""Tests of tfpriors.export: malformed requests give InvalidArgument, per-export caps, the
TF-Serving layout and argument errors. Uses the shared exports of tests/export_support.py."""

import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from tests.export_support import LATENT, NUM, SEED_A, SHAPE
from tfpriors.export import export_sampler, find_version_dir, load_sampler


def test_empty_requests(exported, loaded):
    seed = tf.constant(SEED_A, tf.int32)
    vamp = loaded["vamp"]
    assert vamp.sample(tf.constant(0), seed)["images"].shape == (0,) + SHAPE
    assert vamp.sample_component(tf.constant(0), tf.constant(0), seed)["z"].shape == (0, LATENT)
    empty = tf.zeros((0,) + SHAPE)
    assert vamp.log_likelihood(empty, tf.constant(3), seed)["log_likelihood"].shape == (0,)
    assert vamp.encode(empty)["loc"].shape == (0, LATENT)


# ---------------------------------------------------------------------- malformed requests
def _nan_images():
    x = np.full((2,) + SHAPE, 0.5, np.float32)
    x[1, 2, 3, 0] = np.nan
    x[0, 0, 0, 0] = np.inf
    return x


_GOOD = {"num_samples": 3, "seed": SEED_A, "component": 0, "images": np.zeros((2,) + SHAPE),
         "z": np.zeros((2, LATENT))}
_BAD_REQUESTS = [
    ("sample", {"num_samples": -1},
     r"Expected `num_samples` in \[0, 10000\] for `sample`.*Received: num_samples=-1"),
    ("sample", {"num_samples": 10001}, r"`max_samples` of the export\)\. Received: num_samples=10001"),
    ("sample", {"seed": [1, 2, 3]},
     r"Expected `seed` to be an int32 tensor of shape \[2\]\. Received: shape \[3\]"),
    ("sample", {"seed": [1]}, r"Received: shape \[1\]"),
    ("sample_component", {"num_samples": -2}, r"Received: num_samples=-2"),
    ("sample_component", {"component": 5},
     r"Expected `component` in \[0, 5\) \(the prior has 5 mixture components\)\. "
     r"Received: component=5"),
    ("sample_component", {"component": -1}, r"Received: component=-1"),
    ("sample_component", {"seed": [4, 5, 6, 7]}, r"Received: shape \[4\]"),
    ("log_likelihood", {"num_samples": 0},
     r"Expected `num_samples` in \[1, 2000\] for `log_likelihood` \(the upper bound is the "
     r"`max_log_likelihood_samples` of the export\)\. Received: num_samples=0"),
    ("log_likelihood", {"num_samples": -5}, r"Received: num_samples=-5"),
    ("log_likelihood", {"num_samples": 2001}, r"Received: num_samples=2001"),
    ("log_likelihood", {"seed": [1, 2, 3]}, r"Received: shape \[3\]"),
    ("log_likelihood", {"images": np.zeros((2, 7, 8, 1))},
     r"Expected `images` of shape \[batch, 8, 8, 1\]\. Received: shape \[2 7 8 1\]"),
    ("log_likelihood", {"images": _nan_images()},
     r"Expected `images` to hold only finite values\. Received: 2 NaN or infinite entries"),
    ("encode", {"images": np.zeros((3, 8, 8, 3))}, r"Received: shape \[3 8 8 3\]"),
    ("encode", {"images": _nan_images()}, r"Received: 2 NaN or infinite entries"),
    ("decode", {"z": np.zeros((2, 3))}, r"Expected `z` of shape \[batch, 2\]\. Received: shape \[2 3\]"),
    ("decode", {"z": np.array([[0.0, np.nan]])}, r"Expected `z` to hold only finite values"),
]


@pytest.mark.parametrize("signature, bad, message", _BAD_REQUESTS,
                         ids=[f"{s}-{'-'.join(b)}-{i}" for i, (s, b, _) in enumerate(_BAD_REQUESTS)])
def test_malformed_requests_raise_invalid_argument(loaded, signature, bad, message):
    fn = loaded["vamp"].signatures[signature]
    names = fn.structured_input_signature[1].keys()
    inputs = {k: tf.constant(bad.get(k, _GOOD[k]),
                             tf.float32 if k in ("images", "z") else tf.int32) for k in names}
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        fn(**inputs)
    fn(**{k: tf.constant(_GOOD[k], v.dtype) for k, v in inputs.items()})   # the good request runs


def test_caps_are_set_per_export(loaded):
    # The mog archive was exported with max_samples=5000 and the default log-likelihood cap.
    seed = tf.constant(SEED_A, tf.int32)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"\[0, 5000\].*num_samples=5001"):
        loaded["mog"].sample(tf.constant(5001), seed)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"\[0, 5000\].*num_samples=5001"):
        loaded["mog"].sample_component(tf.constant(0), tf.constant(5001), seed)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"\[1, 10000\].*num_samples=10001"):
        loaded["mog"].log_likelihood(tf.zeros((1,) + SHAPE), tf.constant(10001), seed)


# ---------------------------------------------------------------------- layout and arguments
def test_tf_serving_layout(exported):
    root, dirs = exported["root"], exported["dirs"]
    assert dirs["vamp"] == os.path.join(str(root / "vamp"), "1")      # version defaults to 1
    assert (root / "vamp" / "1" / "saved_model.pb").is_file()
    assert (root / "toy" / "3" / "saved_model.pb").is_file()
    assert dirs["mog"] == str(root / "mog") and (root / "mog" / "saved_model.pb").is_file()
    assert find_version_dir(root / "vamp") == dirs["vamp"]
    assert find_version_dir(dirs["vamp"]) == dirs["vamp"]              # a version dir itself
    assert find_version_dir(root / "mog") == dirs["mog"]


def test_load_sampler_picks_the_highest_numeric_version(exported, tmp_path):
    # versions 2 (vamp) and 10 (mog): numeric, not lexicographic, order; "11" holds no model.
    shutil.copytree(exported["dirs"]["vamp"], tmp_path / "model" / "2")
    shutil.copytree(exported["dirs"]["mog"], tmp_path / "model" / "10")
    (tmp_path / "model" / "11").mkdir()
    (tmp_path / "model" / "notes").mkdir()
    (tmp_path / "other" / "notes").mkdir(parents=True)
    seed = tf.constant(SEED_A, tf.int32)
    sampler = load_sampler(tmp_path / "model")   # keep a reference: it owns the variables
    z = sampler.sample(tf.constant(NUM), seed)["z"].numpy()
    np.testing.assert_array_equal(z, exported["fresh"]["mog/sample_a/z"])
    sampler = load_sampler(tmp_path / "model", version=2)
    z = sampler.sample(tf.constant(NUM), seed)["z"].numpy()
    np.testing.assert_array_equal(z, exported["fresh"]["vamp/sample_a/z"])
    with pytest.raises(FileNotFoundError, match=r"Expected a SavedModel.*Received: \['notes'\]"):
        load_sampler(tmp_path / "other")
    with pytest.raises(FileNotFoundError, match="no such directory"):
        load_sampler(tmp_path / "missing")


def test_argument_errors(exported, tmp_path):
    model = exported["models"]["vamp"]
    for kwargs, name in ((dict(max_samples=0), "max_samples"),
                         (dict(max_log_likelihood_samples=-1), "max_log_likelihood_samples"),
                         (dict(log_likelihood_chunk_size=0), "log_likelihood_chunk_size"),
                         (dict(version=-1), "version"), (dict(version="1"), "version")):
        with pytest.raises(ValueError, match=f"Expected `{name}`"):
            export_sampler(model, tmp_path / name, **kwargs)
    assert not any(tmp_path.iterdir())
