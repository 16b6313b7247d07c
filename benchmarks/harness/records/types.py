"""The value types a record's fields are declared with: kind and domain, checked on every read.

A record may come from a folder someone shared, so every field is checked for
its JSON kind (a number is a number, never the string `"12345"` or `true`) and,
where the field has one, its domain (counts and durations are not negative, a
status is one of the statuses a run can end in). The checks are `Annotated`
metadata that pydantic's validator (`gradzoo.benchmarks.harness.records.codec`) reads;
plain Python code sees the ordinary `int`, `float`, `str` and `bool` behind them.
"""

from __future__ import annotations

from typing import Annotated, Literal

import annotated_types as at
from pydantic import Strict

Int = Annotated[int, Strict()]
Count = Annotated[int, Strict(), at.Ge(0)]        # steps, epochs, examples, parameters
Num = Annotated[float, Strict()]                  # an int is accepted where a number is declared; NaN/inf too
Seconds = Annotated[float, Strict(), at.Ge(0)]    # durations; `nan` fails `>= 0`, as it should
Str = Annotated[str, Strict()]
Bool = Annotated[bool, Strict()]

Status = Literal["completed", "diverged"]
Phase = Literal["eval", "tune"]
MetricMode = Literal["max", "min"]
LayerKind = Literal["weight", "norm"]

# The range a metric's scores can take; a metric not named here is only checked for being a number.
METRIC_RANGE: dict[str, tuple[float, float]] = {
    "accuracy": (0.0, 1.0),
    "mse": (0.0, float("inf")),
    "mae": (0.0, float("inf")),
    "crossentropy": (0.0, float("inf")),
}
