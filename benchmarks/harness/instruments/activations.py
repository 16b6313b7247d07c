"""Saturated and dead units: what a layer's activations say about its gradient.

A sigmoid or tanh unit whose output sits near a bound passes back almost no
gradient (its derivative is near zero); a ReLU unit that outputs zero for every
input passes back none and never recovers. `ActivationProbe` measures both on a
fixed probe batch: the fraction of saturated units per sigmoid/tanh layer, and
of dead units per ReLU layer.
"""

from __future__ import annotations

import keras
import numpy as np

from gradzoo.zoo.components import RECTIFYING, SATURATING

# An output below 0.01 or above 0.99 (sigmoid) or beyond +-0.99 (tanh) passes
# back less than 1/50 of the gradient of the linear region: call it saturated.
SATURATION_LEVEL = 0.99


def activation_name(layer) -> str | None:
    """The activation a layer's output has gone through, if it is a plain saturating or rectifying one."""
    if isinstance(layer, (keras.layers.LSTM, keras.layers.GRU)):
        return None  # their output is gate * tanh(state): not a plain activation
    if isinstance(layer, keras.layers.ReLU):
        return "relu"
    fn = getattr(layer, "activation", None)
    if fn is None:
        return None
    try:
        name = keras.activations.serialize(fn)
    except (ValueError, TypeError):
        return None
    name = name if isinstance(name, str) else None
    return name if name in SATURATING + RECTIFYING else None


def unit_fractions(activation: str, outputs: np.ndarray) -> float:
    """The saturated (sigmoid/tanh) or dead (ReLU) fraction of one layer's outputs on a probe batch."""
    a = np.asarray(outputs, dtype=np.float64)
    if activation == "sigmoid":
        return float(np.mean((a < 1 - SATURATION_LEVEL) | (a > SATURATION_LEVEL)))
    if activation == "tanh":
        return float(np.mean(np.abs(a) > SATURATION_LEVEL))
    units = a.reshape(a.shape[0], -1)  # ReLU: a unit is dead if it is zero for every probe example
    return float(np.mean(np.all(units <= 0, axis=0)))


class ActivationProbe:
    """Measures the saturated or dead fraction of every plain activation layer of a model.

    Args:
        model: a functional or Sequential `keras.Model` (a subclassed model has
            no symbolic layer outputs: `layers` is then empty).
        probe_x: a fixed batch of inputs.
    """

    def __init__(self, model, probe_x):
        self.probe_x = probe_x
        chosen = [(layer, activation_name(layer)) for layer in model.layers]
        chosen = [(layer, name) for layer, name in chosen if name is not None]
        self.layers = [{"name": layer.name, "activation": name} for layer, name in chosen]
        self._model = None
        try:
            inputs = model.inputs
        except (AttributeError, ValueError):
            inputs = None
        if chosen and inputs:
            # A one-input model takes the bare tensor: a list would warn on every call.
            inputs = inputs[0] if len(inputs) == 1 else inputs
            self._model = keras.Model(inputs, [layer.output for layer, _ in chosen])
        else:
            self.layers = []

    def measure(self) -> list[float]:
        """One fraction per layer in `layers`, on the model's current weights."""
        if self._model is None:
            return []
        outputs = self._model.predict_on_batch(self.probe_x)
        if not isinstance(outputs, (list, tuple)):
            outputs = [outputs]
        return [unit_fractions(info["activation"], out) for info, out in zip(self.layers, outputs)]


class ActivationStats(keras.callbacks.Callback):
    """Measures the saturated or dead fractions (`ActivationProbe`) when training begins and after every epoch.

    Args:
        probe_x: a fixed batch of inputs.
        log_dir: if given, a TensorBoard directory: each epoch's fractions are
            written there under the tags the `GradientRecorder` uses
            (`epoch_saturated/<layer>`, `epoch_dead/<layer>`). Defaults to `None`.

    `summary()` returns `{"layers": [{"name", "activation"}...],
    "saturation_level": ..., "per_epoch": [[fraction per layer] per epoch],
    "initial": [fraction per layer] or None}`; `initial` is at the weights
    training started from (a resumed run keeps the one its first process measured).
    """

    def __init__(self, probe_x, log_dir=None):
        super().__init__()
        self.probe_x = probe_x
        self.log_dir = None if log_dir is None else str(log_dir)
        self._events = None
        self.layers: list[dict] = []
        self.per_epoch: list[list[float]] = []
        self.initial: list[float] | None = None
        self._probe = None

    def on_train_begin(self, logs=None):
        if self._probe is None:
            self._probe = ActivationProbe(self.model, self.probe_x)
            self.layers = list(self._probe.layers)
        if self.initial is None and not self.per_epoch:  # a resumed run measured it in its first process
            self.initial = self._probe.measure()
        if self.log_dir is not None and self._events is None and self._probe.layers:
            from gradzoo.benchmarks.harness.instruments.tensorboard import EventWriter

            self._events = EventWriter(self.log_dir)

    def on_epoch_end(self, epoch, logs=None):
        if self._probe.layers:
            self.model  # noqa: B018  (on JAX, reading `model` syncs the trained weights into it)
            self.per_epoch.append(self._probe.measure())
            if self._events is not None:
                from gradzoo.benchmarks.harness.instruments.tensorboard import log_activations

                log_activations(self._events, epoch, self.layers, self.per_epoch[-1])
                self._events.flush()

    def on_train_end(self, logs=None):
        if self._events is not None:
            self._events.close()
            self._events = None

    def get_state(self) -> dict:
        return {"per_epoch": self.per_epoch, "initial": self.initial}

    def set_state(self, state: dict) -> None:
        self.per_epoch = [list(row) for row in state["per_epoch"]]
        self.initial = state["initial"]

    def summary(self) -> dict:
        return {"layers": list(self.layers), "saturation_level": SATURATION_LEVEL,
                "per_epoch": [list(row) for row in self.per_epoch], "initial": self.initial}  # fmt: skip
