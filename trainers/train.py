"""Train a VAE with a learnable prior and write a complete run directory.

    python -m trainers.train --help
    python -m trainers.train                      # the main job: VHP + REWO on blurred pendulum images
    python -m trainers.train --config run.json --epochs 5

The run directory holds model.keras, saved_model/ (serving signatures sample/encode/decode),
config.json, metrics.json, history.json, logs/ (TensorBoard) and PNG plots. If the directory holds
an interrupted run's backup, training resumes from it (keras.callbacks.BackupAndRestore).

Distributed (see trainers/distribute.py):
    python -m trainers.train --strategy mirrored --logical-cpus 2      # 2 replicas on one CPU
    TF_CONFIG='{"cluster": {"worker": ["host0:12345", "host1:12345"]},
                "task": {"type": "worker", "index": 0}}' python -m trainers.train --strategy multi_worker
(one process per worker, same flags; worker 0 is the chief and writes --run-dir, the others
write to temporary directories that are removed at the end).
"""

import sys
import time
from pathlib import Path

import keras
import numpy as np

import tensorflow as tf

from trainers.cli import run
from trainers.config import build_model, build_parser, parse_config
from trainers.cpvae_init import gmm_init_callbacks
from trainers.distribute import (DistributedBackupAndRestore, cleanup_write_dir,
                                 configure_logical_cpus, get_strategy, shard_by_data, write_dir)
from trainers.run_io import (load_data, print_summary, training_dataset, validation_dataset,
                             writable_run_dir, write_json)

__all__ = ["main", "train"]


MAX_COMPONENT_ROWS = 20   # component_samples.png: one row per component of priors up to this K


def _plots(model, splits, config, history, run_dir):
    from tfpriors import plotting
    val = splits.val_images[:2000]
    means = model.encode(val).numpy()
    images, z = model.sample(2000, seed=np.array([config["seed"], 7], np.int32))
    prior = model.prior_distribution()
    # The density panel needs p over the plotted code: the prior layer's latent is the whole
    # code in a one-level model only (not in the HVAE, whose code is [z1, z2]). Traced once: the
    # VHP's log p(z) is a 128-sample importance estimate per grid point, and in graph mode the
    # 14,400-point grid costs under half its eager time (the same values).
    density = tf.function(prior.log_prob) if model.prior.latent_dim == model.latent_dim else None
    cyclic = splits.name == "pendulum"
    plotting.plot_latent_space(run_dir / "latent_space.png", means, splits.val_labels[:2000],
                               prior_samples=z.numpy(), prior_log_prob=density,
                               label_name="angle (rad)" if cyclic else "label", cyclic=cyclic)
    plotting.plot_training_curves(run_dir / "training_curves.png", history)
    plotting.plot_reconstructions(run_dir / "reconstructions.png", val[:20], model(val[:20]).numpy())
    plotting.plot_image_grid(run_dir / "samples.png", images.numpy()[:50], "samples from the prior")
    k = model.num_components
    if k is not None and k <= MAX_COMPONENT_ROWS:
        # One row of 10 draws per mixture component (CP-VAE: per category c, Lavda et al. Fig. 5).
        rows = [model.sample_component(c, 10, np.array([config["seed"], 8 + c], np.int32))[0]
                for c in range(k)]
        plotting.plot_image_grid(run_dir / "component_samples.png",
                                 np.concatenate([np.asarray(r) for r in rows]),
                                 "one row per prior component")


def _pendulum_probe(model, splits):
    """Table 1's OLS angle probe (`tfpriors.probes.pendulum_angle_error`): fitted on the training
    images' posterior means, evaluated on the held-out ones."""
    from tfpriors.probes import model_angle_error
    probe = model_angle_error(model, splits)
    return {"error_rad": probe["error_rad"], "fit_error_rad": probe["fit_error_rad"],
            "num_eval": probe["num_eval"],
            "definition": "mean absolute circular error of the joint angle predicted from the polar "
                          "angle of the posterior means (tfpriors.probes.pendulum_angle_error)"}


def _strategy(config):
    """The run's tf.distribute strategy; called first, before any other TensorFlow work, because
    logical devices and MultiWorkerMirroredStrategy's collective ops are configured at start-up."""
    if config.get("logical_cpus"):
        configure_logical_cpus(config["logical_cpus"])
    return get_strategy(config.get("strategy") or "default")


def _datasets(splits, config, strategy_name):
    """(training dataset, validation data) with global batches; Keras' fit splits each global
    batch over the replicas. Multi-worker: DATA sharding, every worker keeps its slice."""
    dataset = training_dataset(splits, config)
    if strategy_name in (None, "default"):
        return dataset, validation_dataset(splits, config["batch_size"])
    validation = validation_dataset(splits, 500)
    if strategy_name == "multi_worker":
        dataset, validation = shard_by_data(dataset), shard_by_data(validation)
    return dataset, validation


def train(config):
    """Trains the model described by `config` and writes the run directory. Returns metrics.

    Under --strategy multi_worker every worker runs this whole function (saving and export
    read the mirrored variables on every worker), but only the chief writes to --run-dir: the
    others write to a temporary directory, removed at the end.
    """
    from tfpriors.evaluation import evaluate_all
    strategy = _strategy(config)
    run_dir = writable_run_dir(write_dir(config["run_dir"], strategy))
    splits, config = load_data(config)
    dataset, validation = _datasets(splits, config, config.get("strategy"))
    steps_per_epoch = int(np.ceil(len(splits.train_images) / config["batch_size"]))
    model = build_model(config, splits.image_shape, splits.train_images, steps_per_epoch,
                        strategy=strategy)
    write_json(run_dir / "config.json", config)

    val_images = splits.val_images
    # The GMM initialisation first: the backup of its epoch must hold the initialised model.
    initialisation = gmm_init_callbacks(config, splits.train_images)
    callbacks = initialisation + [DistributedBackupAndRestore(Path(config["run_dir"]) / "backup",
                                             write_dir=run_dir / "backup"),
                 keras.callbacks.TensorBoard(str(run_dir / "logs"), update_freq="epoch"),
                 keras.callbacks.TerminateOnNaN()]
    start = time.perf_counter()
    history = model.fit(dataset, epochs=config["epochs"], validation_data=validation,
                        validation_batch_size=None if isinstance(validation, tf.data.Dataset) else 500,
                        callbacks=callbacks, verbose=config["verbose"])
    train_seconds = time.perf_counter() - start
    if any(not np.isfinite(v) for v in history.history.get("loss", [np.nan])):
        raise FloatingPointError(f"Training loss became NaN/inf; see {run_dir / 'logs'}")
    model.save(run_dir / "model.keras")
    write_json(run_dir / "history.json", history.history)

    if callable(getattr(model, "estimate_aggregated_posterior", None)):
        model.estimate_aggregated_posterior(splits.train_images)   # q(c) for generation (CP-VAE)
        model.save(run_dir / "model.keras")
    n = min(config["nll_examples"], len(val_images))
    metrics = evaluate_all(model, val_images[:n], num_samples=config["nll_samples"], seed=config["seed"])
    if (callable(getattr(model, "cluster", None)) and splits.val_labels is not None
            and np.issubdtype(np.asarray(splits.val_labels).dtype, np.integer)):   # class labels
        from tfpriors.evaluation import cluster_metrics
        metrics["clustering"] = cluster_metrics(model, val_images, splits.val_labels)
    metrics.update(train_seconds=train_seconds, epochs=config["epochs"],
                   examples_per_second=config["epochs"] * len(splits.train_images) / train_seconds,
                   evaluated_examples=n, final_beta=float(model.beta_controller.beta()))
    if initialisation:
        metrics["gmm_init"] = initialisation[0].result    # None if resumed after its epoch
    if splits.name == "pendulum" and config["latent_dim"] >= 2:
        metrics["pendulum_ols_error"] = _pendulum_probe(model, splits)
    write_json(run_dir / "metrics.json", metrics)
    if not config["no_export"]:
        from tfpriors.export import export_sampler
        export_sampler(model, run_dir / "saved_model", version=None)
    _plots(model, splits, config, history.history, run_dir)
    cleanup_write_dir(run_dir, config["run_dir"])
    return metrics


def main(argv=None):
    config = parse_config(build_parser(__doc__.splitlines()[0]), argv)
    metrics = train(config)
    print(f"run directory: {config['run_dir']}")
    print_summary(metrics)
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
