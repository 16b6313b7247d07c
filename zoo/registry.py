"""The model registry: one place that names every zoo model.

A model becomes visible to `gradzoo list`, to the benchmark suites and to the
registry-driven tests by registering its builder here, with no other edit:

```python
@register(
    "mlp_sigmoid_deep",
    family="mlp",
    role="baseline",
    description="20 sigmoid layers, small-normal init: the first layers stop learning.",
    defaults=dict(depth=20, width=128, activation="sigmoid", initializer="small_normal"),
)
def mlp_sigmoid_deep(input_shape, num_outputs, **kwargs):
    return build_mlp(input_shape, num_outputs, **kwargs)
```
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any, Callable

FAMILIES = ("mlp", "cnn", "rnn")
ROLES = ("baseline", "mitigated")

# Optimizer settings every model trains with unless its spec says otherwise.
# Adam at 1e-3 is the common default across the papers the zoo reproduces.
DEFAULT_OPTIMIZER = {"name": "adam", "learning_rate": 1e-3}


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """What a user needs to know about one zoo model.

    Attributes:
        name: registry name, e.g. `"resnet_56"`.
        family: `"mlp"`, `"cnn"` or `"rnn"`.
        role: `"baseline"` (suffers vanishing/exploding gradients) or
            `"mitigated"` (applies a known fix).
        baseline: for a mitigated model, the baseline it is compared with;
            `None` for baselines.
        description: one line saying what the model demonstrates.
        builder: `builder(input_shape, num_outputs, **hparams) -> keras.Model`.
        defaults: the builder's hyperparameters for this entry; `build()`
            overrides are applied on top and validated by the builder.
        optimizer: recommended optimizer settings, e.g.
            `{"name": "adam", "learning_rate": 1e-3, "clipnorm": 1.0}`.
        input_rank: rank of one example the model accepts (without batch):
            `None` when the builder decides (the MLP flattens any rank; an RNN
            takes `(steps, features)`, or `(steps,)` tokens with `vocab_size`),
            2 for `(steps, features)`, 3 for `(height, width, channels)`.
        example_input_shapes: representative input shapes, used by the tests.
        reference: the paper the configuration follows.
    """

    name: str
    family: str
    role: str
    baseline: str | None
    description: str
    builder: Callable[..., Any]
    defaults: dict
    optimizer: dict
    input_rank: int | None
    example_input_shapes: tuple
    reference: str = ""

    @property
    def partners(self) -> tuple[str, ...]:
        """The models this one is compared with (a baseline may have several)."""
        if self.role == "mitigated":
            return (self.baseline,)
        return tuple(m for m, s in _REGISTRY.items() if s.baseline == self.name)

    @property
    def partner(self) -> str | None:
        """The primary comparison partner: the baseline, or the first mitigation."""
        partners = self.partners
        return partners[0] if partners else None

    def to_dict(self) -> dict:
        """JSON-serializable summary (what run records and manifests store)."""
        return {
            "name": self.name,
            "family": self.family,
            "role": self.role,
            "baseline": self.baseline,
            "partners": list(self.partners),
            "description": self.description,
            "defaults": dict(self.defaults),
            "optimizer": dict(self.optimizer),
            "reference": self.reference,
        }


_REGISTRY: dict[str, ModelSpec] = {}


def register(
    name: str,
    *,
    family: str,
    role: str,
    description: str,
    defaults: dict | None = None,
    baseline: str | None = None,
    optimizer: dict | None = None,
    input_rank: int | None = None,
    example_input_shapes: tuple = (),
    reference: str = "",
):
    """Decorator registering a builder under `name`. See the module docstring."""
    if family not in FAMILIES:
        raise ValueError(f"`family` must be one of {FAMILIES}. Received: family={family!r}")
    if role not in ROLES:
        raise ValueError(f"`role` must be one of {ROLES}. Received: role={role!r}")
    if (role == "mitigated") != (baseline is not None):
        raise ValueError(
            f"A mitigated model names its `baseline`; a baseline names none. "
            f"Received: name={name!r}, role={role!r}, baseline={baseline!r}"
        )

    def decorator(builder):
        if name in _REGISTRY:
            raise ValueError(f"Model {name!r} is already registered.")
        _REGISTRY[name] = ModelSpec(
            name=name,
            family=family,
            role=role,
            baseline=baseline,
            description=description,
            builder=builder,
            defaults=dict(defaults or {}),
            optimizer={**DEFAULT_OPTIMIZER, **(optimizer or {})},
            input_rank=input_rank,
            example_input_shapes=tuple(tuple(s) for s in example_input_shapes),
            reference=reference,
        )
        return builder

    return decorator


def list_models(family: str | None = None, role: str | None = None) -> list[str]:
    """Registered model names, in registration order.

    Args:
        family: keep only `"mlp"`, `"cnn"` or `"rnn"` models. Defaults to all.
        role: keep only `"baseline"` or `"mitigated"` models. Defaults to all.
    """
    if family is not None and family not in FAMILIES:
        raise ValueError(f"`family` must be one of {FAMILIES}. Received: family={family!r}")
    if role is not None and role not in ROLES:
        raise ValueError(f"`role` must be one of {ROLES}. Received: role={role!r}")
    return [
        name
        for name, spec in _REGISTRY.items()
        if (family is None or spec.family == family) and (role is None or spec.role == role)
    ]


def get_spec(name: str) -> ModelSpec:
    """The `ModelSpec` of a registered model; ValueError listing the names if unknown."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        close = difflib.get_close_matches(str(name), _REGISTRY, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ValueError(
            f"Unknown model {name!r}.{hint} Available models: {', '.join(_REGISTRY)}."
        ) from None


def measured_through(name: str) -> frozenset[str]:
    """What a model's gradient can be measured through: `"layers"`, and `"time"` for a recurrent net.

    The harness's instruments ask this to decide which of them apply to a run.

    Raises:
        ValueError: `name` is not a registered model.
    """
    # Bridge: derived from the family until each model declares what it is measured through (a change
    # made in parallel on another branch); the merge takes that version.
    return frozenset({"layers", "time"} if get_spec(name).family == "rnn" else {"layers"})


def pairs() -> list[tuple[str, str]]:
    """Every (baseline, mitigated) pair, grouped by baseline in registration order."""
    return [
        (baseline, mitigated)
        for baseline in list_models(role="baseline")
        for mitigated in get_spec(baseline).partners
    ]


def build(name: str, input_shape, num_outputs: int, **overrides):
    """Builds a fresh, uncompiled `keras.Model` from the registry.

    Args:
        name: a registered model name (see `list_models()`).
        input_shape: shape of one example, without the batch axis.
        num_outputs: number of classes (the head outputs logits) or of
            regression targets (the head is linear).
        **overrides: hyperparameters replacing the spec's defaults, e.g.
            `depth=32`, `activation="tanh"`. Invalid values raise ValueError
            naming the argument and the value received.

    Returns:
        An uncompiled `keras.Model` named `name`. Compile it with
        `spec.optimizer` (see `gradzoo.zoo.make_optimizer`) to train it as the zoo does.
    """
    spec = get_spec(name)
    input_shape = tuple(int(d) for d in input_shape)
    if spec.input_rank is not None and len(input_shape) != spec.input_rank:
        raise ValueError(
            f"Model {name!r} expects inputs of rank {spec.input_rank} "
            f"({_RANK_MEANING[spec.input_rank]}). Received: input_shape={input_shape}"
        )
    if not isinstance(num_outputs, int) or isinstance(num_outputs, bool) or num_outputs < 1:
        raise ValueError(f"`num_outputs` must be a positive integer. Received: num_outputs={num_outputs!r}")
    hparams = {**spec.defaults, **overrides}
    return spec.builder(input_shape, num_outputs, name=name, **hparams)


_RANK_MEANING = {1: "features", 2: "steps, features", 3: "height, width, channels"}


def architecture_name(name: str, overrides: dict | None = None) -> str:
    """The name of the architecture `build(name, ..., **overrides)` actually builds.

    A sweep over `depth` turns `plain_20_1d` into a 110-layer net: that net is
    `plain_110_1d`, and tables should say so. The name is that of a registered
    model of the same family, role, input rank and optimizer whose defaults
    equal the effective hyperparameters; when none does, the overrides that
    differ from the defaults are written in brackets:
    `mlp_sigmoid_deep[depth=50]`.

    Args:
        name: a registered model name.
        overrides: the hyperparameters passed to `build`. Defaults to none.

    Returns:
        The architecture's name.
    """
    spec = get_spec(name)
    overrides = dict(overrides or {})
    effective = {**spec.defaults, **overrides}
    changed = {k: v for k, v in overrides.items() if spec.defaults.get(k, _MISSING) != v}
    if not changed:
        return name
    for other in _REGISTRY.values():
        if (other.family, other.role, other.input_rank, other.optimizer) != (
            spec.family, spec.role, spec.input_rank, spec.optimizer,
        ):  # fmt: skip
            continue
        keys = set(other.defaults) | set(effective)
        if all(other.defaults.get(k, _MISSING) == effective.get(k, _MISSING) for k in keys):
            return other.name
    return f"{name}[{', '.join(f'{k}={v}' for k, v in sorted(changed.items()))}]"


_MISSING = object()
