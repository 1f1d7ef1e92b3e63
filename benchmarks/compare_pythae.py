"""Runs pythae's VAMP (the peer script pythae_vamp.py, in its own venv) and tfpriors' VampPrior VAE
back to back on the same MNIST split, model, batch, steps and threads, and prints one JSON line
per comparison with the ratio ours / pythae (benchmarks/README.md, "MNIST").

  python benchmarks/compare_pythae.py --peer-python peer-venv/bin/python --peer-script PYTHAE_VAMP \
      --data-dir MNIST_DIR --epochs 5 --nll-subset 200 \
      --out benchmarks/results/mnist_vampprior_pythae/five_epochs/compare_pythae_5epochs.json

The peer venv:  python3 -m venv peer-venv && peer-venv/bin/pip install torch==2.13.0 pythae==0.1.2
Timings on a shared 2-core machine are noisy: only ratios from one run are meaningful.
"""

import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from trainers.cli import ArgumentParser, run  # noqa: E402

HERE = Path(__file__).resolve().parent


def run_command(cmd):
    print("+ " + " ".join(map(str, cmd)), file=sys.stderr, flush=True)
    subprocess.run([str(c) for c in cmd], check=True)


def run_ours(args, budget, xla, evaluation, out):
    """Runs benchmarks/vampprior_mnist.py (same model, threads, data and budget as the peer) with
    XLA `xla` and the `evaluation` flags, and returns its JSON record."""
    run_command([sys.executable, HERE / "vampprior_mnist.py", "--model", args.model, "--threads",
         args.threads, "--data-dir", args.data_dir, *budget, *evaluation, "--xla", xla, "--out", out])
    return json.loads(Path(out).read_text())


def main(argv=None):
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--peer-python", required=True, help="python of the venv with pythae 0.1.2 + torch")
    p.add_argument("--peer-script", required=True,
                   help="the peer's training and evaluation script, pythae_vamp.py")
    p.add_argument("--data-dir", required=True, help="MNIST IDX directory")
    p.add_argument("--model", choices=["vamp", "vae"], default="vamp",
                   help="vamp: VampPrior with 500 pseudo-inputs; vae: standard normal prior (both libraries)")
    p.add_argument("--steps", type=int, default=0, help="training steps for both")
    p.add_argument("--epochs", type=int, default=0, help="training epochs for both (if no --steps)")
    p.add_argument("--threads", type=int, default=2,
                   help="intra-op threads of both libraries (TF, torch.set_num_threads)")
    p.add_argument("--nll-samples", type=int, default=5000,
                   help="importance samples per image of the test log-likelihood")
    p.add_argument("--nll-subset", type=int, default=50,
                   help="first N test images of the log-likelihood")
    p.add_argument("--peer-nll-batches", type=int, nargs="+", default=[500, 1000, 5000],
                   help="pythae get_nll batch sizes to try (its fastest is the reference)")
    p.add_argument("--xla", choices=["on", "off"], nargs="+", default=["on", "off"],
                   help="tfpriors runs with XLA on and/or off; the first mode also runs the "
                        "evaluation, the others only train (their throughput is reported too)")
    p.add_argument("--train-only", type=int, default=0, metavar="REPEATS",
                   help="only compare training throughput: alternate pythae and tfpriors REPEATS "
                        "times (ABAB...) and report every ratio and their median")
    p.add_argument("--out", default=str(HERE / "results" / "mnist_vampprior_pythae" / "latest" / "compare_pythae.json"),
                   help="the JSON record (the per-library records go next to it)")
    args = p.parse_args(argv)
    if args.train_only:
        return train_only(args)
    work = Path(args.out).parent
    work.mkdir(parents=True, exist_ok=True)
    budget = ["--steps", args.steps] if args.steps else ["--epochs", args.epochs]
    common = ["--model", args.model, "--threads", args.threads, "--nll-samples", args.nll_samples,
              "--train-dir", args.data_dir]
    peer = work / "peer_train.json"
    run_command([args.peer_python, args.peer_script, *common, *budget, "--nll-subset", args.nll_subset,
         "--nll-batch", args.peer_nll_batches[0], "--save-model", work / "peer_model.pt",
         "--out", peer])
    peer_nll = {args.peer_nll_batches[0]: json.loads(peer.read_text())["eval"]}
    for batch in args.peer_nll_batches[1:]:
        out = work / f"peer_nll_{batch}.json"
        run_command([args.peer_python, args.peer_script, *common, "--load-model", work / "peer_model.pt",
             "--no-elbo", "--nll-subset", args.nll_subset, "--nll-batch", batch, "--out", out])
        peer_nll[batch] = json.loads(out.read_text())["eval"]
    runs = {}
    for i, xla in enumerate(args.xla):
        path = work / f"ours_xla_{xla}.json"
        evaluation = (["--nll-subset", args.nll_subset, "--nll-samples", args.nll_samples] if i == 0
                      else ["--nll-subset", 0, "--no-elbo"])
        runs[xla] = run_ours(args, budget, xla, evaluation, path)
    ours = runs[args.xla[0]]
    theirs = json.loads(peer.read_text())
    fastest = min(peer_nll, key=lambda b: peer_nll[b]["nll_seconds_per_image"])
    lines = [
        {"metric": f"train_examples_per_s_xla_{xla}", "ours": result["train"]["throughput_examples_per_s"],
         "pythae": theirs["train"]["throughput_examples_per_s"]} for xla, result in runs.items()]
    lines += [
        {"metric": "nll_images_per_s", "ours": 1 / ours["eval"]["nll_seconds_per_image"],
         "pythae": 1 / peer_nll[fastest]["nll_seconds_per_image"], "pythae_nll_batch": fastest},
        {"metric": "test_nll_nats", "ours": ours["eval"]["test_nll_nats"],
         "pythae": theirs["eval"]["test_nll_nats"], "note": "lower is better"},
        {"metric": "test_neg_elbo", "ours": ours["eval"]["test_neg_elbo_1sample_full_test"],
         "pythae": theirs["eval"]["test_neg_elbo_1sample_full_test"], "note": "lower is better"},
    ]
    same_bits = ours["config"]["test_binarized_sha256"] == theirs["config"]["test_binarized_sha256"]
    record = {"steps": args.steps, "epochs": args.epochs, "threads": args.threads,
              "nll_samples": args.nll_samples, "nll_subset": args.nll_subset,
              "same_test_bits": same_bits, "comparisons": []}
    for line in lines:
        line["ratio_ours_over_pythae"] = line["ours"] / line["pythae"]
        record["comparisons"].append(line)
        print(json.dumps(line))
    Path(args.out).write_text(json.dumps(record, indent=1) + "\n")
    if not same_bits:
        raise SystemExit("test sets differ: the SHA-256 of the binarized test bits do not match")


def train_only(args):
    """Alternates the trainings back to back (pythae, then tfpriors in each --xla mode) and prints
    the throughput ratio of each pair and the median ratio per mode."""
    import statistics
    work = Path(args.out).parent
    work.mkdir(parents=True, exist_ok=True)
    budget = ["--steps", args.steps] if args.steps else ["--epochs", args.epochs]
    pairs = []
    for repeat in range(args.train_only):
        peer = work / f"peer_train_only_{repeat}.json"
        run_command([args.peer_python, args.peer_script, "--model", args.model, "--threads", args.threads,
             "--train-dir", args.data_dir, *budget, "--nll-subset", 0, "--no-elbo", "--out", peer])
        theirs = json.loads(peer.read_text())["train"]["throughput_examples_per_s"]
        for xla in args.xla:
            ours = work / f"ours_train_only_xla_{xla}_{repeat}.json"
            mine = run_ours(args, budget, xla, ["--nll-subset", 0, "--no-elbo"],
                            ours)["train"]["throughput_examples_per_s"]
            pairs.append({"repeat": repeat, "xla": xla, "ours": mine, "pythae": theirs,
                          "ratio": mine / theirs})
            print(json.dumps(pairs[-1]), flush=True)
    record = {"metric": "train_examples_per_s", "pairs": pairs,
              "median_ratio": {xla: statistics.median(p["ratio"] for p in pairs if p["xla"] == xla)
                               for xla in args.xla}}
    print(json.dumps({k: record[k] for k in ("metric", "median_ratio")}))
    Path(args.out).write_text(json.dumps(record, indent=1) + "\n")
    return record


if __name__ == "__main__":
    sys.exit(run(main))
