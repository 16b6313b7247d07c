"""The devices a run trains on: what this machine has, which precisions they run,
and how one run spreads over several of them (data parallel).

Backend-specific by nature; kept here, small, so the rest of the harness asks
a few questions whatever the backend: `accelerators()`, `check_devices(n)`,
`distribution_scope(n)` (inside a train step, `instruments.autodiff.replica_sum(grads)` sums the replicas' gradients).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os

from gradzoo.benchmarks.errors import UserError


@dataclasses.dataclass(frozen=True)
class Device:
    kind: str  # "gpu", "tpu" or "cpu"
    name: str
    compute_capability: tuple[int, int] | None = None


def accelerators() -> list[Device]:
    """The accelerators (GPUs, TPUs) the current Keras backend sees; empty on a CPU-only machine."""
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        out = []
        for d in jax.devices():
            if d.platform in ("gpu", "cuda", "rocm", "tpu"):
                cc = getattr(d, "compute_capability", None)
                out.append(Device("tpu" if d.platform == "tpu" else "gpu", d.device_kind, _capability(cc)))
        return out
    if backend == "tensorflow":
        import tensorflow as tf

        out = []
        for d in tf.config.list_physical_devices("GPU"):
            details = tf.config.experimental.get_device_details(d)
            out.append(Device("gpu", details.get("device_name", d.name), _capability(details.get("compute_capability"))))
        return out
    if backend == "torch":
        import torch

        return [Device("gpu", torch.cuda.get_device_name(i), torch.cuda.get_device_capability(i))
                for i in range(torch.cuda.device_count())]  # fmt: skip
    return []


def _capability(value) -> tuple[int, int] | None:
    if value is None:
        return None
    if isinstance(value, str):
        major, _, minor = value.partition(".")
        return int(major), int(minor or 0)
    return tuple(int(v) for v in value)[:2]


def precision_problem(precision: str, devices: list[Device]) -> str | None:
    """Why this machine cannot run `precision` (one sentence), or `None` when it can.

    - `mixed_float16` is for GPUs: without one, float16 arithmetic is emulated
      (on this project's 2-core CPU a ResNet-20 epoch took 2.4x as long as in
      float32 on TensorFlow), and loss scaling exists only to keep float16
      gradients from underflowing on GPUs. Tensor cores for float16 start at
      compute capability 7.0.
    - `mixed_bfloat16` needs compute capability 8.0 (Ampere) on NVIDIA GPUs; CPUs
      and TPUs run it.
    """
    gpus = [d for d in devices if d.kind == "gpu"]
    if precision == "mixed_float16":
        if not gpus:
            return ("--precision mixed_float16 needs a GPU, and this machine has none (on a CPU float16 is emulated and "
                    "slower than float32); use mixed_bfloat16 or float32.")  # fmt: skip
        old = [d for d in gpus if d.compute_capability and d.compute_capability < (7, 0)]
        if old:
            return (f"--precision mixed_float16 needs float16 tensor cores (compute capability 7.0), and {old[0].name} has "
                    f"{'.'.join(map(str, old[0].compute_capability))}; use float32.")  # fmt: skip
    if precision == "mixed_bfloat16":
        old = [d for d in gpus if d.compute_capability and d.compute_capability < (8, 0)]
        if old:
            return (f"--precision mixed_bfloat16 needs bfloat16 support (compute capability 8.0), and {old[0].name} has "
                    f"{'.'.join(map(str, old[0].compute_capability))}; use mixed_float16 or float32.")  # fmt: skip
    return None


def check_precision(precision: str) -> None:
    """Raises a `UserError` when this machine's devices cannot run `precision`."""
    problem = precision_problem(precision, accelerators())
    if problem:
        raise UserError(problem)


# --- data parallel inside one run --------------------------------------------------------------


def check_devices(n: int) -> None:
    """Raises a `UserError` unless this process can train one run across `n` local devices.

    The devices are the accelerators when there are any, else the CPU:
    JAX splits it into as many devices as
    `XLA_FLAGS=--xla_force_host_platform_device_count=N` says (set before JAX
    starts); TensorFlow splits it here into `n` logical devices, at most one per
    core. TensorFlow fixes its logical devices when it runs its first
    operation, so on a CPU this must be called before that (`gradzoo run` does
    it before it builds any model).

    Args:
        n: the number of devices (`--devices`, the suite's `devices`).

    Raises:
        UserError: one sentence saying how many devices there are and how to get more.
    """
    if n == 1:
        return
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        found = jax.devices()
        if len(found) < n:
            kind = found[0].platform.upper()
            how = (f"set XLA_FLAGS=--xla_force_host_platform_device_count={n} before gradzoo starts to split the CPU into {n}"
                   if kind == "CPU" else f"use --devices {len(found)} or fewer")  # fmt: skip
            raise UserError(f"--devices {n} asks for {n} devices, but JAX sees {len(found)} {kind} device(s); {how}.")
        return
    if backend != "tensorflow":
        raise UserError(f"--devices {n} needs the jax or tensorflow backend (Keras data parallelism); "
                        f"the {backend!r} backend trains a run on one device.")  # fmt: skip
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        if len(gpus) < n:
            raise UserError(f"--devices {n} asks for {n} devices, but TensorFlow sees {len(gpus)} GPU(s); "
                            f"use --devices {len(gpus)} or fewer.")  # fmt: skip
        return
    cores = os.cpu_count() or 1
    if n > cores:
        raise UserError(f"--devices {n} asks for {n} devices, but this machine has no GPU and {cores} CPU cores, "
                        f"and TensorFlow splits the CPU into at most one device per core; use --devices {cores} or fewer.")  # fmt: skip
    cpu = tf.config.list_physical_devices("CPU")[0]
    split = tf.config.get_logical_device_configuration(cpu) or []
    if len(split) >= n:
        return
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * n)
    except RuntimeError:
        raise UserError(f"--devices {n} needs TensorFlow's CPU split into {n} devices before TensorFlow runs anything, "
                        "and this process has already run it on one; start a fresh process (as `gradzoo run` does).") from None  # fmt: skip


def _devices(n: int) -> list[str]:
    import keras

    if keras.backend.backend() == "jax":
        return keras.distribution.list_devices()[:n]
    import tensorflow as tf

    kind = "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
    return [d.name for d in tf.config.list_logical_devices(kind)][:n]


@contextlib.contextmanager
def distribution_scope(n: int):
    """Builds, compiles and trains the models of the block across `n` local devices.

    The global batch is the one the data gives, split evenly across the
    devices; gradients are summed over them before the update, so a run sees
    the gradient of the whole batch, as on one device. JAX:
    `keras.distribution.DataParallel`, set for the block and restored after.
    TensorFlow: `tf.distribute.MirroredStrategy`, whose scope the model must be
    built and compiled in. `n == 1` changes nothing.

    Args:
        n: the number of devices; call `check_devices(n)` first.
    """
    if n == 1:
        yield
        return
    import keras

    devices = _devices(n)
    if keras.backend.backend() == "jax":
        previous = keras.distribution.distribution()
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
        try:
            yield
        finally:
            keras.distribution.set_distribution(previous)
        return
    with _mirrored_strategy(tuple(devices)).scope():
        yield


@functools.cache
def _mirrored_strategy(devices: tuple):
    # One per device set and process: a second MirroredStrategy over the same devices reuses the
    # first one's collective keys, and its first all-reduce then aborts on a shape mismatch.
    import tensorflow as tf

    return tf.distribute.MirroredStrategy(list(devices))




def clipping_problem(n: int, settings: dict) -> str | None:
    """Why a run with these optimizer settings cannot train on `n` devices (one sentence), or `None`.

    On TensorFlow, Keras clips each replica's share of the gradient before it
    sums the shares, so a clipped run on several devices would take other steps
    than the same run on one device; JAX clips the whole gradient.
    """
    import keras

    clip = {k: v for k, v in settings.items() if k in ("clipnorm", "global_clipnorm", "clipvalue") and v}
    if n == 1 or not clip or keras.backend.backend() != "tensorflow":
        return None
    key, value = next(iter(clip.items()))
    return (f"--devices {n} with {key}={value} would clip each device's share of the gradient separately on TensorFlow "
            f"(not the whole gradient, as on one device); use --devices 1, or the jax backend, for clipped models.")  # fmt: skip


def share_batch_statistics(model, n: int) -> None:
    """Makes the model's BatchNormalization layers normalize over the whole global batch on `n` devices.

    On JAX the batch statistics of a data-parallel step are global already. On
    TensorFlow each replica would normalize over its own share of the batch,
    so the run would train (and its gradients would read) differently from the
    same run on one device; `synchronized` all-reduces the statistics instead.
    """
    import keras

    if n == 1 or keras.backend.backend() != "tensorflow":
        return
    pending = list(model.layers)
    while pending:
        layer = pending.pop()
        pending.extend(getattr(layer, "layers", []))
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.synchronized = True


def batch_problem(n: int, batch_size: int, sizes: dict[str, int]) -> str | None:
    """Why the batches of a run do not split evenly across `n` devices (one sentence), or `None`.

    Data parallelism splits every batch into `n` equal shares: JAX cannot
    shard an uneven batch at all, and TensorFlow would weigh an uneven batch's
    shares equally, which is not the gradient of the batch.

    Args:
        n: the number of devices.
        batch_size: the run's global batch size.
        sizes: examples per split, e.g. `{"train": 3600, "val": 400}`; a
            split's last batch is what remains of it.
    """
    if n == 1:
        return None
    if batch_size % n:
        return f"--devices {n} splits every batch into {n} equal shares, and batch_size={batch_size} does not divide by {n}."
    for split, count in sizes.items():
        if count % batch_size % n:
            return (f"--devices {n} splits every batch into {n} equal shares, and the {count} {split} examples end in a "
                    f"batch of {count % batch_size} at batch_size={batch_size}; choose a batch size or a number of "
                    f"examples that leaves a multiple of {n}.")  # fmt: skip
    return None
