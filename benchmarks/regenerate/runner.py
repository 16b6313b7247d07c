"""Running the steps of `steps.STEPS`: resumable by content hashes, and a check that writes nothing.

Resuming: after each step, `RESULTS/checkpoints/regenerate.json` keeps the
sha256 of the step's inputs (the records and suites it reads, and the source of
the code it runs) and of the outputs it wrote. A step whose inputs and current
outputs still hash to what was kept is skipped, so a killed run picks up at the
first step not done, and an output edited by hand (or an input changed) makes
its step run again. The file sits in the results folder's `checkpoints/`, which
git ignores.

Checking: every checked step runs into a temporary folder (the records and
suites copied there, the files holding generated blocks copied from the
checkout), figures laid out but not rendered, and each output is compared byte
for byte with the committed one; figure folders are compared by file names.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from gradzoo.benchmarks.errors import UserError
from gradzoo.benchmarks.regenerate.steps import REPO, STEP_NAMES, STEPS, Roots, Step

STATE_FILE = "checkpoints/regenerate.json"  # under the results folder
DEFAULT_RESULTS = "results"


def _parse(spec: str) -> tuple[str, str, str | None]:
    """`"repo:README.md#headline"` -> `("repo", "README.md", "headline")`."""
    root, rest = spec.split(":", 1)
    path, _, block = rest.partition("#")
    return root, path, block or None


def _path(roots: Roots, spec: str) -> Path:
    root, path, _ = _parse(spec)
    return (roots.results if root == "results" else roots.repo) / path


def _block_body(text: str, name: str) -> str | None:
    """The text between a block's markers (see `reporting.blocks.Block`), or `None`."""
    start, end = f"<!-- {name}:start", f"<!-- {name}:end -->"
    if start not in text or end not in text:
        return None
    return text.split(start, 1)[1].split(end, 1)[0]


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    return [path] if path.is_file() else []


def _hash_into(digest, label: str, path: Path, block: str | None = None) -> None:
    files = _files(path)
    digest.update(f"{label}\0{len(files)}\0".encode())
    for f in files:
        data = f.read_bytes()
        if block is not None:
            body = _block_body(data.decode("utf-8", "replace"), block)
            data = b"\0missing block" if body is None else body.encode()
        digest.update(f"{f.relative_to(path) if f != path else f.name}\0{len(data)}\0".encode())
        digest.update(data)


def inputs_hash(step: Step, roots: Roots) -> str:
    """The sha256 of what a step reads: its inputs under `roots` and its code in this checkout."""
    digest = hashlib.sha256(step.name.encode())
    for spec in step.inputs:
        _hash_into(digest, spec, _path(roots, spec))
    for code in step.code:
        _hash_into(digest, code, REPO / code)
    return digest.hexdigest()


def outputs_hash(step: Step, roots: Roots) -> str:
    """The sha256 of a step's outputs as they are now (a generated block alone, not its whole file)."""
    digest = hashlib.sha256(step.name.encode())
    for spec in step.targets():
        _hash_into(digest, spec, _path(roots, spec), _parse(spec)[2])
    return digest.hexdigest()


def _read_state(path: Path) -> dict:
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):  # missing, or cut short by hand: every step just runs again
        return {}
    return state.get("steps", {}) if isinstance(state, dict) else {}


def select(only=None, with_pretrained: bool = False) -> list[Step]:
    """The steps to run, in table order: `only` (names) if given, else all but the optional ones unless asked.

    Raises:
        UserError: a name in `only` is not a step.
    """
    unknown = [n for n in only or () if n not in STEP_NAMES]
    if unknown:
        raise UserError(f"No step {', '.join(map(repr, unknown))}; the steps are {', '.join(STEP_NAMES)}.")
    if only:
        return [s for s in STEPS if s.name in only]
    return [s for s in STEPS if not s.optional or with_pretrained]


def fix_command(step: Step, results) -> str:
    """The command that rewrites a step's outputs."""
    where = "" if str(results) == DEFAULT_RESULTS else f" --results {results}"
    extra = " --with-pretrained" if step.optional else ""
    return f"gradzoo regenerate --only {step.name}{where}{extra}"


def _check_results(results) -> Path:
    path = Path(results)
    if not (path / "records").is_dir():
        raise UserError(f"{str(path)!r} has no records/ folder; point --results at the folder `gradzoo run --out` wrote.")
    return path


def regenerate(results=DEFAULT_RESULTS, repo=None, only=None, with_pretrained: bool = False,
               log: Callable[[str], None] = print) -> dict[str, str]:  # fmt: skip
    """Runs the selected steps in order, skipping those already up to date; returns `{step: "ran" | "skipped"}`."""
    from gradzoo.benchmarks.storage import write_atomic

    roots = Roots(_check_results(results), Path(repo or REPO))
    state_path = roots.results / STATE_FILE
    state = _read_state(state_path)
    done = {}
    for step in select(only, with_pretrained):
        before = inputs_hash(step, roots)
        kept = state.get(step.name, {})
        if kept.get("inputs") == before and kept.get("outputs") == outputs_hash(step, roots):
            log(f"{step.name}: up to date, skipped")
            done[step.name] = "skipped"
            continue
        log(f"{step.name}: regenerating {', '.join(_parse(s)[1] for s in step.targets())}")
        step.run(roots)
        state[step.name] = {"inputs": before, "outputs": outputs_hash(step, roots)}
        write_atomic(state_path, json.dumps({"steps": state}, indent=1, sort_keys=True) + "\n")
        done[step.name] = "ran"
    return done


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def check(results=DEFAULT_RESULTS, repo=None, only=None, log: Callable[[str], None] = print) -> list[str]:
    """Regenerates the checked steps into a temporary folder and compares; returns one line per stale file.

    `repo` is the checkout holding the README and the doctor's evidence; defaults
    to the one this code runs from. Nothing is written under `results` or `repo`.
    """
    committed = Roots(_check_results(results), Path(repo or REPO))
    stale = []
    with tempfile.TemporaryDirectory(prefix="gradzoo-regenerate-") as tmp:
        fresh = Roots(Path(tmp) / "results", Path(tmp) / "repo", render=False)
        for sub in ("records", "suites"):
            if (committed.results / sub).is_dir():
                shutil.copytree(committed.results / sub, fresh.results / sub)
        for step in select(only, with_pretrained=True):
            if not step.checked:
                log(f"{step.name}: not compared: {step.why_unchecked}")
                continue
            for spec in step.targets():  # the hand-written rest of a file holding a block comes from the checkout
                if _parse(spec)[2] and _path(committed, spec).is_file():
                    target = _path(fresh, spec)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(_path(committed, spec), target)
            names = step.run(fresh) or {}
            for spec in step.targets():
                path = _path(committed, spec)
                problem = _compare(path, _path(fresh, spec), names.get(_parse(spec)[1]))
                if problem:
                    stale.append(f"{_display(path)}: {problem}; run `{fix_command(step, results)}`")
    for line in stale:
        log(line)
    return stale


def _compare(committed: Path, fresh: Path, names: list[str] | None) -> str | None:
    """What differs between a committed output and a regenerated one, in a few words, or `None`."""
    if names is not None:  # a figure folder: the names the report links
        have = {p.name for p in committed.glob("*.png")}
        missing, extra = sorted(set(names) - have), sorted(have - set(names))
        if not missing and not extra:
            return None
        return f"figures differ from the records' ({len(missing)} missing, e.g. {missing[:1]}; {len(extra)} not drawn, e.g. {extra[:1]})"
    if not committed.is_file() or not fresh.is_file():
        if committed.is_file() == fresh.is_file():
            return None  # neither: these records give none (no claims group, say)
        return "missing" if fresh.is_file() else "not generated from these records (delete it)"
    if committed.read_bytes() != fresh.read_bytes():
        return "stale (differs from what the records give)"
    return None
