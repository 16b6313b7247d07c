"""A committed reference run, rerun on the same versions on a CPU, gives the same metrics.

Tolerance: 1e-4 relative (plus 1e-6 absolute) on every per-epoch loss and
metric and on the test scores. On one machine, with the same versions, gradzoo
runs are bit-identical (the data order is a function of the seed and the epoch;
`tests/test_resume.py` checks equality exactly); the tolerance leaves room for a
CPU of another family, whose vector units may sum in another order.
"""

import dataclasses
import importlib.metadata as metadata
from pathlib import Path

import keras
import pytest

from benchmarks.harness.records import load_records
from benchmarks.harness.runner import run_one
from benchmarks.harness.spec import RunSpec

RESULTS = Path(__file__).resolve().parent.parent / "results"
REL, ABS = 1e-4, 1e-6


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
    for key in ("loss", "metric", "val_loss", "val_metric"):
        assert getattr(again.history, key) == pytest.approx(getattr(record.history, key), rel=REL, abs=ABS), key
    assert again.summary.test_metrics == pytest.approx(record.summary.test_metrics, rel=REL, abs=ABS)
    assert again.summary.steps_to_target == record.summary.steps_to_target
    assert again.status == record.status
