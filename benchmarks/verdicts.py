"""Verdicts from a run's gradient log: vanishing, exploding or healthy.

The thresholds are deliberately coarse (orders of magnitude), because the
phenomena are: a deep sigmoid MLP's first-layer gradient sits 10^-10 or more
below its last layer's, while He + ReLU + BatchNorm keeps them within 10^1.

- **exploding**: the run diverged (non-finite loss or gradient), or the raw
  global gradient norm (before clipping) exceeded `EXPLODING_NORM` at some
  step, or the first weight layer's gradient is more than `1 / VANISHING_RATIO`
  times the last's. Clipping bounds the update, not the raw gradient, so a
  clipped run can be "exploding" and still train: see its clip rate.
- **vanishing**: the first weight layer's mean gradient norm over the first
  epoch is below `VANISHING_RATIO` times the last weight layer's.
- **healthy**: neither.

Normalization layers (BatchNorm/LayerNorm scale and offset) are left out of
the ratio: it compares weight layers, first (nearest the input) to last (the head).

For recurrent nets the gradient vanishes through time rather than through
layers, so where a record has a gradient-through-time profile
(`benchmarks.temporal`) the **vanishing** test uses it instead: the loss's
gradient reaching the first 10% of input steps is below `VANISHING_RATIO` times
the one reaching the last 10%, at the end of training. (At initialization even
an LSTM's profile decays, since its forget gate starts near sigmoid(1); what a
gated cell changes is that training can open that path, so the end of training
is what tells the two apart.)
"""

from __future__ import annotations

import math

VANISHING_RATIO = 1e-3
EXPLODING_NORM = 1e3


def first_last_ratio(record: dict, epoch: int = 0) -> float | None:
    """First/last weight-layer mean gradient norm in one epoch (0 = first)."""
    grads = record.get("gradients")
    if not grads or not grads["epoch"]["mean"]:
        return None
    means = grads["epoch"]["mean"]
    row = means[min(epoch, len(means) - 1) if epoch >= 0 else len(means) + epoch]
    weights = [layer["depth_index"] for layer in grads["layers"] if layer["kind"] == "weight"]
    if len(weights) < 2:
        return None
    first, last = row[weights[0]], row[weights[-1]]
    if not (math.isfinite(first) and math.isfinite(last)) or last <= 0:
        return None
    return first / last


def temporal_ratio(record: dict) -> float | None:
    """Early/late gradient-through-time ratio at the end of training, if measured."""
    temporal = record.get("temporal")
    if not temporal or not temporal.get("early_late_ratio"):
        return None
    return temporal["early_late_ratio"][-1]


def max_global_norm(record: dict) -> float | None:
    grads = record.get("gradients")
    if not grads or not grads["epoch"]["global_pre_max"]:
        return None
    return max(grads["epoch"]["global_pre_max"])


def clip_rate(record: dict) -> float | None:
    """Fraction of all steps whose update clipping shrank."""
    grads = record.get("gradients")
    if not grads or not grads["epoch"]["clip_rate"]:
        return None
    rates = grads["epoch"]["clip_rate"]
    return sum(rates) / len(rates)


def verdict_ratio(record: dict):
    """The gradient ratio the verdict judges by: early/late steps if measured, else first/last layer."""
    ratio = temporal_ratio(record)
    return ratio if ratio is not None else first_last_ratio(record)


def verdict(record: dict) -> str:
    """`"vanishing"`, `"exploding"`, `"healthy"` or `"unknown"` (no gradient log)."""
    if record.get("diverged"):
        return "exploding"
    if not record.get("gradients"):
        return "unknown"
    peak = max_global_norm(record)
    ratio = temporal_ratio(record)
    if ratio is None:
        ratio = first_last_ratio(record)
    if peak is not None and (not math.isfinite(peak) or peak > EXPLODING_NORM):
        return "exploding"
    if ratio is not None and ratio > 1 / VANISHING_RATIO:
        return "exploding"
    if ratio is not None and ratio < VANISHING_RATIO:
        return "vanishing"
    return "healthy"
