"""Files: atomic writes, the cache directory, and the lock on an output directory.

Everything gradzoo writes goes through `write_atomic`: a temporary file in the
same directory, fsync, then `os.replace`, so a reader (or a run killed at any
moment, even by SIGKILL) sees either the old file or the whole new one, never
a truncated one. JSON is written strict (`allow_nan=False`): callers encode
non-finite numbers first (see `benchmarks.harness.records`).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from pathlib import Path

from benchmarks.errors import OutputError
from zoo.checks import cache_dir  # noqa: F401  (one cache directory for datasets and weights)

LOCK_NAME = ".gradzoo.lock"


def write_atomic(path, data: bytes | str, mode: int | None = None) -> Path:
    """Writes `data` to `path` so that `path` holds the old content or all of the new.

    Args:
        path: the destination; its directory is created if missing.
        data: bytes, or text (written as UTF-8).
        mode: file permissions. Defaults to `0o666` masked by the umask, as
            `open()` would create it (mkstemp alone would make it private).

    Returns:
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if mode is None:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def write_json_atomic(path, data, indent: int | None = 1) -> Path:
    """Strict JSON (no NaN or Infinity tokens), written atomically."""
    return write_atomic(path, json.dumps(data, indent=indent, allow_nan=False) + "\n")


def save_figure_atomic(fig, path, dpi: int) -> Path:
    """Saves a matplotlib figure as a compact PNG through `write_atomic`.

    The figure is rendered, then quantized to a 256-colour palette: a plot of
    lines, text and one colour map looks the same and takes about a quarter of
    the bytes of matplotlib's 32-bit RGBA file (the reference report carries
    nearly 200 of them). The same figure always gives the same bytes.
    """
    import io

    from PIL import Image  # matplotlib's own dependency

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, facecolor="white")
    buffer.seek(0)
    with Image.open(buffer) as image:
        palette = image.convert("RGB").quantize(256, method=Image.Quantize.FASTOCTREE)
    compact = io.BytesIO()
    palette.save(compact, format="PNG", optimize=True)
    return write_atomic(path, compact.getvalue())


def ensure_writable_dir(path, option: str = "--out") -> Path:
    """Creates `path` if needed and proves a file can be written in it, or raises `OutputError`.

    Called before any training starts, so that a run's result is never lost
    to an output directory that turns out to be read-only.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{option} {str(path)!r} is a file; give a directory (it is created if missing).")
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-check.", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        reason = err.strerror or str(err)
        raise OutputError(f"{option} {str(path)!r} cannot be written ({reason}); choose a directory you can write to.") from None
    return path


class DirectoryLock:
    """An exclusive lock on an output directory, held by one `gradzoo run` at a time.

    A second process that asks for it gets an `OutputError` at once (one
    sentence naming the process that holds it), never a shared directory in
    which two runs train the same run or race on the tables. The lock is an
    `fcntl.flock` on `OUT/.gradzoo.lock`, released by the kernel when the holder
    exits, even by SIGKILL, so a killed run never leaves a stale lock.

    Use as a context manager: `with DirectoryLock(out): ...`.
    """

    def __init__(self, directory):
        self.path = Path(directory) / LOCK_NAME
        self._fd = None

    def acquire(self) -> None:
        import fcntl

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            if err.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise OutputError(
                    f"{str(self.path.parent)!r} is in use by another gradzoo run ({holder}); wait for it to "
                    "finish or give another --out."
                ) from None
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()
