"""One interface for every measurement taken during training: the `Instrument`, and their registry.

An instrument is one class: its key in the record, when it applies, how it
hooks into training, its resume state, its typed log, its table columns and
its figures. The runner (`gradzoo.benchmarks.harness.run.run_one`), the doctor
(`gradzoo.benchmarks.doctor.measure`), the tables and the report all iterate
`registered()`, so a new measurement is one module and one registration:

```python
class WeightNorms(Instrument):
    key = "weight_norms"
    log_type = WeightNormLog            # a dataclass of `records.types` fields
    columns = ("weight_norm_last",)

    @classmethod
    def applies(cls, context):
        return "layers" in context.through

    def make_callback(self):
        return WeightNormCallback()     # a Keras callback with get_state/set_state/summary

    @staticmethod
    def table_columns(log):
        return {"weight_norm_last": log.norms[-1][-1]}

register_instrument(WeightNorms)
```

The built-in instruments (`gradzoo.benchmarks.harness.instruments.builtin`) are
registered when the package is first imported, before any other.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any, Callable, ClassVar

# What a model can be measured through: its layers (every model) and its time steps (recurrent nets).
THROUGH = ("layers", "time")


@dataclasses.dataclass(frozen=True)
class Context:
    """What a run offers its instruments.

    Attributes:
        through: what the model can be measured through, a subset of
            `{"layers", "time"}` (`gradzoo.zoo.measured_through`).
        probe_x: a fixed batch of training inputs, or `None` (a batch source:
            the data comes batched and augmented, with no fixed batch).
        probe_y: its targets.
        loss_fn: the training loss, a callable `loss_fn(y_true, y_pred)`.
        first_steps, stride: per-step retention: every step for the first
            `first_steps`, then every `stride`-th.
        log_dir: a TensorBoard directory for this run, or `None`.
        stop_on_nonfinite: stop training at the first non-finite gradient.
    """

    through: frozenset
    probe_x: Any = None
    probe_y: Any = None
    loss_fn: Any = None
    first_steps: int = 100
    stride: int = 10
    log_dir: str | None = None
    stop_on_nonfinite: bool = True


class Instrument:
    """A measurement taken during training; subclass it and `register_instrument` the subclass.

    The class says what the measurement is (its key, when it applies, its log
    type, columns and figures); an instance measures one run: the runner makes
    one per run with the run's `Context`, passes `callback` to `model.fit`,
    saves `get_state()` in each epoch checkpoint and puts `log()` in the record
    under `key`.

    Class attributes:
        key: the record key of its log (`RunRecord.instruments[key]`).
        log_type: the dataclass its log is (fields typed with
            `gradzoo.benchmarks.harness.records.types`, checked on every read).
        columns: the names of its columns in `convergence.csv`, one value per run.
        compared: of those, the ones the comparison table sets side by side
            (mean and std over seeds, the difference), each with its header
            in `comparison.md`.
        layer_columns: the names of its columns in `gradients.csv.gz`, one
            value per run, epoch and layer (see `layer_rows`).
        figures: `(kind, draw)` pairs for each pair of the report: `draw(unit,
            path)` returns `(path, caption)` or `None` (nothing to draw), as the
            functions of `gradzoo.benchmarks.reporting.figures` do. `draw` may be
            a `"module:function"` name, imported when the report is drawn (the
            built-in figures live in the reporting package, above this one).
        at_start: it measures when training begins, so it says something of a
            model that is never trained (the doctor without a probe training).
    """

    key: ClassVar[str]
    log_type: ClassVar[type]
    columns: ClassVar[tuple[str, ...]] = ()
    compared: ClassVar[dict[str, str]] = {}
    layer_columns: ClassVar[tuple[str, ...]] = ()
    figures: ClassVar[tuple[tuple[str, Callable | str], ...]] = ()
    at_start: ClassVar[bool] = False

    def __init__(self, context: Context):
        self.context = context
        self.callback = self.make_callback()

    # --- what a subclass defines ---------------------------------------------------
    @classmethod
    def applies(cls, context: Context) -> bool:
        """Whether it measures a run with this context."""
        raise NotImplementedError

    def make_callback(self):
        """The Keras callback that measures one run (and, if it needs to, hooks into the train step).

        It has `get_state()` / `set_state(state)` (plain JSON, between epochs)
        and `summary()` (the log as plain data).
        """
        raise NotImplementedError

    @staticmethod
    def table_columns(log) -> dict:
        """Its `columns` for one run, from its log."""
        return {}

    @staticmethod
    def layer_rows(log) -> list[dict]:
        """Its per-epoch, per-layer values: one dict per row with `epoch` (1 = first), `layer` and its `layer_columns`."""
        return []

    # --- what every instrument does the same way ---------------------------------------
    def get_state(self) -> dict:
        """Its resume state, plain JSON, saved in each epoch checkpoint."""
        return self.callback.get_state()

    def set_state(self, state: dict) -> None:
        """Continues from a state `get_state` returned."""
        self.callback.set_state(state)

    def log(self):
        """The run's log as `log_type`, checked field by field as a read record is."""
        from gradzoo.benchmarks.harness.records.codec import build

        return build(self.log_type, self.callback.summary(), f"the {self.key} log")


_REGISTRY: list[type[Instrument]] = []


def register_instrument(instrument: type[Instrument]) -> type[Instrument]:
    """Adds an instrument at the end of the registry (usable as a class decorator).

    Its log type is registered with the record (`records.register_log`), so
    records holding its log read it typed.

    Raises:
        ValueError: another registered instrument has the same key, or the
            class lacks `key` or `log_type`.
    """
    from gradzoo.benchmarks.harness.records import register_log

    key = getattr(instrument, "key", None)
    if not isinstance(key, str) or not key or not dataclasses.is_dataclass(getattr(instrument, "log_type", None)):
        raise ValueError(f"An instrument needs a string `key` and a dataclass `log_type`. Received: {instrument.__name__}.")
    taken = [i for i in _REGISTRY if i.key == key]
    if taken and taken[0] is not instrument:
        raise ValueError(f"The instrument key {key!r} is taken by {taken[0].__name__}. Received: {instrument.__name__}.")
    register_log(key, instrument.log_type)
    if not taken:
        _REGISTRY.append(instrument)
    return instrument


def unregister_instrument(key: str) -> None:
    """Removes the instrument of `key` from the registry (its log type stays known to the record)."""
    _REGISTRY[:] = [i for i in _REGISTRY if i.key != key]


def registered() -> list[type[Instrument]]:
    """The registered instruments, in registration order (the built-in ones first)."""
    return list(_REGISTRY)


def figure_function(draw: Callable | str) -> Callable:
    """`draw` itself, or the function a `"module:function"` name names."""
    if callable(draw):
        return draw
    module, _, name = draw.partition(":")
    return getattr(importlib.import_module(module), name)

