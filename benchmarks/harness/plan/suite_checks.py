"""What a suite file may ask for: distinct values, references that stay beside it, sizes within limits.

A suite file can come from anywhere (a colleague, a paper's repository), so
before anything is built or allocated `load_suite` and `Plan` check that it
means what it says:

- every list of values (`models`, each sweep key, each tuning grid) names each
  value once: a repeated value is the same run twice;
- `[runs.tuned] in` names a shipped suite (`in = "quick_tuning"`) or a `.toml`
  file in the same directory as the citing suite (`in = "my_tuning.toml"`):
  no other directory, no `..`, no absolute path, no symlink out of it;
- a group's batch is no larger than its training split;
- the plan stays within `Limits` (runs, evaluation seeds, parameters per
  model), counted with arithmetic, never by listing the runs, so a suite that
  asks for 1e9 seeds is refused without building a 1e9-element list. The CLI
  raises a limit on purpose with `--max-runs`, `--max-seeds`, `--max-params`.

Every refusal is a `SuiteError`: one sentence naming the suite file, the
group, the key, the value received and what is accepted.
"""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path

from gradzoo.benchmarks.errors import SuiteError


@dataclasses.dataclass(frozen=True)
class Limits:
    """The largest plan run without being asked for on purpose.

    Attributes:
        runs: runs of a plan, tuning trials included (the shipped suites plan
            at most 148).
        seeds: evaluation seeds (claims use 3 to 5).
        params: trainable and other parameters of any one model (the shipped
            suites' largest has about 1.7 million).
    """

    runs: int = 1000
    seeds: int = 100
    params: int = 50_000_000


DEFAULT_LIMITS = Limits()
# The CLI flag that raises each limit, named in the refusal.
FLAGS = {"runs": "--max-runs", "seeds": "--max-seeds", "params": "--max-params"}
_SHIPPED_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


def place(path, group: str | None = None) -> str:
    """`Suite file '/x/evil.toml', group 'g'`: where a refusal points."""
    return f"Suite file {str(path)!r}" + (f", group {group!r}" if group is not None else "")


def _canonical(value):
    """A hashable form under which values that configure the same run are equal (`3` and `3.0`)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return (type(value).__name__, value)
    if isinstance(value, (int, float)):
        return ("number", float(value))
    if isinstance(value, (list, tuple)):
        return ("list", tuple(_canonical(v) for v in value))
    if isinstance(value, dict):
        return ("table", tuple(sorted((str(k), _canonical(v)) for k, v in value.items())))
    return ("other", repr(value))


_UNIQUE = object()


def _first_repeat(values: list):
    """The first value met twice (`3` and `3.0` are the same value), or `_UNIQUE`."""
    seen = set()
    for value in values:
        marker = _canonical(value)
        if marker in seen:
            return value
        seen.add(marker)
    return _UNIQUE


def check_distinct(values: list, key: str, where: str) -> None:
    """Raises `SuiteError` if `values` (a suite's list under `key`) names a value twice."""
    value = _first_repeat(values)
    if value is not _UNIQUE:
        raise SuiteError(f"{where}: `{key}` lists {value!r} twice, which would run the same configuration twice; "
                         f"list each value once. Received: {key} = {values!r}")  # fmt: skip


def check_distinct_settings(settings: list[dict], where: str) -> None:
    """A random search's drawn settings are distinct (a repeat would be the same trial twice)."""
    setting = _first_repeat(settings)
    if setting is not _UNIQUE:
        raise SuiteError(f"{where}: `tune` draws the setting {setting} twice within its budget, which would run the "
                         f"same trial twice; widen the ranges or lower `tune.budget`. Received: {setting}")  # fmt: skip


def resolve_reference(value, citing: Path, shipped_dir: Path, shipped: list[str], where: str) -> Path:
    """The suite file that `[runs.tuned] in = value` names, from a suite file at `citing`.

    Accepted: the name of a shipped suite, or the file name (`.toml`) of a suite
    in the citing file's own directory. Refused: anything with a directory part,
    `..`, an absolute path, a symlink whose target lies outside that directory,
    a file that does not exist.

    Raises:
        SuiteError: one sentence naming `where`, the key and the value.
    """
    accepted = (f"accepted: a shipped suite name ({', '.join(shipped)}) or the file name of a .toml suite in the same "
                f"directory as this one ({str(citing.resolve().parent)!r})")  # fmt: skip
    text = value if isinstance(value, str) else ""
    if text.endswith(".toml") and "/" not in text and "\\" not in text and text not in (".toml", "..toml"):
        folder = citing.resolve().parent
        path = citing.parent / text
        try:
            inside = path.is_file() and path.resolve().parent == folder
        except OSError:
            inside = False
        if inside:
            return path
        reason = "does not lead to a file in the same directory" if path.exists() or path.is_symlink() else "is not a file there"
        raise SuiteError(f"{where}: `tuned.in` = {value!r} {reason}; {accepted}. Received: in = {value!r}")
    if _SHIPPED_NAME.match(text) and text in shipped:
        return shipped_dir / f"{text}.toml"
    raise SuiteError(f"{where}: `tuned.in` = {value!r} names neither a shipped suite nor a suite file beside this one; "
                     f"{accepted}. Received: in = {value!r}")  # fmt: skip


def group_configurations(group) -> int:
    """How many (sweep point, model, trial) a group asks for, by arithmetic (`1` trial when untuned)."""
    points = math.prod(len(values) for values in group.sweep.values())
    return points * len(group.models) * (group.tune.budget if group.tune is not None else 1)


def plan_runs(suite, seeds: int) -> int:
    """Runs of the whole plan at `seeds` evaluation seeds, trials included, by arithmetic."""
    total = 0
    for group in suite.groups:
        points = math.prod(len(values) for values in group.sweep.values()) * len(group.models)
        total += points * ((group.tune.budget if group.tune is not None else 0) + seeds)
    return total


def check_configurations(suite, limits: Limits) -> None:
    """Before any configuration is listed: every group's sweep points, models and trials are within `limits.runs`."""
    total = 0
    for group in suite.groups:
        total += group_configurations(group)
        if total > limits.runs:
            raise SuiteError(
                f"{place(suite.path, group.name)}: the groups up to this one ask for {total} configurations (sweep "
                f"points x models x tuning trials), more than the limit of {limits.runs} runs; shrink the sweep or the "
                f"tuning, or raise the limit on purpose with {FLAGS['runs']} {total}. Received: sweep = "
                f"{ {k: len(v) for k, v in group.sweep.items()} } values, {len(group.models)} models, "
                f"{group.tune.budget if group.tune is not None else 0} trials"
            )  # fmt: skip


def check_plan_size(suite, seeds: int, from_cli: bool, limits: Limits) -> None:
    """Before the seeds are listed: `seeds` and the plan's runs are within `limits`."""
    key = "--seeds" if from_cli else "`seeds`"
    if seeds > limits.seeds:
        raise SuiteError(f"{place(suite.path)}: {key} = {seeds} evaluation seeds is more than the limit of {limits.seeds}; "
                         f"give at most {limits.seeds}, or raise the limit on purpose with {FLAGS['seeds']} {seeds}. "
                         f"Received: {key} = {seeds}")  # fmt: skip
    runs = plan_runs(suite, seeds)
    if runs > limits.runs:
        raise SuiteError(f"{place(suite.path)}: the plan has {runs} runs (tuning trials included) at {key} = {seeds}, more "
                         f"than the limit of {limits.runs}; ask for fewer seeds or a smaller sweep, or raise the limit on "
                         f"purpose with {FLAGS['runs']} {runs}. Received: {key} = {seeds}")  # fmt: skip


def check_params(count: int, where: str, limits: Limits) -> None:
    """A model's parameter count (counted without allocating its weights) is within `limits.params`."""
    if count > limits.params:
        raise SuiteError(f"{where}: the model has {count} parameters, more than the limit of {limits.params} per model; "
                         f"use smaller `model_overrides`, or raise the limit on purpose with {FLAGS['params']} {count}. "
                         f"Received: {count} parameters")  # fmt: skip


# Training examples of the real datasets' train split (TFDS), before the validation split.
_REAL_TRAIN = {"mnist": 60000, "fashion_mnist": 60000, "cifar10": 50000, "cifar100": 50000, "imdb_reviews": 25000,
               "seq_mnist": 60000, "permuted_seq_mnist": 60000}  # fmt: skip


def train_examples(dataset: str, params: dict) -> int | None:
    """The training split's size from validated dataset parameters, without generating data (`None`: unknown)."""
    if "num_train" in params:
        return params["num_train"]
    if dataset == "mnist1d":  # the generator keeps 80% for training, in whole tens
        total = int(params["num_samples"] // 10 * 10 * 0.8)
    elif dataset in _REAL_TRAIN:
        total = _REAL_TRAIN[dataset]
    else:
        return None
    return total - min(max(1, round(total * params.get("val_fraction", 0))), total - 1)


def check_batch(batch_size: int, dataset: str, params: dict, where: str) -> None:
    """A group's batch fits in its training split."""
    examples = train_examples(dataset, params)
    if examples is not None and batch_size > examples:
        raise SuiteError(f"{where}: `batch_size` = {batch_size} is larger than the {examples} training examples of "
                         f"dataset {dataset!r}; give a batch_size of at most {examples}. Received: batch_size = {batch_size}")  # fmt: skip


def configurations(group):
    """Every (sweep point, trial or chosen setting with the model's own settings, model) a group will run."""
    settings = group.tune.settings() if group.tune is not None else [{}]
    for point in group.points():
        for model in group.models:
            for setting in settings if group.tune is not None else [group.tuned_choice.get(model, {})]:
                yield point, {**group.per_model.get(model, {}), **setting}, model


def describe(point: dict, setting: dict, model: str) -> str:
    """` (model 'x', model.depth=3)`: the configuration a message is about."""
    parts = [f"model {model!r}"] + [f"{k}={v}" for k, v in {**point, **setting}.items()]
    return f" ({', '.join(parts)})"


def check_builds(suite, limits: Limits = DEFAULT_LIMITS) -> None:
    """Builds every distinct model of the suite at its dataset's input shape, or raises `SuiteError`.

    The models are built in a `keras.StatelessScope` that leaves their
    variables uninitialized: their parameters are counted (and refused above
    `limits.params`) without allocating a single weight.
    """
    import keras

    from gradzoo.benchmarks.datasets import dataset_signature
    from gradzoo.benchmarks.errors import as_user_error
    from gradzoo.benchmarks.harness.plan.spec import build_for_dataset
    from gradzoo.benchmarks.harness.plan.tuning import split_setting

    seen = set()
    for group in suite.groups:
        for point, setting, model in configurations(group):
            parts = split_setting({**point, **setting})
            overrides = {**group.model_overrides, **parts["model"]}
            params = {**group.dataset_params, **parts["dataset"]}
            key = (model, repr(sorted(overrides.items())), group.dataset, repr(sorted(params.items())))
            if key in seen:
                continue
            seen.add(key)
            at = f"Suite {suite.name!r}, group {group.name!r}" + describe(point, setting, model)
            with as_user_error(at, SuiteError), keras.StatelessScope(initialize_variables=False):
                count = build_for_dataset(model, dataset_signature(group.dataset, **params), overrides).count_params()
            check_params(count, place(suite.path, group.name) + describe(point, setting, model), limits)
    keras.utils.clear_session()  # the checked models (and their uninitialized variables) are not kept
