"""Files: atomic writes, the cache directory, and the lock on an output directory.

Everything gradzoo writes goes through `write_atomic`: a temporary file in the
same directory, fsync, then `os.replace`, so a reader (or a run killed at any
moment, even by SIGKILL) sees either the old file or the whole new one, never
a truncated one. JSON is written strict (`allow_nan=False`): callers encode
non-finite numbers first (see `gradzoo.benchmarks.harness.records`).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import tempfile
from pathlib import Path

from gradzoo.benchmarks.errors import OutputError
from gradzoo.zoo.checks import cache_dir  # noqa: F401  (one cache directory for datasets and weights)

LOCK_NAME = ".gradzoo.lock"
_LOCK_CONTENT = re.compile(rb"pid \d+\s*")  # what `DirectoryLock` writes: a lock it may take over


def write_atomic(path, data: bytes | str, mode: int | None = None) -> Path:
    """Writes `data` to `path` so that `path` holds the old content or all of the new.

    Args:
        path: the destination; its directory is created if missing.
        data: bytes, or text (written as UTF-8).
        mode: file permissions. Defaults to `0o666` masked by the umask, as
            `open()` would create it (mkstemp alone would make it private).

    Returns:
        The path written.

    Raises:
        OSError: the write failed (a full disk, a read-only folder); its
            `filename` is `path`, so the CLI can name it in one sentence.
    """
    path = Path(path)
    try:
        return _write_atomic(path, data, mode)
    except OSError as err:
        if err.filename == str(path):
            raise
        # A full disk fails inside write() or fsync(), whose error names no file: name the one being written.
        raise OSError(err.errno, err.strerror or str(err), str(path)) from err


def _write_atomic(path: Path, data: bytes | str, mode: int | None) -> Path:
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

    The lock file is opened without following links and only taken over when
    it is a plain file holding what a lock holds (`pid N`, or nothing): a link,
    a hard link or a user's file at its name is refused with an `OutputError`,
    never written through or truncated.

    Use as a context manager: `with DirectoryLock(out): ...`.
    """

    def __init__(self, directory):
        self.path = Path(directory) / LOCK_NAME
        self._fd = None

    def acquire(self) -> None:
        import fcntl

        fd = self._open()
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
        held = os.pread(fd, 4096, 0)
        if held and not _LOCK_CONTENT.fullmatch(held):
            os.close(fd)  # a file someone put there under our name: not ours to truncate
            raise self._not_ours("a file gradzoo did not write")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}".encode(), 0)
        self._fd = fd

    def _open(self) -> int:
        """Opens (or creates) the lock file itself, never what a link there points to, or raises `OutputError`."""
        import stat

        # O_NOFOLLOW: a symlink planted at the lock's name would have us write our pid into its target.
        # O_NONBLOCK: a FIFO there would otherwise block the open.
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(self.path, flags, 0o644)
        except OSError as err:
            if os.path.islink(self.path):
                raise self._not_ours("a symbolic link") from None
            if err.errno == errno.EISDIR or self.path.is_dir():
                raise self._not_ours("a folder") from None
            raise OutputError(f"{str(self.path)!r} cannot be opened for writing ({err.strerror}), and gradzoo keeps its "
                              "lock there; make it writable or give another --out.") from None  # fmt: skip
        info = os.fstat(fd)
        kind = None if stat.S_ISREG(info.st_mode) else "a special file"
        # A hard link shares its content with a file elsewhere, which truncating would destroy.
        kind = kind or ("a hard link to another file" if info.st_nlink > 1 else None)
        if kind:
            os.close(fd)
            raise self._not_ours(kind)
        return fd

    def _not_ours(self, kind: str) -> OutputError:
        return OutputError(f"{str(self.path)!r} is {kind}, but gradzoo keeps its lock there as a plain file it creates "
                           "itself; move it away or give another --out.")  # fmt: skip

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()
