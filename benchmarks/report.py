"""Records -> `report.md`, a self-contained `report.html` and PNG figures.

`build_report(results_dir)` regenerates the tables (`benchmarks.tables`), then
writes, for every pair (a baseline and the mitigated partners run beside it in
the same suite, group, sweep point and dataset):

- a verdict in words per model, computed from the numbers (`verdict_in_words`);
- loss and metric curves, mean over seeds with a min-max band;
- gradient flow: per-layer gradient norm against depth at the first, middle
  and last recorded step, on a log scale;
- for recurrent nets with a gradient-through-time profile, that profile at
  initialization, mid-training and the end;
- a layer x step heatmap of gradient norms;
- the global gradient norm before and after clipping, with the clip rate;

and, for each swept group (`config.sweep`, e.g. `model.depth`), the final score
and the gradient ratio the verdict uses against the swept value. `report.md`
links the figures under `figures/`; `report.html` carries them inline as
base64 data URIs, so it opens from disk with no network. Both come from the
same Markdown text, so they always say the same thing.

matplotlib is imported lazily and only through its object-oriented API with
the Agg canvas: building a report never touches a user's pyplot backend.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import math
import re
import statistics
from collections import Counter
from pathlib import Path

from benchmarks import verdicts
from benchmarks.records import RECORDS_SUBDIR, load_records
from benchmarks.tables import comparison_markdown, comparison_table, convergence_table, pair_of, write_tables

# A run "left chance level" when its best validation score beats chance by more
# than this fraction of the distance from chance to the target.
LEFT_CHANCE_FRACTION = 0.1
# Log-scale plots draw zeros (and anything smaller) at this floor.
LOG_FLOOR = 1e-30
FIGURE_DPI = 100
# Sweep keys drawn on the x axis in preference to the others.
SWEEP_AXES = ("model.depth", "dataset.length")
CLIP_KEYS = ("clipnorm", "global_clipnorm", "clipvalue")
FIGURES_SUBDIR = "figures"


# ----------------------------------------------------------------------------- numbers and words


def _fmt(value, digits=3) -> str:
    """A number for prose: `3.2e-7`, `0.85`, `1.2e+5`; `–` for missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) < 1e4):
        return str(int(value))
    if value != 0 and (abs(value) < 1e-2 or abs(value) >= 1e4):
        mantissa, exponent = f"{value:.1e}".split("e")
        return f"{mantissa.removesuffix('.0')}e{int(exponent)}"
    if abs(value) >= 10 ** digits:
        return f"{value:.0f}"
    return f"{value:.{digits}g}"


def _epochs(n) -> str:
    return f"{n} epoch" + ("" if n == 1 else "s")


def _pct(fraction) -> str:
    return f"{100 * fraction:.0f}%"


def _sweep_text(sweep: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(sweep.items()))


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")


def _finite(values):
    return [v for v in values if v is not None and isinstance(v, (int, float)) and math.isfinite(v)]


def _clipping(record: dict) -> str | None:
    """The clipping setting of a run, e.g. `clipnorm=1`, or `None`."""
    settings = record.get("optimizer") or {}
    parts = [f"{k}={_fmt(settings[k])}" for k in CLIP_KEYS if settings.get(k)]
    return ", ".join(parts) or None


def _edge_fraction(record: dict) -> float:
    """The share of input steps at each end that the early/late-step ratio averages."""
    return (record.get("temporal") or {}).get("edge_fraction", 0.1)


def verdict_ratio(record: dict):
    """The gradient ratio the verdict judges by: early/late steps if measured, else first/last layer."""
    ratio = verdicts.temporal_ratio(record)
    return ratio if ratio is not None else verdicts.first_last_ratio(record)


def left_chance(score, chance, target, mode) -> bool:
    """Whether `score` beats `chance` by more than `LEFT_CHANCE_FRACTION` of |target - chance|."""
    if score is None or not math.isfinite(score):
        return False
    margin = LEFT_CHANCE_FRACTION * abs(target - chance)
    return score > chance + margin if mode == "max" else score < chance - margin


def _peak_norm(record: dict):
    """The largest finite raw global gradient norm of a run."""
    grads = record.get("gradients") or {}
    return max(_finite((grads.get("epoch") or {}).get("global_pre_max", [])), default=None)


def verdict_in_words(records: list[dict]) -> str:
    """One model's verdict in a sentence, from its records (one per seed).

    Args:
        records: the runs of one model at one sweep point, any number of seeds.

    Returns:
        Markdown, e.g. "`mlp_sigmoid_deep`: **vanishing**; first-layer gradient
        3e-7 of the last layer's over epoch 1; never left chance level in 20
        epochs (best val accuracy 0.095; chance 0.1)."
    """
    first = records[0]
    name, n = first["config"]["model"], len(records)
    words = Counter(verdicts.verdict(r) for r in records)
    word, count = words.most_common(1)[0]
    head = f"**{word}**" if count == n else f"**{word}** in {count} of {n} seeds ({', '.join(f'{w} in {c}' for w, c in words.items() if w != word)})"
    clauses = []

    def seeds(values):
        return f" (median of {len(values)} seeds)" if len(values) > 1 else "" if n == 1 else f" (the one seed of {n} with a finite ratio)"

    # Where a gradient-through-time profile exists the verdict judges by it, so it comes first.
    temporal = _finite(verdicts.temporal_ratio(r) for r in records)
    if temporal:
        ratio, edge = statistics.median(temporal), _pct(_edge_fraction(first))
        reaching = f"the gradient reaching the first {edge} of input steps is {_fmt(ratio)}"
        if ratio < verdicts.VANISHING_RATIO:
            clauses.append(f"{reaching} of that reaching the last {edge} at the end of training{seeds(temporal)}")
        elif ratio > 1 / verdicts.VANISHING_RATIO:
            clauses.append(f"{reaching} times that reaching the last {edge} at the end of training{seeds(temporal)}")
        else:
            clauses.append(f"early/late-step gradient ratio {_fmt(ratio)} at the end of training{seeds(temporal)}")
    layers = _finite(verdicts.first_last_ratio(r) for r in records)
    if layers:
        ratio = statistics.median(layers)
        if temporal:
            clauses.append(f"first/last-layer ratio {_fmt(ratio)} over epoch 1")
        elif ratio < verdicts.VANISHING_RATIO:
            clauses.append(f"first-layer gradient {_fmt(ratio)} of the last layer's over epoch 1{seeds(layers)}")
        elif ratio > 1 / verdicts.VANISHING_RATIO:
            clauses.append(f"first-layer gradient {_fmt(ratio)} times the last layer's over epoch 1{seeds(layers)}")
        else:
            clauses.append(f"first/last-layer gradient ratio {_fmt(ratio)} over epoch 1{seeds(layers)}")
    elif not temporal and not any(r.get("gradients") for r in records):
        clauses.append("no gradient log")

    diverged = sorted(r["diverged_step"] for r in records if r.get("diverged") and r.get("diverged_step") is not None)
    if diverged:
        where = f"at step {diverged[0]}" if n == 1 else f"in {len(diverged)} of {n} seeds, first at step {diverged[0]}"
        clauses.append(f"diverged (non-finite loss or gradient) {where}")
    peak = max(_finite(_peak_norm(r) for r in records), default=None)
    if peak is not None and peak > verdicts.EXPLODING_NORM:
        clauses.append(f"raw global gradient norm peaked at {_fmt(peak)} (threshold {_fmt(verdicts.EXPLODING_NORM)})")

    clip = _clipping(first)
    rates = _finite(verdicts.clip_rate(r) for r in records)
    if clip and rates:
        clauses.append(f"clipping ({clip}) shrank {_pct(statistics.mean(rates))} of updates")

    d = first["dataset"]
    metric, mode, chance, target = d["metric"], d["metric_mode"], d["chance"], d["target"]
    best = _finite(r["summary"].get("best_val_metric") for r in records)
    epochs = max(r["summary"].get("epochs_run") or 0 for r in records)
    reached = sorted(r["summary"]["epochs_to_target"] for r in records if r["summary"].get("epochs_to_target"))
    if not best:
        clauses.append(f"no finite validation {metric} in {_epochs(epochs)}")
    else:
        score = statistics.mean(best)
        scored = f"best val {metric} {_fmt(score)}" + ("" if n == 1 else f", mean of {len(best)} seeds")
        if reached:
            when = f"in epoch {reached[0]}" if n == 1 else f"in {len(reached)} of {n} seeds, median epoch {_fmt(statistics.median(reached))}"
            clauses.append(f"reached the target {_fmt(target)} {when} ({scored})")
        elif left_chance(score, chance, target, mode):
            clauses.append(f"left chance level but missed the target {_fmt(target)} in {_epochs(epochs)} ({scored}; chance {_fmt(chance)})")
        else:
            clauses.append(f"never left chance level in {_epochs(epochs)} ({scored}; chance {_fmt(chance)})")
    return f"`{name}`: {head}; " + "; ".join(clauses) + "."


def _versus(unit: "Unit", mitigated: str) -> str | None:
    """One sentence comparing a partner's best val score with the baseline's."""
    base, mit = unit.runs.get(unit.pair), unit.runs[mitigated]
    if not base:
        return None
    d = base[0]["dataset"]
    b = _finite(r["summary"].get("best_val_metric") for r in base)
    m = _finite(r["summary"].get("best_val_metric") for r in mit)
    if not b or not m:
        return None
    b, m = statistics.mean(b), statistics.mean(m)
    better = m > b if d["metric_mode"] == "max" else m < b
    how = "the same" if m == b else f"{'better' if better else 'worse'} by {_fmt(abs(m - b))}"
    direction = "higher" if d["metric_mode"] == "max" else "lower"
    return (f"`{mitigated}` against `{unit.pair}`: best val {d['metric']} {_fmt(m)} vs {_fmt(b)} "
            f"({direction} is better): {how}.")


# ----------------------------------------------------------------------------- grouping


class Unit:
    """A pair: a baseline and its partners, in one suite, group, sweep point and dataset."""

    def __init__(self, suite, group, sweep, dataset, pair):
        self.suite, self.group, self.sweep, self.dataset, self.pair = suite, group, sweep, dataset, pair
        self.runs: dict[str, list[dict]] = {}

    @property
    def models(self) -> list[str]:
        """The baseline first, then its partners in the zoo's order."""
        order = []
        for runs in self.runs.values():
            if runs[0]["model"]["role"] == "baseline":
                order = runs[0]["model"].get("partners", [])
        rank = {name: i for i, name in enumerate([self.pair, *order])}
        return sorted(self.runs, key=lambda m: (rank.get(m, len(rank)), m))

    @property
    def title(self) -> str:
        others = [m for m in self.models if m != self.pair]
        names = " vs ".join(f"`{m}`" for m in ([self.pair] if self.pair in self.runs else []) + others)
        if self.pair not in self.runs:
            names += f" (baseline `{self.pair}` not run)"
        sweep = f" at {_sweep_text(self.sweep)}" if self.sweep else ""
        return f"{self.suite} / {self.group}{sweep}: {names}"

    @property
    def slug(self) -> str:
        parts = [self.suite, self.group, _sweep_text(self.sweep), self.dataset, self.pair]
        return _slug("_".join(p for p in parts if p))


def _sort_value(value):
    return (0, float(value), "") if isinstance(value, (int, float)) else (1, 0.0, str(value))


def group_units(records) -> list[Unit]:
    """Records grouped into pairs, in suite/group order and ascending sweep values."""
    units: dict[tuple, Unit] = {}
    group_order: dict[tuple, int] = {}
    for r in records:
        c = r["config"]
        group_order.setdefault((c["suite"], c["group"]), len(group_order))
        key = (c["suite"], c["group"], _sweep_text(c["sweep"]), c["dataset"], pair_of(r))
        unit = units.setdefault(key, Unit(c["suite"], c["group"], dict(c["sweep"]), c["dataset"], pair_of(r)))
        unit.runs.setdefault(c["model"], []).append(r)
    for unit in units.values():
        for runs in unit.runs.values():
            runs.sort(key=lambda r: r["config"]["seed"])
    return sorted(
        units.values(),
        key=lambda u: (group_order[(u.suite, u.group)], [(k, _sort_value(v)) for k, v in sorted(u.sweep.items())], u.dataset, u.pair),
    )


# ----------------------------------------------------------------------------- figures


def _new_figure(width, height):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=FIGURE_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=FIGURE_DPI)
    return path


def _log_values(values):
    """Values for a log axis: non-finite -> NaN (a gap), below `LOG_FLOOR` -> the floor.

    Returns:
        `(array, clamped, nonfinite)`: the two flags say whether a note is due.
    """
    import numpy as np

    a = np.array([np.nan if v is None else v for v in values], dtype=float) if not hasattr(values, "dtype") else values.astype(float)
    nonfinite = bool((~np.isfinite(a)).any())
    a = np.where(np.isfinite(a), a, np.nan)
    low = np.isfinite(a) & (a < LOG_FLOOR)
    return np.where(low, LOG_FLOOR, a), bool(low.any()), nonfinite


def _mean_band(series):
    """Mean, min and max over seeds of per-epoch series of unequal length (None = missing)."""
    import numpy as np

    length = max((len(s) for s in series), default=0)
    a = np.full((len(series), length), np.nan)
    for i, s in enumerate(series):
        a[i, : len(s)] = [np.nan if v is None else v for v in s]
    a = np.where(np.isfinite(a), a, np.nan)
    count = np.isfinite(a).sum(axis=0)
    ok = count > 0
    mean = np.where(ok, np.nansum(a, axis=0) / np.maximum(count, 1), np.nan)
    lo = np.where(ok, np.where(np.isfinite(a), a, np.inf).min(axis=0), np.nan)
    hi = np.where(ok, np.where(np.isfinite(a), a, -np.inf).max(axis=0), np.nan)
    return np.arange(1, length + 1), mean, lo, hi


def _colors(n):
    palette = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]
    return [palette[i % len(palette)] for i in range(n)]


def _seed_note(runs) -> str:
    return f"seed {runs[0]['config']['seed']}" + (f", one of {len(runs)}" if len(runs) > 1 else "")


def _weight_columns(grads):
    return [i for i, layer in enumerate(grads["layers"]) if layer["kind"] == "weight"]


def figure_curves(unit: Unit, path: Path) -> tuple[Path, str]:
    """Loss and metric per epoch, train and validation, mean over seeds with a min-max band."""
    from matplotlib.ticker import MaxNLocator

    fig = _new_figure(11, 3.8)
    ax_loss, ax_metric = fig.subplots(1, 2)
    d = next(iter(unit.runs.values()))[0]["dataset"]
    notes = set()
    for model, color in zip(unit.models, _colors(len(unit.models))):
        runs = unit.runs[model]
        for key, ax, style, split in (("loss", ax_loss, "-", "train"), ("val_loss", ax_loss, "--", "val"),
                                      ("metric", ax_metric, "-", "train"), ("val_metric", ax_metric, "--", "val")):
            x, mean, lo, hi = _mean_band([r["history"][key] for r in runs])
            if not len(x):
                continue
            if ax is ax_loss:
                mean, clamped, _ = _log_values(mean)
                lo, _, _ = _log_values(lo)
                hi, _, _ = _log_values(hi)
                if clamped:
                    notes.add(f"losses below {LOG_FLOOR:g} drawn at {LOG_FLOOR:g}")
            ax.plot(x, mean, style, color=color, marker="." if len(x) < 30 else None, label=f"{model} ({split})")
            if len(runs) > 1:
                ax.fill_between(x, lo, hi, color=color, alpha=0.15, linewidth=0)
        if any(r.get("diverged") for r in runs):
            notes.add("a curve that stops early is a run that diverged")
    ax_loss.set_yscale("log")
    ax_loss.set(title="loss (log scale)", xlabel="epoch", ylabel=d["loss"])
    ax_metric.axhline(d["chance"], color="grey", linestyle=":", linewidth=1, label=f"chance {_fmt(d['chance'])}")
    ax_metric.axhline(d["target"], color="green", linestyle=":", linewidth=1, label=f"target {_fmt(d['target'])}")
    better = "higher" if d["metric_mode"] == "max" else "lower"
    ax_metric.set(title=f"{d['metric']} ({better} is better)", xlabel="epoch", ylabel=d["metric"])
    for ax in (ax_loss, ax_metric):
        ax.grid(True, alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_metric.legend(fontsize=7, loc="best")
    seeds = max(len(r) for r in unit.runs.values())
    caption = (f"Loss and {d['metric']} per epoch, train (solid) and validation (dashed)"
               + (f", mean over {seeds} seeds with a min-max band" if seeds > 1 else ", one seed")
               + "".join(f"; {n}" for n in sorted(notes)) + ".")
    return _save(fig, path), caption


def _flow_steps(steps):
    """Indices of the first, middle and last recorded steps."""
    if not steps:
        return []
    middle = min(range(len(steps)), key=lambda i: abs(steps[i] - steps[-1] / 2))
    return sorted({0, middle, len(steps) - 1})


def figure_gradient_flow(unit: Unit, path: Path) -> tuple[Path, str] | None:
    """Per-weight-layer gradient norm against depth at the start, middle and end of training."""
    from matplotlib.ticker import MaxNLocator

    models = [m for m in unit.models if unit.runs[m][0].get("gradients")]
    if not models:
        return None
    fig = _new_figure(min(4.2 * len(models), 14), 3.8)
    axes = fig.subplots(1, len(models), sharey=True, squeeze=False)[0]
    notes = set()
    for ax, model in zip(axes, models):
        runs = unit.runs[model]
        g = runs[0]["gradients"]
        cols = _weight_columns(g)
        picks = _flow_steps(g["steps"])
        for i, color in zip(picks, ["#9ecae1", "#3182bd", "#08306b"][-len(picks):]):
            y, clamped, nonfinite = _log_values([g["norms"][i][c] for c in cols])
            ax.plot(range(1, len(cols) + 1), y, marker="o", markersize=3, color=color, label=f"step {g['steps'][i]}")
            if clamped:
                notes.add(f"zeros drawn at {LOG_FLOOR:g}")
            if nonfinite:
                notes.add("non-finite norms left out")
        ax.set_yscale("log")
        ax.set(title=f"{model} ({_seed_note(runs)})", xlabel="weight layer (1 = input side)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("gradient L2 norm (log)")
    caption = ("Gradient flow: the L2 norm of each weight layer's raw gradient (before clipping) against depth, "
               "at the first, middle and last recorded step; normalization layers left out, as in the verdicts"
               + "".join(f"; {n}" for n in sorted(notes)) + ".")
    return _save(fig, path), caption


def figure_through_time(unit: Unit, path: Path) -> tuple[Path, str] | None:
    """Recurrent nets: the loss's gradient w.r.t. each input step, at initialization, mid-training and the end."""
    models = [m for m in unit.models if (unit.runs[m][0].get("temporal") or {}).get("profiles")]
    if not models:
        return None
    fig = _new_figure(min(4.2 * len(models), 14), 3.8)
    axes = fig.subplots(1, len(models), sharey=True, squeeze=False)[0]
    notes = set()
    for ax, model in zip(axes, models):
        runs = unit.runs[model]
        t = runs[0]["temporal"]
        profiles, epochs = t["profiles"], t.get("epochs") or list(range(len(t["profiles"])))
        picks = sorted({0, len(profiles) // 2, len(profiles) - 1})
        for i, color in zip(picks, ["#c7e9c0", "#41ab5d", "#00441b"][-len(picks):]):
            y, clamped, nonfinite = _log_values(profiles[i])
            ax.plot(range(1, len(y) + 1), y, color=color, label=f"epoch {epochs[i]}" + (" (init)" if epochs[i] == 0 else ""))
            if clamped:
                notes.add(f"zeros drawn at {LOG_FLOOR:g}")
            if nonfinite:
                notes.add("non-finite values left out")
        ax.set_yscale("log")
        ax.set(title=f"{model} ({_seed_note(runs)})", xlabel="input step")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("|dL/dx_t| (log)")
    caption = ("Gradient through time: the mean L2 norm of the loss's gradient with respect to each input step, on a "
               "fixed probe batch, at initialization (epoch 0), mid-training and after the last epoch; a curve that "
               "falls towards step 1 is a gradient that vanishes on its way back through time"
               + "".join(f"; {n}" for n in sorted(notes)) + ".")
    return _save(fig, path), caption


def figure_heatmap(unit: Unit, path: Path) -> tuple[Path, str] | None:
    """A weight layer x recorded step map of gradient norms, one colour scale for the whole pair."""
    import numpy as np
    from matplotlib import colormaps
    from matplotlib.colors import LogNorm

    models = [m for m in unit.models if unit.runs[m][0].get("gradients") and unit.runs[m][0]["gradients"]["steps"]]
    if not models:
        return None
    maps, notes = {}, set()
    for model in models:
        g = unit.runs[model][0]["gradients"]
        cols = _weight_columns(g)
        a = np.array([[np.nan if v is None else v for v in row] for row in g["norms"]], dtype=float)[:, cols].T
        a, clamped, nonfinite = _log_values(a)
        maps[model] = a
        if clamped:
            notes.add(f"zeros clamped to {LOG_FLOOR:g} and drawn black")
        if nonfinite:
            notes.add("non-finite norms drawn grey")
    values = np.concatenate([a[np.isfinite(a)] for a in maps.values()])
    positive = values[values > LOG_FLOOR]
    vmin = float(positive.min()) if positive.size else LOG_FLOOR
    vmax = float(positive.max()) if positive.size else 1.0
    if vmax <= vmin:
        vmax = vmin * 10
    cmap = colormaps["viridis"].with_extremes(bad="lightgrey", under="black")
    norm = LogNorm(vmin=vmin, vmax=vmax)

    fig = _new_figure(min(4.6 * len(models), 15), 4.2)
    axes = fig.subplots(1, len(models), squeeze=False)[0]
    image = None
    for ax, model in zip(axes, models):
        runs = unit.runs[model]
        g = runs[0]["gradients"]
        a = maps[model]
        image = ax.imshow(a, aspect="auto", interpolation="nearest", cmap=cmap, norm=norm)
        steps = g["steps"]
        ticks = sorted({int(round(t)) for t in np.linspace(0, len(steps) - 1, min(6, len(steps)))})
        ax.set_xticks(ticks, [str(steps[t]) for t in ticks], fontsize=7)
        gaps = [i for i in range(len(steps) - 1) if steps[i + 1] - steps[i] > 1]
        if gaps:  # where the recorder switched from every step to every n-th
            ax.axvline(gaps[0] + 0.5, color="white", linestyle="--", linewidth=1.2)
        names = [g["layers"][c]["name"] for c in _weight_columns(g)]
        rows = range(len(names)) if len(names) <= 24 else sorted({int(round(t)) for t in np.linspace(0, len(names) - 1, 10)})
        ax.set_yticks(list(rows), [names[i] for i in rows], fontsize=7)
        ax.set(title=f"{model} ({_seed_note(runs)})", xlabel="step (recorded steps, evenly spaced)")
    fig.colorbar(image, ax=list(axes), label="gradient L2 norm (log)", extend="min" if any("black" in n for n in notes) else "neither")
    caption = ("Gradient norm of each weight layer (rows, input at the top) at each recorded step (columns: every step "
               "for the first steps, then every n-th; a dashed line marks the change), one colour scale for the pair"
               + "".join(f"; {n}" for n in sorted(notes)) + ".")
    return _save(fig, path), caption


def figure_global_norm(unit: Unit, path: Path) -> tuple[Path, str] | None:
    """The raw global gradient norm, the norm after clipping, and the clip rate per epoch."""
    models = [m for m in unit.models if unit.runs[m][0].get("gradients") and unit.runs[m][0]["gradients"]["steps"]]
    if not models:
        return None
    fig = _new_figure(min(4.2 * len(models), 14), 4.4)
    axes = fig.subplots(2, len(models), sharex="col", sharey="row", squeeze=False, gridspec_kw={"height_ratios": [3, 1]})
    notes = set()
    for col, model in enumerate(models):
        ax, ax_rate = axes[0, col], axes[1, col]
        runs = unit.runs[model]
        r = runs[0]
        g = r["gradients"]
        pre, clamped, nonfinite = _log_values(g["global_norm_pre"])
        marker = "." if len(g["steps"]) < 30 else None  # a run that diverged early has a handful of points
        ax.plot(g["steps"], pre, color="#1f77b4", linewidth=1, marker=marker, label="before clipping")
        clip = _clipping(r)
        if clip:
            post, c2, n2 = _log_values(g["global_norm_post"])
            clamped, nonfinite = clamped or c2, nonfinite or n2
            ax.plot(g["steps"], post, "--", color="#ff7f0e", linewidth=1, marker=marker, label="after clipping")
            rate = verdicts.clip_rate(r)
            title = f"{model} ({_seed_note(runs)})\n{clip}, clip rate {_pct(rate) if rate is not None else '–'}"
        else:
            title = f"{model} ({_seed_note(runs)})\nno clipping"
        rates = g["epoch"]["clip_rate"]
        if rates:
            per_epoch = (r["summary"].get("steps_run") or g.get("steps_seen") or 0) / len(rates)
            ax_rate.stairs(rates, [i * per_epoch for i in range(len(rates) + 1)], fill=True, color="grey", alpha=0.5)
        ax_rate.set_ylim(0, 1.05)
        ax_rate.set_xlabel("step")
        ax_rate.grid(True, alpha=0.3)
        if clamped:
            notes.add(f"zeros drawn at {LOG_FLOOR:g}")
        if nonfinite:
            notes.add("non-finite norms left out")
        if r.get("diverged") and r.get("diverged_step") is not None:
            ax.axvline(r["diverged_step"], color="red", linewidth=1, label=f"diverged, step {r['diverged_step']}")
        ax.axhline(verdicts.EXPLODING_NORM, color="red", linestyle=":", linewidth=1, label=f"exploding above {_fmt(verdicts.EXPLODING_NORM)}")
        ax.set_yscale("log")
        ax.set_title(title, fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    axes[0, 0].set_ylabel("global gradient L2 norm (log)")
    axes[1, 0].set_ylabel("clip rate\nper epoch")
    caption = ("Global gradient norm per recorded step, raw (before clipping) and, for clipped runs, after clipping; "
               "below, the fraction of each epoch's steps whose update clipping shrank"
               + "".join(f"; {n}" for n in sorted(notes)) + ".")
    return _save(fig, path), caption


def _sweep_axis(sweeps: list[dict]) -> str | None:
    """The swept key for the x axis: depth or length if swept, else the first numeric key with 2+ values."""
    keys = []
    for s in sweeps:
        keys += [k for k in s if k not in keys]
    varying = [k for k in keys if len({repr(s.get(k)) for s in sweeps}) > 1
               and all(isinstance(s.get(k), (int, float)) for s in sweeps)]
    for key in SWEEP_AXES:
        if key in varying:
            return key
    return varying[0] if varying else None


def _sweep_series(runs, axis):
    """`{(model, other sweep values): {x: [records]}}` for one swept group."""
    series: dict[tuple, dict] = {}
    for r in runs:
        sweep = r["config"]["sweep"]
        rest = tuple(sorted((k, v) for k, v in sweep.items() if k != axis))
        series.setdefault((r["config"]["model"], rest), {}).setdefault(sweep[axis], []).append(r)
    return series


def _series_label(model, rest):
    return model + (f" ({', '.join(f'{k}={v}' for k, v in rest)})" if rest else "")


def figure_sweep(runs: list[dict], axis: str, path: Path) -> tuple[Path, str]:
    """Final val score and first/last-layer gradient ratio against the swept value, per model."""
    import numpy as np

    series = _sweep_series(runs, axis)
    models = list(dict.fromkeys(m for m, _ in series))
    rests = list(dict.fromkeys(rest for _, rest in series))
    colors = dict(zip(models, _colors(len(models))))
    styles = dict(zip(rests, ["-", "--", ":", "-."] * 4))
    d = runs[0]["dataset"]
    fig = _new_figure(11, 4)
    ax_score, ax_ratio = fig.subplots(1, 2)
    notes = set()
    for (model, rest), points in series.items():
        xs = sorted(points)
        scores = [[r["summary"].get("final_val_metric") for r in points[x]] for x in xs]
        mean = np.array([np.mean(_finite(s)) if _finite(s) else np.nan for s in scores])
        lo = np.array([min(_finite(s)) if _finite(s) else np.nan for s in scores])
        hi = np.array([max(_finite(s)) if _finite(s) else np.nan for s in scores])
        label = _series_label(model, rest)
        ax_score.plot(xs, mean, styles[rest], marker="o", color=colors[model], label=label)
        if any(len(points[x]) > 1 for x in xs):
            ax_score.fill_between(xs, lo, hi, color=colors[model], alpha=0.15, linewidth=0)
        ratios = [_finite(verdict_ratio(r) for r in points[x]) for x in xs]
        through_time = any(verdicts.temporal_ratio(r) is not None for x in xs for r in points[x])
        y, clamped, _ = _log_values([statistics.median(v) if v else None for v in ratios])
        if clamped:
            notes.add(f"ratios below {LOG_FLOOR:g} drawn at {LOG_FLOOR:g}")
        if any(not v for v in ratios):
            notes.add("missing points: no gradient log or a non-finite ratio")
        ax_ratio.plot(xs, y, styles[rest], marker="o", color=colors[model], label=label + (" [early/late steps]" if through_time else ""))
    ax_score.axhline(d["chance"], color="grey", linestyle=":", linewidth=1, label=f"chance {_fmt(d['chance'])}")
    ax_score.axhline(d["target"], color="green", linestyle=":", linewidth=1, label=f"target {_fmt(d['target'])}")
    better = "higher" if d["metric_mode"] == "max" else "lower"
    ax_score.set(title=f"final val {d['metric']} ({better} is better)", xlabel=axis, ylabel=d["metric"])
    ax_ratio.axhline(1.0, color="grey", linewidth=0.8)
    ax_ratio.axhline(verdicts.VANISHING_RATIO, color="red", linestyle=":", linewidth=1, label=f"vanishing below {_fmt(verdicts.VANISHING_RATIO)}")
    ax_ratio.axhline(1 / verdicts.VANISHING_RATIO, color="purple", linestyle=":", linewidth=1, label=f"exploding above {_fmt(1 / verdicts.VANISHING_RATIO)}")
    ax_ratio.set_yscale("log")
    ax_ratio.set(title="gradient ratio the verdict uses (log)", xlabel=axis, ylabel="ratio")
    xs_all = sorted({x for points in series.values() for x in points})
    for ax in (ax_score, ax_ratio):
        ax.set_xticks(xs_all)
        ax.grid(True, which="both", alpha=0.3)
    ax_score.legend(fontsize=7)
    ax_ratio.legend(fontsize=7)
    seeds = max(len(v) for points in series.values() for v in points.values())
    caption = (f"Against `{axis}`: the final validation {d['metric']}"
               + (f" (mean over seeds, min-max band)" if seeds > 1 else "")
               + " and the gradient ratio the verdict uses" + (" (median over seeds)" if seeds > 1 else "")
               + ": first/last weight layer over epoch 1, or, marked [early/late steps], the gradient reaching the "
               "first input steps over that reaching the last ones at the end of training"
               + "".join(f"; {n}" for n in sorted(notes)) + ".")
    return _save(fig, path), caption


# ----------------------------------------------------------------------------- provenance


def _distinct(values) -> str:
    counts = Counter(values)
    if len(counts) == 1:
        return next(iter(counts))
    return "; ".join(f"{v} ({c} runs)" for v, c in counts.most_common())


def provenance_lines(records) -> list[str]:
    """Markdown bullets: suites, seeds, versions, hardware, git commit and dates."""
    lines = []
    suites: dict[str, list] = {}
    for r in records:
        suites.setdefault(r["config"]["suite"] or "(no suite)", []).append(r)
    for suite, runs in suites.items():
        seeds = sorted({r["config"]["seed"] for r in runs})
        epochs = sorted({r["config"]["epochs"] for r in runs})
        lines.append(f"- Suite `{suite}`: {len(runs)} runs, seeds {', '.join(map(str, seeds))}, "
                     f"{'/'.join(map(str, epochs))} epochs per run.")

    def env(r):
        return r.get("env") or {}

    lines.append("- Versions: " + _distinct(
        f"gradzoo {e.get('gradzoo')}, Keras {e.get('keras')}, backend {e.get('backend')} {e.get('backend_version')}, "
        f"Python {e.get('python')}" for e in map(env, records)) + ".")

    def hardware(e):
        h = e.get("hardware") or {}
        devices = ", ".join(h.get("devices") or []) or "none listed"
        return (f"{e.get('platform')}, {h.get('machine')}" + (f" ({h['processor']})" if h.get("processor") else "")
                + f", {h.get('cpu_count')} CPU cores, devices: {devices}")

    lines.append("- Hardware: " + _distinct(hardware(e) for e in map(env, records)) + ".")
    lines.append("- Git commit: " + _distinct(f"`{e.get('git_commit')}`" if e.get("git_commit") else "unknown"
                                               for e in map(env, records)) + ".")
    created = sorted(r.get("created", "") for r in records if r.get("created"))
    if created:
        lines.append(f"- Runs recorded: {created[0]}" + (f" to {created[-1]}" if created[-1] != created[0] else "") + " (UTC).")
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    lines.append(f"- Report generated: {now} (UTC), from {len(records)} records in `{RECORDS_SUBDIR}/`.")
    return lines


def thresholds_lines(records=()) -> list[str]:
    """Markdown bullets that explain how the verdicts are made (through time too, if `records` measured it)."""
    v = verdicts
    timed = [r for r in records if verdicts.temporal_ratio(r) is not None]
    edge = _pct(_edge_fraction(timed[0])) if timed else None
    through_time = [
        f"- **through time** (recurrent nets with a gradient-through-time profile: the L2 norm of the loss's gradient "
        f"with respect to each input step, on a fixed probe batch): the vanishing and exploding ratio tests use, instead "
        f"of the layer ratio, the gradient reaching the first {edge} of input steps over the one reaching the last {edge}, "
        "at the end of training."
    ] if timed else []
    return [
        f"- **vanishing**: the first weight layer's mean gradient norm over epoch 1 is below {_fmt(v.VANISHING_RATIO)} "
        "times the last weight layer's (the head). Normalization layers (BatchNorm/LayerNorm scale and offset) are left out.",
        f"- **exploding**: the run diverged (a non-finite loss or gradient stopped it), or the raw global gradient norm "
        f"(before clipping) exceeded {_fmt(v.EXPLODING_NORM)} at some step, or the first weight layer's gradient is more than "
        f"{_fmt(1 / v.VANISHING_RATIO)} times the last's. Clipping bounds the update, not the raw gradient, so a clipped "
        "run can be exploding and still train: its clip rate (the fraction of steps whose update clipping shrank) is given.",
        *through_time,
        "- **healthy**: neither. With several seeds the verdict is the most common one, and the others are named.",
        f"- **left chance level**: the best validation score beats the dataset's chance level by more than "
        f"{_fmt(LEFT_CHANCE_FRACTION)} of the distance from chance to the target (|target - chance|), in the metric's "
        "direction (higher or lower is better).",
        "- **reached the target**: the validation score at the end of an epoch is at least as good as the dataset's target; "
        "the epoch given is the first such epoch.",
        f"- Log-scale figures draw zeros at {LOG_FLOOR:g} and leave out non-finite values; each caption says when that happened.",
    ]


# ----------------------------------------------------------------------------- Markdown -> HTML


_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 1400px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #ddd; padding-bottom: .2em; }
h2 { border-bottom: 1px solid #eee; padding-bottom: .2em; margin-top: 2em; }
h3 { margin-top: 1.8em; }
code { background: #f3f3f3; padding: 0 .25em; border-radius: 3px; font-size: 90%; }
.table { overflow-x: auto; }
table { border-collapse: collapse; font-size: 75%; margin: 1em 0; }
td code { white-space: nowrap; }
th, td { border: 1px solid #ccc; padding: .25em .5em; text-align: left; vertical-align: top; }
th { background: #f5f5f5; }
tr:nth-child(even) td { background: #fafafa; }
figure { margin: 1em 0 1.5em; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 85%; color: #555; }
"""


def _inline(text: str) -> str:
    """Escapes text and renders the Markdown this report uses inline: `code`, **bold**, *italic*, [links](x)."""
    parts = re.split(r"(`[^`]*`)", text)
    out = []
    for part in parts:
        if part.startswith("`") and part.endswith("`") and len(part) >= 2:
            out.append(f"<code>{html.escape(part[1:-1])}</code>")
            continue
        part = html.escape(part, quote=False)
        part = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", part)
        part = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"<em>\1</em>", part)
        part = re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", lambda m: f'<a href="{html.escape(m[2])}">{m[1]}</a>', part)
        out.append(part)
    return "".join(out)


def _table_cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def markdown_to_html(text: str, base_dir: Path, title: str = "gradzoo report") -> str:
    """The report's Markdown as one HTML page; images become base64 data URIs read from `base_dir`.

    Only the subset `report.md` uses is understood: `#` headings, paragraphs,
    `-` lists, pipe tables, `![caption](file.png)` images and inline code,
    bold, italic and links.
    """
    body, paragraph, items = [], [], []
    lines = text.splitlines()

    def flush():
        if paragraph:
            body.append(f"<p>{_inline(' '.join(paragraph))}</p>")
            paragraph.clear()
        if items:
            body.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in items) + "</ul>")
            items.clear()

    i = 0
    while i < len(lines):
        line = lines[i].rstrip()
        image = re.fullmatch(r"!\[([^\]]*)\]\(([^)]+)\)", line.strip())
        heading = re.match(r"(#{1,4}) (.*)", line)
        if not line.strip():
            flush()
        elif heading:
            flush()
            level, content = len(heading[1]), heading[2]
            body.append(f'<h{level} id="{_slug(content).lower()}">{_inline(content)}</h{level}>')
        elif image:
            flush()
            data = base64.b64encode((base_dir / image[2]).read_bytes()).decode("ascii")
            caption = ""
            if i + 1 < len(lines) and lines[i + 1].startswith("*") and not lines[i + 1].startswith("**"):
                i += 1
                caption = f"<figcaption>{_inline(lines[i].strip().strip('*'))}</figcaption>"
            body.append(f'<figure><img alt="{html.escape(image[1])}" src="data:image/png;base64,{data}">{caption}</figure>')
        elif line.startswith("|"):
            flush()
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                rows.append(_table_cells(lines[i]))
                i += 1
            i -= 1
            head, rest = rows[0], [r for r in rows[1:] if not all(re.fullmatch(r":?-+:?", c) for c in r)]
            body.append('<div class="table"><table><thead><tr>' + "".join(f"<th>{_inline(c)}</th>" for c in head)
                        + "</tr></thead><tbody>"
                        + "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in rest)
                        + "</tbody></table></div>")
        elif line.startswith("- "):
            if paragraph:
                flush()
            items.append(line[2:])
        elif items and line.startswith("  "):
            items[-1] += " " + line.strip()
        else:
            if items:
                flush()
            paragraph.append(line.strip())
        i += 1
    flush()
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")


# ----------------------------------------------------------------------------- the report


def _check_results_dir(results_dir) -> list[dict]:
    path = Path(results_dir)
    if not path.exists():
        raise ValueError(f"Results directory {str(path)!r} does not exist; run `gradzoo run --out {path}` first "
                         "or point --results at the directory it wrote.")
    if not path.is_dir():
        raise ValueError(f"--results {str(path)!r} is a file; point it at the directory `gradzoo run --out` wrote.")
    records = load_records(path)
    if not records:
        raise ValueError(f"{str(path)!r} holds no run records ({RECORDS_SUBDIR}/*.json); "
                         f"run `gradzoo run --out {path}` first.")
    return records


def _figure_block(result, rel: str, alt: str) -> list[str]:
    if result is None:
        return []
    path, caption = result
    return [f"![{alt}]({rel}/{path.name})", f"*{caption}*", ""]


def _sweep_table(runs, axis) -> list[str]:
    """Verdict and final val score per model (rows) and swept value (columns)."""
    series = _sweep_series(runs, axis)
    xs = sorted({x for points in series.values() for x in points})
    metric = runs[0]["dataset"]["metric"]
    lines = ["| model | " + " | ".join(f"{axis}={x}" for x in xs) + " |", "|---|" + "---|" * len(xs)]
    for (model, rest), points in series.items():
        cells = []
        for x in xs:
            if x not in points:
                cells.append("–")
                continue
            words = Counter(verdicts.verdict(r) for r in points[x]).most_common(1)[0][0]
            scores = _finite(r["summary"].get("final_val_metric") for r in points[x])
            cells.append(f"{words}, {_fmt(statistics.mean(scores)) if scores else '–'}")
        lines.append(f"| `{model}`{(' (' + ', '.join(f'{k}={v}' for k, v in rest) + ')') if rest else ''} | " + " | ".join(cells) + " |")
    return lines + ["", f"*Cells: the verdict and the final validation {metric} (mean over seeds).*", ""]


def build_report(results_dir) -> dict:
    """Writes `report.md`, `report.html` and `figures/*.png` from the records in `results_dir`.

    The tables (`convergence.csv`, `gradients.csv`, `comparison.csv`/`.md`) are
    regenerated first. PNGs in `figures/` that this report no longer draws are
    removed, so the folder always matches the report.

    Args:
        results_dir: the directory `gradzoo run --out` wrote (it holds `records/`).

    Returns:
        A dict of paths: `markdown`, `html`, `figures_dir`, `figures` (a list of
        the PNGs), and the tables' paths (`convergence`, `gradients`,
        `comparison_csv`, `comparison_md`).

    Raises:
        ValueError: one sentence, if `results_dir` is missing, is a file, or
            holds no records.
    """
    records = _check_results_dir(results_dir)
    out = Path(results_dir)
    paths = dict(write_tables(out))
    figures_dir = out / FIGURES_SUBDIR
    figures_dir.mkdir(exist_ok=True)
    rel = FIGURES_SUBDIR
    drawn: list[Path] = []

    md = ["# gradzoo report: vanishing and exploding gradients, pair by pair", ""]
    md += [f"Generated by `gradzoo report` from the run records in `{RECORDS_SUBDIR}/`; every number and figure "
           "below is computed from them, and rerunning the command regenerates it all.", ""]
    md += ["## Where the numbers came from", "", *provenance_lines(records), ""]
    md += ["## How the verdicts are made", "", *thresholds_lines(records), ""]

    comparison = comparison_table(convergence_table(records))
    md += ["## Comparison", "",
           "Each baseline beside each mitigated partner run in the same group and sweep point; mean ± std over seeds. "
           "Also in [comparison.csv](comparison.csv), with per-run rows in [convergence.csv](convergence.csv) and "
           "per-layer gradient norms in [gradients.csv](gradients.csv).", ""]
    md += [comparison_markdown(comparison).rstrip("\n") if not comparison.empty else "No baseline has a mitigated partner in these records.", ""]

    md += ["## Pairs", ""]
    for unit in group_units(records):
        first = next(iter(unit.runs.values()))[0]
        d = first["dataset"]
        seeds = sorted({r["config"]["seed"] for runs in unit.runs.values() for r in runs})
        epochs = sorted({r["config"]["epochs"] for runs in unit.runs.values() for r in runs})
        better = "higher" if d["metric_mode"] == "max" else "lower"
        md += [f"### {unit.title}", ""]
        md += [f"Dataset `{d['name']}`, {d['metric']} ({better} is better; chance {_fmt(d['chance'])}, target "
               f"{_fmt(d['target'])}); seeds {', '.join(map(str, seeds))}; {'/'.join(map(str, epochs))} epochs.", ""]
        md += [f"- {verdict_in_words(unit.runs[m])}" for m in unit.models]
        md += [f"- {s}" for s in (_versus(unit, m) for m in unit.models if m != unit.pair) if s]
        md += [""]
        for kind, draw in (("curves", figure_curves), ("gradient_flow", figure_gradient_flow),
                           ("through_time", figure_through_time), ("heatmap", figure_heatmap),
                           ("global_norm", figure_global_norm)):
            result = draw(unit, figures_dir / f"{unit.slug}_{kind}.png")
            if result is not None:
                drawn.append(result[0])
            md += _figure_block(result, rel, f"{unit.pair}: {kind.replace('_', ' ')}")

    swept: dict[tuple, list[dict]] = {}
    for r in records:
        if r["config"]["sweep"]:
            swept.setdefault((r["config"]["suite"], r["config"]["group"], r["config"]["dataset"]), []).append(r)
    sweep_blocks = []
    for (suite, group, dataset), runs in swept.items():
        axis = _sweep_axis([r["config"]["sweep"] for r in runs])
        if axis is None:
            continue
        result = figure_sweep(runs, axis, figures_dir / _slug(f"{suite}_{group}_{dataset}_sweep_{axis}.png"))
        drawn.append(result[0])
        sweep_blocks += [f"### {suite} / {group}: against `{axis}`", "", *_sweep_table(runs, axis),
                         *_figure_block(result, rel, f"{group}: sweep over {axis}")]
    if sweep_blocks:
        md += ["## Sweeps", "", *sweep_blocks]

    for stale in figures_dir.glob("*.png"):
        if stale not in drawn:
            stale.unlink()
    text = "\n".join(md).rstrip("\n") + "\n"
    paths["markdown"] = out / "report.md"
    paths["html"] = out / "report.html"
    paths["markdown"].write_text(text, encoding="utf-8")
    paths["html"].write_text(markdown_to_html(text, out), encoding="utf-8")
    paths["figures_dir"] = figures_dir
    paths["figures"] = drawn
    return paths
