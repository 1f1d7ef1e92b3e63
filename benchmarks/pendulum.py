"""Reproduces Table 1 of Klushyn et al. 2019 (pendulum, OLS angle probe) and the Fig. 2 panels.

For each method, trains the Table 3 architecture (input 16x16, 2 latents, FC 256x4 ReLU encoder
and decoder, Gaussian decoder with a learned noise level, VHP networks FC 256x4, K = 16) on 15,000
generated pendulum images for the same step budget, then fits the OLS angle probe
(`tfpriors.probes.pendulum_angle_error`) on the training images' posterior means and reports its
mean absolute circular error on 1,500 held-out images. Prints one JSON line per method:
OLS error, the shape-free nearest-neighbour angle error (`neighbour_angle_error`, k = 5; not in
the paper), final β, per-pixel reconstruction error, wall time; writes PNGs (posterior means
coloured by angle, prior samples, β and Ĉ curves) into --out-dir.

Methods: vhp_rewo, vhp_geco, vhp_beta1, vhp_wu_short, vhp_wu_long (linear warm-up over
--warmup-fractions of the budget) and iwae (standard normal prior, IWAE bound with K samples).

  python benchmarks/pendulum.py --blur 1.5 --seed 0 --methods vhp_rewo iwae \
      --out-dir benchmarks/results/pendulum_table1/warmup_lr/seed0

(benchmarks/README.md, "Pendulum", has every setting and its records.)
"""

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trainers.cli import ArgumentParser, run  # noqa: E402

METHODS = ("vhp_rewo", "vhp_geco", "vhp_beta1", "vhp_wu_short", "vhp_wu_long", "iwae")


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS),
                   help="the Table 1 rows to train, one after the other")
    p.add_argument("--steps", type=int, default=12000, help="training steps per method")
    p.add_argument("--batch-size", type=int, default=64, help="images per batch")
    p.add_argument("--learning-rate", type=float, default=1e-3, help="Adam (paper: 1e-4)")
    p.add_argument("--lr-warmup-steps", type=int, default=3000,
                   help="ramp Adam's rate linearly from a tenth of --learning-rate (the paper's "
                        "1e-4) to --learning-rate over this many steps, for every method; 0: "
                        "constant rate (trainers/learning_rate.py says why)")
    p.add_argument("--steps-per-execution", type=int, default=50,
                   help="batches per compiled call of the train step")
    p.add_argument("--kappa", type=float, default=0.02, help="constraint E[C] <= κ² (Table 3: 0.02)")
    p.add_argument("--nu", type=float, default=5.0, help="β update rate ν (Table 3: 5)")
    p.add_argument("--tau", type=float, default=3.0, help="REWO slope τ (Fig. 1: 3)")
    p.add_argument("--alpha", type=float, default=0.99, help="running average weight α")
    p.add_argument("--initial-beta", type=float, default=0.1,
                   help="REWO's initial β (Alg. 1: β ≪ 1; every README run uses 0.1)")
    p.add_argument("--geco-initial-beta", type=float, default=1.0,
                   help="GECO's initial β = 1/λ_0 (GECO as published starts at λ_0 = 1)")
    p.add_argument("--vhp-samples", type=int, default=16, help="K importance samples of ζ")
    p.add_argument("--iwae-samples", type=int, default=16, help="K of the IWAE baseline")
    p.add_argument("--warmup-fractions", type=float, nargs=2, default=[0.1, 0.5],
                   help="warm-up lengths of vhp_wu_short / vhp_wu_long as fractions of --steps")
    p.add_argument("--scale", type=float, default=0.1, help="initial decoder noise level")
    p.add_argument("--fixed-scale", action="store_true",
                   help="keep the decoder noise fixed at --scale instead of learning it")
    p.add_argument("--blur", type=float, default=0.0,
                   help="Gaussian blur std in pixels of the rendered images (0: the sharp default "
                        "data set; see tfpriors.datasets.pendulum)")
    p.add_argument("--jit-compile", action="store_true", help="XLA-compile the train step")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the data set, the weights and every draw")
    p.add_argument("--out-dir", default="benchmarks/results/pendulum_table1/latest",
                   help="where results.jsonl (appended), the PNGs, curves and .keras models go")
    return p.parse_args(argv)


def method_config(name, args):
    """The trainers.config flags of one method."""
    from trainers.config import build_parser
    config = vars(build_parser("").parse_args([]))
    config.update(dataset="pendulum", architecture="mlp", hidden_units=[256] * 4, latent_dim=2,
                  likelihood="gaussian", scale=args.scale, learn_scale=not args.fixed_scale,
                  batch_size=args.batch_size, learning_rate=args.learning_rate,
                  lr_warmup_steps=args.lr_warmup_steps, lr_warmup_start=0.1,
                  steps_per_execution=args.steps_per_execution, jit_compile=args.jit_compile,
                  seed=args.seed, prior="vhp", vhp_samples=args.vhp_samples, kappa=args.kappa,
                  nu=args.nu, tau=args.tau, alpha=args.alpha, initial_beta=args.initial_beta,
                  binarization="none")
    if name == "vhp_rewo":
        config["beta"] = "rewo"
    elif name == "vhp_geco":
        config.update(beta="geco", initial_beta=args.geco_initial_beta)
    elif name == "vhp_beta1":
        config.update(beta="constant", beta_value=1.0)
    elif name.startswith("vhp_wu"):
        config["beta"] = "warmup"
    elif name == "iwae":
        config.update(prior="standard_normal", objective="iwae", num_samples=args.iwae_samples,
                      beta="constant", beta_value=1.0)
    return config


class StepLog:
    """Keras callback recording β and the controller state at every callback (each execution)."""

    def __new__(cls):
        import keras

        class _StepLog(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.rows = []

            def on_train_batch_end(self, batch, logs=None):
                logs = logs or {}
                row = {"step": int(self.model.rng_step.value)}
                for key in ("beta_last", "constraint", "constraint_average", "prior_gate"):
                    if key in logs:
                        row[key] = float(logs[key])
                self.rows.append(row)
                if len(self.rows) % 20 == 0:
                    print(f"step {row['step']}: " + ", ".join(f"{k}={v:.4g}" for k, v in row.items()
                                                            if k != "step"), file=sys.stderr, flush=True)
        return _StepLog()


def plot_panels(path, model, splits, rows, kappa, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    means = model.encode(splits.val_images).numpy()
    z = model.prior_distribution().sample(3000, seed=np.array([1, 2], np.int32)).numpy()
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    sc = axes[0].scatter(means[:, 0], means[:, 1], c=splits.val_labels, cmap="twilight", s=3)
    fig.colorbar(sc, ax=axes[0], label="joint angle (rad)")
    axes[0].set_title("posterior means (held-out)")
    axes[1].scatter(z[:, 0], z[:, 1], s=2, c="0.3", alpha=0.5)
    axes[1].set_title("samples from the prior")
    steps = [r["step"] for r in rows]
    axes[2].semilogy(steps, [r.get("beta_last", np.nan) for r in rows], label="β")
    if any("constraint_average" in r for r in rows):
        axes[2].semilogy(steps, [r.get("constraint_average", np.nan) for r in rows], label="Ĉ_t")
        axes[2].axhline(kappa ** 2, color="r", ls="--", label="κ²")
    axes[2].set_xlabel("step")
    axes[2].legend()
    axes[2].set_title("β and constraint")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def interpolation_check(model, path, seed, num_frames=16, blur=0.0):
    """Graph (Sec. 2.3: 1000 prior samples, k = 18 as in Table 3) and linear interpolation between
    the 0 and 180 degree images; each decoded frame is matched to rendered references to read off
    its angle. Returns the largest angle jump, monotonicity and smoothness of both, and plots them."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from tfpriors.datasets import render_pendulum
    from tfpriors.interpolation import LatentGraph, linear_interpolation, smoothness_factor
    from tfpriors.probes import angle_path_summary, match_angles
    start, end = render_pendulum(np.array([0.0, np.pi]), blur=blur)
    graph = LatentGraph.from_model(model, num_nodes=1000, k=18, seed=seed)
    paths = {"graph": graph.interpolate(model, start, end, num_frames=num_frames),
             "linear": linear_interpolation(model, start, end, num_frames)}
    references = np.linspace(0, 2 * np.pi, 720, endpoint=False)
    reference_images = render_pendulum(references, blur=blur)
    result = {}
    fig, axes = plt.subplots(3, 1, figsize=(num_frames * 0.8, 6), gridspec_kw={"height_ratios": [4, 1, 1]})
    nodes = graph.points
    axes[0].scatter(nodes[:, 0], nodes[:, 1], s=2, c="0.6")
    for row, (kind, interp) in enumerate(paths.items(), start=1):
        frames = np.asarray(interp.images)
        angles = match_angles(frames, references, reference_images)
        summary = angle_path_summary(angles)
        result[kind] = {"max_jump_deg": float(np.degrees(summary["max_jump_rad"])),
                        "monotonic": bool(summary["monotonic"]),
                        "angles_deg": [round(float(a), 1) for a in np.degrees(angles)],
                        "smoothness": float(smoothness_factor(frames))}
        latents = np.asarray(interp.latents)
        axes[0].plot(latents[:, 0], latents[:, 1], "-o", ms=3, label=kind)
        axes[row].imshow(np.concatenate(list(frames[..., 0]), axis=1), cmap="gray", vmin=0, vmax=1)
        axes[row].set_title(f"{kind}: max jump {result[kind]['max_jump_deg']:.0f} deg", fontsize=8)
        axes[row].axis("off")
    axes[0].legend()
    axes[0].set_title("prior samples (graph nodes) and paths from 0 to 180 degrees")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return result


def run_method(name, args, splits, out_dir):
    from tfpriors.datasets import make_dataset
    from tfpriors.evaluation import reconstruction_error
    from tfpriors.probes import model_angle_error, model_neighbour_angle_error
    from trainers.config import build_model
    config = method_config(name, args)
    steps_per_epoch = max(1, args.steps // 10)
    if name.startswith("vhp_wu"):
        frac = args.warmup_fractions[0 if name == "vhp_wu_short" else 1]
        config["warmup_epochs"] = 1
        steps_per_epoch = max(1, int(frac * args.steps))   # warm-up = 1 "epoch" of this length
    model = build_model(config, splits.image_shape, splits.train_images, steps_per_epoch)
    data = make_dataset(splits.train_images, args.batch_size, seed=args.seed,
                        drop_remainder=True).repeat()
    log = StepLog()
    start = time.perf_counter()
    chunk = max(args.steps_per_execution, args.steps // 20)
    epochs = -(-args.steps // chunk)
    model.fit(data, steps_per_epoch=chunk, epochs=epochs, verbose=0, callbacks=[log])
    seconds = time.perf_counter() - start
    probe = model_angle_error(model, splits)
    neighbour_probe = model_neighbour_angle_error(model, splits)
    recon = reconstruction_error(model, splits.val_images)
    recon = recon.to_dict() if hasattr(recon, "to_dict") else recon
    interpolation = interpolation_check(model, out_dir / f"{name}_interpolation.png", args.seed,
                                        blur=args.blur)
    model.save(out_dir / f"{name}.keras")
    plot_panels(out_dir / f"{name}.png", model, splits, log.rows, args.kappa, name)
    (out_dir / f"{name}_curve.json").write_text(json.dumps(log.rows))
    return {"method": name, "ols_abs_error_rad": probe["error_rad"],
            "ols_fit_error_rad": probe["fit_error_rad"],
            "knn_abs_error_rad": neighbour_probe["error_rad"],
            "final_beta": float(model.beta_controller.beta()),
            "reconstruction": recon, "steps": epochs * chunk, "wall_seconds": seconds,
            "batch_size": args.batch_size, "learning_rate": args.learning_rate,
            "lr_warmup_steps": args.lr_warmup_steps, "seed": args.seed,
            "blur": args.blur,
            "initial_beta": config["initial_beta"] if config["beta"] in ("rewo", "geco") else None,
            "interpolation_0_to_180": interpolation,
            "paper_table1": {"vhp_rewo": 0.054, "vhp_geco": 0.53}.get(name)}


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from tfpriors.datasets import load_dataset
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    splits = load_dataset("pendulum", seed=args.seed, blur=args.blur)
    results = []
    for name in args.methods:
        record = run_method(name, args, splits, out_dir)
        print(json.dumps(record, default=float), flush=True)
        results.append(record)
        with open(out_dir / "results.jsonl", "a") as f:
            f.write(json.dumps(record, default=float) + "\n")
    return results


if __name__ == "__main__":
    sys.exit(run(main))
