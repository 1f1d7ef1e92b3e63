"""Tests of tfpriors.export: signatures, stateless sampling across processes, in-graph validation.

Two tiny VAEs (8x8x1 images, D=2, one hidden layer of 16 units): one with a VampPrior (K=5
pseudo-inputs set from distinct random images, so the mixture components differ) exported
with the versioned layout, one with a MoG prior (K=3, non-uniform learned weights) exported
unversioned. A single fresh Python process that imports only tensorflow (no
tfpriors on its path) loads both archives and calls every signature; a second process runs
`saved_model_cli show --all` and `saved_model_cli run` (TF-Serving's session loader) and is
the independent process of the bitwise check. The two subprocesses run concurrently.
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfpriors.export import SIGNATURES, export_sampler, load_sampler
from tfpriors.likelihoods import BernoulliLikelihood
from tfpriors.networks import MLPDecoder, MLPEncoder
from tfpriors.priors import MixtureOfGaussiansPrior, VampPrior, gaussian_mixture
from trainers import VAE

SHAPE = (8, 8, 1)
LATENT = 2
NUM = 4
SEED_A = [7, 11]
SEED_B = [8, 11]

# Runs in a fresh interpreter with only tensorflow and numpy imported: argv[1] is a JSON config.
_FRESH_PROCESS = r"""
import json, sys
import numpy as np
import tensorflow as tf

cfg = json.loads(sys.argv[1])
x = np.load(cfg["x"])
out = {}
for name, path in cfg["archives"].items():
    sig = tf.saved_model.load(path).signatures
    out[name + "/keys"] = np.array(sorted(sig.keys()))
    for tag, seed in (("a", cfg["seed_a"]), ("b", cfg["seed_b"])):
        r = sig["sample"](num_samples=tf.constant(cfg["n"]), seed=tf.constant(seed, tf.int32))
        out[name + "/sample_" + tag + "/images"] = r["images"].numpy()
        out[name + "/sample_" + tag + "/z"] = r["z"].numpy()
    r = sig["serving_default"](num_samples=tf.constant(cfg["n"]),
                               seed=tf.constant(cfg["seed_a"], tf.int32))
    out[name + "/default/z"] = r["z"].numpy()
    out[name + "/default/images"] = r["images"].numpy()
    enc = sig["encode"](images=tf.constant(x))
    out[name + "/encode/loc"] = enc["loc"].numpy()
    out[name + "/encode/scale"] = enc["scale"].numpy()
    out[name + "/decode/images"] = sig["decode"](z=enc["loc"])["images"].numpy()
    try:
        sig["sample"](num_samples=tf.constant(-1), seed=tf.constant(cfg["seed_a"], tf.int32))
        out[name + "/negative_raised"] = np.array(False)
    except tf.errors.InvalidArgumentError:
        out[name + "/negative_raised"] = np.array(True)
out["foreign_modules"] = np.array([m for m in ("tfpriors", "trainers") if m in sys.modules], dtype=str)
np.savez(cfg["out"], **out)
"""

# `saved_model_cli show --all` then `saved_model_cli run`, in one interpreter to pay for one
# TensorFlow import: `main` is the function the `saved_model_cli` console script calls.
_SAVED_MODEL_CLI = r"""
import json, sys
from tensorflow.python.tools.saved_model_cli import main

for argv in json.loads(sys.argv[1]):
    sys.argv = ["saved_model_cli"] + argv
    try:
        main()
    except SystemExit as exit:
        if exit.code:
            raise
"""


def _tiny_vae(prior):
    return VAE(MLPEncoder(LATENT, SHAPE, hidden_units=(16,)),
               MLPDecoder(LATENT, SHAPE, hidden_units=(16,)), prior, BernoulliLikelihood(), seed=3)


def _clean_env():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    env.pop("PYTHONPATH", None)   # the fresh process must not be able to import tfpriors
    return env


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("export")
    x = rng.uniform(size=(6,) + SHAPE).astype(np.float32)
    np.save(root / "x.npy", x)

    vamp = _tiny_vae(VampPrior(LATENT, 5, SHAPE, init="data"))
    vamp.build((None,) + SHAPE)
    vamp.prior.initialize_from_data(rng.uniform(size=(20,) + SHAPE).astype(np.float32), seed=1)
    vamp_dir = export_sampler(vamp, root / "vamp", version=1)

    mog = _tiny_vae(MixtureOfGaussiansPrior(LATENT, 3, learn_weights=True, init_spread=3.0))
    mog.build((None,) + SHAPE)
    mog.prior.logits.assign([0.5, -1.0, 1.0])   # non-uniform weights, as after training
    mog_dir = export_sampler(mog, root / "mog", max_samples=5000)

    cfg = {"archives": {"vamp": vamp_dir, "mog": mog_dir}, "x": str(root / "x.npy"),
           "n": NUM, "seed_a": SEED_A, "seed_b": SEED_B, "out": str(root / "fresh.npz")}
    cli_out = root / "cli_out"
    popen = dict(stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_clean_env(),
                 cwd=str(root))
    cli_argvs = [["show", "--all", "--dir", vamp_dir],
                 ["run", "--dir", vamp_dir, "--tag_set", "serve", "--signature_def", "sample",
                  "--input_exprs", f"num_samples={NUM};seed={SEED_A}", "--outdir", str(cli_out)]]
    procs = {
        "fresh": subprocess.Popen([sys.executable, "-c", _FRESH_PROCESS, json.dumps(cfg)], **popen),
        "cli": subprocess.Popen([sys.executable, "-c", _SAVED_MODEL_CLI, json.dumps(cli_argvs)],
                                **popen),
    }
    results = {}
    try:
        for name, proc in procs.items():
            stdout, stderr = proc.communicate(timeout=240)
            assert proc.returncode == 0, f"{name} failed:\n{stderr[-3000:]}"
            results[name] = stdout
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    fresh = dict(np.load(cfg["out"]))
    cli = {key: np.load(cli_out / f"{key}.npy") for key in ("images", "z")}
    return {"x": x, "models": {"vamp": vamp, "mog": mog}, "dirs": {"vamp": vamp_dir, "mog": mog_dir},
            "root": root, "fresh": fresh, "cli": cli, "show": results["cli"]}


def test_saved_model_cli_lists_signatures(exported):
    show = exported["show"]
    for name in SIGNATURES + ("serving_default",):
        assert f"signature_def['{name}']" in show
    assert "inputs['num_samples']" in show and "inputs['seed']" in show
    assert "shape: (-1, 8, 8, 1)" in show and "shape: (-1, 2)" in show


def test_fresh_process_calls_every_signature(exported):
    fresh = exported["fresh"]
    assert fresh["foreign_modules"].size == 0   # loaded without tfpriors/trainers
    for name in ("vamp", "mog"):
        assert sorted(fresh[f"{name}/keys"]) == sorted(SIGNATURES + ("serving_default",))
        assert fresh[f"{name}/sample_a/images"].shape == (NUM,) + SHAPE
        assert fresh[f"{name}/sample_a/z"].shape == (NUM, LATENT)
        assert fresh[f"{name}/encode/loc"].shape == (6, LATENT)
        assert fresh[f"{name}/decode/images"].shape == (6,) + SHAPE
        images = fresh[f"{name}/sample_a/images"]
        assert np.all((images >= 0) & (images <= 1))   # Bernoulli means
        # serving_default is the sample signature.
        np.testing.assert_array_equal(fresh[f"{name}/default/z"], fresh[f"{name}/sample_a/z"])
        np.testing.assert_array_equal(fresh[f"{name}/default/images"],
                                      fresh[f"{name}/sample_a/images"])
        assert bool(fresh[f"{name}/negative_raised"])


def test_same_seed_is_bitwise_equal_across_processes(exported):
    # Process 1: tf.saved_model.load (eager); process 2: saved_model_cli's session loader.
    fresh, cli = exported["fresh"], exported["cli"]
    np.testing.assert_array_equal(cli["z"], fresh["vamp/sample_a/z"])
    np.testing.assert_array_equal(cli["images"], fresh["vamp/sample_a/images"])


@pytest.mark.parametrize("name", ["vamp", "mog"])
def test_sample_matches_in_process_model(exported, name):
    model, fresh = exported["models"][name], exported["fresh"]
    for tag, seed in (("a", SEED_A), ("b", SEED_B)):
        images, z = model.sample(NUM, tf.constant(seed, tf.int32))
        np.testing.assert_allclose(fresh[f"{name}/sample_{tag}/z"], z.numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(fresh[f"{name}/sample_{tag}/images"], images.numpy(),
                                   rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["vamp", "mog"])
def test_different_seeds_differ(exported, name):
    fresh = exported["fresh"]
    z_a, z_b = fresh[f"{name}/sample_a/z"], fresh[f"{name}/sample_b/z"]
    assert np.all(np.abs(z_a - z_b).max(axis=-1) > 1e-3)


@pytest.mark.parametrize("name", ["vamp", "mog"])
def test_encode_decode_match_model(exported, name):
    model, fresh, x = exported["models"][name], exported["fresh"], exported["x"]
    posterior = model.posterior(x)
    np.testing.assert_allclose(fresh[f"{name}/encode/loc"], model.encode(x).numpy(),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fresh[f"{name}/encode/scale"], posterior.stddev().numpy(),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fresh[f"{name}/decode/images"],
                               model.decode(model.encode(x)).numpy(), rtol=1e-5, atol=1e-6)


def test_vampprior_components_come_from_pseudo_inputs(exported):
    # The exported p(z) must be the encoder at the saved pseudo-inputs: its samples equal
    # TFP's stateless draw from the mixture built here from model.prior.pseudo_inputs().
    model = exported["models"]["vamp"]
    loc, log_var = model.encoder(model.prior.pseudo_inputs())   # [K, D]
    assert np.ptp(loc.numpy(), axis=0).min() > 1e-3              # components are distinct
    reference = gaussian_mixture(model.prior.logits.value, loc, tf.exp(0.5 * log_var))
    z = reference.sample(NUM, seed=tf.constant(SEED_A, tf.int32))
    np.testing.assert_allclose(exported["fresh"]["vamp/sample_a/z"], z.numpy(), rtol=1e-5, atol=1e-6)


def test_mog_samples_have_the_mixture_moments(exported):
    # Closed form: E[z] = sum_k w_k mu_k, Var[z] = sum_k w_k (sigma_k^2 + mu_k^2) - E[z]^2.
    prior = exported["models"]["mog"].prior
    w = tf.nn.softmax(prior.logits.value).numpy()[:, None]                  # [K, 1]
    mu = prior.loc.numpy()                                                   # [K, D]
    var = (prior.min_scale + tf.nn.softplus(prior.raw_scale.value)).numpy() ** 2
    mean = (w * mu).sum(0)
    variance = (w * (var + mu ** 2)).sum(0) - mean ** 2
    sampler = load_sampler(exported["dirs"]["mog"])
    z = sampler.sample(tf.constant(5000), tf.constant([1, 2], tf.int32))["z"].numpy()
    assert np.all(np.abs(z.mean(0) - mean) < 4 * np.sqrt(variance / 5000)), (z.mean(0), mean)
    np.testing.assert_allclose(z.var(0), variance, rtol=0.1)
    assert np.all(variance > 1.5)   # far from N(0, I): the test would catch a wrong prior


def test_invalid_inputs_raise_invalid_argument(exported):
    sampler = load_sampler(exported["root"] / "vamp", version=1)
    seed = tf.constant(SEED_A, tf.int32)
    with pytest.raises(tf.errors.InvalidArgumentError, match="num_samples"):
        sampler.sample(tf.constant(-1), seed)
    with pytest.raises(tf.errors.InvalidArgumentError, match="max_samples=10000"):
        sampler.sample(tf.constant(10001), seed)
    with pytest.raises(tf.errors.InvalidArgumentError, match="seed"):
        sampler.sample(tf.constant(2), tf.constant([1, 2, 3], tf.int32))
    with pytest.raises(tf.errors.InvalidArgumentError, match="seed"):
        sampler.sample(tf.constant(2), tf.constant([1], tf.int32))
    assert sampler.sample(tf.constant(0), seed)["images"].shape == (0,) + SHAPE
    # The MoG archive was exported with max_samples=5000.
    mog = load_sampler(exported["dirs"]["mog"])
    with pytest.raises(tf.errors.InvalidArgumentError, match="max_samples=5000"):
        mog.sample(tf.constant(5001), seed)
    # Image shapes are fixed by the input signature.
    with pytest.raises((ValueError, TypeError)):
        sampler.encode(tf.zeros((2, 7, 8, 1)))


def test_versioned_layout(exported):
    root = exported["root"]
    assert exported["dirs"]["vamp"] == os.path.join(str(root / "vamp"), "1")
    assert (root / "vamp" / "1" / "saved_model.pb").is_file()
    assert (root / "mog" / "saved_model.pb").is_file()


def test_argument_errors(exported, tmp_path):
    model = exported["models"]["vamp"]
    with pytest.raises(ValueError, match="max_samples"):
        export_sampler(model, tmp_path / "a", max_samples=0)
    with pytest.raises(ValueError, match="version"):
        export_sampler(model, tmp_path / "b", version=-1)
    with pytest.raises(ValueError, match="version"):
        export_sampler(model, tmp_path / "c", version="1")
    assert not any(tmp_path.iterdir())
