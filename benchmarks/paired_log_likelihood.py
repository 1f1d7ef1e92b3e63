"""Paired comparison of two models' per-image log-likelihoods on the same test images.

Reads two records, each either

- of `benchmarks/vampprior_mnist.py` (its IS log-likelihoods `test_log_likelihood_per_image` on the
  first N held-out images, paired by the SHA-256 of the binarized test images), or
- of `benchmarks/ladder_prior_fit.py` (its `heldout_log_prior_per_image`, E_q(z|x_n)[log p(z)] of
  one prior on the held-out posteriors, paired by `heldout_sha256`: the same posteriors and the
  same draws z, so the priors differ only in the density they put on them),

and prints the mean per-image difference B - A in nats with its standard error, and on how many
images B is higher. The pairing removes the spread between images, so differences well below the
standard error of either mean can be resolved.

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
    """(values, pairing key) of a record: what was measured per image and what must agree."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Expected a record file. Received {path}, which does not exist")
    record = json.loads(path.read_text())
    if record.get("heldout_log_prior_per_image"):
        return record["heldout_log_prior_per_image"], record["heldout_sha256"]
    values = record.get("eval", {}).get("test_log_likelihood_per_image")
    if not values:
        raise ValueError(f"Expected a vampprior_mnist.py record with test_log_likelihood_per_image "
                         f"or a ladder_prior_fit.py record with heldout_log_prior_per_image. "
                         f"Received {path} with neither")
    return values, record["config"]["test_binarized_sha256"]


def paired_difference(a, b):
    """Mean of b - a per image, its standard error, and on how many images b is higher."""
    diff = [y - x for x, y in zip(a, b)]
    n = len(diff)
    mean = sum(diff) / n
    stderr = math.sqrt(sum((d - mean) ** 2 for d in diff) / (n - 1) / n) if n > 1 else float("nan")
    return {"images": n, "mean_a": sum(a) / n, "mean_b": sum(b) / n, "mean_b_minus_a": mean,
            "standard_error": stderr, "b_higher_on": sum(d > 0 for d in diff)}


def main(argv=None):
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("a", help="record of model A (the reference)")
    p.add_argument("b", help="record of model B")
    args = p.parse_args(argv)
    (a, key_a), (b, key_b) = per_image(args.a), per_image(args.b)
    if len(a) != len(b) or key_a != key_b:
        raise ValueError(f"Expected both records on the same test images. Received {len(a)} and "
                         f"{len(b)} images, SHA-256 {key_a[:12]} and {key_b[:12]}")
    result = paired_difference(a, b)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
