"""Verdicts from a run's gradient log: vanishing, exploding or healthy; the one owner of their
thresholds and of the words that explain them.

The thresholds are deliberately coarse (orders of magnitude), because the
phenomena are: a deep sigmoid MLP's first-layer gradient sits 10^-10 or more
below its last layer's, while He + ReLU + BatchNorm keeps them within 10^1.
Tables, reports, the README and the doctor all state them through
`thresholds_lines()` and `VERDICT_RULE`, never in words of their own.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter

from gradzoo.benchmarks.analysis.formatting import finite_values, format_number, md_code, percent, plural
from gradzoo.benchmarks.harness.records import RunRecord

VANISHING_RATIO = 1e-3
EXPLODING_NORM = 1e3
# A run "left chance level" when its best validation score beats chance by more
# than this fraction of the distance from chance to the target.
LEFT_CHANCE_FRACTION = 0.1
VERDICTS = ("vanishing", "exploding", "healthy", "unknown")


def judge(ratio: float | None, peak: float | None, diverged: bool = False) -> str:
    """The verdict for a gradient ratio (first/last layer, or early/late step) and a peak raw global norm."""
    if diverged:
        return "exploding"
    if peak is not None and (not math.isfinite(peak) or peak > EXPLODING_NORM):
        return "exploding"
    if ratio is not None and ratio > 1 / VANISHING_RATIO:
        return "exploding"
    if ratio is not None and ratio < VANISHING_RATIO:
        return "vanishing"
    return "healthy"


def verdict(record: RunRecord) -> str:
    """`"vanishing"`, `"exploding"`, `"healthy"` or `"unknown"` (no gradient log).

    - **exploding**: the run diverged, or the raw global gradient norm (before
      clipping) exceeded `EXPLODING_NORM` at some step, or the verdict ratio is
      above `1 / VANISHING_RATIO`. Clipping bounds the update, not the raw
      gradient, so a clipped run can be "exploding" and still train.
    - **vanishing**: the verdict ratio is below `VANISHING_RATIO`: the first
      weight layer's mean gradient norm over epoch 1 against the last weight
      layer's; for recurrent nets with a gradient-through-time profile, the
      gradient reaching the first 10% of input steps against the last 10%, at
      the end of training (at initialization even an LSTM's profile decays, since
      its forget gate starts near sigmoid(1); what a gated cell changes is that
      training can open that path).
    - **healthy**: neither.
    """
    if record.diverged:
        return "exploding"
    if record.gradients is None:
        return "unknown"
    return judge(record.verdict_ratio, record.peak_global_norm)


def majority(words) -> str | None:
    """The most common verdict among seeds (ties: the first seen)."""
    words = [w for w in words if w]
    return Counter(words).most_common(1)[0][0] if words else None


def left_chance(score, chance, target, mode) -> bool:
    """Whether `score` beats `chance` by more than `LEFT_CHANCE_FRACTION` of |target - chance|."""
    if score is None or not math.isfinite(score):
        return False
    margin = LEFT_CHANCE_FRACTION * abs(target - chance)
    return score > chance + margin if mode == "max" else score < chance - margin


VERDICT_RULE = (
    f"vanishing if the first weight layer's gradient is below {format_number(VANISHING_RATIO)} of the last's over "
    f"epoch 1 (for recurrent nets: if the gradient reaching the first 10% of input steps is below "
    f"{format_number(VANISHING_RATIO)} of that reaching the last 10%, at the end of training); exploding if a raw "
    f"global gradient norm exceeds {format_number(EXPLODING_NORM)}, the ratio exceeds "
    f"{format_number(1 / VANISHING_RATIO)}, or the run diverged; else healthy"
)


def thresholds_lines(records=()) -> list[str]:
    """Markdown bullets that explain how the verdicts are made (through time too, if `records` measured it)."""
    timed = [r for r in records if r.temporal_ratio is not None]
    edge = percent(timed[0].temporal.edge_fraction) if timed else None
    through_time = [
        f"- **through time** (recurrent nets with a gradient-through-time profile: the L2 norm of the loss's gradient "
        f"with respect to each input step, on a fixed probe batch): the vanishing and exploding ratio tests use, instead "
        f"of the layer ratio, the gradient reaching the first {edge} of input steps over the one reaching the last {edge}, "
        "at the end of training."
    ] if timed else []
    return [
        f"- **vanishing**: the first weight layer's mean gradient norm over epoch 1 is below {format_number(VANISHING_RATIO)} "
        "times the last weight layer's (the head). Normalization layers (BatchNorm/LayerNorm scale and offset) are left out.",
        f"- **exploding**: the run diverged (a non-finite loss or gradient stopped it), or the raw global gradient norm "
        f"(before clipping) exceeded {format_number(EXPLODING_NORM)} at some step, or the first weight layer's gradient is more than "
        f"{format_number(1 / VANISHING_RATIO)} times the last's. Clipping bounds the update, not the raw gradient, so a clipped "
        "run can be exploding and still train: its clip rate (the fraction of steps whose update clipping shrank) is given.",
        *through_time,
        "- **healthy**: neither. With several seeds the verdict is the most common one, and the others are named.",
        f"- **left chance level**: the best validation score beats the dataset's chance level by more than "
        f"{format_number(LEFT_CHANCE_FRACTION)} of the distance from chance to the target (|target - chance|), in the metric's "
        "direction (higher or lower is better).",
        "- **reached the target**: the validation score at the end of an epoch is at least as good as the dataset's target; "
        "the epoch given is the first such epoch.",
    ]


def verdict_in_words(records: list[RunRecord]) -> str:
    """One model's verdict in a sentence, from its records (one per seed).

    Returns:
        Markdown, e.g. "`mlp_sigmoid_deep`: **vanishing**; first-layer gradient
        3e-7 of the last layer's over epoch 1; never left chance level in 20
        epochs (best val accuracy 0.095; chance 0.1)."
    """
    first, n = records[0], len(records)
    words = Counter(verdict(r) for r in records)
    word, count = words.most_common(1)[0]
    head = f"**{word}**" if count == n else f"**{word}** in {count} of {n} seeds ({', '.join(f'{w} in {c}' for w, c in words.items() if w != word)})"
    clauses = []

    def seeds(values):
        return f" (median of {len(values)} seeds)" if len(values) > 1 else "" if n == 1 else f" (the one seed of {n} with a finite ratio)"

    # Where a gradient-through-time profile exists the verdict judges by it, so it comes first.
    temporal = finite_values(r.temporal_ratio for r in records)
    if temporal:
        ratio, edge = statistics.median(temporal), percent(first.temporal.edge_fraction)
        reaching = f"the gradient reaching the first {edge} of input steps is {format_number(ratio)}"
        if ratio < VANISHING_RATIO:
            clauses.append(f"{reaching} of that reaching the last {edge} at the end of training{seeds(temporal)}")
        elif ratio > 1 / VANISHING_RATIO:
            clauses.append(f"{reaching} times that reaching the last {edge} at the end of training{seeds(temporal)}")
        else:
            clauses.append(f"early/late-step gradient ratio {format_number(ratio)} at the end of training{seeds(temporal)}")
    layers = finite_values(r.first_last_ratio() for r in records)
    if layers:
        ratio = statistics.median(layers)
        if temporal:
            clauses.append(f"first/last-layer ratio {format_number(ratio)} over epoch 1")
        elif ratio < VANISHING_RATIO:
            clauses.append(f"first-layer gradient {format_number(ratio)} of the last layer's over epoch 1{seeds(layers)}")
        elif ratio > 1 / VANISHING_RATIO:
            clauses.append(f"first-layer gradient {format_number(ratio)} times the last layer's over epoch 1{seeds(layers)}")
        else:
            clauses.append(f"first/last-layer gradient ratio {format_number(ratio)} over epoch 1{seeds(layers)}")
    elif not temporal and not any(r.gradients for r in records):
        clauses.append("no gradient log")

    diverged = sorted(r.diverged_step for r in records if r.diverged and r.diverged_step is not None)
    if diverged:
        where = f"at step {diverged[0]}" if n == 1 else f"in {len(diverged)} of {n} seeds, first at step {diverged[0]}"
        clauses.append(f"diverged (non-finite loss or gradient) {where}")
    peak = max(finite_values(r.peak_global_norm for r in records), default=None)
    if peak is not None and peak > EXPLODING_NORM:
        clauses.append(f"raw global gradient norm peaked at {format_number(peak)} (threshold {format_number(EXPLODING_NORM)})")
    rates = finite_values(r.clip_rate for r in records)
    if first.clipping and rates:
        clauses.append(f"clipping ({first.clipping}) shrank {percent(statistics.mean(rates))} of updates")

    d = first.dataset
    best = finite_values(r.best_score for r in records)
    epochs = max(r.summary.epochs_run for r in records)
    reached = sorted(r.summary.epochs_to_target for r in records if r.summary.epochs_to_target)
    if not best:
        clauses.append(f"no finite validation {d.metric} in {plural(epochs, 'epoch')}")
    else:
        score = statistics.mean(best)
        scored = f"best val {d.metric} {format_number(score)}" + ("" if n == 1 else f", mean of {len(best)} seeds")
        if reached:
            when = f"in epoch {reached[0]}" if n == 1 else f"in {len(reached)} of {n} seeds, median epoch {format_number(statistics.median(reached))}"
            clauses.append(f"reached the target {format_number(d.target)} {when} ({scored})")
        elif left_chance(score, d.chance, d.target, d.metric_mode):
            clauses.append(f"left chance level but missed the target {format_number(d.target)} in {plural(epochs, 'epoch')} "
                           f"({scored}; chance {format_number(d.chance)})")  # fmt: skip
        else:
            clauses.append(f"never left chance level in {plural(epochs, 'epoch')} ({scored}; chance {format_number(d.chance)})")
    return f"{md_code(first.label)}: {head}; " + "; ".join(clauses) + "."
