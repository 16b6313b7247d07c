"""Provenance of a run: versions, hardware and the git commit of the code that ran it."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
from pathlib import Path

from benchmarks.harness.records import Environment, Hardware

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
            processor=platform.processor() or None,
            cpu_count=os.cpu_count(),
            devices=devices,
        ),
        git_commit=source_commit(),
        executor=executor,
        host=socket.gethostname() or None,
    )


def source_commit() -> str | None:
    """The git commit of the gradzoo code running here.

    Read from its checkout; else from `$GRADZOO_GIT_COMMIT`, which the Ray
    executor sets for its workers (their copy of the code has no `.git`).
    """
    import benchmarks

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
