"""On a machine with JAX and no TensorFlow (the accelerator machine), gradzoo
trains the embedded suites and reads real datasets prepared as ArrayRecord.

The child process runs the same interpreter with `-S` and a site-packages made
of links to every installed package except TensorFlow, so `import tensorflow`
fails there as it would on that machine. Its data is a small fake MNIST,
prepared here (with TensorFlow) by a tensorflow-datasets builder of the same
name and version as the real one, in ArrayRecord files: nothing downloads.
"""

import gzip
import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest

from helpers import ROOT

pytest.importorskip("jax")
pytest.importorskip("array_record")
pytest.importorskip("tensorflow_datasets")

from fake_mnist import TEST, TRAIN, FakeMnist  # noqa: E402

TINY = ROOT / "tests" / "data" / "tiny.toml"

MNIST_SUITE = """
epochs = 1
batch_size = 16
[[runs]]
name = "mnist_mlp"
models = ["mlp_he_relu_bn"]
dataset = "mnist"
model_overrides = { depth = 2, width = 16 }
"""

CHILD = r"""
import contextlib, io, json, sys

report = {}
try:
    import tensorflow  # noqa: F401
    report["tensorflow_importable"] = True
except ImportError:
    report["tensorflow_importable"] = False

from gradzoo.benchmarks.cli import main

data_dir, empty_dir, tiny, mnist_suite, out = sys.argv[1:6]
report["tiny_rc"] = main(["run", tiny, "--backend", "jax", "--out", out + "/tiny", "--epochs", "1"])
# Only now: importing Keras before `--backend jax` chose the backend would pick TensorFlow's.
from gradzoo.benchmarks.datasets import DatasetNotAvailableError, load_dataset

report["mnist_rc"] = main(["run", mnist_suite, "--backend", "jax", "--out", out + "/mnist", "--data-dir", data_dir])
ds = load_dataset("mnist", data_dir=data_dir)
report["shapes"] = {s: list(x.shape) for s, (x, _) in (("train", ds.train), ("val", ds.val), ("test", ds.test))}
report["label_dtype"] = str(ds.train[1].dtype)
try:
    load_dataset("mnist", data_dir=empty_dir)
except DatasetNotAvailableError as err:
    report["unprepared_error"] = str(err)
stderr = io.StringIO()
with contextlib.redirect_stderr(stderr):
    report["unprepared_rc"] = main(["run", mnist_suite, "--backend", "jax", "--out", out + "/none", "--data-dir", empty_dir])
report["unprepared_cli"] = stderr.getvalue()
report["tensorflow_loaded"] = any(m == "tensorflow" or m.startswith("tensorflow.") for m in sys.modules)
print("REPORT " + json.dumps(report))
"""


def _site_packages_without_tensorflow(target: Path) -> Path:
    target.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        name = entry.name
        if name == "tensorflow" or (name.startswith("tensorflow-") and name.endswith(".dist-info")):
            continue  # tensorflow_datasets and tensorflow_metadata stay: they do not need it
        (target / name).symlink_to(entry)
    return target


def test_jax_without_tensorflow_trains_and_reads_array_record(tmp_path):
    data_dir = tmp_path / "tfds"
    FakeMnist(data_dir=str(data_dir), file_format="array_record").download_and_prepare()
    (tmp_path / "empty").mkdir()
    suite = tmp_path / "mnist_suite.toml"
    suite.write_text(MNIST_SUITE)
    site = _site_packages_without_tensorflow(tmp_path / "site")
    env = {"PYTHONPATH": f"{site}:{ROOT}", "TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"}
    env.update({key: os.environ[key] for key in ("GRADZOO_CACHE", "HOME", "TMPDIR") if key in os.environ})
    args = [str(data_dir), str(tmp_path / "empty"), str(TINY), str(suite), str(tmp_path / "out")]
    proc = subprocess.run([sys.executable, "-S", "-c", CHILD, *args], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    line = next((x for x in proc.stdout.splitlines() if x.startswith("REPORT ")), None)
    assert proc.returncode == 0 and line, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(line[len("REPORT ") :])

    assert report["tensorflow_importable"] is False  # the child really is a machine without TensorFlow
    assert report["tiny_rc"] == 0 and report["mnist_rc"] == 0
    tiny_records = list((tmp_path / "out" / "tiny" / "records").glob("*.json.gz"))
    assert len(tiny_records) == 6
    (mnist_record,) = (tmp_path / "out" / "mnist" / "records").glob("*.json.gz")
    record = json.loads(gzip.decompress(mnist_record.read_bytes()))
    assert record["config"]["backend"] == record["env"]["backend"] == "jax" and record["status"] == "completed"
    n_val = round(TRAIN * 0.1)
    assert report["shapes"] == {"train": [TRAIN - n_val, 28, 28, 1], "val": [n_val, 28, 28, 1], "test": [TEST, 28, 28, 1]}
    assert report["label_dtype"] == "int32"
    # Unprepared: one sentence, saying how to prepare it for this machine; exit 2 before training.
    assert "--file_format=array_record" in report["unprepared_error"] and "not prepared" in report["unprepared_error"]
    assert report["unprepared_rc"] == 2
    assert report["unprepared_cli"].count("\n") == 1 and "--file_format=array_record" in report["unprepared_cli"]
    assert not (tmp_path / "out" / "none" / "records").exists()
    assert report["tensorflow_loaded"] is False
