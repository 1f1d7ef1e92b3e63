"""Peak memory of the IS log-likelihood as the number of samples grows (it must stay flat).

Runs `log_likelihood` on the VampPrior paper's MNIST-sized model (gated MLP 784-300-300-40,
K = 500 pseudo-inputs, random weights: memory does not depend on training) in one fresh
subprocess per sample count and prints one JSON line each with the peak RSS (ru_maxrss) before
and after the call, then a summary line with the ratio.

  python benchmarks/eval_memory.py --samples 5000 50000 --images 8
"""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from trainers.cli import ArgumentParser, run  # noqa: E402

CHILD = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
import numpy as np
from tfpriors.likelihoods import BernoulliLikelihood
from tfpriors.networks import MLPDecoder, MLPEncoder
from tfpriors.priors import VampPrior
from tfpriors.evaluation import log_likelihood
from trainers import VAE

shape = (28, 28, 1)
model = VAE(MLPEncoder(40, shape, gated=True), MLPDecoder(40, shape, gated=True),
            VampPrior(40, 500, shape), BernoulliLikelihood())
model.build((None,) + shape)
x = (np.random.default_rng(0).random(({images},) + shape) > 0.5).astype("float32")
log_likelihood(model, x[:1], num_samples={chunk}, chunk_size={chunk})   # warm-up: tracing, allocator
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
start = time.perf_counter()
est = log_likelihood(model, x, num_samples={samples}, chunk_size={chunk})
seconds = time.perf_counter() - start
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"num_samples": {samples}, "images": {images}, "chunk_size": {chunk},
                  "peak_rss_mib_before": before, "peak_rss_mib_after": after,
                  "seconds": seconds, "mean_log_likelihood": float(est.mean)}}))
"""


def main(argv=None):
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, nargs="+", default=[5000, 50000],
                   help="importance-sample counts to measure, one fresh subprocess each")
    p.add_argument("--images", type=int, default=8, help="images per estimate")
    p.add_argument("--chunk-size", type=int, default=250,
                   help="importance samples per chunk of the estimator (bounds its memory)")
    args = p.parse_args(argv)
    records = []
    for samples in args.samples:
        code = CHILD.format(root=str(ROOT), images=args.images, chunk=args.chunk_size, samples=samples)
        out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                             env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"})
        record = json.loads(out.stdout.strip().splitlines()[-1])
        records.append(record)
        print(json.dumps(record), flush=True)
    peaks = [r["peak_rss_mib_after"] for r in records]
    print(json.dumps({"summary": "peak RSS ratio largest/smallest sample count",
                      "ratio": max(peaks) / min(peaks), "peaks_mib": peaks}))


if __name__ == "__main__":
    sys.exit(run(main))
