"""Provenance of a run: versions, hardware and the git commit of the code that ran it."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
from pathlib import Path

from gradzoo.benchmarks.harness.records import Environment, Hardware

_BACKEND_MODULES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}


def environment(executor: str = "local") -> Environment:
    """The environment of the current process, for the record's `env`."""
    import keras

    backend = keras.backend.backend()
    try:
        backend_version = __import__(_BACKEND_MODULES[backend]).__version__
    except (ImportError, KeyError, AttributeError):
        backend_version = None
    try:
        devices = [str(d) for d in keras.distribution.list_devices()]
    except (RuntimeError, ValueError, NotImplementedError):
        devices = []
    return Environment(
        gradzoo=_package_version(),
        keras=keras.__version__,
        backend=backend,
        backend_version=backend_version,
        python=platform.python_version(),
        platform=platform.platform(),
        hardware=Hardware(
            machine=platform.machine() or None,
            processor=cpu_model(),
            cpu_count=os.cpu_count(),
            devices=devices,
        ),
        git_commit=source_commit(),
        executor=executor,
        host=socket.gethostname() or None,
    )


def cpu_model() -> str | None:
    """The CPU's model name (`platform.processor()`, else Linux's `/proc/cpuinfo`), or `None`.

    Floating-point results depend on it: two CPU families sum in other orders,
    so a rerun on another one drifts from the record (`tests/test_reproduce.py`).
    """
    name = platform.processor()
    if name and name != platform.machine():
        return name
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip() or None
    except OSError:
        pass
    return name or None


def source_commit() -> str | None:
    """The git commit of the gradzoo code running here.

    Read from its checkout; else from `$GRADZOO_GIT_COMMIT`, which the Ray
    executor sets for its workers (their copy of the code has no `.git`).
    """
    from gradzoo import benchmarks

    root = Path(benchmarks.__file__).resolve().parent.parent
    return _git_commit(root) or os.environ.get("GRADZOO_GIT_COMMIT") or None


def _package_version() -> str | None:
    from importlib import metadata

    try:
        return metadata.version("gradzoo")
    except metadata.PackageNotFoundError:
        return None


def _git_commit(root: Path) -> str | None:
    if not (root / ".git").exists():
        return None  # an installed copy, not a checkout
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None
