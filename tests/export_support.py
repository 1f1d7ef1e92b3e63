"""Shared set-up of the export tests (test_export.py, test_export_requests.py).

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

The fixtures `exported` and `loaded` (tests/conftest.py, session scope) call export_all and
load_all once for both test modules.
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np

from tests.test_evaluation_toy import inexact_encoder, make_model, toy_images
from tfpriors.export import export_sampler, load_sampler
from tfpriors.likelihoods import BernoulliLikelihood
from tfpriors.networks import MLPDecoder, MLPEncoder
from tfpriors.priors import HierarchicalPrior, MixtureOfGaussiansPrior, VampPrior
from trainers import VAE


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


def export_all(tmp_path_factory):
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


def load_all(exported):
    """The archives loaded in this process (tf.saved_model.load, the loader of the fresh process)."""
    return {name: load_sampler(path) for name, path in exported["dirs"].items()}
