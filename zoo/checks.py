"""Argument checks shared by the zoo's builders and the harness (CLI, suites, datasets, recorder),
and the cache directory both use.

Each check returns the value it accepts (normalized) or raises a `ValueError`
in the Keras style, naming the argument and what was received:
`` `epochs` must be an integer >= 1. Received: epochs=0 ``.
"""

from __future__ import annotations

import math
import numbers
import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """`$GRADZOO_CACHE/...`, else `$XDG_CACHE_HOME/gradzoo/...`, else `~/.cache/gradzoo/...`."""
    root = os.environ.get("GRADZOO_CACHE")
    base = Path(root).expanduser() if root else Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "gradzoo"
    return base.joinpath(*parts)


def integer(name: str, value, minimum: int | None = None) -> int:
    """An integer (not a bool) >= `minimum`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or (minimum is not None and value < minimum):
        bound = f" >= {minimum}" if minimum is not None else ""
        raise ValueError(f"`{name}` must be an integer{bound}. Received: {name}={value!r}")
    return int(value)


def positive_number(name: str, value) -> float:
    """A finite real number > 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"`{name}` must be a positive number. Received: {name}={value!r}")
    return float(value)


def open_fraction(name: str, value) -> float:
    """A number strictly between 0 and 1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value < 1:
        raise ValueError(f"`{name}` must be a number strictly between 0 and 1. Received: {name}={value!r}")
    return float(value)


def choice(name: str, value, choices) -> object:
    """One of `choices`."""
    if isinstance(value, (list, dict, set)) or value not in choices:
        raise ValueError(f"`{name}` must be one of {', '.join(map(repr, choices))}. Received: {name}={value!r}")
    return value


def boolean(name: str, value) -> bool:
    """`True` or `False` (NumPy booleans accepted)."""
    if type(value).__name__ not in ("bool", "bool_"):
        raise ValueError(f"`{name}` must be True or False. Received: {name}={value!r}")
    return bool(value)


def plain_text(name: str, value, max_length: int = 200) -> str:
    """A one-line string without control characters (names that reach file names and reports)."""
    if not isinstance(value, str) or not value or len(value) > max_length or any(
        ord(c) < 32 or ord(c) == 127 for c in value
    ):
        raise ValueError(
            f"`{name}` must be a non-empty line of at most {max_length} characters with no control "
            f"characters (newlines, tabs). Received: {name}={value!r}"
        )
    return value


def check_choice(argument: str, value, choices) -> None:
    """Raises ValueError naming `argument` unless `value` is one of `choices` (the builders' form)."""
    choice(argument, value, choices)


def check_positive_int(argument: str, value, minimum: int = 1) -> None:
    """Raises ValueError naming `argument` unless `value` is an int >= `minimum` (the builders' form)."""
    integer(argument, value, minimum)
