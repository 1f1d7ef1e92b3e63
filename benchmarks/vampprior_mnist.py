"""tfpriors side of the peer benchmark: the VampPrior paper's VAE (L=1) on MNIST, CPU only.

Mirrors the peer script pythae_vamp.py (benchmarks/compare_pythae.py) flag for flag where it matters (model, steps/epochs,
threads, NLL samples and subset, data split) so the two can run back to back:

  model: gated MLP 784-300-300-40, log-variance Hardtanh(-6, 2), He-normal init, Bernoulli
         decoder, VampPrior with K=500 pseudo-inputs (N(0.05, 0.01) init, Hardtanh(0, 1)),
         Adam 5e-4, batch 100, dynamic binarization. --model vae: standard normal prior.
         --levels 2: the HVAE (L=2) with the same gated 300-unit layers, 40 + 40 latents.
  data:  train = first 50,000 MNIST train images; test = last 10,000, binarized once with
         numpy RandomState(0).binomial(1, x/255): the same bits (SHA-256 recorded) as pythae's script.
  train: throughput = examples/s over all steps after the first 20 warm-up steps (which also
         pay for tracing); steps run through keras fit with --steps-per-execution.
  eval:  -ELBO (1 sample) on the test images; IS log-likelihood with --nll-samples samples on the
         first --nll-subset test images, with its wall time per image; peak RSS.

Prints one JSON line and writes it to --out.

  python benchmarks/vampprior_mnist.py --data-dir MNIST_DIR --steps 500 --out ours.json
"""

import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trainers.cli import ArgumentParser, run  # noqa: E402

WARMUP_STEPS = 20


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", required=True, help="directory with train-images-idx3-ubyte.gz etc.")
    p.add_argument("--model", choices=["vamp", "vae"], default="vamp",
                   help="vamp: VampPrior with --components pseudo-inputs; vae: standard normal prior")
    p.add_argument("--levels", type=int, choices=[1, 2], default=1,
                   help="1: the VAE (L=1); 2: the two-level HVAE (L=2, Sec. 3.3), --latent-dim each for "
                        "z1 and z2, the prior on z2")
    p.add_argument("--steps", type=int, default=0, help="training steps (overrides --epochs)")
    p.add_argument("--epochs", type=int, default=0, help="training epochs of 500 steps")
    p.add_argument("--threads", type=int, default=2, help="TF intra-op threads (as torch.set_num_threads)")
    p.add_argument("--inter-op-threads", type=int, default=1,
                   help="TF inter-op threads (ops run concurrently; >1 oversubscribes 2 cores)")
    p.add_argument("--components", type=int, default=500, help="VampPrior pseudo-inputs K")
    p.add_argument("--latent-dim", type=int, default=40,
                   help="dimension of z (of z1 and z2 for --levels 2)")
    p.add_argument("--warmup-epochs", type=int, default=0, help="KL warm-up in epochs (paper: 100)")
    p.add_argument("--lr", type=float, default=5e-4, help="Adam's step size (paper: 5e-4)")
    p.add_argument("--batch-size", type=int, default=100, help="images per batch (paper: 100)")
    p.add_argument("--steps-per-execution", type=int, default=10,
                   help="batches per compiled call of the train step")
    p.add_argument("--xla", choices=["on", "off"], default="off", help="jit_compile the train step")
    p.add_argument("--precision", choices=["float32", "mixed_bfloat16"], default="float32",
                   help="Keras dtype policy of the networks (mixed_bfloat16: bf16 matmuls, float32 "
                        "weights and densities)")
    p.add_argument("--nll-samples", type=int, default=5000,
                   help="importance samples per image of the test log-likelihood (paper: 5000)")
    p.add_argument("--nll-subset", type=int, default=200, help="first N test images (0: skip)")
    p.add_argument("--nll-batch", type=int, default=0, help="test images per IS call (0: default)")
    p.add_argument("--eval-xla", choices=["on", "off", "same"], default="same",
                   help="jit_compile the ELBO and IS estimators (same: as --xla; XLA draws other, "
                        "equally valid, noise than the TF kernels)")
    p.add_argument("--no-elbo", action="store_true",
                   help="skip the test ELBO (only the log-likelihood)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the weights, the data order and every draw")
    p.add_argument("--save-model", default=None, help="write the trained model (.keras)")
    p.add_argument("--load-model", default=None, help="load a .keras model and only evaluate")
    p.add_argument("--out", default=None, help="JSON output path")
    return p.parse_args(argv)


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def build(args):
    import keras
    from tfpriors.likelihoods import BernoulliLikelihood
    from tfpriors.networks import MLPDecoder, MLPEncoder
    from tfpriors.priors import StandardNormalPrior, VampPrior
    from trainers import VAE, ConstantBeta, LinearWarmup
    shape = (28, 28, 1)
    keras.mixed_precision.set_global_policy(args.precision)
    keras.utils.set_random_seed(args.seed)
    prior = (VampPrior(args.latent_dim, args.components, shape) if args.model == "vamp"
             else StandardNormalPrior(args.latent_dim))
    beta = (LinearWarmup(args.warmup_epochs * 50000 // args.batch_size) if args.warmup_epochs
            else ConstantBeta(1.0))
    if args.levels == 2:
        from trainers.hvae import build_hvae
        model = build_hvae(shape, prior, BernoulliLikelihood(),
                           latent_dims=(args.latent_dim, args.latent_dim), beta=beta, seed=args.seed)
    else:
        model = VAE(MLPEncoder(args.latent_dim, shape, gated=True),
                    MLPDecoder(args.latent_dim, shape, gated=True), prior, BernoulliLikelihood(),
                    beta=beta, seed=args.seed)
    model.build((None,) + shape)
    return model


def train(model, train_images, args):
    import keras
    from tfpriors.datasets import make_dataset
    steps_per_epoch = 50000 // args.batch_size
    total = args.steps or args.epochs * steps_per_epoch
    if total <= WARMUP_STEPS:
        raise SystemExit(f"need more than {WARMUP_STEPS} steps, got {total}")
    model.compile(keras.optimizers.Adam(args.lr), jit_compile=args.xla == "on",
                  steps_per_execution=args.steps_per_execution)
    data = make_dataset(train_images, args.batch_size, binarization="dynamic", seed=args.seed,
                        drop_remainder=True).repeat()
    t0 = time.perf_counter()
    model.fit(data, steps_per_epoch=WARMUP_STEPS, epochs=1, verbose=0)
    t1 = time.perf_counter()
    timed = total - WARMUP_STEPS
    history = model.fit(data, steps_per_epoch=timed, epochs=1, verbose=0)
    t2 = time.perf_counter()
    return {"steps": total, "epochs_completed": total / steps_per_epoch, "timed_steps": timed,
            "warmup_steps_excluded": WARMUP_STEPS, "warmup_seconds_incl_tracing": t1 - t0,
            "timed_seconds": t2 - t1, "throughput_examples_per_s": timed * args.batch_size / (t2 - t1),
            "final_train_loss_timed_mean": float(history.history["loss"][-1]),
            "xla": args.xla, "steps_per_execution": args.steps_per_execution}


def evaluate(model, test_bits, args):
    ev = {}
    if args.no_elbo and args.nll_subset == 0:
        return ev
    from tfpriors.evaluation import elbo, log_likelihood
    jit = (args.xla if args.eval_xla == "same" else args.eval_xla) == "on"
    ev["eval_jit_compile"] = jit
    if not args.no_elbo:
        t = time.perf_counter()
        ev["test_neg_elbo_1sample_full_test"] = -float(elbo(model, test_bits, num_samples=1,
                                                            seed=args.seed + 1,
                                                            jit_compile=jit).mean)
        ev["test_neg_elbo_seconds"] = time.perf_counter() - t
    if args.nll_subset > 0:
        data = test_bits[:args.nll_subset]
        kwargs = {"batch_size": args.nll_batch} if args.nll_batch else {}
        t, c = time.perf_counter(), time.process_time()
        ll = log_likelihood(model, data, num_samples=args.nll_samples, seed=args.seed + 2,
                            jit_compile=jit, **kwargs)
        dt = time.perf_counter() - t
        ev.update(test_nll_nats=-float(ll.mean), nll_samples=args.nll_samples,
                  nll_subset_first_n_test_images=len(data), nll_wall_seconds=dt,
                  nll_seconds_per_image=dt / len(data),
                  nll_process_cpu_seconds=time.process_time() - c, nll_batch=args.nll_batch or None,
                  # per image, for paired comparisons of two models on the same test images
                  test_log_likelihood_per_image=[round(float(v), 4) for v in ll.per_example])
    return ev


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import numpy as np
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.inter_op_threads)
    from tfpriors.datasets import binarized_sha256, fixed_binarize, load_mnist

    t0 = time.perf_counter()
    mnist = load_mnist(args.data_dir, validation_size=10000, dtype="uint8")
    train_images = mnist[0].astype(np.float32) / 255.0
    test_bits_u8 = fixed_binarize(mnist[2], seed=0)
    sha = binarized_sha256(test_bits_u8)
    test_bits = test_bits_u8.astype(np.float32).reshape(-1, 28, 28, 1)
    load_s = time.perf_counter() - t0
    if args.load_model:
        from trainers.run_io import load_model
        model = load_model(args.load_model)
        tr = {"skipped": f"eval only: loaded {args.load_model}"}
    else:
        model = build(args)
        load = os.getloadavg()
        tr = train(model, train_images, args)
        tr["loadavg_1_5_15_before"], tr["loadavg_1_5_15_after"] = load, os.getloadavg()
        print(f"train: {tr['throughput_examples_per_s']:.1f} examples/s over {tr['timed_steps']} "
              f"timed steps", file=sys.stderr, flush=True)
        if args.save_model:
            model.save(args.save_model)
    rss_train = peak_rss_mib()
    ev = evaluate(model, test_bits, args)
    record = {"library": "tfpriors", "tensorflow_version": tf.__version__,
              "keras_version": keras.__version__, "python": platform.python_version(),
              "threads": args.threads, "argv": sys.argv, "stage": "complete",
              "config": {"model": args.model, "levels": args.levels, "precision": args.precision,
                         "components": args.components,
                         "latent_dim": args.latent_dim, "batch_size": args.batch_size, "lr": args.lr,
                         "train_images": int(len(train_images)), "test_binarized_sha256": sha,
                         "n_params": int(sum(np.prod(v.shape) for v in model.trainable_variables))},
              "data_load_seconds": load_s, "train": tr, "eval": ev,
              "memory": {"peak_rss_mib_after_train": rss_train, "peak_rss_mib_end": peak_rss_mib()}}
    line = json.dumps(record)
    print(line)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(line + "\n")
    return record


if __name__ == "__main__":
    sys.exit(run(main))
