"""The devices a run trains on: what this machine has, and which precisions they run.

Backend-specific by nature; kept here, small, so the rest of the harness asks
one question (`accelerators()`) whatever the backend.
"""

from __future__ import annotations

import dataclasses

from benchmarks.errors import UserError


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
