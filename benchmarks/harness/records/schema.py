"""The record's types: `RunRecord` and the parts it is made of, with the accessors readers use.

Every reader of records (tables, verdicts, claims, figures, reports, the doctor,
the pretrained manifest) goes through these attributes and accessors; the
format has no other definition.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from gradzoo.benchmarks.harness.records.config import (
    ACTIVATIONS, CLIP_KEYS, GRADIENT_NORMS, SCHEMA_VERSION, TEMPORAL, RunConfig, short_number,
)  # fmt: skip
from gradzoo.benchmarks.harness.records.types import Bool, Count, Int, LayerKind, MetricMode, Num, Seconds, Status, Str


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """The zoo's description of the model a run trained.

    `architecture` names what was actually trained: `plain_20_1d` with
    `depth=110` is `plain_110_1d`; an override no registered model carries is
    written in brackets (`mlp_sigmoid_deep[depth=50]`). `pair` is the baseline
    architecture the run is compared with (its own for a baseline).
    """

    name: Str
    family: Str
    role: Str
    baseline: Str | None
    partners: list[Str]
    description: Str
    defaults: dict
    optimizer: dict
    reference: Str
    architecture: Str
    pair: Str


@dataclasses.dataclass(frozen=True)
class DatasetSummary:
    """The dataset a run trained on, without its data (`Dataset.to_dict()`)."""

    name: Str
    params: dict
    description: Str
    embedded: Bool
    task: Str
    input_shape: list[Count | None]
    input_dtype: Str
    num_outputs: Count
    sequence_output: Bool
    loss: Str
    metric: Str
    metric_mode: MetricMode
    chance: Num
    target: Num
    n_train: Count
    n_val: Count
    n_test: Count
    preprocessing: dict

    @property
    def better(self) -> str:
        """`"higher"` or `"lower"`: which way the metric improves."""
        return "higher" if self.metric_mode == "max" else "lower"

    def is_better(self, a, b) -> bool:
        """Whether score `a` is better than score `b` in the metric's direction."""
        return a > b if self.metric_mode == "max" else a < b


@dataclasses.dataclass(frozen=True)
class Hardware:
    machine: Str | None
    processor: Str | None
    cpu_count: Count | None
    devices: list[Str]


@dataclasses.dataclass(frozen=True)
class Environment:
    """Versions, hardware and provenance of a run."""

    gradzoo: Str | None
    keras: Str
    backend: Str
    backend_version: Str | None
    python: Str
    platform: Str
    hardware: Hardware
    git_commit: Str | None
    executor: Str = "local"
    host: Str | None = None


@dataclasses.dataclass(frozen=True)
class History:
    """Per-epoch curves (one value per epoch; `None` where a value was missing)."""

    epoch: list[Count]
    loss: list[Num | None]
    metric: list[Num | None]
    val_loss: list[Num | None]
    val_metric: list[Num | None]
    epoch_train_s: list[Seconds | None]


@dataclasses.dataclass(frozen=True)
class Summary:
    """Convergence figures of a run."""

    epochs_run: Count
    steps_run: Count
    final_train_loss: Num | None
    final_val_loss: Num | None
    final_train_metric: Num | None
    final_val_metric: Num | None
    best_val_metric: Num | None
    test_loss: Num | None
    test_metric: Num | None
    test_metrics: dict[Str, Num | None]
    steps_to_target: Count | None
    epochs_to_target: Count | None
    seconds_to_target: Seconds | None
    train_s: Seconds
    fit_s: Seconds
    setup_s: Seconds
    samples_per_s: Num | None
    num_params: Count
    resumed_at_epoch: Count | None = None
    overflow_steps: Count = 0


@dataclasses.dataclass(frozen=True)
class LayerInfo:
    name: Str
    depth_index: Count
    kind: LayerKind
    num_params: Count


@dataclasses.dataclass(frozen=True)
class EpochStats:
    """Per epoch: per-layer min/mean/max gradient norm over all finite steps, global norm and clip rate."""

    min: list[list[Num | None]]
    mean: list[list[Num | None]]
    max: list[list[Num | None]]
    global_pre_mean: list[Num | None]
    global_pre_max: list[Num | None]
    clip_rate: list[Num | None]


@dataclasses.dataclass(frozen=True)
class ActivationLayer:
    name: Str
    activation: Str


@dataclasses.dataclass(frozen=True)
class ActivationLog:
    """Per epoch and activation layer: the saturated (sigmoid/tanh) or dead (ReLU) fraction.

    `initial` is the same at the weights training started from (`None` in
    records written before it was measured, and for a resumed run's first process).
    """

    layers: list[ActivationLayer]
    saturation_level: Num
    per_epoch: list[list[Num | None]]
    initial: list[Num | None] | None = None


@dataclasses.dataclass(frozen=True)
class GradientLog:
    """The `GradientRecorder`'s log: per recorded step and per epoch (see its `summary()`)."""

    layers: list[LayerInfo]
    first_steps: Count
    stride: Count
    steps: list[Count]
    norms: list[list[Num | None]]
    global_norm_pre: list[Num | None]
    global_norm_post: list[Num | None]
    clipped: list[Bool | None]
    epoch: EpochStats
    nonfinite_step: Count | None
    steps_seen: Count
    overflow_steps: Count = 0
    loss_scaled: Bool = False

    @property
    def weight_columns(self) -> list[int]:
        """Indices of weight layers (normalization layers left out)."""
        return [i for i, layer in enumerate(self.layers) if layer.kind == "weight"]

    def first_last_ratio(self, epoch: int = 0) -> float | None:
        """First/last weight-layer mean gradient norm in one epoch (0 = first; -1 = last)."""
        means = self.epoch.mean
        if not means:
            return None
        row = means[min(epoch, len(means) - 1) if epoch >= 0 else len(means) + epoch]
        weights = self.weight_columns
        if len(weights) < 2:
            return None
        first, last = row[weights[0]], row[weights[-1]]
        if first is None or last is None or not (math.isfinite(first) and math.isfinite(last)) or last <= 0:
            return None
        return first / last

    @property
    def peak_global_norm(self) -> float | None:
        """The largest finite raw global gradient norm (before clipping) of any step."""
        return max(_finite(self.epoch.global_pre_max), default=None)

    @property
    def clip_rate(self) -> float | None:
        """The fraction of steps whose update clipping shrank (mean over epochs)."""
        rates = _finite(self.epoch.clip_rate)
        return sum(rates) / len(rates) if rates else None


@dataclasses.dataclass(frozen=True)
class TemporalLog:
    """Gradient through time: |dL/dx_t| per input step, at initialization and after each epoch."""

    epochs: list[Count]
    profiles: list[list[Num | None]]
    early_late_ratio: list[Num | None]
    edge_fraction: Num

    @property
    def final_ratio(self) -> float | None:
        """The early/late ratio at the end of training."""
        return self.early_late_ratio[-1] if self.early_late_ratio else None


@dataclasses.dataclass(frozen=True)
class Trial:
    """One tuning trial as the evaluation run that followed it saw it."""

    run_id: Str
    setting: dict
    score: Num | None
    diverged: Bool


@dataclasses.dataclass(frozen=True)
class TuningInfo:
    """How an evaluation run's setting was chosen.

    Attributes:
        space: the search space, `{"optimizer.learning_rate": [1e-3, 1e-2]}`, or
            `{"optimizer.learning_rate": {"loguniform": [1e-4, 1e-1]}}`.
        method: `"grid"` or `"random"`.
        budget: the number of trials.
        seed: the tuning seed (distinct from every evaluation seed).
        epochs: the epochs of each trial.
        trials: every trial, in search order.
        chosen: the winning setting.
        source: where the trials ran, `"suite/group"`.
    """

    space: dict
    method: Str
    budget: Count
    seed: Int
    epochs: Count
    trials: list[Trial]
    chosen: dict
    source: Str


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """One run: its config, what it trained, how it converged and its gradient log."""

    run_id: Str
    created: Str
    config: RunConfig
    optimizer: dict
    model: ModelInfo
    dataset: DatasetSummary
    env: Environment
    status: Status
    diverged_step: Count | None
    history: History
    summary: Summary
    # Each instrument's typed log under its key (`gradzoo.benchmarks.harness.instruments`), only for
    # the instruments that measured the run; `LOG_TYPES` says which type each key is read as.
    instruments: dict[Str, Any] = dataclasses.field(default_factory=dict)
    tuning: TuningInfo | None = None
    schema: Int = SCHEMA_VERSION

    # --- what readers compute, each in one place ---------------------------------
    @property
    def diverged(self) -> bool:
        """A non-finite loss or gradient stopped the run."""
        return self.status == "diverged"

    @property
    def label(self) -> str:
        """The architecture the run trained, as tables and reports name it."""
        return self.model.architecture

    @property
    def pair(self) -> str:
        """The baseline architecture this run is compared against (its own label for a baseline)."""
        return self.model.pair

    @property
    def sweep_label(self) -> str:
        return self.config.sweep_label

    @property
    def best_score(self) -> float | None:
        """The best validation score, in the metric's direction."""
        return self.summary.best_val_metric

    @property
    def reached_target(self) -> bool:
        return self.summary.steps_to_target is not None

    # --- the built-in instruments' logs, typed ----------------------------------------
    @property
    def gradients(self) -> GradientLog | None:
        """The per-layer gradient norms (instrument `gradient_norms`), if recorded."""
        return self.instruments.get(GRADIENT_NORMS)

    @property
    def activations(self) -> ActivationLog | None:
        """The saturated and dead unit fractions (instrument `activations`), if measured."""
        return self.instruments.get(ACTIVATIONS)

    @property
    def temporal(self) -> TemporalLog | None:
        """The gradient through time (instrument `temporal`), if measured."""
        return self.instruments.get(TEMPORAL)

    def first_last_ratio(self, epoch: int = 0) -> float | None:
        """First/last weight-layer mean gradient norm in one epoch (0 = first; -1 = last)."""
        return self.gradients.first_last_ratio(epoch) if self.gradients is not None else None

    @property
    def temporal_ratio(self) -> float | None:
        """Early/late gradient-through-time ratio at the end of training, if measured."""
        return self.temporal.final_ratio if self.temporal is not None else None

    @property
    def verdict_ratio(self) -> float | None:
        """The gradient ratio verdicts judge by: early/late steps if measured, else first/last layer."""
        ratio = self.temporal_ratio
        return ratio if ratio is not None else self.first_last_ratio()

    @property
    def peak_global_norm(self) -> float | None:
        """The largest finite raw global gradient norm (before clipping) of any step."""
        return self.gradients.peak_global_norm if self.gradients is not None else None

    @property
    def clip_rate(self) -> float | None:
        """The fraction of steps whose update clipping shrank (mean over epochs)."""
        return self.gradients.clip_rate if self.gradients is not None else None

    @property
    def clipping(self) -> str | None:
        """The clipping setting, e.g. `clipnorm=1`, or `None`."""
        parts = [f"{k}={short_number(self.optimizer[k])}" for k in CLIP_KEYS if self.optimizer.get(k)]
        return ", ".join(parts) or None

    def to_json(self) -> dict:
        """Strict-JSON-ready data: non-finite numbers as `null`, listed under `nonfinite`."""
        from gradzoo.benchmarks.harness.records.codec import encode

        return encode(self)

    @classmethod
    def from_json(cls, data: dict, where: str = "record") -> RunRecord:
        """A record from its JSON data, migrating older schemas.

        Raises:
            RecordError: one sentence naming `where` and what is wrong.
        """
        from gradzoo.benchmarks.harness.records.codec import decode

        return decode(cls, data, where, LOG_TYPES)


# The log type of each instrument key. The built-in instruments' are here from the start, so any process
# (a report, the doctor's evidence) reads them typed without importing the instruments;
# `instruments.register_instrument` adds the others'. A log whose key no instrument of this process
# registered (a plugin's) stays the plain JSON it was written as: the record still loads and writes
# back the same, and no table or figure reads it.
LOG_TYPES: dict[str, type] = {GRADIENT_NORMS: GradientLog, ACTIVATIONS: ActivationLog, TEMPORAL: TemporalLog}


def register_log(key: str, log_type: type) -> None:
    """Declares the dataclass that `RunRecord.instruments[key]` is read as.

    Raises:
        ValueError: `key` already has another log type.
    """
    known = LOG_TYPES.get(key)
    if known is not None and known is not log_type:
        raise ValueError(f"Instrument key {key!r} already has the log type {known.__name__}. Received: {log_type.__name__}.")
    LOG_TYPES[key] = log_type


def _finite(values) -> list:
    return [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]
