"""Choosing the backend and the precision: what a machine cannot run is one
sentence and exit status 2, before anything is trained or written."""

import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT, cli_error

from gradzoo.benchmarks.cli import main
from gradzoo.benchmarks.harness.run import devices

TINY = str(ROOT / "tests" / "data" / "tiny.toml")

# A fresh interpreter (Keras not yet imported, so the backend is still open)
# in which JAX looks uninstalled to `importlib.util.find_spec`.
WITHOUT_JAX = r"""
import importlib.util, sys
found = importlib.util.find_spec
importlib.util.find_spec = lambda name, *args: None if name.split(".")[0] in ("jax", "jaxlib") else found(name, *args)
from gradzoo.benchmarks.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err  # one sentence, no traceback, no TensorFlow start-up lines
    return lines[0]


def test_backend_jax_without_jax_installed(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-c", WITHOUT_JAX, "run", TINY, "--backend", "jax", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    line = _error_line(proc.stderr)
    assert "--backend jax needs jax, which is not installed here" in line and "pip install jax" in line
    assert "keras" not in proc.stdout and not out.exists()


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--backend", "theano"], "argument --backend: invalid choice: 'theano' (choose from tensorflow, jax, torch)"),
        (["--precision", "float8"], "argument --precision: invalid choice: 'float8'"),
    ],
)
def test_unknown_backend_or_precision_exit_2(args, fragment, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["run", TINY, "--out", str(tmp_path / "out"), *args])
    err = capsys.readouterr().err
    assert info.value.code == 2 and fragment in err.replace("'tensorflow', 'jax', 'torch'", "tensorflow, jax, torch")
    assert not (tmp_path / "out").exists()


def test_mixed_float16_without_a_gpu_is_refused_before_training(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(devices, "accelerators", lambda: [])  # this machine, whatever CI runs on
    out = tmp_path / "out"
    line = _error_line(cli_error(main, ["run", TINY, "--out", str(out), "--precision", "mixed_float16"], capsys))
    assert line.startswith("gradzoo: error: --precision mixed_float16 needs a GPU, and this machine has none")
    assert "use mixed_bfloat16 or float32" in line
    assert not out.exists()  # checked before OUT is created


def test_a_suite_asking_for_a_precision_the_gpu_cannot_run(tmp_path, capsys, monkeypatch):
    turing = devices.Device("gpu", "Tesla T4", (7, 5))
    monkeypatch.setattr(devices, "accelerators", lambda: [turing])
    suite = tmp_path / "bf16.toml"
    suite.write_text(Path(TINY).read_text().replace("epochs = 2", 'epochs = 2\nprecision = "mixed_bfloat16"'))
    out = tmp_path / "out"
    line = _error_line(cli_error(main, ["run", str(suite), "--out", str(out)], capsys))
    assert "--precision mixed_bfloat16 needs bfloat16 support (compute capability 8.0), and Tesla T4 has 7.5" in line
    assert not out.exists()
    # The same GPU runs float16 with loss scaling, which the CLI then allows past the check.
    assert devices.precision_problem("mixed_float16", [turing]) is None


def test_an_unknown_precision_in_a_suite_file(tmp_path, capsys):
    suite = tmp_path / "fp8.toml"
    suite.write_text(Path(TINY).read_text().replace("epochs = 2", 'epochs = 2\nprecision = "float8"'))
    line = _error_line(cli_error(main, ["run", str(suite), "--out", str(tmp_path / "out")], capsys))
    assert "`precision` must be one of 'float32', 'mixed_float16', 'mixed_bfloat16'. Received: precision='float8'" in line
