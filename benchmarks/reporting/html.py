"""The report's Markdown as one self-contained HTML page, through a Markdown library.

`markdown-it-py` renders CommonMark plus tables with raw HTML disabled, so any
text that reaches the report from a suite or a record (a group name, a claim)
is escaped, never interpreted. Images are embedded as base64 data URIs, and
only PNG files that lie directly in the report's own figures folder are: any
other image reference (another folder, `..`, a link, an absolute path) is
rendered as its alt text, so a report can never carry a file from elsewhere
on the machine.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 1400px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #ddd; padding-bottom: .2em; }
h2 { border-bottom: 1px solid #eee; padding-bottom: .2em; margin-top: 2em; }
h3 { margin-top: 1.8em; }
code { background: #f3f3f3; padding: 0 .25em; border-radius: 3px; font-size: 90%; }
table { border-collapse: collapse; font-size: 75%; margin: 1em 0; display: block; overflow-x: auto; }
td code { white-space: nowrap; }
th, td { border: 1px solid #ccc; padding: .25em .5em; text-align: left; vertical-align: top; }
th { background: #f5f5f5; }
tr:nth-child(even) td { background: #fafafa; }
img { max-width: 100%; height: auto; border: 1px solid #eee; display: block; margin: 1em 0 .3em; }
p > em:only-child, img + em { font-size: 85%; color: #555; }
"""
_FIGURE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\.png$")


def embeddable(src: str, figures_dir: Path) -> Path | None:
    """The figure file an image reference may embed, or `None`: only `figures/<name>.png` inside `figures_dir`."""
    parts = src.split("/")
    if len(parts) != 2 or parts[0] != figures_dir.name or not _FIGURE_NAME.match(parts[1]):
        return None
    path = figures_dir / parts[1]
    try:
        if path.is_symlink() or path.resolve().parent != figures_dir.resolve() or not path.is_file():
            return None
    except OSError:
        return None
    return path


def markdown_to_html(text: str, figures_dir: Path, title: str = "gradzoo report") -> str:
    """One HTML page from the report's Markdown, figures from `figures_dir` inlined.

    Args:
        text: the Markdown of `report.md`.
        figures_dir: the report's own figures folder; image references are
            relative to its parent (`figures/x.png`).
        title: the page title.
    """
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False, "typographer": False}).enable("table")
    default_image = md.renderer.rules.get("image")

    def image(renderer, tokens, idx, options, env):
        token = tokens[idx]
        path = embeddable(token.attrGet("src") or "", Path(figures_dir))
        alt = "".join(child.content for child in token.children or [])
        if path is None:
            return html.escape(alt)  # not ours to embed: say what it was, show nothing
        token.attrSet("src", "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii"))
        return default_image(tokens, idx, options, env)

    md.add_render_rule("image", image)
    body = md.render(text)
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
            + body + "</body>\n</html>\n")  # fmt: skip
