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
fix that tells the two apart (`FIXES`), recognised from the zoo's description
of the two models, never from a hand-kept list of numbers. Per side it keeps
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

from gradzoo.benchmarks.analysis.verdicts import verdict
from gradzoo.benchmarks.harness.records import CLIP_KEYS, RunRecord, load_records

SHIPPED = Path(__file__).resolve().parent / "evidence.json"
GENERATED_BY = "python -m gradzoo.benchmarks.doctor.evidence"

# The fixes the doctor can cite, by key: what a user would change.
FIXES = {
    "he_relu_bn": "He init + ReLU + BatchNorm",
    "residual": "residual (skip) connections",
    "selu_lecun": "SELU activations + LeCun-normal init",
    "he_init": "He init instead of Glorot",
    "gated_rnn": "LSTM/GRU gates instead of a plain RNN",
    "irnn": "an identity-initialized ReLU RNN (IRNN)",
    "clipping": "gradient clipping",
}


def classify(baseline: RunRecord, mitigated: RunRecord) -> str | None:
    """The key in `FIXES` of what tells a mitigated model apart from its baseline, or `None`."""
    b, m = baseline.model, mitigated.model
    if any(word in m.name for word in ("resnet", "residual")):
        return "residual"
    clip_free = [{k: v for k, v in r.optimizer.items() if k not in CLIP_KEYS} for r in (baseline, mitigated)]
    if b.name == m.name or (b.defaults == m.defaults and clip_free[0] == clip_free[1]):
        return "clipping" if mitigated.clipping and not baseline.clipping else None
    bd, md = b.defaults, m.defaults
    if md.get("cell") in ("lstm", "gru") and bd.get("cell") == "simple":
        return "gated_rnn"
    if md.get("recurrent_initializer") == "identity":
        return "irnn"
    if md.get("activation") == "selu":
        return "selu_lecun"
    changed = {k for k in set(bd) | set(md) if bd.get(k) != md.get(k)}
    if changed == {"initializer"} and str(md.get("initializer", "")).startswith("he"):
        return "he_init"
    if md.get("normalization") == "batch" and str(md.get("initializer", "")).startswith("he"):
        return "he_relu_bn"
    return None


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


def side(records: list[RunRecord]) -> dict:
    """One model's numbers over its seeds."""
    first = records[0]
    temporal = [r for r in records if r.temporal is not None and r.temporal.early_late_ratio]
    peaks = [r.peak_global_norm for r in records if r.peak_global_norm is not None and math.isfinite(r.peak_global_norm)]
    rates = [r.clip_rate for r in records if r.clip_rate is not None]
    scores = [r.best_score for r in records if r.best_score is not None and math.isfinite(r.best_score)]
    words = Counter(verdict(r) for r in records)
    return {
        "model": first.label,
        "first_last_ratio": _median(r.first_last_ratio() for r in records),
        "early_late_ratio_init": _median(r.temporal.early_late_ratio[0] for r in temporal),
        "early_late_ratio": _median(r.temporal_ratio for r in temporal),
        "best_score": _round(statistics.mean(scores)) if scores else None,
        "peak_global_norm": _round(max(peaks)) if peaks else None,
        "clipping": first.clipping,
        "clip_rate": _round(statistics.mean(rates)) if rates and first.clipping else None,
        "saturated": _median(_unit_fraction(r, "saturated") for r in records),
        "dead": _median(_unit_fraction(r, "dead") for r in records),
        "verdict": words.most_common(1)[0][0],
        "reached_target": f"{sum(r.reached_target for r in records)}/{len(records)}",
        "diverged": f"{sum(r.diverged for r in records)}/{len(records)}",
    }


def _entry(fix, baseline: list[RunRecord], mitigated: list[RunRecord], sweep: str) -> dict:
    b = baseline[0]
    g = b.gradients
    d = b.dataset
    return {
        "fix": fix,
        "suite": b.config.suite,
        "group": b.config.group,
        "sweep": sweep,
        "family": b.model.family,
        "dataset": d.name,
        "metric": d.metric,
        "metric_mode": d.metric_mode,
        "chance": _round(d.chance),
        "target": _round(d.target),
        "seeds": min(len(baseline), len(mitigated)),
        "weight_layers": len(g.weight_columns) if g is not None else None,
        "depth": b.config.model_overrides.get("depth", b.model.defaults.get("depth")),
        "length": d.params.get("length"),
        "baseline": side(baseline),
        "mitigated": side(mitigated),
    }


def _clip_free_sweep(record: RunRecord) -> tuple:
    return tuple(sorted((k, v) for k, v in record.config.sweep.items() if k.rsplit(".", 1)[-1] not in CLIP_KEYS))


def pair_entries(records: list[RunRecord]) -> tuple[list[dict], list[str]]:
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
    entries.sort(key=lambda e: (e["fix"], e["suite"], e["group"], e["sweep"], e["baseline"]["model"], e["mitigated"]["model"]))
    return entries, skipped


def build_evidence(results_dir="results") -> tuple[dict, list[str]]:
    """The evidence document from `results_dir/records`, and the pairs left out (no known fix)."""
    records = load_records(results_dir)
    entries, skipped = pair_entries(records)
    fixes = {key: {"title": title, "pairs": [e for e in entries if e["fix"] == key]} for key, title in FIXES.items()}
    document = {
        "generated_by": GENERATED_BY,
        "source": "results/records",
        "eval_runs": sum(r.config.phase == "eval" for r in records),
        "fixes": {key: value for key, value in fixes.items() if value["pairs"]},
    }
    return document, skipped


def evidence_text(document: dict) -> str:
    """The file's exact text: stable key order, one indent, a final newline."""
    return json.dumps(document, indent=1, sort_keys=True, allow_nan=False) + "\n"


def load_evidence(path=None) -> dict:
    """The shipped evidence (or the file at `path`); an empty document when there is none."""
    path = Path(path) if path is not None else SHIPPED
    if not path.is_file():
        return {"fixes": {}}
    return json.loads(path.read_text())


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
    counts = ", ".join(f"{k}: {len(v['pairs'])}" for k, v in document["fixes"].items())
    print(f"{out}: {counts} pairs from {document['eval_runs']} evaluation runs.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
