"""Data loading and run-directory outputs shared by the train, evaluate and tune commands."""

import json
from pathlib import Path

import numpy as np

from tfpriors.datasets import load_dataset, make_dataset

__all__ = ["load_data", "training_dataset", "write_json", "read_json", "print_summary"]


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
            raise ValueError("Expected --data-dir with MNIST's gzipped IDX files (e.g. "
                             "../shared/data/mnist). Received: no --data-dir")
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
    return json.loads(path.read_text())


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
