"""Everything here checks the committed reference results (records, tables, generated README and docs blocks,
the doctor's evidence), not the code's behaviour: it carries the `results` marker, so `pytest -m "not results"` runs
the unit tests alone and `pytest -m results` only these checks."""

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items):
    for item in items:
        if HERE in Path(item.fspath).resolve().parents:
            item.add_marker(pytest.mark.results)
