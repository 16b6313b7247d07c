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

Every case's epoch lasts about half a second to a second on 2 CPU cores: with
the 0.13 s epochs of an earlier version, one busy neighbour on this shared
machine moved single figures by 10% in either direction, and a median ratio by
5%.

`--out FILE` also writes the table, with the command and environment, to a
Markdown file; `results/speed/` holds the ones measured for this project. Where the
step time itself is wanted without the host's per-step work, compiling with
`steps_per_execution=32` put the recorder's in-graph cost for the 20-layer MLP
at about 1% on JAX and within noise on TensorFlow.

`--single-thread` runs the backend's CPU kernels on one thread (the Python
threads stay: JAX still runs batch callbacks beside the train loop). On a
small machine shared with other jobs, as here (2 cores), its figures are the
steadier ones: a busy neighbour steals one core from a two-thread pool at
random, but rarely the only one.

Usage:
    python -m gradzoo.benchmarks.perf.bench_recorder                         # all models, TF backend
    python -m gradzoo.benchmarks.perf.bench_recorder --repeats 11 --out results/speed/recorder_tensorflow.md
    KERAS_BACKEND=jax python -m gradzoo.benchmarks.perf.bench_recorder --repeats 7 --models mlp,lstm
    python -m gradzoo.benchmarks.perf.bench_recorder --single-thread
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

from gradzoo import zoo  # noqa: E402
from gradzoo.benchmarks.commands.options import positive_int  # noqa: E402
from gradzoo.benchmarks.harness.instruments.recorder import GradientRecorder  # noqa: E402
from gradzoo.benchmarks.storage import write_atomic  # noqa: E402

BATCH_SIZE = 128

# label -> (zoo model, one example's shape, classes, training examples).
# Sized for epochs of 0.5 to 1 s on 2 CPU cores (128, 32 and 16 steps of 128).
CASES = {
    "mlp": ("mlp_he_relu_bn", (40,), 10, 16384),
    "resnet": ("resnet_20_1d", (40, 1), 10, 4096),
    "lstm": ("rnn_lstm", (50, 2), 10, 2048),
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


def compiled_case(label: str):
    """`(zoo name, compiled model, x, y)` of a case: the zoo model with its own optimizer, on
    seeded synthetic inputs of the case's shape (timing needs the shapes, not the data)."""
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
    return name, model, x, y


def bench(label: str, repeats: int, epochs: int) -> dict:
    name, model, x, y = compiled_case(label)
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
        "plain_all": plain,
        "recorded_all": recorded,
        "plain": statistics.median(wall[False]),
        "recorded": statistics.median(wall[True]),
        "ratio": statistics.median(wall[True]) / statistics.median(wall[False]),
        # Each repeat's two fits ran back to back: their ratio shares the load.
        "paired": statistics.median(rec / pl for pl, rec in zip(wall[False], wall[True])),
        "cpu_ratio": statistics.median(cpu[True]) / statistics.median(cpu[False]),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Throughput of plain `fit` against `fit` with a GradientRecorder.")
    parser.add_argument("--repeats", type=positive_int, default=5, help="plain/recorded fit pairs per model. Defaults to 5.")
    parser.add_argument("--epochs", type=positive_int, default=6, help="timed epochs per fit, after one untimed. Defaults to 6.")
    parser.add_argument("--models", default=",".join(CASES), help=f"comma-separated subset of: {', '.join(CASES)}.")
    parser.add_argument("--single-thread", action="store_true", help="run the backend's CPU kernels on one thread.")
    parser.add_argument("--out", help="also write the table, command and environment to this Markdown file.")
    args = parser.parse_args(argv)
    labels = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in labels if m not in CASES]
    if unknown or not labels:
        parser.error(f"unknown --models {unknown or args.models!r}; choose from {', '.join(CASES)}")
    if args.out and os.path.isdir(args.out):
        parser.error(f"--out {args.out!r} is a directory; give a file path such as results/speed/recorder.md")
    if args.single_thread and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    header = (
        f"backend={keras.backend.backend()} keras={keras.__version__} cpus={os.cpu_count()} "
        f"python={platform.python_version()} batch_size={BATCH_SIZE} repeats={args.repeats} epochs={args.epochs} "
        f"single_thread={args.single_thread}"
    )
    print(header, flush=True)
    rows = [bench(label, args.repeats, args.epochs) for label in labels]
    lines = [
        "| model | plain samples/s | recorded samples/s | ratio | paired ratio | CPU-time ratio |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['model']} | {row['plain']:,.0f} | {row['recorded']:,.0f} | "
            f"{row['ratio']:.3f} | {row['paired']:.3f} | {row['cpu_ratio']:.3f} |"
        )
    lines += [
        "",
        "samples/s: a fit's fastest epoch, median over repeats. ratio: recorded / plain of those medians;",
        "paired ratio: median over repeats of recorded / plain from back-to-back fits; CPU-time ratio:",
        "recorded / plain samples per CPU second of this process (all threads), median over repeats.",
    ]
    print()
    print("\n".join(lines))
    if args.out:
        command = " ".join(["python -m gradzoo.benchmarks.perf.bench_recorder", *(argv if argv is not None else sys.argv[1:])])
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        per_fit = [f"- {row['label']}: plain {row['plain_all']}, recorded {row['recorded_all']}" for row in rows]
        text = "\n".join(
            [
                "# GradientRecorder overhead",
                "",
                f"Written by `{command}` (KERAS_BACKEND={keras.backend.backend()}) on {when}.",
                "",
                f"`{header}`",
                "",
                *lines,
                "",
                "Samples/s of each fit, in the order run:",
                "",
                *per_fit,
                "",
            ]
        )
        write_atomic(args.out, text)
        print(f"\nWritten to {args.out}")


if __name__ == "__main__":
    main()
