"""A run's specification: its config (the record's `RunConfig`) plus where to read data.

`RunSpec` is what suites expand into and what executors hand to `run_one`;
`spec.config()` is the part that identifies the run (its hash is the run id).
"""

from __future__ import annotations

import dataclasses

from gradzoo.benchmarks.errors import UserError
from gradzoo.benchmarks.harness.records import CLIP_KEYS, RunConfig, TuningInfo


@dataclasses.dataclass(frozen=True)
class RunSpec(RunConfig):
    """Everything that defines one training run (see `RunConfig`), and where its data is.

    Attributes:
        data_dir: where prepared tensorflow-datasets data lives. Not part of
            the run id: it changes where data is read, not what is trained.
        tuning: for an evaluation run whose setting was tuned, how it was
            chosen (goes into the record; the run id already holds the
            setting and `tuned_over`).
    """

    data_dir: str | None = None
    tuning: TuningInfo | None = None

    def config(self) -> RunConfig:
        """The part of the spec that identifies the run."""
        return RunConfig(**{f.name: getattr(self, f.name) for f in dataclasses.fields(RunConfig)})

    @property
    def run_id(self) -> str:
        return self.config().run_id

    def replace(self, **changes) -> RunSpec:
        return dataclasses.replace(self, **changes)


def optimizer_settings(model: str, overrides: dict) -> dict:
    """The model's recommended optimizer with a run's overrides on top.

    When the overrides name another optimizer (`{"name": "adam"}` for a model
    that recommends SGD), the recommended settings belong to the other one and
    are dropped, except the clipping knobs, which every optimizer takes. For the
    clipping knobs, `0` means "off" (TOML has no null): they become `None`.
    """
    from gradzoo import zoo

    recommended = dict(zoo.get_spec(model).optimizer)
    if "name" in overrides and overrides["name"] != recommended.get("name"):
        recommended = {k: v for k, v in recommended.items() if k in CLIP_KEYS}
    settings = {**recommended, **overrides}
    for key in CLIP_KEYS:
        if settings.get(key) == 0:
            settings[key] = None
    return settings


def build_for_dataset(model_name: str, signature, overrides: dict):
    """Builds a zoo model for a dataset, or explains in one sentence why the two do not fit.

    Args:
        model_name: a zoo model name.
        signature: the dataset's `Signature` (or a `Dataset`: both have the
            fields used here).
        overrides: hyperparameters passed to `gradzoo.zoo.build`.

    Raises:
        UserError: naming the model, the dataset's shape and what is wrong.
    """
    from gradzoo import zoo

    # A model measured through time is a recurrence over input steps: the only kind whose
    # builder gives one output per step or embeds token ids.
    recurrent = "time" in zoo.measured_through(model_name)
    overrides = dict(overrides)
    shape = tuple(signature.input_shape)
    if signature.sequence_output:
        if not recurrent:
            raise UserError(
                f"Model {model_name!r} gives one output per example, but this dataset needs one per time step; "
                "use an rnn model."
            )
        overrides.setdefault("sequence_output", True)
    if signature.input_dtype == "int32":
        if not recurrent:
            raise UserError(f"This dataset gives token ids; only rnn models embed tokens. Received: model={model_name!r}")
        overrides.setdefault("vocab_size", signature.vocab_size)
    try:
        return zoo.build(model_name, shape, signature.num_outputs, **overrides)
    except TypeError as e:
        raise UserError(f"Invalid override for model {model_name!r}: {e}. Received: {overrides}") from None
    except ValueError as e:
        raise UserError(f"Model {model_name!r} cannot take inputs of shape {shape}: {e}") from None

