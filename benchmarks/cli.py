"""The `gradzoo` command line: `list | run | report | pretrained | doctor`.

Heavy libraries (Keras, TensorFlow, pandas) are imported inside the commands,
never at module import, so `gradzoo --help` answers at once. A mistake the user
can fix is one sentence and exit status 2 (`benchmarks.errors.UserError`);
anything else is a bug: its traceback is kept, and the exit status is 1. A
command may also end with a status of its own: `gradzoo run` exits 1 when runs
failed on Ray workers, after recording every other run.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback

from benchmarks.backends import choose_backend, import_keras_quietly
from benchmarks.errors import UserError

def _quiet_logs(verbose: bool) -> None:
    if verbose:
        return
    # Level 3 also drops TensorFlow's runtime lines after import (cuInit, XLA, ...).
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import logging

    # TensorFlow's Python side (retracing notes between runs, which build a model each) and absl's.
    for name in ("tensorflow", "absl", "jax._src.xla_bridge"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:
        pass


def build_parser() -> argparse.ArgumentParser:
    from benchmarks.commands import add_commands

    parser = argparse.ArgumentParser(
        prog="gradzoo",
        description="A Keras 3 model zoo and benchmark for vanishing and exploding gradients.",
    )
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's and absl's log lines")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    add_commands(sub)
    return parser


def main(argv=None) -> int:
    """Entry point of the `gradzoo` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        _quiet_logs(args.verbose)
        if getattr(args, "needs_keras", True):
            choose_backend(getattr(args, "backend", None))
            import_keras_quietly()
        status = args.func(args)
    except UserError as e:
        # A user's mistake: one sentence, no traceback, before any training where that can be known.
        print(f"gradzoo: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gradzoo: interrupted; rerun the same command to resume.", file=sys.stderr)
        return 130
    except Exception:  # noqa: BLE001  (a bug: keep everything a report needs)
        traceback.print_exc()
        print("gradzoo: this is a bug in gradzoo, not in what you asked for; please report it with the traceback above.",
              file=sys.stderr)  # fmt: skip
        return 1
    return status or 0  # a command may say it partly failed (`gradzoo run` when some runs failed)


if __name__ == "__main__":
    sys.exit(main())
