"""How a report groups records: pairs (`Unit`s), sweeps, and where the numbers came from."""

from __future__ import annotations

import datetime as _dt
import re
from collections import Counter

from benchmarks.harness.records import RECORDS_SUBDIR, RunRecord


def slug(text: str) -> str:
    """A file-name-safe form of `text` (figure names)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")


class Unit:
    """A pair: a baseline and its partners, in one suite, group, sweep point and dataset (evaluation runs)."""

    def __init__(self, suite, group, sweep, dataset, pair):
        self.suite, self.group, self.sweep, self.dataset, self.pair = suite, group, sweep, dataset, pair
        self.runs: dict[str, list[RunRecord]] = {}

    @property
    def sweep_text(self) -> str:
        from benchmarks.harness.records import sweep_label

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
        others = [m for m in self.models if m != self.pair]
        names = " vs ".join(f"`{m}`" for m in ([self.pair] if self.pair in self.runs else []) + others)
        if self.pair not in self.runs:
            names += f" (baseline `{self.pair}` not run)"
        sweep = f" at {self.sweep_text}" if self.sweep else ""
        return f"{self.suite} / {self.group}{sweep}: {names}"

    @property
    def slug(self) -> str:
        parts = [self.suite, self.group, self.sweep_text, self.dataset, self.pair]
        return slug("_".join(p for p in parts if p))


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
        lines.append(f"- Suite `{suite}`: {len(evals)} evaluation runs, seeds {', '.join(map(str, seeds)) or '–'}, "
                     f"{'/'.join(map(str, epochs)) or '–'} epochs per run"
                     + (f"; {trials} tuning trials." if trials else "."))  # fmt: skip

    lines.append("- Versions: " + _distinct(
        f"gradzoo {r.env.gradzoo}, Keras {r.env.keras}, backend {r.env.backend} {r.env.backend_version}, "
        f"Python {r.env.python}, precision {r.config.precision}" for r in records) + ".")  # fmt: skip

    def hardware(r):
        h = r.env.hardware
        devices = ", ".join(h.devices) or "none listed"
        return (f"{r.env.platform}, {h.machine}" + (f" ({h.processor})" if h.processor else "")
                + f", {h.cpu_count} CPU cores, devices: {devices}")  # fmt: skip

    lines.append("- Hardware: " + _distinct(hardware(r) for r in records) + ".")
    lines.append("- Git commit: " + _distinct(f"`{r.env.git_commit}`" if r.env.git_commit else "unknown" for r in records) + ".")
    created = sorted(r.created for r in records)
    if created:
        lines.append(f"- Runs recorded: {created[0]}" + (f" to {created[-1]}" if created[-1] != created[0] else "") + " (UTC).")
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    lines.append(f"- Report generated: {now} (UTC), from {len(records)} records in `{RECORDS_SUBDIR}/`.")
    return lines
