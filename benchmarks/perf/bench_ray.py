"""How much sooner does a suite finish with `--executor ray` than with the local executor, on this machine?

The same suite of small runs (at least 8: two MLPs on MNIST-1D, several seeds) is run with
`gradzoo run SUITE --out FRESH_DIR` and with `... --executor ray` (a Ray instance on this machine,
started by the command, `--cpus-per-run` CPUs per task), each as its own process into a fresh
output directory, the two alternating and their order swapped every repeat. A time is the whole
command's wall time, what a user waits for: Python and the backend starting, the suite's checks,
for Ray its start-up and its workers' (each imports the backend), the runs, the tables.

Speed-up is local / ray: the ratio of the median times, and the median over repeats of the ratio of
the two back-to-back commands (which share the machine's load of the moment). The records' summed
`train_s` shows where the time goes: each Ray run trains on fewer threads, but several train at once.
Both executors' records must hold the same runs, or the benchmark stops.

Usage:
    python -m gradzoo.benchmarks.perf.bench_ray                                  # 8 runs, 3 repeats
    python -m gradzoo.benchmarks.perf.bench_ray --repeats 5 --out results/speed/ray_tensorflow.md
    KERAS_BACKEND=jax python -m gradzoo.benchmarks.perf.bench_ray --runs 12 --cpus-per-run 1
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

from gradzoo.benchmarks.commands.options import positive_int

MODELS = ("mlp_he_relu_bn", "mlp_sigmoid_deep")
SUITE = """description = "bench_ray: small runs, many of them."
epochs = {epochs}
seeds = {seeds}
batch_size = 64
[[runs]]
name = "bench"
models = {models}
dataset = "mnist1d"
dataset_params = {{ shape = "flat" }}
model_overrides = {{ depth = 8, width = 64 }}
"""


def run_command(suite: Path, out: Path, ray_args: list[str] | None) -> float:
    """Wall seconds of one `gradzoo run` into a fresh `out`; raises with its output if it failed."""
    cmd = [sys.executable, "-m", "gradzoo.benchmarks.cli", "run", str(suite), "--out", str(out)]
    if ray_args is not None:
        cmd += ["--executor", "ray", *ray_args]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd)}` failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return seconds


def train_seconds(out: Path) -> tuple[set, float]:
    """The run ids recorded in `out` and their summed `train_s`."""
    from gradzoo.benchmarks.harness.records import load_records

    records = load_records(out)
    return {r.run_id for r in records}, sum(r.summary.train_s for r in records)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Wall time of one suite with the local executor and with Ray.")
    parser.add_argument("--runs", type=positive_int, default=8, help="runs in the suite, a multiple of 2, at least 8. Defaults to 8.")
    parser.add_argument("--epochs", type=positive_int, default=4, help="epochs per run. Defaults to 4.")
    parser.add_argument("--repeats", type=positive_int, default=3, help="local/ray command pairs. Defaults to 3.")
    parser.add_argument("--cpus-per-run", type=positive_int, default=1, help="CPUs per Ray task. Defaults to 1.")
    parser.add_argument("--out", help="also write the table, command and environment to this Markdown file.")
    args = parser.parse_args(argv)
    if args.runs < 8 or args.runs % len(MODELS):
        parser.error(f"--runs must be an even number of at least 8 (two models, several seeds); got {args.runs}")
    if args.out and os.path.isdir(args.out):
        parser.error(f"--out {args.out!r} is a directory; give a file path such as results/speed/ray_tensorflow.md")

    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    ray_args = ["--cpus-per-run", str(args.cpus_per_run)]
    header = (f"backend={backend} cpus={os.cpu_count()} python={platform.python_version()} runs={args.runs} "
              f"epochs={args.epochs} repeats={args.repeats} cpus_per_run={args.cpus_per_run}")  # fmt: skip
    print(header, flush=True)
    times = {"local": [], "ray": []}
    train = {"local": [], "ray": []}
    load = [os.getloadavg()[0]]
    from gradzoo.benchmarks.datasets import load_dataset

    load_dataset("mnist1d", shape="flat")  # generated and cached once, before any timing
    with tempfile.TemporaryDirectory(prefix="bench_ray-") as tmp:
        suite = Path(tmp) / "bench_ray.toml"
        models = "[" + ", ".join(f'"{m}"' for m in MODELS) + "]"
        suite.write_text(SUITE.format(epochs=args.epochs, seeds=args.runs // len(MODELS), models=models))
        ids = {}
        for r in range(args.repeats):
            for name in ("local", "ray") if r % 2 == 0 else ("ray", "local"):
                out = Path(tmp) / f"{name}-{r}"
                times[name].append(run_command(suite, out, ray_args if name == "ray" else None))
                ran, seconds = train_seconds(out)
                train[name].append(seconds)
                if len(ran) != args.runs or ids.setdefault("runs", ran) != ran:
                    raise RuntimeError(f"The {name} executor recorded {len(ran)} runs, not the suite's {args.runs}.")
                print(f"  repeat {r + 1} {name}: {times[name][-1]:.1f} s", flush=True)
            load.append(os.getloadavg()[0])

    local, ray = statistics.median(times["local"]), statistics.median(times["ray"])
    paired = statistics.median(lo / ra for lo, ra in zip(times["local"], times["ray"]))
    lines = [
        "| executor | suite wall time (s) | summed train_s of its runs (s) | speed-up (local / ray) | paired speed-up |",
        "|---|---:|---:|---:|---:|",
        f"| local | {local:.1f} | {statistics.median(train['local']):.1f} | 1.00 | 1.00 |",
        f"| ray, {args.cpus_per_run} CPU per run | {ray:.1f} | {statistics.median(train['ray']):.1f} | "
        f"{local / ray:.2f} | {paired:.2f} |",
        "",
        "Wall time: the whole `gradzoo run` command, median over repeats. train_s: the records' training",
        "time (fit without set-up), summed over the suite's runs, median over repeats. Speed-up: ratio of the",
        "median wall times; paired: median over repeats of the ratio of back-to-back commands.",
    ]
    print()
    print("\n".join(lines))
    if args.out:
        command = " ".join(["python -m gradzoo.benchmarks.perf.bench_ray", *(argv if argv is not None else sys.argv[1:])])
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        text = "\n".join([
            "# Ray executor against the local executor",
            "",
            f"Written by `{command}` (KERAS_BACKEND={backend}) on {when}.",
            "",
            f"`{header}`",
            "",
            *lines,
            "",
            f"Wall times in the order run: local {[round(t, 1) for t in times['local']]}, "
            f"ray {[round(t, 1) for t in times['ray']]}.",
            "",
            "The machine is shared: other jobs ran beside this benchmark (1-minute load average "
            f"{', '.join(f'{v:.1f}' for v in load)} at the start and after each repeat, on {os.cpu_count()} cores).",
            "",
        ])  # fmt: skip
        from gradzoo.benchmarks.storage import write_atomic  # imports Keras: not before the backend is chosen

        write_atomic(args.out, text)
        print(f"\nWritten to {args.out}")


if __name__ == "__main__":
    main()
