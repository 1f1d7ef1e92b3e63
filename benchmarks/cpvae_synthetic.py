"""CP-VAE on Lavda et al.'s synthetic data (Sec. 5.1, Figs. 3 and 4): two modes, K = 2 and K = 150.

Data: 50,000 points x ~ 1/2 N(0.3, 0.05^2) + 1/2 N(0.7, 0.05^2) (a 1x1x1 "image"), a Gaussian
decoder with a learned scale. For each K, trains the CP-VAE (MoG conditional prior with uniform
p(c), D latents, ReLU MLPs) and generates --samples points with c drawn from the aggregated
posterior q(c) (Eq. 14) and, for comparison, from the uniform p(c), then z ~ p(z|c) and
x ~ p(x|z, c). Writes to --out-dir:

    histograms.png     ground truth and generated histograms for each K, q(c) and uniform c
    q_c.png            the sorted marginal posterior q(c_k) for each K
    results.json       per K: the modes of the generated histogram, the density at 0.5 relative
                       to the modes, the fraction of samples within 0.1 of 0.3 and of 0.7, how many
                       q(c_k) exceed 0.01, the final ELBO

  python benchmarks/cpvae_synthetic.py --out-dir benchmarks/results/cpvae_synthetic
"""

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trainers.cli import ArgumentParser, run  # noqa: E402
from trainers.cpvae_init import MIXTURES  # noqa: E402

MODES = (0.3, 0.7)
STD = 0.05


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--categories", type=int, nargs="+", default=[2, 150], help="K values to train")
    p.add_argument("--examples", type=int, default=50000, help="training points")
    p.add_argument("--latent-dim", type=int, default=2, help="dimension D of z")
    p.add_argument("--hidden-units", type=int, nargs="+", default=[64, 64], help="MLP widths")
    p.add_argument("--epochs", type=int, default=30, help="training epochs")
    p.add_argument("--warmup-epochs", type=int, default=10, help="linear KL warm-up")
    p.add_argument("--batch-size", type=int, default=100, help="points per batch")
    p.add_argument("--learning-rate", type=float, default=1e-3, help="Adam's step size")
    p.add_argument("--samples", type=int, default=100000, help="generated points per histogram")
    p.add_argument("--z-input", choices=["probabilities", "category"], default="probabilities",
                   help="what q(z|x, c) takes beside h(x): pi(x) (the paper's Fig. 2) or the sampled c")
    p.add_argument("--freeze-prior", action="store_true",
                   help="keep p(z|c) at its random initialisation (the authors' public code)")
    p.add_argument("--learn-weights", action="store_true",
                   help="learn p(c) (the MoG prior's weights) instead of keeping it uniform")
    p.add_argument("--gmm-init-epoch", type=int, default=0,
                   help="start p(z|c) and q(c|x) (and p(c) with --learn-weights) from a mixture "
                        "fitted to the codes after this many epochs (trainers/cpvae_init.py); 0: off")
    p.add_argument("--gmm-mixture", choices=list(MIXTURES), default="em",
                   help="that mixture: EM, or a variational Dirichlet-process mixture truncated at K")
    p.add_argument("--gmm-restarts", type=int, default=3, help="restarts of that mixture's fit")
    p.add_argument("--gmm-fit-codes", type=int, default=0,
                   help="fit that mixture to at most this many codes drawn at random (the "
                        "Dirichlet-process fit at K = 150 is slow on all 50,000); 0: all")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the weights, the data order and every draw")
    p.add_argument("--out-dir", default="benchmarks/results/cpvae_synthetic/latest",
                   help="where the record (JSON) and the histograms and q(c) plots (PNG) go")
    p.add_argument("--verbose", type=int, default=2, choices=[0, 1, 2],
                   help="Keras fit verbosity: 0 silent, 1 progress bar, 2 one line per epoch")
    args = p.parse_args(argv)
    for name in ("examples", "latent_dim", "epochs", "batch_size", "samples", "gmm_restarts"):
        if getattr(args, name) < 1:
            p.error(f"Expected --{name.replace('_', '-')} >= 1. Received: {getattr(args, name)}")
    if not 0 <= args.gmm_init_epoch <= args.epochs:
        p.error(f"Expected 0 <= --gmm-init-epoch <= --epochs. Received: {args.gmm_init_epoch}")
    if args.gmm_fit_codes < 0:
        p.error(f"Expected --gmm-fit-codes >= 0. Received: {args.gmm_fit_codes}")
    if args.gmm_init_epoch and args.freeze_prior:
        p.error("Expected at most one of --gmm-init-epoch and --freeze-prior")
    if min(args.categories) < 1:
        p.error(f"Expected every --categories value >= 1. Received: {args.categories}")
    return args


def two_modes(n, seed):
    import numpy as np
    rng = np.random.default_rng(seed)
    centre = np.where(rng.random(n) < 0.5, MODES[0], MODES[1])
    return (centre + STD * rng.normal(size=n)).astype(np.float32).reshape(n, 1, 1, 1)


def shape_of(samples):
    """Modes of the histogram on [0, 1] (50 bins), density at 0.5 over the lower mode density, and
    the fraction of samples near each true mode."""
    import numpy as np
    counts, edges = np.histogram(samples, bins=50, range=(0.0, 1.0))
    centres = 0.5 * (edges[1:] + edges[:-1])
    left, right = counts[centres < 0.5], counts[centres >= 0.5]
    modes = [float(centres[centres < 0.5][left.argmax()]), float(centres[centres >= 0.5][right.argmax()])]
    valley = counts[np.abs(centres - 0.5) < 0.03].mean()
    return {"modes": modes, "valley_over_lower_mode": float(valley / max(min(left.max(), right.max()), 1)),
            "near_0.3": float(np.mean(np.abs(samples - MODES[0]) < 0.1)),
            "near_0.7": float(np.mean(np.abs(samples - MODES[1]) < 0.1))}


def train_one(k, data, args):
    import keras
    import numpy as np
    import tensorflow as tf
    from tfpriors.datasets import make_dataset
    from tfpriors.evaluation import elbo
    from tfpriors.likelihoods import GaussianLikelihood
    from tfpriors.priors import MixtureOfGaussiansPrior
    from trainers import LinearWarmup
    from trainers.cpvae import build_cpvae
    from trainers.cpvae_init import GMMInitialisation
    keras.utils.set_random_seed(args.seed)
    steps = len(data) // args.batch_size
    model = build_cpvae((1, 1, 1), MixtureOfGaussiansPrior(args.latent_dim, num_components=k,
                                                                 learn_weights=args.learn_weights),
                        GaussianLikelihood(scale=0.1, learn_scale=True),
                        hidden_units=args.hidden_units, gated=False,
                        beta=LinearWarmup(args.warmup_epochs * steps), seed=args.seed,
                        temperature_rate=1.0 / (args.epochs * steps), z_input=args.z_input)
    model.build()
    model.prior.trainable = not args.freeze_prior
    model.compile(keras.optimizers.Adam(args.learning_rate), steps_per_execution=10)
    initialisation = [GMMInitialisation(data, args.gmm_init_epoch, mixture=args.gmm_mixture,
                                        n_init=args.gmm_restarts,
                                        fit_codes=args.gmm_fit_codes or None,
                                        seed=args.seed, verbose=args.verbose > 0)] \
        if args.gmm_init_epoch else []
    start = time.perf_counter()
    model.fit(make_dataset(data, args.batch_size, seed=args.seed, drop_remainder=True),
              epochs=args.epochs, verbose=args.verbose, callbacks=initialisation)
    seconds = time.perf_counter() - start
    q_c = model.estimate_aggregated_posterior(data)

    def generate():
        """x ~ p(x|z, c) with z ~ p(z|c) and c from the model's generation distribution."""
        code = model.sample_latents(args.samples, tf.constant([args.seed, 11]))
        return model.likelihood_distribution(code).sample(seed=tf.constant([args.seed, 12])).numpy().ravel()
    from_q = generate()
    model.aggregated_posterior.assign(np.full(k, 1.0 / k, np.float32))           # uniform p(c)
    from_uniform = generate()
    model.aggregated_posterior.assign(q_c.astype(np.float32))
    held_out = two_modes(2000, args.seed + 1)
    return model, {"categories": k, "train_seconds": seconds,
                   "q_c_above_0.01": int((q_c > 0.01).sum()), "q_c_sorted": sorted(q_c.tolist(), reverse=True),
                   "generated_from_q_c": shape_of(from_q), "generated_from_uniform_c": shape_of(from_uniform),
                   "heldout_elbo": float(elbo(model, held_out, num_samples=10, seed=args.seed).mean),
                   "gmm_init": initialisation[0].result if initialisation else None}, \
        from_q, from_uniform


def plot(out_dir, data, runs):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 1 + 2 * len(runs), figsize=(4 * (1 + 2 * len(runs)), 3), sharey=True)
    axes[0].hist(data.ravel(), bins=50, range=(0, 1), density=True)
    axes[0].set_title("ground truth")
    for i, (record, from_q, from_uniform) in enumerate(runs):
        k = record["categories"]
        axes[1 + 2 * i].hist(from_q, bins=50, range=(0, 1), density=True, color="C1")
        axes[1 + 2 * i].set_title(f"CP-VAE K = {k}, c ~ q(c)")
        axes[2 + 2 * i].hist(from_uniform, bins=50, range=(0, 1), density=True, color="C2")
        axes[2 + 2 * i].set_title(f"CP-VAE K = {k}, c uniform")
    for ax in axes:
        ax.set_xlabel("x")
    fig.tight_layout()
    fig.savefig(out_dir / "histograms.png", dpi=90)
    plt.close(fig)
    fig, axes = plt.subplots(1, len(runs), figsize=(5 * len(runs), 3))
    for ax, (record, _, _) in zip(list(axes) if len(runs) > 1 else [axes], runs):
        q = record["q_c_sorted"]
        ax.bar(range(len(q)), q)
        ax.set_title(f"K = {record['categories']}: sorted q(c_k), {record['q_c_above_0.01']} above 0.01")
        ax.set_xlabel("category (sorted)")
        ax.set_ylabel("q(c_k)")
    fig.tight_layout()
    fig.savefig(out_dir / "q_c.png", dpi=90)
    plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = two_modes(args.examples, args.seed)
    runs = []
    for k in args.categories:
        model, record, from_q, from_uniform = train_one(k, data, args)
        runs.append((record, from_q, from_uniform))
        print(json.dumps({key: v for key, v in record.items() if key != "q_c_sorted"}))
    plot(out_dir, data, runs)
    (out_dir / "results.json").write_text(json.dumps(
        {"argv": sys.argv, "ground_truth": shape_of(data.ravel()), "runs": [r for r, _, _ in runs]},
        indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
