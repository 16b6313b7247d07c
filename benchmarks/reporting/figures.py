"""The report's figures: one function per figure, records in, a PNG and its caption out.

Each `figure_*` function takes a `Unit` (a pair's runs, see
`gradzoo.benchmarks.report.group_units`) or a sweep's runs and a path, draws with
matplotlib's object-oriented API on the Agg canvas (never pyplot, so a user's
backend is untouched), and returns `(path, caption)`, or `None` when the records
hold nothing to draw. Captions are written from the data: a note is added when
zeros were clamped or non-finite values left out.
"""

from __future__ import annotations

import contextlib
import contextvars
import statistics
from pathlib import Path
from typing import TYPE_CHECKING

from gradzoo.benchmarks.analysis import verdicts
from gradzoo.benchmarks.analysis.formatting import finite_values, format_number, md_escape, percent
from gradzoo.benchmarks.storage import save_figure_atomic

if TYPE_CHECKING:
    from gradzoo.benchmarks.reporting.units import Unit

# Log-scale plots draw zeros (and anything smaller) at this floor.
LOG_FLOOR = 1e-30
FIGURE_DPI = 100
# Sweep keys drawn on the x axis in preference to the others.
SWEEP_AXES = ("model.depth", "dataset.length")


def _new_figure(width, height):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=FIGURE_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


# Off inside `names_only()`: rendering and quantizing the PNGs is nearly all of a report's time.
_RENDER = contextvars.ContextVar("gradzoo_render_figures", default=True)


@contextlib.contextmanager
def names_only():
    """Inside this block figures are laid out and captioned but no PNG is rendered or written.

    `gradzoo regenerate --check` compares a report's text and its figures' names
    with the committed ones (PNG bytes vary with the matplotlib version), so it
    needs the names and captions the figure functions return, not the pixels.
    """
    token = _RENDER.set(False)
    try:
        yield
    finally:
        _RENDER.reset(token)


def _save(fig, path: Path) -> Path:
    if not _RENDER.get():
        return Path(path)
    return save_figure_atomic(fig, path, FIGURE_DPI)


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
    return f"seed {runs[0].config.seed}" + (f", one of {len(runs)}" if len(runs) > 1 else "")


def figure_curves(unit: Unit, path: Path) -> tuple[Path, str]:
    """Loss and metric per epoch, train and validation, mean over seeds with a min-max band."""
    from matplotlib.ticker import MaxNLocator

    fig = _new_figure(11, 3.8)
    ax_loss, ax_metric = fig.subplots(1, 2)
    d = next(iter(unit.runs.values()))[0].dataset
    notes = set()
    for model, color in zip(unit.models, _colors(len(unit.models))):
        runs = unit.runs[model]
        for key, ax, style, split in (("loss", ax_loss, "-", "train"), ("val_loss", ax_loss, "--", "val"),
                                      ("metric", ax_metric, "-", "train"), ("val_metric", ax_metric, "--", "val")):
            x, mean, lo, hi = _mean_band([getattr(r.history, key) for r in runs])
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
        if any(r.diverged for r in runs):
            notes.add("a curve that stops early is a run that diverged")
    ax_loss.set_yscale("log")
    ax_loss.set(title="loss (log scale)", xlabel="epoch", ylabel=d.loss)
    ax_metric.axhline(d.chance, color="grey", linestyle=":", linewidth=1, label=f"chance {format_number(d.chance)}")
    ax_metric.axhline(d.target, color="green", linestyle=":", linewidth=1, label=f"target {format_number(d.target)}")
    ax_metric.set(title=f"{d.metric} ({d.better} is better)", xlabel="epoch", ylabel=d.metric)
    for ax in (ax_loss, ax_metric):
        ax.grid(True, alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_metric.legend(fontsize=7, loc="best")
    seeds = max(len(r) for r in unit.runs.values())
    caption = (f"Loss and {md_escape(d.metric)} per epoch, train (solid) and validation (dashed)"
               + (f", mean over {seeds} seeds with a min-max band" if seeds > 1 else ", one seed")
               + "".join(f"; {n}" for n in sorted(notes)) + ".")
    return _save(fig, path), caption


def _flow_steps(steps):
    """Indices of the first, middle and last recorded steps."""
    if not steps:
        return []
    middle = min(range(len(steps)), key=lambda i: abs(steps[i] - steps[-1] / 2))
    return sorted({0, middle, len(steps) - 1})


def _profile_panels(unit: Unit, models, profiles, palette, xlabel, ylabel, nonfinite_note, integer_x=False, **style):
    """One log-scale panel per model, three profiles each (start, middle, end).

    `profiles(record)` returns `[(y_values, label), ...]` for the record of the
    model's first seed; `style` goes to `ax.plot`. Returns the figure and the
    notes (clamped zeros, left-out values) its caption must carry.
    """
    from matplotlib.ticker import MaxNLocator

    fig = _new_figure(min(4.2 * len(models), 14), 3.8)
    axes = fig.subplots(1, len(models), sharey=True, squeeze=False)[0]
    notes = set()
    for ax, model in zip(axes, models):
        runs = unit.runs[model]
        curves = profiles(runs[0])
        for (values, label), color in zip(curves, palette[-len(curves):]):
            y, clamped, nonfinite = _log_values(values)
            ax.plot(range(1, len(y) + 1), y, color=color, label=label, **style)
            if clamped:
                notes.add(f"zeros drawn at {LOG_FLOOR:g}")
            if nonfinite:
                notes.add(nonfinite_note)
        ax.set_yscale("log")
        ax.set(title=f"{model} ({_seed_note(runs)})", xlabel=xlabel)
        if integer_x:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_ylabel(ylabel)
    return fig, notes


def figure_gradient_flow(unit: Unit, path: Path) -> tuple[Path, str] | None:
    """Per-weight-layer gradient norm against depth at the start, middle and end of training."""
    models = [m for m in unit.models if unit.runs[m][0].gradients]
    if not models:
        return None

    def profiles(record):
        g = record.gradients
        cols = g.weight_columns
        return [([g.norms[i][c] for c in cols], f"step {g.steps[i]}") for i in _flow_steps(g.steps)]

    fig, notes = _profile_panels(
        unit, models, profiles, ["#9ecae1", "#3182bd", "#08306b"], "weight layer (1 = input side)",
        "gradient L2 norm (log)", "non-finite norms left out", integer_x=True, marker="o", markersize=3,
    )
    caption = ("Gradient flow: the L2 norm of each weight layer's raw gradient (before clipping) against depth, "
               "at the first, middle and last recorded step; normalization layers left out, as in the verdicts"
               + "".join(f"; {n}" for n in sorted(notes)) + ".")
    return _save(fig, path), caption


def figure_through_time(unit: Unit, path: Path) -> tuple[Path, str] | None:
    """Recurrent nets: the loss's gradient w.r.t. each input step, at initialization, mid-training and the end."""
    models = [m for m in unit.models if unit.runs[m][0].temporal and unit.runs[m][0].temporal.profiles]
    if not models:
        return None

    def profiles(record):
        t = record.temporal
        curves, epochs = t.profiles, t.epochs or list(range(len(t.profiles)))
        picks = sorted({0, len(curves) // 2, len(curves) - 1})
        return [(curves[i], f"epoch {epochs[i]}" + (" (init)" if epochs[i] == 0 else "")) for i in picks]

    fig, notes = _profile_panels(
        unit, models, profiles, ["#c7e9c0", "#41ab5d", "#00441b"], "input step", "|dL/dx_t| (log)",
        "non-finite values left out",
    )
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

    models = [m for m in unit.models if unit.runs[m][0].gradients and unit.runs[m][0].gradients.steps]
    if not models:
        return None
    maps, notes = {}, set()
    for model in models:
        g = unit.runs[model][0].gradients
        cols = g.weight_columns
        a = np.array([[np.nan if v is None else v for v in row] for row in g.norms], dtype=float)[:, cols].T
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
        g = runs[0].gradients
        a = maps[model]
        image = ax.imshow(a, aspect="auto", interpolation="nearest", cmap=cmap, norm=norm)
        steps = g.steps
        ticks = sorted({int(round(t)) for t in np.linspace(0, len(steps) - 1, min(6, len(steps)))})
        ax.set_xticks(ticks, [str(steps[t]) for t in ticks], fontsize=7)
        gaps = [i for i in range(len(steps) - 1) if steps[i + 1] - steps[i] > 1]
        if gaps:  # where the recorder switched from every step to every n-th
            ax.axvline(gaps[0] + 0.5, color="white", linestyle="--", linewidth=1.2)
        names = [g.layers[c].name for c in g.weight_columns]
        rows = range(len(names)) if len(names) <= 24 else sorted({int(round(t)) for t in np.linspace(0, len(names) - 1, 10)})
        ax.set_yticks(list(rows), [names[i] for i in rows], fontsize=7)
        ax.set(title=f"{model} ({_seed_note(runs)})", xlabel="step (recorded steps, evenly spaced)")
    fig.colorbar(image, ax=list(axes), label="gradient L2 norm (log)", extend="min" if any("black" in n for n in notes) else "neither")
    caption = ("Gradient norm of each weight layer (rows, input at the top) at each recorded step (columns: every step "
               "for the first steps, then every n-th; a dashed line marks the change), one colour scale for the pair"
               + "".join(f"; {n}" for n in sorted(notes)) + ".")
    return _save(fig, path), caption


def _activation_log(record):
    acts = record.activations
    return acts if acts is not None and acts.layers and acts.per_epoch else None


def figure_activations(unit: Unit, path: Path) -> tuple[Path, str] | None:
    """Saturated (sigmoid/tanh) or dead (ReLU) fraction per activation layer and epoch."""
    import numpy as np
    from matplotlib import colormaps

    models = [m for m in unit.models if _activation_log(unit.runs[m][0])]
    if not models:
        return None
    fig = _new_figure(min(4.6 * len(models), 15), 4.2)
    axes = fig.subplots(1, len(models), squeeze=False)[0]
    cmap = colormaps["magma_r"].with_extremes(bad="lightgrey")
    image, kinds, level = None, set(), None
    for ax, model in zip(axes, models):
        runs = unit.runs[model]
        acts = _activation_log(runs[0])
        level = acts.saturation_level
        layers = acts.layers
        kinds.update(layer.activation for layer in layers)
        a = np.array([[np.nan if v is None else v for v in row] for row in acts.per_epoch], dtype=float).T
        image = ax.imshow(a, aspect="auto", interpolation="nearest", cmap=cmap, vmin=0, vmax=1)
        epochs = a.shape[1]
        ticks = sorted({int(round(t)) for t in np.linspace(0, epochs - 1, min(8, epochs))})
        ax.set_xticks(ticks, [str(t + 1) for t in ticks], fontsize=7)
        names = [layer.name for layer in layers]
        rows = range(len(names)) if len(names) <= 24 else sorted({int(round(t)) for t in np.linspace(0, len(names) - 1, 10)})
        ax.set_yticks(list(rows), [names[i] for i in rows], fontsize=7)
        used = "/".join(sorted({layer.activation for layer in layers}))
        ax.set(title=f"{model}, {used} ({_seed_note(runs)})", xlabel="epoch")
    fig.colorbar(image, ax=list(axes), label="fraction of units saturated or dead")
    saturating = sorted(kinds & {"sigmoid", "tanh"})
    parts = []
    if saturating:
        parts.append(f"saturated for {'/'.join(saturating)} (output within {format_number(1 - level)} of a bound)")
    if "relu" in kinds:
        parts.append("dead for ReLU (zero on every probe example)")
    caption = ("Fraction of units " + " or ".join(parts) + " in each activation layer (rows, input at the top) after "
               "each epoch, on a fixed probe batch of training inputs")
    if "sigmoid" in kinds:
        caption += ("; a sigmoid net's gradient can vanish with no unit saturated: the sigmoid's derivative is at "
                    "most 1/4, so each layer passes back at most a quarter of what its weights alone would")
    return _save(fig, path), caption + "."


def figure_global_norm(unit: Unit, path: Path) -> tuple[Path, str] | None:
    """The raw global gradient norm, the norm after clipping, and the clip rate per epoch."""
    models = [m for m in unit.models if unit.runs[m][0].gradients and unit.runs[m][0].gradients.steps]
    if not models:
        return None
    fig = _new_figure(min(4.2 * len(models), 14), 4.4)
    axes = fig.subplots(2, len(models), sharex="col", sharey="row", squeeze=False, gridspec_kw={"height_ratios": [3, 1]})
    notes = set()
    for col, model in enumerate(models):
        ax, ax_rate = axes[0, col], axes[1, col]
        runs = unit.runs[model]
        r = runs[0]
        g = r.gradients
        pre, clamped, nonfinite = _log_values(g.global_norm_pre)
        marker = "." if len(g.steps) < 30 else None  # a run that diverged early has a handful of points
        ax.plot(g.steps, pre, color="#1f77b4", linewidth=1, marker=marker, label="before clipping")
        clip = r.clipping
        if clip:
            post, c2, n2 = _log_values(g.global_norm_post)
            clamped, nonfinite = clamped or c2, nonfinite or n2
            ax.plot(g.steps, post, "--", color="#ff7f0e", linewidth=1, marker=marker, label="after clipping")
            rate = r.clip_rate
            title = f"{model} ({_seed_note(runs)})\n{clip}, clip rate {percent(rate) if rate is not None else '–'}"
        else:
            title = f"{model} ({_seed_note(runs)})\nno clipping"
        rates = g.epoch.clip_rate
        if rates:
            per_epoch = (r.summary.steps_run or g.steps_seen or 0) / len(rates)
            ax_rate.stairs(rates, [i * per_epoch for i in range(len(rates) + 1)], fill=True, color="grey", alpha=0.5)
        ax_rate.set_ylim(0, 1.05)
        ax_rate.set_xlabel("step")
        ax_rate.grid(True, alpha=0.3)
        if clamped:
            notes.add(f"zeros drawn at {LOG_FLOOR:g}")
        if nonfinite:
            notes.add("non-finite norms left out")
        if r.diverged and r.diverged_step is not None:
            ax.axvline(r.diverged_step, color="red", linewidth=1, label=f"diverged, step {r.diverged_step}")
        ax.axhline(verdicts.EXPLODING_NORM, color="red", linestyle=":", linewidth=1, label=f"exploding above {format_number(verdicts.EXPLODING_NORM)}")
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
