"""Every command line fails in one line: `error: ...` on stderr, exit status 2, no traceback unless
--debug; a corrupt model file is named as such; a resumed run says where it resumes."""

import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from tests.helpers import binary_images, make_vae
from trainers.distribute import DistributedBackupAndRestore
from trainers.run_io import ModelFileError, load_model

ROOT = Path(__file__).resolve().parents[1]


def _run(*args):
    """Runs a command of the package in a fresh process; returns (exit status, stderr lines)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    done = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    return done.returncode, [line for line in done.stderr.splitlines() if line.strip()]


def _assert_one_error_line(status, lines, *fragments):
    assert status == 2, lines
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: "), lines
    for fragment in fragments:
        assert fragment in lines[0], lines


@pytest.mark.parametrize("command", [
    ["-m", "trainers.train", "--no-such-flag"],
    ["-m", "trainers.evaluate", "--run-dir", "x", "--no-such-flag"],
    ["-m", "trainers.tune", "--no-such-flag"],
    ["benchmarks/pendulum.py", "--no-such-flag"],
    ["saved_models/export_samplers.py", "--name", "n", "--model", "m", "--config", "c", "--metrics",
     "m", "--no-such-flag"],
])
def test_bad_flag_is_one_line_and_status_2(command):
    _assert_one_error_line(*_run(*command), "unrecognized arguments: --no-such-flag")


def test_bad_values_and_missing_data_are_one_line(tmp_path):
    _assert_one_error_line(*_run("-m", "trainers.train", "--components", "0"),
                           "Expected `components` to be a positive int", "components=0")
    _assert_one_error_line(*_run("-m", "trainers.train", "--beta", "rewo", "--kappa", "-1"),
                           "kappa=-1")
    _assert_one_error_line(*_run("-m", "trainers.train", "--dataset", "mnist", "--data-dir",
                                 str(tmp_path / "missing"), "--run-dir", str(tmp_path / "run")),
                           "MNIST", "no such directory")


def test_debug_shows_the_traceback():
    status, lines = _run("-m", "trainers.train", "--components", "0", "--debug")
    assert status == 1 and "Traceback (most recent call last):" in lines, lines
    assert lines[-1].startswith("ValueError: Expected `components`"), lines


def _saved_model(tmp_path):
    model = make_vae("mog")
    path = tmp_path / "model.keras"
    model.save(path)
    return model, path


def test_load_model_names_corrupt_and_truncated_files(tmp_path):
    model, path = _saved_model(tmp_path)
    assert len(load_model(path).get_weights()) == len(model.get_weights())
    truncated = tmp_path / "truncated.keras"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    noise = tmp_path / "noise.keras"
    noise.write_bytes(np.random.default_rng(0).bytes(4096))
    for bad in (truncated, noise):
        with pytest.raises(ModelFileError, match="not a zip archive .corrupt or truncated."):
            load_model(bad)
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_model(tmp_path / "missing.keras")
    with pytest.raises(IsADirectoryError, match="a directory"):
        load_model(tmp_path)


def test_evaluate_reports_a_truncated_model_in_one_line(tmp_path):
    _, path = _saved_model(tmp_path)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.json").write_text("{}")
    (run_dir / "model.keras").write_bytes(path.read_bytes()[:1000])
    _assert_one_error_line(*_run("-m", "trainers.evaluate", "--run-dir", str(run_dir)),
                           "model.keras", "corrupt or truncated")


def test_unusable_run_directories_are_one_line(tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("not a directory")
    _assert_one_error_line(*_run("-m", "trainers.evaluate", "--run-dir", str(a_file)),
                           "a file")
    if os.geteuid() == 0:           # root reads and writes anything: use a path under a file
        _assert_one_error_line(*_run("-m", "trainers.train", "--run-dir", str(a_file / "run")),
                               "is a file")
        return
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0)
    try:
        _assert_one_error_line(*_run("-m", "trainers.evaluate", "--run-dir", str(locked)),
                               "permission denied")
        _assert_one_error_line(*_run("-m", "trainers.train", "--run-dir", str(locked / "run")),
                               "permission denied")
    finally:
        locked.chmod(0o755)


class _Interrupt(keras.callbacks.Callback):
    """Stops training by raising after the given epoch (after the backup callback saved it)."""

    def __init__(self, after_epoch):
        super().__init__()
        self.after_epoch = after_epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.after_epoch:
            raise KeyboardInterrupt


def test_resumed_run_says_the_epoch_it_resumes_at(tmp_path, capsys):
    x = binary_images(40)
    model = make_vae("mog")
    model.compile(keras.optimizers.Adam(1e-3))
    backup = DistributedBackupAndRestore(tmp_path / "backup")
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, batch_size=20, epochs=4, verbose=0, callbacks=[backup, _Interrupt(1)])
    assert "resuming" not in capsys.readouterr().out          # a fresh start says nothing
    resumed = make_vae("mog")
    resumed.compile(keras.optimizers.Adam(1e-3))
    history = resumed.fit(x, batch_size=20, epochs=4, verbose=0,
                          callbacks=[DistributedBackupAndRestore(tmp_path / "backup")])
    assert "resuming from backup at epoch 3" in capsys.readouterr().out   # epochs 1-2 were done
    assert len(history.history["loss"]) == 2
