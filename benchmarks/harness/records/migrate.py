"""Older record schemas, read as the current one."""

from __future__ import annotations

import json

from gradzoo.benchmarks.errors import RecordError
from gradzoo.benchmarks.harness.records.config import ACTIVATIONS, GRADIENT_NORMS, TEMPORAL


def migrate_v1(data: dict, where: str) -> dict:
    """A schema-1 record as schema-2 data (`migrate_v2` takes it on): the fields v1 did not know get their neutral values.

    v1 wrote NaN as a bare token (Python's `json` reads it); its `diverged` flag
    is now derived from `status`; its config lacked `phase`, `tuned_over`,
    `backend`, `precision` and `devices` (it was an evaluation run, untuned,
    float32 on one device, on the backend its environment names); its model
    entry lacked the trained architecture's name, which the zoo resolves from
    the model and its overrides.
    """
    data = json.loads(json.dumps(data))  # a deep copy; NaN survives Python's json
    try:
        env = data["env"]
        config = data["config"]
        config.setdefault("phase", "eval")
        config.setdefault("tuned_over", None)
        config.setdefault("backend", env["backend"])
        config.setdefault("precision", "float32")
        config.setdefault("devices", 1)
        model = data["model"]
        architecture, pair = architecture_and_pair(config["model"], config.get("model_overrides") or {})
        model.setdefault("architecture", architecture)
        model.setdefault("pair", pair)
        data.pop("diverged", None)
    except (KeyError, TypeError):
        raise RecordError(f"{where} is a schema-1 record without its `config`, `env` or `model` entry.") from None
    data["schema"] = 2
    return data


def migrate_v2(data: dict, where: str) -> dict:
    """Schema-2 data as schema 3: the instruments' logs move under `instruments`, by instrument key.

    Schema 2 had two fixed fields, `gradients` (whose `activations` entry held
    the activation statistics) and `temporal`; schema 3 keeps every
    instrument's log under its key, so that a new instrument needs no new field.
    The logs themselves are unchanged. Non-finite numbers must be restored
    before (their pointers name schema-2 places).
    """
    data = dict(data)
    gradients, temporal = data.pop("gradients", None), data.pop("temporal", None)
    instruments = {}
    if gradients is not None:
        if not isinstance(gradients, dict):
            raise RecordError(f"{where}: `gradients` must be a JSON object.")
        gradients = dict(gradients)
        activations = gradients.pop("activations", None)
        instruments[GRADIENT_NORMS] = gradients
        if activations is not None:
            instruments[ACTIVATIONS] = activations
    if temporal is not None:
        instruments[TEMPORAL] = temporal
    data["instruments"] = instruments
    data["schema"] = 3
    return data


def architecture_and_pair(model: str, overrides: dict) -> tuple[str, str]:
    """The trained architecture's name and that of the baseline it is compared with."""
    from gradzoo import zoo

    spec = zoo.get_spec(model)
    baseline = model if spec.role == "baseline" else spec.baseline
    return zoo.architecture_name(model, overrides), zoo.architecture_name(baseline, overrides)
