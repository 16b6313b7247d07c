"""Expected orderings of a claims group: `[[runs.expect]]` entries of a suite.

Each entry compares one measured quantity of two arms of the group, or of an
arm and a number:

```toml
[[runs.expect]]
metric = "final_train_loss"             # see METRICS
lhs = "plain_20_1d @ model.depth=56"    # an arm: a model of the group, at a sweep point
op = ">"                                # "<", ">", or "~" (within `tolerance` of rhs)
rhs = "plain_20_1d @ model.depth=20"    # an arm, a number, "target" or "chance" (the dataset's)
```

`gradzoo.benchmarks.analysis.claims` turns the records of the arms into a verdict.
"""

from __future__ import annotations

import dataclasses
import math

# name -> (what it is, the direction that is better, compared on a log scale)
METRICS = {
    "best_val_metric": ("best validation score", "dataset", False),
    "final_val_metric": ("final validation score", "dataset", False),
    "test_metric": ("test score", "dataset", False),
    "final_train_loss": ("final training loss", "min", False),
    "steps_to_target": ("steps to the target", "min", False),
    "grad_ratio_first_last": ("first/last weight-layer gradient ratio over epoch 1", None, True),
    "temporal_ratio_early_late": ("early/late input-step gradient ratio at the end of training", None, True),
    "learning_rate": ("learning rate (the tuned one, for a tuned run)", None, True),
}
OPS = ("<", ">", "~")
CONSTANTS = ("target", "chance")


@dataclasses.dataclass(frozen=True)
class Arm:
    """Runs of one model of a group, at one sweep point (or all points the group has)."""

    model: str
    at: dict
    text: str

    def matches(self, model: str, sweep: dict) -> bool:
        return model == self.model and all(sweep.get(k) == v for k, v in self.at.items())


@dataclasses.dataclass(frozen=True)
class Expectation:
    metric: str
    lhs: Arm
    op: str
    rhs: Arm | float | str
    tolerance: float | None = None

    @property
    def text(self) -> str:
        rhs = self.rhs.text if isinstance(self.rhs, Arm) else str(self.rhs)
        op = {"<": "<", ">": ">", "~": "≈"}[self.op]
        within = f" (within {self.tolerance:g})" if self.op == "~" else ""
        return f"{self.lhs.text} {op} {rhs}{within}: {METRICS[self.metric][0]}"


def parse_arm(text, models, sweep: dict, key: str) -> Arm:
    """`"model @ key=value, key=value"` as an `Arm`, checked against the group's models and sweep."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"`{key}` must name an arm: 'model' or 'model @ sweep.key=value'. Received: {text!r}")
    model, _, point = (part.strip() for part in text.partition("@"))
    if model not in models:
        raise ValueError(f"`{key}` names model {model!r}, which is not in the group's `models`")
    at = {}
    for item in filter(None, (p.strip() for p in point.split(","))):
        name, _, value = (p.strip() for p in item.partition("="))
        if name not in sweep:
            raise ValueError(f"`{key}` names {name!r}, which the group does not sweep")
        match = [v for v in sweep[name] if str(v) == value or _same_number(v, value)]
        if not match:
            raise ValueError(f"`{key}`: {name}={value} is not a swept value ({', '.join(map(str, sweep[name]))})")
        at[name] = match[0]
    return Arm(model=model, at=at, text=" ".join(text.split()))


def _same_number(a, text: str) -> bool:
    try:
        return isinstance(a, (int, float)) and not isinstance(a, bool) and math.isclose(float(text), a)
    except ValueError:
        return False


def parse_expectations(entries, models, sweep: dict) -> list[Expectation]:
    """The `[[runs.expect]]` list of a group, validated."""
    if not isinstance(entries, list):
        raise ValueError("`expect` must be a list of [[runs.expect]] tables")
    out = []
    for i, entry in enumerate(entries):
        key = f"expect[{i}]"
        if not isinstance(entry, dict):
            raise ValueError(f"`{key}` must be a table")
        unknown = sorted(set(entry) - {"metric", "lhs", "op", "rhs", "tolerance"})
        if unknown:
            raise ValueError(f"unknown key `{key}.{unknown[0]}`; accepted: lhs, metric, op, rhs, tolerance")
        if entry.get("metric") not in METRICS:
            raise ValueError(f"`{key}.metric` must be one of {', '.join(METRICS)}. Received: {entry.get('metric')!r}")
        if entry.get("op") not in OPS:
            raise ValueError(f"`{key}.op` must be one of {', '.join(OPS)}. Received: {entry.get('op')!r}")
        rhs = entry.get("rhs")
        if isinstance(rhs, str) and rhs not in CONSTANTS:
            rhs = parse_arm(rhs, models, sweep, f"{key}.rhs")
        elif not (rhs in CONSTANTS or (isinstance(rhs, (int, float)) and not isinstance(rhs, bool))):
            raise ValueError(f"`{key}.rhs` must be an arm, a number, 'target' or 'chance'. Received: {rhs!r}")
        tolerance = entry.get("tolerance")
        if entry["op"] == "~":
            if not isinstance(tolerance, (int, float)) or isinstance(tolerance, bool) or tolerance <= 0:
                raise ValueError(f"`{key}` uses op '~', which needs a positive `tolerance`")
        elif tolerance is not None:
            raise ValueError(f"`{key}.tolerance` is only for op '~'")
        out.append(Expectation(entry["metric"], parse_arm(entry.get("lhs"), models, sweep, f"{key}.lhs"),
                               entry["op"], rhs, tolerance))  # fmt: skip
    return out
