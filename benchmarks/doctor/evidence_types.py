"""The doctor's evidence file, typed: `Evidence` is the only definition of `evidence.json`.

`gradzoo.benchmarks.doctor.evidence` builds an `Evidence` from the records and
writes it; the doctor (`suggest.py`) reads the shipped file back through
`Evidence.model_validate_json`, so a field renamed on one side fails loudly on the
other instead of reading `None`. Numbers are rounded to 3 significant digits
when built (the file stays small and stable); `None` is a number that was missing
or not finite.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EvidenceSide(_Frozen):
    """One model of a pair, over its seeds: medians of the gradient ratios, mean of the best score."""

    model: str
    first_last_ratio: float | None  # first/last weight layer gradient norm over epoch 1
    early_late_ratio_init: float | None  # recurrent nets: early/late input-step gradient at initialization
    early_late_ratio: float | None  # ... and at the end of training
    best_score: float | None  # best validation score, on the dataset's metric
    peak_global_norm: float | None  # the largest raw global gradient norm of any seed
    clipping: str | None  # e.g. `clipnorm=1`; `None` without clipping
    clip_rate: float | None  # share of updates the clipping shrank
    saturated: float | None  # sigmoid/tanh units saturated at the end
    dead: float | None  # ReLU units dead at the end
    verdict: str  # the most common verdict over seeds (`analysis.verdicts.verdict`)
    reached_target: str  # "2/3": seeds that reached the target
    diverged: str  # "0/3": seeds that diverged


class EvidencePair(_Frozen):
    """A baseline beside a mitigated model (or one model without and with clipping), and the fix between."""

    fix: str  # a key of `evidence.FIXES`
    suite: str | None
    group: str | None
    sweep: str  # the sweep point's label, `""` outside a sweep
    family: str  # the zoo family: mlp, cnn, rnn
    dataset: str
    metric: str
    metric_mode: Literal["max", "min"]
    chance: float | None
    target: float | None
    seeds: int
    weight_layers: int | None
    depth: int | None
    length: int | None
    baseline: EvidenceSide
    mitigated: EvidenceSide


class EvidenceFix(_Frozen):
    """One fix the doctor can cite: its title and every pair that shows it."""

    title: str
    pairs: list[EvidencePair]


class Evidence(_Frozen):
    """The whole file: where it came from and the pairs per fix (fixes with no pair are left out)."""

    generated_by: str = ""
    source: str = ""
    eval_runs: int = 0
    fixes: dict[str, EvidenceFix] = {}

    def pairs(self, fix: str) -> list[EvidencePair]:
        """The pairs of `fix`; an empty list for a fix the records do not show."""
        entry = self.fixes.get(fix)
        return list(entry.pairs) if entry is not None else []
