"""Data loading, model loading and run-directory checks and outputs shared by the train,
evaluate and tune commands (and the benchmark scripts)."""

import json
import os
import zipfile
from pathlib import Path

import numpy as np

from tfpriors.datasets import load_dataset, make_dataset

__all__ = ["load_data", "training_dataset", "write_json", "read_json", "print_summary",
           "load_model", "ModelFileError", "writable_run_dir", "readable_run_dir"]


def load_data(config):
    """Loads the data set named in `config` and fills in its default likelihood/binarization.

    Returns:
      (DatasetSplits, config) where config has 'likelihood' and 'binarization' resolved.
    """
    config = dict(config)
    name = config["dataset"]
    kwargs = {}
    if config.get("validation_size") is not None:
        kwargs["validation_size"] = config["validation_size"]
    if name == "pendulum":
        kwargs.update(num_examples=config["num_examples"], seed=config["seed"],
                      blur=config.get("blur", 0.0))
    elif name == "mnist":
        data_dir = config.get("data_dir")
        if data_dir is None:
            raise ValueError("Expected --data-dir DIR, a directory with MNIST's gzipped IDX files "
                             "(train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz) or a TFDS "
                             "data_dir. Received: no --data-dir")
        kwargs["path"] = data_dir
    elif name == "digits":
        kwargs["seed"] = config["seed"]
    splits = load_dataset(name, **kwargs)
    if config.get("binarization") is None:
        config["binarization"] = splits.binarization or "none"
    if config.get("likelihood") is None:
        config["likelihood"] = "bernoulli" if config["binarization"] != "none" else splits.likelihood
    return splits, config


def validation_dataset(splits, batch_size):
    """The validation images in fixed order, as a tfpriors pipeline (tf.data autotuning off, see
    `tfpriors.datasets.pipeline`), so Keras does not build its own autotuned one every epoch."""
    return make_dataset(splits.val_images, batch_size, shuffle=False)


def training_dataset(splits, config):
    """The shuffled, batched (and binarized) training tf.data pipeline of a run."""
    binarization = None if config["binarization"] == "none" else config["binarization"]
    return make_dataset(splits.train_images, config["batch_size"], binarization=binarization,
                        shuffle=True, seed=config["seed"])


def write_json(path, obj):
    Path(path).write_text(json.dumps(obj, indent=2, default=_to_builtin) + "\n")


def read_json(path):
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Expected a JSON file at {path}. Received: no such file")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"Expected JSON in {path}. Received invalid JSON ({err})") from err


def _to_builtin(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if hasattr(value, "numpy"):
        return _to_builtin(value.numpy())
    raise TypeError(f"not JSON serialisable: {type(value)}")


def print_summary(metrics, keys=("log_likelihood", "elbo", "active_units", "pendulum_ols_error",
                                  "final_beta", "train_seconds")):
    """Prints the headline numbers of a metrics dict (means of nested estimates)."""
    for key in keys:
        if key in metrics:
            value = metrics[key]
            if isinstance(value, dict):
                value = value.get("mean", value.get("count", value.get("error_rad")))
            print(f"  {key}: {value}")


class ModelFileError(ValueError):
    """A model file that is not a readable Keras archive (corrupt, truncated, or not a .keras file)."""


def load_model(path, compile=True):
    """`keras.models.load_model` after checking that `path` is a readable `.keras` archive.

    Keras 3 reports a corrupt or truncated `.keras` file as "File not found"; this says what the
    file is instead. Importing `trainers` (this module's package) has registered every
    serialisable class of tfpriors, so any model the package saved loads.

    Args:
      path: a `.keras` file written by `model.save`.
      compile: passed to `keras.models.load_model`.

    Raises:
      FileNotFoundError: no such file. IsADirectoryError: `path` is a directory.
      PermissionError: the file cannot be read.
      ModelFileError: the file is not a zip archive, fails its CRC check or has no model config.
    """
    import keras
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Expected a Keras model file at {path}. Received: no such file")
    if path.is_dir():
        raise IsADirectoryError(f"Expected a Keras model file at {path}. Received: a directory")
    if not os.access(path, os.R_OK):
        raise PermissionError(f"Expected a readable Keras model file at {path}. Received: permission denied")
    size = path.stat().st_size
    expected = f"Expected {path} to be a Keras model file (a .keras zip archive written by model.save)"
    if not zipfile.is_zipfile(path):
        raise ModelFileError(f"{expected}. Received: {size} bytes that are not a zip archive "
                             f"(corrupt or truncated)")
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise ModelFileError(f"{expected}. Received: an unreadable zip archive ({err})") from err
    if damaged is not None:
        raise ModelFileError(f"{expected}. Received: a damaged archive ({damaged} fails its CRC check)")
    if "config.json" not in names:
        raise ModelFileError(f"{expected}. Received: a zip archive without the model's config.json")
    return keras.models.load_model(path, compile=compile)


def writable_run_dir(path):
    """Creates the run directory `path` if needed and checks that it can be written. Returns it.

    Raises:
      NotADirectoryError: `path` (or a parent) is a file. PermissionError: it cannot be written.
    """
    path = Path(path)
    for parent in (path, *path.parents):
        if parent.exists() and not parent.is_dir():
            raise NotADirectoryError(f"Expected --run-dir to be a directory. Received: {path} "
                                     f"({parent} is a file)")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except PermissionError as err:
        raise PermissionError(f"Expected a --run-dir that can be created. Received: {path} "
                              f"(permission denied)") from err
    if not os.access(path, os.W_OK | os.X_OK):
        raise PermissionError(f"Expected a writable --run-dir. Received: {path} (permission denied)")
    return path


def readable_run_dir(path):
    """Checks that the run directory `path` exists and can be read. Returns it.

    Raises:
      FileNotFoundError, NotADirectoryError, PermissionError, saying which.
    """
    path = Path(path)
    hint = f"train one with `python -m trainers.train --run-dir {path}`"
    if not path.exists():
        raise FileNotFoundError(f"Expected a run directory with model.keras and config.json. "
                                f"Received: --run-dir {path} (no such directory; {hint})")
    if not path.is_dir():
        raise NotADirectoryError(f"Expected --run-dir to be a run directory. Received: {path} (a file)")
    if not os.access(path, os.R_OK | os.X_OK):
        raise PermissionError(f"Expected a readable --run-dir. Received: {path} (permission denied)")
    return path
