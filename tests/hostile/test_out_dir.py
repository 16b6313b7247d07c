"""OUT is gradzoo's own: the lock, the entries it writes, and the records it cannot read.

A shared `runs/` folder may hold anything: a lock that is a link to someone's
file, a file where gradzoo keeps a folder, a record from a newer gradzoo. Each
case here plays one of them and asserts what a user relies on: one sentence
naming the path and what is accepted, exit status 2 before any training, the
user's file unchanged, and a record gradzoo cannot read moved aside with its
bytes, never overwritten.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
from pathlib import Path

import pytest

from gradzoo.benchmarks.cli import main
from gradzoo.benchmarks.harness import records as records_mod
from gradzoo.benchmarks.harness.run.out_dir import OWN
from gradzoo.benchmarks.harness.records.quarantine import unreadable_dir
from gradzoo.benchmarks.storage import LOCK_NAME
from helpers import cli_error, tiny_suite

# One run of one epoch on 200 examples: seconds.
SUITE = tiny_suite()


@pytest.fixture
def suite(tmp_path) -> str:
    path = tmp_path / "tiny.toml"
    path.write_text(SUITE)
    return str(path)


@pytest.fixture
def no_training(monkeypatch):
    """Fails the test if a run starts: these mistakes must be found before any training."""
    import gradzoo.benchmarks.harness.run.run_one as runner

    monkeypatch.setattr(runner, "run_one", lambda *a, **k: pytest.fail("trained before checking OUT"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """An OUT with the tiny suite's one record, and its report."""
    root = tmp_path_factory.mktemp("trained")
    (root / "tiny.toml").write_text(SUITE)
    out = root / "out"
    assert main(["run", str(root / "tiny.toml"), "--out", str(out)]) == 0
    assert main(["report", "--results", str(out)]) == 0
    return out


def _rewrite(path: Path, change) -> None:
    """Rewrites a record file's JSON with `change(data)`, in the file's own encoding (plain or gzip)."""
    blob = path.read_bytes()
    zipped = blob[:2] == b"\x1f\x8b"
    data = json.loads(gzip.decompress(blob) if zipped else blob)
    change(data)
    text = json.dumps(data).encode()
    path.write_bytes(gzip.compress(text) if zipped else text)


@pytest.mark.parametrize("plant", ["symlink", "hard link", "user's file", "folder"])
def test_the_lock_never_writes_through_what_is_at_its_name(tmp_path, suite, capsys, no_training, plant):
    out, outside = tmp_path / "out", tmp_path / "outside.txt"
    out.mkdir()
    outside.write_text("my thesis notes\n")
    lock = out / LOCK_NAME
    if plant == "symlink":
        lock.symlink_to(outside)
    elif plant == "hard link":
        os.link(outside, lock)
    elif plant == "user's file":
        shutil.copy(outside, lock)
    else:
        lock.mkdir()

    err = cli_error(main, ["run", suite, "--out", str(out)], capsys)
    assert f"gradzoo: error: {str(lock)!r} is a" in err
    assert "gradzoo keeps its lock there as a plain file it creates itself; move it away or give another --out." in err
    assert err.count("\n") == 1
    assert outside.read_text() == "my thesis notes\n"  # not truncated, no pid written into it
    if plant == "user's file":
        assert lock.read_text() == "my thesis notes\n"
    assert not (out / "records").exists()


def test_a_lock_left_by_a_killed_run_is_taken_over(tmp_path, suite):
    out = tmp_path / "out"
    out.mkdir()
    (out / LOCK_NAME).write_text("pid 999999")  # what a run killed by SIGKILL leaves
    assert main(["run", suite, "--out", str(out)]) == 0
    assert len(records_mod.load_records(out)) == 1


@pytest.mark.parametrize(("entry", "make", "said"), [
    ("records", lambda p: p.write_text("x"), "is a file, but gradzoo keeps its run records in a folder there"),
    ("checkpoints", lambda p: p.write_text("x"), "is a file, but gradzoo keeps its epoch checkpoints in a folder there"),
    ("suites", lambda p: p.symlink_to(p.parent / "gone"), "is a link to nothing, but gradzoo keeps its copies of the suites"),
    ("records/unreadable", lambda p: p.parent.mkdir() or p.write_text("x"), "is a file, but gradzoo keeps its unreadable records moved aside in a folder there"),
    ("comparison.md", lambda p: p.mkdir(), "is a folder, but gradzoo writes a file there"),
    ("suites/tiny.toml", lambda p: p.mkdir(parents=True), "is a folder, but gradzoo writes a file there"),
])  # fmt: skip
def test_an_entry_of_the_wrong_kind_is_one_sentence_before_training(tmp_path, suite, capsys, no_training, entry, make, said):
    out = tmp_path / "out"
    out.mkdir()
    make(out / entry)
    err = cli_error(main, ["run", suite, "--out", str(out)], capsys)
    assert err.startswith(f"gradzoo: error: {str(out / entry)!r} {said}")
    assert "move it away or give another --out." in err and err.count("\n") == 1


def test_a_folder_gradzoo_cannot_write_is_one_sentence_before_training(tmp_path, suite, capsys, no_training, monkeypatch):
    import gradzoo.benchmarks.harness.run.out_dir as out_dir

    out = tmp_path / "out"
    (out / "checkpoints").mkdir(parents=True)
    # Permissions cannot be taken from root (these tests may run as root): `os.access` answers as for a user.
    access = os.access
    monkeypatch.setattr(out_dir.os, "access", lambda p, mode: Path(p).name != "checkpoints" and access(p, mode))
    err = cli_error(main, ["run", suite, "--out", str(out)], capsys)
    assert err == (f"gradzoo: error: {str(out / 'checkpoints')!r} cannot be written, and gradzoo keeps its epoch "
                   "checkpoints there; make it writable or give another --out.\n")  # fmt: skip


def test_report_checks_its_entries_too(tmp_path, trained, capsys):
    out = tmp_path / "out"
    shutil.copytree(trained, out)
    shutil.rmtree(out / "figures")
    (out / "figures").write_text("not a folder")
    err = cli_error(main, ["report", "--results", str(out)], capsys)
    assert f"{str(out / 'figures')!r} is a file, but gradzoo keeps its report figures in a folder there" in err
    assert "give another --results." in err and err.count("\n") == 1


def test_every_entry_gradzoo_writes_is_one_it_checks(trained):
    # A new table or folder must join `gradzoo.benchmarks.harness.run.out_dir`, or a wrong one would only fail after training.
    assert {p.name for p in trained.iterdir()} <= set(OWN)


@pytest.mark.parametrize("damage", ["newer schema", "truncated"])
def test_a_record_gradzoo_cannot_read_is_moved_aside_never_overwritten(tmp_path, trained, capsys, damage):
    out = tmp_path / "out"
    shutil.copytree(trained, out)
    (record,) = records_mod.load_records(out)
    path = records_mod.record_path(out, record.run_id)
    if damage == "newer schema":
        _rewrite(path, lambda data: data.update(schema=records_mod.SCHEMA_VERSION + 1))
    else:
        path.write_bytes(path.read_bytes()[:100])
    original = path.read_bytes()
    # Something already moved aside under that name, by an earlier run: kept as well.
    unreadable_dir(out).mkdir(parents=True)
    (unreadable_dir(out) / path.name).write_bytes(b"moved aside last week")

    assert main(["run", str(out / "suites" / "tiny.toml"), "--out", str(out)]) == 0
    said = capsys.readouterr()
    moved = unreadable_dir(out) / f"{path.name}.2"
    assert f"Unreadable record, trained again: {path.name} " in said.out
    if damage == "newer schema":
        assert "upgrade gradzoo to read it." in said.out
    assert f"Moved aside to {moved}." in said.out
    assert moved.read_bytes() == original
    assert (unreadable_dir(out) / path.name).read_bytes() == b"moved aside last week"
    (retrained,) = records_mod.load_records(out)  # the run trained again, under its own name
    assert retrained.run_id == record.run_id and not records_mod.scan(out).problems
    assert "Traceback" not in said.err
