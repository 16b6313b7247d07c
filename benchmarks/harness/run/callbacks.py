"""The harness's own callbacks: convergence bookkeeping and the data order (epoch checkpoints: `checkpoints`).

Each keeps what a resumed run must continue from in `get_state()` /
`set_state()` (plain JSON), so a run killed mid-way picks up its curves where
they stopped.
"""

from __future__ import annotations

import math
import threading
import time

import keras


def as_float(value):
    """A log value as a float; NaN becomes `None` ("no value"), +-inf stays: it says how a run diverged."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


class Convergence(keras.callbacks.Callback):
    """Keeps the per-epoch curves, the time to the dataset's target, and watches for divergence.

    Args:
        metric: the dataset's metric name, as Keras logs it.
        reached_target: `reached_target(score) -> bool` for the validation metric.
        on_batch: optional `on_batch(i)` called after every train step (progress bars).

    Training time (`train_s`) runs from the start of an epoch to the end of its
    last train step: validation and the epoch-end probes are not training.
    """

    # Lets Keras run `on_train_batch_end` in a worker thread (JAX, torch): a
    # callback that is not async-safe makes a JAX fit wait for every step,
    # which cost a small MLP about a quarter of its throughput. The method
    # takes a lock and places each step by its `batch` index, as steps may be
    # read out of order.
    async_safe = True

    def __init__(self, metric: str, reached_target, on_batch=None):
        super().__init__()
        self.metric = metric
        self.reached_target = reached_target
        self.on_batch = on_batch or (lambda i: None)
        self.history = {"epoch": [], "loss": [], "metric": [], "val_loss": [], "val_metric": [], "epoch_train_s": []}
        self.step = 0
        self.diverged_step = None
        self.train_s = 0.0
        self.steps_to_target = self.seconds_to_target = self.epochs_to_target = None
        self._lock = threading.Lock()
        self._epoch_base = 0
        self._fit_model = None

    def get_state(self) -> dict:
        return {
            "history": self.history, "step": self.step, "diverged_step": self.diverged_step, "train_s": self.train_s,
            "steps_to_target": self.steps_to_target, "seconds_to_target": self.seconds_to_target,
            "epochs_to_target": self.epochs_to_target,
        }  # fmt: skip

    def set_state(self, state: dict) -> None:
        for key, value in state.items():
            setattr(self, key, value)

    def on_train_begin(self, logs=None):
        # Kept for the worker thread: there, `self.model` would sync the
        # JAX state and race the train loop into reading donated buffers.
        self._fit_model = self.model

    def on_epoch_begin(self, epoch, logs=None):
        # Keras has drained the last epoch's batch callbacks by now.
        self._epoch_base = self.step
        self._t0 = self._last_batch = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()  # the step's logs are on the host: it has finished
        loss = (logs or {}).get("loss")
        nonfinite = loss is not None and not math.isfinite(float(loss))
        with self._lock:
            self._last_batch = max(self._last_batch, now)
            self.step += 1
            if nonfinite:
                step = self._epoch_base + batch
                if self.diverged_step is None or step < self.diverged_step:
                    self.diverged_step = step
                self._fit_model.stop_training = True
        self.on_batch(batch)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        seconds = self._last_batch - self._t0
        self.train_s += seconds
        h = self.history
        h["epoch"].append(epoch + 1)
        h["epoch_train_s"].append(seconds)
        h["loss"].append(as_float(logs.get("loss")))
        h["metric"].append(as_float(logs.get(self.metric)))
        h["val_loss"].append(as_float(logs.get("val_loss")))
        h["val_metric"].append(as_float(logs.get(f"val_{self.metric}")))
        score = h["val_metric"][-1]
        if self.steps_to_target is None and score is not None and self.reached_target(score):
            self.steps_to_target = self.step
            self.seconds_to_target = self.train_s
            self.epochs_to_target = epoch + 1


class DataOrder(keras.callbacks.Callback):
    """Sets the epoch of seeded batch sources before Keras reads the epoch's first batch."""

    def __init__(self, *sources):
        super().__init__()
        self.sources = [s for s in sources if hasattr(s, "set_epoch")]

    def on_epoch_begin(self, epoch, logs=None):
        for source in self.sources:
            source.set_epoch(epoch)
