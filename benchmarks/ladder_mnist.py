"""LaDDer end to end on MNIST against four priors at equal budget (Lin & Clark 2020, Table 3).

Each model is `python -m trainers.train` on real-valued MNIST (no binarization) with a Laplace
decoder of learned scale, gated MLPs of --hidden-units, --latent-dim latents, constant beta = 1,
Adam 5e-4, batch 100, XLA, the same --epochs:

    normal     --prior standard_normal
    gmm        --prior mog --components --gmm-components --learn-weights
    vampprior  --prior vampprior --components --pseudo-inputs
    vhp        --prior vhp (IW bound, K = 16, zeta of --latent-dim dimensions)
    ladder     --model ladder (ELBO bound, t of --hyper-dim dimensions, DP-GMM hyper prior)

VHP's and LaDDer's prior networks are gated MLPs of two --prior-hidden-units layers. Each run
writes its run directory under --out-dir; this script collects from their metrics.json the held-out
ELBO, the per-pixel reconstruction error (mean squared error of decode(encode(x))), the IS
log-likelihood and, for LaDDer, its hyper prior's components against the digit classes
(Hungarian accuracy, NMI), into results.json and results.md. A stopped run resumes from its backup
when the command is run again; finished runs are skipped.

Then, on the trained LaDDer, shortest likely paths (Eq. 9) in t between --path-pairs random pairs of
held-out images against the linear path between the same endpoints: the mean log p(t) of the free
points of each (paths.json), and the decoded strips of the first four pairs (paths.png).

  python benchmarks/ladder_mnist.py --data-dir MNIST_DIR --out-dir benchmarks/results/ladder_mnist
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trainers.cli import ArgumentParser, run  # noqa: E402

MODELS = ("normal", "gmm", "vampprior", "vhp", "ladder")
PAPER_MNIST = {"normal": (1528.6, 2.3), "vampprior": (1476.3, 2.5), "gmm": (1558.2, 2.3),
               "vhp": (1534.9, 2.4), "ladder": (1562.5, 2.2)}   # ELBO, per-pixel error x 0.01


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", required=True, help="directory with train-images-idx3-ubyte.gz etc.")
    p.add_argument("--out-dir", default="benchmarks/results/ladder_mnist",
                   help="a run directory per prior (model, metrics, plots), results.json/.md, the SLP paths (paths.json/.png)")
    p.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS),
                   help="the priors trained end to end, one VAE each")
    p.add_argument("--epochs", type=int, default=20, help="epochs of every model (equal budget)")
    p.add_argument("--latent-dim", type=int, default=16, help="dimension D of z")
    p.add_argument("--hyper-dim", type=int, default=8, help="LaDDer's t")
    p.add_argument("--hidden-units", type=int, default=300, help="width of the VAE's gated MLPs")
    p.add_argument("--prior-hidden-units", type=int, default=256,
                   help="width of VHP's and LaDDer's prior networks")
    p.add_argument("--gmm-components", type=int, default=100, help="components of the GMM prior")
    p.add_argument("--pseudo-inputs", type=int, default=500, help="VampPrior's pseudo-inputs K")
    p.add_argument("--max-components", type=int, default=50, help="LaDDer's DP truncation level M")
    p.add_argument("--hyper-concentration", type=float, default=None,
                   help="LaDDer's DP concentration alpha_0 (default 1 / --max-components)")
    p.add_argument("--block-sweep", action="store_true",
                   help="LaDDer updates the prior VAE and then the data VAE on every batch (equal "
                        "data-VAE steps to the other models) instead of alternating steps")
    p.add_argument("--nll-samples", type=int, default=1000,
                   help="importance samples per image of the held-out log-likelihood")
    p.add_argument("--nll-examples", type=int, default=1000,
                   help="first N held-out images of the ELBO and the log-likelihood")
    p.add_argument("--path-pairs", type=int, default=20, help="image pairs of the SLP comparison")
    p.add_argument("--path-points", type=int, default=8, help="free points J of each path")
    p.add_argument("--path-steps", type=int, default=500, help="Adam steps of each SLP")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the weights, the data order and every draw")
    p.add_argument("--verbose", type=int, default=2, choices=[0, 1, 2],
                   help="Keras fit verbosity: 0 silent, 1 progress bar, 2 one line per epoch")
    args = p.parse_args(argv)
    if args.hyper_concentration is not None and not args.hyper_concentration > 0:
        p.error(f"Expected --hyper-concentration > 0. Received: {args.hyper_concentration}")
    for name in ("epochs", "latent_dim", "hyper_dim", "hidden_units", "prior_hidden_units",
                 "gmm_components", "pseudo_inputs", "max_components", "nll_samples", "nll_examples"):
        if getattr(args, name) < 1:
            p.error(f"Expected --{name.replace('_', '-')} >= 1. Received: {getattr(args, name)}")
    return args


def model_flags(name, args):
    """The trainers.train flags of one model."""
    common = ["--dataset", "mnist", "--data-dir", args.data_dir, "--binarization", "none",
              "--likelihood", "laplace", "--learn-scale", "--architecture", "gated",
              "--hidden-units", str(args.hidden_units), str(args.hidden_units),
              "--latent-dim", str(args.latent_dim), "--beta", "constant", "--epochs", str(args.epochs),
              "--batch-size", "100", "--learning-rate", "5e-4", "--lr-warmup-steps", "0",
              "--jit-compile", "--nll-samples", str(args.nll_samples),
              "--nll-examples", str(args.nll_examples), "--seed", str(args.seed),
              "--verbose", str(args.verbose)]
    prior_units = ["--vhp-hidden-units", str(args.prior_hidden_units), str(args.prior_hidden_units)]
    return common + {
        "normal": ["--prior", "standard_normal"],
        "gmm": ["--prior", "mog", "--components", str(args.gmm_components), "--learn-weights"],
        "vampprior": ["--prior", "vampprior", "--components", str(args.pseudo_inputs)],
        "vhp": ["--prior", "vhp"] + prior_units,
        "ladder": ["--model", "ladder", "--vhp-bound", "elbo", "--vhp-samples", "1",
                   "--hyper-dim", str(args.hyper_dim), "--max-components",
                   str(args.max_components)] + prior_units +
                  (["--block-sweep"] if args.block_sweep else []) +
                  ([] if args.hyper_concentration is None
                   else ["--hyper-concentration", str(args.hyper_concentration)]),
    }[name]


def summary(metrics):
    row = {"elbo": metrics["elbo"]["mean"], "elbo_std_error": metrics["elbo"].get("std_error"),
           "log_likelihood": metrics["log_likelihood"]["mean"],
           "reconstruction_mse_per_pixel": metrics["reconstruction_error"]["mean"],
           "train_seconds": metrics.get("train_seconds")}
    if "clustering" in metrics:
        row["components_vs_digits"] = {k: metrics["clustering"][k]
                                       for k in ("accuracy", "nmi", "clusters_used")
                                       if k in metrics["clustering"]}
    return row


def main(argv=None):
    args = parse_args(argv)
    from trainers import train
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    for name in args.models:
        run_dir = out / name
        if not (run_dir / "metrics.json").exists():
            status = train.main(model_flags(name, args) + ["--run-dir", str(run_dir)])
            if status != 0:
                return status
        results[name] = summary(json.loads((run_dir / "metrics.json").read_text()))
        results[name]["paper_mnist_elbo"], results[name]["paper_mnist_error_x100"] = PAPER_MNIST[name]
        print(json.dumps({"model": name, **results[name]}), flush=True)
    config = {k: v for k, v in vars(args).items() if k != "data_dir"}
    (out / "results.json").write_text(json.dumps({"config": config, "models": results}, indent=1))
    lines = ["| model | held-out ELBO | IS log-likelihood | per-pixel MSE | paper ELBO | paper error (x0.01) |",
             "|---|---|---|---|---|---|"]
    for name, r in results.items():
        lines.append(f"| {name} | {r['elbo']:.1f} | {r['log_likelihood']:.1f} | "
                     f"{r['reconstruction_mse_per_pixel']:.4f} | {r['paper_mnist_elbo']} | "
                     f"{r['paper_mnist_error_x100']} |")
    (out / "results.md").write_text("\n".join(lines) + "\n")
    if "ladder" in args.models:
        compare_paths(args, out)
    return 0


def compare_paths(args, out):
    """SLP against linear paths in LaDDer's t: mean log p(t) of the free points, decoded strips."""
    import numpy as np
    import tensorflow as tf
    from tfpriors import plotting
    from tfpriors.datasets import load_mnist
    from tfpriors.interpolation import (decode_latents, hyper_latents_to_code, linear_path,
                                        slp_interpolation)
    from trainers import load_model
    model = load_model(out / "ladder" / "model.keras")
    held = load_mnist(args.data_dir, validation_size=10000)[2]
    rng = np.random.default_rng(args.seed)
    pairs = [rng.choice(len(held), 2, replace=False) for _ in range(args.path_pairs)]
    hyper = model.prior.innermost_hyper_prior.distribution()
    records, strips = [], []
    for index, (a, b) in enumerate(pairs):
        frames, slp = slp_interpolation(model, held[a], held[b], num_points=args.path_points,
                                        space="t", steps=args.path_steps, seed=index)
        line = linear_path(frames.latents[0], frames.latents[-1], args.path_points + 2)
        line_log_p = float(np.mean(hyper.log_prob(tf.constant(line[1:-1], tf.float32))))
        records.append({"pair": [int(a), int(b)], "slp_mean_log_p": slp.terms["mean_log_prob"],
                        "linear_mean_log_p": line_log_p, "slp_length": slp.terms["length"],
                        "linear_length": float(np.linalg.norm(line[-1] - line[0]))})
        if index < 4:
            strips += [frames.images, decode_latents(model, hyper_latents_to_code(model, line))]
    gains = np.array([r["slp_mean_log_p"] - r["linear_mean_log_p"] for r in records])
    summary = {"pairs": len(records), "slp_higher": int(np.sum(gains > 0)),
               "mean_gain_nats": float(gains.mean()), "median_gain_nats": float(np.median(gains)),
               "records": records}
    (out / "paths.json").write_text(json.dumps(summary, indent=1))
    plotting.plot_image_grid(out / "paths.png", np.concatenate(strips),
                             "rows: SLP, linear (t) for four pairs of held-out digits",
                             columns=args.path_points + 2)
    print(json.dumps({k: v for k, v in summary.items() if k != "records"}), flush=True)


if __name__ == "__main__":
    sys.exit(run(main))
