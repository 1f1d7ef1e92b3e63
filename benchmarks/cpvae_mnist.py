"""CP-VAE on MNIST with K = 10 categories: unsupervised cluster accuracy per seed (Lavda et al., Sec. 5.2).

Each seed is `python -m trainers.train --model cpvae` on dynamically binarized MNIST (the first
50,000 training images; the last 10,000 held out) with the paper's setup: a MoG conditional prior
p(c) p(z|c) with K = --components categories, 40 latents and gated MLPs of 300 units by default
(--latent-dim, --hidden-units), Adam 5e-4, batch 100, a linear KL warm-up (the paper: 100 epochs),
XLA. The run directory of each seed holds its metrics.json (Hungarian-matched accuracy, the
many-to-one accuracy that a by-hand matching as in the paper allows, NMI and ARI of argmax q(c|x)
against the digit labels on the 10,000 held-out images; IS log-likelihood and ELBO on
--nll-examples of them), component_samples.png (one row of draws per category) and the SavedModel
with its `cluster` signature. This script collects them into results.json and results.md next to
the paper's 94.6% accuracy and its negative ELBO for c = 10 (84.76). Finished seeds are skipped, a
stopped seed resumes from its backup. --gmm-init-epoch N starts p(z|c) and q(c|x) from a Gaussian
mixture fitted to the codes after N epochs (`trainers.initialize_from_gmm`; not in the paper).

  python benchmarks/cpvae_mnist.py --data-dir MNIST_DIR --out-dir benchmarks/results/cpvae_mnist
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trainers.cli import ArgumentParser, run  # noqa: E402
from trainers.cpvae import CPVAE  # noqa: E402
from trainers.cpvae_init import COVARIANCE_TYPES  # noqa: E402
from tfpriors.priors import MixtureOfGaussiansPrior  # noqa: E402

PAPER_ACCURACY, PAPER_NEG_ELBO = 0.946, 84.76


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", required=True, help="directory with train-images-idx3-ubyte.gz etc.")
    p.add_argument("--out-dir", default="benchmarks/results/cpvae_mnist",
                   help="a seed<S>/ run directory per seed (model, metrics, plots) and results.json/.md")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                   help="seeds to train, one model each (weights, data order, draws)")
    p.add_argument("--components", type=int, default=10, help="K categories of c")
    p.add_argument("--epochs", type=int, default=50, help="training epochs of 500 batches of 100")
    p.add_argument("--warmup-epochs", type=int, default=20, help="linear KL warm-up (paper: 100)")
    p.add_argument("--latent-dim", type=int, default=40,
                   help="dimension of z (the paper: 40)")
    p.add_argument("--hidden-units", type=int, nargs="+", default=[300, 300],
                   help="widths of the gated hidden layers of encoder and decoder (the paper: 300 300)")
    p.add_argument("--z-input", choices=list(CPVAE.Z_INPUTS), default="probabilities",
                   help="what q(z|x, c) takes beside h(x): pi(x) (the paper) or the sampled c")
    p.add_argument("--decoder-input", choices=list(CPVAE.DECODER_INPUTS), default="z_and_c",
                   help="what the decoder takes: z and c (the paper's p(x|z, c)) or z alone "
                        "(p(x|z), as in VaDE; not in the paper)")
    p.add_argument("--prior-covariance", choices=list(MixtureOfGaussiansPrior.COVARIANCES),
                   default="diagonal",
                   help="covariances of p(z|c_k): diagonal (the paper's Eq. 5) or full")
    p.add_argument("--freeze-prior", action="store_true",
                   help="keep p(z|c) at its random initialisation (the authors' public code)")
    p.add_argument("--gmm-init-epoch", type=int, default=0,
                   help="start p(z|c) and q(c|x) from a Gaussian mixture fitted to the codes after "
                        "this many epochs (trainers/cpvae_init.py); 0: off (the paper)")
    p.add_argument("--gmm-covariance", choices=list(COVARIANCE_TYPES), default="diag",
                   help="covariances of that mixture's EM fit")
    p.add_argument("--nll-samples", type=int, default=1000,
                   help="importance samples through (c, z) per image of the held-out log-likelihood")
    p.add_argument("--nll-examples", type=int, default=1000,
                   help="first N held-out images of the ELBO and the log-likelihood")
    p.add_argument("--verbose", type=int, default=2, choices=[0, 1, 2],
                   help="Keras fit verbosity: 0 silent, 1 progress bar, 2 one line per epoch")
    args = p.parse_args(argv)
    for name in ("components", "epochs", "nll_samples", "nll_examples", "latent_dim"):
        if getattr(args, name) < 1:
            p.error(f"Expected --{name.replace('_', '-')} >= 1. Received: {getattr(args, name)}")
    if min(args.hidden_units) < 1:
        p.error(f"Expected every --hidden-units >= 1. Received: {args.hidden_units}")
    if not 0 <= args.gmm_init_epoch <= args.epochs:
        p.error(f"Expected 0 <= --gmm-init-epoch <= --epochs. Received: {args.gmm_init_epoch}")
    if args.gmm_init_epoch and args.freeze_prior:
        p.error("Expected at most one of --gmm-init-epoch and --freeze-prior (the first sets the "
                "prior the second freezes at its random initialisation)")
    if args.warmup_epochs < 0:
        p.error(f"Expected --warmup-epochs >= 0. Received: {args.warmup_epochs}")
    return args


def seed_flags(args, seed):
    return ["--dataset", "mnist", "--data-dir", args.data_dir, "--model", "cpvae", "--prior", "mog",
            "--components", str(args.components), "--architecture", "gated",
            "--hidden-units", *map(str, args.hidden_units), "--latent-dim", str(args.latent_dim),
            "--beta", "warmup", "--warmup-epochs",
            str(args.warmup_epochs), "--epochs", str(args.epochs), "--batch-size", "100",
            "--learning-rate", "5e-4", "--lr-warmup-steps", "0", "--jit-compile",
            "--nll-samples", str(args.nll_samples), "--nll-examples", str(args.nll_examples),
            "--mog-covariance", args.prior_covariance,
            "--cpvae-z-input", args.z_input, "--cpvae-decoder-input", args.decoder_input,
            "--seed", str(seed), "--verbose", str(args.verbose)] + \
        (["--freeze-prior"] if args.freeze_prior else []) + \
        (["--cpvae-gmm-init-epoch", str(args.gmm_init_epoch), "--cpvae-gmm-covariance",
          args.gmm_covariance] if args.gmm_init_epoch else [])


def _fmt(value):
    """A table cell: three decimals, or empty for a record that predates the column."""
    return "" if value is None else f"{value:.3f}"


def main(argv=None):
    args = parse_args(argv)
    from trainers import train
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = {}
    for seed in args.seeds:
        run_dir = out / f"seed{seed}"
        if not (run_dir / "metrics.json").exists():
            status = train.main(seed_flags(args, seed) + ["--run-dir", str(run_dir)])
            if status != 0:
                return status
        m = json.loads((run_dir / "metrics.json").read_text())
        rows[seed] = {"accuracy": m["clustering"]["accuracy"],
                      "majority_accuracy": m["clustering"].get("majority_accuracy"),
                      "nmi": m["clustering"]["nmi"],
                      "ari": m["clustering"]["ari"], "clusters_used": m["clustering"].get("clusters_used"),
                      "neg_elbo": -m["elbo"]["mean"], "neg_log_likelihood": -m["log_likelihood"]["mean"],
                      "train_seconds": m["train_seconds"],
                      "gmm_init_agreement": (m.get("gmm_init") or {}).get("agreement")}
        print(json.dumps({"seed": seed, **rows[seed]}), flush=True)
    accuracies = [r["accuracy"] for r in rows.values()]
    summary = {"seeds": rows, "mean_accuracy": sum(accuracies) / len(accuracies),
               "min_accuracy": min(accuracies), "paper_accuracy": PAPER_ACCURACY,
               "paper_neg_elbo": PAPER_NEG_ELBO,
               "config": {k: v for k, v in vars(args).items() if k != "data_dir"}}
    (out / "results.json").write_text(json.dumps(summary, indent=1))
    lines = ["| seed | accuracy | many-to-one | NMI | ARI | -ELBO | -log p(x) (IS) |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {s} | {r['accuracy']:.3f} | {_fmt(r['majority_accuracy'])} | {r['nmi']:.3f} | "
              f"{r['ari']:.3f} | {r['neg_elbo']:.2f} | "
              f"{r['neg_log_likelihood']:.2f} |" for s, r in rows.items()]
    lines.append(f"| paper | {PAPER_ACCURACY} | | | | {PAPER_NEG_ELBO} | |")
    (out / "results.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
