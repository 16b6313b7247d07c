"""Record files: one `OUT/records/<run_id>.json` per run, written atomically, read once per command."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from benchmarks.errors import RecordError
from benchmarks.harness.records.schema import RunRecord
from benchmarks.storage import write_json_atomic

RECORDS_SUBDIR = "records"


def records_dir(out_dir) -> Path:
    """Where the records of an output directory live."""
    return Path(out_dir) / RECORDS_SUBDIR


def record_path(out_dir, run_id: str) -> Path:
    return records_dir(out_dir) / f"{run_id}.json"


def write_record(out_dir, record: RunRecord) -> Path:
    """Writes one run's record atomically (strict JSON) and returns its path."""
    return write_json_atomic(record_path(out_dir, record.run_id), record.to_json())


def read_record(path) -> RunRecord:
    """Reads one record file.

    Raises:
        RecordError: one sentence naming the file and why it cannot be read
            (unreadable, truncated or invalid JSON, a missing field, a field of
            the wrong kind, an unknown schema, an id that is not its file name).
    """
    path = Path(path)
    where = path.name
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise RecordError(f"{where} cannot be read ({getattr(err, 'strerror', None) or err}).") from None
    try:
        data = json.loads(text)
    except ValueError as err:
        raise RecordError(f"{where} is not valid JSON (truncated or corrupted: {err.msg} at character {err.pos}).") from None
    record = RunRecord.from_json(data, where)
    if record.run_id != path.stem:
        raise RecordError(f"{where} holds run {record.run_id!r}, not the run its file name says.")
    return record


@dataclasses.dataclass
class Scan:
    """The records of an output directory: the readable ones, and the others with their reasons."""

    records: list[RunRecord]
    problems: list[tuple[Path, str]]

    @property
    def ids(self) -> set[str]:
        return {r.run_id for r in self.records}

    def problem_lines(self) -> list[str]:
        """One line per unreadable record: the reason, which names the file."""
        return [reason for _, reason in self.problems]


# (path, mtime_ns, size) -> parsed record: one gradzoo command reads each file once.
_CACHE: dict[tuple[str, int, int], RunRecord] = {}


def scan(out_dir) -> Scan:
    """Every record under `out_dir/records`, sorted by creation time and id, and the unreadable ones.

    Temporary files left by a killed run (`.*.tmp`) are ignored. A file that is
    unchanged since the last scan is not parsed again.
    """
    directory = records_dir(out_dir)
    records, problems = [], []
    if not directory.is_dir():
        return Scan([], [])
    for path in sorted(directory.glob("*.json")):
        if path.name.startswith("."):
            continue
        try:
            stat = path.stat()
        except OSError:
            continue  # removed since the glob
        key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
        record = _CACHE.get(key)
        if record is None:
            try:
                record = read_record(path)
            except RecordError as err:
                problems.append((path, str(err)))
                continue
            _CACHE[key] = record
        records.append(record)
    records.sort(key=lambda r: (r.created, r.run_id))
    return Scan(records, problems)


def load_records(out_dir) -> list[RunRecord]:
    """The readable records of `out_dir` (see `scan` for the unreadable ones)."""
    return scan(out_dir).records


def recorded_ids(out_dir) -> set[str]:
    """Run ids that have a record file, read from the file names alone (nothing is parsed)."""
    directory = records_dir(out_dir)
    if not directory.is_dir():
        return set()
    return {p.stem for p in directory.glob("*.json") if not p.name.startswith(".")}

