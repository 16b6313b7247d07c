"""Declarative benchmark suites: TOML files of pair x dataset x parameters x seeds x epochs.

A suite file (the shipped ones live in `benchmarks/suites/`; a user's own file
works the same way) looks like:

```toml
description = "What the suite shows."
epochs = 10        # default for every group
seeds = 3          # evaluation seeds 0..seeds-1 (0: tuning trials only)
batch_size = 128
precision = "float32"   # or mixed_float16 / mixed_bfloat16 (Keras dtype policies)
devices = 1             # local devices one run trains across (data parallel)

[[runs]]
name = "mlp"                                  # the comparison group
description = "Why this group is here (a claim's source and expected ordering)."
models = ["mlp_sigmoid_deep", "mlp_he_relu_bn"]
dataset = "mnist1d"
dataset_params = { shape = "flat" }
model_overrides = {}                          # passed to zoo.build
optimizer = {}                                # laid over each model's recommended optimizer
epochs = 20                                   # overrides the default

[runs.sweep]                                  # optional grid: every combination is run
"model.depth" = [20, 56, 110]                 # model.X, dataset.X or optimizer.X

[runs.per_model.mlp_he_relu_bn]               # optional: settings of one model only
"model.width" = 256

[runs.tune]                                   # optional: tune each model (benchmarks.harness.plan.tuning)
"optimizer.learning_rate" = [1e-3, 1e-2, 1e-1]

[runs.tuned]                                  # or: settings chosen by a shipped tuning suite
in = "quick_tuning"                           # a shipped suite, or "x.toml" beside this file, whose group
                                              # of the same name ran the trials (no other path)
mlp_he_relu_bn = { "optimizer.learning_rate" = 0.01 }
```

For the clipping knobs, `optimizer.clipnorm = 0` means no clipping (TOML has no
null). A claims group adds `claim`, `source` and `[[runs.expect]]` entries
(see `gradzoo.benchmarks.analysis.claims`).

`load_suite` checks everything a run will need before any training starts:
the keys, every group's models, dataset parameters, optimizer settings, sweep
and tuning values, and (with `check_models=True`) that each model builds at
its dataset's input shape. An error is one sentence naming the file, the group
and the key. What a file from elsewhere may ask for (distinct values, references
beside it, sizes within limits) is checked in `gradzoo.benchmarks.harness.plan.suite_checks`.
"""

from __future__ import annotations

import dataclasses
import itertools
import tomllib
from pathlib import Path

from gradzoo.zoo import checks
from gradzoo.benchmarks.backends import PRECISIONS
from gradzoo.benchmarks.errors import SuiteError, UserError
from gradzoo.benchmarks.harness.plan.expectations import parse_expectations
from gradzoo.benchmarks.harness.plan.suite_checks import DEFAULT_LIMITS, Limits, check_batch, check_builds, check_configurations
from gradzoo.benchmarks.harness.plan.suite_checks import check_distinct, check_distinct_settings, configurations, describe, place
from gradzoo.benchmarks.harness.plan.tuning import TARGETS, SearchSpace, parse_space, split_setting

SUITES_DIR = Path(__file__).resolve().parents[2] / "suites"
DEFAULT_SUITE = "quick"

_TOP_KEYS = {"description", "epochs", "seeds", "batch_size", "runs", "precision", "devices"}
_GROUP_KEYS = {"name", "description", "models", "dataset", "dataset_params", "model_overrides", "optimizer",
               "epochs", "batch_size", "sweep", "tune", "tuned", "per_model", "claim", "source", "expect"}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Group:
    """One comparison group of a suite, validated. See the module docstring for the keys."""

    name: str
    description: str
    models: tuple
    dataset: str
    dataset_params: dict
    model_overrides: dict
    optimizer: dict
    epochs: int
    batch_size: int
    sweep: dict
    tune: SearchSpace | None = None
    tuned_in: str | None = None
    tuned_choice: dict = dataclasses.field(default_factory=dict)
    tuned_space: SearchSpace | None = None
    tuned_epochs: int | None = None
    tuned_over: str | None = None
    per_model: dict = dataclasses.field(default_factory=dict)
    claim: str | None = None
    source: str | None = None
    expect: tuple = ()

    def points(self) -> list[dict]:
        """The sweep points, in file order: `[{"model.depth": 20}, ...]` (one empty point without a sweep)."""
        keys = list(self.sweep)
        return [dict(zip(keys, values)) for values in itertools.product(*(self.sweep[k] for k in keys))]


@dataclasses.dataclass(frozen=True)
class Suite:
    """A parsed, validated suite."""

    name: str
    description: str
    path: Path
    seeds: int
    groups: tuple
    precision: str = "float32"
    devices: int = 1

    def group(self, name: str) -> Group:
        for group in self.groups:
            if group.name == name:
                return group
        raise KeyError(name)


def suite_names() -> list[str]:
    """The shipped suites, `quick` first."""
    names = sorted(p.stem for p in SUITES_DIR.glob("*.toml"))
    names.sort(key=lambda n: n != DEFAULT_SUITE)
    return names


def list_suites() -> list[tuple[str, str]]:
    """The shipped suites as `(name, description)`, `quick` first (no model is built)."""
    return [(n, str(_read_toml(SUITES_DIR / f"{n}.toml", n).get("description", ""))) for n in suite_names()]


def _read_toml(path: Path, shown: str) -> dict:
    where = f"Suite file {shown!r}"
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise SuiteError(f"{where} is not valid TOML ({e}).") from None
    except OSError as e:
        raise SuiteError(f"{where} cannot be read ({e.strerror}).") from None


def resolve_path(name_or_path) -> Path:
    """A shipped suite's file, or the given `.toml` file; `UserError` naming the shipped suites if neither."""
    text = str(name_or_path)
    path = Path(text)
    if not (text.endswith(".toml") or path.exists()):
        shipped = SUITES_DIR / f"{text}.toml"
        if not shipped.exists():
            raise UserError(
                f"Unknown suite {text!r}. Available suites: {', '.join(suite_names())}; or give the path of a .toml suite file."
            )
        return shipped
    if not path.is_file():
        raise UserError(f"Suite file {text!r} does not exist or is not a file.")
    return path


def load_suite(name_or_path, check_models: bool = False, limits: Limits = DEFAULT_LIMITS, _citing: tuple = ()) -> Suite:
    """Loads a shipped suite by name, or a suite file by path, and validates it.

    Args:
        name_or_path: a shipped suite name (`gradzoo list`) or a `.toml` path.
        check_models: also build every model of every group and sweep point at
            its dataset's input shape (what `gradzoo run` does before training).
        limits: the sizes refused unless raised on purpose (see
            `gradzoo.benchmarks.harness.plan.suite_checks`); checked before any
            configuration is listed.

    Raises:
        SuiteError: one sentence naming the file, the group and what is wrong.
        UserError: an unknown suite name.
    """
    path = resolve_path(name_or_path)
    if path.resolve() in _citing:  # a `tuned.in` chain that comes back would never end
        raise SuiteError(f"{place(_citing[-1])}: `tuned.in` leads back to {str(path)!r}, which cites it in turn; a tuning "
                         f"suite must not cite the suites that cite it. Received: in = {path.name!r}")  # fmt: skip
    data = _read_toml(path, str(name_or_path))
    where = f"Suite {path.stem!r}"
    with _as_suite_error(where):
        unknown = sorted(set(data) - _TOP_KEYS)
        if unknown:
            raise ValueError(f"unknown key `{unknown[0]}`; accepted: {', '.join(sorted(_TOP_KEYS))}")
        runs = data.get("runs")
        if not isinstance(runs, list) or not runs:
            raise ValueError("needs at least one [[runs]] group")
        defaults = {
            "epochs": checks.integer("epochs", data.get("epochs", 10), 1),
            "batch_size": checks.integer("batch_size", data.get("batch_size", 128), 1),
        }
        # 0 evaluation seeds: a tuning suite, whose trials another suite's `[runs.tuned]` cites.
        seeds = checks.integer("seeds", data.get("seeds", 1), 0)
        precision = checks.choice("precision", data.get("precision", "float32"), PRECISIONS)
        devices = checks.integer("devices", data.get("devices", 1), 1)
    groups = []
    for i, run in enumerate(runs):
        group = _parse_group(run, i, defaults, where, path, (*_citing, path.resolve()), limits)
        if any(g.name == group.name for g in groups):
            raise SuiteError(f"{where}: two groups are named {group.name!r}; group names must be unique.")
        groups.append(group)
    suite = Suite(path.stem, str(data.get("description", "")), path, seeds, tuple(groups), precision, devices)
    check_configurations(suite, limits)  # before `_check_values` lists them
    _check_values(suite)
    if check_models:
        check_builds(suite, limits)
    return suite


class _as_suite_error:
    """Turns ValueError/TypeError raised inside into one `SuiteError` sentence prefixed with `where`."""

    def __init__(self, where: str):
        self.where = where

    def __enter__(self):
        return self

    def __exit__(self, kind, error, tb):
        if kind is not None and issubclass(kind, (ValueError, TypeError)) and not isinstance(error, SuiteError):
            text = " ".join(str(error).split())
            raise SuiteError(f"{self.where}: {text[:1].lower() + text[1:] if text[1:2].islower() else text}") from None
        return False


def _parse_group(run, index: int, defaults: dict, where: str, path: Path, citing: tuple, limits: Limits) -> Group:
    from gradzoo import zoo
    from gradzoo.benchmarks.datasets import list_datasets

    name = run.get("name") if isinstance(run, dict) else None
    at = f"{where}, group {name!r}" if isinstance(name, str) else f"{where}, runs[{index}]"
    with _as_suite_error(at):
        if not isinstance(run, dict):
            raise ValueError("must be a table")
        unknown = sorted(set(run) - _GROUP_KEYS)
        if unknown:
            raise ValueError(f"unknown key `{unknown[0]}`; accepted: {', '.join(sorted(_GROUP_KEYS))}")
        if not isinstance(run.get("models"), list) or not run["models"]:
            raise ValueError("needs `models`, a non-empty list of zoo model names")
        known = set(zoo.list_models())
        for m in run["models"]:
            if m not in known:
                raise ValueError(f"unknown model {m!r} in `models`; see `gradzoo list`")
        check_distinct(run["models"], "models", place(path, name if isinstance(name, str) else None))
        datasets = [d["name"] for d in list_datasets()]
        if run.get("dataset") not in datasets:
            raise ValueError(f"unknown dataset {run.get('dataset')!r} in `dataset`; available: {', '.join(datasets)}")
        name = checks.plain_text("name", run.get("name") or f"{run['dataset']}-{'-'.join(run['models'])}")
        for key in ("dataset_params", "model_overrides", "optimizer", "sweep"):
            if not isinstance(run.get(key, {}), dict):
                raise ValueError(f"`{key}` must be a table")
        for key, values in run.get("sweep", {}).items():
            if "." not in key or key.split(".", 1)[0] not in TARGETS:
                raise ValueError(f"sweep key {key!r} must start with model., dataset. or optimizer.")
            if not isinstance(values, list) or not values:
                raise ValueError(f"`sweep.{key}` must be a non-empty list")
            check_distinct(values, f"sweep.{key}", place(path, name))
        tune = parse_space(run["tune"], "`tune`") if "tune" in run else None
        if tune is not None:
            for key, values in tune.space.items():
                if isinstance(values, list):
                    check_distinct(values, f"tune.{key}", place(path, name))
            clash = sorted(set(tune.space) & set(run.get("sweep", {})))
            if clash:
                raise ValueError(f"`{clash[0]}` is both swept and tuned; a key is one or the other")
        tuned_in, choice, tuned_space, tuned_epochs, tuned_over = _parse_tuned(run, tune, path, citing, limits)
        per_model = _parse_per_model(run.get("per_model", {}), run["models"], tune)
        for key in ("description", "claim", "source"):
            if key in run and not isinstance(run[key], str):
                raise ValueError(f"`{key}` must be a string")
        expect = parse_expectations(run.get("expect", []), run["models"], run.get("sweep", {}))
        return Group(
            name=name,
            description=" ".join(str(run.get("description", "")).split()),
            models=tuple(run["models"]),
            dataset=run["dataset"],
            dataset_params=dict(run.get("dataset_params", {})),
            model_overrides=dict(run.get("model_overrides", {})),
            optimizer=dict(run.get("optimizer", {})),
            epochs=checks.integer("epochs", run.get("epochs", defaults["epochs"]), 1),
            batch_size=checks.integer("batch_size", run.get("batch_size", defaults["batch_size"]), 1),
            sweep=dict(run.get("sweep", {})),
            tune=tune,
            tuned_in=tuned_in,
            tuned_choice=choice,
            tuned_space=tuned_space,
            tuned_epochs=tuned_epochs,
            tuned_over=tune.text if tune is not None else tuned_over,
            per_model=per_model,
            claim=run.get("claim"),
            source=run.get("source"),
            expect=tuple(expect),
        )


def _parse_tuned(run: dict, tune, path: Path, citing: tuple, limits: Limits) -> tuple:
    """`[runs.tuned]`: settings chosen by a shipped suite or one beside this file, with its search space as text."""
    from gradzoo.benchmarks.harness.plan.suite_checks import resolve_reference

    if "tuned" not in run:
        return None, {}, None, None, None
    if tune is not None:
        raise ValueError("has both `tune` and `tuned`; tune here or cite another suite's tuning, not both")
    table = run["tuned"]
    if not isinstance(table, dict) or not isinstance(table.get("in"), str):
        raise ValueError("`tuned` needs `in`, the shipped suite (or the .toml file beside this one) that ran the trials")
    cited = resolve_reference(table["in"], path, SUITES_DIR, suite_names(), place(path, run.get("name")))
    source = load_suite(cited, limits=limits, _citing=citing)
    try:
        source_group = source.group(run.get("name"))
    except KeyError:
        source_group = None
    space = source_group.tune if source_group is not None else None
    if space is None:
        raise ValueError(f"`tuned.in` = {table['in']!r} has no tuned group named {run.get('name')!r}")
    clash = sorted(set(space.space) & set(run.get("sweep", {})))
    if clash:  # the chosen value would replace every swept one: the same run at each sweep point
        raise SuiteError(f"{place(path, run.get('name'))}: `sweep.{clash[0]}` is also chosen by `tuned.in` = {table['in']!r}, "
                         f"so every sweep point would be the same run; sweep it or cite its tuning, not both. "
                         f"Received: sweep.{clash[0]} = {run['sweep'][clash[0]]!r}")  # fmt: skip
    choice = {}
    for model in run["models"]:
        setting = table.get(model)
        if not isinstance(setting, dict) or set(setting) != set(space.space):
            raise ValueError(f"`tuned.{model}` must give {', '.join(space.space)} (the keys {table['in']!r} searched)")
        choice[model] = dict(setting)
    extra = sorted(set(table) - {"in", *run["models"]})
    if extra:
        raise ValueError(f"`tuned.{extra[0]}` is not a model of the group")
    epochs = space.epochs or source_group.epochs
    return table["in"], choice, space, epochs, f"{space.text}, chosen by suite {table['in']!r}"


def _parse_per_model(table, models, tune) -> dict:
    """`[runs.per_model.MODEL]`: `target.parameter` settings that apply to one model of the group."""
    if not isinstance(table, dict):
        raise ValueError("`per_model` must be a table of model names")
    out = {}
    for model, setting in table.items():
        if model not in models:
            raise ValueError(f"`per_model.{model}` is not a model of the group")
        if not isinstance(setting, dict):
            raise ValueError(f"`per_model.{model}` must be a table of target.parameter keys")
        for key in setting:
            if "." not in key or key.split(".", 1)[0] not in TARGETS:
                raise ValueError(f"`per_model.{model}.{key}` must be model.X, dataset.X or optimizer.X")
            if tune is not None and key in tune.space:
                raise ValueError(f"`per_model.{model}.{key}` is also tuned; a key is one or the other")
        out[model] = dict(setting)
    return out


def _check_values(suite: Suite) -> None:
    """Every dataset parameter, optimizer setting, sweep and tuning value, without building anything."""
    from gradzoo.benchmarks.datasets import resolve_params

    from gradzoo import zoo

    for group in suite.groups:
        if group.tune is not None and group.tune.method == "random":
            check_distinct_settings(group.tune.settings(), place(suite.path, group.name))
        for point, setting, model in configurations(group):
            at = f"Suite {suite.name!r}, group {group.name!r}" + describe(point, setting, model)
            parts = split_setting({**point, **setting})
            with _as_suite_error(at):
                params = resolve_params(group.dataset, **{**group.dataset_params, **parts["dataset"]})
                check_batch(group.batch_size, group.dataset, params, place(suite.path, group.name) + describe(point, {}, model))
                settings = _optimizer(model, {**group.optimizer, **parts["optimizer"]})
                zoo.make_optimizer(settings)


def _optimizer(model: str, overrides: dict) -> dict:
    from gradzoo.benchmarks.harness.plan.spec import optimizer_settings

    settings = optimizer_settings(model, overrides)
    lr = settings.get("learning_rate")
    if not isinstance(lr, dict):
        checks.positive_number("optimizer.learning_rate", lr)
    return settings
