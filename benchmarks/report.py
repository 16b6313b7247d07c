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
- the saturated (sigmoid/tanh) or dead (ReLU) fraction of each activation
  layer after each epoch;

and, for each swept group (`config.sweep`, e.g. `model.depth`), the final score
and the gradient ratio the verdict uses against the swept value. `report.md`
links the figures under `figures/`; `report.html` carries them inline as
base64 data URIs, so it opens from disk with no network. Both come from the
same Markdown text, so they always say the same thing.

The figures themselves are drawn by `benchmarks.figures`, matplotlib imported
lazily and only through its object-oriented API with the Agg canvas: building
a report never touches a user's pyplot backend.
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
from benchmarks.figures import (
    LOG_FLOOR,
    figure_activations,
    figure_curves,
    figure_global_norm,
    figure_gradient_flow,
    figure_heatmap,
    figure_sweep,
    figure_through_time,
    sweep_axis,
    sweep_series,
)
from benchmarks.tables import (
    clipping_setting,
    comparison_markdown,
    comparison_table,
    convergence_table,
    finite_values,
    format_number,
    pair_of,
    percent,
    write_tables,
)

# A run "left chance level" when its best validation score beats chance by more
# than this fraction of the distance from chance to the target.
LEFT_CHANCE_FRACTION = 0.1
FIGURES_SUBDIR = "figures"


# ----------------------------------------------------------------------------- numbers and words


def _epochs(n) -> str:
    return f"{n} epoch" + ("" if n == 1 else "s")


def _sweep_text(sweep: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(sweep.items()))


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")


def _edge_fraction(record: dict) -> float:
    """The share of input steps at each end that the early/late-step ratio averages."""
    return (record.get("temporal") or {}).get("edge_fraction", 0.1)


def left_chance(score, chance, target, mode) -> bool:
    """Whether `score` beats `chance` by more than `LEFT_CHANCE_FRACTION` of |target - chance|."""
    if score is None or not math.isfinite(score):
        return False
    margin = LEFT_CHANCE_FRACTION * abs(target - chance)
    return score > chance + margin if mode == "max" else score < chance - margin


def _peak_norm(record: dict):
    """The largest finite raw global gradient norm of a run."""
    grads = record.get("gradients") or {}
    return max(finite_values((grads.get("epoch") or {}).get("global_pre_max", [])), default=None)


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
    temporal = finite_values(verdicts.temporal_ratio(r) for r in records)
    if temporal:
        ratio, edge = statistics.median(temporal), percent(_edge_fraction(first))
        reaching = f"the gradient reaching the first {edge} of input steps is {format_number(ratio)}"
        if ratio < verdicts.VANISHING_RATIO:
            clauses.append(f"{reaching} of that reaching the last {edge} at the end of training{seeds(temporal)}")
        elif ratio > 1 / verdicts.VANISHING_RATIO:
            clauses.append(f"{reaching} times that reaching the last {edge} at the end of training{seeds(temporal)}")
        else:
            clauses.append(f"early/late-step gradient ratio {format_number(ratio)} at the end of training{seeds(temporal)}")
    layers = finite_values(verdicts.first_last_ratio(r) for r in records)
    if layers:
        ratio = statistics.median(layers)
        if temporal:
            clauses.append(f"first/last-layer ratio {format_number(ratio)} over epoch 1")
        elif ratio < verdicts.VANISHING_RATIO:
            clauses.append(f"first-layer gradient {format_number(ratio)} of the last layer's over epoch 1{seeds(layers)}")
        elif ratio > 1 / verdicts.VANISHING_RATIO:
            clauses.append(f"first-layer gradient {format_number(ratio)} times the last layer's over epoch 1{seeds(layers)}")
        else:
            clauses.append(f"first/last-layer gradient ratio {format_number(ratio)} over epoch 1{seeds(layers)}")
    elif not temporal and not any(r.get("gradients") for r in records):
        clauses.append("no gradient log")

    diverged = sorted(r["diverged_step"] for r in records if r.get("diverged") and r.get("diverged_step") is not None)
    if diverged:
        where = f"at step {diverged[0]}" if n == 1 else f"in {len(diverged)} of {n} seeds, first at step {diverged[0]}"
        clauses.append(f"diverged (non-finite loss or gradient) {where}")
    peak = max(finite_values(_peak_norm(r) for r in records), default=None)
    if peak is not None and peak > verdicts.EXPLODING_NORM:
        clauses.append(f"raw global gradient norm peaked at {format_number(peak)} (threshold {format_number(verdicts.EXPLODING_NORM)})")

    clip = clipping_setting(first)
    rates = finite_values(verdicts.clip_rate(r) for r in records)
    if clip and rates:
        clauses.append(f"clipping ({clip}) shrank {percent(statistics.mean(rates))} of updates")

    d = first["dataset"]
    metric, mode, chance, target = d["metric"], d["metric_mode"], d["chance"], d["target"]
    best = finite_values(r["summary"].get("best_val_metric") for r in records)
    epochs = max(r["summary"].get("epochs_run") or 0 for r in records)
    reached = sorted(r["summary"]["epochs_to_target"] for r in records if r["summary"].get("epochs_to_target"))
    if not best:
        clauses.append(f"no finite validation {metric} in {_epochs(epochs)}")
    else:
        score = statistics.mean(best)
        scored = f"best val {metric} {format_number(score)}" + ("" if n == 1 else f", mean of {len(best)} seeds")
        if reached:
            when = f"in epoch {reached[0]}" if n == 1 else f"in {len(reached)} of {n} seeds, median epoch {format_number(statistics.median(reached))}"
            clauses.append(f"reached the target {format_number(target)} {when} ({scored})")
        elif left_chance(score, chance, target, mode):
            clauses.append(f"left chance level but missed the target {format_number(target)} in {_epochs(epochs)} ({scored}; chance {format_number(chance)})")
        else:
            clauses.append(f"never left chance level in {_epochs(epochs)} ({scored}; chance {format_number(chance)})")
    return f"`{name}`: {head}; " + "; ".join(clauses) + "."


def _versus(unit: "Unit", mitigated: str) -> str | None:
    """One sentence comparing a partner's best val score with the baseline's."""
    base, mit = unit.runs.get(unit.pair), unit.runs[mitigated]
    if not base:
        return None
    d = base[0]["dataset"]
    b = finite_values(r["summary"].get("best_val_metric") for r in base)
    m = finite_values(r["summary"].get("best_val_metric") for r in mit)
    if not b or not m:
        return None
    b, m = statistics.mean(b), statistics.mean(m)
    better = m > b if d["metric_mode"] == "max" else m < b
    how = "the same" if m == b else f"{'better' if better else 'worse'} by {format_number(abs(m - b))}"
    direction = "higher" if d["metric_mode"] == "max" else "lower"
    return (f"`{mitigated}` against `{unit.pair}`: best val {d['metric']} {format_number(m)} vs {format_number(b)} "
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
    edge = percent(_edge_fraction(timed[0])) if timed else None
    through_time = [
        f"- **through time** (recurrent nets with a gradient-through-time profile: the L2 norm of the loss's gradient "
        f"with respect to each input step, on a fixed probe batch): the vanishing and exploding ratio tests use, instead "
        f"of the layer ratio, the gradient reaching the first {edge} of input steps over the one reaching the last {edge}, "
        "at the end of training."
    ] if timed else []
    return [
        f"- **vanishing**: the first weight layer's mean gradient norm over epoch 1 is below {format_number(v.VANISHING_RATIO)} "
        "times the last weight layer's (the head). Normalization layers (BatchNorm/LayerNorm scale and offset) are left out.",
        f"- **exploding**: the run diverged (a non-finite loss or gradient stopped it), or the raw global gradient norm "
        f"(before clipping) exceeded {format_number(v.EXPLODING_NORM)} at some step, or the first weight layer's gradient is more than "
        f"{format_number(1 / v.VANISHING_RATIO)} times the last's. Clipping bounds the update, not the raw gradient, so a clipped "
        "run can be exploding and still train: its clip rate (the fraction of steps whose update clipping shrank) is given.",
        *through_time,
        "- **healthy**: neither. With several seeds the verdict is the most common one, and the others are named.",
        f"- **left chance level**: the best validation score beats the dataset's chance level by more than "
        f"{format_number(LEFT_CHANCE_FRACTION)} of the distance from chance to the target (|target - chance|), in the metric's "
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
    series = sweep_series(runs, axis)
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
            scores = finite_values(r["summary"].get("final_val_metric") for r in points[x])
            cells.append(f"{words}, {format_number(statistics.mean(scores)) if scores else '–'}")
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
        md += [f"Dataset `{d['name']}`, {d['metric']} ({better} is better; chance {format_number(d['chance'])}, target "
               f"{format_number(d['target'])}); seeds {', '.join(map(str, seeds))}; {'/'.join(map(str, epochs))} epochs.", ""]
        md += [f"- {verdict_in_words(unit.runs[m])}" for m in unit.models]
        md += [f"- {s}" for s in (_versus(unit, m) for m in unit.models if m != unit.pair) if s]
        md += [""]
        for kind, draw in (("curves", figure_curves), ("gradient_flow", figure_gradient_flow),
                           ("through_time", figure_through_time), ("heatmap", figure_heatmap),
                           ("global_norm", figure_global_norm), ("activations", figure_activations)):
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
        axis = sweep_axis([r["config"]["sweep"] for r in runs])
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
