"""A `Diagnosis` for people and for machines: the terminal text, one HTML page with the
gradient-flow figure (through `gradzoo.benchmarks.reporting.html.markdown_to_html`), and strict JSON."""

from __future__ import annotations

import dataclasses
import json
import math
import textwrap
from pathlib import Path

from gradzoo.benchmarks.analysis.formatting import format_number, percent
from gradzoo.benchmarks.analysis.verdicts import EXPLODING_NORM, VANISHING_RATIO
from gradzoo.benchmarks.storage import write_atomic

FIGURE_NAME = "doctor_gradient_flow.png"


def _n(value) -> str:
    return format_number(value)


def rule_text() -> str:
    """The doctor's verdict rule, with the harness's thresholds."""
    return (f"a weight layer is vanishing if its mean gradient norm over the probe is below {_n(VANISHING_RATIO)} of the "
            f"last weight layer's and exploding if above {_n(1 / VANISHING_RATIO)} times it (input steps likewise, against "
            f"the last 10% of steps); the model is exploding if a raw global gradient norm exceeds "
            f"{_n(EXPLODING_NORM)} or a step is non-finite (benchmarks.analysis.verdicts)")  # fmt: skip


def _span(region) -> str:
    return region["first"] if region["count"] == 1 else f"{region['first']} … {region['last']}"


def _ratio_range(region) -> str:
    lo, hi = region["ratio_min"], region["ratio_max"]
    if lo is None:
        return "ratio –"
    return f"ratio {_n(lo)}" if _n(lo) == _n(hi) else f"ratio {_n(lo)} … {_n(hi)}"


def _times(ratio) -> str:
    """`3e-7 of`, `12 times`: a ratio as prose (`0` is a gradient that underflowed or never arrived)."""
    if ratio == 0:
        return "0 (no gradient arrives at all) against"
    return f"{_n(ratio)} of" if ratio < 1 else f"{_n(ratio)} times"


def verdict_sentence(d) -> str:
    b = d.basis
    if b["diverged"]:
        why = f"a loss or gradient became non-finite at probe step {b['nonfinite_step']}"
    elif b["peak_global_norm"] is not None and b["peak_global_norm"] > EXPLODING_NORM:
        why = f"the raw global gradient norm peaked at {_n(b['peak_global_norm'])} (threshold {_n(EXPLODING_NORM)})"
    elif b["ratio"] is None:
        why = "no gradient ratio could be measured"
    elif b["basis"] == "early/late input steps":
        edge = percent(d.temporal["edge_fraction"])
        why = f"the gradient reaching the first {edge} of input steps is {_times(b['ratio'])} that reaching the last {edge}"
    else:
        why = f"the first weight layer's gradient is {_times(b['ratio'])} the last weight layer's"
    when = "over the probe training" if d.setup["probed"] else "at the given weights"
    return f"{d.verdict.upper()}: {why}, {when}."


def _where_sentence(d) -> str | None:
    w = d.where
    parts = []
    if w["per_layer_factor"] is not None and len(d.layers) > 2:
        parts.append(f"from the last weight layer back to the first, the gradient changes by ×{_n(w['per_layer_factor'])} "
                     "per layer on average")  # fmt: skip
    if w["crossing"]:
        c = w["crossing"]
        side = "below" if c["direction"] == "collapse" else "above"
        bound = VANISHING_RATIO if c["direction"] == "collapse" else 1 / VANISHING_RATIO
        parts.append(f"it is {side} {_n(bound)} {'of' if side == 'below' else 'times'} the last layer's from `{c['layer']}` down")
    if w["steepest"]:
        steps = ", ".join(f"`{s['layer']}` (×{_n(s['factor'])} against `{s['above']}`)" for s in w["steepest"])
        parts.append(f"steepest steps: {steps}")
    return "; ".join(parts) + "." if parts else None


def _global_sentence(d) -> str:
    g = d.global_norm
    text = f"{_n(g['init'])} at the given weights"
    if "probe_mean" in g:
        text += f"; over the probe mean {_n(g['probe_mean'])}, peak {_n(g['probe_max'])}"
        if "clipping" in d.anatomy.get("fixes", ()):
            text += f"; after clipping mean {_n(g['probe_after_clipping_mean'])}, {percent(g['clip_rate'] or 0)} of updates clipped"
        else:
            text += " (no clipping set)"
    return text + "."


def _units_lines(d) -> list[str]:
    a = d.activations
    if not a:
        return []
    lines = []
    for info, before, after in zip(a["layers"], a["init"], a["after"] or [None] * len(a["layers"])):
        what = "dead" if info["activation"] == "relu" else "saturated"
        change = percent(before) + ("" if after is None else f" → {percent(after)}")
        lines.append((info["activation"], what, info["name"], change))
    # One line per activation kind: a 50-layer net needs no 50 lines.
    out = []
    for kind in dict.fromkeys(line[0] for line in lines):
        rows = [line for line in lines if line[0] == kind]
        shown = ", ".join(f"{name} {change}" for _, _, name, change in rows[:4]) + (f", … ({len(rows)} layers)" if len(rows) > 4 else "")
        out.append(f"{kind} ({rows[0][1]} units, before → after the probe): {shown}")
    return out


def _header(d) -> list[str]:
    m, s = d.model, d.setup
    own = "assumed: the model is not compiled" if s["assumed"] else "the model's own"
    probe = (f"{s['steps']} steps of {s['batch_size']} on a copy, seed {s['seed']}" if s["probed"]
             else "none (see the notes)")  # fmt: skip
    return [
        f"gradzoo doctor: model `{m['name']}` ({m['type']}, {len(d.layers)} weight layers, {m['params']:,} parameters, "
        f"input {tuple(m['input_shape'])})",
        f"Data: {d.data['source']}, {d.data['examples']:,} examples.",
        f"Probe training: {probe}; loss {s['loss']}, optimizer {s['optimizer']} ({own}).",
    ]  # fmt: skip


def _region_cells(r) -> tuple[str, str, str, str]:
    unit = "layer" if r["kind"] == "layers" else "step"
    return _span(r), r["verdict"], f"{r['count']} {unit}{'s' if r['count'] != 1 else ''}", _ratio_range(r)


def _details(d) -> list[tuple[str, str]]:
    """(label, sentence) pairs: where, the global norm, units, through time."""
    out = []
    where = _where_sentence(d)
    if where:
        out.append(("Where", where))
    out.append(("Global gradient norm", _global_sentence(d)))
    units = _units_lines(d)
    if units:
        out.append(("Units", "; ".join(units) + "."))
    t = d.temporal
    if t is not None:
        after = "" if t["after"] is None else f", {_n(t['after_ratio'])} after the probe"
        out.append(("Through time", f"early/late-step gradient ratio {_n(t['init_ratio'])} at the given weights{after}."))
    return out


def _advice(d) -> tuple[str, list[tuple[str, str, str]]]:
    """The suggestions' heading (or the sentence that stands for none) and (change, why, evidence) triples."""
    if d.suggestions:
        heading = "Suggestions (ranked by how much of the network the problem covers and how strongly gradzoo's runs back the fix):"
        return heading, [(s["change"], s["why"], s["evidence"][0].upper() + s["evidence"][1:]) for s in d.suggestions]
    if d.verdict == "healthy":
        return "No change suggested: the gradient reaches every weight layer within the thresholds.", []
    return "No suggestion: none of the doctor's rules matches this model's architecture; the regions above show where to look.", []


REGIONS_HEADING = "Regions (each weight layer's gradient norm against the last weight layer's; input steps against the last ones):"


def diagnosis_text(d, width: int = 100) -> str:
    """The terminal summary of a `Diagnosis`."""
    wrap = textwrap.TextWrapper(width=width, break_on_hyphens=False)
    lines = []

    def para(text, indent=""):
        wrap.initial_indent = indent
        wrap.subsequent_indent = indent + "    "
        lines.extend(wrap.wrap(text))

    for line in _header(d):
        para(line)
    lines.append("")
    para("Verdict: " + verdict_sentence(d))
    lines.append("")
    lines.append(REGIONS_HEADING)
    for span, word, size, ratio in map(_region_cells, d.regions):
        para(f"{span}: {word} ({size}, {ratio})", "  ")
    for label, sentence in _details(d):
        para(f"{label}: {sentence}")
    lines.append("")
    heading, items = _advice(d)
    para(heading) if not items else lines.append(heading)
    for i, (change, why, evidence) in enumerate(items, 1):
        para(f"{i}. {change}", "  ")
        para(f"Why: {why}", "     ")
        para(f"Evidence: {evidence}", "     ")
    for note in d.notes:
        para(f"Note: {note}")
    para(f"Rule: {rule_text()}.")
    return "\n".join(lines) + "\n"


def _clean(value):
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return _clean(value.item())
    return value


def diagnosis_json(d) -> dict:
    """Strict-JSON-ready data: every field of the `Diagnosis`, non-finite numbers as `null`."""
    data = {f.name: getattr(d, f.name) for f in dataclasses.fields(d)}
    data["verdict_sentence"] = verdict_sentence(d)
    data["rule"] = rule_text()
    return {"schema": 1, **_clean(data)}


def figure(d, path: Path) -> tuple[Path, str]:
    """Gradient flow: each weight layer's norm at the given weights and over the probe; gradient through time if measured.

    Returns:
        The PNG's path and its caption.
    """
    from matplotlib.ticker import MaxNLocator

    from gradzoo.benchmarks.reporting.figures import LOG_FLOOR, _log_values, _new_figure, _save

    panels = 2 if d.temporal is not None else 1
    fig = _new_figure(6.5 * panels, 3.8)
    axes = fig.subplots(1, panels, squeeze=False)[0]
    ax = axes[0]
    x = range(1, len(d.layers) + 1)
    curves = [([layer["norm_init"] for layer in d.layers], "at the given weights", "#9ecae1")]
    if d.norms_from == "probe":
        curves.append(([layer["norm"] for layer in d.layers], f"mean over the {d.setup['steps']}-step probe", "#08306b"))
    clamped = False
    for values, label, color in curves:
        y, low, _ = _log_values(values)
        clamped |= low
        ax.plot(x, y, marker="o", markersize=3, color=color, label=label)
    last = d.layers[-1]["norm"] if d.layers else None
    if last:
        ax.axhline(last * VANISHING_RATIO, color="#d62728", linestyle=":", linewidth=1,
                   label=f"{format_number(VANISHING_RATIO)} × last layer (vanishing below)")  # fmt: skip
    ax.set_yscale("log")
    ax.set(title="across weight layers", xlabel="weight layer (1 = input side)", ylabel="gradient L2 norm (log)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    if d.temporal is not None:
        ax = axes[1]
        for values, label, color in ((d.temporal["init"], "at the given weights", "#c7e9c0"),
                                     (d.temporal["after"], "after the probe", "#00441b")):  # fmt: skip
            if values:
                y, low, _ = _log_values(values)
                clamped |= low
                ax.plot(range(1, len(y) + 1), y, color=color, label=label)
        ax.set_yscale("log")
        ax.set(title="gradient through time", xlabel="input step", ylabel="|dL/dx_t| (log)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"gradient flow of `{d.model['name']}`: {d.verdict}")
    caption = ("The L2 norm of each weight layer's raw gradient at the given weights and, averaged, over the probe "
               "training (normalization layers left out, as in the verdicts)"
               + ("; right: the gradient reaching each input step" if d.temporal is not None else "")
               + (f"; zeros drawn at {LOG_FLOOR:g}" if clamped else "") + ".")  # fmt: skip
    return _save(fig, path), caption


def diagnosis_markdown(d, caption: str = "") -> str:
    """The one-page report as Markdown (the HTML page renders it)."""
    lines = [f"# gradzoo doctor: `{d.model['name']}`", "", *[f"{line}  " for line in _header(d)], "",
             f"**Verdict: {verdict_sentence(d)}**", "", f"![gradient flow](figures/{FIGURE_NAME})", "",
             f"*{caption}*" if caption else "", "", REGIONS_HEADING, "",
             "| region | verdict | size | ratio to the last |", "|---|---|---|---|"]  # fmt: skip
    lines += [f"| {span} | {word} | {size} | {ratio.removeprefix('ratio ')} |" for span, word, size, ratio in map(_region_cells, d.regions)]
    lines.append("")
    lines += [f"- **{label}**: {sentence}" for label, sentence in _details(d)]
    heading, items = _advice(d)
    if items:  # "Suggestions (ranked by ...):" -> a short heading and the ranking in words under it
        title, _, ranking = heading.rstrip("):").partition(" (")
        lines += ["", f"## {title}", "", f"*{ranking[0].upper()}{ranking[1:]}.*", ""]
    else:
        lines += ["", heading, ""]
    for i, (change, why, evidence) in enumerate(items, 1):
        lines += [f"{i}. {change}", f"   - **Why**: {why}", f"   - **Evidence**: {evidence}"]
    lines.append("")
    lines += [f"*Note: {note}*\n" for note in d.notes]
    lines += [f"*Rule: {rule_text()}.*", ""]
    return "\n".join(lines)


def write_outputs(d, out_dir) -> dict:
    """Writes `doctor.html` (self-contained), `doctor.md`, `figures/doctor_gradient_flow.png` and `diagnosis.json`."""
    from gradzoo.benchmarks.reporting.html import markdown_to_html

    out = Path(out_dir)
    figures = out / "figures"
    fig_path, caption = figure(d, figures / FIGURE_NAME)
    markdown = diagnosis_markdown(d, caption)
    paths = {"figure": fig_path, "markdown": write_atomic(out / "doctor.md", markdown)}
    paths["html"] = write_atomic(out / "doctor.html", markdown_to_html(markdown, figures, title=f"gradzoo doctor: {d.model['name']}"))
    paths["json"] = write_atomic(out / "diagnosis.json", json.dumps(diagnosis_json(d), indent=1, allow_nan=False) + "\n")
    return paths
