"""Records -> `report.md`, a self-contained `report.html` and PNG figures.

`build_report(results_dir)` regenerates the tables (`gradzoo.benchmarks.analysis.tables`)
and the claims table (`gradzoo.benchmarks.analysis.claims`), then writes, for every pair
(a baseline and the mitigated partners run beside it in the same suite, group,
sweep point and dataset; evaluation runs only):

- a verdict in words per model, computed from the numbers;
- loss and metric curves, mean over seeds with a min-max band;
- every registered instrument's figures (`Instrument.figures`), in registry
  order: for the built-in ones, gradient flow (per-layer gradient norm against
  depth at the first, middle and last recorded step, on a log scale), a layer
  x step heatmap of gradient norms, the global gradient norm before and after
  clipping with the clip rate, the saturated (sigmoid/tanh) or dead (ReLU)
  fraction of each activation layer after each epoch, and for recurrent nets
  the gradient-through-time profile at initialization, mid-training and the end;

for each swept group the final score and the verdict's gradient ratio against
the swept value, and for each tuned group the tuning sensitivity (best
validation score against every tried setting). `report.md` links the figures
under `figures/`; `report.html` carries them inline. Both come from the same
Markdown text, so they always say the same thing. Every file is written
atomically; figures this report no longer draws are removed.
"""

from __future__ import annotations

import statistics
from collections import Counter
from pathlib import Path

from gradzoo.benchmarks.analysis.fixes import fixes_in_words
from gradzoo.benchmarks.analysis import verdicts
from gradzoo.benchmarks.analysis.formatting import finite_values, format_number, md_cell, md_code, md_escape
from gradzoo.benchmarks.analysis.tables import comparison_markdown, comparison_table, convergence_table, write_tables
from gradzoo.benchmarks.errors import UserError
from gradzoo.benchmarks.harness.records import RECORDS_SUBDIR, RunRecord, scan
from gradzoo.benchmarks.harness.instruments import figure_function, registered
from gradzoo.benchmarks.reporting.figures import LOG_FLOOR, figure_curves, names_only
from gradzoo.benchmarks.reporting.html import markdown_to_html
from gradzoo.benchmarks.reporting.sweep_figures import figure_sensitivity, figure_sweep, sweep_axis, sweep_series
from gradzoo.benchmarks.reporting.units import FigureNames, Unit, group_units, provenance_lines
from gradzoo.benchmarks.storage import write_atomic

FIGURES_SUBDIR = "figures"


def pair_figures() -> list[tuple[str, object]]:
    """`(kind, draw)` for each figure of a pair: the curves, then every registered instrument's figures."""
    return [("curves", figure_curves)] + [(kind, figure_function(draw)) for i in registered() for kind, draw in i.figures]


def _versus(unit: Unit, mitigated: str) -> str | None:
    """One sentence comparing a partner's best val score with the baseline's."""
    base, mit = unit.runs.get(unit.pair), unit.runs[mitigated]
    if not base:
        return None
    d = base[0].dataset
    b = finite_values(r.best_score for r in base)
    m = finite_values(r.best_score for r in mit)
    if not b or not m:
        return None
    b, m = statistics.mean(b), statistics.mean(m)
    how = "the same" if m == b else f"{'better' if d.is_better(m, b) else 'worse'} by {format_number(abs(m - b))}"
    fix = fixes_in_words(mit[0].config.model)
    return (f"{md_code(mitigated)} against {md_code(unit.pair)}: best val {md_escape(d.metric)} {format_number(m)} vs {format_number(b)} "
            f"({d.better} is better): {how}." + (f" Its fix, as the zoo declares it: {md_escape(fix)}." if fix else ""))  # fmt: skip


def _tuning_line(runs: list[RunRecord]) -> str | None:
    """What a model's evaluation runs were tuned over and what was chosen."""
    t = runs[0].tuning
    if t is None:
        return None
    chosen = md_escape(", ".join(f"{k}={format_number(v)}" for k, v in t.chosen.items()))
    scored = [x for x in t.trials if x.score is not None and not x.diverged]
    trials = f"{len(t.trials)} trials, {len(t.trials) - len(scored)} diverged" if t.trials else f"trials in suite {md_code(t.source.split('/')[0])}"
    return f"{md_code(runs[0].label)} tuned over {md_escape(runs[0].config.tuned_over)} ({trials}): chose {chosen}."


def check_results_dir(results_dir) -> tuple[list[RunRecord], list[str]]:
    """The readable records of a results directory and one line per unreadable one.

    Raises:
        UserError: the directory is missing, is a file, or holds no readable record.
    """
    path = Path(results_dir)
    if not path.exists():
        raise UserError(f"Results directory {str(path)!r} does not exist; run `gradzoo run --out {path}` first "
                        "or point --results at the directory it wrote.")  # fmt: skip
    if not path.is_dir():
        raise UserError(f"--results {str(path)!r} is a file; point it at the directory `gradzoo run --out` wrote.")
    found = scan(path)
    if not found.records:
        extra = f" ({len(found.problems)} unreadable)" if found.problems else ""
        raise UserError(f"{str(path)!r} holds no readable run records ({RECORDS_SUBDIR}/*.json{extra}); "
                        f"run `gradzoo run --out {path}` first.")  # fmt: skip
    return found.records, found.problem_lines()


def _figure_block(result, alt: str) -> list[str]:
    if result is None:
        return []
    path, caption = result
    alt = md_escape(alt.replace("[", "(").replace("]", ")"))  # brackets would end the alt text early
    return [f"![{alt}]({FIGURES_SUBDIR}/{path.name})", f"*{caption}*", ""]


def _sweep_table(runs, axis) -> list[str]:
    """Verdict and final val score per model (rows) and swept value (columns)."""
    series = sweep_series(runs, axis)
    xs = sorted({x for points in series.values() for x in points})
    lines = ["| model | " + " | ".join(md_cell(md_escape(f"{axis}={x}")) for x in xs) + " |", "|---|" + "---|" * len(xs)]
    for (model, rest), points in series.items():
        cells = []
        for x in xs:
            if x not in points:
                cells.append("–")
                continue
            word = Counter(verdicts.verdict(r) for r in points[x]).most_common(1)[0][0]
            scores = finite_values(r.summary.final_val_metric for r in points[x])
            cells.append(f"{md_code(points[x][0].label)}: {word}, {format_number(statistics.mean(scores)) if scores else '–'}")
        extra = md_escape(" (" + ", ".join(f"{k}={v}" for k, v in rest) + ")") if rest else ""
        lines.append("| " + " | ".join(md_cell(c) for c in [md_code(model) + extra, *cells]) + " |")
    metric = md_escape(runs[0].dataset.metric)
    return lines + ["", f"*Cells: the architecture trained, its verdict and the final validation {metric} (mean over seeds).*", ""]


def _pair_section(unit: Unit, figures_dir: Path, drawn: list, names: FigureNames) -> list[str]:
    first = next(iter(unit.runs.values()))[0]
    d = first.dataset
    seeds = sorted({r.config.seed for runs in unit.runs.values() for r in runs})
    epochs = sorted({r.config.epochs for runs in unit.runs.values() for r in runs})
    md = [f"### {unit.title}", "",
          f"Dataset {md_code(d.name)}, {md_escape(d.metric)} ({d.better} is better; chance {format_number(d.chance)}, target "
          f"{format_number(d.target)}); seeds {', '.join(map(str, seeds))}; {'/'.join(map(str, epochs))} epochs.", ""]  # fmt: skip
    md += [f"- {verdicts.verdict_in_words(unit.runs[m])}" for m in unit.models]
    md += [f"- {s}" for s in (_versus(unit, m) for m in unit.models if m != unit.pair) if s]
    md += [f"- {s}" for s in (_tuning_line(unit.runs[m]) for m in unit.models) if s]
    md += [""]
    for kind, draw in pair_figures():
        result = draw(unit, figures_dir / names(unit.key, f"_{kind}.png"))
        if result is not None:
            drawn.append(result[0])
        md += _figure_block(result, f"{unit.pair}: {kind.replace('_', ' ')}")
    return md


def _group_by(records, key) -> dict:
    out: dict = {}
    for r in records:
        out.setdefault(key(r), []).append(r)
    return out


def build_report(results_dir, *, tables: bool = True, render: bool = True) -> dict:
    """Writes `report.md`, `report.html`, the tables, the claims and `figures/*.png` from the records.

    Args:
        results_dir: the directory `gradzoo run --out` wrote (it holds `records/`).
        tables: also write the tables and the claims (`gradzoo regenerate` writes
            them in steps of their own). Defaults to `True`.
        render: render the figures and write `report.html`; with `False` only
            `report.md` is written, naming the figures it would draw (what
            `gradzoo regenerate --check` compares). Defaults to `True`.

    Returns:
        A dict of paths: `markdown`, `html`, `figures_dir`, `figures` (a list of
        the PNGs), the tables' paths and the claims' (`claims_csv`, `claims_md`),
        and `skipped`: one line per unreadable record, left out.

    Raises:
        UserError: one sentence, if `results_dir` is missing, is a file, or
            holds no readable record.
    """
    from gradzoo.benchmarks.analysis.claims import evaluate_claims, suites_of, write_claims

    records, problems = check_results_dir(results_dir)
    out = Path(results_dir)
    paths = dict(write_tables(out, records)) if tables else {}
    claim_results = evaluate_claims(records, suites_of(records, out))
    if tables:
        paths.update(write_claims(out, records, claim_results))
    if not render:
        with names_only():
            return _write_report(out, records, problems, claim_results, paths, render=False)
    return _write_report(out, records, problems, claim_results, paths, render=True)


def _write_report(out: Path, records, problems, claim_results, paths: dict, render: bool) -> dict:
    from gradzoo.benchmarks.analysis.claims import claims_markdown

    figures_dir = out / FIGURES_SUBDIR
    figures_dir.mkdir(exist_ok=True)
    drawn: list[Path] = []

    md = ["# gradzoo report: vanishing and exploding gradients, pair by pair", "",
          f"Generated by `gradzoo report` from the run records in `{RECORDS_SUBDIR}/`; every number and figure below is "
          "computed from them, and rerunning the command regenerates it all.", ""]  # fmt: skip
    if problems:
        md += [f"Left out: {len(problems)} unreadable record(s):", "", *[f"- {md_escape(p)}" for p in problems], ""]
    claims = claims_markdown(records, results=claim_results)
    if claims:
        md += ["## Claims", "", claims.rstrip("\n"), ""]
    md += ["## Where the numbers came from", "", *provenance_lines(records), ""]
    md += ["## How the verdicts are made", "", *verdicts.thresholds_lines(records),
           f"- Log-scale figures draw zeros at {LOG_FLOOR:g} and leave out non-finite values; each caption says when that happened.", ""]  # fmt: skip
    comparison = comparison_table(convergence_table(records))
    md += ["## Comparison", "",
           "Each baseline beside each mitigated partner run in the same group and sweep point; evaluation runs only, mean ± "
           "std over seeds, each model at its own tuned setting. Also in [comparison.csv](comparison.csv), with per-run rows "
           "(tuning trials included) in [convergence.csv](convergence.csv) and per-layer gradient norms in "
           "[gradients.csv.gz](gradients.csv.gz).", ""]  # fmt: skip
    md += [comparison_markdown(comparison).rstrip("\n") if not comparison.empty else "No baseline has a mitigated partner in these records.", ""]

    md += ["## Pairs", ""]
    names = FigureNames()  # one file per figure, whatever the names' characters (see FigureNames)
    for unit in group_units(records):
        md += _pair_section(unit, figures_dir, drawn, names)

    evals = [r for r in records if r.config.phase == "eval"]
    sweep_blocks = []
    for (suite, group, dataset), runs in _group_by([r for r in evals if r.config.sweep],
                                                   lambda r: (r.config.suite, r.config.group, r.config.dataset)).items():  # fmt: skip
        axis = sweep_axis([r.config.sweep for r in runs])
        if axis is None:
            continue
        result = figure_sweep(runs, axis, figures_dir / names(f"{suite}_{group}_{dataset}_sweep_{axis}", ".png"))
        drawn.append(result[0])
        sweep_blocks += [f"### {md_escape(suite)} / {md_escape(group)}: against {md_code(axis)}", "", *_sweep_table(runs, axis),
                         *_figure_block(result, f"{group}: sweep over {axis}")]  # fmt: skip
    if sweep_blocks:
        md += ["## Sweeps", "", *sweep_blocks]

    tuning_blocks = []
    trials = [r for r in records if r.config.phase == "tune"]
    for (suite, group), runs in _group_by(trials, lambda r: (r.config.suite, r.config.group)).items():
        chosen = {(r.sweep_label, r.label): r.tuning.chosen for r in evals
                  if r.tuning is not None and (r.config.suite, r.config.group) == (suite, group)}  # fmt: skip
        result = figure_sensitivity(runs, chosen, figures_dir / names(f"{suite}_{group}_sensitivity", ".png"))
        if result is None:
            continue
        drawn.append(result[0])
        tuning_blocks += [f"### {md_escape(suite)} / {md_escape(group)}", "", f"Searched: {md_escape(runs[0].config.tuned_over)}.", "",
                          *_figure_block(result, f"{group}: tuning sensitivity")]  # fmt: skip
    if tuning_blocks:
        md += ["## Tuning", "", *tuning_blocks]

    text = "\n".join(md).rstrip("\n") + "\n"
    paths["markdown"] = write_atomic(out / "report.md", text)
    if render:
        for stale in figures_dir.glob("*.png"):
            if stale not in drawn:
                stale.unlink()
        paths["html"] = write_atomic(out / "report.html", markdown_to_html(text, figures_dir))
    paths["figures_dir"] = figures_dir
    paths["figures"] = drawn
    paths["skipped"] = problems
    return paths
