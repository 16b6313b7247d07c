"""Records as strict JSON and back: non-finite numbers, typed building, schema versions."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from gradzoo.benchmarks.errors import RecordError
from gradzoo.benchmarks.harness.records.migrate import migrate_v1, migrate_v2
from gradzoo.benchmarks.harness.records.config import SCHEMA_VERSION
from gradzoo.benchmarks.harness.records.types import METRIC_RANGE


def encode(record) -> dict:
    """Strict-JSON-ready data: non-finite numbers as `null`, their JSON Pointers under `nonfinite`."""
    flags: dict[str, str] = {}
    data = to_plain(record)
    data["instruments"] = {key: _as_float32(log) for key, log in (data.get("instruments") or {}).items()}
    data = _encode_nonfinite(data, "", flags)
    data["nonfinite"] = flags
    return data


def decode(cls, data, where: str, log_types: dict):
    """An instance of `cls` (the record type) from JSON data, migrating older schemas.

    `log_types` maps an instrument key to the dataclass its log is built as
    (`schema.LOG_TYPES`); a log of another key is kept as plain JSON.
    """
    if not isinstance(data, dict):
        raise RecordError(f"{where} is not a JSON object.")
    schema = data.get("schema")
    if schema == 1:
        data = migrate_v2(migrate_v1(data, where), where)
    elif schema not in (2, SCHEMA_VERSION) or isinstance(schema, bool):
        newer = isinstance(schema, int) and not isinstance(schema, bool) and schema > SCHEMA_VERSION
        raise RecordError(
            f"{where} has schema {schema!r}; this gradzoo reads schemas 1 to {SCHEMA_VERSION}"
            + ("; upgrade gradzoo to read it." if newer else ".")
        )
    else:
        # The `nonfinite` pointers name the places of the schema they were written in: restored first.
        data = _decode_nonfinite(dict(data), data.get("nonfinite") or {}, where)
        if schema == 2:
            data = migrate_v2(data, where)
    data.pop("nonfinite", None)
    data["instruments"] = _build_logs(data.get("instruments"), log_types, where)
    record = build(cls, data, where)
    check_domain(record, where)
    return record


def _build_logs(data, log_types: dict, where: str) -> dict:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise RecordError(f"{where}: `instruments` must be a JSON object.")
    return {key: build(log_types[key], log, where, f"instruments.{key}") if key in log_types else log
            for key, log in data.items()}  # fmt: skip


def check_domain(record, where: str) -> None:
    """The checks no single field's type can make: dates, and scores within their metric's range.

    Raises:
        RecordError: naming `where`, the field and what is accepted.
    """
    import datetime as _dt

    try:
        _dt.datetime.fromisoformat(record.created)
    except ValueError:
        raise RecordError(f"{where}: `created` must be an ISO 8601 date. Received: {record.created!r:.60}.") from None
    metric = record.dataset.metric
    low, high = METRIC_RANGE.get(metric, (-math.inf, math.inf))
    s, h = record.summary, record.history
    scores = {"dataset.chance": [record.dataset.chance], "dataset.target": [record.dataset.target],
              "summary.final_train_metric": [s.final_train_metric], "summary.final_val_metric": [s.final_val_metric],
              "summary.best_val_metric": [s.best_val_metric], "summary.test_metric": [s.test_metric],
              "history.metric": h.metric, "history.val_metric": h.val_metric}  # fmt: skip
    for field, values in scores.items():
        for i, value in enumerate(values):
            # NaN is a diverged run's score, not a value out of range.
            if value is not None and not math.isnan(value) and not low <= value <= high:
                at = f"{field}[{i}]" if field.startswith("history") else field
                raise RecordError(f"{where}: `{at}` is {value!r}, outside the range of {metric} ({low:g} to {high:g}).")


# Every instrument's log (gradient norms, activation fractions, the gradient through time) is float32
# arithmetic on the device: written with the
# shortest decimal that reads back as the same float32 (`0.1`, not `0.10000000149011612`), they lose
# nothing and take half the characters. The per-step arrays, two thirds of a compressed record, feed only
# the step-resolved figures (log-scale heatmaps and norm curves): they keep 4 significant digits, a
# relative error below 1e-4 that no figure can show. What tables, verdicts and claims read keeps the
# precision it was measured in: the per-epoch min/mean/max at float32, the curves and summary as Keras
# logged them (float64 text).
_PER_STEP = ("norms", "global_norm_pre", "global_norm_post")
PER_STEP_DIGITS = 4


def _as_float32(value, digits: int | None = None):
    if isinstance(value, float):
        if not math.isfinite(value):
            return value
        return float(f"{value:.{digits}g}") if digits else float(str(np.float32(value)))
    if isinstance(value, dict):
        return {k: _as_float32(v, PER_STEP_DIGITS if k in _PER_STEP else digits) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_float32(v, digits) for v in value]
    return value


def to_plain(value):
    """Dataclasses, tuples and NumPy scalars as plain JSON types (recursively); non-finite numbers stay."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return value.item()  # NumPy scalars
    return value


def _pointer_part(key) -> str:
    return str(key).replace("~", "~0").replace("/", "~1")


def _encode_nonfinite(value, pointer: str, flags: dict):
    if isinstance(value, float) and not math.isfinite(value):
        flags[pointer] = "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
        return None
    if isinstance(value, dict):
        return {k: _encode_nonfinite(v, f"{pointer}/{_pointer_part(k)}", flags) for k, v in value.items()}
    if isinstance(value, list):
        return [_encode_nonfinite(v, f"{pointer}/{i}", flags) for i, v in enumerate(value)]
    return value


def _decode_nonfinite(data: dict, flags: dict, where: str) -> dict:
    if not isinstance(flags, dict):
        raise RecordError(f"{where}: `nonfinite` must be an object of JSON Pointers.")
    for pointer, text in flags.items():
        if text not in ("nan", "inf", "-inf"):
            raise RecordError(f"{where}: `nonfinite` value {text!r} at {pointer!r} is not nan, inf or -inf.")
        parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
        node = data
        try:
            for part in parts[:-1]:
                node = node[int(part)] if isinstance(node, list) else node[part]
            last = parts[-1]
            if isinstance(node, list):
                node[int(last)] = float(text)
            else:
                node[last] = float(text)
        except (KeyError, IndexError, ValueError, TypeError):
            raise RecordError(f"{where}: `nonfinite` names {pointer!r}, which is not in the record.") from None
    return data


_ADAPTERS: dict[type, object] = {}

# pydantic's error types in the record's own words: "`summary.epochs_run` must be an integer".
_WORDING = {
    "int_type": "must be an integer", "int_from_float": "must be an integer", "float_type": "must be a number",
    "string_type": "must be a string", "bool_type": "must be true or false", "list_type": "must be a list",
    "dict_type": "must be an object", "dataclass_type": "must be a JSON object", "dataclass_exact_type": "must be a JSON object",
    "greater_than_equal": "must not be negative",
}  # fmt: skip


def _adapter(cls):
    if cls not in _ADAPTERS:
        from pydantic import TypeAdapter  # imported on first read: `gradzoo --help` stays light

        _ADAPTERS[cls] = TypeAdapter(cls)
    return _ADAPTERS[cls]


def build(cls, data, file: str, path: str = ""):
    """An instance of dataclass `cls` from JSON data, every field checked for kind and domain.

    The checks are the field types of `cls` (`gradzoo.benchmarks.harness.records.types`),
    applied by pydantic's validator: a number is a number (never `"12345"` or
    `true`), counts and durations are not negative, closed vocabularies (a
    run's status, a layer's kind) hold one of their values.

    Raises:
        RecordError: naming `file` and the first field that is missing or wrong.
    """
    from pydantic import ValidationError

    if not isinstance(data, dict):
        raise RecordError(f"{file}: `{path or 'the record'}` must be a JSON object.")
    try:
        return _adapter(cls).validate_python(data)
    except ValidationError as err:
        raise RecordError(_first_error(err, file, path)) from None


def _first_error(err, file: str, prefix: str) -> str:
    first = err.errors(include_url=False)[0]
    parts = [prefix] if prefix else []
    for part in first["loc"]:
        if isinstance(part, int):
            parts[-1:] = [f"{parts[-1]}[{part}]"] if parts else [f"[{part}]"]
        else:
            parts.append(str(part))
    field = ".".join(parts) or "the record"
    kind = first["type"]
    if kind == "missing":
        return f"{file} lacks the field `{field}`."
    if kind == "literal_error":
        expected = first.get("ctx", {}).get("expected", "")
        return f"{file}: `{field}` must be one of {expected}. Received: {first['input']!r:.60}."
    wording = _WORDING.get(kind) or first["msg"].replace("Input should be", "must be")
    return f"{file}: `{field}` {wording}. Received: {first['input']!r:.60}."
