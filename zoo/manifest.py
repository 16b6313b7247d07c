"""The pretrained manifest, typed: `Manifest` is the only definition of `zoo/weights/manifest.json`.

`gradzoo.benchmarks.train_pretrained` builds `ManifestEntry`s from run records and
writes the manifest through `manifest_text`; `gradzoo.zoo.pretrained` reads it back
through `read_manifest`, so a field renamed on one side fails loudly on the
other. Fields keep the order they have in the file, so a manifest read and
written again has the same bytes. `config`, `optimizer`, `model_spec`,
`dataset_info` and `env` are plain-JSON copies of parts of the typed run record
(`gradzoo.benchmarks.harness.records`, which defines them), kept as written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MANIFEST_SCHEMA = 1


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ManifestSummary(_Frozen):
    """The training run's convergence summary (from the record's `summary`)."""

    epochs_run: int
    steps_run: int
    best_val_metric: float | None
    final_val_metric: float | None
    final_train_metric: float | None
    steps_to_target: int | None
    epochs_to_target: int | None
    train_s: float
    num_params: int


class ManifestHistory(_Frozen):
    """Per-epoch curves of the training run (`None`: a non-finite value)."""

    epoch: list[int]
    loss: list[float | None]
    metric: list[float | None]
    val_loss: list[float | None]
    val_metric: list[float | None]
    epoch_train_s: list[float]


class ManifestLayer(_Frozen):
    name: str
    kind: Literal["weight", "norm"]
    num_params: int


class ManifestActivationLayer(_Frozen):
    name: str
    activation: str


class ManifestActivations(_Frozen):
    """Saturated (sigmoid/tanh) or dead (ReLU) fraction of each activation layer, per epoch."""

    layers: list[ManifestActivationLayer]
    saturation_level: float
    per_epoch: list[list[float | None]]


class ManifestTemporal(_Frozen):
    """Recurrent nets: the gradient through time, at the first and last recorded epoch."""

    epochs: list[int]
    early_late_ratio: list[float | None]
    edge_fraction: float
    profile_first: list[float | None]
    profile_last: list[float | None]


class ManifestGradients(_Frozen):
    """The compact gradient-log summary (per epoch, 5 significant digits), with the harness's verdict."""

    layers: list[ManifestLayer]
    verdict: str
    first_last_ratio: list[float | None]
    global_norm_mean: list[float | None]
    global_norm_max: list[float | None]
    clip_rate: list[float | None]
    layer_norm_mean: list[list[float | None]]
    activations: ManifestActivations
    temporal: ManifestTemporal | None
    steps_seen: int
    nonfinite_step: int | None


class ManifestEntry(_Frozen):
    """One shipped model: its file and hash, what it is, how it was trained and how it scores."""

    name: str  # `model.dataset`
    file: str  # in zoo/weights/
    sha256: str
    size_bytes: int
    model: str  # the zoo entry
    role: Literal["baseline", "mitigated"]
    compare_with: list[str]  # the shipped partners of the same dataset
    description: str
    dataset: str
    dataset_params: dict[str, Any]  # `load_dataset(dataset, **dataset_params)` rebuilds the data
    loss: str
    metric: str
    metric_mode: Literal["max", "min"]
    chance: float
    target: float
    input_shape: list[int]
    num_outputs: int
    test_metrics: dict[str, float]  # keyed as `model.evaluate(..., return_dict=True)` names them
    reached_target_on_test: bool
    summary: ManifestSummary
    tuned_over: str | None
    tuning_chosen: dict[str, Any] | None
    tuning_source: str | None
    config: dict[str, Any]  # the run config (`RunConfig.to_dict()`)
    optimizer: dict[str, Any]
    model_spec: dict[str, Any]
    dataset_info: dict[str, Any]
    history: ManifestHistory
    gradients: ManifestGradients | None
    run_id: str
    created: str
    env: dict[str, Any]


class Manifest(_Frozen):
    """The whole file: its schema, who wrote it and when, and the entries in training order."""

    schema_: Literal[1] = Field(MANIFEST_SCHEMA, alias="schema")  # `schema` is taken by BaseModel
    generated_by: str
    updated: str
    models: dict[str, ManifestEntry]

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def read_manifest(path) -> Manifest:
    """The manifest at `path`, checked against its type.

    Raises:
        ValueError: a schema this gradzoo does not read, or a malformed entry
            (pydantic's `ValidationError` names the field).
    """
    path = Path(path)
    data = json.loads(path.read_text())
    if not isinstance(data, dict) or data.get("schema") != MANIFEST_SCHEMA:
        found = data.get("schema") if isinstance(data, dict) else None
        raise ValueError(f"{path} has manifest schema {found!r}; this gradzoo reads schema {MANIFEST_SCHEMA}.")
    return Manifest.model_validate(data)


def manifest_text(manifest: Manifest) -> str:
    """The file's exact text (the layout `write_json_atomic` always gave it: one indent, a final newline)."""
    return json.dumps(manifest.model_dump(by_alias=True), indent=1, allow_nan=False) + "\n"
