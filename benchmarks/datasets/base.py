"""The `Dataset` type, the dataset registry and the parameter rules.

A dataset registers a `build(info, params, data_dir) -> Dataset` and a
`signature(params) -> Signature`: the signature says what a model needs to know
(input shape and dtype, outputs, metric, chance, target) without generating or
reading any data, so a whole suite can be checked before training starts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from gradzoo.zoo import checks
from gradzoo.benchmarks.errors import UserError

SPLITS = ("train", "val", "test")


class DatasetNotAvailableError(UserError):
    """A real dataset is not prepared on this machine and is not downloaded.

    `str(error)` is one sentence naming the dataset, where it looked and how to
    provide the data.
    """


@dataclasses.dataclass(frozen=True)
class Signature:
    """What a model and a run need to know about a dataset, without its data.

    Attributes:
        input_shape: the shape of one example, without the batch axis.
        num_outputs: the number of classes, or of regression outputs.
        metric: the Keras-logged name of the metric `Dataset.make_metric` builds.
        metric_mode: `"max"` if higher `metric` is better, else `"min"`.
        chance: the chance-level score on the scale of `metric`.
        target: the score on that scale that counts as converged.
        sequence_output: `y` has a time axis (one label per step).
        input_dtype: `"float32"`, or `"int32"` for token ids.
        vocab_size: for token ids, the number of distinct ids (models embed them).
    """

    input_shape: tuple[int, ...]
    num_outputs: int
    metric: str
    metric_mode: str
    chance: float
    target: float
    sequence_output: bool = False
    input_dtype: str = "float32"
    vocab_size: int | None = None


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """One dataset, ready to train on.

    Splits (`train`, `val`, `test`) are either an `(x, y)` tuple of NumPy arrays
    or a batch source: a `keras.utils.PyDataset`, already batched with
    `params["batch_size"]`, that exposes `num_examples`. `x` is float32 (int32
    token ids for `imdb_reviews`, see `input_dtype`); `y` is int32 class ids for
    classification and float32 for regression.

    Attributes:
        name: the registry name, e.g. `"adding"`.
        params: the fully resolved parameters including `seed`; JSON-serializable.
        description: one line.
        embedded: generated offline (`True`) or loaded through tensorflow-datasets.
        train, val, test: the splits.
        input_shape: the shape of one example, without the batch axis.
        num_outputs: the number of classes, or of regression outputs.
        task: `"classification"` or `"regression"`.
        metric: the Keras-logged name of the metric that `make_metric` builds.
        metric_mode: `"max"` if higher `metric` is better, else `"min"`.
        chance: the chance-level score on the scale of `metric`.
        target: the score on that scale that counts as converged.
        sequence_output: `y` has a time axis (one label per step), so models need a
            per-timestep head.
        input_dtype: `"float32"`, or `"int32"` for token ids (models then need an
            `Embedding`).
        vocab_size: for token ids, the number of distinct ids.
        preprocessing: what was applied to the raw inputs (e.g. normalization
            statistics), so new inputs can be treated the same way.
    """

    name: str
    params: dict
    description: str
    embedded: bool
    train: Any
    val: Any
    test: Any
    input_shape: tuple[int, ...]
    num_outputs: int
    task: str
    metric: str
    metric_mode: str
    chance: float
    target: float
    sequence_output: bool = False
    input_dtype: str = "float32"
    vocab_size: int | None = None
    preprocessing: dict = dataclasses.field(default_factory=dict)

    @property
    def loss(self) -> str:
        """The name of the loss that `make_loss` builds."""
        if self.task == "classification":
            return "sparse_categorical_crossentropy"
        return "mean_squared_error"

    def split(self, split: str):
        """Returns one split (`"train"`, `"val"` or `"test"`): an `(x, y)` tuple or a batch source."""
        checks.choice("split", split, SPLITS)
        return getattr(self, split)

    def num_examples(self, split: str) -> int:
        """The number of examples (not batches) in a split."""
        data = self.split(split)
        if isinstance(data, tuple):
            return len(data[0])
        return int(data.num_examples)

    def make_loss(self) -> keras.losses.Loss:
        """The training loss. Models output logits, so crossentropy is `from_logits`."""
        if self.task == "classification":
            return keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        return keras.losses.MeanSquaredError()

    def make_metric(self) -> keras.metrics.Metric:
        """The metric that `chance` and `target` are measured in, named `metric`."""
        return make_metric(self.metric)

    def reached_target(self, score: float) -> bool:
        """Whether a score on the `metric` scale counts as converged (`False` for NaN)."""
        if self.metric_mode == "max":
            return bool(score >= self.target)
        return bool(score <= self.target)

    def to_dict(self) -> dict:
        """A JSON-serializable summary, without the data, for run records."""
        return {
            "name": self.name,
            "params": dict(self.params),
            "description": self.description,
            "embedded": self.embedded,
            "task": self.task,
            "input_shape": list(self.input_shape),
            "input_dtype": self.input_dtype,
            "num_outputs": self.num_outputs,
            "sequence_output": self.sequence_output,
            "loss": self.loss,
            "metric": self.metric,
            "metric_mode": self.metric_mode,
            "chance": float(self.chance),
            "target": float(self.target),
            "n_train": self.num_examples("train"),
            "n_val": self.num_examples("val"),
            "n_test": self.num_examples("test"),
            "preprocessing": self.preprocessing,
        }


def make_metric(name: str) -> keras.metrics.Metric:
    """A fresh Keras metric for one of the metric names datasets use."""
    if name == "accuracy":
        return keras.metrics.SparseCategoricalAccuracy(name="accuracy")
    if name == "crossentropy":
        return keras.metrics.SparseCategoricalCrossentropy(from_logits=True, name="crossentropy")
    if name == "mse":
        return keras.metrics.MeanSquaredError(name="mse")
    raise ValueError(f"No metric is defined for `metric={name!r}`.")


# ----------------------------------------------------------------------------
# Registry and parameters
# ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """A registered dataset: one row of `list_datasets()`.

    Attributes:
        name: the registry name.
        description: one line.
        embedded: generated offline rather than loaded through tensorflow-datasets.
        task: `"classification"` or `"regression"`.
        defaults: every accepted parameter with its default, `seed` included.
        build: `build(info, params, data_dir) -> Dataset`, given validated params.
        signature: `signature(params) -> Signature`, given validated params; reads no data.
    """

    name: str
    description: str
    embedded: bool
    task: str
    defaults: dict
    build: Callable = dataclasses.field(repr=False, compare=False)
    signature: Callable = dataclasses.field(repr=False, compare=False)

    def make(self, params: dict, **fields) -> Dataset:
        """Builds a `Dataset` carrying this entry's name, description, task and signature."""
        sig = dataclasses.asdict(self.signature(params))
        sig.update(fields.pop("signature_overrides", {}))
        return Dataset(
            name=self.name,
            params=params,
            description=self.description,
            embedded=self.embedded,
            task=self.task,
            **sig,
            **fields,
        )

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "description": self.description,
            "embedded": self.embedded,
            "task": self.task,
            "params": dict(self.defaults),
        }


_REGISTRY: dict[str, DatasetInfo] = {}
_COMMON_DEFAULTS = {"seed": 0, "batch_size": 128}


def register(name: str, description: str, *, embedded: bool, task: str, signature: Callable, **defaults):
    """Registers the decorated `build(info, params, data_dir)` under `name`.

    Args:
        name: the registry name.
        description: one line for `gradzoo list`.
        embedded: generated offline (no tensorflow-datasets).
        task: `"classification"` or `"regression"`.
        signature: `signature(params) -> Signature`, which must not read data.
        **defaults: every parameter the dataset accepts, with its default
            (`seed` and `batch_size` are added); each name needs a rule in
            `PARAM_RULES`.
    """
    unknown = sorted(set(defaults) - set(PARAM_RULES))
    if unknown:
        raise ValueError(f"Dataset {name!r} declares parameter `{unknown[0]}`, which has no rule in PARAM_RULES.")

    def decorator(build):
        _REGISTRY[name] = DatasetInfo(name, description, embedded, task, {**_COMMON_DEFAULTS, **defaults}, build, signature)
        return build

    return decorator


def _at_least(minimum: int) -> Callable:
    return lambda key, value: checks.integer(key, value, minimum)


def _one_of(*choices: str) -> Callable:
    return lambda key, value: checks.choice(key, value, choices)


# One rule per parameter name: a name means the same thing in every dataset.
PARAM_RULES: dict[str, Callable] = {
    "seed": _at_least(0),
    "batch_size": _at_least(1),
    "val_fraction": checks.open_fraction,
    "num_samples": _at_least(20),
    "shape": _one_of("sequence", "flat"),
    "length": _at_least(2),
    "num_train": _at_least(1),
    "num_val": _at_least(1),
    "num_test": _at_least(1),
    "augment": checks.boolean,
    "vocab_size": _at_least(3),
    "maxlen": _at_least(1),
    "permutation_seed": _at_least(0),
}


def list_datasets() -> list[dict]:
    """Every dataset: `name`, `description`, `embedded`, `task` and `params` (the defaults), embedded first."""
    return [info.to_dict() for info in _REGISTRY.values()]


def dataset_info(name: str) -> DatasetInfo:
    """The registry entry of a dataset, or a `UserError` naming the available ones."""
    if name not in _REGISTRY:
        raise UserError(f"Unknown dataset {name!r}. Available: {', '.join(_REGISTRY)}.")
    return _REGISTRY[name]


def resolve_params(name: str, seed: int = 0, **params) -> dict:
    """The dataset's full, validated parameters: defaults, then `params`, then `seed`.

    Raises:
        UserError: unknown dataset or parameter.
        ValueError: an invalid value, naming the parameter.
    """
    info = dataset_info(name)
    unknown = sorted(set(params) - set(info.defaults))
    if unknown:
        raise UserError(
            f"Unknown parameter `{unknown[0]}` for dataset {name!r}. Accepted: {', '.join(sorted(info.defaults))}."
        )
    resolved = {**info.defaults, **params, "seed": seed}
    return {key: PARAM_RULES[key](key, value) for key, value in resolved.items()}


def dataset_signature(name: str, seed: int = 0, **params) -> Signature:
    """What a model needs to know about a dataset, without generating or reading its data."""
    return dataset_info(name).signature(resolve_params(name, seed, **params))


def load_dataset(name: str, seed: int = 0, data_dir: str | None = None, **params) -> Dataset:
    """Loads a dataset by name.

    Args:
        name: a name from `list_datasets()`.
        seed: seeds generation, the validation split and augmentation. Defaults to `0`.
        data_dir: where prepared tensorflow-datasets data lives; else
            `$GRADZOO_TFDS_DIR`, else `$TFDS_DATA_DIR`, else `~/tensorflow_datasets`.
            Ignored by embedded datasets.
        **params: dataset parameters; see `list_datasets()` for each one's defaults.

    Returns:
        A `Dataset`.

    Raises:
        UserError: unknown dataset or parameter.
        ValueError: an invalid value.
        DatasetNotAvailableError: a real dataset is not prepared here.
    """
    info = dataset_info(name)
    return info.build(info, resolve_params(name, seed, **params), data_dir)


def split_off_validation(n: int, val_fraction: float, seed: int):
    """Holds out a seeded random fraction of a training set for validation.

    Args:
        n: the number of training examples.
        val_fraction: the share to hold out, in (0, 1); at least one example.
        seed: seeds the permutation.

    Returns:
        `(train_indices, val_indices)`: index arrays; the training indices are in
        shuffled order.
    """
    n_val = min(max(1, round(n * val_fraction)), n - 1)
    # A stream of its own, apart from the generators' per-split streams `[seed, 0..2]`.
    order = np.random.default_rng([seed, 0x5A11]).permutation(n)
    return order[n_val:], order[:n_val]
