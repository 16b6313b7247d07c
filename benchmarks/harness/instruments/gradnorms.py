"""The gradient statistics the recorder computes inside the train step.

`layer_groups` maps trainable variables to the layers that own them;
`gradient_stats` turns one step's gradients into a vector of per-layer L2
norms plus the global norm before and after clipping; `StepBuffer` carries
every step's vector to the host when Keras runs several steps per call. All are
backend-neutral (`keras.ops`), so the same code runs inside a TensorFlow graph,
a JAX trace or an eager torch step, but for the sums of squares, which come from
`gradzoo.benchmarks.harness.instruments.autodiff.squared_norms` (TensorFlow has a cheaper form there).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from gradzoo.benchmarks.harness.instruments.autodiff import squared_norms


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


def gradient_stats(grads, groups, optimizer=None, scale=None):
    """Per-layer and global gradient norms, as one backend tensor.

    Args:
        grads: gradients, one per trainable variable (`None` counts as zero).
        groups: `layer_groups(...)` of the same variables.
        optimizer: if given, its `clipnorm` / `global_clipnorm` / `clipvalue`
            decide the post-clipping global norm; otherwise post == pre.
        scale: the loss scale the gradients carry (mixed float16); the norms
            are divided by it, so they are those of the unscaled gradients.

    Returns:
        A float32 vector `[norm(layer_0), ..., norm(layer_L-1), global_pre,
        global_post]`.
    """
    sq, layer_sq = squared_norms(grads, groups)
    if scale is not None:
        # Norms are homogeneous: unscaling the squares costs one division per vector, not per element.
        inverse = 1.0 / ops.square(ops.cast(scale, "float32"))
        sq, layer_sq = sq * inverse, layer_sq * inverse
    per_layer = ops.sqrt(layer_sq)
    global_pre = ops.sqrt(ops.sum(layer_sq))
    global_post = global_pre
    if optimizer is not None:
        if getattr(optimizer, "clipnorm", None):
            # Keras clips each variable's gradient to norm <= clipnorm separately.
            c = float(optimizer.clipnorm)
            global_post = ops.sqrt(ops.sum(ops.square(ops.minimum(ops.sqrt(sq), c))))
        elif getattr(optimizer, "global_clipnorm", None):
            global_post = ops.minimum(global_pre, float(optimizer.global_clipnorm))
        elif getattr(optimizer, "clipvalue", None):
            c = float(optimizer.clipvalue)
            unscale = 1.0 if scale is None else ops.cast(scale, "float32")
            clipped = [ops.sum(ops.square(ops.clip(ops.cast(g, "float32") / unscale, -c, c))) for g in grads if g is not None]
            global_post = ops.sqrt(ops.sum(ops.stack(clipped))) if clipped else ops.zeros((), dtype="float32")
    return ops.concatenate([per_layer, ops.stack([global_pre, global_post])])


class StepBuffer(keras.metrics.Metric):
    """The statistics of every train step of one execution, kept in the graph.

    With `steps_per_execution = K > 1`, Keras runs K train steps per call and
    hands the callbacks the logs of the last one only. The recorder writes each
    step's vector into row `i % K` of this buffer (i: the step's index in the
    epoch) inside the step, and the last step's logs carry all K rows and the
    count. It is a `Metric` so that Keras carries its state from step to step on
    every backend (JAX threads metric variables through the jitted step) and
    zeroes it at the start of every epoch; `result()` is empty, so it adds
    nothing to the logs, the history or the progress bar.

    Args:
        steps: K, the rows.
        width: the length of one step's vector.
        name: Defaults to `"gradzoo_step_buffer"`.
    """

    def __init__(self, steps: int, width: int, name: str = "gradzoo_step_buffer"):
        super().__init__(name=name)
        self.steps, self.width = int(steps), int(width)
        self.rows = self.add_variable(shape=(self.steps, self.width), initializer="zeros", name="rows")
        self.count = self.add_variable(shape=(), initializer="zeros", dtype="int32", name="count")

    def update_state(self, *args, **kwargs):
        """Nothing: Keras's metric updates do not write here, `write` does."""

    def write(self, stats):
        """Stores one step's vector; returns `(rows, count)` as they stand after it."""
        i = self.count.value
        at = ops.reshape(ops.mod(i, self.steps), (1, 1))
        self.rows.assign(ops.scatter_update(self.rows.value, at, ops.expand_dims(ops.cast(stats, "float32"), 0)))
        self.count.assign(i + 1)
        return self.rows.value, self.count.value

    def result(self):
        return {}

    def get_config(self):
        return {"steps": self.steps, "width": self.width, "name": self.name}


def attach_step_buffer(model, steps: int, width: int) -> StepBuffer | None:
    """The model's `StepBuffer` of this shape, set on the model first if it has none.

    Keras tracks a metric set as an attribute of a functional or Sequential
    model, so it is in `model.metrics` and its state goes through every step.
    It stays there after the fit (it adds nothing to the logs) and is reused by
    the next one.

    Returns:
        The buffer, or `None` where Keras would not carry it: an unbuilt model,
        or a built subclassed model, whose state is locked.
    """
    buffer = getattr(model, "gradzoo_step_buffer", None)
    if not (isinstance(buffer, StepBuffer) and (buffer.steps, buffer.width) == (steps, width)):
        buffer = StepBuffer(steps, width)
        try:
            model.gradzoo_step_buffer = buffer
        except ValueError:
            return None
    return buffer if model.built and any(m is buffer for m in model.metrics) else None
