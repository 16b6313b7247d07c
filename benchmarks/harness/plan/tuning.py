"""Tuning: every model at its own setting, chosen on a tuning seed by the validation metric.

A suite group may declare a search space:

```toml
[runs.tune]
"optimizer.learning_rate" = [1e-3, 3e-3, 1e-2, 3e-2]     # a grid: every value is tried
"optimizer.momentum" = { uniform = [0.8, 0.99] }          # a range: random search
budget = 8      # trials per model (default: the grid's size; needed with a range)
seed = 1000     # the tuning seed, distinct from every evaluation seed (default 1000)
epochs = 10     # epochs of each trial (default: the group's)
```

Each model of the group (at each sweep point) is tuned on its own: its trials
are runs like any other (records with `phase = "tune"`), and its setting is the
trial with the best validation score in the metric's own direction; a trial
that diverged, or has no finite score, ranks last, and ties go to the earlier
trial. The evaluation seeds then run at that setting, and their records say
what was searched (`config.tuned_over`) and what each trial scored (`tuning`).

A grid alone tries every combination, so `budget` must equal the grid's size
when given. With a range, `budget` trials each draw every range
(log-uniform or uniform) and pick every listed value uniformly, from the tuning
seed: the same suite always tries the same settings.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np

from gradzoo.benchmarks.harness.records import RunRecord, Trial, TuningInfo
from gradzoo.benchmarks.harness.records.config import short_number

TARGETS = ("model", "dataset", "optimizer")
RESERVED = ("budget", "seed", "epochs")
DEFAULT_TUNING_SEED = 1000
RANGES = ("loguniform", "uniform")


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """A validated `[runs.tune]` table.

    Attributes:
        space: `{"optimizer.learning_rate": [values] or {"loguniform": [lo, hi]}}`.
        budget: trials per model.
        seed: the tuning seed.
        epochs: epochs of each trial, or `None` for the group's.
    """

    space: dict
    budget: int
    seed: int
    epochs: int | None

    @property
    def method(self) -> str:
        return "random" if any(isinstance(v, dict) for v in self.space.values()) else "grid"

    @property
    def text(self) -> str:
        """The space as one line, e.g. `optimizer.learning_rate in {0.001, 0.01} (grid, 2 trials, seed 1000)`."""
        parts = []
        for key, values in self.space.items():
            if isinstance(values, dict):
                kind, (low, high) = next(iter(values.items()))
                parts.append(f"{key} ~ {kind}({short_number(low)}, {short_number(high)})")
            else:
                parts.append(f"{key} in {{{', '.join(short_number(v) for v in values)}}}")
        epochs = f", {self.epochs} epochs" if self.epochs else ""
        return f"{'; '.join(parts)} ({self.method}, {self.budget} trials, seed {self.seed}{epochs})"

    def settings(self) -> list[dict]:
        """The trials' settings, in search order: `[{"optimizer.learning_rate": 0.001}, ...]`."""
        keys = list(self.space)
        if self.method == "grid":
            return [dict(zip(keys, values)) for values in itertools.product(*(self.space[k] for k in keys))]
        rng = np.random.default_rng([self.seed, 0x7E57])
        trials = []
        for _ in range(self.budget):
            setting = {}
            for key in keys:
                values = self.space[key]
                if isinstance(values, dict):
                    kind, (low, high) = next(iter(values.items()))
                    draw = math.exp(rng.uniform(math.log(low), math.log(high))) if kind == "loguniform" else rng.uniform(low, high)
                    setting[key] = float(f"{draw:.4g}")  # a setting a reader can type back
                else:
                    setting[key] = values[int(rng.integers(len(values)))]
            trials.append(setting)
        return trials


def parse_space(table: dict, where: str) -> SearchSpace:
    """A `[runs.tune]` table as a `SearchSpace`.

    Raises:
        ValueError: one sentence naming `where` and the key: an empty grid, an
            unknown key, a bad range, a non-positive learning rate, a budget
            that does not fit the grid.
    """
    from gradzoo.zoo import checks

    if not isinstance(table, dict) or not table:
        raise ValueError(f"{where}: `tune` must be a table with at least one `target.parameter` key.")
    space = {}
    for key, values in table.items():
        if key in RESERVED:
            continue
        target = key.split(".", 1)[0]
        if "." not in key or target not in TARGETS:
            raise ValueError(
                f"{where}: unknown key `tune.{key}`; a searched key is model.X, dataset.X or optimizer.X, "
                f"and the others are {', '.join(RESERVED)}."
            )
        if isinstance(values, dict):
            if len(values) != 1 or next(iter(values)) not in RANGES:
                raise ValueError(f"{where}: `tune.{key}` must be a list of values or {{ loguniform = [low, high] }} "
                                 f"or {{ uniform = [low, high] }}. Received: {values!r}")  # fmt: skip
            kind, bounds = next(iter(values.items()))
            if not (isinstance(bounds, list) and len(bounds) == 2 and all(_is_number(b) for b in bounds)
                    and bounds[0] < bounds[1] and (kind == "uniform" or bounds[0] > 0)):  # fmt: skip
                raise ValueError(f"{where}: `tune.{key}.{kind}` must be [low, high] with low < high"
                                 f"{' and low > 0' if kind == 'loguniform' else ''}. Received: {bounds!r}")  # fmt: skip
            checked = [float(bounds[0]), float(bounds[1])]
            if key == "optimizer.learning_rate" and checked[0] <= 0:
                raise ValueError(f"{where}: `tune.{key}` must stay above 0. Received: {bounds!r}")
            space[key] = {kind: checked}
        elif isinstance(values, list):
            if not values:
                raise ValueError(f"{where}: `tune.{key}` is an empty grid; give at least one value.")
            if key == "optimizer.learning_rate":
                for v in values:
                    checks.positive_number("optimizer.learning_rate", v)
            space[key] = list(values)
        else:
            raise ValueError(f"{where}: `tune.{key}` must be a list of values or a range table. Received: {values!r}")
    if not space:
        raise ValueError(f"{where}: `tune` names no searched key (model.X, dataset.X or optimizer.X).")
    seed = checks.integer("tune.seed", table.get("seed", DEFAULT_TUNING_SEED), 0)
    epochs = checks.integer("tune.epochs", table["epochs"], 1) if "epochs" in table else None
    grid = math.prod(len(v) for v in space.values() if isinstance(v, list))
    randomized = any(isinstance(v, dict) for v in space.values())
    if "budget" in table:
        budget = checks.integer("tune.budget", table["budget"], 1)
        if not randomized and budget != grid:
            relation = "smaller than" if budget < grid else "larger than"
            raise ValueError(f"{where}: `tune.budget` = {budget} is {relation} the grid of {grid} settings; a grid "
                             "tries every setting once, so leave `budget` out or search a range.")  # fmt: skip
    elif randomized:
        raise ValueError(f"{where}: `tune` searches a range, so it needs a `budget` (the number of trials).")
    else:
        budget = grid
    return SearchSpace(space=space, budget=budget, seed=seed, epochs=epochs)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def split_setting(setting: dict) -> dict:
    """`{"optimizer.learning_rate": 0.01}` -> `{"model": {}, "dataset": {}, "optimizer": {"learning_rate": 0.01}}`."""
    parts = {t: {} for t in TARGETS}
    for key, value in setting.items():
        target, param = key.split(".", 1)
        parts[target][param] = value
    return parts


def setting_of(record: RunRecord, keys) -> dict:
    """The values a run had for the searched `keys` (read from its config)."""
    config = record.config
    tables = {"model": config.model_overrides, "dataset": config.dataset_params, "optimizer": config.optimizer}
    out = {}
    for key in keys:
        target, param = key.split(".", 1)
        out[key] = tables[target].get(param)
    return out


def rank_key(record: RunRecord, order: int):
    """Sort key of a trial: best score first in the metric's direction; diverged or scoreless last; then search order."""
    score = record.best_score
    if record.diverged or score is None or not math.isfinite(score):
        return (1, 0.0, order)
    return (0, -score if record.dataset.metric_mode == "max" else score, order)


def choose(trials: list[RunRecord], space: SearchSpace, source: str) -> TuningInfo:
    """The winning setting among a model's trial records (given in search order)."""
    keys = list(space.space)
    ranked = sorted(range(len(trials)), key=lambda i: rank_key(trials[i], i))
    best = trials[ranked[0]]
    return TuningInfo(
        space=space.space,
        method=space.method,
        budget=space.budget,
        seed=space.seed,
        epochs=best.config.epochs,
        trials=[Trial(run_id=r.run_id, setting=setting_of(r, keys), score=r.best_score, diverged=r.diverged) for r in trials],
        chosen=setting_of(best, keys),
        source=source,
    )
