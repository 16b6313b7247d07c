"""How the gradient recorder reaches inside Keras's compiled train step.

Every Keras 3 train step (TensorFlow, JAX, torch) hands the raw gradients to
`optimizer.apply` (JAX: `stateless_apply` for a `LossScaleOptimizer`) and then
computes the step's logs with `model.compute_metrics`. The hooks below wrap
those two instance attributes for the length of one `fit`: the wrapper of
`apply` turns the gradients into a statistics vector (a backend tensor, inside
the traced step), and the wrapper of `compute_metrics` adds it to the logs
under `LOG_KEY`, so it reaches the callbacks with the loss, without a second
backward pass or an eager loop. `remove_hooks` uncovers the class methods
again. The recorder (`gradzoo.benchmarks.harness.instruments.recorder`) owns what is measured;
this module owns only where.
"""

from __future__ import annotations

import threading

import keras

LOG_KEY = "gradzoo_grad_stats"
COUNT_KEY = "gradzoo_grad_stats_count"  # with a StepBuffer: steps of the epoch so far


def remove_hooks(model, names=("train_step", "compute_metrics", "apply", "stateless_apply")) -> None:
    """Removes the recorder's wrappers, uncovering the class methods again."""
    for name in names:
        obj = model.optimizer if name in ("apply", "stateless_apply") else model
        if obj is not None and getattr(vars(obj).get(name), "_gradzoo_hook", False):
            delattr(obj, name)  # the instance attribute shadowed the method


def is_loss_scaled(optimizer) -> bool:
    return isinstance(optimizer, keras.optimizers.LossScaleOptimizer)


def install_pass_through_step(model):
    """Gives `model` a fresh pass-through `train_step`, so that the next fit traces anew.

    Clearing `train_function` is not enough on JAX: it caches traces by
    function, so `jit(model.train_step)` can find the plain trace of an earlier
    fit and record nothing. A fresh pass-through `train_step` is a new key.

    Returns:
        The model's compiled train function before (or `None`), for the caller
        to put back after the fit, so later fits need not retrace.
    """
    remove_hooks(model, ("train_step",))
    plain_step = model.train_step

    def train_step(*args, **kwargs):
        return plain_step(*args, **kwargs)

    train_step._gradzoo_hook = True
    model.train_step = train_step
    previous = getattr(model, "train_function", None)
    model.train_function = None
    return previous


def install_gradient_hooks(model, stats_of, buffer=None) -> None:
    """Wraps `model.optimizer.apply` and `model.compute_metrics` for one fit.

    Args:
        model: a compiled Keras model.
        stats_of: `stats_of(grads, scale) -> tensor`, called inside the traced
            step with the raw gradients (a list, `None` for a variable without
            one) and the loss scale they carry (`None` without loss scaling).
        buffer: a `StepBuffer` (`steps_per_execution > 1`): each step's vector
            is written into it, and the logs carry all its rows under `LOG_KEY`
            and the count of steps so far under `COUNT_KEY`.
    """
    # A fit that raised never reached on_train_end: drop its hooks, not wrap them.
    remove_hooks(model, ("compute_metrics", "apply", "stateless_apply"))
    optimizer = model.optimizer
    loss_scaled = is_loss_scaled(optimizer)
    # Keyed by thread: under tf.distribute each replica traces the step in a thread of its own.
    pending = {}
    original_apply, original_stateless = optimizer.apply, optimizer.stateless_apply
    original_metrics = model.compute_metrics

    def apply(grads, trainable_variables=None):
        grads = list(grads)
        if loss_scaled and not optimizer.built:
            # TensorFlow builds the optimizer inside the first traced step; the scale is one of its variables.
            with keras.name_scope(optimizer.name):
                optimizer.build(model.trainable_variables if trainable_variables is None else trainable_variables)
        pending[threading.get_ident()] = stats_of(grads, optimizer.dynamic_scale if loss_scaled else None)
        return original_apply(grads, trainable_variables)

    def stateless_apply(optimizer_variables, grads, trainable_variables):
        # JAX calls this; a LossScaleOptimizer's scale is then a value in the state.
        index = next(i for i, v in enumerate(optimizer.variables) if v is optimizer.dynamic_scale)
        pending[threading.get_ident()] = stats_of(list(grads), optimizer_variables[index])
        return original_stateless(optimizer_variables, grads, trainable_variables)

    def compute_metrics(*args, **kwargs):
        logs = original_metrics(*args, **kwargs)
        # Only the train step calls apply() first; test steps add nothing.
        if threading.get_ident() in pending:
            logs = dict(logs)
            stats = pending.pop(threading.get_ident())
            if buffer is None:
                logs[LOG_KEY] = stats
            else:
                logs[LOG_KEY], logs[COUNT_KEY] = buffer.write(stats)
        return logs

    apply._gradzoo_hook = compute_metrics._gradzoo_hook = stateless_apply._gradzoo_hook = True
    optimizer.apply = apply
    if loss_scaled:
        # Its stateless_apply does not call apply(); the inner optimizer's
        # apply runs inside a conditional, out of reach of the step's logs.
        optimizer.stateless_apply = stateless_apply
    model.compute_metrics = compute_metrics
