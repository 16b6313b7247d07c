"""Run records: one JSON file per run, the single source of truth.

A record is written once, atomically (a temporary file in the same directory,
fsync, then `os.replace`), so a run killed at any moment, even by SIGKILL,
leaves either its complete record or none: never a truncated one. Tables and
reports are always regenerated from the records.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

SCHEMA_VERSION = 1
RECORDS_SUBDIR = "records"


def records_dir(out_dir) -> Path:
    """Where the records of an output directory live."""
    return Path(out_dir) / RECORDS_SUBDIR


def record_path(out_dir, run_id: str) -> Path:
    return records_dir(out_dir) / f"{run_id}.json"


def write_json_atomic(path, data) -> None:
    """Writes JSON so that `path` holds either the old content or all of the new."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates the file private (0600); a record is meant to be shared.
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1, allow_nan=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_record(out_dir, record: dict) -> Path:
    """Writes one run's record atomically and returns its path."""
    path = record_path(out_dir, record["run_id"])
    write_json_atomic(path, record)
    return path


def load_record(path) -> dict | None:
    """A record, or `None` if the file is not a complete gradzoo record."""
    try:
        with open(path) as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("schema") != SCHEMA_VERSION or "run_id" not in record:
        return None
    return record


def load_records(out_dir) -> list[dict]:
    """Every complete record under `out_dir/records`, sorted by run id.

    Temporary files left by a killed run (`.*.tmp`) are ignored.
    """
    directory = records_dir(out_dir)
    if not directory.is_dir():
        return []
    records = (load_record(p) for p in sorted(directory.glob("*.json")))
    return sorted((r for r in records if r is not None), key=lambda r: (r.get("created", ""), r["run_id"]))


def recorded_ids(out_dir) -> set[str]:
    """Run ids that already have a complete record."""
    return {r["run_id"] for r in load_records(out_dir)}
