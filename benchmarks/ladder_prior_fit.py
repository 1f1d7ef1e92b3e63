"""LaDDer's Table 2 protocol on MNIST (Lin & Clark 2020, Sec. 4.1, Fig. 2): priors fitted to a frozen VAE.

For each latent size D (--latent-dims, default 2 and 16):

1. trains a VAE with a standard normal prior (gated MLPs, Laplace decoder on the real-valued
   images as in the paper) on the first --train-images MNIST training images;
2. freezes it and encodes the first --encodings training images (the aggregate posterior to
   fit) and the held-out images (the last 10,000 of the training file) into q(z|x);
3. fits each prior alone to the training posteriors (`tfpriors.evaluation.fit_prior_to_encodings`):
   normal (nothing to fit), gmm (a learned mixture of --gmm-components diagonal Gaussians),
   vampprior (--pseudo-inputs pseudo-inputs through the frozen encoder, initialised with noise
   as in the VampPrior paper's code), vampprior_data (the same, initialised at training images
   and still learned), vhp (hierarchical
   prior, IW bound), ladder (prior VAE with the DP-GMM hyper prior, block coordinate ascent,
   the paper's ELBO bound), ladder_iw (the same trained through VHP's IW bound, K = --iw-samples);
4. reports E_q(z)[log p(z)] on the held-out posteriors (`encodings_log_prior`; VHP and LaDDer by
   importance sampling through q(t|z) with --prior-samples samples, several counts to see
   the bound tighten), and for D = 2 plots each
   prior's density beside the aggregate posterior (Fig. 2), and the Hungarian accuracy of
   LaDDer's hyper-prior components against the digit classes.

Writes to --out-dir: d<D>/vae.keras, d<D>/<prior>.json (one record per prior, written as soon as
it is measured, with its per-image values and a digest of the held-out draws, so that
`benchmarks/paired_log_likelihood.py` can compare two priors image by image), d<D>/densities.png
(D = 2), results.json and results.md (every record in the folder).
With --reuse-vae an existing d<D>/vae.keras is loaded instead of trained, so that several processes
can fit different --priors to the same frozen VAE, and an interrupted run goes on where it stopped.

  python benchmarks/ladder_prior_fit.py --data-dir MNIST_DIR --out-dir benchmarks/results/ladder_table2
"""

import json
import os
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tfpriors.evaluation.encodings_fit import LEARNING_RATE_SCHEDULES  # noqa: E402
from trainers.cli import ArgumentParser, run  # noqa: E402

PRIORS = ("normal", "gmm", "vampprior", "vampprior_data", "vhp", "ladder", "ladder_iw")
PAPER_MNIST = {"normal": -19.0, "vampprior": -16.2, "vampprior_data": -16.2, "gmm": -8.4,
               "vhp": -17.5, "ladder": -12.3, "ladder_iw": -12.3}


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", required=True, help="directory with train-images-idx3-ubyte.gz etc.")
    p.add_argument("--out-dir", default="benchmarks/results/ladder_table2",
                   help="d<D>/ per latent size: vae.keras, one record per prior, densities.png")
    p.add_argument("--latent-dims", type=int, nargs="+", default=[2, 16], help="latent sizes D")
    p.add_argument("--hyper-dims", type=int, nargs="+", default=None,
                   help="dimension of t per D for VHP's zeta and LaDDer's t (default: D for "
                        "D <= 2, else D // 2)")
    p.add_argument("--priors", nargs="+", choices=PRIORS, default=list(PRIORS),
                   help="the priors fitted to the frozen VAE's encodings, one after the other")
    p.add_argument("--train-images", type=int, default=50000, help="VAE training images")
    p.add_argument("--encodings", type=int, default=10000,
                   help="training images whose posteriors the priors are fitted to")
    p.add_argument("--heldout-images", type=int, default=10000, help="held-out posteriors evaluated")
    p.add_argument("--vae-epochs", type=int, default=30,
                   help="epochs of the VAE with the standard normal prior")
    p.add_argument("--prior-epochs", type=int, default=50, help="epochs of each prior's fit")
    p.add_argument("--hidden-units", type=int, default=300, help="width of the VAE's gated MLPs")
    p.add_argument("--prior-hidden-units", type=int, default=256,
                   help="width of the two gated layers of VHP's and LaDDer's networks")
    p.add_argument("--prior-identity-scale", type=float, default=None,
                   help="vhp, ladder, ladder_iw with t of D dimensions: residual prior-VAE networks "
                        "that start as the identity map with this scale, N(t, s^2 I) and "
                        "N(z, s^2 I) (default: the usual random start)")
    p.add_argument("--gmm-components", type=int, default=100, help="components of the GMM prior")
    p.add_argument("--pseudo-inputs", type=int, default=500, help="VampPrior's pseudo-inputs K")
    p.add_argument("--max-components", type=int, default=50, help="LaDDer's DP truncation level")
    p.add_argument("--hyper-concentration", type=float, default=None,
                   help="LaDDer's DP concentration alpha_0 (stick breaks Beta(1, alpha_0)); larger "
                        "keeps more hyper-prior components (default: 1 / --max-components)")
    p.add_argument("--iw-samples", type=int, default=16,
                   help="importance samples K of the IW bound that trains vhp and ladder_iw")
    p.add_argument("--accurate-every", type=int, default=10,
                   help="epochs between LaDDer's accurate hyper-prior fits (fast fits in between)")
    p.add_argument("--eval-samples", type=int, default=5, help="z draws per held-out posterior")
    p.add_argument("--prior-samples", type=int, nargs="+", default=[1000],
                   help="importance samples of log p(z) through q(t|z) for VHP and LaDDer; with "
                        "several counts (e.g. 500 5000) each is evaluated on the same draws z, the "
                        "last gives the record's figure and each earlier one is recorded with the "
                        "last's paired gain over it (how much the IS bound still tightens)")
    p.add_argument("--learning-rate", type=float, default=1e-3,
                   help="Adam's step size of every prior's fit (the start with --lr-schedule cosine)")
    p.add_argument("--lr-schedule", choices=LEARNING_RATE_SCHEDULES, default="constant",
                   help="Adam's step size over each prior's fit: constant, or a cosine decay from "
                        "--learning-rate to 0 at the last step")
    p.add_argument("--threads", type=int, default=0, help="TF intra-op threads (0: default)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the weights, the data order and every draw")
    p.add_argument("--reuse-vae", action="store_true",
                   help="load d<D>/vae.keras from --out-dir when it exists instead of training it")
    p.add_argument("--verbose", type=int, default=2, choices=[0, 1, 2],
                   help="the VAE's Keras fit verbosity (0 silent, 1 progress bar, 2 one line per epoch); "
                        "2 also prints each prior's training bound per epoch")
    args = p.parse_args(argv)
    for name in ("train_images", "encodings", "heldout_images", "vae_epochs", "prior_epochs",
                 "hidden_units", "prior_hidden_units", "gmm_components", "pseudo_inputs",
                 "max_components", "accurate_every", "eval_samples", "iw_samples"):
        if getattr(args, name) < 1:
            p.error(f"Expected --{name.replace('_', '-')} >= 1. Received: {getattr(args, name)}")
    if min(args.prior_samples) < 1:
        p.error(f"Expected every --prior-samples value >= 1. Received: {args.prior_samples}")
    if args.hyper_concentration is not None and not args.hyper_concentration > 0:
        p.error(f"Expected --hyper-concentration > 0. Received: {args.hyper_concentration}")
    if min(args.latent_dims) < 1:
        p.error(f"Expected every --latent-dims value >= 1. Received: {args.latent_dims}")
    if args.hyper_dims is not None and len(args.hyper_dims) != len(args.latent_dims):
        p.error(f"Expected one --hyper-dims value per --latent-dims value. Received: "
                f"{args.hyper_dims} for {args.latent_dims}")
    return args


def train_vae(args, d, train):
    import keras
    from tfpriors.datasets import make_dataset
    from tfpriors.likelihoods import LaplaceLikelihood
    from tfpriors.networks import MLPDecoder, MLPEncoder
    from tfpriors.priors import StandardNormalPrior
    from trainers import VAE
    keras.utils.set_random_seed(args.seed)
    shape, units = (28, 28, 1), (args.hidden_units, args.hidden_units)
    model = VAE(MLPEncoder(d, shape, hidden_units=units, gated=True),
                MLPDecoder(d, shape, hidden_units=units, gated=True),
                StandardNormalPrior(d), LaplaceLikelihood(learn_scale=True), seed=args.seed)
    model.build((None,) + shape)
    model.compile(keras.optimizers.Adam(5e-4), jit_compile=True, steps_per_execution=10)
    model.fit(make_dataset(train, 100, seed=args.seed, drop_remainder=True), epochs=args.vae_epochs,
              verbose=args.verbose)
    return model


def make_prior(name, args, d, m):
    from tfpriors.priors import (HierarchicalPrior, MixtureOfGaussiansPrior, StandardNormalPrior,
                                 VampPrior, VGMMHyperPrior)
    units = (args.prior_hidden_units, args.prior_hidden_units)
    if name == "normal":
        return StandardNormalPrior(d)
    if name == "gmm":
        return MixtureOfGaussiansPrior(d, num_components=args.gmm_components, learn_weights=True)
    if name in ("vampprior", "vampprior_data"):
        return VampPrior(d, args.pseudo_inputs, (28, 28, 1), learn_weights=True,
                         init="data" if name == "vampprior_data" else "noise")
    if name == "vhp":
        return HierarchicalPrior(d, m, hidden_units=units, gated=True, num_samples=args.iw_samples,
                                 bound="iw", identity_scale=args.prior_identity_scale)
    iw = name == "ladder_iw"
    hyper = VGMMHyperPrior(m, max_components=args.max_components,
                           weight_concentration_prior=args.hyper_concentration)
    return HierarchicalPrior(d, m, hidden_units=units, gated=True,
                             num_samples=args.iw_samples if iw else 1,
                             bound="iw" if iw else "elbo", hyper_prior=hyper,
                             identity_scale=args.prior_identity_scale)


def encode(model, images):
    import numpy as np
    out = [model.encode_distribution(images[i:i + 500]) for i in range(0, len(images), 500)]
    return (np.concatenate([np.asarray(o[0]) for o in out]),
            np.concatenate([np.asarray(o[1]) for o in out]))


def plot_densities(path, priors, encoder, loc, scale, seed):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    rng = np.random.default_rng(seed)
    z = loc + scale * rng.normal(size=loc.shape)
    lo, hi = np.percentile(z, 0.5, 0) - 0.5, np.percentile(z, 99.5, 0) + 0.5
    xs, ys = np.linspace(lo[0], hi[0], 120), np.linspace(lo[1], hi[1], 120)
    grid = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2).astype(np.float32)
    fig, axes = plt.subplots(1, len(priors) + 1, figsize=(3.2 * (len(priors) + 1), 3.2))
    axes[0].hist2d(z[:, 0], z[:, 1], bins=[xs, ys], cmap="viridis")
    axes[0].set_title("aggregate posterior q(z)")
    for ax, (name, prior) in zip(axes[1:], priors.items()):
        dist = prior.distribution(encoder)
        density = np.concatenate([np.exp(np.asarray(dist.log_prob(grid[i:i + 2400])))
                                  for i in range(0, len(grid), 2400)])
        ax.imshow(density.reshape(120, 120), origin="lower", extent=(lo[0], hi[0], lo[1], hi[1]),
                  aspect="auto", cmap="viridis")
        ax.set_title(name)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def component_accuracy(prior, loc, labels):
    """Hungarian accuracy of LaDDer's hyper-prior components (argmax q(k|t(z))) against labels."""
    import numpy as np
    from tfpriors.evaluation import assignment_metrics
    metrics = assignment_metrics(np.argmax(np.asarray(prior.hyper_components(loc)), -1), labels)
    return {"accuracy": metrics["accuracy"], "nmi": metrics["nmi"],
            "components_used": metrics["clusters_used"]}


def bound_tightening(count, fewer, last):
    """The held-out mean at `count` importance samples and the last count's paired gain over it
    (an importance-sampled log p(z) is a lower bound that rises with the count)."""
    from tfpriors.evaluation import Estimate
    gain = Estimate(name="bound_tightening", per_example=last.per_example - fewer.per_example)
    return {"prior_samples": count, "heldout_log_prior": fewer.mean, "std_error": fewer.std_error,
            "last_minus_this": gain.mean, "last_minus_this_std_error": gain.std_error}


def evaluation_digest(loc, scale, args):
    """SHA-256 of what makes two records' per-image values paired: the held-out posteriors, the
    z draws per posterior and the evaluation seed (every prior sees the same draws z)."""
    import hashlib
    import numpy as np
    h = hashlib.sha256()
    for array in (loc, scale):
        h.update(np.ascontiguousarray(array, np.float32).tobytes())
    h.update(f"{args.eval_samples},{args.seed}".encode())
    return h.hexdigest()


def load_or_train_vae(args, d, train, path):
    from trainers import load_model
    if args.reuse_vae and path.exists():
        return load_model(path), 0.0
    start = time.perf_counter()
    vae = train_vae(args, d, train[:args.train_images])
    vae.save(path)
    return vae, time.perf_counter() - start


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    from tfpriors.datasets import load_mnist
    from tfpriors.evaluation import encodings_log_prior, fit_prior_to_encodings
    train, _, held, held_labels = load_mnist(args.data_dir, validation_size=10000)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    hyper_dims = args.hyper_dims or [d if d <= 2 else d // 2 for d in args.latent_dims]
    config = {k: v for k, v in vars(args).items() if k != "data_dir"}
    for d, m in zip(args.latent_dims, hyper_dims):
        row_dir = out / f"d{d}"
        row_dir.mkdir(exist_ok=True)
        vae, vae_seconds = load_or_train_vae(args, d, train, row_dir / "vae.keras")
        if vae_seconds:
            (row_dir / "vae.json").write_text(json.dumps(
                {"latent_dim": d, "vae_seconds": vae_seconds, "config": config}, indent=1))
        loc, scale = encode(vae, train[:args.encodings])
        held_loc, held_scale = encode(vae, held[:args.heldout_images])
        heldout_digest = evaluation_digest(held_loc, held_scale, args)
        fitted = {}
        for name in args.priors:
            t0 = time.perf_counter()
            prior = make_prior(name, args, d, m)
            if name.startswith("vampprior"):
                prior.build((None, 28, 28, 1))
            if name == "vampprior_data":
                prior.initialize_from_data(train[:args.encodings], seed=args.seed)
            history = fit_prior_to_encodings(prior, loc, scale, encoder=vae.encoder,
                                             epochs=args.prior_epochs, seed=args.seed,
                                             learning_rate=args.learning_rate,
                                             hyper_accurate_every=args.accurate_every,
                                             learning_rate_schedule=args.lr_schedule,
                                             verbose=args.verbose == 2)
            fit_seconds = time.perf_counter() - t0
            def evaluate(count):
                return encodings_log_prior(prior, held_loc, held_scale, encoder=vae.encoder,
                                           num_samples=args.eval_samples, prior_samples=count,
                                           seed=args.seed + 1)

            estimate = evaluate(args.prior_samples[-1])
            # A closed-form prior ignores the count (its info says None): it is evaluated once.
            fewer = ([] if estimate.info["prior_samples"] is None
                     else [(count, evaluate(count)) for count in args.prior_samples[:-1]])
            record = {"latent_dim": d, "hyper_dim": m, "prior": name,
                      "heldout_log_prior": estimate.mean, "std_error": estimate.std_error,
                      "heldout_log_prior_per_image": [round(float(v), 5)
                                                      for v in estimate.per_example],
                      "heldout_sha256": heldout_digest,
                      "fewer_prior_samples": [bound_tightening(count, e, estimate)
                                              for count, e in fewer],
                      "train_bound_last_epoch": history[-1], "fit_seconds": fit_seconds,
                      "eval_seconds": time.perf_counter() - t0 - fit_seconds,
                      "paper_mnist": PAPER_MNIST[name], "config": config}
            if name.startswith("ladder"):
                record["hyper_prior_components"] = prior.innermost_hyper_prior.num_active
                record["components_vs_digits"] = component_accuracy(
                    prior, held_loc, held_labels[:args.heldout_images])
            (row_dir / f"{name}.json").write_text(json.dumps(record, indent=1))
            print(json.dumps({k: v for k, v in record.items()
                              if k not in ("config", "heldout_log_prior_per_image")}), flush=True)
            fitted[name] = prior
        if d == 2 and len(fitted) > 1:
            plot_densities(row_dir / "densities.png", fitted, vae.encoder, loc, scale, args.seed)
    results = collect(out)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    write_table(out / "results.md", results)
    return 0


def _latent_size_then_name(row_dir):
    """Sort key of a row folder: its latent size (d<D>...), then its name."""
    digits = re.match(r"d(\d+)", row_dir.name)
    return (int(digits.group(1)) if digits else 0, row_dir.name)


def collect(out):
    """Every per-prior record under ``out``: {"d<D>": {"latent_dim", "hyper_dim", "priors": {...}}}."""
    results = {}
    for row_dir in sorted(out.glob("d*"), key=_latent_size_then_name):
        for name in PRIORS:
            path = row_dir / f"{name}.json"
            if not path.exists():
                continue
            record = json.loads(path.read_text())
            row = results.setdefault(row_dir.name, {"latent_dim": record["latent_dim"],
                                                    "hyper_dim": record["hyper_dim"], "priors": {}})
            row["priors"][name] = {k: v for k, v in record.items() if k not in (
                "latent_dim", "hyper_dim", "prior", "heldout_log_prior_per_image")}
    return results


def write_table(path, results):
    lines = ["| D | " + " | ".join(PRIORS) + " |", "|---|" + "---|" * len(PRIORS)]
    for key, row in results.items():
        label = str(row["latent_dim"]) if key == f"d{row['latent_dim']}" else f"{row['latent_dim']} ({key})"
        cells = []
        for name in PRIORS:
            r = row["priors"].get(name)
            cells.append("" if r is None else f"{r['heldout_log_prior']:.2f} ± {r['std_error']:.2f}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append("| paper (MNIST) | " + " | ".join(f"{PAPER_MNIST[n]}" for n in PRIORS) + " |")
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(run(main))
