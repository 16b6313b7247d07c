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
afresh, are removed when the fit ends. With `steps_per_execution > 1` only the
last step of each execution is seen.

Why it costs almost nothing: the norms are one sum of squares per variable
over gradients the step already holds, the vector rides to the host with the
loss that Keras transfers anyway, and the callback is `async_safe`, so on
backends that dispatch callbacks in a worker thread (JAX, torch) recording does
not make `fit` wait for each step. `benchmarks/bench_recorder.py` measures it.
"""

from __future__ import annotations

import functools
import math
import operator
import threading
import warnings

import keras
import numpy as np
from keras import ops

from zoo.components import RECTIFYING, SATURATING

LOG_KEY = "gradzoo_grad_stats"

# An output below 0.01 or above 0.99 (sigmoid) or beyond +-0.99 (tanh) passes
# back less than 1/50 of the gradient of the linear region: call it saturated.
SATURATION_LEVEL = 0.99


def layer_groups(variables, model=None) -> list[dict]:
    """Groups trainable variables by the top-level layer that owns them.

    Args:
        variables: `model.trainable_variables`.
        model: the model they come from. Needed for Sequential and subclassed
            models, whose variable paths start with the model's own name
            (`sequential/dense/kernel`); without it, the first path segment
            names the layer, which is right for functional models only.
            Defaults to `None`.

    Returns:
        One dict per layer, in order of first appearance (for functional
        models that is input to output): `name`, `depth_index` (0 = nearest the
        input), `kind` (`"norm"` if the layer holds only BatchNorm/LayerNorm
        scale and offset, else `"weight"`), `num_params` and `indices` into
        `variables`.
    """
    owner = {}
    if model is not None:
        for top in model.layers:
            for v in top.trainable_variables:
                owner.setdefault(id(v), top.name)
    groups: dict[str, dict] = {}
    for i, v in enumerate(variables):
        path = getattr(v, "path", v.name)
        layer = owner.get(id(v)) or (path.split("/")[0] if "/" in path else path)
        group = groups.setdefault(layer, {"name": layer, "indices": [], "num_params": 0, "leaves": set()})
        group["indices"].append(i)
        group["num_params"] += int(np.prod(v.shape))
        group["leaves"].add(path.rsplit("/", 1)[-1])
    out = []
    for depth, group in enumerate(groups.values()):
        kind = "norm" if group.pop("leaves") <= {"gamma", "beta"} else "weight"
        out.append({**group, "depth_index": depth, "kind": kind})
    return out


def gradient_stats(grads, groups, optimizer=None):
    """Per-layer and global gradient norms, as one backend tensor.

    Args:
        grads: gradients, one per trainable variable (`None` counts as zero).
        groups: `layer_groups(...)` of the same variables.
        optimizer: if given, its `clipnorm` / `global_clipnorm` / `clipvalue`
            decide the post-clipping global norm; otherwise post == pre.

    Returns:
        A float32 vector `[norm(layer_0), ..., norm(layer_L-1), global_pre,
        global_post]`.
    """
    sq = [ops.zeros((), dtype="float32") if g is None else ops.sum(ops.square(ops.cast(g, "float32"))) for g in grads]
    # A layer's one to three scalars are added directly. Not a segment sum:
    # XLA on CPU runs that as a scatter, which made a 20-layer MLP's whole
    # train step 12% slower; this form costs it nothing measurable.
    layer_sq = ops.stack([functools.reduce(operator.add, [sq[i] for i in group["indices"]]) for group in groups])
    per_layer = ops.sqrt(layer_sq)
    global_pre = ops.sqrt(ops.sum(layer_sq))
    global_post = global_pre
    if optimizer is not None:
        if getattr(optimizer, "clipnorm", None):
            # Keras clips each variable's gradient to norm <= clipnorm separately.
            c = float(optimizer.clipnorm)
            global_post = ops.sqrt(ops.sum(ops.square(ops.minimum(ops.sqrt(ops.stack(sq)), c))))
        elif getattr(optimizer, "global_clipnorm", None):
            global_post = ops.minimum(global_pre, float(optimizer.global_clipnorm))
        elif getattr(optimizer, "clipvalue", None):
            c = float(optimizer.clipvalue)
            clipped = [ops.sum(ops.square(ops.clip(ops.cast(g, "float32"), -c, c))) for g in grads if g is not None]
            global_post = ops.sqrt(ops.sum(ops.stack(clipped))) if clipped else ops.zeros((), dtype="float32")
    return ops.concatenate([per_layer, ops.stack([global_pre, global_post])])


def _activation_name(layer) -> str | None:
    """The activation a layer's output has gone through, if it is a plain one."""
    if isinstance(layer, (keras.layers.LSTM, keras.layers.GRU)):
        return None  # their output is gate * tanh(state): not a plain activation
    fn = getattr(layer, "activation", None)
    if fn is None:
        return None
    try:
        name = keras.activations.serialize(fn)
    except (ValueError, TypeError):
        return None
    name = name if isinstance(name, str) else None
    return name if name in SATURATING + RECTIFYING else None


def _remove_hooks(model, names=("train_step", "compute_metrics", "apply")) -> None:
    """Removes the recorder's wrappers, uncovering the class methods again."""
    for name in names:
        obj = model.optimizer if name == "apply" else model
        if obj is not None and getattr(vars(obj).get(name), "_gradzoo_hook", False):
            delattr(obj, name)  # the instance attribute shadowed the method


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

    After (or during) training, `summary()` returns everything as plain
    JSON-serializable Python: see its docstring.

    Where Keras dispatches batch callbacks to worker threads (JAX, torch),
    steps may be read out of order and a few steps past a non-finite one may
    still run before training stops; the records are ordered by step and the
    first non-finite step is the one reported.
    """

    # Tells Keras it may run `on_train_batch_end` in a worker thread: the
    # method takes a lock and places each step by its `batch` index, not by
    # arrival order. Without it a JAX fit waits for every step to finish.
    async_safe = True

    def __init__(self, first_steps: int = 100, stride: int = 10, probe_x=None, stop_on_nonfinite: bool = True):
        super().__init__()
        if isinstance(first_steps, bool) or not isinstance(first_steps, int) or first_steps < 0:
            raise ValueError(f"`first_steps` must be an integer >= 0. Received: first_steps={first_steps!r}")
        if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
            raise ValueError(f"`stride` must be an integer >= 1. Received: stride={stride!r}")
        self.first_steps = first_steps
        self.stride = stride
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
        self._lock = threading.Lock()
        self._rows: list[tuple] = []  # this epoch's kept steps, in arrival order
        self._epoch_base = 0
        self._steps_per_call = 1
        self._installed = None
        self._warned = False
        self._plain_train_function = None
        self._probe_model = None
        self._reset_epoch()

    # --- hooks into the train step ------------------------------------------------
    def set_model(self, model):
        super().set_model(model)
        # Fit must trace a new train function, with the hooks. Clearing
        # `train_function` is not enough on JAX: it caches traces by function,
        # so `jit(model.train_step)` can find the plain trace of an earlier fit
        # and record nothing. A fresh pass-through `train_step` is a new key.
        # The plain function comes back at the end, so later fits need not retrace.
        _remove_hooks(model, ("train_step",))
        plain_step = model.train_step

        def train_step(*args, **kwargs):
            return plain_step(*args, **kwargs)

        train_step._gradzoo_hook = True
        model.train_step = train_step
        if getattr(model, "train_function", None) is not None:
            self._plain_train_function = model.train_function
        model.train_function = None

    def on_train_begin(self, logs=None):
        model = self.model
        if getattr(model, "optimizer", None) is None:
            raise ValueError("GradientRecorder needs a compiled model: call `model.compile(...)` first.")
        optimizer = model.optimizer
        # A fit that raised never reached on_train_end: drop its hooks, not wrap them.
        _remove_hooks(model, ("compute_metrics", "apply"))
        self.groups = layer_groups(model.trainable_variables, model)
        self._steps_per_call = max(1, int(getattr(model, "steps_per_execution", 1) or 1))
        pending = {}
        original_apply = optimizer.apply
        original_metrics = model.compute_metrics

        def apply(grads, trainable_variables=None):
            grads = list(grads)
            if sum(len(g["indices"]) for g in self.groups) != len(grads):
                # A subclassed model may first build its weights inside the step.
                self.groups = layer_groups(model.trainable_variables, model)
            pending["stats"] = gradient_stats(grads, self.groups, optimizer)
            return original_apply(grads, trainable_variables)

        def compute_metrics(*args, **kwargs):
            logs = original_metrics(*args, **kwargs)
            # Only the train step calls apply() first; test steps add nothing.
            if "stats" in pending:
                logs = dict(logs)
                logs[LOG_KEY] = pending.pop("stats")
            return logs

        apply._gradzoo_hook = compute_metrics._gradzoo_hook = True
        optimizer.apply = apply
        model.compute_metrics = compute_metrics
        self._installed = model
        self._warned = False
        self._build_probe()

    def on_train_end(self, logs=None):
        if self._installed is not None:
            model = self._installed
            _remove_hooks(model)
            model.train_function = self._plain_train_function
            self._plain_train_function = None
            self._installed = None
        self._flush_rows()

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
        layer_norms, pre, post = stats[:-2], float(stats[-2]), float(stats[-1])
        loss = logs.get("loss")
        finite = bool(np.isfinite(stats).all()) and (loss is None or math.isfinite(float(loss)))
        # `batch` is the last step of the execution; one call per execution.
        step = self._epoch_base + batch // self._steps_per_call
        clipped = post < pre * (1 - 1e-5)  # relative: float32 rounding is not clipping
        with self._lock:
            if not finite or self._keeps(step):
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
            if not finite and (self.nonfinite_step is None or step < self.nonfinite_step):
                self.nonfinite_step = step
                if self.stop_on_nonfinite:
                    # Not `self.model`: on JAX that property syncs the model's
                    # state, which from a worker thread races the train loop
                    # into reading donated buffers.
                    self._installed.stop_training = True

    def _flush_rows(self):
        """Moves this epoch's kept steps, in step order, to the public lists."""
        with self._lock:
            rows, self._rows = sorted(self._rows, key=lambda r: r[0]), []
        for step, norms, pre, post in rows:
            self.steps.append(step)
            self.norms.append(norms)
            self.global_pre.append(pre)
            self.global_post.append(post)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs.pop(LOG_KEY, None)
        self._flush_rows()
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
        self._measure_activations()

    # --- activations ------------------------------------------------------------
    def _build_probe(self):
        if self.probe_x is None or self._probe_model is not None:
            return
        model = self.model
        chosen = []
        for layer in model.layers:
            name = _activation_name(layer)
            if name is not None:
                chosen.append((layer, name))
        if not chosen or not hasattr(model, "inputs") or model.inputs is None:
            return
        self.activation_layers = [{"name": layer.name, "activation": name} for layer, name in chosen]
        # A one-input model takes the bare tensor: a list would warn on every call.
        inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
        self._probe_model = keras.Model(inputs, [layer.output for layer, _ in chosen])

    def _measure_activations(self):
        if self._probe_model is None:
            return
        outputs = self._probe_model(self.probe_x, training=False)
        if not isinstance(outputs, (list, tuple)):
            outputs = [outputs]
        row = []
        for info, out in zip(self.activation_layers, outputs):
            a = np.asarray(keras.ops.convert_to_numpy(out), dtype=np.float64)
            if info["activation"] == "sigmoid":
                row.append(float(np.mean((a < 1 - SATURATION_LEVEL) | (a > SATURATION_LEVEL))))
            elif info["activation"] == "tanh":
                row.append(float(np.mean(np.abs(a) > SATURATION_LEVEL)))
            else:  # relu: a unit is dead if it is zero for every probe example
                units = a.reshape(a.shape[0], -1)
                row.append(float(np.mean(np.all(units <= 0, axis=0))))
        self.activation_stats.append(row)

    # --- results ----------------------------------------------------------------
    def summary(self) -> dict:
        """Everything recorded, as JSON-serializable Python.

        Returns:
            A dict with `layers` (name, depth_index, kind, num_params per layer),
            `steps` (the recorded global step numbers), `norms` (per recorded
            step, one L2 norm per layer, raw gradient before clipping),
            `global_norm_pre` / `global_norm_post` (per recorded step),
            `clipped` (per recorded step: did clipping shrink the update),
            `epoch` (per epoch: per-layer `min`/`mean`/`max` over all steps,
            `global_pre_mean`, `global_pre_max`, `clip_rate`), `activations`
            (per epoch, per activation layer: the saturated fraction for
            sigmoid/tanh, the dead fraction for ReLU), `nonfinite_step` and
            `steps_seen`.
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
        }

    def get_config(self):
        return {
            "first_steps": self.first_steps,
            "stride": self.stride,
            "stop_on_nonfinite": self.stop_on_nonfinite,
        }
