"""`gradzoo report --results DIR`: records -> report.md, report.html, figures, tables and claims.

Its entries are checked first (`gradzoo.benchmarks.harness.run.out_dir`); a write that
fails on the way (a full disk) is one sentence naming the file, exit status 1
(see `gradzoo.benchmarks.cli`), and the records are never touched.
"""

from __future__ import annotations


def add(subparsers) -> None:
    from gradzoo.benchmarks.backends import BACKENDS
    from gradzoo.benchmarks.commands.run_command import DEFAULT_OUT

    p = subparsers.add_parser("report", help="turn a results directory's records into report.md, report.html and figures")
    p.add_argument("--results", default=DEFAULT_OUT, metavar="DIR",
                   help=f"the directory `gradzoo run --out` wrote (default: {DEFAULT_OUT}/; the reference results: results/)")
    p.add_argument("--backend", choices=BACKENDS, help="Keras backend to load (default: $KERAS_BACKEND, else tensorflow)")
    p.set_defaults(func=run)


def run(args) -> None:
    from pathlib import Path

    from gradzoo.benchmarks.harness.run.out_dir import check_entries
    from gradzoo.benchmarks.reporting.report import build_report

    if Path(args.results).is_dir():  # else build_report says what is wrong with it
        check_entries(args.results, "--results")  # a folder where a table goes: one sentence before any work
    paths = build_report(args.results)
    for line in paths["skipped"]:
        print(f"Left out, unreadable: {line}")
    claims = f", claims in {paths['claims_md']}" if "claims_md" in paths else ""
    print(f"Report: {paths['markdown']} and {paths['html']} (self-contained), "
          f"{len(paths['figures'])} figures in {paths['figures_dir']}{claims}")  # fmt: skip
