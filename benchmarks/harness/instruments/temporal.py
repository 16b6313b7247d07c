"""Gradient through time: how much the loss still depends on each input step.

For a recurrent net the vanishing gradient is a matter of time, not of layers:
a one-layer tanh RNN has a healthy first/last *layer* ratio while the gradient
reaching step 1 of a 100-step sequence is orders of magnitude below the one at
step 100 (Bengio et al. 1994; Pascanu et al. 2013, fig. 4). `TemporalProbe`
measures exactly that, on a fixed probe batch, at the start of training and at
the end of every epoch: the mean over examples of the L2 norm of dL/dx_t for
every step t. It runs outside the train step, once per epoch, on a few hundred
examples, so it costs one extra backward pass per epoch.
"""

from __future__ import annotations

import keras
import numpy as np

from gradzoo.benchmarks.harness.instruments.autodiff import input_gradients

# Steps averaged at each end of the sequence for the early/late ratio.
EDGE_FRACTION = 0.1


def early_late_ratio(profile) -> float | None:
    """Mean gradient norm over the first 10% of steps / over the last 10%."""
    profile = np.asarray(profile, dtype=np.float64)
    if profile.size < 2:
        return None
    k = max(1, int(round(profile.size * EDGE_FRACTION)))
    late = profile[-k:].mean()
    if not np.isfinite(late) or late <= 0:
        return None
    return float(profile[:k].mean() / late)


class TemporalProbe(keras.callbacks.Callback):
    """Records the per-step input-gradient profile of a sequence model.

    Args:
        probe_x: a fixed batch of float sequences `(batch, steps, features)`.
        probe_y: its targets.
        loss_fn: the training loss.

    After training, `summary()` returns `{"profiles": [[...per step] per
    measurement], "epochs": [0, 1, ...], "early_late_ratio": [...]}`, where epoch
    0 is the freshly initialized model.
    """

    def __init__(self, probe_x, probe_y, loss_fn):
        super().__init__()
        self.probe_x = np.asarray(probe_x, dtype="float32")
        self.probe_y = probe_y
        self.loss_fn = loss_fn
        self.epochs: list[int] = []
        self.profiles: list[list[float]] = []

    def _measure(self, epoch):
        grad = input_gradients(self.model, self.loss_fn, self.probe_x, self.probe_y)
        per_step = np.sqrt(np.sum(grad.astype(np.float64) ** 2, axis=tuple(range(2, grad.ndim)))).mean(axis=0)
        self.epochs.append(epoch)
        self.profiles.append(per_step.tolist())

    def on_train_begin(self, logs=None):
        if not self.epochs:  # a resumed run has its initial profile already
            self._measure(0)

    def on_epoch_end(self, epoch, logs=None):
        self._measure(epoch + 1)

    def get_state(self) -> dict:
        return {"epochs": self.epochs, "profiles": self.profiles}

    def set_state(self, state: dict) -> None:
        self.epochs, self.profiles = list(state["epochs"]), [list(p) for p in state["profiles"]]

    def summary(self) -> dict:
        return {
            "epochs": list(self.epochs),
            "profiles": [list(p) for p in self.profiles],
            "early_late_ratio": [early_late_ratio(p) for p in self.profiles],
            "edge_fraction": EDGE_FRACTION,
        }
