"""The backend-specific code of gradzoo's measurements, one branch per Keras backend.

The instrumented train step is written in `keras.ops` (see
`gradzoo.benchmarks.harness.instruments.step_hooks`) except for `squared_norms`, whose TensorFlow
form needs fewer graph ops. The rest serves what must bypass `fit`: measuring
gradients of a freshly initialized model (`gradzoo` diagnostics, tests), the
gradient through time of `gradzoo.benchmarks.harness.instruments.temporal`, and checking the
recorder against an independent computation (`value_and_grad`).
"""

from __future__ import annotations

import functools
import operator

import keras
import numpy as np
from keras import ops


def value_and_grad(fn, wrt: list):
    """`fn(wrt)` and its gradient with respect to each tensor in `wrt`.

    The one place that knows how each backend differentiates; everything else
    here is written once, in `keras.ops` and `model.stateless_call`.

    Args:
        fn: a function of a list of tensors returning a scalar tensor.
        wrt: the list of tensors (NumPy arrays or backend tensors).

    Returns:
        `(value, grads)`: the scalar as a backend tensor and one gradient per
        tensor in `wrt`, zeros where `fn` does not depend on it.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        wrt = [tf.convert_to_tensor(w) for w in wrt]
        with tf.GradientTape() as tape:
            tape.watch(wrt)
            value = fn(wrt)
        grads = tape.gradient(value, wrt, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    elif backend == "jax":
        import jax

        value, grads = jax.value_and_grad(fn)(list(wrt))
    elif backend == "torch":
        import torch

        wrt = [torch.as_tensor(w).detach().requires_grad_(True) for w in wrt]
        value = fn(wrt)
        grads = torch.autograd.grad(value, wrt, allow_unused=True)
        grads = [torch.zeros_like(w) if g is None else g for w, g in zip(wrt, grads)]
    else:
        raise ValueError(f"Unsupported Keras backend {backend!r}; use tensorflow, jax or torch.")
    return value, list(grads)


def squared_norms(tensors, groups) -> tuple:
    """Sums of squares inside the traced train step: `(per_tensor, per_group)`, float32 vectors.

    Args:
        tensors: one step's gradients (`None` counts as zero).
        groups: `layer_groups(...)` of the same variables; each one's `indices`
            pick its tensors.

    TensorFlow runs its graph op by op, at a few microseconds each on CPU: the
    generic form (square and sum per tensor, an add per extra tensor of a
    layer) cost a 20-layer MLP's 5 ms step about 7% on this project's 2-core
    machine, so there it is one fused `L2Loss` op per tensor and one segment
    sum. Elsewhere XLA fuses the generic form, which avoids a segment sum on
    purpose: XLA on CPU runs that as a scatter, which made the same MLP's step
    12% slower.
    """
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        zero = tf.zeros((), dtype="float32")
        # l2_loss is sum(t ** 2) / 2: doubling once, on the vector, is one op rather than one per tensor.
        halves = tf.stack([zero if t is None else tf.nn.l2_loss(tf.cast(t, "float32")) for t in tensors])
        owner = np.zeros(len(tensors), dtype="int32")
        for j, group in enumerate(groups):
            owner[group["indices"]] = j
        # A sum over each group's members only: an overflowed tensor leaves the other layers finite.
        per_group = tf.math.unsorted_segment_sum(halves, tf.constant(owner), len(groups))
        return 2.0 * halves, 2.0 * per_group
    zero = ops.zeros((), dtype="float32")
    sq = [zero if t is None else ops.sum(ops.square(ops.cast(t, "float32"))) for t in tensors]
    per_group = [functools.reduce(operator.add, [sq[i] for i in group["indices"]]) for group in groups]
    return ops.stack(sq), ops.stack(per_group)


def deterministic_ops() -> None:
    """Makes this process's kernels deterministic, for output that must repeat to the last digit.

    TensorFlow's CPU kernels may reduce in a thread-dependent order unless
    told not to (`tf.config.experimental.enable_op_determinism`, process-wide);
    JAX on CPU is deterministic already. Used by scripts whose output is
    checked in (the manual's doctor example, docs/doctor.md), never by training runs.
    """
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def _numpy(tensor) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(tensor))


def _training_kwargs(model, training: bool) -> dict:
    """`{"training": training}` if the model's `call` takes it: `stateless_call` passes it on as is,
    and a subclassed model's `call(self, x)` would reject it (`model(x)` drops it for such a call)."""
    import inspect

    parameters = inspect.signature(model.call).parameters
    takes = "training" in parameters or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    return {"training": training} if takes else {}


def loss_and_gradients(model, loss_fn, x, y, training: bool = True):
    """One forward/backward pass, no optimizer step and no state update.

    Args:
        model: a built `keras.Model`.
        loss_fn: a callable `loss_fn(y_true, y_pred) -> scalar`, e.g. a
            `keras.losses.Loss`.
        x: a batch of inputs (NumPy).
        y: the matching targets (NumPy).
        training: run layers such as BatchNorm in training mode (batch
            statistics; their moving averages are left as they were).
            Defaults to `True`.

    Returns:
        `(loss, grads)`: the loss as a float and a list of NumPy arrays, one per
        `model.trainable_variables`, in that order.
    """
    non_trainable = [v.value for v in model.non_trainable_variables]
    kwargs = _training_kwargs(model, training)

    def loss_of(weights):
        y_pred, _ = model.stateless_call(weights, non_trainable, x, **kwargs)
        return loss_fn(y, y_pred)

    loss, grads = value_and_grad(loss_of, [v.value for v in model.trainable_variables])
    return float(_numpy(loss)), [_numpy(g) for g in grads]


def input_gradients(model, loss_fn, x, y, training: bool = False):
    """The gradient of the loss with respect to the inputs, one per example.

    Used for the gradient-through-time profile of sequence models: how much
    the loss at the end still depends on the first steps of the sequence.

    Args:
        model: a built `keras.Model` with float inputs.
        loss_fn: a callable `loss_fn(y_true, y_pred) -> scalar`.
        x: a batch of inputs (NumPy, float).
        y: the matching targets.
        training: run layers in training mode. Defaults to `False`.

    Returns:
        A NumPy array shaped like `x`.
    """
    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]
    kwargs = _training_kwargs(model, training)

    def loss_of(inputs):
        y_pred, _ = model.stateless_call(trainable, non_trainable, inputs[0], **kwargs)
        return loss_fn(y, y_pred)

    _, (grad,) = value_and_grad(loss_of, [np.asarray(x, dtype="float32")])
    return _numpy(grad)


def replica_sum(grads: list) -> list:
    """The gradients of the whole global batch, from inside a train step.

    Under a `tf.distribute` strategy with several replicas, each replica's
    `optimizer.apply` receives only its share of the gradient (Keras sums them
    later, inside the update); this all-reduces them. Everywhere else
    (one device, JAX's data parallelism, whose gradients are global already)
    it returns `grads` as they are.

    Args:
        grads: one gradient (or `None`) per trainable variable.

    Returns:
        The summed gradients, `None` where `grads` had `None`.
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        return grads
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return grads
    summed = iter(context.all_reduce(tf.distribute.ReduceOp.SUM, [g for g in grads if g is not None]))
    return [None if g is None else next(summed) for g in grads]
