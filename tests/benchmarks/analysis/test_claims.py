"""Claims: expected orderings checked against records, verdicts computed, never typed."""

import math
from pathlib import Path

import pytest
from helpers import ROOT, make_record

from gradzoo.benchmarks.analysis.claims import claims_markdown, evaluate, evaluate_claims, one_sided, write_claims
from gradzoo.benchmarks.harness.plan.expectations import parse_expectations
from gradzoo.benchmarks.harness.plan.suites import load_suite

SUITE = """
seeds = 3
[[runs]]
name = "my_claim"
claim = "Deeper sigmoid nets vanish."
source = "Somebody et al. 2099"
models = ["mlp_sigmoid_deep", "mlp_he_relu_bn"]
dataset = "mnist1d"
[runs.sweep]
"model.depth" = [5, 20]
[[runs.expect]]
metric = "best_val_metric"
lhs = "mlp_he_relu_bn @ model.depth=20"
op = ">"
rhs = "mlp_sigmoid_deep @ model.depth=20"
[[runs.expect]]
metric = "grad_ratio_first_last"
lhs = "mlp_sigmoid_deep @ model.depth=20"
op = "<"
rhs = "mlp_sigmoid_deep @ model.depth=5"
"""


def _runs(base_scores, fix_scores, deep_ratios=(1e-12, 1e-11, 1e-13), shallow_ratios=(1e-3, 2e-3, 5e-4), **kw):
    out = []
    for seed in range(3):
        out.append(make_record("mlp_sigmoid_deep", best=base_scores[seed], seed=seed, group="my_claim", suite="claims_t",
                               sweep={"model.depth": 20}, ratio=deep_ratios[seed], **kw))  # fmt: skip
        out.append(make_record("mlp_sigmoid_deep", best=0.3, seed=seed, group="my_claim", suite="claims_t",
                               sweep={"model.depth": 5}, ratio=shallow_ratios[seed]))  # fmt: skip
        out.append(make_record("mlp_he_relu_bn", "mitigated", best=fix_scores[seed], seed=seed, group="my_claim",
                               suite="claims_t", sweep={"model.depth": 20}, ratio=0.5))  # fmt: skip
    return out


@pytest.fixture
def suite(tmp_path):
    path = tmp_path / "claims_t.toml"
    path.write_text(SUITE)
    return {"claims_t": load_suite(path)}


def test_reproduced_when_the_ordering_holds_in_every_seed(suite):
    (result,) = evaluate_claims(_runs([0.1, 0.11, 0.09], [0.6, 0.65, 0.62]), suite)
    assert result.verdict == "reproduced" and result.seeds == 3 and result.claim_id == "my_claim"
    assert result.claim == "Deeper sigmoid nets vanish." and result.source == "Somebody et al. 2099"
    assert "mlp_he_relu_bn @ model.depth=20 > mlp_sigmoid_deep @ model.depth=20: best validation score" in result.expected
    assert "mlp_he_relu_bn @ model.depth=20 0.623 ± 0.0252 vs mlp_sigmoid_deep @ model.depth=20 0.1 ± 0.01" in result.measured
    assert [v for _, v in result.details] == ["reproduced", "reproduced"]


def test_not_reproduced_and_inconclusive(suite):
    (flipped,) = evaluate_claims(_runs([0.6, 0.65, 0.62], [0.1, 0.11, 0.09]), suite)
    assert flipped.verdict == "not reproduced"
    # Mixed seeds and overlapping spreads: neither way.
    (mixed,) = evaluate_claims(_runs([0.3, 0.5, 0.4], [0.45, 0.35, 0.42]), suite)
    assert mixed.details[0][1] == "inconclusive" and mixed.verdict == "inconclusive"


def test_means_apart_by_more_than_the_spread_reproduce_even_if_one_seed_disagrees():
    assert one_sided({0: 0.9, 1: 0.9, 2: 0.1}, {0: 0.1, 1: 0.1, 2: 0.2}, ">") == "inconclusive"  # spread too wide
    assert one_sided({0: 0.9, 1: 0.92, 2: 0.7}, {0: 0.1, 1: 0.12, 2: 0.75}, ">") == "reproduced"
    assert one_sided({0: 0.1, 1: 0.2}, 0.5, "<") == "reproduced"
    assert one_sided({0: 0.6, 1: 0.7}, 0.5, "<") == "not reproduced"


def test_a_diverged_run_counts_as_the_worst_value(suite):
    runs = _runs([0.1, 0.11, 0.09], [0.6, 0.65, 0.62])
    diverged = [make_record("mlp_he_relu_bn", "mitigated", best=None, seed=s, group="my_claim", suite="claims_t",
                            sweep={"model.depth": 20}, diverged_step=2) for s in range(3)]  # fmt: skip
    runs = [r for r in runs if not (r.config.model == "mlp_he_relu_bn")] + diverged
    (result,) = evaluate_claims(runs, suite)
    assert result.details[0][1] == "not reproduced"  # -inf accuracy is below every sigmoid seed
    assert "-inf" in result.measured


def test_ratios_are_compared_on_a_log_scale():
    e = parse_expectations([{"metric": "grad_ratio_first_last", "lhs": "mlp_sigmoid_deep", "op": "~", "rhs": 1.0,
                             "tolerance": 0.5}], ["mlp_sigmoid_deep"], {})[0]  # fmt: skip
    near = [make_record(ratio=r, seed=s) for s, r in enumerate((0.9, 1.1, 1.2))]
    far = [make_record(ratio=r, seed=s) for s, r in enumerate((1e-5, 2e-5, 1e-6))]
    assert evaluate(e, near)[0] == "reproduced"
    assert evaluate(e, far)[0] == "not reproduced"


def test_claims_files_are_written_from_records(tmp_path, suite):
    records = _runs([0.1, 0.11, 0.09], [0.6, 0.65, 0.62])
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "claims_t.toml").write_text(SUITE)
    paths = write_claims(tmp_path, records)
    import pandas as pd

    table = pd.read_csv(paths["claims_csv"])
    assert list(table.columns) == ["claim_id", "claim", "source", "metric", "expected", "measured", "seeds", "verdict"]
    assert table.verdict.tolist() == ["reproduced"]
    md = paths["claims_md"].read_text()
    assert "| `my_claim`: Deeper sigmoid nets vanish. | Somebody et al. 2099 |" in md and "**reproduced**" in md
    assert claims_markdown([], out_dir=tmp_path) == ""


@pytest.mark.parametrize("entry, fragment", [
    ({"metric": "speed", "lhs": "a", "op": "<", "rhs": "b"}, "`expect[0].metric` must be one of"),
    ({"metric": "best_val_metric", "lhs": "zzz", "op": "<", "rhs": "a"}, "names model 'zzz', which is not in the group"),
    ({"metric": "best_val_metric", "lhs": "a @ model.depth=7", "op": "<", "rhs": "a"}, "model.depth=7 is not a swept value"),
    ({"metric": "best_val_metric", "lhs": "a", "op": "~", "rhs": 0.5}, "needs a positive `tolerance`"),
    ({"metric": "best_val_metric", "lhs": "a", "op": "<=", "rhs": "a"}, "`expect[0].op` must be one of"),
])  # fmt: skip
def test_bad_expectations_name_the_key(entry, fragment):
    with pytest.raises(ValueError, match=fragment.replace("(", r"\(").replace("[", r"\[")):
        parse_expectations([entry], ["a"], {"model.depth": [5, 20]})


def test_every_shipped_claim_has_a_statement_a_source_and_three_seeds():
    suite = load_suite("claims")
    ids = [g.name for g in suite.groups]
    assert ids and len(ids) == len(set(ids)), ids
    assert suite.seeds >= 3
    for group in suite.groups:
        assert group.claim and group.source and group.expect and group.description, group.name
        assert group.tune is not None, f"{group.name} compares methods at their best: it must be tuned"
    # The initialization claims run SGD: Adam rescales tiny gradients.
    for name in {"glorot2010_sigmoid_depth", "he2015_relu_init_depth30"} & set(ids):
        from gradzoo.benchmarks.harness.plan.run_plan import Plan

        specs = [s for s in Plan(suite).specs({})[0] if s.group == name]
        from gradzoo.benchmarks.harness.plan.spec import optimizer_settings

        assert {optimizer_settings(s.model, s.optimizer)["name"] for s in specs} == {"sgd"}, name


def test_committed_claims_are_what_the_records_say():
    root = ROOT / "results"
    if not (root / "claims.csv").is_file():
        pytest.skip("no committed claims table in results/")
    import pandas as pd

    from gradzoo.benchmarks.analysis.claims import claims_table, suites_of
    from gradzoo.benchmarks.harness.records import load_records

    records = load_records(root)
    fresh = claims_table(evaluate_claims(records, suites_of(records, root)))
    committed = pd.read_csv(root / "claims.csv")
    assert len(committed) == 7 and committed.seeds.min() >= 3
    assert committed.verdict.tolist() == fresh.verdict.tolist()
    assert committed.measured.tolist() == fresh.measured.tolist()
    assert not any(math.isnan(s) for s in committed.seeds)
