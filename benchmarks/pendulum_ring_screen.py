"""Screens how the pendulum's latent ring forms: trains one method of benchmarks/pendulum.py and
plots the held-out posterior means (coloured by joint angle) every --every steps, with the OLS
error of `tfpriors.probes.pendulum_angle_error` and β in each panel title; prints one JSON line
per snapshot.

Used to find when the ring's topology is fixed (within the first ~250 Adam steps at 1e-3) and
what the learning-rate warm-up changes:

  python benchmarks/pendulum_ring_screen.py --seed 2 --steps 400 --every 25 --lr-warmup-steps 0 --out s2_early
  python benchmarks/pendulum_ring_screen.py --seed 2 --steps 12000 --every 1000 --out s2_warm
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trainers.cli import ArgumentParser, run  # noqa: E402


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--method", default="vhp_rewo", help="a method of benchmarks/pendulum.py")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the data set, the weights and every draw")
    p.add_argument("--steps", type=int, default=4000, help="training steps")
    p.add_argument("--every", type=int, default=500, help="steps between snapshots")
    p.add_argument("--out", default="ring_screen", help="PNG path without .png")
    p.add_argument("pendulum_flags", nargs=argparse.REMAINDER,
                   help="further flags of benchmarks/pendulum.py (--blur, --learning-rate, "
                        "--lr-warmup-steps, --batch-size, ...); default there: --blur 0")
    return p.parse_known_args(argv)


def main(argv=None):
    args, rest = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import benchmarks.pendulum as bench
    from tfpriors.datasets import load_dataset, make_dataset
    from tfpriors.probes import model_angle_error
    from trainers.config import build_model
    flags = bench.parse_args(["--seed", str(args.seed), "--steps", str(args.steps)]
                             + rest + args.pendulum_flags)
    splits = load_dataset("pendulum", seed=args.seed, blur=flags.blur)
    model = build_model(bench.method_config(args.method, flags), splits.image_shape,
                        splits.train_images, max(1, args.steps // 10))
    data = make_dataset(splits.train_images, flags.batch_size, seed=args.seed,
                        drop_remainder=True).repeat()
    snapshots, start = [], time.perf_counter()
    for i in range(args.steps // args.every):
        model.fit(data, steps_per_epoch=args.every, epochs=1, verbose=0)
        means = model.encode(splits.val_images).numpy()
        probe = model_angle_error(model, splits)
        beta = float(model.beta_controller.beta())
        snapshots.append((means, (i + 1) * args.every, probe["error_rad"], beta))
        print(json.dumps({"step": (i + 1) * args.every, "ols_abs_error_rad": probe["error_rad"],
                          "beta": beta, "seconds": time.perf_counter() - start}), flush=True)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    cols = min(len(snapshots), 8)
    rows = -(-len(snapshots) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.2 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (means, step, error, beta) in zip(axes.flat, snapshots):
        ax.scatter(means[:, 0], means[:, 1], c=splits.val_labels, cmap="twilight", s=1)
        ax.set_title(f"{step}: {error:.3f} β={beta:.2g}", fontsize=7)
    fig.tight_layout()
    fig.savefig(args.out + ".png", dpi=80)
    return np.array([s[2] for s in snapshots])


if __name__ == "__main__":
    sys.exit(run(main))
