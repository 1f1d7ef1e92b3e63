"""Writes the shipped samplers of `saved_models/` from trained `.keras` models.

Each sampler directory is TF-Serving's layout plus two JSON files that TF-Serving ignores:

    saved_models/<name>/1/saved_model.pb, variables/   (tfpriors.export.export_sampler)
    saved_models/<name>/config.json                     how the model was trained (command, flags)
    saved_models/<name>/metrics.json                    what was measured on it, and with what

Usage (the commands that produced the shipped models are in saved_models/README.md):

    python saved_models/export_samplers.py --name pendulum_vhp_rewo --model M.keras \
        --config C.json --metrics R.json
"""

import json
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trainers.cli import ArgumentParser, run  # noqa: E402


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--name", required=True, help="sampler name: the directory saved_models/<name>")
    p.add_argument("--model", required=True, help="the trained model, a .keras file")
    p.add_argument("--config", required=True,
                   help="JSON file describing how the model was trained (copied as config.json)")
    p.add_argument("--metrics", required=True,
                   help="JSON file (or JSON-lines file; its last line is used) of the measured "
                        "metrics (copied as metrics.json)")
    p.add_argument("--out-dir", default=str(Path(__file__).resolve().parent),
                   help="parent directory of the sampler (default: this saved_models/ folder)")
    p.add_argument("--version", type=int, default=1, help="TF-Serving version number")
    return p.parse_args(argv)


def _read_json(path):
    text = Path(path).read_text()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        lines = [line for line in text.splitlines() if line.strip()]
        return json.loads(lines[-1])


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    for flag in ("model", "config", "metrics"):
        if not Path(getattr(args, flag)).is_file():
            raise FileNotFoundError(f"Expected --{flag} to be an existing file. "
                                    f"Received: {getattr(args, flag)!r}")
    from tfpriors.export import export_sampler
    from trainers.run_io import load_model

    model = load_model(args.model, compile=False)   # no optimizer state in the archive
    target = Path(args.out_dir) / args.name
    version_dir = target / str(args.version)
    if version_dir.exists():
        shutil.rmtree(version_dir)
    export_sampler(model, target, version=args.version)
    (target / "config.json").write_text(json.dumps(_read_json(args.config), indent=2) + "\n")
    (target / "metrics.json").write_text(json.dumps(_read_json(args.metrics), indent=2) + "\n")
    print(json.dumps({"written": str(version_dir)}))


if __name__ == "__main__":
    sys.exit(run(main))
