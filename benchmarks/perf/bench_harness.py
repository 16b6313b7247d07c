"""What does `gradzoo run`'s instrumentation cost? Each run's training time
(`train_s` of its record: from the start of every epoch to the end of its last
train step, first epoch and its tracing included) under `gradzoo run SUITE`
against `gradzoo run SUITE --no-gradients`.

The suite is run as its file defines it when the script starts (models,
datasets, epochs, batch sizes, tuned settings): nothing of it is copied here.
Each repeat runs the whole suite twice, once each way, every time in a fresh
`python -m gradzoo.benchmarks.cli run` process with a fresh output directory (so every
run trains from scratch, with the epoch checkpoints, progress bars and probes
of a real `gradzoo run`); the order of the two is swapped every repeat. The
table gives per run the median `train_s` each way, the ratio of the medians
(plain / instrumented: 1.00 = free, 0.95 = instrumentation costs 5%), and the
median of the per-repeat ratios.

The machine this project runs on is shared: quote the medians, and read a
ratio against the spread of the per-repeat figures listed under the table.

Usage:
    python -m gradzoo.benchmarks.perf.bench_harness                  # quick suite, TF, 3 repeats
    python -m gradzoo.benchmarks.perf.bench_harness --backend jax --repeats 3
    python -m gradzoo.benchmarks.perf.bench_harness --suite tests/data/tiny.toml --repeats 1 --out /tmp/h.md
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gradzoo.benchmarks.backends import BACKENDS
from gradzoo.benchmarks.commands.options import positive_int


def run_suite_once(suite: str, backend: str, gradients: bool, out: Path, extra: list[str]) -> dict:
    """Runs `gradzoo run SUITE` in a fresh process; returns `{run key: record}`.

    A run's key is what both ways share (the run id differs: recording is part of it).
    """
    from gradzoo.benchmarks.harness.records import load_records

    argv = [sys.executable, "-m", "gradzoo.benchmarks.cli", "run", suite, "--out", str(out), "--backend", backend, *extra]
    if not gradients:
        argv.append("--no-gradients")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"`{' '.join(argv[1:])}` failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return {run_key(r): r for r in load_records(out)}


def run_key(record) -> tuple:
    c = record.config
    return (c.group, record.label, tuple(sorted(c.sweep.items())), c.phase, c.seed)


def measure(suite: str, backend: str, repeats: int, extra: list[str]) -> tuple[list[tuple], dict]:
    """`(keys in suite order, {key: {"gradients": [its record per repeat], "plain": [...]}})`."""
    times: dict = {}
    order: list[tuple] = []
    with tempfile.TemporaryDirectory(prefix="bench_harness-") as tmp:
        for r in range(repeats):
            for gradients in (True, False) if r % 2 == 0 else (False, True):
                out = Path(tmp) / f"{r}-{'gradients' if gradients else 'plain'}"
                started = time.perf_counter()
                records = run_suite_once(suite, backend, gradients, out, extra)
                way = "gradients" if gradients else "plain"
                print(f"  repeat {r + 1}/{repeats}, {way}: {len(records)} runs in {time.perf_counter() - started:.0f} s",
                      flush=True)  # fmt: skip
                for key, record in sorted(records.items(), key=lambda kv: (kv[1].created, kv[0])):
                    if key not in times:
                        order.append(key)
                        times[key] = {"gradients": [], "plain": []}
                    times[key][way].append(record)
    return order, times


def train_seconds(records) -> list[float]:
    return [r.summary.train_s for r in records]


def split_epochs(records) -> tuple[float, float]:
    """`(median first epoch, median over runs of the summed later epochs)` in seconds.

    The first epoch carries the one-off cost of tracing the train step (larger
    with the gradient statistics in it); the later ones the per-step cost.
    """
    runs = [r.history.epoch_train_s for r in records]
    first = statistics.median(r[0] for r in runs)
    later = statistics.median(sum(r[1:]) for r in runs)
    return first, later


def table(order, times) -> list[str]:
    lines = [
        "| group | run | epochs | steps | train_s instrumented | train_s `--no-gradients` | ratio | paired ratio "
        "| first epoch s (instr. / plain) | later epochs s (instr. / plain) | later-epochs ratio |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key in order:
        t = times[key]
        if not t["gradients"] or not t["plain"]:
            continue
        g_s, p_s = train_seconds(t["gradients"]), train_seconds(t["plain"])
        grad, plain = statistics.median(g_s), statistics.median(p_s)
        paired = statistics.median(p / g for g, p in zip(g_s, p_s))
        record = t["gradients"][0]
        point = ", ".join(f"{k}={v}" for k, v in key[2])
        (g_first, g_later), (p_first, p_later) = split_epochs(t["gradients"]), split_epochs(t["plain"])
        later = f"{p_later / g_later:.3f}" if g_later > 0 else "-"
        lines.append(f"| {key[0]} | {key[1]}{f' at {point}' if point else ''} | {record.summary.epochs_run} | {record.summary.steps_run} | "
                     f"{grad:.2f} | {plain:.2f} | {plain / grad:.3f} | {paired:.3f} | "
                     f"{g_first:.2f} / {p_first:.2f} | {g_later:.2f} / {p_later:.2f} | {later} |")  # fmt: skip
    return lines


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Training time of `gradzoo run` with and without its instrumentation.")
    parser.add_argument("--suite", default="quick", help="suite name or file. Defaults to `quick`.")
    parser.add_argument("--backend", choices=BACKENDS, default=os.environ.get("KERAS_BACKEND") or "tensorflow",
                        help="Keras backend. Defaults to $KERAS_BACKEND, else tensorflow.")  # fmt: skip
    parser.add_argument("--repeats", type=positive_int, default=3, help="pairs of suite runs. Defaults to 3.")
    parser.add_argument("--epochs", type=positive_int, help="override the suite's epochs (for quick checks only).")
    parser.add_argument("--out", help="Markdown file to write. Defaults to results/speed/harness_<backend>.md.")
    args = parser.parse_args(argv)
    from gradzoo.benchmarks.errors import UserError
    from gradzoo.benchmarks.harness.plan.suites import load_suite, resolve_path

    try:
        suite = load_suite(args.suite)
    except UserError as err:
        parser.error(str(err))
    out = Path(args.out or f"results/speed/harness_{args.backend}.md")
    if out.is_dir():
        parser.error(f"--out {str(out)!r} is a directory; give a file path such as results/speed/harness.md")
    extra = ["--seeds", "1"] + (["--epochs", str(args.epochs)] if args.epochs else [])
    load_before = os.getloadavg()
    header = (f"backend={args.backend} suite={suite.name} repeats={args.repeats} cpus={os.cpu_count()} "
              f"python={platform.python_version()} platform={platform.platform()}")  # fmt: skip
    print(header, flush=True)
    order, times = measure(str(resolve_path(args.suite)), args.backend, args.repeats, extra)
    lines = table(order, times)
    env = next(r for t in times.values() for r in t["gradients"] + t["plain"]).env if times else None
    versions = f"keras={env.keras} {env.backend}={env.backend_version}" if env else ""
    print("\n" + "\n".join(lines))
    command = " ".join(["python -m gradzoo.benchmarks.perf.bench_harness", *(argv if argv is not None else sys.argv[1:])])
    raw = [f"- {key[1]} ({key[0]}): instrumented {[round(v, 2) for v in train_seconds(times[key]['gradients'])]}, "
           f"plain {[round(v, 2) for v in train_seconds(times[key]['plain'])]}" for key in order]  # fmt: skip
    text = "\n".join([
        "# Harness overhead: `gradzoo run` against `gradzoo run --no-gradients`",
        "",
        f"Written by `{command}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        f"`{header} {versions}`",
        "",
        f"Load average (1, 5, 15 min) before: {', '.join(f'{v:.1f}' for v in load_before)}; "
        f"after: {', '.join(f'{v:.1f}' for v in os.getloadavg())}.",
        "",
        *lines,
        "",
        "train_s: the record's training time (every epoch from its start to the end of its last train step,",
        "the first epoch's tracing included), median over repeats, seed 0. ratio: plain / instrumented of",
        "those medians (1.00 = free; the target is 0.95 or more); paired ratio: the median over repeats of",
        "the same ratio within one repeat. Instrumented = every step's per-layer gradient norms, the",
        "activation probe and, for recurrent nets, the gradient-through-time probe, as `gradzoo run` does.",
        "First epoch: its median seconds each way (it includes tracing the train step, once per run);",
        "later epochs: the median over repeats of the other epochs' summed seconds, and their ratio",
        "(plain / instrumented), the per-step cost without the one-off trace.",
        "",
        "train_s of each run, in the order measured:",
        "",
        *raw,
        "",
    ])  # fmt: skip
    from gradzoo.benchmarks.storage import write_atomic  # imports Keras: not before the backend is chosen

    write_atomic(out, text)
    print(f"\nWritten to {out}")


if __name__ == "__main__":
    main()
