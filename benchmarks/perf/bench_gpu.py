"""Training speed of the zoo's Keras models on the accelerator, against PyTorch.

Per model, samples/s of: Keras `fit` bare (float32); `fit` with a
`GradientRecorder` keeping every step; `fit` under mixed precision
(`mixed_float16` on GPUs that have float16 tensor cores, else
`mixed_bfloat16`); and a PyTorch twin of the same architecture, widths and
batch (`gradzoo.benchmarks.perf.torch_peers`, SGD with momentum, NCHW images), in
float32 and under `torch.autocast` with the same half type. One table, with the
device's name; "no accelerator found" where the backend sees none.

Every figure is the fastest of `--epochs` timed passes of `--steps` steps after
one untimed pass (tracing, compilation, cuDNN autotuning), on the same in-memory
inputs: CIFAR-10 images where that dataset is prepared (`--data-dir`), else
synthetic ones of its shape, and the table says which. Goals (issue 11): the
recorder at 0.95 or better of bare `fit`, Keras ResNet-56 at least at PyTorch's
speed, on the accelerator.

Usage:
    python -m gradzoo.benchmarks.perf.bench_gpu                          # all models, real sizes
    python -m gradzoo.benchmarks.perf.bench_gpu --out results/speed/gpu_jax.md   # (KERAS_BACKEND=jax)
    python -m gradzoo.benchmarks.perf.bench_gpu --size tiny              # seconds, for the tests
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import platform
import sys
import time

from gradzoo.benchmarks.commands.options import positive_int


@dataclasses.dataclass(frozen=True)
class Case:
    model: str
    shape: tuple  # one example, Keras layout
    what: str
    overrides: dict = dataclasses.field(default_factory=dict)


# The models: ResNet-20/56 on CIFAR-shaped images, LSTM/SimpleRNN on
# pixel-by-pixel MNIST (784 steps), the deep sigmoid MLP on flat 28x28 images.
CASES = {
    "resnet_20": Case("resnet_20", (32, 32, 3), "CIFAR-10 32x32x3"),
    "resnet_56": Case("resnet_56", (32, 32, 3), "CIFAR-10 32x32x3"),
    "rnn_lstm": Case("rnn_lstm", (784, 1), "seq-MNIST 784 steps"),
    "rnn_simple": Case("rnn_simple", (784, 1), "seq-MNIST 784 steps"),
    "mlp_sigmoid_deep": Case("mlp_sigmoid_deep", (28, 28, 1), "Fashion-MNIST 28x28"),
}
# The rest of the `full` suite's models, for timing its groups (`--models all`).
EXTRA = {
    "plain_20": Case("plain_20", (32, 32, 3), "CIFAR-10 32x32x3"),
    "plain_56": Case("plain_56", (32, 32, 3), "CIFAR-10 32x32x3"),
    "rnn_gru": Case("rnn_gru", (784, 1), "seq-MNIST 784 steps"),
    "rnn_irnn": Case("rnn_irnn", (784, 1), "seq-MNIST 784 steps"),
    "mlp_he_relu_bn": Case("mlp_he_relu_bn", (28, 28, 1), "Fashion-MNIST 28x28"),
}
# Tiny: every path in seconds on a CPU (the tests); no figure means anything.
TINY = {"resnet_20": (8, 8, 3), "resnet_56": (8, 8, 3), "plain_20": (8, 8, 3), "plain_56": (8, 8, 3),
        "rnn_lstm": (12, 1), "rnn_simple": (12, 1), "rnn_gru": (12, 1), "rnn_irnn": (12, 1),
        "mlp_sigmoid_deep": (4, 4, 1), "mlp_he_relu_bn": (4, 4, 1)}  # fmt: skip
TINY_OVERRIDES = {"resnet_20": {"depth": 8}, "resnet_56": {"depth": 8}, "plain_20": {"depth": 8}, "plain_56": {"depth": 8},
                  "rnn_lstm": {"units": 8}, "rnn_simple": {"units": 8}, "rnn_gru": {"units": 8}, "rnn_irnn": {"units": 8},
                  "mlp_sigmoid_deep": {"width": 8, "depth": 3}, "mlp_he_relu_bn": {"width": 8, "depth": 3}}  # fmt: skip
CLASSES = 10


def device_name() -> str:
    """The accelerator Keras trains on, or the CPU's name and "no accelerator found"."""
    from gradzoo.benchmarks.harness.run.devices import accelerators

    found = accelerators()
    if found:
        return ", ".join(sorted({d.name for d in found}))
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    return f"CPU {cpu} ({os.cpu_count()} cores): no accelerator found"


def mixed_policy() -> str | None:
    """The mixed precision this machine runs: float16 on GPUs with tensor cores, else bfloat16; `None` if neither."""
    from gradzoo.benchmarks.harness.run.devices import accelerators, precision_problem

    found = accelerators()
    for policy in (("mixed_float16", "mixed_bfloat16") if found else ("mixed_bfloat16",)):
        if precision_problem(policy, found) is None:
            return policy
    return None


def inputs(case: Case, shape, n: int, data_dir):
    """`(x, y, source)`: real CIFAR-10 images when prepared, else synthetic ones of the shape."""
    import numpy as np

    if case.what.startswith("CIFAR") and tuple(shape) == (32, 32, 3):
        from gradzoo.benchmarks.datasets import load_dataset, real

        if real.is_prepared("cifar10", data_dir):
            x, y = load_dataset("cifar10", data_dir=data_dir, augment=False).test
            reps = -(-n // len(y))
            return np.tile(x, (reps, 1, 1, 1))[:n], np.tile(y, reps)[:n], "CIFAR-10 test images"
        source = "synthetic (CIFAR-10 not prepared)"
    else:
        source = "synthetic"
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, *shape)).astype("float32"), rng.integers(0, CLASSES, n).astype("int32"), source


def keras_throughput(case, shape, overrides, x, y, batch, steps, epochs, recorded=False, policy=None) -> float:
    """Samples/s of the fastest timed epoch of `model.fit` (one untimed epoch first)."""
    import keras

    from gradzoo import zoo
    from gradzoo.benchmarks.harness.instruments.recorder import GradientRecorder
    from gradzoo.benchmarks.harness.run.run_one import dtype_policy

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.start)

    times: list[float] = []
    keras.utils.set_random_seed(0)
    with dtype_policy(policy) if policy else contextlib.nullcontext():
        model = zoo.build(case.model, shape, CLASSES, **overrides)
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))  # fmt: skip
    callbacks = [GradientRecorder(first_steps=0, stride=1)] if recorded else []
    model.fit(x, y, batch_size=batch, epochs=1 + epochs, steps_per_epoch=steps, shuffle=False, verbose=0,
              callbacks=callbacks + [Timer()])  # fmt: skip
    return steps * batch / min(times[1:])


def torch_throughput(case, shape, overrides, x, y, batch, steps, epochs, half: str | None = None) -> float:
    """Samples/s of the PyTorch twin, measured in a child process without TensorFlow (see `torch_peers`)."""
    import json
    import subprocess
    import tempfile

    import numpy as np

    from gradzoo import zoo

    spec = zoo.get_spec(case.model)
    peer = {"name": case.model, "family": spec.family, "hparams": {**spec.defaults, **overrides}}
    with tempfile.TemporaryDirectory(prefix="bench_gpu-") as tmp:
        np.savez(os.path.join(tmp, "data.npz"), x=x, y=y)
        request = {"peer": peer, "shape": list(shape), "classes": CLASSES, "half": half,
                   "data": os.path.join(tmp, "data.npz"), "batch": batch, "steps": steps, "epochs": epochs}  # fmt: skip
        with open(os.path.join(tmp, "request.json"), "w", encoding="utf-8") as f:
            json.dump(request, f)
        proc = subprocess.run([sys.executable, "-m", "gradzoo.benchmarks.perf.torch_peers", os.path.join(tmp, "request.json")],
                              capture_output=True, text=True, check=False)  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"The PyTorch twin of {case.model} failed:\n{proc.stderr[-2000:]}")
    return float(json.loads(proc.stdout.strip().splitlines()[-1])["samples_per_s"])


def bench(case: Case, args, torch_reason: str | None, policy: str | None) -> dict:
    shape = TINY[case.model] if args.size == "tiny" else case.shape
    overrides = {**case.overrides, **(TINY_OVERRIDES.get(case.model, {}) if args.size == "tiny" else {})}
    x, y, source = inputs(case, shape, args.batch_size * args.steps, args.data_dir)
    timing = (args.batch_size, args.steps, args.epochs)
    row = {"model": case.model, "input": f"{case.what}" if args.size == "full" else f"tiny {shape}", "source": source}
    row["bare"] = keras_throughput(case, shape, overrides, x, y, *timing)
    row["recorded"] = row["mixed"] = row["torch"] = row["torch_mixed"] = None
    if args.bare_only:  # how long a suite takes: `fit` alone
        return _printed(row)
    row["recorded"] = keras_throughput(case, shape, overrides, x, y, *timing, recorded=True)
    row["mixed"] = keras_throughput(case, shape, overrides, x, y, *timing, policy=policy) if policy else None
    if torch_reason is None:
        row["torch"] = torch_throughput(case, shape, overrides, x, y, *timing)
        row["torch_mixed"] = torch_throughput(case, shape, overrides, x, y, *timing, half=policy) if policy else None
    return _printed(row)


def _printed(row: dict) -> dict:
    print(f"  {row['model']}: " + ", ".join(f"{k} {v:,.0f}" for k, v in row.items() if isinstance(v, float)), flush=True)
    return row


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def _ratio(a, b) -> str:
    return "n/a" if a is None or b is None else f"{a / b:.2f}"


def table(rows, policy) -> list[str]:
    half = policy or "mixed (none here)"
    lines = [f"| model | input | Keras fit | + recorder | recorder / bare | Keras {half} | PyTorch | PyTorch {half} "
             "| Keras / PyTorch | Keras / PyTorch, mixed |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for row in rows:
        lines.append(f"| {row['model']} | {row['input']}, {row['source']} | {_fmt(row['bare'])} | {_fmt(row['recorded'])} | "
                     f"{_ratio(row['recorded'], row['bare'])} | {_fmt(row['mixed'])} | {_fmt(row['torch'])} | "
                     f"{_fmt(row['torch_mixed'])} | {_ratio(row['bare'], row['torch'])} | {_ratio(row['mixed'], row['torch_mixed'])} |")  # fmt: skip
    return lines


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Samples/s of Keras fit (bare, recorded, mixed) against a PyTorch twin.")
    parser.add_argument("--models", default=",".join(CASES),
                        help=f"comma-separated, from: {', '.join([*CASES, *EXTRA])}; `all` for every one.")  # fmt: skip
    parser.add_argument("--size", choices=("full", "tiny"), default="full", help="real input sizes, or tiny ones (tests).")
    parser.add_argument("--batch-size", type=positive_int, help="Defaults to 128 (tiny: 8).")
    parser.add_argument("--steps", type=positive_int, help="steps per timed pass. Defaults to 20 (tiny: 2).")
    parser.add_argument("--epochs", type=positive_int, help="timed passes; the fastest counts. Defaults to 3 (tiny: 1).")
    parser.add_argument("--bare-only", action="store_true", help="time Keras `fit` alone (no recorder, mixed, PyTorch).")
    parser.add_argument("--data-dir", help="prepared tensorflow-datasets directory, for real CIFAR-10 images.")
    parser.add_argument("--out", help="also write the table, command and environment to this Markdown file.")
    args = parser.parse_args(argv)
    tiny = args.size == "tiny"
    args.batch_size = args.batch_size or (8 if tiny else 128)
    args.steps = args.steps or (2 if tiny else 20)
    args.epochs = args.epochs or (1 if tiny else 3)
    known = {**CASES, **EXTRA}
    names = list(known) if args.models == "all" else [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in names if m not in known]
    if unknown or not names:
        parser.error(f"unknown --models {unknown or args.models!r}; choose from {', '.join(known)} or all")
    if args.out and os.path.isdir(args.out):
        parser.error(f"--out {args.out!r} is a directory; give a file path such as results/speed/gpu_jax.md")
    import keras

    import importlib.metadata
    import importlib.util

    # Not imported here: its thread pool would fight TensorFlow's (see `torch_peers`).
    if importlib.util.find_spec("torch") is not None:
        torch_reason, torch_version = None, importlib.metadata.version("torch")
    else:
        torch_reason, torch_version = "PyTorch is not installed (`pip install gradzoo[peer]`)", None
    device, policy = device_name(), mixed_policy()
    header = (f"device: {device}; backend={keras.backend.backend()} keras={keras.__version__} torch={torch_version} "
              f"python={platform.python_version()} batch_size={args.batch_size} steps={args.steps} epochs={args.epochs} "
              f"size={args.size}")  # fmt: skip
    print(header, flush=True)
    if torch_reason:
        print(f"PyTorch columns skipped: {torch_reason}.", flush=True)
    rows = [bench(known[name], args, torch_reason, policy) for name in names]
    lines = table(rows, policy)
    notes = ["", "samples/s: the fastest timed pass, after one untimed. Mixed: Keras dtype policy / torch.autocast "
             f"with the same half type ({policy or 'none on this device'})."]  # fmt: skip
    if torch_reason:
        notes.append(f"PyTorch columns: n/a, {torch_reason}.")
    print("\n" + "\n".join(lines + notes))
    if args.out:
        command = " ".join(["python -m gradzoo.benchmarks.perf.bench_gpu", *(argv if argv is not None else sys.argv[1:])])
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        text = "\n".join(["# Training speed: Keras against a PyTorch twin", "",
                          f"Written by `{command}` (KERAS_BACKEND={keras.backend.backend()}) on {when}.", "",
                          f"`{header}`", "", *lines, *notes, ""])  # fmt: skip
        from gradzoo.benchmarks.storage import write_atomic  # imports Keras: not before the backend is chosen

        write_atomic(args.out, text)
        print(f"\nWritten to {args.out}")


if __name__ == "__main__":
    main()
