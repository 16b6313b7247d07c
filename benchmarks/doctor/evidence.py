"""The doctor's evidence: what each fix did in gradzoo's own reference runs, in numbers.

Installed users have no `results/`, so the numbers the doctor cites ship with
the package as `benchmarks/doctor/evidence.json`, generated from the records:

```bash
python -m gradzoo.benchmarks.doctor.evidence            # results/records -> benchmarks/doctor/evidence.json
python -m gradzoo.benchmarks.doctor.evidence --check    # exit 1 if the shipped file is stale
```

The generator derives everything from whatever evaluation records are there,
pair by pair: each baseline beside each mitigated partner of the same suite,
group and sweep point (mean or median over seeds), with the zoo family
(mlp, cnn, rnn) the pair belongs to, plus, inside a swept group,
one model run with and without gradient clipping. Each pair is filed under the
fix that tells the two apart (`FIXES`), read from the fixes the mitigated model
declares in the zoo (`gradzoo.zoo.get_spec(name).fixes`), never from its name
or a hand-kept list of numbers. Per side it keeps
the first/last-layer gradient ratio over epoch 1, the early/late-step ratio at
initialization and at the end of training (recurrent nets), the best
validation score, the peak raw global norm, the clip rate, the saturated and
dead unit fractions at the end, and the verdict.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from collections import Counter, defaultdict
from pathlib import Path

from gradzoo.benchmarks.analysis.fixes import fixes_of
from gradzoo.benchmarks.analysis.verdicts import verdict
from gradzoo.benchmarks.doctor.evidence_types import Evidence, EvidenceFix, EvidencePair, EvidenceSide
from gradzoo.benchmarks.harness.records import CLIP_KEYS, RunRecord, load_records

SHIPPED = Path(__file__).resolve().parent / "evidence.json"
GENERATED_BY = "python -m gradzoo.benchmarks.doctor.evidence"

# The fixes the doctor can cite, by key: what a user would change (the title), and the zoo
# fixes (`gradzoo.zoo.FIXES`) a mitigated model must declare to be filed there. A pair goes
# under the first whose fixes its mitigated model declares: ResNets also differ in init and
# normalization from a sigmoid baseline, but the skip connections are what they show.
REMEDIES = (
    ("residual", "residual (skip) connections", {"skip_connections"}),
    ("gated_rnn", "LSTM/GRU gates instead of a plain RNN", {"gating"}),
    ("irnn", "an identity-initialized ReLU RNN (IRNN)", {"identity_recurrence"}),
    ("selu_lecun", "SELU activations + LeCun-normal init", {"self_normalization"}),
    ("he_relu_bn", "He init + ReLU + BatchNorm", {"he_init", "relu", "batch_norm"}),
    ("he_init", "He init instead of Glorot", {"he_init"}),
    ("clipping", "gradient clipping", {"clipping"}),
)
FIXES = {key: title for key, title, _ in REMEDIES}


def remedy_of(fixes) -> str | None:
    """The key in `FIXES` of a set of declared zoo fixes, or `None` if none matches."""
    return next((key for key, _, needs in REMEDIES if needs <= set(fixes)), None)


def classify(baseline: RunRecord, mitigated: RunRecord) -> str | None:
    """The key in `FIXES` of what tells a mitigated model apart from its baseline, or `None`.

    It reads the fixes the mitigated model declares in the zoo; a clipping pair
    counts only when the records show the mitigated run clipped and the baseline not.
    """
    fixes = fixes_of(mitigated.model.name)  # none for a model this install does not register
    key = remedy_of(fixes) if fixes else None
    if key == "clipping" and not (mitigated.clipping and not baseline.clipping):
        return None
    return key


def _round(value):
    """3 significant digits, `None` for a missing or non-finite number (the file stays small and stable)."""
    if value is None or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(f"{value:.3g}")


def _median(values):
    values = [v for v in values if v is not None and math.isfinite(v)]
    return _round(statistics.median(values)) if values else None


def _unit_fraction(record: RunRecord, kind: str):
    """The mean saturated (`kind="saturated"`) or dead (`"dead"`) fraction over the layers at the last epoch."""
    a = record.activations
    if a is None or not a.per_epoch:
        return None
    wanted = ("relu",) if kind == "dead" else ("sigmoid", "tanh")
    last = a.per_epoch[-1]
    values = [v for layer, v in zip(a.layers, last) if layer.activation in wanted and v is not None]
    return statistics.mean(values) if values else None


def side(records: list[RunRecord]) -> EvidenceSide:
    """One model's numbers over its seeds."""
    first = records[0]
    temporal = [r for r in records if r.temporal is not None and r.temporal.early_late_ratio]
    peaks = [r.peak_global_norm for r in records if r.peak_global_norm is not None and math.isfinite(r.peak_global_norm)]
    rates = [r.clip_rate for r in records if r.clip_rate is not None]
    scores = [r.best_score for r in records if r.best_score is not None and math.isfinite(r.best_score)]
    words = Counter(verdict(r) for r in records)
    return EvidenceSide(
        model=first.label,
        first_last_ratio=_median(r.first_last_ratio() for r in records),
        early_late_ratio_init=_median(r.temporal.early_late_ratio[0] for r in temporal),
        early_late_ratio=_median(r.temporal_ratio for r in temporal),
        best_score=_round(statistics.mean(scores)) if scores else None,
        peak_global_norm=_round(max(peaks)) if peaks else None,
        clipping=first.clipping,
        clip_rate=_round(statistics.mean(rates)) if rates and first.clipping else None,
        saturated=_median(_unit_fraction(r, "saturated") for r in records),
        dead=_median(_unit_fraction(r, "dead") for r in records),
        verdict=words.most_common(1)[0][0],
        reached_target=f"{sum(r.reached_target for r in records)}/{len(records)}",
        diverged=f"{sum(r.diverged for r in records)}/{len(records)}",
    )


def _entry(fix, baseline: list[RunRecord], mitigated: list[RunRecord], sweep: str) -> EvidencePair:
    b = baseline[0]
    g = b.gradients
    d = b.dataset
    return EvidencePair(
        fix=fix,
        suite=b.config.suite,
        group=b.config.group,
        sweep=sweep,
        family=b.model.family,
        dataset=d.name,
        metric=d.metric,
        metric_mode=d.metric_mode,
        chance=_round(d.chance),
        target=_round(d.target),
        seeds=min(len(baseline), len(mitigated)),
        weight_layers=len(g.weight_columns) if g is not None else None,
        depth=b.config.model_overrides.get("depth", b.model.defaults.get("depth")),
        length=d.params.get("length"),
        baseline=side(baseline),
        mitigated=side(mitigated),
    )


def _clip_free_sweep(record: RunRecord) -> tuple:
    return tuple(sorted((k, v) for k, v in record.config.sweep.items() if k.rsplit(".", 1)[-1] not in CLIP_KEYS))


def pair_entries(records: list[RunRecord]) -> tuple[list[EvidencePair], list[str]]:
    """Every baseline/mitigated pair and every with/without-clipping pair in the evaluation records.

    Returns:
        `(entries, skipped)`: the evidence entries, and one line per pair no
        fix in `FIXES` describes.
    """
    runs = defaultdict(list)  # (suite, group, sweep, dataset, label) -> seeds
    for r in records:
        if r.config.phase == "eval":
            runs[(r.config.suite, r.config.group, r.sweep_label, r.dataset.name, r.label)].append(r)
    entries, skipped = [], []
    for (suite, group, sweep, dataset, label), base in runs.items():
        if base[0].model.role != "baseline":
            continue
        for (s2, g2, sw2, d2, other), mit in runs.items():
            if (s2, g2, sw2, d2) != (suite, group, sweep, dataset) or mit[0].model.role != "mitigated" or mit[0].pair != label:
                continue
            fix = classify(base[0], mit[0])
            if fix is None:
                skipped.append(f"{suite}/{group} {sweep or '-'}: {label} -> {other}")
            else:
                entries.append(_entry(fix, base, mit, sweep))
    # One model with and without clipping at the same other sweep values (a swept clipnorm).
    for (suite, group, sweep, dataset, label), unclipped in runs.items():
        if unclipped[0].clipping:
            continue
        for (s2, g2, sw2, d2, l2), clipped in runs.items():
            same_point = _clip_free_sweep(clipped[0]) == _clip_free_sweep(unclipped[0]) and sw2 != sweep
            if (s2, g2, d2, l2) == (suite, group, dataset, label) and same_point and clipped[0].clipping:
                entries.append(_entry("clipping", unclipped, clipped, sw2))
    entries.sort(key=lambda e: (e.fix, e.suite, e.group, e.sweep, e.baseline.model, e.mitigated.model))
    return entries, skipped


def build_evidence(results_dir="results") -> tuple[Evidence, list[str]]:
    """The evidence document from `results_dir/records`, and the pairs left out (no known fix)."""
    records = load_records(results_dir)
    entries, skipped = pair_entries(records)
    fixes = {key: EvidenceFix(title=title, pairs=[e for e in entries if e.fix == key]) for key, title in FIXES.items()}
    document = Evidence(
        generated_by=GENERATED_BY,
        source="results/records",
        eval_runs=sum(r.config.phase == "eval" for r in records),
        fixes={key: value for key, value in fixes.items() if value.pairs},
    )
    return document, skipped


def evidence_text(document: Evidence) -> str:
    """The file's exact text: stable key order, one indent, a final newline."""
    return json.dumps(document.model_dump(), indent=1, sort_keys=True, allow_nan=False) + "\n"


def load_evidence(path=None) -> Evidence:
    """The shipped evidence (or the file at `path`), checked against its type; an empty one when there is none."""
    path = Path(path) if path is not None else SHIPPED
    if not path.is_file():
        return Evidence()
    return Evidence.model_validate_json(path.read_text())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default="results", help="the results directory whose records/ to read (default: results)")
    parser.add_argument("--out", default=str(SHIPPED), help="where to write the evidence (default: the shipped file)")
    parser.add_argument("--check", action="store_true", help="do not write; exit 1 if the file differs from the records")
    args = parser.parse_args(argv)
    if not (Path(args.results) / "records").is_dir():
        print(f"error: no records in {Path(args.results) / 'records'}; run the suites first (results/README.md).", file=sys.stderr)
        return 2
    document, skipped = build_evidence(args.results)
    for line in skipped:
        print(f"left out (no fix in FIXES tells the two apart): {line}")
    text = evidence_text(document)
    out = Path(args.out)
    if args.check:
        same = out.is_file() and out.read_text() == text
        print(f"{out}: {'up to date' if same else 'stale: run ' + GENERATED_BY}")
        return 0 if same else 1
    from gradzoo.benchmarks.storage import write_atomic

    write_atomic(out, text)
    counts = ", ".join(f"{k}: {len(v.pairs)}" for k, v in document.fixes.items())
    print(f"{out}: {counts} pairs from {document.eval_runs} evaluation runs.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
