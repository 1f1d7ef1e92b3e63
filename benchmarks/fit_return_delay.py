"""How long `keras.Model.fit` waits after its last step before it returns, with tf.data autotuning
on (TF's default) and off (what tfpriors' pipelines use).

With autotuning on, deleting the iterator at the end of `fit` can wait for the autotune thread's
next wake-up, 10 ms * (2^n - 1) after the iterator was made (5.11 s, 10.23 s, 20.47 s, ...).
For each setting and repeat, prints one JSON line: training seconds (first to last step), and the
delay from Keras' `on_train_end` to `fit` returning.

  python benchmarks/fit_return_delay.py --repeats 3 --steps 300
"""

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from trainers.cli import ArgumentParser, run  # noqa: E402


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3, help="fits per setting")
    p.add_argument("--steps", type=int, default=300, help="steps per fit")
    p.add_argument("--width", type=int, default=1024, help="hidden width of the MLP (sets step time)")
    return p.parse_args(argv)


def one_fit(autotune, args):
    import keras
    import numpy as np
    import tensorflow as tf
    x = np.random.default_rng(0).uniform(size=(10000, 784)).astype(np.float32)
    ds = (tf.data.Dataset.from_tensor_slices((x, x)).cache().shuffle(10000).batch(100)
          .map(lambda a, b: (a, b), num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE))
    options = tf.data.Options()
    options.autotune.enabled = autotune
    ds = ds.with_options(options).repeat()
    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(args.width, "relu"),
                              keras.layers.Dense(args.width, "relu"), keras.layers.Dense(784)])
    model.compile("adam", "mse", steps_per_execution=10)
    model.fit(ds, steps_per_epoch=20, epochs=1, verbose=0)          # tracing

    class Times(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            self.first = getattr(self, "first", time.perf_counter())

        def on_train_end(self, logs=None):
            self.end = time.perf_counter()

    times = Times()
    start = time.perf_counter()
    model.fit(ds, steps_per_epoch=args.steps, epochs=1, verbose=0, callbacks=[times])
    returned = time.perf_counter()
    return {"autotune": autotune, "train_seconds": times.end - times.first,
            "fit_seconds": returned - start, "return_delay_seconds": returned - times.end}


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    records = []
    for repeat in range(args.repeats):
        for autotune in (True, False):
            record = dict(one_fit(autotune, args), repeat=repeat)
            print(json.dumps(record), flush=True)
            records.append(record)
    return records


if __name__ == "__main__":
    sys.exit(run(main))
