"""The `gradzoo` command line.

Heavy libraries (Keras, TensorFlow, pandas) are imported inside the commands,
never at module import, so `gradzoo --help` answers at once.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


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


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, received {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, received {text!r}")
    return value


def _output_dir(path: str) -> Path:
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {path!r} is a file; give a directory (it is created if missing).")
    return out


def _cmd_run(args) -> None:
    from benchmarks.suites import expand, load_suite

    out = _output_dir(args.out)
    suite = load_suite(args.suite)
    specs = expand(
        suite, seeds=args.seeds, epochs=args.epochs, record_gradients=not args.no_gradients, data_dir=args.data_dir
    )
    from tqdm.auto import tqdm

    from benchmarks import records as records_mod
    from benchmarks.runner import run_one
    from benchmarks.tables import write_tables

    done = records_mod.recorded_ids(out)
    unique = list({s.run_id: s for s in specs}.values())
    todo = [s for s in unique if s.run_id not in done]
    print(f"Suite {suite.name!r}: {len(unique)} runs, {len(unique) - len(todo)} already recorded in {out}/records, {len(todo)} to run.")
    outer = tqdm(total=len(todo), desc="suite", unit="run", position=0)
    try:
        for spec in todo:
            outer.set_postfix_str(f"{spec.model} on {spec.dataset} seed {spec.seed}")
            inner = tqdm(total=spec.epochs, desc=f"{spec.model}", unit="epoch", position=1, leave=False)

            def progress(kind, value, inner=inner, spec=spec):
                if kind == "epoch":
                    inner.update(1)

            record = run_one(spec, progress)
            records_mod.write_record(out, record)
            inner.close()
            outer.update(1)
            if record["diverged"]:
                tqdm.write(f"  {spec.model} on {spec.dataset} (seed {spec.seed}) diverged at step {record['diverged_step']}: recorded.")
    finally:
        outer.close()
    paths = write_tables(out)
    print(f"Tables: {', '.join(str(p) for p in paths.values())}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gradzoo",
        description="A Keras 3 model zoo and benchmark for vanishing and exploding gradients.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    p = sub.add_parser("list", help="show the models (grouped by pair), datasets and suites")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("run", help="run a benchmark suite (default: quick) and write records and tables")
    p.add_argument("suite", nargs="?", default="quick", metavar="SUITE_OR_FILE",
                   help="a shipped suite name (see `gradzoo list`) or the path of a .toml suite file (default: quick)")
    p.add_argument("--out", default="results", metavar="DIR", help="output directory (default: results)")
    p.add_argument("--seeds", type=_positive_int, metavar="N", help="run seeds 0..N-1 (default: the suite's)")
    p.add_argument("--epochs", type=_positive_int, metavar="E", help="override every run's epoch count")
    p.add_argument("--no-gradients", action="store_true", help="do not record gradient norms")
    p.add_argument("--data-dir", metavar="DIR", help="prepared tensorflow-datasets directory (else $GRADZOO_TFDS_DIR)")
    p.set_defaults(func=_cmd_run)
    return parser


def main(argv=None) -> int:
    """Entry point of the `gradzoo` console script."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out of the output
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
