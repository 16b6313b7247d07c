"""An output directory is gradzoo's own: its entries are checked before anything trains.

`gradzoo run` and `gradzoo report` write a fixed set of entries into OUT (the
folders of records, checkpoints, suite copies and figures; the tables, claims
and reports; the lock). `check_entries(out)` finds, before the first run
trains, an entry of the wrong kind (a file where a folder goes, a folder where
a table goes) or a folder that cannot be written, and raises an `OutputError`
naming it, where writing it after hours of training would have ended in a
traceback.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from gradzoo.benchmarks.errors import OutputError
from gradzoo.benchmarks.harness.run.checkpoints import CHECKPOINTS_SUBDIR
from gradzoo.benchmarks.harness.records.files import RECORDS_SUBDIR
from gradzoo.benchmarks.harness.records.quarantine import UNREADABLE_SUBDIR
from gradzoo.benchmarks.storage import LOCK_NAME

# Folders, with what gradzoo keeps in each (for the message). "suites" is
# `gradzoo.benchmarks.analysis.claims.SUITE_COPIES` and "figures" is
# `gradzoo.benchmarks.reporting.report.FIGURES_SUBDIR`, spelled out here so that this
# check does not import pandas or matplotlib; tests/hostile/test_out_dir.py
# checks that a run and a report write nothing this list lacks.
FOLDERS = {
    RECORDS_SUBDIR: "run records",
    f"{RECORDS_SUBDIR}/{UNREADABLE_SUBDIR}": "unreadable records moved aside",
    CHECKPOINTS_SUBDIR: "epoch checkpoints",
    "suites": "copies of the suites it ran",
    "figures": "report figures",
}
# Files, each replaced whole by `gradzoo.benchmarks.storage.write_atomic` (the lock is checked by `DirectoryLock`).
FILES = ("convergence.csv", "gradients.csv.gz", "comparison.csv", "comparison.md", "claims.csv", "claims.md",
         "report.md", "report.html")  # fmt: skip
OWN = (*FOLDERS, *FILES, LOCK_NAME)


def check_entries(out, option: str = "--out", files=()) -> None:
    """Raises `OutputError` if an entry gradzoo writes in `out` is of the wrong kind or cannot be written.

    Args:
        out: the output directory (already checked writable by
            `gradzoo.benchmarks.storage.ensure_writable_dir`).
        option: the CLI option that named it, for the message.
        files: more files to be written, relative to `out` (e.g. the suite's copy).
    """
    out = Path(out)
    for name, what in FOLDERS.items():
        path = out / name
        if os.path.lexists(path) and not path.is_dir():  # a dangling link counts: mkdir would fail on it
            raise OutputError(f"{str(path)!r} is {_kind(path)}, but gradzoo keeps its {what} in a folder there; move "
                              f"it away or give another {option}.")  # fmt: skip
        if path.is_dir() and not os.access(path, os.W_OK | os.X_OK):
            raise OutputError(f"{str(path)!r} cannot be written, and gradzoo keeps its {what} there; make it writable "
                              f"or give another {option}.")  # fmt: skip
    for name in (*FILES, *files):
        path = out / name
        # `os.replace` puts a new file in place of a file or a link, but not of a folder.
        if os.path.lexists(path) and stat.S_ISDIR(os.lstat(path).st_mode):
            raise OutputError(f"{str(path)!r} is a folder, but gradzoo writes a file there; move it away or give "
                              f"another {option}.")  # fmt: skip
        if not os.access(path.parent, os.W_OK | os.X_OK) and path.parent.is_dir():
            raise OutputError(f"{str(path.parent)!r} cannot be written, and gradzoo writes {path.name} there; make it "
                              f"writable or give another {option}.")  # fmt: skip


def _kind(path: Path) -> str:
    """What is at `path`, in words."""
    if path.is_symlink():
        return "a link to nothing" if not path.exists() else "a link to a file"
    mode = os.lstat(path).st_mode
    return "a file" if stat.S_ISREG(mode) else "a special file"
