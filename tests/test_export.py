"""Tests of tfpriors.export: every signature, stateless sampling across processes, validation, layout.

Four small exports, shared by all tests:
  vamp  8x8x1 images, D=2, VampPrior (K=5 pseudo-inputs set from distinct random images),
        default layout vamp/1/, max_log_likelihood_samples=2000;
  mog   the same networks with a MoG prior (K=3 well separated components, non-uniform learned
        weights), unversioned (version=None), max_samples=5000;
  vhp   the same networks with the hierarchical VHP prior (no `sample_component`);
  toy   the linear-Gaussian VAE of test_evaluation_toy (standard normal prior, p(x) in closed
        form, a deliberately inexact encoder), for the log-likelihood against the exact value.
All exports use log_likelihood_chunk_size=16, so the sample counts below span several chunks.

Two subprocesses: a fresh Python that imports only tensorflow (no tfpriors on its path) loads
the vamp, mog and vhp archives and calls every signature; a second one, started as soon as the
vamp archive exists, runs `saved_model_cli show` and `saved_model_cli run` (TF-Serving's
session loader) on every signature of the vamp archive and on malformed requests, and is the
independent process of the bitwise checks. The toy archive is exercised in this process.
"""

import json
import os
import re
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from tests.test_evaluation_toy import exact_log_marginal, inexact_encoder, make_model, toy_images
from tfpriors.evaluation import log_likelihood
from tfpriors.export import (MIXTURE_SIGNATURES, SIGNATURES, export_sampler, find_version_dir,
                             load_sampler)
from tfpriors.likelihoods import BernoulliLikelihood
from tfpriors.networks import MLPDecoder, MLPEncoder
from tfpriors.priors import (HierarchicalPrior, MixtureOfGaussiansPrior, VampPrior,
                             gaussian_mixture)
from trainers import VAE

tfd = tfp.distributions

SHAPE = (8, 8, 1)
LATENT = 2
NUM = 4
SEED_A = [7, 11]
SEED_B = [8, 11]
CHUNK = 16
LL_SAMPLES = 48            # 3 chunks: the VHP prior's per-chunk seeds line up with evaluation's
TOY_LL_SAMPLES = 60        # 4 chunks, the last one partly masked
LL_SEED = 5                # evaluation's int seed s; the signature's seed is [s, 0]
COMPONENT = 1
MOG_LOC = np.array([[-8.0, 0.0], [8.0, 0.0], [0.0, 8.0]], np.float32)
MOG_SCALE = np.array([[0.5, 1.0], [1.0, 0.5], [0.7, 0.7]], np.float32)
MIXTURES = ("vamp", "mog")
ALL = ("vamp", "mog", "vhp", "toy")
FRESH = ("vamp", "mog", "vhp")   # the archives the fresh process loads

# Runs in a fresh interpreter with only tensorflow and numpy imported: argv[1] is a JSON config.
_FRESH_PROCESS = r"""
import json, sys
import numpy as np
import tensorflow as tf

cfg = json.loads(sys.argv[1])
dtypes = {"images": np.float32, "z": np.float32}
out, signatures = {}, {}
for name, path in cfg["archives"].items():
    signatures[name] = tf.saved_model.load(path).signatures
    out[name + "/keys"] = np.array(sorted(signatures[name].keys()))
for key, archive, signature, inputs in cfg["calls"]:
    feed = {k: tf.constant(np.load(v) if isinstance(v, str) else np.asarray(v, dtypes.get(k, np.int32)))
            for k, v in inputs.items()}
    for output, value in signatures[archive][signature](**feed).items():
        out[key + "/" + output] = value.numpy()
out["foreign_modules"] = np.array([m for m in ("tfpriors", "trainers") if m in sys.modules], dtype=str)
np.savez(cfg["out"], **out)
"""

# `saved_model_cli` runs in one interpreter to pay for one TensorFlow import: `main` is the
# function the console script calls. Flags are reset between runs (absl keeps parsed values).
# Errors of the runs marked as expected to fail are written to a JSON file.
_SAVED_MODEL_CLI = r"""
import json, sys
from absl import flags
from tensorflow.python.tools.saved_model_cli import main

cfg = json.loads(sys.argv[1])
errors = {}
for key, argv, expect_error in cfg["runs"]:
    flags.FLAGS.unparse_flags()
    sys.argv = ["saved_model_cli"] + argv
    try:
        main()
    except SystemExit as exit:
        if exit.code:
            raise
        errors[key] = None
    except Exception as error:
        if not expect_error:
            raise
        errors[key] = [type(error).__name__, str(error)]
json.dump(errors, open(cfg["errors"], "w"))
"""


def _vae(prior):
    return VAE(MLPEncoder(LATENT, SHAPE, hidden_units=(16,)),
               MLPDecoder(LATENT, SHAPE, hidden_units=(16,)), prior, BernoulliLikelihood(), seed=3)


def _clean_env():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    env.pop("PYTHONPATH", None)   # the fresh process must not be able to import tfpriors
    return env


def _build_models(rng):
    vamp = _vae(VampPrior(LATENT, 5, SHAPE, init="data"))
    vamp.build((None,) + SHAPE)
    vamp.prior.initialize_from_data(rng.uniform(size=(20,) + SHAPE).astype(np.float32), seed=1)

    mog = _vae(MixtureOfGaussiansPrior(LATENT, 3, learn_weights=True))
    mog.build((None,) + SHAPE)
    mog.prior.loc.assign(MOG_LOC)
    raw_scale = np.log(np.expm1(MOG_SCALE - mog.prior.min_scale))                    # softplus^-1
    mog.prior.raw_scale.assign(raw_scale.astype(np.float32))
    mog.prior.logits.assign([0.5, -1.0, 1.0])   # non-uniform weights, as after training

    vhp = _vae(HierarchicalPrior(LATENT, hidden_units=(16,), num_samples=4))
    vhp.build((None,) + SHAPE)
    return {"vamp": vamp, "mog": mog, "vhp": vhp, "toy": make_model(encoder=inexact_encoder())}


def _fresh_calls(root):
    """[key, archive, signature, inputs] for the fresh process: every signature of its archives."""
    calls = []
    for name in FRESH:
        x, z = str(root / f"x_{name}.npy"), str(root / "z.npy")
        samples = {"num_samples": NUM, "seed": SEED_A}
        calls += [[f"{name}/sample_a", name, "sample", samples],
                  [f"{name}/sample_b", name, "sample", {"num_samples": NUM, "seed": SEED_B}],
                  [f"{name}/default", name, "serving_default", samples],
                  [f"{name}/encode", name, "encode", {"images": x}],
                  [f"{name}/decode", name, "decode", {"z": z}],
                  [f"{name}/log_likelihood", name, "log_likelihood",
                   {"images": x, "num_samples": LL_SAMPLES, "seed": [LL_SEED, 0]}]]
        if name in MIXTURES:
            calls.append([f"{name}/sample_component", name, "sample_component",
                          dict(samples, component=COMPONENT)])
    return calls


def _cli_runs(root, vamp_dir):
    """[key, argv, expect_error] for saved_model_cli: show, every vamp signature, bad requests."""
    x = str(root / "x_vamp.npy")
    z = str(root / "z.npy")
    samples = f"num_samples={NUM};seed={SEED_A}"
    requests = {   # serving_default is `sample` (checked in the fresh process)
        "sample": ("", samples),
        "encode": (f"images={x}", ""), "decode": (f"z={z}", ""),
        "log_likelihood": (f"images={x}", f"num_samples={LL_SAMPLES};seed={[LL_SEED, 0]}"),
        "sample_component": ("", f"component={COMPONENT};{samples}"),
    }
    bad = {
        "bad_num_samples": ("sample", "", f"num_samples=-1;seed={SEED_A}"),
        "bad_images": ("log_likelihood", f"images={root / 'x_wrong.npy'}",
                       f"num_samples=3;seed={SEED_A}"),
    }
    runs = [["show", ["show", "--all", "--dir", vamp_dir], False]]
    for name, (inputs, exprs) in list(requests.items()) + [(k, v[1:]) for k, v in bad.items()]:
        signature = bad[name][0] if name in bad else name
        argv = ["run", "--dir", vamp_dir, "--tag_set", "serve", "--signature_def", signature,
                "--outdir", str(root / "cli" / name)]
        argv += [f"--inputs={inputs}"] if inputs else []
        argv += [f"--input_exprs={exprs}"] if exprs else []
        runs.append([name, argv, name in bad])
    return runs


def _start(script, cfg, root):
    return subprocess.Popen([sys.executable, "-c", script, json.dumps(cfg)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_clean_env(), cwd=str(root))


def _kill(procs):
    for proc in procs.values():
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _wait(procs):
    """{name: stdout} of the finished subprocesses; fails with the stderr of one that failed."""
    results = {}
    try:
        for name, proc in procs.items():
            stdout, stderr = proc.communicate(timeout=240)
            assert proc.returncode == 0, f"{name} failed:\n{stderr[-3000:]}"
            results[name] = stdout
    finally:
        _kill(procs)
    return results


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("export")
    models = _build_models(rng)
    images = {name: rng.uniform(size=(6,) + SHAPE).astype(np.float32) for name in ALL}
    images["toy"] = toy_images(3)
    for name, x in images.items():
        np.save(root / f"x_{name}.npy", x)
    np.save(root / "x_wrong.npy", np.zeros((2, 7, 8, 1), np.float32))
    np.save(root / "z.npy", rng.normal(size=(5, LATENT)).astype(np.float32))

    kwargs = {"log_likelihood_chunk_size": CHUNK}
    dirs = {"vamp": export_sampler(models["vamp"], root / "vamp", max_log_likelihood_samples=2000,
                                   **kwargs)}
    cli_cfg = {"runs": _cli_runs(root, dirs["vamp"]), "errors": str(root / "cli_errors.json")}
    procs = {"cli": _start(_SAVED_MODEL_CLI, cli_cfg, root)}   # runs while the others export
    try:
        dirs["mog"] = export_sampler(models["mog"], root / "mog", max_samples=5000, version=None,
                                     **kwargs)
        dirs["vhp"] = export_sampler(models["vhp"], root / "vhp", **kwargs)
        dirs["toy"] = export_sampler(models["toy"], root / "toy", version=3, **kwargs)
        fresh_cfg = {"archives": {name: dirs[name] for name in FRESH}, "calls": _fresh_calls(root),
                     "out": str(root / "fresh.npz")}
        procs["fresh"] = _start(_FRESH_PROCESS, fresh_cfg, root)
    except BaseException:
        _kill(procs)
        raise
    stdout = _wait(procs)
    cli = {}
    for path in (root / "cli").glob("*/*.npy"):
        cli[f"{path.parent.name}/{path.stem}"] = np.load(path)
    return {"x": images, "z": np.load(root / "z.npy"), "models": models, "dirs": dirs,
            "root": root, "fresh": dict(np.load(fresh_cfg["out"])), "cli": cli,
            "cli_errors": json.loads((root / "cli_errors.json").read_text()),
            "show": stdout["cli"]}


@pytest.fixture(scope="module")
def loaded(exported):
    """The archives loaded in this process (tf.saved_model.load, the loader of the fresh process)."""
    return {name: load_sampler(path) for name, path in exported["dirs"].items()}


# ---------------------------------------------------------------------- signatures and processes
def test_saved_model_cli_lists_every_signature(exported):
    show = exported["show"]
    for name in SIGNATURES + ("serving_default",):
        assert f"signature_def['{name}']" in show
    for key in ("num_samples", "seed", "component", "images", "z"):
        assert f"inputs['{key}']" in show
    assert "outputs['log_likelihood']" in show
    # Image and latent inputs accept any shape; the graph checks it (see the invalid-input tests).
    assert "shape: (-1, -1, -1, -1)" in show and "shape: (-1, -1)" in show


def _expected_signatures(name):
    expected = set(SIGNATURES + ("serving_default",))
    if name not in MIXTURES:
        expected -= set(MIXTURE_SIGNATURES)   # VHP and the standard normal are no mixtures
    return expected


def test_sample_component_only_for_mixture_priors(loaded):
    for name in ALL:
        assert set(loaded[name].signatures.keys()) == _expected_signatures(name), name
    assert not hasattr(loaded["vhp"], "sample_component")


def test_fresh_process_calls_every_signature(exported):
    fresh = exported["fresh"]
    assert fresh["foreign_modules"].size == 0   # loaded without tfpriors/trainers
    for name in FRESH:
        assert set(fresh[f"{name}/keys"]) == _expected_signatures(name), name
        assert fresh[f"{name}/sample_a/images"].shape == (NUM,) + SHAPE
        assert fresh[f"{name}/sample_a/z"].shape == (NUM, LATENT)
        assert fresh[f"{name}/encode/loc"].shape == (len(exported["x"][name]), LATENT)
        assert fresh[f"{name}/decode/images"].shape == (5,) + SHAPE
        assert fresh[f"{name}/log_likelihood/log_likelihood"].shape == (len(exported["x"][name]),)
        assert np.all(np.isfinite(fresh[f"{name}/log_likelihood/log_likelihood"]))
        # serving_default is the sample signature.
        for key in ("z", "images"):
            np.testing.assert_array_equal(fresh[f"{name}/default/{key}"],
                                          fresh[f"{name}/sample_a/{key}"])
    for name in MIXTURES:
        assert fresh[f"{name}/sample_component/z"].shape == (NUM, LATENT)
        images = fresh[f"{name}/sample_a/images"]
        assert np.all((images >= 0) & (images <= 1))   # Bernoulli means


def test_saved_model_cli_runs_every_signature_bitwise_equal_to_fresh_process(exported):
    # Process 1: tf.saved_model.load (eager); process 2: saved_model_cli's session loader.
    fresh, cli = exported["fresh"], exported["cli"]
    outputs = {"sample": ("images", "z"), "encode": ("loc", "scale"), "decode": ("images",),
               "log_likelihood": ("log_likelihood",), "sample_component": ("images", "z")}
    assert set(outputs) == set(SIGNATURES)
    for signature, keys in outputs.items():
        fresh_key = "sample_a" if signature == "sample" else signature
        for key in keys:
            np.testing.assert_array_equal(cli[f"{signature}/{key}"], fresh[f"vamp/{fresh_key}/{key}"],
                                          err_msg=f"{signature}/{key}")


def test_saved_model_cli_reports_invalid_argument(exported):
    errors = exported["cli_errors"]
    expected = {"bad_num_samples": r"Expected `num_samples` in \[0, 10000\].*Received: num_samples=-1",
                "bad_images": r"Expected `images` of shape \[batch, 8, 8, 1\]\. "
                              r"Received: shape \[2 7 8 1\]"}
    for key, pattern in expected.items():
        assert errors[key] is not None, f"{key}: saved_model_cli run did not fail"
        kind, message = errors[key]
        assert kind == "InvalidArgumentError", (key, kind, message[:500])
        assert re.search(pattern, message), (key, message[:500])


# ---------------------------------------------------------------------- sample, encode, decode
@pytest.mark.parametrize("name", ["vamp", "mog", "vhp"])
def test_sample_matches_in_process_model(exported, name):
    model, fresh = exported["models"][name], exported["fresh"]
    for tag, seed in (("a", SEED_A), ("b", SEED_B)):
        images, z = model.sample(NUM, tf.constant(seed, tf.int32))
        np.testing.assert_allclose(fresh[f"{name}/sample_{tag}/z"], z.numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(fresh[f"{name}/sample_{tag}/images"], images.numpy(),
                                   rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", FRESH)
def test_different_seeds_differ(exported, name):
    fresh = exported["fresh"]
    z_a, z_b = fresh[f"{name}/sample_a/z"], fresh[f"{name}/sample_b/z"]
    assert np.all(np.abs(z_a - z_b).max(axis=-1) > 1e-3)


@pytest.mark.parametrize("name", FRESH)
def test_encode_decode_match_model(exported, name):
    model, fresh, x, z = exported["models"][name], exported["fresh"], exported["x"][name], exported["z"]
    np.testing.assert_allclose(fresh[f"{name}/encode/loc"], model.encode(x).numpy(),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fresh[f"{name}/encode/scale"], model.posterior(x).stddev().numpy(),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fresh[f"{name}/decode/images"], model.decode(z).numpy(),
                               rtol=1e-5, atol=1e-6)


def test_vampprior_components_come_from_pseudo_inputs(exported):
    # The exported p(z) must be the encoder at the saved pseudo-inputs: its samples equal
    # TFP's stateless draw from the mixture built here from model.prior.pseudo_inputs().
    model = exported["models"]["vamp"]
    loc, log_var = model.encoder(model.prior.pseudo_inputs())   # [K, D]
    assert np.ptp(loc.numpy(), axis=0).min() > 1e-3              # components are distinct
    reference = gaussian_mixture(model.prior.logits.value, loc, tf.exp(0.5 * log_var))
    z = reference.sample(NUM, seed=tf.constant(SEED_A, tf.int32))
    np.testing.assert_allclose(exported["fresh"]["vamp/sample_a/z"], z.numpy(), rtol=1e-5, atol=1e-6)


def _mog_components(prior):
    """(weights [K], loc [K, D], scale [K, D]) of the MoG prior."""
    scale = (prior.min_scale + tf.nn.softplus(prior.raw_scale.value)).numpy()
    return tf.nn.softmax(prior.logits.value).numpy(), prior.loc.numpy(), scale


def test_mog_samples_have_the_mixture_moments(exported, loaded):
    # Closed form: E[z] = sum_k w_k mu_k, Var[z] = sum_k w_k (sigma_k^2 + mu_k^2) - E[z]^2.
    w, mu, scale = _mog_components(exported["models"]["mog"].prior)
    mean = (w[:, None] * mu).sum(0)
    variance = (w[:, None] * (scale ** 2 + mu ** 2)).sum(0) - mean ** 2
    z = loaded["mog"].sample(tf.constant(5000), tf.constant([1, 2], tf.int32))["z"].numpy()
    assert np.all(np.abs(z.mean(0) - mean) < 4 * np.sqrt(variance / 5000)), (z.mean(0), mean)
    np.testing.assert_allclose(z.var(0), variance, rtol=0.1)
    assert np.all(variance > 1.5)   # far from N(0, I): the test would catch a wrong prior


# ---------------------------------------------------------------------- sample_component
@pytest.mark.parametrize("component", [0, 1, 2])
def test_sample_component_draws_only_from_that_component(exported, loaded, component):
    w, mu, scale = _mog_components(exported["models"]["mog"].prior)
    n = 2000
    out = loaded["mog"].sample_component(tf.constant(component), tf.constant(n),
                                         tf.constant([3, component], tf.int32))
    z = out["z"].numpy()
    # Every draw is most probable under the chosen component's own density (the components
    # are >= 8 standard deviations apart, so a draw from another component would not be).
    log_p = tfd.MultivariateNormalDiag(mu, scale).log_prob(z[:, None, :]).numpy()   # [n, K]
    assert np.all(log_p.argmax(axis=1) == component)
    # ... with that component's mean and standard deviation.
    assert np.all(np.abs(z.mean(0) - mu[component]) < 4 * scale[component] / np.sqrt(n))
    np.testing.assert_allclose(z.std(0), scale[component], rtol=0.08)
    np.testing.assert_allclose(out["images"].numpy(),
                               exported["models"]["mog"].decode(z).numpy(), rtol=1e-5, atol=1e-6)


def test_sample_component_of_vampprior_is_the_posterior_at_that_pseudo_input(exported):
    # p_k(z) = q(z | u_k): the stateless draw from N(mu(u_k), sigma(u_k)^2) built here.
    model = exported["models"]["vamp"]
    loc, log_var = model.encoder(model.prior.pseudo_inputs())   # [K, D]
    component = tfd.MultivariateNormalDiag(loc[COMPONENT], tf.exp(0.5 * log_var[COMPONENT]))
    z = component.sample(NUM, seed=tf.constant(SEED_A, tf.int32)).numpy()
    np.testing.assert_allclose(exported["fresh"]["vamp/sample_component/z"], z, rtol=1e-5, atol=1e-6)
    assert not np.allclose(exported["fresh"]["vamp/sample_a/z"], z, atol=1e-3)


# ---------------------------------------------------------------------- log_likelihood
@pytest.mark.parametrize("name", ALL)
def test_log_likelihood_equals_tfpriors_evaluation(exported, loaded, name):
    # Same noise addressing: seed [s, 0] reproduces evaluation's log_likelihood(seed=s) up to
    # float rounding (for VHP, whose log p(z) is a per-chunk seeded bound, with the same chunks).
    x = exported["x"][name]
    if name in FRESH:
        num_samples, got = LL_SAMPLES, exported["fresh"][f"{name}/log_likelihood/log_likelihood"]
    else:   # evaluation uses other chunks (7 samples each) than the export (16): same result
        num_samples = TOY_LL_SAMPLES
        got = loaded[name].log_likelihood(tf.constant(x), tf.constant(num_samples),
                                          tf.constant([LL_SEED, 0], tf.int32))["log_likelihood"]
    chunk_size = CHUNK if name == "vhp" else 7
    reference = log_likelihood(exported["models"][name], x, num_samples=num_samples,
                               chunk_size=chunk_size, batch_size=len(x), seed=LL_SEED)
    np.testing.assert_allclose(got, reference.per_example, rtol=1e-5, atol=1e-4)


def test_log_likelihood_matches_closed_form(exported, loaded):
    # Linear-Gaussian VAE: p(x) = N(b, W W^T + s^2 I) exactly; the inexact proposal needs many
    # samples (a missing log S or normalising constant would be off by more than a nat).
    x = exported["x"]["toy"]
    got = loaded["toy"].log_likelihood(tf.constant(x), tf.constant(4000),
                                       tf.constant([1, 2], tf.int32))["log_likelihood"].numpy()
    np.testing.assert_allclose(got, exact_log_marginal(x), atol=0.05)


def test_log_likelihood_is_a_function_of_the_seed(exported, loaded):
    x = tf.constant(exported["x"]["vhp"])
    ll = loaded["vhp"].log_likelihood
    first = ll(x, tf.constant(20), tf.constant([4, 4], tf.int32))["log_likelihood"].numpy()
    again = ll(x, tf.constant(20), tf.constant([4, 4], tf.int32))["log_likelihood"].numpy()
    other = ll(x, tf.constant(20), tf.constant([4, 5], tf.int32))["log_likelihood"].numpy()
    np.testing.assert_array_equal(first, again)
    assert np.abs(first - other).min() > 1e-5


def test_log_likelihood_of_an_image_does_not_depend_on_later_images(exported, loaded):
    # The noise of sample s of row n depends on (seed, n, s) only: a prefix of the batch gets
    # the same estimates (closed-form log p(z)); a seed-sensitive estimate would differ.
    x = tf.constant(exported["x"]["mog"])
    ll = loaded["mog"].log_likelihood
    seed = tf.constant([4, 4], tf.int32)
    full = ll(x, tf.constant(40), seed)["log_likelihood"].numpy()
    prefix = ll(x[:2], tf.constant(40), seed)["log_likelihood"].numpy()
    np.testing.assert_allclose(prefix, full[:2], rtol=1e-6, atol=1e-5)


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
