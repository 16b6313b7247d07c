"""The manual's doctor example (docs/doctor.md) is generated, never typed: the block between its markers is what
`python -m gradzoo.benchmarks.doctor.example --print` prints (a fresh process: seeded, deterministic kernels).

Every word must match, and every number within `NUMBER_REL`: on one machine the block repeats exactly,
but a CPU of another model rounds in another order (measured on an AMD EPYC against a block written
elsewhere: a gradient ratio 3.85 -> 3.86, an accuracy after 8 epochs 0.333 -> 0.343)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import keras
import pytest

from gradzoo.benchmarks.doctor.example import EPOCHS, EXAMPLE

from helpers import ROOT

NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")
NUMBER_REL = 0.1


def _words_and_numbers(text: str) -> tuple[list[str], list[float]]:
    return NUMBER.split(text), [float(n) for n in NUMBER.findall(text)]


def test_the_manuals_example_is_what_the_script_prints():
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the manual's example was generated on the tensorflow backend")
    block = EXAMPLE.current(EXAMPLE.path(ROOT).read_text())
    assert block is not None, f"{EXAMPLE.file} lost its doctor-example markers"
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-m", "gradzoo.benchmarks.doctor.example", "--print"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    regenerate = f"run `python -m gradzoo.benchmarks.doctor.example` to regenerate the doctor example in {EXAMPLE.file}"
    (words, numbers), (readme_words, readme_numbers) = _words_and_numbers(done.stdout), _words_and_numbers(block)
    assert words == readme_words, regenerate
    assert numbers == pytest.approx(readme_numbers, rel=NUMBER_REL, abs=0.02), regenerate
    # What the example shows: the doctor's verdicts before and after, and the curves.
    assert "Verdict: VANISHING" in block and "Verdict: HEALTHY" in block and f"| {EPOCHS} |" in block
