"""How a report groups records: pairs (`Unit`s), sweeps, and where the numbers came from."""

from __future__ import annotations

import hashlib
import re
from collections import Counter

from gradzoo.benchmarks.analysis.formatting import md_code, md_escape
from gradzoo.benchmarks.harness.records import RECORDS_SUBDIR, RunRecord

MAX_SLUG = 120  # file systems allow 255 bytes a name; a figure adds its kind and `.png`


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]


def slug(text: str) -> str:
    """A file-name-safe form of `text` (figure names); a long one is cut and ends with a hash of the whole."""
    out = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")
    return out if len(out) <= MAX_SLUG else f"{out[:MAX_SLUG - 9]}-{_short_hash(text)}"


class FigureNames:
    """One report's figure file names: each raw key (a group, a pair, a sweep) gets files of its own.

    `slug` drops every character a file name should not carry, so `a<b` and
    `a>b` (or `A` and `a` on a case-insensitive disk) would share a file and
    one section would show the other's figure. A name already given to another
    key gets a short hash of the raw key appended; names stay as `slug` makes
    them otherwise, so reports keep their figure names from one run to the next.
    """

    def __init__(self):
        self._owners: dict[str, str] = {}  # casefolded file name -> the raw key it belongs to

    def __call__(self, key: str, suffix: str) -> str:
        """The file name for figure `suffix` (e.g. `_curves.png`) of `key`."""
        name, attempt = slug(key) + suffix, 0
        while self._owners.setdefault(name.casefold(), key) != key:
            attempt += 1
            name = f"{slug(key)}-{_short_hash(key if attempt == 1 else f'{key}#{attempt}')}{suffix}"
        return name


class Unit:
    """A pair: a baseline and its partners, in one suite, group, sweep point and dataset (evaluation runs)."""

    def __init__(self, suite, group, sweep, dataset, pair):
        self.suite, self.group, self.sweep, self.dataset, self.pair = suite, group, sweep, dataset, pair
        self.runs: dict[str, list[RunRecord]] = {}

    @property
    def sweep_text(self) -> str:
        from gradzoo.benchmarks.harness.records import sweep_label

        return sweep_label(self.sweep)

    @property
    def models(self) -> list[str]:
        """The baseline first, then its partners in the zoo's order."""
        order = []
        for runs in self.runs.values():
            if runs[0].model.role == "baseline":
                order = list(runs[0].model.partners)
        rank = {name: i for i, name in enumerate([self.pair, *order])}
        registry = {label: runs[0].config.model for label, runs in self.runs.items()}
        return sorted(self.runs, key=lambda m: (rank.get(m, rank.get(registry[m], len(rank))), m))

    @property
    def title(self) -> str:
        """The pair's heading, as Markdown (suite, group and model names escaped)."""
        others = [m for m in self.models if m != self.pair]
        names = " vs ".join(md_code(m) for m in ([self.pair] if self.pair in self.runs else []) + others)
        if self.pair not in self.runs:
            names += f" (baseline {md_code(self.pair)} not run)"
        sweep = f" at {md_escape(self.sweep_text)}" if self.sweep else ""
        return f"{md_escape(self.suite)} / {md_escape(self.group)}{sweep}: {names}"

    @property
    def key(self) -> str:
        """The raw text the pair's figure names come from (see `FigureNames`)."""
        parts = [self.suite, self.group, self.sweep_text, self.dataset, self.pair]
        return "_".join(p for p in parts if p)

    @property
    def slug(self) -> str:
        return slug(self.key)


def _sort_value(value):
    return (0, float(value), "") if isinstance(value, (int, float)) else (1, 0.0, str(value))


def group_units(records: list[RunRecord]) -> list[Unit]:
    """Evaluation records grouped into pairs, in suite/group order and ascending sweep values."""
    units: dict[tuple, Unit] = {}
    group_order: dict[tuple, int] = {}
    for r in records:
        if r.config.phase != "eval":
            continue
        c = r.config
        group_order.setdefault((c.suite, c.group), len(group_order))
        key = (c.suite, c.group, r.sweep_label, c.dataset, r.pair)
        unit = units.setdefault(key, Unit(c.suite, c.group, dict(c.sweep), c.dataset, r.pair))
        unit.runs.setdefault(r.label, []).append(r)
    for unit in units.values():
        for runs in unit.runs.values():
            runs.sort(key=lambda r: r.config.seed)
    return sorted(
        units.values(),
        key=lambda u: (group_order[(u.suite, u.group)], [(k, _sort_value(v)) for k, v in sorted(u.sweep.items())], u.dataset, u.pair),
    )


def _distinct(values) -> str:
    counts = Counter(values)
    if len(counts) == 1:
        return next(iter(counts))
    return "; ".join(f"{v} ({c} runs)" for v, c in counts.most_common())


def provenance_lines(records: list[RunRecord]) -> list[str]:
    """Markdown bullets: suites, seeds, versions, hardware, git commit and dates."""
    lines = []
    suites: dict[str, list] = {}
    for r in records:
        suites.setdefault(r.config.suite or "(no suite)", []).append(r)
    for suite, runs in suites.items():
        evals = [r for r in runs if r.config.phase == "eval"]
        trials = len(runs) - len(evals)
        seeds = sorted({r.config.seed for r in evals})
        epochs = sorted({r.config.epochs for r in evals})
        lines.append(f"- Suite {md_code(suite)}: {len(evals)} evaluation runs, seeds {', '.join(map(str, seeds)) or '–'}, "
                     f"{'/'.join(map(str, epochs)) or '–'} epochs per run"
                     + (f"; {trials} tuning trials." if trials else "."))  # fmt: skip

    lines.append("- Versions: " + md_escape(_distinct(
        f"gradzoo {r.env.gradzoo}, Keras {r.env.keras}, backend {r.env.backend} {r.env.backend_version}, "
        f"Python {r.env.python}, precision {r.config.precision}" for r in records)) + ".")  # fmt: skip

    def hardware(r):
        h = r.env.hardware
        devices = ", ".join(h.devices) or "none listed"
        return (f"{r.env.platform}, {h.machine}" + (f" ({h.processor})" if h.processor else "")
                + f", {h.cpu_count} CPU cores, devices: {devices}")  # fmt: skip

    lines.append("- Hardware: " + md_escape(_distinct(hardware(r) for r in records)) + ".")
    lines.append("- Git commit: " + _distinct(md_code(r.env.git_commit) if r.env.git_commit else "unknown" for r in records) + ".")
    created = sorted(r.created for r in records)
    if created:
        lines.append(f"- Runs recorded: {md_escape(created[0])}" + (f" to {md_escape(created[-1])}" if created[-1] != created[0] else "") + " (UTC).")
    # As of the newest record, not the clock: the same records give the same bytes, which `gradzoo regenerate --check` compares.
    newest = f" as of the newest record ({md_escape(created[-1])} UTC)" if created else ""
    lines.append(f"- Report generated{newest} from {len(records)} records in `{RECORDS_SUBDIR}/`.")
    return lines
