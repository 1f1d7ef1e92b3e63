"""Evaluate a trained run: IS log-likelihood, ELBO, reconstruction error, active units, KL per
dimension and the prior cross-entropy, on the run's held-out data; writes evaluation.json.

    python -m trainers.evaluate --run-dir runs/default --num-samples 5000 --examples 1000
"""

import sys
from pathlib import Path

from trainers.cli import ArgumentParser, run
from trainers.run_io import (load_data, load_model, print_summary, read_json, readable_run_dir,
                             write_json)

__all__ = ["main"]


def build_parser():
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run-dir", required=True,
                   help="a directory written by `python -m trainers.train` (model.keras, config.json)")
    p.add_argument("--num-samples", type=int, default=5000,
                   help="importance samples per example (the papers' protocol: 5000)")
    p.add_argument("--examples", type=int, default=1000,
                   help="number of held-out examples to evaluate (from the start of the split)")
    p.add_argument("--chunk-size", type=int, default=None,
                   help="samples per chunk of the streaming log-sum-exp (bounds memory)")
    p.add_argument("--seed", type=int, default=0, help="seed of the importance samples")
    p.add_argument("--data-dir", default=None, help="override the run's --data-dir (MNIST)")
    p.add_argument("--out", default=None, help="output JSON (default: RUN_DIR/evaluation.json)")
    return p


def main(argv=None):
    from tfpriors.evaluation import evaluate_all
    from tfpriors._validation import check_positive_int
    args = build_parser().parse_args(argv)
    check_positive_int("examples", args.examples)
    check_positive_int("num_samples", args.num_samples)
    run_dir = readable_run_dir(args.run_dir)
    model_path = run_dir / "model.keras"
    if not model_path.exists():
        raise FileNotFoundError(f"Expected a trained model at {model_path}. Received: no such file "
                                f"(train one with `python -m trainers.train --run-dir {run_dir}`)")
    config = read_json(run_dir / "config.json")
    if args.data_dir:
        config["data_dir"] = args.data_dir
    model = load_model(model_path)
    splits, config = load_data(config)
    images = splits.val_images[:args.examples]
    kwargs = {"chunk_size": args.chunk_size} if args.chunk_size else {}
    metrics = evaluate_all(model, images, num_samples=args.num_samples, seed=args.seed, **kwargs)
    metrics.update(run_dir=str(run_dir), evaluated_examples=len(images), num_samples=args.num_samples)
    out = Path(args.out) if args.out else run_dir / "evaluation.json"
    write_json(out, metrics)
    print(f"wrote {out}")
    print_summary(metrics)
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
