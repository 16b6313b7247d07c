"""`gradzoo report --results DIR`: records -> report.md, report.html, figures, tables and claims."""

from __future__ import annotations


def add(subparsers) -> None:
    from benchmarks.backends import BACKENDS
    from benchmarks.commands.run_command import DEFAULT_OUT

    p = subparsers.add_parser("report", help="turn a results directory's records into report.md, report.html and figures")
    p.add_argument("--results", default=DEFAULT_OUT, metavar="DIR",
                   help=f"the directory `gradzoo run --out` wrote (default: {DEFAULT_OUT}/; the reference results: results/)")
    p.add_argument("--backend", choices=BACKENDS, help="Keras backend to load (default: $KERAS_BACKEND, else tensorflow)")
    p.set_defaults(func=run)


def run(args) -> None:
    from benchmarks.reporting.report import build_report

    paths = build_report(args.results)
    for line in paths["skipped"]:
        print(f"Left out, unreadable: {line}")
    claims = f", claims in {paths['claims_md']}" if "claims_md" in paths else ""
    print(f"Report: {paths['markdown']} and {paths['html']} (self-contained), "
          f"{len(paths['figures'])} figures in {paths['figures_dir']}{claims}")  # fmt: skip
