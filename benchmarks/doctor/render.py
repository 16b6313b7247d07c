"""A `Diagnosis` for people and for machines: the terminal text, one HTML page with the
gradient-flow figure (through `benchmarks.reporting.html.markdown_to_html`), and strict JSON."""

from __future__ import annotations

import dataclasses
import json
import math
import textwrap
from pathlib import Path

from benchmarks.analysis.formatting import format_number, percent
from benchmarks.analysis.verdicts import EXPLODING_NORM, VANISHING_RATIO
from benchmarks.storage import write_atomic

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
    """`3e-7 of`, `12 times`: a ratio as prose."""
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
        if "clip" in d.setup["optimizer"]:
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


def diagnosis_text(d, width: int = 100) -> str:
    """The terminal summary of a `Diagnosis`."""
    wrap = textwrap.TextWrapper(width=width, subsequent_indent="    ", break_on_hyphens=False)
    lines = []

    def para(text, indent=""):
        wrap.initial_indent = indent
        wrap.subsequent_indent = indent + "    "
        lines.extend(wrap.wrap(text))

    m, s = d.model, d.setup
    para(f"gradzoo doctor: model `{m['name']}` ({m['type']}, {len(d.layers)} weight layers, {m['params']:,} parameters, "
         f"input {tuple(m['input_shape'])})")  # fmt: skip
    para(f"Data: {d.data['source']}, {d.data['examples']:,} examples.")
    own = "assumed: the model is not compiled" if s["assumed"] else "the model's own"
    probe = (f"{s['steps']} steps of {s['batch_size']} on a copy, seed {s['seed']}" if s["probed"]
             else "none (see the notes)")  # fmt: skip
    para(f"Probe training: {probe}; loss {s['loss']}, optimizer {s['optimizer']} ({own}).")
    lines.append("")
    para("Verdict: " + verdict_sentence(d))
    lines.append("")
    lines.append("Regions (each weight layer's gradient norm against the last weight layer's; input steps against the last ones):")
    for r in d.regions:
        unit = "layer" if r["kind"] == "layers" else "step"
        para(f"{_span(r)}: {r['verdict']} ({r['count']} {unit}{'s' if r['count'] != 1 else ''}, {_ratio_range(r)})", "  ")
    where = _where_sentence(d)
    if where:
        para("Where: " + where)
    para("Global gradient norm: " + _global_sentence(d))
    units = _units_lines(d)
    if units:
        para("Units: " + "; ".join(units) + ".")
    t = d.temporal
    if t is not None:
        after = "" if t["after"] is None else f", {_n(t['after_ratio'])} after the probe"
        para(f"Through time: early/late-step gradient ratio {_n(t['init_ratio'])} at the given weights{after}.")
    lines.append("")
    if d.suggestions:
        lines.append("Suggestions (ranked by how much of the network the problem covers and how strongly gradzoo's runs back the fix):")
        for i, sug in enumerate(d.suggestions, 1):
            para(f"{i}. {sug['change']}", "  ")
            para(f"Why: {sug['why']}", "     ")
            para(f"Evidence: {sug['evidence'][0].upper()}{sug['evidence'][1:]}", "     ")
    elif d.verdict == "healthy":
        para("No change suggested: the gradient reaches every weight layer within the thresholds.")
    else:
        para("No suggestion: none of the doctor's rules matches this model's architecture; the regions above show where to look.")
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


def figure(d, path: Path) -> Path:
    """Gradient flow: each weight layer's norm at the given weights and over the probe; gradient through time if measured."""
    from benchmarks.reporting.figures import _log_values, _new_figure, _save

    panels = 2 if d.temporal is not None else 1
    fig = _new_figure(6.5 * panels, 3.8)
    axes = fig.subplots(1, panels, squeeze=False)[0]
    ax = axes[0]
    x = range(1, len(d.layers) + 1)
    curves = [([layer["norm_init"] for layer in d.layers], "at the given weights", "#9ecae1")]
    if d.norms_from == "probe":
        curves.append(([layer["norm"] for layer in d.layers], f"mean over the {d.setup['steps']}-step probe", "#08306b"))
    for values, label, color in curves:
        y, _, _ = _log_values(values)
        ax.plot(x, y, marker="o", markersize=3, color=color, label=label)
    last = d.layers[-1]["norm"] if d.layers else None
    if last:
        ax.axhline(last * VANISHING_RATIO, color="#d62728", linestyle=":", linewidth=1,
                   label=f"{format_number(VANISHING_RATIO)} × last layer (vanishing below)")  # fmt: skip
    ax.set_yscale("log")
    ax.set(title=f"gradient flow: {d.verdict}", xlabel="weight layer (1 = input side)", ylabel="gradient L2 norm (log)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    if d.temporal is not None:
        ax = axes[1]
        for values, label, color in ((d.temporal["init"], "at the given weights", "#c7e9c0"),
                                     (d.temporal["after"], "after the probe", "#00441b")):  # fmt: skip
            if values:
                y, _, _ = _log_values(values)
                ax.plot(range(1, len(y) + 1), y, color=color, label=label)
        ax.set_yscale("log")
        ax.set(title="gradient through time", xlabel="input step", ylabel="|dL/dx_t| (log)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    return _save(fig, path)


def diagnosis_markdown(d) -> str:
    """The one-page report as Markdown (the HTML page renders it)."""
    text = diagnosis_text(d, width=10_000)
    head, _, rest = text.partition("\n\n")
    lines = [f"# gradzoo doctor: `{d.model['name']}`", "", *[f"{line}  " for line in head.splitlines()], "",
             f"**Verdict: {verdict_sentence(d)}**", "", f"![gradient flow](figures/{FIGURE_NAME})", "",
             "| region | verdict | size | ratio to the last |", "|---|---|---|---|"]  # fmt: skip
    for r in d.regions:
        unit = "layers" if r["kind"] == "layers" else "steps"
        lines.append(f"| {_span(r)} | {r['verdict']} | {r['count']} {unit} | {_ratio_range(r).removeprefix('ratio ')} |")
    body = rest.split("\n\n", 1)[1] if "\n\n" in rest else rest
    lines += ["", "```text", body.rstrip("\n"), "```", ""]
    return "\n".join(lines)


def write_outputs(d, out_dir) -> dict:
    """Writes `doctor.html` (self-contained), `doctor.md`, `figures/doctor_gradient_flow.png` and `diagnosis.json`."""
    from benchmarks.reporting.html import markdown_to_html

    out = Path(out_dir)
    figures = out / "figures"
    fig_path = figure(d, figures / FIGURE_NAME)
    markdown = diagnosis_markdown(d)
    paths = {"figure": fig_path, "markdown": write_atomic(out / "doctor.md", markdown)}
    paths["html"] = write_atomic(out / "doctor.html", markdown_to_html(markdown, figures, title=f"gradzoo doctor: {d.model['name']}"))
    paths["json"] = write_atomic(out / "diagnosis.json", json.dumps(diagnosis_json(d), indent=1, allow_nan=False) + "\n")
    return paths
