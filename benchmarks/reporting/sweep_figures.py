"""Figures across runs of a group: a sweep (score and gradient ratio against depth or length)
and tuning sensitivity (best validation score against each tried setting)."""

from __future__ import annotations

import re
import statistics
from pathlib import Path

from gradzoo.benchmarks.analysis import verdicts
from gradzoo.benchmarks.analysis.formatting import finite_values, format_number, md_code, md_escape
from gradzoo.benchmarks.harness.records import RunRecord
from gradzoo.benchmarks.harness.plan.tuning import setting_of
from gradzoo.benchmarks.reporting.figures import LOG_FLOOR, _colors, _log_values, _new_figure, _save

# Sweep keys drawn on the x axis in preference to the others.
SWEEP_AXES = ("model.depth", "dataset.length")


def sweep_axis(sweeps: list[dict]) -> str | None:
    """The swept key for the x axis: depth or length if swept, else the first numeric key with 2+ values."""
    keys = []
    for s in sweeps:
        keys += [k for k in s if k not in keys]
    varying = [k for k in keys if len({repr(s.get(k)) for s in sweeps}) > 1
               and all(isinstance(s.get(k), (int, float)) for s in sweeps)]  # fmt: skip
    for key in SWEEP_AXES:
        if key in varying:
            return key
    return varying[0] if varying else None


def sweep_series(runs: list[RunRecord], axis: str) -> dict:
    """`{(registry model, other sweep values): {x: [records]}}` for one swept group."""
    series: dict[tuple, dict] = {}
    for r in runs:
        sweep = r.config.sweep
        rest = tuple(sorted((k, v) for k, v in sweep.items() if k != axis))
        series.setdefault((r.config.model, rest), {}).setdefault(sweep[axis], []).append(r)
    return series


def series_label(points: dict, axis: str, rest) -> str:
    """The name of a swept line: the trained architectures with the swept value as `N` (`plain_N_1d`)."""
    labels = {x: runs[0].label for x, runs in points.items()}
    templates = {re.sub(rf"(?<![0-9.]){re.escape(str(x))}(?![0-9.])", "N", label) for x, label in labels.items()}
    name = templates.pop() if len(templates) == 1 else next(iter(points.values()))[0].config.model
    if "N" not in name:
        name += f" ({axis.split('.')[-1]}=N)"
    return name + (f" ({', '.join(f'{k}={v}' for k, v in rest)})" if rest else "")


def figure_sweep(runs: list[RunRecord], axis: str, path: Path) -> tuple[Path, str]:
    """Final val score and the verdict's gradient ratio against the swept value, per model."""
    import numpy as np

    series = sweep_series(runs, axis)
    models = list(dict.fromkeys(m for m, _ in series))
    rests = list(dict.fromkeys(rest for _, rest in series))
    colors = dict(zip(models, _colors(len(models))))
    styles = dict(zip(rests, ["-", "--", ":", "-."] * 4))
    d = runs[0].dataset
    fig = _new_figure(11, 4)
    ax_score, ax_ratio = fig.subplots(1, 2)
    notes = set()
    for (model, rest), points in series.items():
        xs = sorted(points)
        scores = [finite_values(r.summary.final_val_metric for r in points[x]) for x in xs]
        mean = np.array([np.mean(s) if s else np.nan for s in scores])
        lo = np.array([min(s) if s else np.nan for s in scores])
        hi = np.array([max(s) if s else np.nan for s in scores])
        label = series_label(points, axis, rest)
        ax_score.plot(xs, mean, styles[rest], marker="o", color=colors[model], label=label)
        if any(len(points[x]) > 1 for x in xs):
            ax_score.fill_between(xs, lo, hi, color=colors[model], alpha=0.15, linewidth=0)
        ratios = [finite_values(r.verdict_ratio for r in points[x]) for x in xs]
        through_time = any(r.temporal_ratio is not None for x in xs for r in points[x])
        y, clamped, _ = _log_values([statistics.median(v) if v else None for v in ratios])
        if clamped:
            notes.add(f"ratios below {LOG_FLOOR:g} drawn at {LOG_FLOOR:g}")
        if any(not v for v in ratios):
            notes.add("missing points: no gradient log or a non-finite ratio")
        ax_ratio.plot(xs, y, styles[rest], marker="o", color=colors[model], label=label + (" [early/late steps]" if through_time else ""))
    ax_score.axhline(d.chance, color="grey", linestyle=":", linewidth=1, label=f"chance {format_number(d.chance)}")
    ax_score.axhline(d.target, color="green", linestyle=":", linewidth=1, label=f"target {format_number(d.target)}")
    ax_score.set(title=f"final val {d.metric} ({d.better} is better)", xlabel=axis, ylabel=d.metric)
    ax_ratio.axhline(1.0, color="grey", linewidth=0.8)
    ax_ratio.axhline(verdicts.VANISHING_RATIO, color="red", linestyle=":", linewidth=1, label=f"vanishing below {format_number(verdicts.VANISHING_RATIO)}")
    ax_ratio.axhline(1 / verdicts.VANISHING_RATIO, color="purple", linestyle=":", linewidth=1, label=f"exploding above {format_number(1 / verdicts.VANISHING_RATIO)}")
    ax_ratio.set_yscale("log")
    ax_ratio.set(title="gradient ratio the verdict uses (log)", xlabel=axis, ylabel="ratio")
    xs_all = sorted({x for points in series.values() for x in points})
    for ax in (ax_score, ax_ratio):
        ax.set_xticks(xs_all)
        ax.grid(True, which="both", alpha=0.3)
    ax_score.legend(fontsize=7)
    ax_ratio.legend(fontsize=7)
    seeds = max(len(v) for points in series.values() for v in points.values())
    caption = (f"Against {md_code(axis)}: the final validation {md_escape(d.metric)}"
               + (" (mean over seeds, min-max band)" if seeds > 1 else "")
               + " and the gradient ratio the verdict uses" + (" (median over seeds)" if seeds > 1 else "")
               + ": first/last weight layer over epoch 1, or, marked [early/late steps], the gradient reaching the "
               "first input steps over that reaching the last ones at the end of training"
               + "".join(f"; {n}" for n in sorted(notes)) + ".")  # fmt: skip
    return _save(fig, path), caption


def figure_sensitivity(trials: list[RunRecord], chosen: dict, path: Path) -> tuple[Path, str] | None:
    """Best validation score against each tried value of the first searched key, one line per model.

    Args:
        trials: the tuning trials of one group (any sweep points: one panel each).
        chosen: `{(sweep label, label): setting}` of the winners, marked on the lines.
        path: where the PNG goes.
    """
    import numpy as np

    if not trials:
        return None
    keys = _searched_keys(trials)
    if not keys:
        return None
    key = keys[0]
    points = list(dict.fromkeys(r.sweep_label for r in trials))
    d = trials[0].dataset
    fig = _new_figure(min(4.6 * len(points), 15), 3.9)
    axes = fig.subplots(1, len(points), sharey=True, squeeze=False)[0]
    labels = list(dict.fromkeys(r.label for r in trials))
    colors = dict(zip(labels, _colors(len(labels))))
    values = [setting_of(r, [key])[key] for r in trials]
    log_x = all(isinstance(v, (int, float)) and v > 0 for v in values) and max(values) / min(values) >= 10
    notes = set()
    for ax, point in zip(axes, points):
        for label in labels:
            runs = sorted((r for r in trials if r.sweep_label == point and r.label == label),
                          key=lambda r: setting_of(r, [key])[key])  # fmt: skip
            if not runs:
                continue
            xs = [setting_of(r, [key])[key] for r in runs]
            ys = [np.nan if r.diverged or r.best_score is None else r.best_score for r in runs]
            ax.plot(xs, ys, "-o", color=colors[label], label=label, markersize=4)
            bad = [x for x, r in zip(xs, runs) if r.diverged or r.best_score is None]
            if bad:
                ax.plot(bad, [d.chance] * len(bad), "x", color=colors[label], markersize=8)
                notes.add(f"x: a trial that diverged, drawn at chance ({format_number(d.chance)})")
            pick = chosen.get((point, label), {}).get(key)
            if pick is not None and pick in xs:
                y = ys[xs.index(pick)]
                ax.plot([pick], [y], "*", color=colors[label], markersize=14, markeredgecolor="black")
        if log_x:
            ax.set_xscale("log")
        ax.axhline(d.target, color="green", linestyle=":", linewidth=1)
        ax.set(title=point or "all runs", xlabel=key)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_ylabel(f"best val {d.metric} ({d.better} is better)")
    caption = (f"Tuning sensitivity: the best validation {md_escape(d.metric)} of each trial against {md_code(key)}, one line per model, on "
               f"the tuning seed; a star marks each model's chosen setting, the dotted line the target "
               f"{format_number(d.target)}" + "".join(f"; {n}" for n in sorted(notes)) + ".")  # fmt: skip
    return _save(fig, path), caption


def _searched_keys(trials: list[RunRecord]) -> list[str]:
    """The `target.parameter` keys whose values differ between a group's trials."""
    seen: dict[str, set] = {}
    for r in trials:
        c = r.config
        for target, table in (("model", c.model_overrides), ("dataset", c.dataset_params), ("optimizer", c.optimizer)):
            for name, value in table.items():
                seen.setdefault(f"{target}.{name}", set()).add(repr(value))
    swept = set(trials[0].config.sweep)
    return [k for k, values in seen.items() if len(values) > 1 and k not in swept]
