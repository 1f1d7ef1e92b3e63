"""How well a trained CP-VAE's z separates the digits: its q(c|x) head against a GMM fitted to its encodings.

For each run directory (a `trainers.train --model cpvae` run on MNIST, with its model.keras):

1. the head: argmax q(c|x) on the held-out images (the last 10,000 of the training file,
   binarized once as the run's own metrics.json measures them), Hungarian-matched to the labels
   (and the many-to-one accuracy, each category mapped to its most frequent digit);
2. the representation: the means of q(z|x) of the first --encodings training images (binarized
   once with seed 1, as the model saw them under dynamic binarization), a
   scikit-learn `GaussianMixture` with K components (diagonal and full covariances, --n-init
   restarts) fitted to them, and the same accuracies of its assignments of the held-out means.

If even the full-covariance GMM on the encodings stays far below the target accuracy, the head is
not what limits clustering: the digits are not separated in z. Writes one JSON object per run
(--out, JSON lines) and prints it.

  python benchmarks/cpvae_latent_gmm.py benchmarks/results/cpvae_mnist/seed0 --data-dir MNIST_DIR
"""

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trainers.cli import ArgumentParser, run  # noqa: E402


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dirs", nargs="+", help="CP-VAE run directories, each with model.keras")
    p.add_argument("--data-dir", required=True, help="directory with train-images-idx3-ubyte.gz etc.")
    p.add_argument("--encodings", type=int, default=20000, help="training encodings the GMM is fitted to")
    p.add_argument("--covariances", nargs="+", choices=["diag", "full"], default=["diag", "full"],
                   help="GMM covariance types")
    p.add_argument("--n-init", type=int, default=3, help="GMM restarts (the best likelihood is kept)")
    p.add_argument("--seed", type=int, default=0, help="the GMM's random_state")
    p.add_argument("--out", default=None, help="JSON-lines file the records are appended to")
    args = p.parse_args(argv)
    for name in ("encodings", "n_init"):
        if getattr(args, name) < 1:
            p.error(f"Expected --{name.replace('_', '-')} >= 1. Received: {getattr(args, name)}")
    for run_dir in args.run_dirs:
        if not (Path(run_dir) / "model.keras").is_file():
            p.error(f"Expected a run directory with model.keras. Received: {run_dir!r}")
    return args


def batched(fn, images, size=1000):
    import numpy as np
    import tensorflow as tf
    return np.concatenate([fn(tf.constant(images[i:i + size])).numpy()
                           for i in range(0, len(images), size)])


def scores(assigned, labels):
    """Hungarian and many-to-one accuracy and NMI of cluster assignments against labels."""
    from tfpriors.evaluation import assignment_metrics
    metrics = assignment_metrics(assigned, labels)
    return {key: metrics[key] for key in ("accuracy", "majority_accuracy", "nmi")}


def measure(run_dir, train, held, held_labels, args):
    import numpy as np
    from sklearn.mixture import GaussianMixture
    from trainers.run_io import load_model
    model = load_model(Path(run_dir) / "model.keras", compile=False)
    head = np.argmax(batched(model.cluster, held), axis=-1)
    record = {"run_dir": str(run_dir), "categories": int(model.num_clusters),
              "z_input": getattr(model, "z_input", None),
              "decoder_input": getattr(model, "decoder_input", None),
              "prior_covariance": getattr(model.prior, "covariance", "diagonal"),
              "head": scores(head, held_labels)}
    from tfpriors.datasets import fixed_binarize
    bits = fixed_binarize(train[:args.encodings], seed=1).astype(np.float32)
    z_train = batched(lambda x: model.posterior(x).mean(), bits)
    z_held = batched(lambda x: model.posterior(x).mean(), held)
    for covariance in args.covariances:
        gmm = GaussianMixture(model.num_clusters, covariance_type=covariance, n_init=args.n_init,
                              random_state=args.seed).fit(z_train)
        record[f"gmm_{covariance}"] = scores(gmm.predict(z_held), held_labels)
    return record


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from tfpriors.datasets import load_dataset
    splits = load_dataset("mnist", path=args.data_dir)             # held-out set binarized once
    train, held, held_labels = splits.train_images, splits.val_images, splits.val_labels
    for run_dir in args.run_dirs:
        record = measure(run_dir, train, held, held_labels, args)
        line = json.dumps(record)
        print(line, flush=True)
        if args.out:
            with open(args.out, "a") as f:
                f.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
