"""Choosing the Keras backend (and the precision names) before Keras is imported, and importing it quietly.

The backend is fixed at `import keras`: `choose_backend` sets `KERAS_BACKEND`
first (or says in one sentence why it cannot), so `gradzoo run --backend jax`
needs no environment variable.
"""

from __future__ import annotations

import importlib.util
import os
import sys

from gradzoo.benchmarks.errors import UserError

BACKENDS = ("tensorflow", "jax", "torch")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")  # Keras dtype policies
BACKEND_PACKAGES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}
def choose_backend(backend: str | None) -> str:
    """Sets `KERAS_BACKEND` before Keras is imported, or explains in one sentence why it cannot.

    Raises:
        UserError: the backend's package is not installed, or Keras is already
            loaded with another backend.
    """
    backend = backend or os.environ.get("KERAS_BACKEND") or "tensorflow"
    if backend not in BACKENDS:
        raise UserError(f"Unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}.")
    if "keras" in sys.modules:
        import keras

        if keras.backend.backend() != backend:
            raise UserError(
                f"Keras is already loaded with the {keras.backend.backend()!r} backend in this process, so "
                f"--backend {backend} cannot apply; run gradzoo in a fresh process."
            )
        return backend
    package = BACKEND_PACKAGES[backend]
    if importlib.util.find_spec(package) is None:
        raise UserError(f"--backend {backend} needs {package}, which is not installed here; install it with "
                        f"`pip install {package}` or choose another backend ({', '.join(BACKENDS)}).")  # fmt: skip
    os.environ["KERAS_BACKEND"] = backend
    return backend


def import_keras_quietly() -> None:
    """Imports Keras (and so its backend) with the process's stderr muted.

    TensorFlow's C++ runtime writes start-up lines (oneDNN, CUDA, CPU features)
    straight to file descriptor 2 while it loads, before any Python logging
    setting applies; a user who mistyped a suite name should see one sentence,
    not that. Python exceptions raised by the import still surface: stderr is
    restored before they propagate.
    """
    if "keras" in sys.modules:
        return
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # stderr replaced, e.g. captured by a test runner
        import keras  # noqa: F401

        return
    sys.stderr.flush()
    saved = os.dup(fd)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
        import keras  # noqa: F401
    finally:
        os.dup2(saved, fd)
        os.close(saved)
        os.close(devnull)
