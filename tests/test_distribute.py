"""Distributed training equals single-device training on the same global batches.

MirroredStrategy over two logical CPU devices and MultiWorkerMirroredStrategy with two worker
processes on localhost give the same per-step loss, β and controller state and the same final
weights as one device, with priors and controllers whose β moves (REWO, GECO) and with the
VHP prior's importance samples. Logical devices and collective ops must be configured before
TensorFlow initialises, so the distributed runs happen in subprocesses that run this file as a
script (`python tests/test_distribute.py mirrored|worker OUT`); the single-device reference of
the multi-worker test is trained in the test process.
"""

import json
import os
import pickle
import socket
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import LATENT, SHAPE, binary_images, make_vae
from tfpriors.likelihoods import BernoulliLikelihood
from tfpriors.networks import MLPDecoder, MLPEncoder
from tfpriors.priors import HierarchicalPrior
from trainers import ELBO, GECO, IWAE, REWO, VAE
from trainers.config import build_parser, parse_config
from trainers.distribute import (DistributedBackupAndRestore, cleanup_write_dir, configure_logical_cpus,
                                 cross_replica_sum, get_strategy, is_chief, is_distributed,
                                 replica_batch_slice, shard_by_data, write_dir)

ROOT = Path(__file__).resolve().parents[1]
# Wall-clock limit per subprocess (a hung collective must not hang the suite). A run needs ~40 s
# of CPU (mostly imports and tracing); the default leaves room for a machine shared with other
# jobs, TFPRIORS_DISTRIBUTE_TIMEOUT overrides it.
TIMEOUT = float(os.environ.get("TFPRIORS_DISTRIBUTE_TIMEOUT", 240))
RTOL, ATOL = 1e-4, 1e-6
LEARNING_RATE = 5e-3
# Weights are compared to a hundredth of one Adam step. Adam divides the first moment by the root
# of the second, so a weight whose gradient is about Adam's epsilon (a VampPrior logit near zero)
# moves by lr * g / (|g| + eps): a float-rounding difference in g between the replicas' summation
# order and the single device's then shows up as a difference of up to ~1e-3 of a step (seen:
# 5.3e-6 on a logit of -1.6e-4 after 5 steps), far above ATOL but far below a different update.
WEIGHT_ATOL = 1e-2 * LEARNING_RATE

# name -> (prior, controller, objective, examples, validation); batches of 8, one epoch
CASES = {
    # 5 steps of 8; β moves from 0.1 towards 1 (REWO, constraint met at once: main phase)
    "vamp_rewo": ("vampprior", "rewo", "elbo", 40, True),
    # 5 steps, the last one 5 examples split 3/2 over the replicas; β shrinks (GECO)
    "vhp_geco_iwae": ("vhp", "geco", "iwae", 37, False),
}
WORKER_CASE = ("vampprior", "geco", "elbo", 37, True)
LOGGED = ("loss", "kl", "constraint", "beta_last", "constraint_average")


# ------------------------------------------------------------------ training (test process and scripts)
def make_case_model(case, steps_per_execution=1):
    """The tiny VAE of a case, built and compiled in the current strategy's scope."""
    prior, controller, objective = case[:3]
    beta = REWO(kappa=0.7, nu=5.0, initial_beta=0.1) if controller == "rewo" else GECO(kappa=0.3, nu=2.0)
    objective = ELBO(1) if objective == "elbo" else IWAE(2)
    if prior == "vhp":
        keras.utils.set_random_seed(0)
        model = VAE(MLPEncoder(LATENT, SHAPE, hidden_units=(16,), gated=True),
                    MLPDecoder(LATENT, SHAPE, hidden_units=(16,), gated=True),
                    HierarchicalPrior(LATENT, hidden_units=(8, 8), num_samples=3),
                    BernoulliLikelihood(), objective=objective, beta=beta, seed=0)
        model.build((None,) + SHAPE)
    else:
        model = make_vae(prior, objective=objective, beta=beta)
    model.compile(keras.optimizers.Adam(LEARNING_RATE), steps_per_execution=steps_per_execution)
    return model


def train_case(case, strategy=None, shard=False):
    """Trains a tiny VAE for one epoch and returns per-step logs, history and final weights."""
    examples, validation = case[3:]
    strategy = strategy if strategy is not None else tf.distribute.get_strategy()
    with strategy.scope():
        model = make_case_model(case)

    def batched(images, size):
        ds = tf.data.Dataset.from_tensor_slices(images).batch(size)
        return shard_by_data(ds) if shard else ds

    steps = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            steps.append({key: float(np.asarray(logs[key]).reshape(())) for key in LOGGED})

    x = binary_images(examples, seed=1)
    history = model.fit(batched(x, 8), epochs=1, verbose=0, callbacks=[Record()],
                        validation_data=batched(x[:10], 10) if validation else None)
    return {"steps": steps,
            "history": {k: [float(np.asarray(v).reshape(())) for v in vs]
                        for k, vs in history.history.items()},
            "weights": {f"{i:02d}:{w.path.rsplit('/', 1)[-1]}": w.numpy()
                        for i, w in enumerate(model.weights)},
            # every block's optimiser state: moments and its own step count
            "optimizer": {f"{name}:{i:02d}": np.asarray(v.numpy())
                          for name, opt in model.optimizer.blocks.items()
                          for i, v in enumerate(opt.variables)},
            "replicas": strategy.num_replicas_in_sync}


def _mirrored_script(out):
    configure_logical_cpus(2)
    strategy = get_strategy("mirrored")       # one strategy per process: collective keys are per instance
    results = {name: {"single": train_case(case), "mirrored": train_case(case, strategy)}
               for name, case in CASES.items()}
    with strategy.scope():                    # Keras' multi-step loop fails under a strategy
        model = make_case_model(CASES["vamp_rewo"], steps_per_execution=2)
    try:
        model.fit(np.zeros((4,) + model.data_shape, "float32"), batch_size=2, verbose=0)
        results["steps_per_execution_error"] = None
    except ValueError as err:
        results["steps_per_execution_error"] = str(err)
    Path(out).write_bytes(pickle.dumps(results))


def _worker_script(out):
    strategy = get_strategy("multi_worker")   # first: collective ops are configured at start-up
    result = train_case(WORKER_CASE, strategy, shard=True)
    result["chief"] = is_chief(strategy)
    Path(out).write_bytes(pickle.dumps(result))


# ------------------------------------------------------------------ subprocess plumbing
def _env(**extra):
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


def _start(mode, out, **env):
    return _popen([str(Path(__file__).resolve()), mode, str(out)], **env)


def _popen(args, **env):
    return subprocess.Popen([sys.executable] + args, cwd=str(ROOT), env=_env(**env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_all(procs):
    """Waits for every process (TIMEOUT s each); kills all and fails with the stderr otherwise."""
    outputs = []
    for proc in procs:
        try:
            outputs.append(proc.communicate(timeout=TIMEOUT))
        except subprocess.TimeoutExpired:
            for other in procs:
                other.kill()
            _, err = proc.communicate()
            pytest.fail(f"subprocess timed out after {TIMEOUT} s; stderr:\n{err[-5000:]}")
    for proc, (_, err) in zip(procs, outputs):
        if proc.returncode != 0:
            for other in procs:
                other.kill()
            pytest.fail(f"subprocess exited with {proc.returncode}; stderr:\n{err[-5000:]}")
    return outputs


def _free_ports(n):
    """n distinct free loopback ports (bound to port 0, then released for the workers)."""
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(n)]
    try:
        for sock in socks:
            sock.bind(("localhost", 0))
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def _assert_same_training(reference, other, label):
    assert len(other["steps"]) == len(reference["steps"]) > 0, label
    for key in LOGGED:
        np.testing.assert_allclose([s[key] for s in other["steps"]],
                                   [s[key] for s in reference["steps"]], rtol=RTOL, atol=ATOL,
                                   err_msg=f"{label}: per-step {key}")
    assert other["history"].keys() == reference["history"].keys(), label
    for key, values in reference["history"].items():
        np.testing.assert_allclose(other["history"][key], values, rtol=RTOL, atol=ATOL,
                                   err_msg=f"{label}: history {key}")
    assert other["weights"].keys() == reference["weights"].keys(), label
    for key, value in reference["weights"].items():
        np.testing.assert_allclose(other["weights"][key], value, rtol=RTOL, atol=WEIGHT_ATOL,
                                   err_msg=f"{label}: weight {key}")
    assert other["optimizer"].keys() == reference["optimizer"].keys(), label
    for key, value in reference["optimizer"].items():
        np.testing.assert_allclose(other["optimizer"][key], value, rtol=RTOL, atol=ATOL,
                                   err_msg=f"{label}: optimizer state {key}")


# ------------------------------------------------------------------ tests
def test_mirrored_strategy_on_two_logical_cpus_equals_single_device(tmp_path):
    out = tmp_path / "mirrored.pkl"
    _wait_all([_start("mirrored", out)])
    results = pickle.loads(out.read_bytes())
    error = results.pop("steps_per_execution_error")
    assert error and "steps_per_execution=1" in error, error
    for name, runs in results.items():
        assert runs["single"]["replicas"] == 1 and runs["mirrored"]["replicas"] == 2, name
        betas = [s["beta_last"] for s in runs["single"]["steps"]]
        assert max(betas) > 1.5 * min(betas), (name, betas)          # β really moves
        _assert_same_training(runs["single"], runs["mirrored"], name)
        for key in ("rng_step", "step"):                               # counters: one per step
            found = [v for k, v in runs["mirrored"]["weights"].items() if k.endswith(key)]
            assert found and all(int(v) == 5 for v in found), (name, key, found)


def test_multi_worker_mirrored_strategy_with_two_local_workers(tmp_path):
    ports = _free_ports(2)
    cluster = {"worker": [f"localhost:{port}" for port in ports]}
    outs = [tmp_path / f"worker{i}.pkl" for i in range(2)]
    procs = [_start("worker", out, TF_CONFIG=json.dumps({"cluster": cluster,
                                                           "task": {"type": "worker", "index": i}}))
             for i, out in enumerate(outs)]
    _wait_all(procs)
    chief, worker = (pickle.loads(out.read_bytes()) for out in outs)
    assert chief["chief"] and not worker["chief"]
    assert chief["replicas"] == worker["replicas"] == 2
    for key, value in chief["weights"].items():                        # identical, not just close
        np.testing.assert_array_equal(worker["weights"][key], value, err_msg=key)
    assert chief["steps"] == worker["steps"] and chief["history"] == worker["history"]
    _assert_same_training(train_case(WORKER_CASE), chief, "multi-worker vs single device")


def test_train_cli_with_mirrored_strategy_writes_a_run_directory(tmp_path):
    run_dir = tmp_path / "run"
    args = ["-m", "trainers.train", "--strategy", "mirrored", "--logical-cpus", "2",
            "--num-examples", "200", "--validation-size", "50", "--batch-size", "50", "--epochs", "1",
            "--hidden-units", "16", "--components", "3", "--beta", "geco", "--nll-samples", "10",
            "--nll-examples", "20", "--verbose", "0", "--no-export", "--run-dir", str(run_dir)]
    [(_, err)] = _wait_all([_popen(args)])
    assert "--steps-per-execution 10 -> 1" in err
    for name in ("model.keras", "config.json", "history.json", "metrics.json", "samples.png"):
        assert (run_dir / name).exists(), name
    assert not (run_dir / "backup").exists()                          # removed after training
    config = json.loads((run_dir / "config.json").read_text())
    assert config["strategy"] == "mirrored" and config["logical_cpus"] == 2
    history = json.loads((run_dir / "history.json").read_text())
    assert all(np.isfinite(history[key][0]) for key in ("loss", "val_loss", "beta_last"))


class _Resolver:
    def __init__(self, task_type, task_id, cluster):
        self.task_type, self.task_id, self._cluster = task_type, task_id, cluster

    def cluster_spec(self):
        return tf.train.ClusterSpec(self._cluster)


class _ClusterStrategy:
    """Stands in for a MultiWorkerMirroredStrategy: only its cluster_resolver is read."""

    def __init__(self, task_type, task_id, cluster):
        self.cluster_resolver = _Resolver(task_type, task_id, cluster)


def test_only_the_chief_writes_the_run_directory(tmp_path):
    workers = {"worker": ["h0:1", "h1:1"]}
    with_chief = {"chief": ["c:1"], "worker": ["h0:1"]}
    assert is_chief(_ClusterStrategy("worker", 0, workers))
    assert not is_chief(_ClusterStrategy("worker", 1, workers))
    assert is_chief(_ClusterStrategy("chief", 0, with_chief))
    assert not is_chief(_ClusterStrategy("worker", 0, with_chief))
    run_dir = tmp_path / "run"
    assert write_dir(run_dir, _ClusterStrategy("worker", 0, workers)) == str(run_dir)
    private = write_dir(run_dir, _ClusterStrategy("worker", 1, workers))
    assert Path(private).is_dir() and "worker1" in private and not private.startswith(str(run_dir))
    cleanup_write_dir(private, run_dir)
    assert not Path(private).exists()
    run_dir.mkdir()
    cleanup_write_dir(run_dir, run_dir)                                 # never the chief's
    assert run_dir.is_dir()


def test_distributed_backup_restores_from_the_chiefs_directory_and_writes_its_own(tmp_path):
    x = binary_images(8)
    chief_dir, private_dir = tmp_path / "backup", tmp_path / "private"
    first = make_vae("standard_normal")
    first.compile(keras.optimizers.Adam(1e-2))
    first.fit(x, batch_size=4, epochs=1, verbose=0,
              callbacks=[DistributedBackupAndRestore(chief_dir, delete_checkpoint=False)])
    saved = (chief_dir / "latest.weights.h5").read_bytes()
    resumed = make_vae("standard_normal", seed=1)
    resumed.compile(keras.optimizers.Adam(1e-2))
    history = resumed.fit(x, batch_size=4, epochs=2, verbose=0, callbacks=[
        DistributedBackupAndRestore(chief_dir, write_dir=private_dir, delete_checkpoint=False)])
    assert len(history.history["loss"]) == 1                            # epoch 0 restored, 1 trained
    assert int(resumed.rng_step.value) == 4                             # restored 2 + trained 2
    assert (chief_dir / "latest.weights.h5").read_bytes() == saved      # the chief's is untouched
    assert (private_dir / "latest.weights.h5").is_file()


def test_strategy_helpers_and_flags():
    assert get_strategy("default") is tf.distribute.get_strategy()
    assert not is_distributed(get_strategy("default"))
    with pytest.raises(ValueError, match="strategy.*Received: 'tpu'"):
        get_strategy("tpu")
    with pytest.raises(ValueError, match="communication.*Received: 'mpi'"):
        get_strategy("multi_worker", communication="mpi")
    assert is_chief() and write_dir("runs/x") == "runs/x"
    assert replica_batch_slice(tf.constant(4)) is None                 # one replica: no slicing
    assert float(cross_replica_sum(tf.constant(2.5))) == 2.5
    config = parse_config(build_parser("t"), ["--strategy", "mirrored", "--logical-cpus", "2"])
    assert config["strategy"] == "mirrored" and config["logical_cpus"] == 2
    assert parse_config(build_parser("t"), [])["strategy"] == "default"
    with pytest.raises(ValueError, match="logical_cpus.*Received: logical_cpus=0"):
        parse_config(build_parser("t"), ["--logical-cpus", "0"])
    with pytest.raises(SystemExit):
        parse_config(build_parser("t"), ["--strategy", "parameter_server"])


if __name__ == "__main__":
    mode, out_path = sys.argv[1], sys.argv[2]
    {"mirrored": _mirrored_script, "worker": _worker_script}[mode](out_path)
