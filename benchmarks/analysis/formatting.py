"""Numbers as tables and prose show them: one formatter for every table, report and figure."""

from __future__ import annotations

import math
import re


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


# Text from a suite or a record (a group name, a claim, a model name) that reaches Markdown: the constructs that
# would let it pull in HTML, an image or a link, or break the table or code span around it.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_ESCAPED = re.compile(r"[\\`*\[\]]")
_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")  # `a < b` stays as it is; `<script`, `</x`, `<!--`, `<?` do not
_ENTITY = re.compile(r"&(?=#?[A-Za-z0-9]+;)")  # `Glorot & Bengio` stays; `&lt;` shows as typed


def md_escape(text) -> str:
    """User text as literal Markdown prose: shown as typed, never as HTML, an image, a link or emphasis.

    Backslash-escapes `\\`, backticks, `*`, `[` and `]` (no link, image,
    footnote or code span can start), writes `<` as `&lt;` where it could open
    a tag or an autolink and `&` as `&amp;` where it could start an entity, and
    turns control characters (a newline would end a table row) into spaces.
    Harmless text (`He et al. 2016`, `a < b`, `Glorot & Bengio`) is unchanged.
    A table cell still escapes `|` around it.
    """
    text = _CONTROL.sub(" ", str(text))
    text = _ESCAPED.sub(lambda m: "\\" + m.group(0), text)
    return _TAG_START.sub("&lt;", _ENTITY.sub("&amp;", text))


def md_code(text) -> str:
    """User text as a Markdown code span (a model name): `` `mlp_he_relu_bn` ``, whatever backticks it holds.

    CommonMark closes a code span at a run of backticks as long as its opening
    one, so the fence is one backtick longer than any run in the text; nothing
    inside a code span is HTML, a link or an image.
    """
    text = _CONTROL.sub(" ", str(text))
    if "`" not in text:
        return f"`{text}`"
    fence = "`" * (max(len(run) for run in re.findall(r"`+", text)) + 1)
    return f"{fence} {text} {fence}"


def md_cell(text) -> str:
    """A Markdown table cell: a `|` (in escaped text or a code span) would end it early."""
    return str(text).replace("|", "\\|")
