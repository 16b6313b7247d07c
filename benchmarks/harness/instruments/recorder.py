"""Gradient and activation recording inside the compiled train step.

`GradientRecorder` is a Keras callback that works in any `model.fit`, on the
TensorFlow, JAX and torch backends:

```python
recorder = GradientRecorder(first_steps=100, stride=10, probe_x=x_train[:256])
model.fit(x, y, epochs=5, callbacks=[recorder])
recorder.summary()["epoch"]["mean"]      # per epoch, per layer mean gradient norm
```

How it measures without a second backward pass: every Keras train step hands
the raw gradients to `optimizer.apply(grads)` before clipping. While a fit
runs, the recorder wraps that method on the model's optimizer to compute, in
the same compiled graph, the L2 norm of each layer's gradient and the global
norm before and after clipping, and wraps `model.compute_metrics` to return
that vector with the step's logs. The callback then reads it each batch, keeps
every step for the first `first_steps` and every `stride`-th after, and folds
all steps into per-epoch min/mean/max per layer. The wrappers, and a
pass-through `model.train_step` that makes the fit trace its train function
afresh, are removed when the fit ends (`gradzoo.benchmarks.harness.instruments.step_hooks`). With `steps_per_execution = K > 1`,
where Keras returns the logs of every K-th step only, each step writes its
vector into a K-row `StepBuffer` metric attached to the model, inside the
graph, so every step is still recorded. Trained data parallel (see
`gradzoo.benchmarks.harness.run.devices`), the norms are those of the whole global batch's
gradient, as on one device.

Why it costs almost nothing: the norms are one sum of squares per variable
over gradients the step already holds, the vector rides to the host with the
loss that Keras transfers anyway, and the callback is `async_safe`, so on
backends that dispatch callbacks in a worker thread (JAX, torch) recording does
not make `fit` wait for each step. `python -m gradzoo.benchmarks.perf.bench_recorder` measures it.
"""

from __future__ import annotations

import math
import threading
import warnings

import keras
import numpy as np

from gradzoo.zoo import checks
from gradzoo.benchmarks.harness.instruments.activations import SATURATION_LEVEL, ActivationProbe
from gradzoo.benchmarks.harness.instruments.autodiff import replica_sum
from gradzoo.benchmarks.harness.instruments.gradnorms import attach_step_buffer, gradient_stats, layer_groups
from gradzoo.benchmarks.harness.instruments.step_hooks import (
    COUNT_KEY, LOG_KEY, install_gradient_hooks, install_pass_through_step, is_loss_scaled, remove_hooks,
)  # fmt: skip

class GradientRecorder(keras.callbacks.Callback):
    """Records per-layer gradient norms on every train step, and activations.

    Args:
        first_steps: keep every step's norms for this many steps. Defaults to `100`.
        stride: after that, keep every `stride`-th step. Defaults to `10`.
        probe_x: a fixed batch of inputs; if given, at the end of every epoch
            the fraction of saturated units (sigmoid/tanh) and of dead units
            (ReLU: zero for every probe example) is measured per activation
            layer. Defaults to `None` (no activation statistics).
        stop_on_nonfinite: stop training at the first non-finite loss or
            gradient, recording the step. Defaults to `True`.
        log_dir: if given, a TensorBoard directory: at the end of every epoch
            the kept steps' per-layer and global norms (before and after
            clipping), the epoch's mean per layer, clip rate and activation
            fractions, and a histogram of the per-layer norms, are written
            there for the stock TensorBoard (`gradzoo.benchmarks.harness.instruments.tensorboard`
            lists the tags). Defaults to `None` (no event files).

    After (or during) training, `summary()` returns everything as plain
    JSON-serializable Python: see its docstring.

    Under mixed float16 Keras wraps the optimizer in a `LossScaleOptimizer`,
    whose gradients carry the loss scale: the recorder divides it out, so the
    norms are those of the true gradient, and a step whose scaled gradient
    overflowed (which the optimizer skips, halving the scale) is counted in
    `overflow_steps`, not taken for a divergence.

    Where Keras dispatches batch callbacks to worker threads (JAX, torch),
    steps may be read out of order and a few steps past a non-finite one may
    still run before training stops; the records are ordered by step and the
    first non-finite step is the one reported.
    """

    # Tells Keras it may run `on_train_batch_end` in a worker thread: the
    # method takes a lock and places each step by its `batch` index, not by
    # arrival order. Without it a JAX fit waits for every step to finish.
    async_safe = True

    def __init__(self, first_steps: int = 100, stride: int = 10, probe_x=None, stop_on_nonfinite: bool = True,
                 log_dir=None):  # fmt: skip
        super().__init__()
        self.log_dir = None if log_dir is None else str(log_dir)
        self._events = None
        self.first_steps = checks.integer("first_steps", first_steps, 0)
        self.stride = checks.integer("stride", stride, 1)
        self.probe_x = probe_x
        self.stop_on_nonfinite = stop_on_nonfinite
        self.groups: list[dict] = []
        self.step = 0
        self.steps: list[int] = []
        self.norms: list[list[float]] = []
        self.global_pre: list[float] = []
        self.global_post: list[float] = []
        self.epoch_stats = {"min": [], "mean": [], "max": [], "global_pre_mean": [], "global_pre_max": [], "clip_rate": []}
        self.activation_layers: list[dict] = []
        self.activation_stats: list[list[float | None]] = []
        self.nonfinite_step: int | None = None
        self.overflow_steps = 0
        self.loss_scaled = False
        self._lock = threading.Lock()
        self._rows: list[tuple] = []  # this epoch's kept steps, in arrival order
        self._epoch_base = 0
        self._steps_per_call = 1
        self._buffer = None
        self._installed = None
        self._warned = False
        self._plain_train_function = None
        self._probe = None
        self._reset_epoch()

    # --- hooks into the train step ------------------------------------------------
    def set_model(self, model):
        super().set_model(model)
        # Fit must trace a new train function, with the hooks. The plain
        # function comes back at the end, so later fits need not retrace.
        previous = install_pass_through_step(model)
        if previous is not None:
            self._plain_train_function = previous

    def on_train_begin(self, logs=None):
        model = self.model
        if getattr(model, "optimizer", None) is None:
            raise ValueError("GradientRecorder needs a compiled model: call `model.compile(...)` first.")
        optimizer = model.optimizer
        self.groups = layer_groups(model.trainable_variables, model)
        self._steps_per_call = max(1, int(getattr(model, "steps_per_execution", 1) or 1))
        self._buffer = self._attach_buffer(model) if self._steps_per_call > 1 else None
        self.loss_scaled = is_loss_scaled(optimizer)
        clipping = optimizer.inner_optimizer if self.loss_scaled else optimizer

        def stats_of(grads, scale):
            if sum(len(g["indices"]) for g in self.groups) != len(grads):
                # A subclassed model may first build its weights inside the step.
                self.groups = layer_groups(model.trainable_variables, model)
            # The whole batch's gradient, also where each of several replicas holds a share of it.
            return gradient_stats(replica_sum(grads), self.groups, clipping, scale)

        install_gradient_hooks(model, stats_of, self._buffer)
        self._installed = model
        self._warned = False
        if self.probe_x is not None and self._probe is None:
            self._probe = ActivationProbe(model, self.probe_x)
            self.activation_layers = list(self._probe.layers)
        if self.log_dir is not None and self._events is None:
            from gradzoo.benchmarks.harness.instruments.tensorboard import EventWriter

            self._events = EventWriter(self.log_dir)

    def _attach_buffer(self, model):
        buffer = attach_step_buffer(model, self._steps_per_call, len(self.groups) + 2)
        if buffer is None:
            warnings.warn(f"GradientRecorder cannot keep a step buffer on this model, so with steps_per_execution="
                          f"{self._steps_per_call} it records only the last step of each execution.", stacklevel=3)  # fmt: skip
        return buffer

    def on_train_end(self, logs=None):
        if self._installed is not None:
            model = self._installed
            remove_hooks(model)
            model.train_function = self._plain_train_function
            self._plain_train_function = None
            self._installed = None
        self._flush_rows()
        if self._events is not None:
            self._events.close()
            self._events = None

    # --- reading the logs ---------------------------------------------------------
    def _reset_epoch(self):
        self._e_min = self._e_max = self._e_sum = None
        self._e_count = 0  # finite steps folded into this epoch's statistics
        self._e_seen = 0  # all steps of this epoch
        self._e_gsum = 0.0
        self._e_gmax = 0.0
        self._e_clipped = 0

    def _keeps(self, step: int) -> bool:
        return step < self.first_steps or (step - self.first_steps) % self.stride == 0

    def on_epoch_begin(self, epoch, logs=None):
        # Keras has drained every batch callback of the last epoch by now.
        self._epoch_base = self.step

    def on_train_batch_end(self, batch, logs=None):
        stats = logs.pop(LOG_KEY, None) if logs else None
        count = logs.pop(COUNT_KEY, None) if logs else None
        if stats is None:
            if self._installed is not None and not self._warned:
                self._warned = True
                warnings.warn(
                    "GradientRecorder received a train step without gradient statistics, so it records "
                    "nothing: the model's `train_step` never called `optimizer.apply(grads)`.",
                    stacklevel=2,
                )
            return
        stats = np.asarray(stats, dtype=np.float64)
        loss = logs.get("loss")  # the epoch's running mean: non-finite from the first non-finite step on
        loss_finite = loss is None or math.isfinite(float(loss))
        if count is None:
            # One vector per call: `batch` is the last step of the execution.
            self._take(self._epoch_base + batch // self._steps_per_call, stats, loss_finite)
            return
        # A StepBuffer: executions start at multiples of K in the epoch, and
        # `batch` says which one this is (Keras does not clip it for a short last one).
        k = self._steps_per_call
        for i in range((batch // k) * k, int(count)):
            self._take(self._epoch_base + i, stats[i % k], loss_finite)

    def _take(self, step: int, stats: np.ndarray, loss_finite: bool) -> None:
        """Folds one step's vector `[layer norms..., global_pre, global_post]` into the records."""
        layer_norms, pre, post = stats[:-2], float(stats[-2]), float(stats[-1])
        finite = bool(np.isfinite(stats).all()) and loss_finite
        # A loss-scaled step whose scaled gradient overflowed is skipped by the
        # optimizer (which then halves the scale): not a divergence.
        overflow = not finite and loss_finite and self.loss_scaled
        clipped = post < pre * (1 - 1e-5)  # relative: float32 rounding is not clipping
        with self._lock:
            if (not finite and not overflow) or self._keeps(step):
                self._rows.append((step, layer_norms.tolist(), pre, post))
            # A non-finite step is kept above and reported as the divergence;
            # folding it into the epoch's min/mean/max would only turn them to NaN.
            self._e_seen += 1
            if finite:
                if self._e_count == 0:
                    self._e_min, self._e_max, self._e_sum = layer_norms.copy(), layer_norms.copy(), layer_norms.copy()
                else:
                    np.minimum(self._e_min, layer_norms, out=self._e_min)
                    np.maximum(self._e_max, layer_norms, out=self._e_max)
                    self._e_sum += layer_norms
                self._e_count += 1
                self._e_gsum += pre
                self._e_gmax = max(self._e_gmax, pre)
                self._e_clipped += clipped
            self.step += 1
            if overflow:
                self.overflow_steps += 1
            elif not finite and (self.nonfinite_step is None or step < self.nonfinite_step):
                self.nonfinite_step = step
                if self.stop_on_nonfinite:
                    # Not `self.model`: on JAX that property syncs the model's
                    # state, which from a worker thread races the train loop
                    # into reading donated buffers.
                    self._installed.stop_training = True

    def _flush_rows(self) -> list[tuple]:
        """Moves this epoch's kept steps, in step order, to the public lists, and returns them."""
        with self._lock:
            rows, self._rows = sorted(self._rows, key=lambda r: r[0]), []
        for step, norms, pre, post in rows:
            self.steps.append(step)
            self.norms.append(norms)
            self.global_pre.append(pre)
            self.global_post.append(post)
        return rows

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs.pop(LOG_KEY, None)
            logs.pop(COUNT_KEY, None)
        rows = self._flush_rows()
        recorded = bool(self._e_seen)
        if self._e_count:
            n = self._e_count
            self.epoch_stats["min"].append(self._e_min.tolist())
            self.epoch_stats["mean"].append((self._e_sum / n).tolist())
            self.epoch_stats["max"].append(self._e_max.tolist())
            self.epoch_stats["global_pre_mean"].append(self._e_gsum / n)
            self.epoch_stats["global_pre_max"].append(self._e_gmax)
            self.epoch_stats["clip_rate"].append(self._e_clipped / n)
        elif self._e_seen:
            # Every step of the epoch was non-finite: keep one row per epoch, marked NaN.
            nan_row = [float("nan")] * len(self.groups)
            for key in ("min", "mean", "max"):
                self.epoch_stats[key].append(list(nan_row))
            for key in ("global_pre_mean", "global_pre_max", "clip_rate"):
                self.epoch_stats[key].append(float("nan"))
        self._reset_epoch()
        if self._probe is not None and self._probe.layers:
            self.model  # noqa: B018  (on JAX, reading `model` syncs the trained weights into it)
            self.activation_stats.append(self._probe.measure())
        if self._events is not None:
            from gradzoo.benchmarks.harness.instruments.tensorboard import log_epoch

            row = {key: values[-1] for key, values in self.epoch_stats.items()} if recorded else None
            fractions = (self.activation_layers, self.activation_stats[-1]) if self._probe and self._probe.layers else None
            log_epoch(self._events, epoch, [g["name"] for g in self.groups], rows, row, fractions)

    # --- results ----------------------------------------------------------------
    def summary(self) -> dict:
        """Everything recorded, as JSON-serializable Python.

        Returns:
            A dict with `layers` (name, depth_index, kind, num_params per layer),
            `steps` (the recorded global step numbers), `norms` (per recorded
            step, one L2 norm per layer, raw gradient before clipping, unscaled),
            `global_norm_pre` / `global_norm_post` (per recorded step),
            `clipped` (per recorded step: did clipping shrink the update),
            `epoch` (per epoch: per-layer `min`/`mean`/`max` over all steps,
            `global_pre_mean`, `global_pre_max`, `clip_rate`), `activations`
            (per epoch, per activation layer: the saturated fraction for
            sigmoid/tanh, the dead fraction for ReLU), `nonfinite_step`,
            `steps_seen`, `overflow_steps` (loss-scaled steps skipped for an
            overflow) and `loss_scaled`.
        """
        with self._lock:  # mid-epoch, include the steps not yet flushed
            pending = sorted(self._rows, key=lambda r: r[0])
        steps = self.steps + [r[0] for r in pending]
        pre = self.global_pre + [r[2] for r in pending]
        post = self.global_post + [r[3] for r in pending]
        return {
            "layers": [{k: g[k] for k in ("name", "depth_index", "kind", "num_params")} for g in self.groups],
            "first_steps": self.first_steps,
            "stride": self.stride,
            "steps": steps,
            "norms": [list(r) for r in self.norms] + [list(r[1]) for r in pending],
            "global_norm_pre": pre,
            "global_norm_post": post,
            "clipped": [b < a * (1 - 1e-5) for a, b in zip(pre, post)],
            "epoch": {k: list(v) for k, v in self.epoch_stats.items()},
            "activations": {
                "layers": list(self.activation_layers),
                "saturation_level": SATURATION_LEVEL,
                "per_epoch": [list(r) for r in self.activation_stats],
            },
            "nonfinite_step": self.nonfinite_step,
            "steps_seen": self.step,
            "overflow_steps": self.overflow_steps,
            "loss_scaled": self.loss_scaled,
        }

    # --- resuming -------------------------------------------------------------------
    def get_state(self) -> dict:
        """What a resumed run continues from (between epochs): plain JSON."""
        self._flush_rows()
        return {
            "step": self.step, "steps": self.steps, "norms": self.norms, "global_pre": self.global_pre,
            "global_post": self.global_post, "epoch_stats": self.epoch_stats,
            "activation_stats": self.activation_stats, "nonfinite_step": self.nonfinite_step,
            "overflow_steps": self.overflow_steps,
        }  # fmt: skip

    def set_state(self, state: dict) -> None:
        for key, value in state.items():
            setattr(self, key, value)

    def get_config(self):
        return {
            "first_steps": self.first_steps,
            "stride": self.stride,
            "stop_on_nonfinite": self.stop_on_nonfinite,
            "log_dir": self.log_dir,
        }
