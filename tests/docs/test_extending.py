"""docs/extending.md's worked examples are real: every fenced block of the page runs, in page order, in a
fresh process (registrations must not leak into the other tests' registries).

A Python block titled with a module's file (`title="zoo/mlp.py"`) runs in that module's namespace, which is
what pasting it at the end of the file does; an untitled one runs as a user's session. A TOML block titled
`x.toml` is written to a scratch folder as that file (`benchmarks/suites/claims.toml`: the shipped file with
the block appended) and loaded with every check. Every `gradzoo run ... --dry-run` line of a bash block runs
through the CLI on those files.

Run by hand: `python tests/docs/test_extending.py docs/extending.md SCRATCH_DIR`.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "extending.md"
FENCE = re.compile(r'^```(\w+)(?:[ \t]+title="([^"]+)")?[ \t]*\n(.*?)^```[ \t]*$', re.S | re.M)


def blocks(text: str) -> list[tuple[str, str | None, str]]:
    """The page's fenced blocks as (language, title or None, code), in page order."""
    return [(m.group(1), m.group(2), m.group(3)) for m in FENCE.finditer(text)]


def test_the_page_has_the_three_worked_examples():
    found = blocks(PAGE.read_text())
    titles = {title for _, title, _ in found}
    assert {"zoo/mlp.py", "benchmarks/datasets/embedded.py", "benchmarks/suites/claims.toml"} <= titles
    assert sum(1 for lang, _, code in found if lang == "bash" and "--dry-run" in code) >= 2


def test_every_example_on_the_page_runs(tmp_path):
    env = {**os.environ, "GRADZOO_CACHE": str(tmp_path / "cache"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, __file__, str(PAGE), str(tmp_path)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    ran = [line.split()[1] for line in done.stdout.splitlines() if line.startswith("ran ")]
    # Each kind of block ran: two module registrations, the four sessions (the pair, the dataset, the
    # instrument, the fix declarations), both suites, both dry runs.
    assert sorted(ran) == ["dry-run"] * 2 + ["module"] * 2 + ["session"] * 4 + ["suite"] * 2, done.stdout


def run_page(page: Path, scratch: Path) -> None:
    import importlib

    from gradzoo.benchmarks.cli import main
    from gradzoo.benchmarks.harness.plan.suites import SUITES_DIR, load_suite

    session: dict = {"__name__": "__main__"}
    suites: dict[str, Path] = {}  # what a `gradzoo run NAME` line of the page means here
    for lang, title, code in blocks(page.read_text()):
        if lang == "python" and title:
            module = importlib.import_module("gradzoo." + title.removesuffix(".py").replace("/", "."))
            exec(compile(code, f"{page.name}: {title}", "exec"), vars(module))
            print("ran module", title)
        elif lang == "python":
            exec(compile(code, f"{page.name}: session", "exec"), session)
            print("ran session")
        elif lang == "toml" and title:
            path = scratch / Path(title).name
            shipped = SUITES_DIR / path.name if title.startswith("benchmarks/suites/") else None
            path.write_text((shipped.read_text() + "\n" if shipped and shipped.exists() else "") + code)
            suite = load_suite(path, check_models=True)
            assert any(group.expect for group in suite.groups) or not title.endswith("claims.toml"), title
            suites[path.name] = suites[path.stem] = path
            print("ran suite", title)
        elif lang == "bash":
            for line in code.splitlines():
                args = shlex.split(line.split("#", 1)[0])
                if args[:2] == ["gradzoo", "run"] and "--dry-run" in args:
                    args[2] = str(suites[args[2]])  # the scratch copy the page's block wrote
                    status = main(args[1:] + ["--out", str(scratch / "runs")])
                    assert status == 0, line
                    assert not (scratch / "runs").exists(), "a dry run touched its output folder"
                    print("ran dry-run", line)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    run_page(Path(sys.argv[1]), Path(sys.argv[2]))
