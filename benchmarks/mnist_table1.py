"""The VampPrior paper's MNIST table (Tomczak & Welling 2018, Table 1): four models, long runs.

Rows (dynamic MNIST; the paper's test log-likelihoods with 5000 IS samples):

    vae_standard    VAE (L = 1), N(0, I) prior            -84.50
    vae_vampprior   VAE (L = 1), VampPrior K = 500        -82.38
    hvae_standard   HVAE (L = 2), N(0, I) prior on z2     -82.42
    hvae_vampprior  HVAE (L = 2), VampPrior K = 500       -81.24

Setup (the paper's Sec. 4 and the pythae comparison's data): gated MLPs of 300 units, 40 latents
(40 + 40 for L = 2), Bernoulli decoder, Adam 5e-4, batch 100, linear KL warm-up over
--warmup-epochs (100), early stopping on the held-out ELBO (--patience epochs, 50). Training uses
the first 50,000 MNIST training images with dynamic binarization; the held-out set is the last
10,000, binarized once with RandomState(0) (its SHA-256 is recorded), used for the validation ELBO
and the test log-likelihood (MNIST's separate test files are not needed).

Every row writes `<out-dir>/<row>/`:
    curves.json / curves.png   validation ELBO per epoch (1 sample, all held-out images), the
                               IS log-likelihood every --ll-every epochs (--ll-samples samples on
                               the first --ll-images held-out images), β, training loss, seconds
    logs/                      TensorBoard (`tensorboard --logdir <out-dir>`)
    backup/                    Keras BackupAndRestore: rerun the same command after a stop or a
                               crash and the row resumes at its last finished epoch
    best.weights.h5            the weights of the best validation ELBO so far
    model.keras, metrics.json  at the end: the best weights, the final IS log-likelihood with
                               --final-samples samples on all held-out images, the budget it took

  python benchmarks/mnist_table1.py --data-dir MNIST_DIR --rows vae_vampprior --epochs 2000

With --budget-minutes M a row stops at the end of the first epoch at which its training and
evaluation time (summed over resumed runs) reaches M minutes: rows of equal budget, for a machine
on which the paper's runs (hundreds of epochs per row) do not fit. The metrics record the epochs it
took, and `--epochs <epochs_trained>` without a budget reruns the same row.
"""

import json
import math
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trainers.cli import ArgumentParser, run  # noqa: E402

ROWS = {"vae_standard": (1, "standard_normal", -84.50), "vae_vampprior": (1, "vampprior", -82.38),
        "hvae_standard": (2, "standard_normal", -82.42), "hvae_vampprior": (2, "vampprior", -81.24)}


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", required=True, help="directory with train-images-idx3-ubyte.gz etc.")
    p.add_argument("--rows", nargs="+", choices=list(ROWS), default=list(ROWS),
                   help="the models to train, one after the other")
    p.add_argument("--out-dir", default="benchmarks/results/mnist_table1",
                   help="one sub-directory per row (curves, logs, backup, model, metrics)")
    p.add_argument("--epochs", type=int, default=2000, help="largest number of epochs per row")
    p.add_argument("--budget-minutes", type=float, default=0.0,
                   help="stop a row at the end of the first epoch at which its training and "
                        "evaluation time, summed over resumed runs, reaches this many minutes "
                        "(0: no budget); the epochs it took are recorded")
    p.add_argument("--patience", type=int, default=50,
                   help="stop a row after this many epochs without a better validation ELBO (0: never)")
    p.add_argument("--warmup-epochs", type=int, default=100, help="linear KL warm-up (paper: 100)")
    p.add_argument("--components", type=int, default=500, help="VampPrior pseudo-inputs K")
    p.add_argument("--latent-dim", type=int, default=40, help="dimension of z (of z1 and z2 for L = 2)")
    p.add_argument("--hidden-units", type=int, default=300, help="width of every hidden layer")
    p.add_argument("--learning-rate", type=float, default=5e-4, help="Adam's rate (paper: 5e-4)")
    p.add_argument("--batch-size", type=int, default=100, help="images per batch (paper: 100)")
    p.add_argument("--train-images", type=int, default=50000,
                   help="the first N MNIST training images train (the paper: 50,000)")
    p.add_argument("--ll-every", type=int, default=10, help="IS log-likelihood every N epochs")
    p.add_argument("--ll-samples", type=int, default=1000, help="IS samples of the periodic estimate")
    p.add_argument("--ll-images", type=int, default=1000, help="held-out images of the periodic estimate")
    p.add_argument("--final-samples", type=int, default=5000,
                   help="IS samples of the final estimate on every held-out image (paper: 5000)")
    p.add_argument("--xla", choices=["on", "off"], default="on",
                   help="jit_compile the train step and the ELBO and IS estimators (on: the fastest "
                        "path whose reruns are bitwise equal)")
    p.add_argument("--precision", choices=["float32", "mixed_bfloat16"], default="float32",
                   help="Keras dtype policy of the networks (mixed_bfloat16: bf16 matmuls, float32 "
                        "weights and densities)")
    p.add_argument("--steps-per-execution", type=int, default=10,
                   help="batches per compiled call of the train step")
    p.add_argument("--threads", type=int, default=0, help="TF intra-op threads (0: TensorFlow's default)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the weights, the data order and every draw")
    p.add_argument("--verbose", type=int, default=2, choices=[0, 1, 2], help="Keras fit verbosity")
    args = p.parse_args(argv)
    for name in ("epochs", "components", "latent_dim", "hidden_units", "batch_size", "train_images",
                 "ll_every", "ll_samples", "ll_images", "final_samples", "steps_per_execution"):
        if getattr(args, name) < 1:
            p.error(f"Expected --{name.replace('_', '-')} >= 1. Received: {getattr(args, name)}")
    for name in ("patience", "warmup_epochs", "threads", "budget_minutes"):
        if getattr(args, name) < 0:
            p.error(f"Expected --{name.replace('_', '-')} >= 0. Received: {getattr(args, name)}")
    if not args.learning_rate > 0:
        p.error(f"Expected --learning-rate > 0. Received: {args.learning_rate}")
    return args


def build_row(row, args, steps_per_epoch):
    """The compiled model of a row."""
    import keras
    from tfpriors.likelihoods import BernoulliLikelihood
    from tfpriors.networks import MLPDecoder, MLPEncoder
    from tfpriors.priors import StandardNormalPrior, VampPrior
    from trainers import VAE, LinearWarmup
    from trainers.hvae import build_hvae
    levels, prior_name, _ = ROWS[row]
    shape, d, units = (28, 28, 1), args.latent_dim, args.hidden_units
    keras.mixed_precision.set_global_policy(args.precision)
    keras.utils.set_random_seed(args.seed)
    prior = (VampPrior(d, args.components, shape) if prior_name == "vampprior"
             else StandardNormalPrior(d))
    beta = LinearWarmup(args.warmup_epochs * steps_per_epoch)
    if levels == 2:
        model = build_hvae(shape, prior, BernoulliLikelihood(), latent_dims=(d, d),
                           hidden_units=units, beta=beta, seed=args.seed)
    else:
        model = VAE(MLPEncoder(d, shape, hidden_units=(units, units), gated=True),
                    MLPDecoder(d, shape, hidden_units=(units, units), gated=True), prior,
                    BernoulliLikelihood(), beta=beta, seed=args.seed)
    model.build((None,) + shape)
    model.compile(keras.optimizers.Adam(args.learning_rate), jit_compile=args.xla == "on",
                  steps_per_execution=args.steps_per_execution)
    return model


def learning_curve_callback(row_dir, heldout, args, paper):
    """A Keras callback that evaluates the held-out set after every epoch and keeps the curve,
    the best weights and the early-stopping count on disk, so that a resumed row continues them."""
    import keras
    from tfpriors.evaluation import elbo, log_likelihood

    curve_path = row_dir / "curves.json"
    jit = args.xla == "on"

    class LearningCurve(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.records = json.loads(curve_path.read_text()) if curve_path.exists() else []
            self.start = time.perf_counter()

        def finished(self):
            """True if the recorded curve already reached --epochs or the early stop."""
            if not self.records:
                return False
            last = self.records[-1]["epoch"]
            best = max(self.records, key=lambda r: r["val_elbo"])["epoch"]
            spent = sum(r["seconds"] for r in self.records) / 60.0
            return (last >= args.epochs or bool(args.patience and last - best >= args.patience)
                    or bool(args.budget_minutes and spent >= args.budget_minutes))

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            # A resumed row re-runs no finished epoch; an epoch already recorded is replaced.
            self.records = [r for r in self.records if r["epoch"] < epoch + 1]
            record = {"epoch": epoch + 1, "train_loss": float(logs.get("loss", math.nan)),
                      "beta": float(logs.get("beta_last", math.nan)),
                      "val_elbo": float(elbo(self.model, heldout, num_samples=1,
                                             seed=args.seed + 1, jit_compile=jit).mean),
                      "seconds": time.perf_counter() - self.start}
            if (epoch + 1) % args.ll_every == 0:
                record["val_log_likelihood"] = float(log_likelihood(
                    self.model, heldout[:args.ll_images], num_samples=args.ll_samples,
                    seed=args.seed + 2, jit_compile=jit).mean)
            best = max((r["val_elbo"] for r in self.records), default=-math.inf)
            if record["val_elbo"] > best:
                self.model.save_weights(row_dir / "best.weights.h5")
                record["best"] = True
            self.records.append(record)
            curve_path.write_text(json.dumps(self.records, indent=1))
            plot_curves(row_dir / "curves.png", self.records, paper)
            if self.finished():
                self.model.stop_training = True
            self.start = time.perf_counter()

    return LearningCurve()


def plot_curves(path, records, paper):
    """Validation ELBO per epoch and the periodic IS log-likelihood, beside the paper's figure."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    epochs = [r["epoch"] for r in records]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(epochs, [r["val_elbo"] for r in records], label="validation ELBO (1 sample)")
    ll = [(r["epoch"], r["val_log_likelihood"]) for r in records if "val_log_likelihood" in r]
    if ll:
        ax.plot(*zip(*ll), "o-", label="IS log-likelihood")
    ax.axhline(paper, color="grey", linestyle="--", label=f"paper {paper}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("nats per image")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def train_row(row, args, train_images, heldout, sha):
    import keras
    from tfpriors.datasets import make_dataset
    from tfpriors.evaluation import log_likelihood
    row_dir = Path(args.out_dir) / row
    row_dir.mkdir(parents=True, exist_ok=True)
    if (row_dir / "metrics.json").exists():
        print(f"{row}: finished before (metrics.json), skipped")
        return json.loads((row_dir / "metrics.json").read_text())
    steps_per_epoch = len(train_images) // args.batch_size
    model = build_row(row, args, steps_per_epoch)
    data = make_dataset(train_images, args.batch_size, binarization="dynamic", seed=args.seed,
                        drop_remainder=True)
    curve = learning_curve_callback(row_dir, heldout, args, ROWS[row][2])
    start = time.perf_counter()
    if not curve.finished():
        # The curve is written before the backup: a stop between the two re-runs that epoch,
        # whose record is then replaced. The backup is kept after training (a stop before
        # metrics.json must not restart the row).
        model.fit(data, epochs=args.epochs, verbose=args.verbose,
                  callbacks=[curve, keras.callbacks.BackupAndRestore(str(row_dir / "backup"),
                                                                     delete_checkpoint=False),
                             keras.callbacks.TensorBoard(str(row_dir / "logs")),
                             keras.callbacks.TerminateOnNaN()])
    wall = time.perf_counter() - start
    records = curve.records
    best = max(records, key=lambda r: r["val_elbo"])
    model.load_weights(row_dir / "best.weights.h5")
    model.save(row_dir / "model.keras")
    final = log_likelihood(model, heldout, num_samples=args.final_samples, seed=args.seed + 3,
                           jit_compile=args.xla == "on")
    final_seconds = time.perf_counter() - start - wall
    metrics = {"row": row, "levels": ROWS[row][0], "prior": ROWS[row][1],
               "test_log_likelihood": float(final.mean), "test_log_likelihood_std_error":
               float(final.per_example.std(ddof=1) / math.sqrt(len(final.per_example))),
               "final_samples": args.final_samples, "heldout_images": int(len(heldout)),
               "heldout_binarized_sha256": sha, "paper": ROWS[row][2],
               "best_epoch": best["epoch"], "best_val_elbo": best["val_elbo"],
               "epochs_trained": records[-1]["epoch"], "wall_seconds_last_run": wall,
               "train_seconds_total": sum(r["seconds"] for r in records),
               "final_estimate_seconds": final_seconds,
               "config": {k: v for k, v in vars(args).items() if k not in ("data_dir", "rows")}}
    (row_dir / "metrics.json").write_text(json.dumps(metrics, indent=1))
    print(json.dumps({k: metrics[k] for k in ("row", "test_log_likelihood", "paper", "best_epoch")}))
    return metrics


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import tensorflow as tf
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    from tfpriors.datasets import load_mnist, mnist_heldout_binarized
    train_images = load_mnist(args.data_dir, validation_size=10000)[0][:args.train_images]
    bits, _, sha = mnist_heldout_binarized(args.data_dir, validation_size=10000)
    heldout = bits.astype(np.float32)
    for row in args.rows:
        train_row(row, args, train_images, heldout, sha)
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
