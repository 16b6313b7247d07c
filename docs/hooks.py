"""MkDocs hook: lets mkdocstrings find `gradzoo.zoo` and `gradzoo.benchmarks` by reading the source.

The repository keeps `zoo/` and `benchmarks/` beside `gradzoo/`; an installed wheel has them inside it
(setup.py's `package_dir`), and a checkout joins them at import time (`gradzoo/__init__.py` extends its
`__path__`). Griffe's static analysis runs no code, so it sees a `gradzoo` package without them. This hook
lays out the wheel's tree (`build/api-src/gradzoo/`: a copy of `__init__.py`, links to `zoo/` and
`benchmarks/`) before any page is rendered, and mkdocs.yml points mkdocstrings there: the API pages then document the code under the names
users import, from the source alone, without importing Keras.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

FOLDERS = ("zoo", "benchmarks")  # as in setup.py


def on_config(config):
    root = Path(config.config_file_path).resolve().parent
    tree = root / "build" / "api-src" / "gradzoo"
    tree.mkdir(parents=True, exist_ok=True)
    # A copy, not a link: griffe resolves a linked `__init__.py` to gradzoo/ and looks for submodules there.
    shutil.copyfile(root / "gradzoo" / "__init__.py", tree / "__init__.py")
    for name in FOLDERS:
        link, target = tree / name, root / name
        if link.is_symlink() and link.resolve() == target:
            continue
        if link.is_symlink() or link.exists():
            link.unlink()
        os.symlink(os.path.relpath(target, tree), link)
    return config
