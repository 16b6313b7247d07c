"""Option types and choices shared by the subcommands' parsers (light: nothing heavy is imported
while `gradzoo --help` builds its parser)."""

from __future__ import annotations

import argparse

from gradzoo.benchmarks.backends import BACKENDS, PRECISIONS  # noqa: F401  (the parsers' choices)


def positive_int(text: str) -> int:
    """An argparse `type`: an integer >= 1, else argparse's one-line error."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, received {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, received {text!r}")
    return value
