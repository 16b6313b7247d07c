"""The committed reference results say what the README says they say: fair, tuned, and complete."""

from pathlib import Path

import pytest

from gradzoo.benchmarks.analysis import verdicts
from gradzoo.benchmarks.harness.plan.run_plan import Plan
from gradzoo.benchmarks.harness.records import load_records
from gradzoo.benchmarks.harness.plan.suites import load_suite

from helpers import ROOT

RESULTS = ROOT / "results"


@pytest.fixture(scope="module")
def records():
    found = load_records(RESULTS)
    if not found:
        pytest.skip("no reference records in results/")
    return found


def test_quick_cites_the_choices_its_tuning_records_made(records):
    quick, tuning = load_suite("quick"), load_suite("quick_tuning")
    by_id = {r.run_id: r for r in records}
    plan = Plan(tuning)
    for group in quick.groups:
        assert group.tuned_in == "quick_tuning", group.name
        for model in group.models:
            chosen = plan.choice(tuning.group(group.name), {}, model, by_id)
            assert chosen is not None, f"the quick_tuning trials of {model} in {group.name} are not all recorded"
            assert group.tuned_choice[model] == chosen.chosen, (group.name, model)


def test_every_shipped_suite_is_complete_in_the_reference_results(records):
    ids = {r.run_id for r in records}
    for name in ("quick_tuning", "quick", "claims", "depth", "length"):
        plan = Plan(load_suite(name), seeds=3 if name in ("quick", "claims") else None)
        specs, waiting = plan.specs({r.run_id: r for r in records})
        missing = [s for s in specs if s.run_id not in ids]
        assert not missing and not waiting, f"{name}: {len(missing)} runs missing, {waiting} waiting on trials"


def test_quick_mitigated_models_reach_their_target_and_baselines_fail_for_their_reason(records):
    quick = [r for r in records if r.config.suite == "quick" and r.config.phase == "eval"]
    assert len({r.config.seed for r in quick}) >= 3
    for r in quick:
        if r.model.role == "mitigated":
            assert r.reached_target, f"{r.label} seed {r.config.seed} missed the target ({r.best_score})"
            assert verdicts.verdict(r) == "healthy", (r.label, r.config.seed)
        else:
            assert not r.reached_target, (r.label, r.config.seed)
            assert verdicts.verdict(r) in ("vanishing", "exploding"), (r.label, r.config.seed, verdicts.verdict(r))
