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
all steps into per-epoch min/mean/max per layer. Both wrappers are removed
when the fit ends. With `steps_per_execution > 1` only the last step of each
execution is seen.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from zoo.components import RECTIFYING, SATURATING

LOG_KEY = "gradzoo_grad_stats"

# An output below 0.01 or above 0.99 (sigmoid) or beyond +-0.99 (tanh) passes
# back less than 1/50 of the gradient of the linear region: call it saturated.
SATURATION_LEVEL = 0.99


def layer_groups(variables) -> list[dict]:
    """Groups trainable variables by the top-level layer that owns them.

    Args:
        variables: `model.trainable_variables`.

    Returns:
        One dict per layer, in order of first appearance (for functional
        models that is input to output): `name`, `depth_index` (0 = nearest the
        input), `kind` (`"norm"` if the layer holds only BatchNorm/LayerNorm
        scale and offset, else `"weight"`), `num_params` and `indices` into
        `variables`.
    """
    groups: dict[str, dict] = {}
    for i, v in enumerate(variables):
        path = getattr(v, "path", v.name)
        layer = path.split("/")[0] if "/" in path else path
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
    zero = ops.zeros((), dtype="float32")
    sq = [zero if g is None else ops.sum(ops.square(ops.cast(g, "float32"))) for g in grads]
    per_layer = [ops.sqrt(sum((sq[i] for i in group["indices"]), zero)) for group in groups]
    global_pre = ops.sqrt(sum(sq, zero))
    global_post = global_pre
    if optimizer is not None:
        if getattr(optimizer, "clipnorm", None):
            # Keras clips each variable's gradient to norm <= clipnorm separately.
            c = float(optimizer.clipnorm)
            global_post = ops.sqrt(sum((ops.square(ops.minimum(ops.sqrt(s), c)) for s in sq), zero))
        elif getattr(optimizer, "global_clipnorm", None):
            global_post = ops.minimum(global_pre, float(optimizer.global_clipnorm))
        elif getattr(optimizer, "clipvalue", None):
            c = float(optimizer.clipvalue)
            clipped = [ops.sum(ops.square(ops.clip(ops.cast(g, "float32"), -c, c))) for g in grads if g is not None]
            global_post = ops.sqrt(sum(clipped, zero))
    return ops.stack(per_layer + [global_pre, global_post])


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
    """

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
        self._installed = None
        self._probe_model = None
        self._reset_epoch()

    # --- hooks into the train step ------------------------------------------------
    def set_model(self, model):
        super().set_model(model)
        # A train function traced earlier lacks the hooks: make fit trace anew.
        model.train_function = None

    def on_train_begin(self, logs=None):
        model = self.model
        if getattr(model, "optimizer", None) is None:
            raise ValueError("GradientRecorder needs a compiled model: call `model.compile(...)` first.")
        self.groups = layer_groups(model.trainable_variables)
        optimizer = model.optimizer
        groups = self.groups
        pending = {}
        original_apply = optimizer.apply
        original_metrics = model.compute_metrics

        def apply(grads, trainable_variables=None):
            pending["stats"] = gradient_stats(list(grads), groups, optimizer)
            return original_apply(grads, trainable_variables)

        def compute_metrics(*args, **kwargs):
            logs = original_metrics(*args, **kwargs)
            # Only the train step calls apply() first; test steps add nothing.
            if "stats" in pending:
                logs = dict(logs)
                logs[LOG_KEY] = pending.pop("stats")
            return logs

        optimizer.apply = apply
        model.compute_metrics = compute_metrics
        self._installed = (optimizer, model)
        self._build_probe()

    def on_train_end(self, logs=None):
        if self._installed is not None:
            optimizer, model = self._installed
            del optimizer.apply  # the instance attributes shadowed the methods
            del model.compute_metrics
            model.train_function = None
            self._installed = None

    # --- reading the logs ---------------------------------------------------------
    def _reset_epoch(self):
        self._e_min = self._e_max = self._e_sum = None
        self._e_count = 0
        self._e_gsum = 0.0
        self._e_gmax = 0.0
        self._e_clipped = 0

    def on_train_batch_end(self, batch, logs=None):
        if logs is None or LOG_KEY not in logs:
            return
        stats = np.asarray(logs.pop(LOG_KEY), dtype=np.float64)
        layer_norms, pre, post = stats[:-2], float(stats[-2]), float(stats[-1])
        loss = logs.get("loss")
        finite = bool(np.all(np.isfinite(stats))) and (loss is None or math.isfinite(float(loss)))
        if self.step < self.first_steps or (self.step - self.first_steps) % self.stride == 0 or not finite:
            self.steps.append(self.step)
            self.norms.append(layer_norms.tolist())
            self.global_pre.append(pre)
            self.global_post.append(post)
        if self._e_count == 0:
            self._e_min, self._e_max, self._e_sum = layer_norms.copy(), layer_norms.copy(), layer_norms.copy()
        else:
            np.minimum(self._e_min, layer_norms, out=self._e_min)
            np.maximum(self._e_max, layer_norms, out=self._e_max)
            self._e_sum += layer_norms
        self._e_count += 1
        self._e_gsum += pre
        self._e_gmax = max(self._e_gmax, pre)
        # A relative tolerance: float32 rounding must not count as clipping.
        self._e_clipped += int(post < pre * (1 - 1e-5))
        if not finite and self.nonfinite_step is None:
            self.nonfinite_step = self.step
            if self.stop_on_nonfinite:
                self.model.stop_training = True
        self.step += 1

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs.pop(LOG_KEY, None)
        if self._e_count:
            n = self._e_count
            self.epoch_stats["min"].append(self._e_min.tolist())
            self.epoch_stats["mean"].append((self._e_sum / n).tolist())
            self.epoch_stats["max"].append(self._e_max.tolist())
            self.epoch_stats["global_pre_mean"].append(self._e_gsum / n)
            self.epoch_stats["global_pre_max"].append(self._e_gmax)
            self.epoch_stats["clip_rate"].append(self._e_clipped / n)
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
        self._probe_model = keras.Model(model.inputs, [layer.output for layer, _ in chosen])

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
        return {
            "layers": [{k: g[k] for k in ("name", "depth_index", "kind", "num_params")} for g in self.groups],
            "first_steps": self.first_steps,
            "stride": self.stride,
            "steps": list(self.steps),
            "norms": [list(r) for r in self.norms],
            "global_norm_pre": list(self.global_pre),
            "global_norm_post": list(self.global_post),
            "clipped": [post < pre * (1 - 1e-5) for pre, post in zip(self.global_pre, self.global_post)],
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
