"""The only backend-specific code in gradzoo: one plain gradient computation
per Keras backend.

The instrumented train step itself needs none (see `benchmarks.recorder`); this
module exists for what must bypass `fit`: measuring gradients of a freshly
initialized model (`gradzoo` diagnostics, tests) and checking the recorder
against an independent computation.
"""

from __future__ import annotations

import keras
import numpy as np


def loss_and_gradients(model, loss_fn, x, y, training: bool = True):
    """One forward/backward pass, no optimizer step and no state update.

    Args:
        model: a built `keras.Model`.
        loss_fn: a callable `loss_fn(y_true, y_pred) -> scalar`, e.g. a
            `keras.losses.Loss`.
        x: a batch of inputs (NumPy).
        y: the matching targets (NumPy).
        training: run layers such as BatchNorm in training mode. Defaults to `True`.

    Returns:
        `(loss, grads)`: the loss as a float and a list of NumPy arrays, one per
        `model.trainable_variables`, in that order.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=training))
        grads = tape.gradient(loss, model.trainable_variables)
    elif backend == "jax":
        import jax

        trainable = [v.value for v in model.trainable_variables]
        non_trainable = [v.value for v in model.non_trainable_variables]

        def compute(trainable_values):
            y_pred, _ = model.stateless_call(trainable_values, non_trainable, x, training=training)
            return loss_fn(y, y_pred)

        loss, grads = jax.value_and_grad(compute)(trainable)
    elif backend == "torch":
        import torch

        model.zero_grad()
        loss = loss_fn(torch.as_tensor(y), model(x, training=training))
        loss.backward()
        grads = [v.value.grad for v in model.trainable_variables]
    else:
        raise ValueError(f"Unsupported Keras backend {backend!r}; use tensorflow, jax or torch.")
    return float(keras.ops.convert_to_numpy(loss)), [np.asarray(keras.ops.convert_to_numpy(g)) for g in grads]


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
    backend = keras.backend.backend()
    x = np.asarray(x, dtype="float32")
    if backend == "tensorflow":
        import tensorflow as tf

        xt = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            loss = loss_fn(y, model(xt, training=training))
        grad = tape.gradient(loss, xt)
    elif backend == "jax":
        import jax

        trainable = [v.value for v in model.trainable_variables]
        non_trainable = [v.value for v in model.non_trainable_variables]

        def compute(inputs):
            y_pred, _ = model.stateless_call(trainable, non_trainable, inputs, training=training)
            return loss_fn(y, y_pred)

        grad = jax.grad(compute)(x)
    elif backend == "torch":
        import torch

        xt = torch.tensor(x, requires_grad=True)
        loss = loss_fn(torch.as_tensor(y), model(xt, training=training))
        (grad,) = torch.autograd.grad(loss, xt)
    else:
        raise ValueError(f"Unsupported Keras backend {backend!r}; use tensorflow, jax or torch.")
    return np.asarray(keras.ops.convert_to_numpy(grad))
