"""The README stays a front page and the manual's links hold: checks that need no MkDocs (CI also runs
`mkdocs build --strict`, which checks anchors and API references)."""

from __future__ import annotations

import re
from pathlib import Path

from gradzoo.benchmarks.harness.plan.expectations import METRICS

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
README_LIMIT = 12_000  # bytes (`wc -c`): the front page; the manual is docs/
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCED = re.compile(r"^```.*?^```", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")


def pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def relative_links(path: Path) -> list[str]:
    """The relative link targets of a Markdown file, outside code (no URLs, no in-page anchors)."""
    text = INLINE_CODE.sub("", FENCED.sub("", path.read_text()))
    targets = (m.group(1) for m in LINK.finditer(text))
    return [t for t in targets if not re.match(r"[a-z][a-z0-9+.-]*:|#", t)]


def test_the_readme_is_a_front_page():
    size = len((ROOT / "README.md").read_bytes())
    assert size <= README_LIMIT, f"README.md is {size} bytes; move detail into docs/ (limit {README_LIMIT})"


def test_every_relative_link_points_to_an_existing_file():
    files = [ROOT / "README.md", *pages()]
    broken = [f"{f.relative_to(ROOT)}: {t}" for f in files for t in relative_links(f)
              if not (f.parent / t.split("#", 1)[0]).exists()]  # fmt: skip
    assert not broken, broken
    assert sum(len(relative_links(f)) for f in files) > 50, "the link pattern found almost no links"


def test_the_manual_links_only_inside_docs():
    # MkDocs publishes docs/ alone: a link out of it would be broken on the built site.
    outside = [f"{p.relative_to(ROOT)}: {t}" for p in pages() for t in relative_links(p)
               if DOCS.resolve() not in (p.parent / t.split("#", 1)[0]).resolve().parents]  # fmt: skip
    assert not outside, outside


def test_every_page_is_in_the_navigation_and_the_readme_links_the_manual():
    nav = set(re.findall(r":\s*([\w/-]+\.md)\s*$", (ROOT / "mkdocs.yml").read_text(), re.M))
    assert nav == {str(p.relative_to(DOCS)) for p in pages()}
    readme = set(relative_links(ROOT / "README.md"))
    assert {f"docs/{p}" for p in nav if not p.startswith("api/")} <= readme | {"docs/index.md"}


def test_the_claims_page_names_every_metric_an_expectation_may_use():
    text = (DOCS / "claims.md").read_text()
    assert all(f"`{metric}`" in text for metric in METRICS), [m for m in METRICS if f"`{m}`" not in text]


def _hooks():
    import importlib.util

    spec = importlib.util.spec_from_file_location("gradzoo_docs_hooks", DOCS / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_cli_reference_has_every_command_and_option():
    from gradzoo.benchmarks.cli import build_parser

    reference = _hooks().cli_reference()
    for command in ("list", "run", "report", "pretrained", "doctor"):
        assert f"## `gradzoo {command}`" in reference and f"usage: gradzoo {command}" in reference, command
    run = next(a for a in build_parser()._actions if a.dest == "command").choices["run"]
    options = [o for action in run._actions for o in action.option_strings if o.startswith("--")]
    assert options and all(o in reference for o in options), [o for o in options if o not in reference]


def test_the_api_pages_see_the_installed_layout():
    # docs/hooks.py lays out gradzoo/ as setup.py installs it: the same folders, under the same names.
    import ast

    tree = ast.parse((ROOT / "setup.py").read_text())
    folders = [ast.literal_eval(n.value) for n in tree.body
               if isinstance(n, ast.Assign) and [getattr(t, "id", None) for t in n.targets] == ["FOLDERS"]]  # fmt: skip
    assert folders == [_hooks().FOLDERS]
