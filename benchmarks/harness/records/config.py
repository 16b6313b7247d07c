"""`RunConfig`: what defines a run. Its hash is the run id, and the record's `config`."""

from __future__ import annotations

import dataclasses
import hashlib
import json

from gradzoo.benchmarks.harness.records.types import Bool, Count, Int, Phase, Str

SCHEMA_VERSION = 3  # of the record format: see benchmarks.harness.records
PHASES = ("eval", "tune")
CLIP_KEYS = ("clipnorm", "global_clipnorm", "clipvalue")
# The record keys of the built-in instruments' logs (`RunRecord.instruments`, schema 3 on).
GRADIENT_NORMS = "gradient_norms"
ACTIVATIONS = "activations"
TEMPORAL = "temporal"


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """What defines a run; its hash is the run id.

    Attributes:
        model: the zoo model name asked for (overrides may make it another
            architecture: see `ModelInfo.architecture`).
        dataset: a dataset name.
        seed: seeds weight init and the data order.
        epochs, batch_size: the training budget.
        model_overrides: hyperparameters passed to `gradzoo.zoo.build`.
        dataset_params: parameters passed to `load_dataset`.
        optimizer: settings laid over the model's recommended optimizer.
        suite, group: the suite and the comparison group inside it.
        sweep: the swept values of this run, e.g. `{"model.depth": 56}`.
        record_gradients: the gradient recorder was attached.
        grad_first_steps, grad_stride: the recorder's retention.
        phase: `"eval"` (a run that is compared) or `"tune"` (a tuning trial).
        tuned_over: the search space the run's setting was chosen from, as text;
            `None` for a run that was not tuned.
        backend: the Keras backend (`tensorflow`, `jax` or `torch`).
        precision: the Keras dtype policy (`float32`, `mixed_float16`, `mixed_bfloat16`).
        devices: local devices one run is trained across (data parallel).
    """

    model: Str
    dataset: Str
    seed: Int = 0
    epochs: Count = 10
    batch_size: Count = 128
    model_overrides: dict = dataclasses.field(default_factory=dict)
    dataset_params: dict = dataclasses.field(default_factory=dict)
    optimizer: dict = dataclasses.field(default_factory=dict)
    suite: Str = ""
    group: Str = ""
    sweep: dict = dataclasses.field(default_factory=dict)
    record_gradients: Bool = True
    grad_first_steps: Count = 100
    grad_stride: Count = 10
    phase: Phase = "eval"
    tuned_over: Str | None = None
    backend: Str = "tensorflow"
    precision: Str = "float32"
    devices: Count = 1

    def to_dict(self) -> dict:
        """The config as JSON-ready data (only `RunConfig`'s own fields)."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(RunConfig)}

    @property
    def run_id(self) -> str:
        """A stable hash of the config: the same config always gets the same id."""
        blob = json.dumps(self.to_dict(), sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @property
    def sweep_label(self) -> str:
        """`"model.depth=56, optimizer.clipnorm=1"`; empty when nothing is swept."""
        return sweep_label(self.sweep)


def sweep_label(sweep: dict) -> str:
    """`"model.depth=56, optimizer.clipnorm=1"`: a sweep point as text, keys sorted."""
    return ", ".join(f"{k}={short_number(v)}" for k, v in sorted(sweep.items()))


def short_number(value) -> str:
    """`1.0` -> `1`; everything else as `str` gives it."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e6:
        return str(int(value))
    return str(value)


def _plain(value):
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
