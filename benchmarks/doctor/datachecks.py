"""The data's faults, named as the data's: a NaN in `x` or a label the loss cannot take is one
sentence about the array, never a verdict on the model.

Without these checks a single NaN in `x` made the probe's loss non-finite and
the doctor said EXPLODING and suggested clipping; fractional labels under a
sparse crossentropy were cast to integers by Keras and the doctor said HEALTHY;
a label out of range surfaced as a TensorFlow kernel message. Each check here
is cheap against the rows the doctor reads (at most `MAX_EXAMPLES`), and names
the array, the first offending row and what is accepted.
"""

from __future__ import annotations

import re

import numpy as np

from gradzoo.benchmarks.errors import UserError

# Losses that take one integer class label per example rather than targets shaped like the outputs.
_SPARSE = ("sparse_categorical_crossentropy",)
# Built-in losses whose targets are not shaped like the outputs (labels or sequences of labels).
_OTHER_SHAPES = ("ctc", "circle")
# Built-in losses whose targets are probabilities: values outside [0, 1] are a mistake in the data.
_PROBABILITY_TARGETS = ("binary_crossentropy", "binary_focal_crossentropy", "categorical_crossentropy",
                        "categorical_focal_crossentropy")  # fmt: skip


def _shape(dims) -> str:
    return "(" + ", ".join(str(d) for d in dims) + ("," if len(dims) == 1 else "") + ")"


def _value(v) -> str:
    return f"{v:g}" if isinstance(v, (float, np.floating)) else str(v)


def _first_row(bad: np.ndarray) -> int:
    """The first row with a `True` anywhere in it."""
    return int(np.argmax(bad.reshape(len(bad), -1).any(axis=1)))


def check_finite(name: str, a: np.ndarray) -> None:
    """Raises a `UserError` naming the first row of `a` that holds NaN or infinity.

    Args:
        name: the array's name for the user (`"x"` or `"y"`).
        a: one example per row.
    """
    if a.dtype.kind not in "fc" or a.size == 0:
        return
    bad = ~np.isfinite(a)
    if bad.any():
        row = _first_row(bad)
        value = a[row][bad[row]].flat[0]
        raise UserError(f"`{name}` holds {_value(value)} at row {row}; the doctor takes finite numbers only, so drop "
                        f"or fill the non-finite values before diagnosing.")  # fmt: skip


def check_trainable(model) -> None:
    """Raises a `UserError` for a model with no trainable weights: nothing would get a gradient."""
    if not model.trainable_weights:
        raise UserError(f"Model {model.name!r} has no trainable weights (its layers are frozen with `trainable=False`, "
                        "or hold no weights), so no gradient flows to diagnose; unfreeze the layers you mean to train.")  # fmt: skip


def loss_name(loss) -> str | None:
    """The Keras function name behind a built-in loss (`"mean_squared_error"`), or `None` for a loss of the user's own."""
    import keras

    if isinstance(loss, str):
        try:
            loss = keras.losses.get(loss)
        except ValueError:
            return None
    if isinstance(loss, keras.losses.Loss):  # a built-in class is named as its function: MeanSquaredError
        builtin = type(loss).__module__.startswith("keras.")
        return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", type(loss).__name__).lower() if builtin else None
    if callable(loss) and getattr(loss, "__module__", "").startswith("keras."):
        return getattr(loss, "__name__", None)
    return None


def check_targets(loss, loss_text: str, y: np.ndarray, outputs: np.ndarray) -> None:
    """Raises a `UserError` where the targets cannot be what a built-in loss takes on these outputs.

    Args:
        loss: the probe's loss (a string, a `keras.losses.Loss` or a function).
        loss_text: how to name it to the user.
        y: the targets, one per row.
        outputs: the model's outputs on the first examples.
    """
    name = loss_name(loss)
    if name is None or name in _OTHER_SHAPES or y.dtype.kind not in "fiub":
        return
    out, got = tuple(outputs.shape[1:]), tuple(y.shape[1:])
    if name in _SPARSE:
        fits = got in (out[:-1], out[:-1] + (1,))
        accepted = f"one integer class label per example (shape {_shape(out[:-1])} or {_shape(out[:-1] + (1,))})"
    else:
        fits = got == out or got + (1,) == out or got == out + (1,)
        accepted = f"targets shaped like the outputs, {_shape(out)}"
    if not fits:
        raise UserError(f"The targets in `y` (shape {_shape(got)} per example) do not fit the model's outputs (shape "
                        f"{_shape(out)}) under the loss {loss_text}, which takes {accepted}.")  # fmt: skip
    if name in _SPARSE:
        _check_labels(loss, loss_text, y, classes=out[-1] if out else 1)
    elif name in _PROBABILITY_TARGETS:
        bad = (y < 0) | (y > 1)
        if bad.any():
            row = _first_row(bad)
            raise UserError(f"`y` holds {_value(y[row][bad[row]].flat[0])} at row {row}, but the loss {loss_text} "
                            "takes targets between 0 and 1 (probabilities or 0/1 labels).")  # fmt: skip


def _check_labels(loss, loss_text: str, y: np.ndarray, classes: int) -> None:
    """Integer class labels in `[0, classes)` (or the loss's `ignore_class`), first offending row named."""
    ignore = loss.get_config().get("ignore_class") if hasattr(loss, "get_config") else None
    bad = (y < 0) | (y >= classes)
    if y.dtype.kind == "f":
        bad |= y != np.floor(y)
    if ignore is not None:
        bad &= y != ignore
    if bad.any():
        row = _first_row(bad)
        raise UserError(f"`y` holds the label {_value(y[row][bad[row]].flat[0])} at row {row}, but the loss {loss_text} "
                        f"takes integer class labels from 0 to {classes - 1} (the model has {classes} outputs).")  # fmt: skip


# Framework text that means nothing to a user: class paths, tensor reprs, graph node names.
_INTERNALS = re.compile(r"<class |keras\.src|tensorflow\.|jax\.|\{\{|Tensor\(|tf\.|node |config=|Traceback|0x[0-9a-f]{6}")


def plain_reason(err: Exception, limit: int = 160) -> str:
    """The framework's own first sentence about `err` where it is short and plain, else `""`.

    Never cut mid-word and never a class path or a tensor: a message that
    carries internals, or does not end within `limit` characters, is dropped
    whole, and the caller says what the user can fix in gradzoo's words.
    """
    text = " ".join(str(err).split())
    end = re.search(r"[.;:](\s|$)", text)
    sentence = text[: end.start()] if end else text
    if not sentence or len(sentence) > limit or _INTERNALS.search(sentence):
        return ""
    return sentence
