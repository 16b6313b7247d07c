"""MkDocs hooks: the API pages read `gradzoo.zoo` and `gradzoo.benchmarks` from the source, and docs/cli.md gets
each command's `--help`.

The repository keeps `zoo/` and `benchmarks/` beside `gradzoo/`; an installed wheel has them inside it
(setup.py's `package_dir`), and a checkout joins them at import time (`gradzoo/__init__.py` extends its
`__path__`). Griffe's static analysis runs no code, so it sees a `gradzoo` package without them, and its
dynamic inspection does not help either (it skips a submodule that has a file, expecting to find it on disk
under gradzoo/). So this module lays out the wheel's tree when MkDocs loads it, before any page is rendered
(`build/api-src/gradzoo/`: a copy of `__init__.py`, links to `zoo/` and `benchmarks/`) and mkdocs.yml points
mkdocstrings there: the API pages document the code under the names users import, from the source alone,
without importing Keras.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

FOLDERS = ("zoo", "benchmarks")  # as in setup.py


def lay_out_api_tree(root: Path) -> None:
    """`root/build/api-src/gradzoo/`: a copy of `gradzoo/__init__.py` and links to `zoo/` and `benchmarks/`."""
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


# Laid out when MkDocs loads this module, while it reads mkdocs.yml: mkdocstrings drops a `paths` entry that
# does not exist when it sets up its handler, which on a fresh clone came before this module's `on_config`.
lay_out_api_tree(Path(__file__).resolve().parent.parent)


def on_config(config):
    root = Path(config.config_file_path).resolve().parent
    # The CLI reference imports this checkout's gradzoo, not whichever one is installed (an editable install
    # points at the checkout it was made from, and `mkdocs` does not put the working directory on sys.path).
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    # Snippets resolve against the working directory; the included results/speed/ files are the repository's.
    config["mdx_configs"].setdefault("pymdownx.snippets", {})["base_path"] = [str(root)]
    lay_out_api_tree(root)  # the same tree, should mkdocs.yml sit elsewhere than beside docs/
    return config


CLI_MARKER = "<!-- cli-help: filled in by docs/hooks.py from the argparse parsers -->"
HELP_WIDTH = "100"  # argparse wraps help text to $COLUMNS: fixed, so a build does not depend on the terminal


def cli_reference() -> str:
    """`gradzoo --help` and every subcommand's `--help`, each under its own heading, as Markdown.

    Read from the parsers `gradzoo` itself builds, at build time, so the reference cannot drift from the
    code; building the parsers imports no Keras.
    """
    import argparse

    from gradzoo.benchmarks.cli import build_parser

    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = HELP_WIDTH
    try:
        parser = build_parser()
        sections = [("gradzoo", parser)]
        for action in parser._actions:  # argparse exposes subcommands only through its actions
            if isinstance(action, argparse._SubParsersAction):
                sections += [(f"gradzoo {name}", sub) for name, sub in action.choices.items()]
        out = []
        for title, sub in sections:
            out += [f"## `{title}`", "", "```text", sub.format_help().rstrip("\n"), "```", ""]
        return "\n".join(out)
    finally:
        if previous is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = previous


def on_page_markdown(markdown, page, config, files):
    if page.file.src_uri != "cli.md":
        return markdown
    if CLI_MARKER not in markdown:
        raise ValueError(f"docs/cli.md lost its marker line {CLI_MARKER!r}, where the CLI reference goes")
    return markdown.replace(CLI_MARKER, cli_reference())
