"""The shipped `full` suite works end to end before anyone spends GPU hours on it.

Every run of `full` (all groups, every sweep point, one seed) builds, trains
one epoch on tensorflow-datasets mock data (a few random examples with the real
datasets' shapes), writes its record and appears in the tables. What this
cannot check is the real data itself: `tfds build` prepares that (see the
manual's "Preparing the real datasets", docs/datasets.md).
"""

import pandas as pd
import pytest

from gradzoo.benchmarks.cli import main
from gradzoo.benchmarks.datasets import real
from gradzoo.benchmarks.harness import records as records_mod
from gradzoo.benchmarks.harness.plan.run_plan import Plan
from gradzoo.benchmarks.harness.plan.suites import load_suite

tfds = pytest.importorskip("tensorflow_datasets")

EXAMPLES = 24  # per split: 22 train + 2 validation, a few steps of every model


def test_every_run_of_the_full_suite_trains_one_epoch_on_mock_data(tmp_path, monkeypatch):
    # Mock data has no files to find: the CLI's "is it prepared?" check is told yes.
    monkeypatch.setattr(real, "is_prepared", lambda name, data_dir: True)
    out = tmp_path / "full"
    with tfds.testing.mock_data(num_examples=EXAMPLES):
        assert main(["run", "full", "--out", str(out), "--seeds", "1", "--epochs", "1"]) == 0

    suite = load_suite("full")
    expected = Plan(suite, seeds=1, epochs=1).specs({})[0]
    records = records_mod.load_records(out)
    assert sorted(r.run_id for r in records) == sorted(s.run_id for s in expected)
    assert {g.name for g in suite.groups} == {r.config.group for r in records}
    for record in records:
        assert record.status == "completed", record.label
        assert record.summary.epochs_run == 1 and record.summary.steps_run >= 1
        assert record.dataset.n_train == EXAMPLES - round(EXAMPLES * 0.1)
        assert record.gradients is not None and len(record.gradients.epoch.mean) == 1
    convergence = pd.read_csv(out / "convergence.csv")
    assert len(convergence) == len(expected)
    assert set(convergence.dataset) == {g.dataset for g in suite.groups}
    assert not (out / "checkpoints").exists()
