"""Record files: one `OUT/records/<run_id>.json.gz` per run, written atomically, read as untrusted input."""

from __future__ import annotations

import dataclasses
import errno
import gzip
import json
import os
import re
import stat
import zlib
from pathlib import Path

from gradzoo.benchmarks.errors import RecordError
from gradzoo.benchmarks.harness.records.schema import RunRecord
from gradzoo.benchmarks.storage import write_atomic

RECORDS_SUBDIR = "records"
SUFFIX = ".json.gz"        # what gradzoo writes: gzip-compressed strict JSON (`zcat x.json.gz | jq .`)
LEGACY_SUFFIX = ".json"    # what gradzoo wrote before (schemas 1 and 2, plain JSON): still read
MAX_RECORD_BYTES = 64 * 2**20   # of JSON text; the largest reference record is about 1 MB
MAX_NESTING = 32                # a record nests 5 deep; a hostile one 200,000 deep would exhaust the parser


def records_dir(out_dir) -> Path:
    """Where the records of an output directory live."""
    return Path(out_dir) / RECORDS_SUBDIR


def record_path(out_dir, run_id: str) -> Path:
    """Where gradzoo writes the record of `run_id` (`records/<run_id>.json.gz`)."""
    return records_dir(out_dir) / f"{run_id}{SUFFIX}"


def run_id_of(path) -> str | None:
    """The run id a record file's name says, or `None` for a file that is not a record."""
    name = Path(path).name
    if name.startswith("."):
        return None  # `.<name>.tmp` of a killed write, or a hidden file
    for suffix in (SUFFIX, LEGACY_SUFFIX):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return None


def write_record(out_dir, record: RunRecord) -> Path:
    """Writes one run's record atomically (compact strict JSON, gzip) and returns its path.

    The gzip header carries no time or name, so the same record always gives the
    same bytes (and a regenerated result folder adds nothing to git's history).
    """
    text = json.dumps(record.to_json(), separators=(",", ":"), allow_nan=False)
    return write_atomic(record_path(out_dir, record.run_id), gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0))


def read_record(path) -> RunRecord:
    """Reads one record file (`.json.gz`, or the plain `.json` of older gradzoo).

    The file is treated as untrusted: only a regular file is opened (never a
    FIFO, a device or a symbolic link), at most `MAX_RECORD_BYTES` of JSON are
    read, nesting deeper than `MAX_NESTING` is refused before parsing, and every
    field is checked for kind and domain.

    Raises:
        RecordError: one sentence naming the file and why it cannot be read
            (not a regular file, too large, unreadable, truncated or invalid
            JSON, nested too deep, a missing field, a field of the wrong kind
            or out of its domain, an unknown schema, an id that is not its file
            name).
    """
    path = Path(path)
    where = path.name
    text = _read_text(path, where)
    depth = _nesting(text)
    if depth > MAX_NESTING:
        raise RecordError(f"{where} nests {depth} levels deep; a record nests at most {MAX_NESTING}.")
    try:
        data = json.loads(text)
    except ValueError as err:
        msg = getattr(err, "msg", str(err))
        raise RecordError(f"{where} is not valid JSON (truncated or corrupted: {msg} at character {getattr(err, 'pos', '?')}).") from None
    record = RunRecord.from_json(data, where)
    if record.run_id != run_id_of(path):
        raise RecordError(f"{where} holds run {record.run_id!r}, not the run its file name says.")
    return record


def _read_text(path: Path, where: str) -> str:
    """The JSON text of a record file, refusing what is not a regular file or is too large."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; O_NOFOLLOW: a link is not a record.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise RecordError(f"{where} is a symbolic link; a record must be a regular file.") from None
        raise RecordError(f"{where} cannot be read ({err.strerror or err}).") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise RecordError(f"{where} is not a regular file; a record must be a regular file.")
    with os.fdopen(fd, "rb") as raw:
        try:
            compressed = raw.read(2) == b"\x1f\x8b"  # gzip's magic, whatever the file is called
            raw.seek(0)
            stream = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw
            data = stream.read(MAX_RECORD_BYTES + 1)  # a cap, not a size: a small gzip can hold gigabytes
        except (OSError, EOFError, zlib.error) as err:
            raise RecordError(f"{where} cannot be read as gzip (truncated or corrupted: {err}).") from None
    if len(data) > MAX_RECORD_BYTES:
        raise RecordError(f"{where} holds more than {MAX_RECORD_BYTES // 2**20} MB of JSON; a record is at most that.")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise RecordError(f"{where} is not UTF-8 text.") from None


_ESCAPES = re.compile(r"\\.", re.DOTALL)
_NOT_STRUCTURE = re.compile(r'[^\[\]{}"]+')
_TOKENS = re.compile(r'"[^"]*"|[\[\]{}]')


def _nesting(text: str) -> int:
    """The deepest nesting of arrays and objects in JSON text (strings skipped), without parsing it.

    Escapes go first (an escaped quote does not end a string), then everything
    but brackets and quotes, both by regular expressions (in C); what is left is short enough to walk in Python.
    """
    skeleton = _NOT_STRUCTURE.sub("", _ESCAPES.sub("", text))
    depth = deepest = 0
    for match in _TOKENS.finditer(skeleton):
        token = match.group()
        if token in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif token in "]}":
            depth -= 1
    return deepest


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


def record_files(out_dir) -> dict[str, Path]:
    """Run id -> record file under `out_dir/records`, from the file names alone (nothing is opened).

    Where a run has both a `.json.gz` and an older `.json`, the `.json.gz` is its record.
    """
    directory = records_dir(out_dir)
    if not directory.is_dir():
        return {}
    found: dict[str, Path] = {}
    for path in sorted(directory.iterdir()):
        run_id = run_id_of(path)
        if run_id is not None and (run_id not in found or path.name.endswith(SUFFIX)):
            found[run_id] = path
    return found


def scan(out_dir) -> Scan:
    """Every record under `out_dir/records`, sorted by creation time and id, and the unreadable ones.

    Temporary files left by a killed run (`.*.tmp`) are ignored. A file that is
    unchanged since the last scan is not parsed again.
    """
    records, problems = [], []
    for path in record_files(out_dir).values():
        try:
            info = path.lstat()
        except OSError:
            continue  # removed since the listing
        key = (str(path.absolute()), info.st_mtime_ns, info.st_size)
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
    return set(record_files(out_dir))
