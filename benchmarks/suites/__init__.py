"""Declarative benchmark suites: TOML files of pair x dataset x parameters x seeds x epochs.

A suite file (the shipped ones live beside this module; a user's own file works
the same way) looks like:

```toml
description = "What the suite shows."
epochs = 10        # default for every entry
seeds = 1          # runs seeds 0..seeds-1
batch_size = 128

[[runs]]
name = "mlp"                                  # the comparison group
models = ["mlp_sigmoid_deep", "mlp_he_relu_bn"]
dataset = "mnist1d"
dataset_params = { shape = "flat" }
model_overrides = {}                          # passed to zoo.build
optimizer = {}                                # laid over each model's recommended optimizer
epochs = 20                                   # overrides the default

[runs.sweep]                                  # optional grid: every combination is run
"model.depth" = [20, 56, 110]                 # model.X, dataset.X or optimizer.X
```

For the clipping knobs, `optimizer.clipnorm = 0` means no clipping (TOML has no null).
"""

from __future__ import annotations

import dataclasses
import itertools
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SUITES_DIR = Path(__file__).resolve().parent
DEFAULT_SUITE = "quick"

_TOP_KEYS = {"description", "epochs", "seeds", "batch_size", "runs"}
_RUN_KEYS = {"name", "models", "dataset", "dataset_params", "model_overrides", "optimizer", "epochs", "batch_size", "sweep"}
_SWEEP_TARGETS = ("model", "dataset", "optimizer")


@dataclasses.dataclass(frozen=True)
class Suite:
    """A parsed suite: its name, description, defaults and entries (validated)."""

    name: str
    description: str
    path: Path
    epochs: int
    seeds: int
    batch_size: int
    runs: tuple


def list_suites() -> list[tuple[str, str]]:
    """The shipped suites as `(name, description)`, `quick` first."""
    names = sorted(p.stem for p in SUITES_DIR.glob("*.toml"))
    names.sort(key=lambda n: n != DEFAULT_SUITE)
    return [(n, load_suite(n).description) for n in names]


def _fail(where: str, message: str):
    raise ValueError(f"{where}: {message}")


def _positive_int(where, key, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        _fail(where, f"`{key}` must be a positive integer. Received: {key}={value!r}")
    return value


def load_suite(name_or_path) -> Suite:
    """Loads a shipped suite by name, or a suite file by path, and validates it.

    Raises:
        ValueError: one sentence naming the suite and what is wrong (unknown
            suite, missing or malformed file, unknown key, model or dataset).
    """
    text = str(name_or_path)
    path = Path(text)
    if not (text.endswith(".toml") or path.exists()):
        shipped = SUITES_DIR / f"{text}.toml"
        if not shipped.exists():
            available = ", ".join(sorted(p.stem for p in SUITES_DIR.glob("*.toml")))
            raise ValueError(f"Unknown suite {text!r}. Available suites: {available}; or give the path of a .toml suite file.")
        path = shipped
    if not path.is_file():
        raise ValueError(f"Suite file {text!r} does not exist or is not a file.")
    where = f"Suite file {str(path)!r}"
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        _fail(where, f"is not valid TOML ({e})")
    except OSError as e:
        _fail(where, f"cannot be read ({e.strerror})")
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        _fail(where, f"unknown key `{unknown[0]}`; accepted: {', '.join(sorted(_TOP_KEYS))}")
    runs = data.get("runs")
    if not isinstance(runs, list) or not runs:
        _fail(where, "needs at least one [[runs]] entry")
    import zoo
    from benchmarks.data import list_datasets

    datasets = {d["name"] for d in list_datasets()}
    models = set(zoo.list_models())
    for i, run in enumerate(runs):
        at = f"{where}, runs[{i}]"
        if not isinstance(run, dict):
            _fail(at, "must be a table")
        unknown = sorted(set(run) - _RUN_KEYS)
        if unknown:
            _fail(at, f"unknown key `{unknown[0]}`; accepted: {', '.join(sorted(_RUN_KEYS))}")
        if not isinstance(run.get("models"), list) or not run["models"]:
            _fail(at, "needs `models`, a non-empty list of zoo model names")
        for m in run["models"]:
            if m not in models:
                _fail(at, f"unknown model {m!r}; see `gradzoo list`")
        if run.get("dataset") not in datasets:
            _fail(at, f"unknown dataset {run.get('dataset')!r}; available: {', '.join(sorted(datasets))}")
        for key in ("dataset_params", "model_overrides", "optimizer", "sweep"):
            if not isinstance(run.get(key, {}), dict):
                _fail(at, f"`{key}` must be a table")
        for key, values in run.get("sweep", {}).items():
            target = key.split(".", 1)[0]
            if target not in _SWEEP_TARGETS or "." not in key:
                _fail(at, f"sweep key {key!r} must start with model., dataset. or optimizer.")
            if not isinstance(values, list) or not values:
                _fail(at, f"sweep {key!r} must be a non-empty list")
        for key in ("epochs", "batch_size"):
            if key in run:
                _positive_int(at, key, run[key])
    return Suite(
        name=path.stem,
        description=str(data.get("description", "")),
        path=path,
        epochs=_positive_int(where, "epochs", data.get("epochs", 10)),
        seeds=_positive_int(where, "seeds", data.get("seeds", 1)),
        batch_size=_positive_int(where, "batch_size", data.get("batch_size", 128)),
        runs=tuple(runs),
    )


def expand(suite: Suite, seeds: int | None = None, epochs: int | None = None, record_gradients: bool = True, data_dir=None):
    """The suite's `RunSpec`s, in file order: entry x sweep point x model x seed.

    Args:
        suite: a loaded suite.
        seeds: run seeds `0..seeds-1` instead of the suite's count.
        epochs: override every entry's epoch count.
        record_gradients: attach the gradient recorder.
        data_dir: prepared tensorflow-datasets directory, if any.
    """
    from benchmarks.runner import RunSpec

    n_seeds = seeds if seeds is not None else suite.seeds
    specs = []
    for i, run in enumerate(suite.runs):
        group = run.get("name") or f"{run['dataset']}:{'+'.join(run['models'])}"
        sweep = run.get("sweep", {})
        keys = list(sweep)
        for values in itertools.product(*(sweep[k] for k in keys)) if keys else [()]:
            point = dict(zip(keys, values))
            parts = {t: {} for t in _SWEEP_TARGETS}
            for key, value in point.items():
                target, param = key.split(".", 1)
                parts[target][param] = value
            for model in run["models"]:
                for seed in range(n_seeds):
                    specs.append(
                        RunSpec(
                            model=model,
                            dataset=run["dataset"],
                            seed=seed,
                            epochs=epochs if epochs is not None else run.get("epochs", suite.epochs),
                            batch_size=run.get("batch_size", suite.batch_size),
                            model_overrides={**run.get("model_overrides", {}), **parts["model"]},
                            dataset_params={**run.get("dataset_params", {}), **parts["dataset"]},
                            optimizer={**run.get("optimizer", {}), **parts["optimizer"]},
                            suite=suite.name,
                            group=group,
                            sweep=point,
                            record_gradients=record_gradients,
                            data_dir=data_dir,
                        )
                    )
    return specs
