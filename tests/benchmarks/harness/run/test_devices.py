"""`--devices N`: one run trained across N local devices measures what one device measures.

On CPU the devices are made by splitting the CPU: TensorFlow does it itself before it first runs,
JAX needs `XLA_FLAGS=--xla_force_host_platform_device_count=N` before it starts; both must happen
in a fresh process, so the training runs in a subprocess here.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import DATA, ROOT, cli_error

from gradzoo.benchmarks.cli import main
from gradzoo.benchmarks.harness.run.devices import batch_problem, clipping_problem

TINY = str(DATA / "tiny.toml")

# Trains the same run on one device and on two, in one process, and prints what each measured.
SCRIPT = """
import json, sys
from gradzoo.benchmarks.harness.run.devices import check_devices
check_devices(2)  # first: TensorFlow splits its CPU only before it runs anything
from gradzoo.benchmarks.harness.run.run_one import run_one
from gradzoo.benchmarks.harness.plan.spec import RunSpec
import keras
out = {}
for devices in (1, 2):
    spec = RunSpec(model="mlp_he_relu_bn", dataset="mnist1d", seed=0, epochs=2, batch_size=32, devices=devices,
                   model_overrides={"depth": 3, "width": 16}, dataset_params={"num_samples": 600, "shape": "flat"},
                   backend=keras.backend.backend())
    r = run_one(spec)
    out[devices] = {"norms": r.gradients.norms, "pre": r.gradients.global_norm_pre, "loss": r.history.loss,
                    "val": r.history.val_metric, "test": r.summary.test_metric, "devices": r.env.hardware.devices,
                    "layers": [layer.kind for layer in r.gradients.layers]}
print("RESULT " + json.dumps(out))
"""


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_two_devices_record_the_gradient_norms_of_one_device_for_the_same_global_batch(backend, tmp_path):
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    if backend == "jax":
        env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, cwd=tmp_path,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))[7:])
    one, two = result["1"], result["2"]
    assert len(two["devices"]) >= 2 and "norm" in two["layers"]  # BatchNorm: statistics over the whole batch
    assert len(one["norms"]) == len(two["norms"]) == 28  # every step of 2 epochs of 432 examples in batches of 32
    np.testing.assert_allclose(two["norms"], one["norms"], rtol=1e-5)
    np.testing.assert_allclose(two["pre"], one["pre"], rtol=1e-5)
    np.testing.assert_allclose(two["loss"], one["loss"], rtol=1e-5)
    np.testing.assert_allclose(two["val"] + [two["test"]], one["val"] + [one["test"]], atol=1e-6)


@pytest.mark.parity
def test_more_devices_than_present_is_refused_before_training(tmp_path, capsys, monkeypatch):
    import gradzoo.benchmarks.harness.run.run_one as runner

    monkeypatch.setattr(runner, "run_one", lambda *a, **k: pytest.fail("trained with too few devices"))
    err = cli_error(main, ["run", TINY, "--out", str(tmp_path / "out"), "--devices", "64"], capsys)
    assert "--devices 64 asks for 64 devices, but" in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_a_suite_whose_batches_do_not_split_is_refused_in_one_sentence(tmp_path):
    suite = tmp_path / "odd.toml"
    suite.write_text('batch_size = 15\n[[runs]]\nname = "mlp"\nmodels = ["mlp_he_relu_bn"]\ndataset = "mnist1d"\n')
    # TensorFlow: under JAX without XLA_FLAGS the device count is refused first, rightly.
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-m", "gradzoo.benchmarks.cli", "run", str(suite), "--out", str(tmp_path / "out"),
                           "--devices", "2"], env=env, capture_output=True, text=True, cwd=ROOT, timeout=300)  # fmt: skip
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.startswith("gradzoo: error: Suite 'odd', group 'mlp': ") and done.stderr.count("\n") == 1
    assert "--devices 2 splits every batch into 2 equal shares, and batch_size=15 does not divide by 2." in done.stderr
    assert not (tmp_path / "out").exists()


def test_uneven_last_batches_and_tensorflow_clipping_are_named():
    assert batch_problem(1, 15, {"train": 7}) is None
    assert batch_problem(2, 32, {"train": 432, "val": 48, "test": 120}) is None
    problem = batch_problem(2, 32, {"train": 461, "val": 51})
    assert "the 461 train examples end in a batch of 13 at batch_size=32" in problem
    import keras

    clipped = clipping_problem(2, {"learning_rate": 0.1, "clipnorm": 1.0, "clipvalue": None})
    if keras.backend.backend() == "tensorflow":
        assert "--devices 2 with clipnorm=1.0 would clip each device's share of the gradient separately" in clipped
    else:
        assert clipped is None
    assert clipping_problem(1, {"clipnorm": 1.0}) is None and clipping_problem(2, {"clipnorm": None}) is None
