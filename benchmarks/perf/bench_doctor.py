"""What do the doctor and the recorder's TensorBoard events cost? Two tables.

1. TensorBoard: training throughput (samples/s, a fit's fastest epoch, as in
   `bench_recorder`) of `fit` with the harness's `GradientRecorder()` against
   the same with `log_dir=...`, which writes the kept steps and the epoch's
   statistics at every epoch end. The epoch timer runs after the recorder, so
   the writing is counted. Fits alternate, the order swapped every repeat;
   medians over repeats and the median of the paired ratios.
2. The doctor: wall seconds of `diagnose(model, x, y)` with the default probe
   (50 steps of 128), compiled and eager, on a zoo model per family, freshly
   built, on embedded data; median over repeats (with more than one repeat,
   a warm-up call first takes the imports and first-use costs out of them).

Usage:
    python -m gradzoo.benchmarks.perf.bench_doctor                       # both tables, TF backend
    python -m gradzoo.benchmarks.perf.bench_doctor --repeats 5 --only tensorboard
    KERAS_BACKEND=jax python -m gradzoo.benchmarks.perf.bench_doctor --only doctor
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time

import keras

from gradzoo import zoo
from gradzoo.benchmarks.harness.instruments.recorder import GradientRecorder
from gradzoo.benchmarks.commands.options import positive_int
from gradzoo.benchmarks.perf.bench_recorder import BATCH_SIZE, CASES, EpochTimer, compiled_case

# label -> (zoo model, model overrides, dataset, dataset params)
DOCTOR_CASES = {
    "mlp": ("mlp_sigmoid_deep", {}, "mnist1d", {"shape": "flat"}),
    "cnn": ("resnet_20_1d", {}, "mnist1d", {}),
    "rnn": ("rnn_simple", {}, "adding", {"length": 50}),
}


def _timed_fit(model, x, y, epochs: int, log_dir) -> float:
    timer = EpochTimer()
    recorder = GradientRecorder(log_dir=log_dir)
    model.fit(x, y, batch_size=BATCH_SIZE, epochs=1 + epochs, shuffle=True, verbose=0, callbacks=[recorder, timer])
    return len(x) / min(timer.wall[1:])


def bench_tensorboard(label: str, repeats: int, epochs: int) -> dict:
    name, model, x, y = compiled_case(label)
    speed = {False: [], True: []}
    with tempfile.TemporaryDirectory(prefix="gradzoo-bench-tb-") as tmp:
        for r in range(repeats):
            for logged in (False, True) if r % 2 == 0 else (True, False):
                speed[logged].append(_timed_fit(model, x, y, epochs, f"{tmp}/{r}" if logged else None))
    plain, logged = statistics.median(speed[False]), statistics.median(speed[True])
    paired = statistics.median(b / a for a, b in zip(speed[False], speed[True]))
    print(f"  {label}: samples/s recorder {[round(v) for v in speed[False]]}  + log_dir {[round(v) for v in speed[True]]}", flush=True)
    return {"model": name, "plain": plain, "logged": logged, "ratio": logged / plain, "paired": paired}


def bench_doctor(label: str, repeats: int, steps: int) -> dict:
    from gradzoo.benchmarks.doctor import diagnose
    from gradzoo.benchmarks.doctor.loading import load_dataset_split

    name, overrides, dataset, params = DOCTOR_CASES[label]
    x, y, _ = load_dataset_split(dataset, params)
    spec = zoo.get_spec(name)
    out = {"model": name}
    for eager in (False, True):
        times, verdict = [], None
        for _ in range(repeats):
            keras.utils.set_random_seed(0)
            model = zoo.build(name, x.shape[1:], 10 if dataset == "mnist1d" else 1, **overrides)
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True) if dataset == "mnist1d" else "mse"
            model.compile(optimizer=zoo.make_optimizer(spec.optimizer), loss=loss)
            t = time.perf_counter()
            verdict = diagnose(model, x, y, steps=steps, run_eagerly=eager).verdict
            times.append(time.perf_counter() - t)
        out["eager" if eager else "compiled"] = statistics.median(times)
        out["verdict"] = verdict
        print(f"  {label} ({'eager' if eager else 'compiled'}): seconds {[round(t, 1) for t in times]}, {verdict}", flush=True)
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="The cost of TensorBoard events and of a doctor's diagnosis.")
    parser.add_argument("--repeats", type=positive_int, default=3, help="repeats per case. Defaults to 3.")
    parser.add_argument("--epochs", type=positive_int, default=4, help="timed epochs per fit (TensorBoard table). Defaults to 4.")
    parser.add_argument("--steps", type=positive_int, default=50, help="doctor probe steps. Defaults to 50.")
    parser.add_argument("--only", choices=("tensorboard", "doctor"), help="run one table only")
    parser.add_argument("--models", default="mlp,resnet,lstm", help="TensorBoard cases, a subset of: mlp, resnet, lstm.")
    parser.add_argument("--families", default=",".join(DOCTOR_CASES), help=f"doctor cases, a subset of: {', '.join(DOCTOR_CASES)}.")
    args = parser.parse_args(argv)
    models = [m for m in args.models.split(",") if m]
    families = [f for f in args.families.split(",") if f]
    bad = [m for m in models if m not in CASES] + [f for f in families if f not in DOCTOR_CASES]
    if bad:
        parser.error(f"unknown case {bad[0]!r}; --models takes {', '.join(CASES)}, --families {', '.join(DOCTOR_CASES)}")
    print(f"backend={keras.backend.backend()} keras={keras.__version__} cpus={os.cpu_count()} "
          f"python={platform.python_version()} repeats={args.repeats}", flush=True)  # fmt: skip
    if args.only in (None, "tensorboard"):
        rows = [bench_tensorboard(m, args.repeats, args.epochs) for m in models]
        print("\n| model | recorder samples/s | + log_dir samples/s | ratio | paired ratio |\n|---|---:|---:|---:|---:|")
        for row in rows:
            print(f"| {row['model']} | {row['plain']:,.0f} | {row['logged']:,.0f} | {row['ratio']:.3f} | {row['paired']:.3f} |")
        print()
    if args.only in (None, "doctor"):
        if families and args.repeats > 1:
            bench_doctor(families[0], 1, 2)  # warm-up: imports and first-use costs stay out of the medians
        rows = [bench_doctor(f, args.repeats, args.steps) for f in families]
        print(f"\n| model | verdict | compiled probe s | eager probe s |  ({args.steps} steps of 128)\n|---|---|---:|---:|")
        for row in rows:
            print(f"| {row['model']} | {row['verdict']} | {row['compiled']:.1f} | {row['eager']:.1f} |")


if __name__ == "__main__":
    sys.exit(main())
