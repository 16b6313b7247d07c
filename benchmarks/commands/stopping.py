"""SIGTERM and Ctrl-C during `gradzoo run`: say where the suite stopped and how to resume it.

A scheduler's `kill -TERM` (or a `docker stop`) used to end a run with exit
status 143 and no word. `sigterm_as_interrupt()` turns SIGTERM into a
`Terminated` exception, a `KeyboardInterrupt`, so it unwinds the suite the way
Ctrl-C does: the record being written is whole or absent (`write_atomic`), the
progress bars close, and the command prints where it stopped and the command
line that resumes it, then exits with 143 (130 for Ctrl-C).
"""

from __future__ import annotations

import contextlib
import shlex
import signal
import threading

INTERRUPTED = 130  # 128 + SIGINT, as a shell reports Ctrl-C
TERMINATED = 128 + signal.SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread; a `KeyboardInterrupt`, so no `except Exception` swallows it."""

    status = TERMINATED


def exit_status(interrupt: KeyboardInterrupt) -> int:
    """The exit status for an interrupt: 143 for SIGTERM, 130 for Ctrl-C."""
    return getattr(interrupt, "status", INTERRUPTED)


@contextlib.contextmanager
def sigterm_as_interrupt():
    """Within the block, SIGTERM raises `Terminated` in the main thread (elsewhere: no change)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return

    def handler(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def resume_command(argv) -> str:
    """The command line that reruns `argv` (the arguments after `gradzoo`), quoted for a shell."""
    return shlex.join(["gradzoo", *argv])
