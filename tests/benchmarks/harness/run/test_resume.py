"""A run killed mid-way resumes at the epoch it was in, and ends as an uninterrupted run would."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from gradzoo.benchmarks.cli import main
from gradzoo.benchmarks.harness import records as records_mod

SUITE = """
epochs = 8
batch_size = 32
[[runs]]
name = "resume"
models = ["mlp_he_relu_bn"]
dataset = "mnist1d"
dataset_params = { num_samples = 1500, shape = "flat" }
model_overrides = { depth = 4, width = 32 }
"""


def _comparable(record):
    data = record.to_json()
    for key in ("created", "env"):
        data.pop(key)
    for key in ("train_s", "fit_s", "setup_s", "samples_per_s", "seconds_to_target", "resumed_at_epoch"):
        data["summary"].pop(key)
    data["history"].pop("epoch_train_s")
    return data


def _checkpointed_epoch(out):
    for state in out.glob("checkpoints/*/state.json"):
        try:
            return json.loads(state.read_text())["epoch"]
        except (OSError, ValueError):
            return 0
    return 0


def test_kill_9_mid_run_resumes_at_that_epoch_with_the_same_result(tmp_path, capsys):
    suite = tmp_path / "resume.toml"
    suite.write_text(SUITE)
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen([sys.executable, "-m", "gradzoo.benchmarks.cli", "run", str(suite), "--out", str(killed)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 240
    while time.time() < deadline and _checkpointed_epoch(killed) < 3 and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # kill -9, during epoch 4 or later
    proc.wait()
    at = _checkpointed_epoch(killed)
    assert 3 <= at < 8 and not list(killed.glob("records/*.json.gz")), "the run should have been killed mid-way"

    assert main(["run", str(suite), "--out", str(killed)]) == 0
    said = capsys.readouterr()
    assert f"resumed at epoch {at + 1} of 8 from its checkpoint" in said.out + said.err
    (resumed,) = records_mod.load_records(killed)
    assert resumed.summary.resumed_at_epoch == at
    assert resumed.history.epoch == list(range(1, 9)) and resumed.summary.epochs_run == 8
    assert not (killed / "checkpoints").exists()  # removed once the record is written

    assert main(["run", str(suite), "--out", str(whole)]) == 0
    (uninterrupted,) = records_mod.load_records(whole)
    assert uninterrupted.summary.resumed_at_epoch is None
    # The curves and the gradient log continue rather than restart, and on CPU they are the same numbers.
    assert _comparable(resumed) == _comparable(uninterrupted)
