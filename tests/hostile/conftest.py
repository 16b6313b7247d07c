"""Hostile inputs and faults: shared set-up for every case in this folder.

Each test here plays a hostile or careless user (a shared results folder, a
suite file from the internet, a user's own model or data) and asserts what
gradzoo guarantees: one sentence naming what is wrong, a non-zero exit for the
CLI, and nothing already recorded lost or corrupted.

To add a case: write a test in the file of its class (`test_records.py`,
`test_out_dir.py`, `test_suites.py`, `test_report_outputs.py`,
`test_doctor_data.py`), build the hostile input under `tmp_path`, and assert
the sentence and what survived. The autouse fixture below checks that no case
touches files outside its temporary folder: it runs each test from inside
`tmp_path`, with HOME and the dataset cache there, and fails the test if the
repository's work tree changed.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _tree_state() -> str:
    """The work tree's changes as git sees them (tracked and untracked files, ignored ones aside)."""
    try:
        done = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=ROOT,
                              capture_output=True, text=True, timeout=30)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout if done.returncode == 0 else ""


@pytest.fixture(autouse=True)
def _confined(tmp_path, monkeypatch):
    """Runs the case from `tmp_path` with HOME there; fails it if it wrote into the repository."""
    before = _tree_state()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    yield
    after = _tree_state()
    assert after == before, f"the case changed the repository's work tree:\n{after}"
