"""Paired comparison of two models' IS log-likelihoods on the same test images.

Reads two records of `benchmarks/vampprior_mnist.py` (their `test_log_likelihood_per_image`, the
same first N held-out images in the same order) and prints the mean per-image difference
B - A in nats with its standard error, and on how many images B is higher. The pairing removes
the spread between images (tens of nats), so differences well below a nat can be resolved.

  python benchmarks/paired_log_likelihood.py benchmarks/results/mnist_hvae/vae_vampprior_10_epochs.json \\
      benchmarks/results/mnist_hvae/hvae_vampprior_10_epochs.json
"""

import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trainers.cli import ArgumentParser, run  # noqa: E402


def per_image(path):
    record = json.loads(Path(path).read_text())
    values = record.get("eval", {}).get("test_log_likelihood_per_image")
    if not values:
        raise ValueError(f"Expected a vampprior_mnist.py record with test_log_likelihood_per_image. "
                         f"Received {path} without it")
    return record, values


def main(argv=None):
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("a", help="record of model A (the reference)")
    p.add_argument("b", help="record of model B")
    args = p.parse_args(argv)
    (rec_a, a), (rec_b, b) = per_image(args.a), per_image(args.b)
    same = (len(a) == len(b) and rec_a["config"]["test_binarized_sha256"]
            == rec_b["config"]["test_binarized_sha256"])
    if not same:
        raise ValueError(f"Expected both records on the same test images. Received {len(a)} and "
                         f"{len(b)} images, test SHA-256 {rec_a['config']['test_binarized_sha256'][:12]} "
                         f"and {rec_b['config']['test_binarized_sha256'][:12]}")
    diff = [y - x for x, y in zip(a, b)]
    n = len(diff)
    mean = sum(diff) / n
    stderr = math.sqrt(sum((d - mean) ** 2 for d in diff) / (n - 1) / n) if n > 1 else float("nan")
    result = {"images": n, "mean_a": sum(a) / n, "mean_b": sum(b) / n, "mean_b_minus_a": mean,
              "standard_error": stderr, "b_higher_on": sum(d > 0 for d in diff)}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
