"""Published claims, checked against the records: `claims.csv` and `claims.md`.

A claims group of a suite (`benchmarks/suites/claims.toml`) names a claim, its
source and its expected orderings (`[[runs.expect]]`, see
`gradzoo.benchmarks.harness.plan.expectations`). Each expectation compares one metric of two
arms (a model of the group at a sweep point), or of an arm and a number, over
the evaluation seeds:

- **reproduced**: the expected ordering holds in every seed (paired by seed),
  or the means differ in the expected direction by more than the seed spread
  (the sum of the two arms' sample standard deviations);
- **not reproduced**: the opposite holds in every seed, or the means differ the
  other way by more than the spread;
- **inconclusive**: neither.

A run that diverged, or has no value, counts as the worst possible value of a
metric with a direction (an infinite loss, an accuracy of minus infinity); for
gradient ratios it is left out. Ratios are compared on a log scale. `~` (within
a tolerance) is two one-sided tests. A claim is reproduced when every
expectation is, not reproduced when any is not, and inconclusive otherwise.
Nothing here is typed: the table follows the records.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from pathlib import Path

from gradzoo.benchmarks.analysis.formatting import format_number, md_cell, md_code, md_escape
from gradzoo.benchmarks.harness.plan.expectations import METRICS, Arm, Expectation
from gradzoo.benchmarks.harness.records import RunRecord
from gradzoo.benchmarks.storage import write_atomic

COLUMNS = ["claim_id", "claim", "source", "metric", "expected", "measured", "seeds", "verdict"]
SUITE_COPIES = "suites"  # gradzoo run keeps the suite files it ran in OUT/suites/


@dataclasses.dataclass
class ClaimResult:
    claim_id: str
    claim: str
    source: str
    metric: str
    expected: str
    measured: str
    seeds: int
    verdict: str
    details: list  # (expectation text, verdict) per expectation


def metric_value(record: RunRecord, metric: str) -> float | None:
    """The value of one of `METRICS` for a run (`None` when it has none)."""
    s = record.summary
    return {
        "best_val_metric": lambda: record.best_score,
        "final_val_metric": lambda: s.final_val_metric,
        "test_metric": lambda: s.test_metric,
        "final_train_loss": lambda: s.final_train_loss,
        "steps_to_target": lambda: s.steps_to_target,
        "grad_ratio_first_last": lambda: record.first_last_ratio(),
        "temporal_ratio_early_late": lambda: record.temporal_ratio,
        "learning_rate": lambda: _number(record.optimizer.get("learning_rate")),
    }[metric]()


def _number(value) -> float | None:
    """A plain number (a learning-rate schedule is not one)."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _direction(metric: str, record: RunRecord) -> str | None:
    direction = METRICS[metric][1]
    return record.dataset.metric_mode if direction == "dataset" else direction


def arm_values(records: list[RunRecord], arm: Arm, metric: str) -> dict[int, float]:
    """`{seed: value}` of one arm; the worst value for a run that diverged or has none (see module docstring)."""
    out = {}
    for r in records:
        if not arm.matches(r.config.model, r.config.sweep):
            continue
        value = metric_value(r, metric)
        bad = r.diverged or value is None or (isinstance(value, float) and math.isnan(value))
        if bad:
            direction = _direction(metric, r)
            if direction is None:
                continue
            value = math.inf if direction == "min" else -math.inf
        if METRICS[metric][2]:
            value = math.log10(value) if value > 0 else -math.inf
        out[r.config.seed] = float(value)
    return out


def _stats(values) -> tuple[float, float]:
    values = list(values)
    mean = statistics.mean(values) if values else math.nan
    std = statistics.stdev(values) if len(values) > 1 and all(math.isfinite(v) for v in values) else 0.0
    return mean, std


def one_sided(lhs: dict, rhs: dict | float, op: str) -> str:
    """The verdict of `lhs op rhs` (op `<` or `>`) over seeds; `rhs` is per seed or a constant."""
    if isinstance(rhs, dict):
        pairs = [(lhs[s], rhs[s]) for s in sorted(set(lhs) & set(rhs))]
        rhs_values = list(rhs.values())
    else:
        pairs = [(v, rhs) for v in lhs.values()]
        rhs_values = [rhs]
    if not pairs:
        return "inconclusive"
    # Plain comparisons, not differences: two infinite (diverged) values are simply not ordered.
    if all(a < b if op == "<" else a > b for a, b in pairs):
        return "reproduced"
    if all(a > b if op == "<" else a < b for a, b in pairs):
        return "not reproduced"
    (m_l, s_l), (m_r, s_r) = _stats(lhs.values()), _stats(rhs_values)
    if math.isfinite(m_l) and math.isfinite(m_r):
        diff, spread = m_l - m_r, s_l + s_r
        if abs(diff) > spread:
            return "reproduced" if (diff < 0) == (op == "<") else "not reproduced"
    return "inconclusive"


def combine(verdicts: list[str]) -> str:
    if any(v == "not reproduced" for v in verdicts):
        return "not reproduced"
    if verdicts and all(v == "reproduced" for v in verdicts):
        return "reproduced"
    return "inconclusive"


def _constant(rhs, records) -> float:
    if rhs in ("target", "chance"):
        return float(getattr(records[0].dataset, rhs))
    return float(rhs)


def evaluate(expectation: Expectation, records: list[RunRecord]) -> tuple[str, str]:
    """`(verdict, measured text)` of one expectation over a group's evaluation records."""
    e = expectation
    lhs = arm_values(records, e.lhs, e.metric)
    log = METRICS[e.metric][2]
    if isinstance(e.rhs, Arm):
        rhs = arm_values(records, e.rhs, e.metric)
        rhs_text = f"{e.rhs.text} {_show(rhs.values(), log)}"
    else:
        value = _constant(e.rhs, records)
        rhs = math.log10(value) if log else value
        rhs_text = f"{e.rhs} {format_number(value)}" if isinstance(e.rhs, str) else format_number(value)
    if e.op == "~":
        tol = math.log10(1 + e.tolerance) if log else e.tolerance
        low = {k: v - (rhs[k] if isinstance(rhs, dict) else rhs) for k, v in lhs.items()}
        verdict = combine([one_sided(low, -tol, ">"), one_sided(low, tol, "<")])
    else:
        verdict = one_sided(lhs, rhs, e.op)
    return verdict, f"{e.lhs.text} {_show(lhs.values(), log)} vs {rhs_text}"


def _show(values, log: bool) -> str:
    values = [10**v if log and math.isfinite(v) else v for v in values]
    if not values:
        return "(no runs)"
    mean, std = _stats(values)
    return format_number(mean) + (f" ± {format_number(std)}" if len(values) > 1 else "")


def evaluate_claims(records: list[RunRecord], suites: dict) -> list[ClaimResult]:
    """Every claims group of the given suites that has evaluation records, in file order."""
    results = []
    for suite in suites.values():
        for group in suite.groups:
            if not group.expect:
                continue
            runs = [r for r in records if r.config.phase == "eval" and r.config.suite == suite.name
                    and r.config.group == group.name]  # fmt: skip
            if not runs:
                continue
            outcomes = [evaluate(e, runs) for e in group.expect]
            seeds = min((len({r.config.seed for r in runs if e.lhs.matches(r.config.model, r.config.sweep)})
                         for e in group.expect), default=0)  # fmt: skip
            metrics = list(dict.fromkeys(METRICS[e.metric][0] for e in group.expect))
            results.append(ClaimResult(
                claim_id=group.name, claim=group.claim or group.description, source=group.source or "",
                metric="; ".join(metrics), expected="; ".join(e.text for e in group.expect),
                measured="; ".join(text for _, text in outcomes), seeds=seeds,
                verdict=combine([v for v, _ in outcomes]), details=[(e.text, v) for e, (v, _) in zip(group.expect, outcomes)],
            ))  # fmt: skip
    return results


def suites_of(records: list[RunRecord], out_dir=None) -> dict:
    """The suites the records came from: the copies `gradzoo run` kept in `OUT/suites/`, else the shipped ones."""
    from gradzoo.benchmarks.errors import UserError
    from gradzoo.benchmarks.harness.plan.suites import load_suite

    suites = {}
    for name in dict.fromkeys(r.config.suite for r in records if r.config.suite):
        copy = Path(out_dir) / SUITE_COPIES / f"{name}.toml" if out_dir is not None else None
        try:
            suites[name] = load_suite(copy if copy is not None and copy.is_file() else name)
        except UserError:
            continue  # a suite that is neither kept nor shipped has no claims to check
    return suites


def claims_table(results: list[ClaimResult]):
    import pandas as pd

    return pd.DataFrame([{c: getattr(r, c) for c in COLUMNS} for r in results], columns=COLUMNS)


def claims_markdown(records: list[RunRecord], out_dir=None, results=None) -> str:
    """The claims as a Markdown table, or `""` when the records hold no claims group."""
    results = evaluate_claims(records, suites_of(records, out_dir)) if results is None else results
    if not results:
        return ""
    lines = ["| claim | source | expected | measured (mean ± std over seeds) | seeds | verdict |", "|---|---|---|---|---|---|"]
    for r in results:
        # Claims, sources and arms come from a suite file: shown as typed, never as HTML, a link or an image.
        cells = [f"{md_code(r.claim_id)}: {md_escape(r.claim)}", md_escape(r.source), md_escape(r.expected),
                 md_escape(r.measured), str(r.seeds), f"**{md_escape(r.verdict)}**"]  # fmt: skip
        lines.append("| " + " | ".join(md_cell(c) for c in cells) + " |")
    note = ("Verdicts: **reproduced** when the expected ordering holds in every seed or the means differ in the expected "
            "direction by more than the seed spread (sum of sample standard deviations); **not reproduced** when the "
            "opposite holds; else **inconclusive**. A diverged run counts as the worst value; ratios are compared on a "
            "log scale.")  # fmt: skip
    return "\n".join(lines) + "\n\n" + note + "\n"


def write_claims(out_dir, records: list[RunRecord], results=None) -> dict:
    """Writes `claims.csv` and `claims.md` when the records hold claims groups; returns their paths."""
    out_dir = Path(out_dir)
    results = evaluate_claims(records, suites_of(records, out_dir)) if results is None else results
    if not results:
        return {}
    paths = {"claims_csv": out_dir / "claims.csv", "claims_md": out_dir / "claims.md"}
    write_atomic(paths["claims_csv"], claims_table(results).to_csv(index=False))
    text = "# Claims: published results, checked against gradzoo's records\n\n" + claims_markdown(records, results=results)
    write_atomic(paths["claims_md"], text)
    return paths
