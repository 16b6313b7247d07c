"""Hostile record files in a shared results folder: each is named with its field and left out.

A case is one row of `DAMAGES`: a name, a function that turns a good record's
JSON data into the hostile one (or writes the file itself), and words the
reason must contain. Every case asserts that the bad file is named and left
out, that the good record beside it still loads, and that nothing crashes,
hangs or eats memory.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import make_record

from gradzoo.benchmarks.harness.records import scan, write_record
from gradzoo.benchmarks.harness.records.files import MAX_RECORD_BYTES, MAX_NESTING


def _set(path: str, value):
    """A damage that sets one field (dotted path, list indices as numbers) of the record's JSON data."""

    def damage(data):
        *parents, last = path.split(".")
        node = data
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        node[int(last) if isinstance(node, list) else last] = value
        return data

    return damage


DAMAGES = [
    ("loss as a string", _set("history.loss", ["12345"]), "`history.loss[0]` must be a number. Received: '12345'"),
    ("loss as an object", _set("history.loss", [{"a": 1}]), "`history.loss[0]` must be a number"),
    ("a norm as true", _set("instruments.gradient_norms.norms.0.0", True), "`instruments.gradient_norms.norms[0][0]` must be a number"),
    ("instruments as a list", _set("instruments", []), "`instruments` must be a JSON object"),
    ("accuracy 5.0", _set("summary.best_val_metric", 5.0), "`summary.best_val_metric` is 5.0, outside the range of accuracy (0 to 1)"),
    ("a curve's accuracy -1", _set("history.val_metric", [-1.0]), "`history.val_metric[0]` is -1.0, outside the range of accuracy"),
    ("steps -7", _set("summary.steps_run", -7), "`summary.steps_run` must not be negative. Received: -7"),
    ("a negative duration", _set("summary.train_s", -1.0), "`summary.train_s` must not be negative"),
    ("status weird", _set("status", "weird"), "`status` must be one of 'completed' or 'diverged'. Received: 'weird'"),
    ("created not a date", _set("created", "not a date"), "`created` must be an ISO 8601 date. Received: 'not a date'"),
    ("a layer of an unknown kind", _set("instruments.gradient_norms.layers.0.kind", "bogus"),
     "`instruments.gradient_norms.layers[0].kind` must be one of"),
    ("a phase no run has", _set("config.phase", "both"), "`config.phase` must be one of 'eval' or 'tune'"),
    ("metric mode sideways", _set("dataset.metric_mode", "sideways"), "`dataset.metric_mode` must be one of"),
]  # fmt: skip


def _good_and_bad(out: Path, damage) -> tuple[str, Path]:
    good = make_record(seed=0)
    write_record(out, good)
    bad_path = write_record(out, make_record(seed=1))
    data = json.loads(gzip.decompress(bad_path.read_bytes()))
    bad_path.write_bytes(gzip.compress(json.dumps(damage(data)).encode()))
    return good.run_id, bad_path


@pytest.mark.parametrize("name, damage, reason", DAMAGES, ids=[d[0] for d in DAMAGES])
def test_a_record_with_a_bad_field_is_named_and_left_out(tmp_path, name, damage, reason):
    good_id, bad = _good_and_bad(tmp_path, damage)
    found = scan(tmp_path)
    assert [r.run_id for r in found.records] == [good_id]
    ((path, message),) = found.problems
    assert path == bad and message.startswith(bad.name) and reason in message, message
    assert "\n" not in message


def _deep(depth: int) -> bytes:
    return ("[" * depth + "]" * depth).encode()


FILES = [
    # A 400 KB record nested 200,000 arrays deep: Python's parser would recurse until it fails.
    ("nested 200,000 deep", lambda p: p.write_bytes(_deep(200_000)), f"levels deep; a record nests at most {MAX_NESTING}"),
    ("nested deep in a string-free corner", lambda p: p.write_bytes(b'{"a": ' + _deep(MAX_NESTING + 1) + b"}"), "levels deep"),
    # 120 MB of JSON with one unknown key, compressed to a small file: refused at the cap, not read whole.
    ("120 MB behind gzip", lambda p: p.write_bytes(gzip.compress(b'{"x": "' + b" " * (120 * 2**20) + b'"}', 1)),
     f"holds more than {MAX_RECORD_BYTES // 2**20} MB of JSON"),
    ("not gzip, not JSON", lambda p: p.write_bytes(b"\x1f\x8bgarbage"), "cannot be read as gzip"),
    ("a symbolic link", lambda p: p.symlink_to("/etc/passwd"), "is a symbolic link; a record must be a regular file"),
    ("a directory", lambda p: p.mkdir(), "is not a regular file"),
]  # fmt: skip


@pytest.mark.parametrize("name, make, reason", FILES, ids=[f[0] for f in FILES])
def test_a_hostile_file_is_named_and_left_out(tmp_path, name, make, reason):
    good = make_record(seed=0)
    write_record(tmp_path, good)
    bad = tmp_path / "records" / "0123456789abcdef.json.gz"
    make(bad)
    found = scan(tmp_path)
    assert [r.run_id for r in found.records] == [good.run_id]
    ((path, message),) = found.problems
    assert path == bad and reason in message and "\n" not in message, message


def test_a_fifo_among_the_records_does_not_hang(tmp_path):
    good = make_record(seed=0)
    write_record(tmp_path, good)
    fifo = tmp_path / "records" / "x.json"
    os.mkfifo(fifo)
    signal.signal(signal.SIGALRM, lambda *_: pytest.fail("reading the records hung on a FIFO"))
    signal.alarm(10)
    try:
        found = scan(tmp_path)
    finally:
        signal.alarm(0)
    assert [r.run_id for r in found.records] == [good.run_id]
    assert found.problem_lines() == ["x.json is not a regular file; a record must be a regular file."]


def test_the_size_cap_holds_memory_down(tmp_path):
    """A 2 MB file that inflates to 1 GB costs the reader the cap, not the gigabyte."""
    bomb = tmp_path / "records" / "0123456789abcdef.json.gz"
    bomb.parent.mkdir()
    with gzip.open(bomb, "wb", compresslevel=9) as f:
        f.write(b'{"x": "')
        for _ in range(1024):
            f.write(b" " * 2**20)
        f.write(b'"}')
    code = ("import resource, sys; from gradzoo.benchmarks.harness.records import read_record\n"
            "from gradzoo.benchmarks.errors import RecordError\n"
            "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            "try:\n    read_record(sys.argv[1])\nexcept RecordError as e:\n    print(e)\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)")  # fmt: skip
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code, str(bomb)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(root)})  # fmt: skip
    assert done.returncode == 0, done.stderr
    said, grown_kb = done.stdout.strip().splitlines()
    assert "holds more than" in said
    # The cap is 64 MB of text; reading up to it may briefly hold it twice (bytes, then str).
    assert int(grown_kb) < 3 * MAX_RECORD_BYTES // 1024, f"reading a capped record grew the process by {int(grown_kb) // 1024} MB"


def test_report_goes_on_past_every_hostile_record(tmp_path, capsys):
    """One folder holding every hostile case beside one good record: the report names each and is written."""
    from gradzoo.benchmarks.cli import main

    good = make_record(seed=0)
    write_record(tmp_path, good)
    records = tmp_path / "records"
    for i, (_, damage, _) in enumerate(DAMAGES):
        path = write_record(tmp_path, make_record(seed=100 + i))
        path.write_bytes(gzip.compress(json.dumps(damage(json.loads(gzip.decompress(path.read_bytes())))).encode()))
    (records / "deep.json").write_bytes(_deep(200_000))
    os.mkfifo(records / "fifo.json")
    assert main(["report", "--results", str(tmp_path)]) == 0
    said = capsys.readouterr().out
    assert said.count("Left out, unreadable:") == len(DAMAGES) + 2
    assert (tmp_path / "report.md").is_file()
