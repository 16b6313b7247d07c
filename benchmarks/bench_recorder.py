"""What does recording every step's per-layer gradient norms cost? Training
throughput (samples/s) of plain `model.fit` against `model.fit` with a
`GradientRecorder` that keeps every step (`first_steps=0, stride=1`).

Each fit runs `1 + epochs` short epochs; the first (tracing and compilation) is
left out. Epochs are timed by a callback that runs after the recorder's own
epoch-end work, so that work is counted. A fit's throughput is that of its
fastest epoch: on a shared machine other processes only ever slow an epoch
down, so the fastest of several short ones is the least disturbed estimate of
what the fit itself costs. Plain and recorded fits alternate in one process,
the order swapped every repeat; the table shows medians over repeats, the ratio
recorded/plain (1.00 = free), the median of the per-repeat ratios, and the
ratio of samples per CPU second of this process over all timed epochs.

Measured here (2 CPU cores shared with other jobs, Keras 3.15.1, TensorFlow
2.21, JAX 0.10 on CPU; `--repeats 11`), paired ratio recorded/plain:
TensorFlow mlp 0.871, resnet 0.995, lstm 0.982; JAX mlp 0.985, resnet 0.976,
lstm 1.020. The MLP's epochs last 0.2 s and its TensorFlow figure ranged from
0.87 to 0.97 over six runs; its train step timed alone, outside `fit`, in
alternating blocks, costs under 1% more with the recorder on both backends.
Before the recorder was `async_safe` and dropped a segment sum, JAX mlp
measured 0.74.

`--single-thread` runs the backend's CPU kernels on one thread (the Python
threads stay: JAX still runs batch callbacks beside the train loop). On a
small machine shared with other jobs, as here (2 cores), its figures are the
steadier ones: a busy neighbour steals one core from a two-thread pool at
random, but rarely the only one.

Usage:
    python -m benchmarks.bench_recorder                         # all models, TF backend
    KERAS_BACKEND=jax python -m benchmarks.bench_recorder --repeats 7 --models mlp,lstm
    python -m benchmarks.bench_recorder --single-thread
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import sys
import time

# XLA sizes its CPU thread pool when JAX starts, so this must precede `import keras`.
if "--single-thread" in sys.argv[1:]:
    os.environ["XLA_FLAGS"] = " ".join(
        [os.environ.get("XLA_FLAGS", ""), "--xla_cpu_multi_thread_eigen=false", "intra_op_parallelism_threads=1"]
    ).strip()

import keras  # noqa: E402
import numpy as np  # noqa: E402

import zoo  # noqa: E402
from benchmarks.recorder import GradientRecorder  # noqa: E402

BATCH_SIZE = 128

# label -> (zoo model, one example's shape, classes, training examples)
CASES = {
    "mlp": ("mlp_he_relu_bn", (40,), 10, 4096),
    "resnet": ("resnet_20_1d", (40, 1), 10, 1024),
    "lstm": ("rnn_lstm", (50, 2), 10, 1024),
}


class EpochTimer(keras.callbacks.Callback):
    """Wall and process CPU time of every epoch. No batch hook, so it leaves
    Keras's async dispatch of batch callbacks as the other callbacks set it."""

    def __init__(self):
        super().__init__()
        self.wall, self.cpu = [], []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = (time.perf_counter(), time.process_time())

    def on_epoch_end(self, epoch, logs=None):
        self.wall.append(time.perf_counter() - self._start[0])
        self.cpu.append(time.process_time() - self._start[1])


def timed_fit(model, x, y, epochs: int, recorded: bool) -> tuple[float, float]:
    """(samples per wall second in the fastest epoch, samples per CPU second
    over all epochs) of one fit of `1 + epochs` epochs, the first left out."""
    gc.collect()  # the last fit's traced functions, not this fit, should pay for their cleanup
    timer = EpochTimer()
    callbacks = [GradientRecorder(first_steps=0, stride=1), timer] if recorded else [timer]
    model.fit(x, y, batch_size=BATCH_SIZE, epochs=1 + epochs, shuffle=True, verbose=0, callbacks=callbacks)
    if recorded:
        # Guards the benchmark itself: the recorder must have seen every step.
        kept, expected = len(callbacks[0].summary()["steps"]), (1 + epochs) * -(-len(x) // BATCH_SIZE)
        if kept != expected:
            raise RuntimeError(f"The recorder kept {kept} steps of {expected}: the timing would be of nothing.")
    return len(x) / min(timer.wall[1:]), len(x) * epochs / sum(timer.cpu[1:])


def bench(label: str, repeats: int, epochs: int) -> dict:
    name, shape, classes, n = CASES[label]
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, *shape)).astype("float32")
    y = rng.integers(0, classes, size=n).astype("int32")
    model = zoo.build(name, shape, classes)
    model.compile(
        optimizer=zoo.make_optimizer(zoo.get_spec(name).optimizer),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    wall, cpu = {False: [], True: []}, {False: [], True: []}
    for r in range(repeats):
        for recorded in (False, True) if r % 2 == 0 else (True, False):
            w, c = timed_fit(model, x, y, epochs, recorded)
            wall[recorded].append(w)
            cpu[recorded].append(c)
    plain, recorded = [round(v) for v in wall[False]], [round(v) for v in wall[True]]
    print(f"  {label}: samples/s plain {plain}  recorded {recorded}", flush=True)
    return {
        "label": label,
        "model": name,
        "plain": statistics.median(wall[False]),
        "recorded": statistics.median(wall[True]),
        "ratio": statistics.median(wall[True]) / statistics.median(wall[False]),
        # Each repeat's two fits ran back to back: their ratio shares the load.
        "paired": statistics.median(rec / pl for pl, rec in zip(wall[False], wall[True])),
        "cpu_ratio": statistics.median(cpu[True]) / statistics.median(cpu[False]),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Throughput of plain `fit` against `fit` with a GradientRecorder.")
    parser.add_argument("--repeats", type=int, default=5, help="plain/recorded fit pairs per model. Defaults to 5.")
    parser.add_argument("--epochs", type=int, default=6, help="timed epochs per fit, after one untimed. Defaults to 6.")
    parser.add_argument("--models", default=",".join(CASES), help=f"comma-separated subset of: {', '.join(CASES)}.")
    parser.add_argument("--single-thread", action="store_true", help="run the backend's CPU kernels on one thread.")
    args = parser.parse_args(argv)
    if args.single_thread and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    labels = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in labels if m not in CASES]
    if unknown:
        parser.error(f"unknown --models {unknown}; choose from {', '.join(CASES)}")
    print(
        f"backend={keras.backend.backend()} keras={keras.__version__} cpus={os.cpu_count()} "
        f"python={platform.python_version()} batch_size={BATCH_SIZE} repeats={args.repeats} epochs={args.epochs} "
        f"single_thread={args.single_thread}"
    )
    rows = [bench(label, args.repeats, args.epochs) for label in labels]
    print()
    print("| model | plain samples/s | recorded samples/s | ratio | paired ratio | CPU-time ratio |")
    print("|---|---:|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['model']} | {row['plain']:,.0f} | {row['recorded']:,.0f} | "
            f"{row['ratio']:.3f} | {row['paired']:.3f} | {row['cpu_ratio']:.3f} |"
        )
    print()
    print("samples/s: a fit's fastest epoch, median over repeats. ratio: recorded / plain of those medians;")
    print("paired ratio: median over repeats of recorded / plain from back-to-back fits; CPU-time ratio:")
    print("recorded / plain samples per CPU second of this process (all threads), median over repeats.")


if __name__ == "__main__":
    main()
