"""Numbers as tables and prose show them: one formatter for every table, report and figure."""

from __future__ import annotations

import math


def format_number(value, digits=3) -> str:
    """A number for tables and prose: `3.2e-7`, `0.85`, `12`, `1.2e4`; `–` for missing.

    Args:
        value: a Python or NumPy number, `None` or NaN (both shown as `–`);
            anything else is shown with `str`.
        digits: significant digits between 1e-2 and 10**digits. Defaults to `3`.
    """
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()  # NumPy scalars: their ints are not `int`
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, int) or (value.is_integer() and abs(value) < 1e4):
        return str(int(value))
    if value != 0 and (abs(value) < 1e-2 or abs(value) >= 1e4):
        mantissa, exponent = f"{value:.1e}".split("e")
        return f"{mantissa.removesuffix('.0')}e{int(exponent)}"
    if abs(value) >= 10**digits:
        return f"{value:.0f}"
    return f"{value:.{digits}g}"


def format_mean_std(mean, std) -> str:
    """`mean ± std` with `format_number`; `–` when the mean is missing."""
    if format_number(mean) == "–":
        return "–"
    return f"{format_number(mean)} ± {format_number(std)}"


def finite_values(values) -> list:
    """The finite numbers among `values` (`None`, NaN and +-inf left out)."""
    return [v for v in values if v is not None and isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]


def percent(fraction) -> str:
    """`0.25` -> `25%`."""
    return f"{100 * fraction:.0f}%"


def plural(n: int, word: str) -> str:
    """`1 epoch`, `3 epochs`."""
    return f"{n} {word}" + ("" if n == 1 else "s")
