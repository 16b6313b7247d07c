"""The README's headline, generated from the reference records in `results/`.

`python -m gradzoo.benchmarks.reporting.readme` (or `gradzoo regenerate --only readme`)
rewrites the block between the two `HEADLINE` markers of its file: the claims
table, then the `quick` suite's pairs. `gradzoo regenerate --check` fails if the
block and the records disagree, so the README never carries a number typed by hand.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gradzoo.benchmarks.analysis.claims import claims_markdown
from gradzoo.benchmarks.analysis.formatting import format_mean_std, format_number, md_cell, md_code, md_escape
from gradzoo.benchmarks.analysis.tables import comparison_table, convergence_table
from gradzoo.benchmarks.errors import UserError
from gradzoo.benchmarks.harness.records import load_records
from gradzoo.benchmarks.reporting.blocks import Block

HEADLINE_FILE = "README.md"  # relative to the repository root
HEADLINE = Block("headline", HEADLINE_FILE, "python -m gradzoo.benchmarks.reporting.readme", note="from results/records")
HEADLINE_SUITE = "quick"


def headline_markdown(results_dir="results", suite: str = HEADLINE_SUITE) -> str:
    """The claims table and a compact table of the suite's pairs: best validation score and verdicts."""
    records = load_records(results_dir)
    quick = [r for r in records if r.config.suite == suite and r.config.phase == "eval"]
    if not quick:
        raise UserError(f"No records of suite {suite!r} in {Path(results_dir) / 'records'}; run `gradzoo run {suite} --out {results_dir}` first.")
    lines = []
    claims = claims_markdown(records, out_dir=results_dir)
    if claims:
        lines += ["**Published claims, rerun here** (suite `claims`; `results/claims.md`):", "", claims.rstrip("\n"), ""]
    comparison = comparison_table(convergence_table(quick))
    seeds = sorted({r.config.seed for r in quick})
    first = quick[0]
    lines += [
        f"**Suite {md_code(suite)}**, seeds {', '.join(map(str, seeds))} ({md_escape(first.env.backend)} backend, "
        f"{first.env.hardware.cpu_count} CPU cores); best validation score, mean ± std over seeds, each model at its tuned setting.",
        "",
        "| dataset (metric) | baseline | mitigated | baseline score | mitigated score | reached target | verdicts |",
        "|---|---|---|---|---|---|---|",
    ]
    for _, r in comparison.iterrows():
        better = "higher" if r.metric_mode == "max" else "lower"
        cells = [
            f"{md_escape(r.dataset)} ({md_escape(r.metric_name)}, {better} is better; chance {format_number(r.chance)}, "
            f"target {format_number(r.target)})", md_code(r.baseline), md_code(r.mitigated),
            format_mean_std(r.baseline_best_val_metric_mean, r.baseline_best_val_metric_std),
            format_mean_std(r.mitigated_best_val_metric_mean, r.mitigated_best_val_metric_std),
            f"{r.baseline_reached_target} vs {r.mitigated_reached_target}", f"{r.baseline_verdict} vs {r.mitigated_verdict}",
        ]  # fmt: skip
        lines.append("| " + " | ".join(md_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def update_readme(root=".", results_dir="results") -> bool:
    """Rewrites the headline block in `root`'s `HEADLINE_FILE`; returns whether the file changed."""
    return HEADLINE.update(root, headline_markdown(results_dir))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=".", help=f"the repository root, whose {HEADLINE_FILE} holds the block (default: .)")
    parser.add_argument("--results", default="results")
    args = parser.parse_args(argv)
    try:
        changed = update_readme(args.root, args.results)
    except (UserError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{HEADLINE.path(args.root)}: headline {'updated' if changed else 'already up to date'}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
