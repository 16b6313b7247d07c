"""Everything the doctor does before it measures: check the data against the model, copy the
model so that the user's own object and weights are never touched, and choose the loss and
optimizer of the probe training (the model's own, or stated assumptions for an uncompiled one).
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import keras
import numpy as np

from gradzoo.benchmarks.doctor.anatomy import model_type
from gradzoo.benchmarks.doctor.datachecks import check_finite, check_targets, plain_reason
from gradzoo.benchmarks.errors import UserError

ASSUMED_LEARNING_RATE = 1e-3


def _shape(a) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in a) + ")"


def check_data(model, x, y) -> tuple[np.ndarray, np.ndarray]:
    """The data as NumPy arrays, or one sentence saying why it cannot feed the model.

    The data is checked before the model: a fault in it is named as the
    data's (the array, the first offending row), never left to look like a
    gradient problem.

    Raises:
        UserError: `x` and `y` differ in length, are empty, hold something other
            than numbers, NaN or infinity, or `x`'s examples do not have the
            shape the model's input takes.
    """
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim == 0 or y.ndim == 0 or len(x) == 0:
        raise UserError(f"The data needs one example per row in `x` and `y`; received x of shape {x.shape} and y of shape {y.shape}.")
    if len(x) != len(y):
        raise UserError(f"`x` has {len(x)} examples but `y` has {len(y)}; give one target per example.")
    if x.dtype.kind not in "fiub":
        raise UserError(f"`x` must hold numbers; received an array of dtype {x.dtype}.")
    if y.dtype.kind not in "fiub":
        raise UserError(f"`y` must hold numbers; received an array of dtype {y.dtype}.")
    check_finite("x", x)
    check_finite("y", y)
    if x.dtype == np.float64:
        x = x.astype("float32")
    if model_type(model) != "subclassed" and len(model.inputs) == 1:
        expected = tuple(model.inputs[0].shape[1:])
        got = x.shape[1:]
        if len(expected) != len(got) or any(e is not None and e != g for e, g in zip(expected, got)):
            raise UserError(f"The data's examples have shape {_shape(got)}, but the model takes inputs of shape "
                            f"{_shape((None, *expected))}; give data that fits the model's input.")  # fmt: skip
    elif model_type(model) != "subclassed":
        raise UserError(f"The model takes {len(model.inputs)} inputs; the doctor diagnoses models with one input array.")
    return x, y


def _because(err: Exception) -> str:
    """`" (reason)"` where the framework's reason is plain (`plain_reason`), else nothing."""
    reason = plain_reason(err)
    return f" ({reason})" if reason else ""


def copy_model(model) -> tuple[object | None, str]:
    """A copy with the same weights, trained in the user's place.

    Sequential and functional models are cloned (`keras.models.clone_model`,
    then `set_weights`); any other model goes through a temporary `.keras` file,
    loaded back in safe mode, which needs its class to implement `get_config`
    and be registered with `keras.saving.register_keras_serializable`.

    Returns:
        `(copy, how)`, or `(None, why)` when the model cannot be copied.
    """
    if model_type(model) != "subclassed":
        try:
            clone = keras.models.clone_model(model)
            clone.set_weights(model.get_weights())
            return clone, "cloned with keras.models.clone_model"
        except (ValueError, TypeError, NotImplementedError):
            pass  # a custom layer without get_config: the file round trip says why
    try:
        with tempfile.TemporaryDirectory(prefix="gradzoo-doctor-") as tmp:
            path = Path(tmp) / "model.keras"
            model.save(path)
            clone = keras.saving.load_model(path, compile=False, safe_mode=True)
        return clone, "copied through a temporary .keras file (get_config and from_config)"
    except (NotImplementedError, TypeError, ValueError, KeyError, AttributeError, OSError) as err:
        return None, (f"the model could not be copied{_because(err)}; implement `get_config` and register its class "
                      "with `keras.saving.register_keras_serializable` so the doctor can train a copy")  # fmt: skip


def _probabilities(outputs: np.ndarray) -> bool:
    """Whether outputs look like a softmax (rows in [0, 1] summing to 1) or a sigmoid ([0, 1])."""
    if outputs.size == 0 or outputs.min() < 0 or outputs.max() > 1:
        return False
    return outputs.shape[-1] == 1 or bool(np.allclose(outputs.sum(axis=-1), 1.0, atol=1e-3))


def infer_loss(outputs: np.ndarray, y: np.ndarray):
    """The loss an uncompiled model most likely trains with, from its outputs and the targets.

    Integer labels: sparse categorical crossentropy (binary crossentropy for
    one output), from logits unless the outputs are probabilities already.
    One-hot float targets shaped like the outputs: categorical crossentropy.
    Any other float targets: mean squared error.
    """
    from_logits = not _probabilities(outputs)
    if y.dtype.kind in "iub":
        if outputs.shape[-1] == 1:
            return keras.losses.BinaryCrossentropy(from_logits=from_logits)
        return keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)
    one_hot = y.shape == outputs.shape and y.ndim >= 2 and np.isin(y, (0, 1)).all() and np.allclose(y.sum(axis=-1), 1)
    if one_hot and outputs.shape[-1] > 1:
        return keras.losses.CategoricalCrossentropy(from_logits=from_logits)
    return keras.losses.MeanSquaredError()


def describe_loss(loss) -> str:
    if isinstance(loss, str):
        return loss
    if isinstance(loss, keras.losses.Loss):
        logits = getattr(loss, "from_logits", None)
        return type(loss).__name__ + ("" if logits is None else f"(from_logits={logits})")
    return getattr(loss, "__name__", type(loss).__name__)


def describe_optimizer(optimizer) -> str:
    inner = getattr(optimizer, "inner_optimizer", None) or optimizer
    parts = []
    lr = inner.learning_rate
    if isinstance(lr, keras.optimizers.schedules.LearningRateSchedule):
        parts.append(f"learning_rate={type(lr).__name__}")
    else:
        parts.append(f"learning_rate={float(keras.ops.convert_to_numpy(lr)):.3g}")
    for key in ("clipnorm", "global_clipnorm", "clipvalue"):
        value = getattr(inner, key, None)
        if value:
            parts.append(f"{key}={value:g}")
    return f"{type(inner).__name__}({', '.join(parts)})"


def loss_callable(loss):
    """A `loss(y_true, y_pred) -> scalar` for the stateless measurements, from what `compile` accepted."""
    fn = keras.losses.get(loss) if isinstance(loss, str) else loss
    if isinstance(fn, keras.losses.Loss):
        return fn
    return lambda y_true, y_pred: keras.ops.mean(fn(y_true, y_pred))


def probe_setup(model, copy, x, y) -> dict:
    """The loss and optimizer the probe trains `copy` with, and whether they were assumed.

    Returns:
        `{"loss": ..., "optimizer": ..., "assumed": bool, "loss_text": str,
        "optimizer_text": str}`; the loss is the model's own compiled loss and
        the optimizer a fresh one of its compiled configuration, or for an
        uncompiled model the loss `infer_loss` picks and Adam at 1e-3.

    Raises:
        UserError: the targets do not fit the model's outputs under that loss.
    """
    compiled_loss = getattr(model, "loss", None)
    optimizer = getattr(model, "optimizer", None)
    sample_x, sample_y = x[: min(len(x), 64)], y[: min(len(y), 64)]
    try:
        outputs = copy(sample_x, training=False)
    except Exception as err:  # noqa: BLE001  (the user's model on the user's data: any failure means they do not fit)
        raise UserError(f"The model cannot run on the data's examples of shape {_shape(x.shape[1:])}{_because(err)}; "
                        "give `x` in the form the model's first layer takes.") from None  # fmt: skip
    if isinstance(outputs, (list, tuple, dict)):
        raise UserError("The model has several outputs; the doctor diagnoses models with one output.")
    outputs = np.asarray(keras.ops.convert_to_numpy(outputs))
    assumed = compiled_loss is None or optimizer is None
    if compiled_loss is not None and not isinstance(compiled_loss, (list, tuple, dict)):
        loss = compiled_loss
    else:
        loss = infer_loss(outputs, sample_y)
    if optimizer is not None:
        optimizer = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    else:
        optimizer = keras.optimizers.Adam(learning_rate=ASSUMED_LEARNING_RATE)
    check_targets(loss, describe_loss(loss), y, outputs)
    try:
        value = float(keras.ops.convert_to_numpy(loss_callable(loss)(sample_y, outputs)))
    except Exception as err:  # noqa: BLE001  (as above: targets that do not fit the outputs)
        raise UserError(f"The targets (shape {_shape(y.shape[1:])}, dtype {y.dtype}) do not fit the model's outputs "
                        f"(shape {_shape(outputs.shape[1:])}) under the loss {describe_loss(loss)}{_because(err)}.") from None  # fmt: skip
    if not math.isfinite(value) and compiled_loss is None:
        raise UserError(f"The assumed loss {describe_loss(loss)} is not finite on the data; compile the model with its loss.")
    return {"loss": loss, "optimizer": optimizer, "assumed": assumed, "loss_text": describe_loss(loss),
            "optimizer_text": describe_optimizer(optimizer), "warnings": _loss_warnings(loss, outputs)}  # fmt: skip


_PROBABILISTIC = ("crossentropy", "kl_divergence", "kld", "poisson")


def _loss_warnings(loss, outputs: np.ndarray) -> list[str]:
    """A crossentropy that expects probabilities on outputs that are not: a mistake that stops training by itself."""
    name = describe_loss(loss)
    config = loss.get_config() if isinstance(loss, keras.losses.Loss) else {}
    expects_probabilities = any(word in name.lower() for word in _PROBABILISTIC) and not config.get("from_logits", False)
    if expects_probabilities and not _probabilities(outputs):
        return [f"The loss {name} expects probabilities, but the model's outputs are not (they range from "
                f"{outputs.min():.3g} to {outputs.max():.3g}): compile with `from_logits=True`, or end the model with a "
                "softmax (sigmoid for one output). Crossentropy clips such outputs, which distorts or cuts the gradient."]  # fmt: skip
    return []
