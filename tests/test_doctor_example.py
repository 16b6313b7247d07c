"""The README's doctor example is generated, never typed: the block between its markers is exactly what
`python -m benchmarks.doctor.example --print` prints (a fresh process: seeded, deterministic kernels)."""

import os
import subprocess
import sys
from pathlib import Path

import keras
import pytest

from benchmarks.doctor.example import EPOCHS, current_block

ROOT = Path(__file__).resolve().parent.parent


def test_the_readme_example_is_what_the_script_prints():
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the README's example was generated on the tensorflow backend")
    block = current_block((ROOT / "README.md").read_text())
    assert block is not None, "README.md lost its doctor-example markers"
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-m", "benchmarks.doctor.example", "--print"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout == block, "run `python -m benchmarks.doctor.example` to regenerate the README's doctor example"
    # What the example shows: the doctor's verdicts before and after, and the curves.
    assert "Verdict: VANISHING" in block and "Verdict: HEALTHY" in block and f"| {EPOCHS} |" in block
