"""The `gradzoo` command line.

Heavy libraries (Keras, TensorFlow, pandas) are imported inside the commands,
never at module import, so `gradzoo --help` answers at once.
"""

from __future__ import annotations

import argparse
import sys


class UserError(Exception):
    """A mistake in what the user asked for: printed as one sentence, exit 2."""


def _cmd_list(args) -> None:
    import zoo

    width = max(len(n) for n in zoo.list_models()) + 4
    print("Models, each baseline followed by its mitigated partners:")
    for family in ("mlp", "cnn", "rnn"):
        print(f"\n  [{family}]")
        for baseline in zoo.list_models(family=family, role="baseline"):
            spec = zoo.get_spec(baseline)
            print(f"  {baseline:<{width}}{spec.description}")
            for partner in spec.partners:
                print(f"    -> {partner:<{width - 3}}{zoo.get_spec(partner).description}")
    try:
        from benchmarks.data import list_datasets
    except ImportError:  # the datasets module is optional while it is being built
        return
    print("\nDatasets (embedded ones run offline):")
    rows = list_datasets()
    dw = max(len(r["name"]) for r in rows) + 2
    for row in rows:
        kind = "embedded" if row["embedded"] else "tfds"
        print(f"  {row['name']:<{dw}}{kind:<10}{row['description']}")
    suites = _suite_names()
    if suites:
        print("\nSuites (gradzoo run SUITE):")
        for name, description in suites:
            print(f"  {name:<{dw}}{description}")


def _suite_names():
    try:
        from benchmarks.suites import list_suites
    except ImportError:
        return []
    return list_suites()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gradzoo",
        description="A Keras 3 model zoo and benchmark for vanishing and exploding gradients.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    p = sub.add_parser("list", help="show the models (grouped by pair), datasets and suites")
    p.set_defaults(func=_cmd_list)
    return parser


def main(argv=None) -> int:
    """Entry point of the `gradzoo` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except (UserError, ValueError, FileNotFoundError, NotADirectoryError) as e:
        # A user's mistake: one sentence, no traceback, non-zero exit.
        print(f"gradzoo: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gradzoo: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
