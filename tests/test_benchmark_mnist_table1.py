"""benchmarks/mnist_table1.py end to end on synthetic IDX files: curves, resume, metrics."""

import json

import numpy as np
import pytest

from tests.helpers import load_script
from tfpriors.datasets.idx import write_idx

def _load_script():
    return load_script("benchmarks/mnist_table1.py")


def _fake_mnist(directory):
    """10,000 held-out + 200 training images of random bytes, as MNIST's IDX files."""
    rng = np.random.default_rng(0)
    write_idx(directory / "train-images-idx3-ubyte.gz",
              rng.integers(0, 256, (10200, 28, 28), dtype=np.uint8))
    write_idx(directory / "train-labels-idx1-ubyte.gz", rng.integers(0, 10, 10200).astype(np.uint8))


@pytest.mark.slow
def test_a_row_records_its_curve_and_resumes_where_it_stopped(tmp_path):
    table = _load_script()
    _fake_mnist(tmp_path)
    out = tmp_path / "out"
    tiny = _tiny(tmp_path, out)
    assert table.main(tiny + ["--epochs", "2"]) == 0
    row = out / "vae_standard"
    for name in ("curves.json", "curves.png", "best.weights.h5", "model.keras", "metrics.json"):
        assert (row / name).exists(), name
    assert any((row / "logs").rglob("events.out.tfevents.*"))
    curve = json.loads((row / "curves.json").read_text())
    assert [r["epoch"] for r in curve] == [1, 2] and "val_log_likelihood" in curve[1]
    metrics = json.loads((row / "metrics.json").read_text())
    assert metrics["heldout_images"] == 10000 and metrics["epochs_trained"] == 2
    assert metrics["test_log_likelihood"] >= max(r["val_elbo"] for r in curve) - 1.0
    # Stopped before the end: the backup resumes at epoch 3, the curve continues.
    (row / "metrics.json").unlink()
    assert table.main(tiny + ["--epochs", "3"]) == 0
    curve = json.loads((row / "curves.json").read_text())
    assert [r["epoch"] for r in curve] == [1, 2, 3]
    assert json.loads((row / "metrics.json").read_text())["epochs_trained"] == 3


def _tiny(data_dir, out):
    """The flags of a row that trains in seconds."""
    return ["--data-dir", str(data_dir), "--out-dir", str(out), "--rows", "vae_standard",
            "--components", "3", "--hidden-units", "8", "--latent-dim", "2", "--train-images", "200",
            "--ll-every", "2", "--ll-images", "20", "--ll-samples", "5", "--final-samples", "5",
            "--warmup-epochs", "1", "--xla", "off", "--verbose", "0"]


@pytest.mark.slow
def test_a_time_budget_ends_the_row_after_the_epoch_that_reaches_it(tmp_path):
    table = _load_script()
    _fake_mnist(tmp_path)
    out = tmp_path / "out"
    assert table.main(_tiny(tmp_path, out) + ["--epochs", "5", "--budget-minutes", "1e-6",
                                                "--xla", "on"]) == 0
    metrics = json.loads((out / "vae_standard" / "metrics.json").read_text())
    assert metrics["epochs_trained"] == 1 and metrics["config"]["budget_minutes"] == 1e-6


def test_bad_flags_are_one_line_errors(tmp_path, capsys):
    table = _load_script()
    with pytest.raises(SystemExit):
        table.parse_args(["--data-dir", str(tmp_path), "--ll-every", "0"])
    assert "Expected --ll-every >= 1. Received: 0" in capsys.readouterr().err
