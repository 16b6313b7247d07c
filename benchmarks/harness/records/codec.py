"""Records as strict JSON and back: non-finite numbers, typed building, schema versions."""

from __future__ import annotations

import dataclasses
import math
import types
import typing

from benchmarks.errors import RecordError
from benchmarks.harness.records.migrate import migrate_v1
from benchmarks.harness.records.config import SCHEMA_VERSION


def encode(record) -> dict:
    """Strict-JSON-ready data: non-finite numbers as `null`, their JSON Pointers under `nonfinite`."""
    flags: dict[str, str] = {}
    data = _encode_nonfinite(to_plain(record), "", flags)
    data["nonfinite"] = flags
    return data


def decode(cls, data, where: str):
    """An instance of `cls` (the record type) from JSON data, migrating older schemas."""
    if not isinstance(data, dict):
        raise RecordError(f"{where} is not a JSON object.")
    schema = data.get("schema")
    if schema == 1:
        data = migrate_v1(data, where)
    elif schema != SCHEMA_VERSION:
        newer = isinstance(schema, int) and not isinstance(schema, bool) and schema > SCHEMA_VERSION
        raise RecordError(
            f"{where} has schema {schema!r}; this gradzoo reads schemas 1 and {SCHEMA_VERSION}"
            + ("; upgrade gradzoo to read it." if newer else ".")
        )
    else:
        data = _decode_nonfinite(dict(data), data.get("nonfinite") or {}, where)
    data.pop("nonfinite", None)
    return build(cls, data, where)


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


_HINTS: dict[type, dict] = {}
_SCALARS = {"int": int, "float": (int, float), "str": str, "bool": bool, "dict": dict, "list": list}


def _hints(cls) -> dict:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def build(cls, data, file: str, path: str = ""):
    """An instance of dataclass `cls` from JSON data, checking presence and kind of every field.

    Raises:
        RecordError: naming `file` and the field that is missing or of the wrong kind.
    """
    if not isinstance(data, dict):
        raise RecordError(f"{file}: `{path or 'the record'}` must be a JSON object.")
    kwargs = {}
    for f in dataclasses.fields(cls):
        field_path = f"{path}.{f.name}" if path else f.name
        if f.name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise RecordError(f"{file} lacks the field `{field_path}`.")
            continue
        kwargs[f.name] = _convert(_hints(cls)[f.name], data[f.name], file, field_path)
    return cls(**kwargs)


def _convert(hint, value, file: str, path: str):
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        hint = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return build(hint, value, file, path)
    if origin is list:
        if not isinstance(value, list):
            raise RecordError(f"{file}: `{path}` must be a list. Received: {type(value).__name__}.")
        if args and dataclasses.is_dataclass(args[0]):
            return [build(args[0], v, file, f"{path}[{i}]") for i, v in enumerate(value)]
        return value
    name = getattr(hint, "__name__", str(hint))
    expected = _SCALARS.get(name)
    if expected is not None:
        if not isinstance(value, expected) or (name in ("int", "float") and isinstance(value, bool)):
            raise RecordError(f"{file}: `{path}` must be {_ARTICLE[name]}. Received: {value!r:.60}.")
    return value


_ARTICLE = {"int": "an integer", "float": "a number", "str": "a string", "bool": "true or false",
            "dict": "an object", "list": "a list"}  # fmt: skip
