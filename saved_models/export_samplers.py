"""Writes the shipped samplers of `saved_models/` from trained `.keras` models.

Each sampler directory is TF-Serving's layout plus two JSON files that TF-Serving ignores:

    saved_models/<name>/1/saved_model.pb, variables/   (tfpriors.export.export_sampler)
    saved_models/<name>/config.json                     how the model was trained (command, flags)
    saved_models/<name>/metrics.json                    what was measured on it, and with what

    saved_models/<name>/heldout_fixture.npz             with --fixture-images N: the first N
                                                        binarized MNIST held-out images (packed
                                                        bits), on which the exported
                                                        `log_likelihood` signature is measured
                                                        into metrics.json["fixture"] (and, for a
                                                        sampler with a `cluster` signature, each
                                                        image's argmax q(c|x)), so the tests can
                                                        check the sampler without MNIST

Usage (the commands that produced the shipped models are in saved_models/README.md):

    python saved_models/export_samplers.py --name pendulum_vhp_rewo --model M.keras \
        --config C.json --metrics R.json
    python saved_models/export_samplers.py --name mnist_vampprior --model M.keras \
        --config C.json --metrics R.json --fixture-images 100 --data-dir MNIST_DIR
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
    p.add_argument("--fixture-images", type=int, default=0,
                   help="store the first N binarized MNIST held-out images with the sampler and "
                        "record its log_likelihood on them (0: none; needs --data-dir)")
    p.add_argument("--fixture-values", choices=["binarized", "real"], default="binarized",
                   help="the fixture's images: binarized once (Bernoulli models) or the real-valued "
                        "intensities x / 255 (Gaussian and Laplace models)")
    p.add_argument("--fixture-samples", type=int, default=1000,
                   help="importance samples of the fixture's log-likelihood")
    p.add_argument("--data-dir", default=None, help="MNIST IDX directory (for --fixture-images)")
    args = p.parse_args(argv)
    if args.fixture_images < 0 or args.fixture_samples < 1:
        p.error(f"Expected --fixture-images >= 0 and --fixture-samples >= 1. Received: "
                f"{args.fixture_images} and {args.fixture_samples}")
    if args.fixture_images and args.data_dir is None:
        p.error("Expected --data-dir with --fixture-images (the MNIST held-out images)")
    return args


def write_fixture(target, data_dir, num_images, num_samples, values="binarized"):
    """Stores the first `num_images` held-out MNIST images next to the sampler (binarized once,
    as packed bits, or the raw uint8 intensities) and measures the exported `log_likelihood`
    signature on them (seed [0, 0])."""
    import numpy as np
    import tensorflow as tf
    from tfpriors.datasets import load_mnist, mnist_heldout_binarized
    from tfpriors.export import load_sampler
    if values == "binarized":
        raw, labels, sha = mnist_heldout_binarized(data_dir, validation_size=10000)
        raw, images = raw[:num_images], raw[:num_images].astype(np.float32)
        stored = {"bits": np.packbits(raw.reshape(-1))}
        source = "first images of the binarized held-out set"
    else:
        _, _, raw, labels = load_mnist(data_dir, validation_size=10000, dtype="uint8")
        raw, sha = raw[:num_images], None
        images = raw.astype(np.float32) / 255.0
        stored = {"uint8": raw}
        source = "first images of the held-out set, intensities x / 255"
    np.savez_compressed(target / "heldout_fixture.npz", shape=np.array(images.shape),
                        labels=labels[:num_images], **stored)
    sampler = load_sampler(target)
    out = sampler.signatures["log_likelihood"](images=tf.constant(images),
                                               num_samples=tf.constant(num_samples),
                                               seed=tf.constant([0, 0]))
    log_p = out["log_likelihood"].numpy()
    record = {"images": int(num_images), "values": values, "source": source,
              "num_samples": int(num_samples), "seed": [0, 0], "mean": float(log_p.mean()),
              "per_image": [round(float(v), 4) for v in log_p]}
    if sha is not None:
        record["heldout_binarized_sha256"] = sha
    if "cluster" in sampler.signatures:                    # CP-VAE, LaDDer: argmax q(c|x) per image
        probabilities = sampler.signatures["cluster"](images=tf.constant(images))["probabilities"]
        record["clusters"] = [int(k) for k in np.argmax(probabilities.numpy(), axis=-1)]
    return record


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
    metrics = _read_json(args.metrics)
    if args.fixture_images:
        metrics["fixture"] = write_fixture(target, args.data_dir, args.fixture_images,
                                           args.fixture_samples, args.fixture_values)
    (target / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(json.dumps({"written": str(version_dir)}))
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
