"""The README's headline numbers are generated from the shipped records, never typed by hand."""

from pathlib import Path

import pytest

from gradzoo.benchmarks.reporting.readme import HEADLINE, headline_markdown

from helpers import ROOT



def test_readme_headline_matches_the_reference_records():
    if not (ROOT / "results" / "records").is_dir():
        pytest.skip("no reference records in results/")
    block = HEADLINE.current(HEADLINE.path(ROOT).read_text())
    assert block is not None, "README.md lost its headline markers"
    assert block == headline_markdown(ROOT / "results"), "run `python -m gradzoo.benchmarks.reporting.readme` to regenerate the headline"


def test_readme_gives_the_two_commands():
    text = (ROOT / "README.md").read_text()
    assert "pip install -e . && gradzoo run" in text
    assert 'pip install -e ".[test]" && pytest' in text
    assert 'pip install -e ".[test]" && pytest' in (ROOT / ".ci" / "run").read_text()
