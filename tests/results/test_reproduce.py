"""A committed reference run, rerun on the same versions on a CPU, gives the same metrics.

On the CPU model that made the record (its `env.hardware.processor`), with the
same versions: 1e-4 relative (plus 1e-6 absolute) on every per-epoch loss and
metric and on the test scores, and the same steps to the target. On one machine
gradzoo runs are bit-identical (the data order is a function of the seed and the
epoch; `tests/test_resume.py` checks equality exactly).

On another CPU model, or where the record does not name one (records before
2026-12), the vector units sum in another order and the rounding differences
grow through training: measured on an AMD EPYC against the committed records,
the first three epochs agree within 1e-4 and the loss drifts by 2% by epoch 15.
There the first epoch must agree within 1e-4 and the whole run within 5%.
"""

import dataclasses
import importlib.metadata as metadata
from pathlib import Path

import keras
import pytest

from gradzoo.benchmarks.harness.run.environment import cpu_model
from gradzoo.benchmarks.harness.records import load_records
from gradzoo.benchmarks.harness.run.run_one import run_one
from gradzoo.benchmarks.harness.plan.spec import RunSpec

from helpers import ROOT

RESULTS = ROOT / "results"
REL, ABS = 1e-4, 1e-6
OTHER_CPU_REL = 0.05  # the whole run, on a CPU model other than the record's


def _cheapest_committed_run():
    records = [r for r in load_records(RESULTS) if r.env.backend == keras.backend.backend()]
    if not records:
        pytest.skip("no reference records for this backend in results/")
    return min(records, key=lambda r: r.summary.fit_s)


def test_rerunning_a_committed_run_gives_its_metrics():
    record = _cheapest_committed_run()
    versions = {"keras": keras.__version__, "backend": metadata.version(record.env.backend)}
    if (record.env.keras, record.env.backend_version) != (versions["keras"], versions["backend"]):
        pytest.skip(f"the reference runs used Keras {record.env.keras} and {record.env.backend} "
                    f"{record.env.backend_version}; this environment has {versions}")  # fmt: skip
    config = {f.name: getattr(record.config, f.name) for f in dataclasses.fields(record.config)}
    again = run_one(RunSpec(**config))
    assert again.run_id == record.run_id
    assert again.status == record.status
    same_cpu = record.env.hardware.processor is not None and record.env.hardware.processor == cpu_model()
    rel = REL if same_cpu else OTHER_CPU_REL
    for key in ("loss", "metric", "val_loss", "val_metric"):
        ours, theirs = getattr(again.history, key), getattr(record.history, key)
        assert ours[:1] == pytest.approx(theirs[:1], rel=REL, abs=ABS), f"{key}, first epoch"
        assert ours == pytest.approx(theirs, rel=rel, abs=ABS), key
    assert again.summary.test_metrics == pytest.approx(record.summary.test_metrics, rel=rel, abs=ABS)
    if same_cpu:
        assert again.summary.steps_to_target == record.summary.steps_to_target
