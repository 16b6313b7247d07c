"""Records gradzoo cannot read are moved aside, never overwritten.

A record from a newer gradzoo, a truncated or hand-edited one, is still the
user's: before its run is trained again (which writes a record under the same
name), `move_aside` moves it to `OUT/records/unreadable/<name>`, or to
`<name>.<n>` there when that name is taken, so nothing already moved aside is
overwritten either. `scan` does not look into that folder, so a moved record is
no longer reported; the user can read it with a newer gradzoo, or move it back.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

from gradzoo.benchmarks.harness.records.files import records_dir

UNREADABLE_SUBDIR = "unreadable"


def unreadable_dir(out_dir) -> Path:
    """Where `move_aside` keeps the records of `out_dir` that could not be read."""
    return records_dir(out_dir) / UNREADABLE_SUBDIR


def move_aside(out_dir, path) -> Path:
    """Moves one record file of `out_dir` into `unreadable_dir(out_dir)` without overwriting anything.

    Args:
        out_dir: the output directory.
        path: the record file (as `Scan.problems` names it); a link is moved
            as the link, never followed.

    Returns:
        Where the file is now.

    Raises:
        OSError: it could not be moved (its folder read-only); the file is untouched.
    """
    path = Path(path)
    target_dir = unreadable_dir(out_dir)
    target_dir.mkdir(parents=True, exist_ok=True)
    for n in range(1, 10_000):
        target = target_dir / (path.name if n == 1 else f"{path.name}.{n}")
        if _move_if_free(path, target):
            return target
    raise OSError(errno.EEXIST, "no free name to move the record to", str(target_dir))


def _move_if_free(source: Path, target: Path) -> bool:
    """Moves `source` to `target` if nothing is at `target`; False when something is."""
    try:
        # A hard link fails when the target exists, where a rename would replace it without a word.
        os.link(source, target, follow_symlinks=False)
    except FileExistsError:
        return False
    except OSError:
        # A folder, or a filesystem without hard links: check, then rename (the lock keeps other gradzoos out).
        if os.path.lexists(target):
            return False
        os.rename(source, target)
        return True
    with contextlib.suppress(FileNotFoundError):
        os.unlink(source)
    return True
