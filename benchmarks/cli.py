"""The `gradzoo` command line: `list | run | report | regenerate | pretrained | doctor`.

Heavy libraries (Keras, TensorFlow, pandas) are imported inside the commands,
never at module import, so `gradzoo --help` answers at once. A mistake the user
can fix is one sentence and exit status 2 (`gradzoo.benchmarks.errors.UserError`);
anything else is a bug: its traceback is kept, and the exit status is 1. A
command may also end with a status of its own: `gradzoo run` exits 1 when runs
failed on Ray workers, after recording every other run.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback

from gradzoo.benchmarks.backends import choose_backend, import_keras_quietly
from gradzoo.benchmarks.errors import UserError

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
    from gradzoo.benchmarks.commands import add_commands

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
    args.argv = list(sys.argv[1:] if argv is None else argv)  # for the line that resumes an interrupted run
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
    except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM where a command turns it into one (`gradzoo run`)
        from gradzoo.benchmarks.commands.stopping import exit_status

        print("gradzoo: interrupted; rerun the same command to resume.", file=sys.stderr)
        return exit_status(e)
    except OSError as e:
        if not e.filename:  # no file to name: nothing the user can act on, so a bug
            return _bug()
        # A full disk, or a folder made read-only mid-way: the user's to fix, and nothing recorded is lost.
        if args.verbose:
            traceback.print_exc()
        print(f"gradzoo: error: {os_error_sentence(e)}", file=sys.stderr)
        return 1
    except Exception:  # noqa: BLE001  (a bug: keep everything a report needs)
        return _bug()
    return status or 0  # a command may say it partly failed (`gradzoo run` when some runs failed)


def os_error_sentence(err: OSError) -> str:
    """One sentence for an `OSError` that names its file: what failed, where, and that records are kept."""
    import errno

    where = repr(str(err.filename))
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return (f"No space left on the device to write {where}; every record already written is kept: free some space "
                "(or give another directory) and rerun the same command.")  # fmt: skip
    reason = os.strerror(err.errno) if err.errno else (err.strerror or "failed")
    return f"{where}: {reason.lower()}; every record already written is kept: fix that and rerun the same command."


def _bug() -> int:
    traceback.print_exc()
    print("gradzoo: this is a bug in gradzoo, not in what you asked for; please report it with the traceback above.",
          file=sys.stderr)  # fmt: skip
    return 1


if __name__ == "__main__":
    sys.exit(main())
