"""Re-measures saved `benchmarks/pendulum.py` runs: both angle probes on each saved model.

For every results directory given, reads its `results.jsonl`, loads `<method>.keras` for each
record, regenerates the record's pendulum data (same seed and blur) and prints one JSON line:
the OLS probe of Table 1 (recomputed, next to the recorded value as a check) and the shape-free
nearest-neighbour probe (`tfpriors.probes.neighbour_angle_error`). Runs recorded before the
neighbour probe existed get it this way without retraining.

  python benchmarks/pendulum_probe_models.py benchmarks/results/pendulum_table1/warmup_lr/seed0 \
      --out benchmarks/results/pendulum_table1/neighbour_probe/warmup_lr_runs.jsonl
"""

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trainers.cli import ArgumentParser, run  # noqa: E402


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dirs", nargs="+",
                   help="directories written by benchmarks/pendulum.py --out-dir (each with "
                        "results.jsonl and the <method>.keras files)")
    p.add_argument("--k", type=int, default=5, help="neighbours of the nearest-neighbour probe")
    p.add_argument("--out", default=None, help="also append the JSON lines to this file")
    return p.parse_args(argv)


def records_of(run_dir):
    """The records of a run directory's results.jsonl (clear errors for what is missing)."""
    results = Path(run_dir) / "results.jsonl"
    if not results.is_file():
        raise FileNotFoundError(f"Expected {results} written by benchmarks/pendulum.py. "
                                f"Received a directory without it: {run_dir!r}")
    lines = [line for line in results.read_text().splitlines() if line.strip()]
    return [json.loads(line) for line in lines]


def main(argv=None):
    args = parse_args(argv)
    if args.k < 1:
        raise ValueError(f"Expected --k >= 1. Received: {args.k}")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    jobs = [(Path(d), r) for d in args.run_dirs for r in records_of(d)]
    for run_dir, record in jobs:
        saved = run_dir / f"{record['method']}.keras"
        if not saved.is_file():
            raise FileNotFoundError(f"Expected the saved model {saved} next to its record in "
                                    f"{run_dir / 'results.jsonl'}")
    from trainers.run_io import load_model
    from tfpriors.datasets import load_dataset
    from tfpriors.probes import model_angle_error, model_neighbour_angle_error
    rows, splits_cache = [], {}
    for run_dir, record in jobs:
        key = (record["seed"], record.get("blur", 0.0))
        if key not in splits_cache:
            splits_cache[key] = load_dataset("pendulum", seed=key[0], blur=key[1])
        splits = splits_cache[key]
        model = load_model(run_dir / f"{record['method']}.keras", compile=False)
        row = {"run_dir": str(run_dir), "method": record["method"], "seed": key[0],
               "blur": key[1], "steps": record["steps"],
               "ols_abs_error_rad": model_angle_error(model, splits)["error_rad"],
               "recorded_ols_abs_error_rad": record["ols_abs_error_rad"],
               "knn_abs_error_rad":
                   model_neighbour_angle_error(model, splits, k=args.k)["error_rad"],
               "k": args.k}
        print(json.dumps(row), flush=True)
        rows.append(row)
        if args.out:
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            with open(args.out, "a") as f:
                f.write(json.dumps(row) + "\n")
    return rows


if __name__ == "__main__":
    sys.exit(run(main))
