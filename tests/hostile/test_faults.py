"""Faults while writing: a checkpoint cut short, a full disk, SIGTERM and Ctrl-C mid-run.

Each case asserts what a user relies on: one sentence naming the path (no
traceback, never a segfault), a non-zero exit, every finished record intact,
and a rerun of the same command that picks up where it stopped.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
from pathlib import Path

import pytest

import gradzoo.benchmarks.storage as storage
from gradzoo.benchmarks.cli import main
from gradzoo.benchmarks.harness import records as records_mod
from gradzoo.benchmarks.harness.run.checkpoints import RunCheckpoint
from helpers import make_record, tiny_suite

# Runs of two epochs on 200 examples (`tiny_suite`): seconds each.


@pytest.fixture
def suite(tmp_path) -> str:
    path = tmp_path / "tiny.toml"
    path.write_text(tiny_suite(("mlp_sigmoid_deep", "mlp_he_relu_bn"), epochs=2))
    return str(path)


@pytest.fixture
def one_run(tmp_path) -> str:
    path = tmp_path / "one.toml"
    path.write_text(tiny_suite(("mlp_sigmoid_deep",), epochs=2))
    return str(path)


def _error_line(err: str) -> str:
    """The one line gradzoo says on stderr (progress bars aside), asserting there is one and no traceback."""
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.startswith("gradzoo:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _signal_after(monkeypatch, signum, epoch: int, run: int = 1):
    """Sends `signum` to this process right after the `run`-th run saves its checkpoint of `epoch`."""
    save, seen = RunCheckpoint.save, []

    def save_then_signal(self, model, at, callbacks):
        save(self, model, at, callbacks)
        if at == epoch:
            seen.append(self.run_id)
            if len(seen) == run:
                os.kill(os.getpid(), signum)

    monkeypatch.setattr(RunCheckpoint, "save", save_then_signal)


def _fail_writes(monkeypatch, where, errno_=errno.ENOSPC, after: int = 0):
    """Makes `write_atomic` fail, as a full disk does inside write() (an error naming no file), on paths under `where`."""
    write, calls = storage._write_atomic, []

    def full(path, data, mode):
        if Path(where) in Path(path).parents:
            calls.append(path)
            if len(calls) > after:
                raise OSError(errno_, os.strerror(errno_))
        return write(path, data, mode)

    monkeypatch.setattr(storage, "_write_atomic", full)


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_and_ctrl_c_say_where_the_suite_stopped_and_how_to_resume(tmp_path, suite, capsys, monkeypatch, signum,
                                                                          status):  # fmt: skip
    out = tmp_path / "out"
    _signal_after(monkeypatch, signum, epoch=1, run=2)  # in run 2, during its epoch 2
    assert main(["run", suite, "--out", str(out)]) == status
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert (f"gradzoo: Stopped at run 2 of 2 (mlp_he_relu_bn on mnist1d, seed 0, epoch 2 of 2); the 1 finished record "
            f"is kept in {out}/records, and this run resumes from its last finished epoch.") in err  # fmt: skip
    assert f"Resume with: gradzoo run {suite} --out {out}\n" in err
    assert len(records_mod.load_records(out)) == 1
    monkeypatch.undo()
    if signum == signal.SIGINT:
        return  # resuming is the same after either

    assert main(["run", suite, "--out", str(out)]) == 0  # the line it printed
    said = capsys.readouterr()
    assert "resumed at epoch 2 of 2 from its checkpoint" in said.out + said.err
    assert len(records_mod.load_records(out)) == 2


@pytest.fixture(scope="module")
def stopped(tmp_path_factory) -> tuple[str, Path]:
    """A one-run suite and an OUT where SIGTERM stopped it after its first epoch's checkpoint."""
    root = tmp_path_factory.mktemp("stopped")
    suite, out = root / "one.toml", root / "out"
    suite.write_text(tiny_suite(("mlp_sigmoid_deep",), epochs=2))
    with pytest.MonkeyPatch.context() as monkeypatch:
        _signal_after(monkeypatch, signal.SIGTERM, epoch=1)
        assert main(["run", str(suite), "--out", str(out)]) == 143
    return str(suite), out


@pytest.mark.parametrize("damage", ["truncated", "corrupt", "another model's"])
def test_a_checkpoint_cut_short_is_discarded_with_one_line(tmp_path, stopped, capsys, damage):
    one_run, out = stopped[0], tmp_path / "out"
    shutil.copytree(stopped[1], out)
    (weights,) = out.glob("checkpoints/*/epoch-1.weights.h5")
    if damage == "truncated":  # a crash of the machine between the write and its flush to disk
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    elif damage == "corrupt":
        weights.write_bytes(b"\0" * weights.stat().st_size)
    else:  # whole, but nothing in it fits this run's model
        import h5py

        with h5py.File(weights, "w") as f:
            f.create_dataset("layers/dense/vars/0", data=[1.0, 2.0])
    capsys.readouterr()

    assert main(["run", one_run, "--out", str(out)]) == 0
    said = capsys.readouterr()
    reason = ("its weights do not fit the model: " if damage == "another model's"
              else "its weights file epoch-1.weights.h5 is truncated or corrupt")  # fmt: skip
    assert f"mlp_sigmoid_deep on mnist1d (seed 0): its checkpoint cannot be used ({reason}" in said.out
    assert "); discarded, training from epoch 1." in said.out and "Traceback" not in said.err
    (record,) = records_mod.load_records(out)  # trained again from its first epoch
    assert record.summary.resumed_at_epoch is None and record.summary.epochs_run == 2
    assert not (out / "checkpoints").exists()


def test_a_full_disk_while_writing_a_record_is_one_sentence_and_keeps_the_others(tmp_path, suite, capsys, monkeypatch):
    out = tmp_path / "out"
    _fail_writes(monkeypatch, out / "records", after=1)  # the first record is written, the second is not
    assert main(["run", suite, "--out", str(out), "--epochs", "1"]) == 1
    err = capsys.readouterr().err
    (kept,) = records_mod.scan(out).records
    # The one record written is whole, and no half-written one is left beside it.
    assert list((out / "records").iterdir()) == [records_mod.record_path(out, kept.run_id)]
    line = _error_line(err)
    assert line.startswith(f"gradzoo: error: No space left on the device to write {str(out / 'records')!r}"[:-1])
    assert line.endswith("; every record already written is kept: free some space (or give another directory) and rerun "
                         "the same command.")  # fmt: skip
    assert not records_mod.scan(out).problems


def test_a_full_disk_while_checkpointing_is_one_sentence_before_h5py_writes(tmp_path, one_run, capsys, monkeypatch):
    out = tmp_path / "out"
    usage = shutil.disk_usage(tmp_path)
    # h5py writing on a full disk can segfault: the room must be found missing before it is asked to write.
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=1000))
    assert main(["run", one_run, "--out", str(out)]) == 1
    line = _error_line(capsys.readouterr().err)
    assert line.startswith(f"gradzoo: error: No space left on the device to write {str(out / 'checkpoints')!r}"[:-1])
    assert "epoch-1.weights.h5'; every record already written is kept" in line
    assert not list(out.glob("checkpoints/*/*.h5")) and not list(out.glob("checkpoints/*/.*"))


def test_report_on_a_full_disk_is_one_sentence_naming_the_file(tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    for model, role in (("mlp_sigmoid_deep", "baseline"), ("mlp_he_relu_bn", "mitigated")):
        records_mod.write_record(out, make_record(model, role))
    before = {p.name: p.read_bytes() for p in (out / "records").iterdir()}
    _fail_writes(monkeypatch, out)
    assert main(["report", "--results", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"gradzoo: error: No space left on the device to write {str(out)!r}"[:-1])
    assert err.count("\n") == 1 and "Traceback" not in err
    assert {p.name: p.read_bytes() for p in (out / "records").iterdir()} == before


def test_any_other_write_error_names_its_file(tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    records_mod.write_record(out, make_record())
    _fail_writes(monkeypatch, out, errno.EROFS)  # a disk remounted read-only mid-way
    assert main(["report", "--results", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"gradzoo: error: {str(out)!r}"[:-1]) and ": read-only file system; every record" in err
    assert err.count("\n") == 1 and "Traceback" not in err
