"""Report outputs from hostile names and text: one figure file per section, user text never live Markdown.

The records are made by hand (`tests/helpers.make_record`) and written under
`tmp_path`; nothing trains. A new hostile text is one row of `HOSTILE`.
"""

from __future__ import annotations

import re

import pytest

from helpers import make_record, replace

from gradzoo.benchmarks.harness.records import write_record
from gradzoo.benchmarks.reporting.report import build_report

# Group names that differ only in characters a file name cannot carry (or in case, for macOS and Windows disks).
COLLIDING = [("a<b", "a>b"), ("x y", "x/y"), ("Deep", "deep"), ("a" * 230 + "1", "a" * 230 + "2")]

HOSTILE = [
    "<script>alert(1)</script>",
    "![x](http://evil.example/pixel.png)",
    "[click](http://evil.example)",
    '<img src="http://evil.example/p.png">',
    "<http://evil.example>",
    '<a href="http://evil.example">docs</a>',
    "`x` | y\n# heading",
]


def _rendered(md: str) -> str:
    """The Markdown as a permissive host renders it (raw HTML allowed, as GitHub and editor previews do)."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": True}).enable("table").render(md)


@pytest.fixture
def few_figures(monkeypatch):
    """One kind of pair figure instead of six: naming is the same for every kind, drawing is the slow part."""
    from gradzoo.benchmarks.reporting import report

    curves_only = report.pair_figures()[:1]
    monkeypatch.setattr(report, "pair_figures", lambda: curves_only)


def _pair(group: str, seed: int, index: int, **kw) -> list:
    """A baseline and its mitigated partner in `group` (run ids set by hand: the helper's hold the group)."""
    base = make_record("mlp_sigmoid_deep", group=group, seed=seed, **kw)
    fix = make_record("mlp_he_relu_bn", "mitigated", ratio=0.5, best=0.7, group=group, seed=seed, **kw)
    return [replace(base, run_id=f"{2 * index:016x}"), replace(fix, run_id=f"{2 * index + 1:016x}")]


def _sections(md: str) -> dict[str, list[str]]:
    """`### heading` -> the figure paths that section links."""
    out = {}
    for block in md.split("\n### ")[1:]:
        heading, _, body = block.partition("\n")
        out[heading] = re.findall(r"!\[[^\]]*\]\((figures/[^)]+)\)", body)
    return out


@pytest.mark.parametrize("first, second", COLLIDING, ids=["brackets", "slash", "case", "long"])
def test_groups_whose_names_sanitise_alike_get_their_own_figures(tmp_path, few_figures, first, second):
    out = tmp_path / "results"
    for i, record in enumerate(_pair(first, 0, 0) + _pair(second, 0, 1)):
        write_record(out, replace(record, run_id=f"{i:016x}"))
    paths = build_report(out)
    sections = _sections((out / "report.md").read_text())
    mine = {h: links for h, links in sections.items() if links and " / " in h}
    assert len(mine) == 2, list(sections)
    (h1, links1), (h2, links2) = mine.items()
    assert h1.split(" / ")[1][0] == first[0] and h2.split(" / ")[1][0] == second[0]  # each group its own section
    assert links1 and links2 and not set(links1) & set(links2), (links1, links2)  # each section links its own
    files = {p.name.casefold() for p in (out / "figures").glob("*.png")}
    assert len(files) == len(links1) + len(links2) == len(paths["figures"])  # as many files as figures written
    for link in links1 + links2:
        assert (out / link).is_file() and len(link.split("/")[1]) < 200


CLAIMS_SUITE = """seeds = 1
[[runs]]
name = "evil"
claim = {claim}
source = {source}
description = {claim}
models = ["mlp_sigmoid_deep", "mlp_he_relu_bn"]
dataset = "mnist1d"
[[runs.expect]]
metric = "best_val_metric"
lhs = "mlp_he_relu_bn"
op = ">"
rhs = "mlp_sigmoid_deep"
"""


@pytest.mark.parametrize("text", HOSTILE, ids=["script", "image", "link", "img_tag", "autolink", "anchor", "code_pipe_newline"])
def test_user_text_is_never_live_markdown(tmp_path, monkeypatch, text):
    import json

    from gradzoo.benchmarks.reporting import report

    monkeypatch.setattr(report, "pair_figures", lambda: [])  # the text, not the figures, is under test

    out = tmp_path / "results"
    (out / "suites").mkdir(parents=True)
    # The kept copy of the suite, as `gradzoo run` leaves it: its claim and source are the hostile text.
    (out / "suites" / "s.toml").write_text(CLAIMS_SUITE.format(claim=json.dumps(text), source=json.dumps(text)))
    for record in _pair("evil", 0, 0):
        write_record(out, record)
    for record in _pair(text.replace("\n", " "), 0, 1, suite="s"):  # a group name from a hand-edited record
        write_record(out, record)
    paths = build_report(out)
    for name in ("report.md", "claims.md", "comparison.md"):
        md = (out / name).read_text()
        assert "<script" not in md and "<img" not in md and "<http" not in md, name  # no raw tag or autolink
        page = _rendered(md)
        assert "<script" not in page, name
        for element in re.findall(r"<(?:img|a|script|iframe)\b[^>]*>", page):
            assert "evil.example" not in element, (name, element)  # no image, link or script from the text
        assert not re.search(r"<h1>\s*heading", page), name  # no block the text started
    from gradzoo.benchmarks.analysis.formatting import md_cell, md_escape

    claims = (out / "claims.md").read_text()
    assert md_cell(md_escape(text)) in claims  # shown as typed, escaped
    assert claims.count("\n|") == 2 + 1  # header, rule and one row: the text did not break the table
    assert paths["claims_md"].is_file()


def test_escaping_leaves_harmless_text_as_it_is():
    from gradzoo.benchmarks.analysis.formatting import md_code, md_escape

    for text in ("He et al. 2016, Deep Residual Learning", "a < b", "Glorot & Bengio 2010", "mlp_relu_he @ model.depth=20"):
        assert md_escape(text) == text
    assert md_code("mlp_sigmoid_deep[depth=6, width=16]") == "`mlp_sigmoid_deep[depth=6, width=16]`"
    assert md_code("a``b") == "``` a``b ```"
