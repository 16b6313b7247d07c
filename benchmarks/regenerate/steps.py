"""The ordered table of everything derived from the records (and the code), one step per generator.

`STEPS` is the single list of derived files: `gradzoo regenerate` runs it in
order, `gradzoo regenerate --check` compares its outputs, `results/README.md`
names it. A step writes under two roots: the results folder (`results:` outputs)
and the repository checkout (`repo:` outputs: the README's blocks, the doctor's
evidence, the pretrained weights), so a check can write both into a temporary
folder and compare them with the committed files.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

# The repository checkout this code runs from (benchmarks/regenerate/steps.py -> the root).
REPO = Path(__file__).resolve().parents[2]
EVIDENCE_FILE = "benchmarks/doctor/evidence.json"  # relative to the repository root
WEIGHTS_DIR = "zoo/weights"


@dataclasses.dataclass
class Roots:
    """Where a run of the steps reads and writes: the results folder and the repository root.

    `render=False` lays the report's figures out without rendering them (what
    `--check` compares: their names). `records()` loads the records once per run.
    """

    results: Path
    repo: Path
    render: bool = True
    _loaded: tuple | None = None

    def records(self):
        """`(records, problems)` of the results folder (see `reporting.report.check_results_dir`)."""
        from gradzoo.benchmarks.reporting.report import check_results_dir

        if self._loaded is None:
            self._loaded = check_results_dir(self.results)
        return self._loaded


@dataclasses.dataclass(frozen=True)
class Step:
    """One generator: what it writes, what it reads, and how to run it.

    Args:
        name: what `--only` takes.
        outputs: `"results:<path>"` or `"repo:<path>"` (or a function giving one,
            so that listing the steps imports no generator); a path ending in `/` is a
            folder (hashed whole; `--check` compares its file names only); `<path>#<name>` is the
            generated block `<name>` of that file (its state is the block alone,
            so two steps can write blocks of one file).
        inputs: the same forms, for data the step reads (`results:records/`).
        code: folders or files of the repository whose source the outputs depend on.
        run: writes the outputs under `Roots`; returns, for a figure folder, the
            file names it holds (or would hold, when not rendered).
        checked: `--check` compares the outputs with the committed ones. A step
            that trains (the doctor example, the pretrained weights) is not.
        why_unchecked: for an unchecked step, the line `--check` prints instead.
        optional: runs only when asked for (`--with-pretrained` or `--only`).
    """

    name: str
    outputs: tuple[str | Callable[[], str], ...]
    inputs: tuple[str, ...]
    code: tuple[str, ...]
    run: Callable[[Roots], dict | None]
    checked: bool = True
    why_unchecked: str = ""
    optional: bool = False

    def targets(self) -> tuple[str, ...]:
        """The outputs as strings (a block's file is named by its generator's module, imported only now)."""
        return tuple(o() if callable(o) else o for o in self.outputs)


def _tables(roots: Roots) -> None:
    from gradzoo.benchmarks.analysis.tables import write_tables

    write_tables(roots.results, roots.records()[0])


def _claims(roots: Roots) -> None:
    from gradzoo.benchmarks.analysis.claims import write_claims

    write_claims(roots.results, roots.records()[0])


def _report(roots: Roots) -> dict:
    from gradzoo.benchmarks.reporting.report import FIGURES_SUBDIR, build_report

    paths = build_report(roots.results, tables=False, render=roots.render)
    return {f"{FIGURES_SUBDIR}/": sorted(Path(p).name for p in paths["figures"])}


def _readme(roots: Roots) -> None:
    from gradzoo.benchmarks.reporting.readme import HEADLINE, headline_markdown

    HEADLINE.update(roots.repo, headline_markdown(roots.results))


def _evidence(roots: Roots) -> None:
    from gradzoo.benchmarks.doctor.evidence import build_evidence, evidence_text
    from gradzoo.benchmarks.storage import write_atomic

    document, _ = build_evidence(roots.results)
    write_atomic(roots.repo / EVIDENCE_FILE, evidence_text(document))


def _doctor_example(roots: Roots) -> None:
    from gradzoo.benchmarks.doctor.example import EXAMPLE, example_markdown

    EXAMPLE.update(roots.repo, example_markdown())


def _pretrained(roots: Roots) -> None:
    from gradzoo.benchmarks.train_pretrained import main

    if main(["--out", str(roots.repo / WEIGHTS_DIR)]) != 0:
        raise RuntimeError("training the pretrained models failed; its output above says why")


def _headline_block() -> str:
    from gradzoo.benchmarks.reporting.readme import HEADLINE

    return f"repo:{HEADLINE.file}#{HEADLINE.name}"


def _example_block() -> str:
    from gradzoo.benchmarks.doctor.example import EXAMPLE

    return f"repo:{EXAMPLE.file}#{EXAMPLE.name}"


_RECORDS = ("results:records/",)
_SUITES = ("results:records/", "results:suites/")
_ANALYSIS = ("benchmarks/analysis", "benchmarks/harness/records")

# In order: a step reads nothing a later step writes.
STEPS: tuple[Step, ...] = (
    Step("tables", ("results:convergence.csv", "results:gradients.csv.gz", "results:comparison.csv", "results:comparison.md"),
         _RECORDS, _ANALYSIS, _tables),
    Step("claims", ("results:claims.csv", "results:claims.md"), _SUITES, _ANALYSIS, _claims),
    Step("report", ("results:report.md", "results:figures/"), _SUITES, (*_ANALYSIS, "benchmarks/reporting"), _report),
    Step("readme", (_headline_block,), _SUITES, (*_ANALYSIS, "benchmarks/reporting"), _readme),
    Step("evidence", (f"repo:{EVIDENCE_FILE}",), _RECORDS, (*_ANALYSIS, "benchmarks/doctor/evidence.py",
         "benchmarks/doctor/evidence_types.py"), _evidence),  # fmt: skip
    Step("doctor-example", (_example_block,), (), ("benchmarks/doctor", "benchmarks/datasets", "benchmarks/harness", "zoo"),
         _doctor_example,
         checked=False, why_unchecked="trains two small models and its numbers vary with the CPU model; "
         "tests/results/test_doctor_example.py compares it within 10%"),  # fmt: skip
    Step("pretrained", (f"repo:{WEIGHTS_DIR}/",), (), ("benchmarks/suites", "benchmarks/harness", "zoo"), _pretrained,
         checked=False, why_unchecked="retrains (run it with --with-pretrained); tests/zoo/test_pretrained.py checks "
         "the shipped files' hashes and test scores", optional=True),  # fmt: skip
)
STEP_NAMES = tuple(s.name for s in STEPS)
