"""One run -> one record.

`run_one(spec)` builds the zoo model, loads the dataset, trains with one
`model.fit` and every registered instrument that applies to it
(`gradzoo.benchmarks.harness.instruments`), and returns the run's `RunRecord`.
Given a checkpoint directory it saves the run's state after every epoch and,
when a checkpoint of the same run is there, resumes at the epoch it had
reached (see `gradzoo.benchmarks.harness.run.checkpoints`).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import math
import time
import warnings

from gradzoo.benchmarks.errors import UserError
from gradzoo.benchmarks.harness.run.callbacks import Convergence, DataOrder, as_float
from gradzoo.benchmarks.harness.run.devices import batch_problem, check_devices, clipping_problem, distribution_scope, share_batch_statistics
from gradzoo.benchmarks.harness.records import GRADIENT_NORMS, DatasetSummary, History, ModelInfo, RunRecord, Summary
from gradzoo.benchmarks.harness.records.codec import build
from gradzoo.benchmarks.harness.plan.spec import RunSpec, build_for_dataset, optimizer_settings

PROBE_EXAMPLES = 256


@contextlib.contextmanager
def dtype_policy(precision: str):
    """Sets the global Keras dtype policy for the block (models built inside take it), then restores it."""
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def _best(values, mode):
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return None
    return max(finite) if mode == "max" else min(finite)


def run_one(spec: RunSpec, progress=None, save_model_to=None, checkpoint_dir=None, executor: str = "local",
            tensorboard_dir=None) -> RunRecord:  # fmt: skip
    """Trains one run and returns its record (not yet written).

    Args:
        spec: the run.
        progress: optional `progress(kind, value)` callable, called with
            `("batches", n)` (steps per epoch) once, `("resumed", epoch)` when a
            checkpoint is resumed or `("discarded", reason)` when one cannot be
            used (the run then starts from its first epoch), then `("batch", i)`
            after each train step and `("epoch", e)` after each epoch; the CLI
            draws its bars with it. On JAX and torch the `"batch"` calls come
            from a worker thread and may arrive out of order.
        save_model_to: if given, the trained model is saved there (`.keras`),
            compiled, unless the run diverged.
        checkpoint_dir: the output directory whose `checkpoints/<run_id>/`
            holds this run's epoch checkpoints; `None` keeps none.
        executor: what ran it (`"local"`, `"ray"`), for the record's provenance.
        tensorboard_dir: if given (and gradients are recorded), the recorder
            writes TensorBoard events to `tensorboard_dir/<run_id>/`.

    Returns:
        The `RunRecord`.

    Raises:
        UserError: the spec's backend is not the one Keras runs, or the model
            and dataset do not fit together.
    """
    import keras

    from gradzoo.benchmarks.datasets import load_dataset

    if spec.backend != keras.backend.backend():
        raise UserError(
            f"Run {spec.run_id} is for the {spec.backend!r} backend, but Keras runs {keras.backend.backend()!r}; "
            "choose the backend with `--backend` (or KERAS_BACKEND) before Keras is imported."
        )
    check_devices(spec.devices)  # before the dataset: TensorFlow splits its CPU only before it first runs
    progress = progress or (lambda kind, value: None)
    t_setup = time.perf_counter()
    keras.utils.set_random_seed(spec.seed)
    dataset_params = dict(spec.dataset_params)
    # Batch sources (augmented or streamed data) come batched by the dataset.
    dataset_params.setdefault("batch_size", spec.batch_size)
    dataset = load_dataset(spec.dataset, seed=dataset_params.pop("seed", 0), data_dir=spec.data_dir, **dataset_params)
    settings = optimizer_settings(spec.model, spec.optimizer)
    sizes = {split: dataset.num_examples(split) for split in ("train", "val", "test")}
    problem = clipping_problem(spec.devices, settings) or batch_problem(spec.devices, spec.batch_size, sizes)
    if problem:
        raise UserError(f"Run {spec.run_id}: {problem}")
    args = (spec, dataset, settings, progress, save_model_to, checkpoint_dir, executor, t_setup, tensorboard_dir)
    with dtype_policy(spec.precision), distribution_scope(spec.devices):
        try:
            return _train(*args)
        except _UnfitCheckpoint as err:
            # Read whole but not this model's (edited, or copied from another run): it may have loaded
            # part-way, so the model is built afresh, from the run's seed, without it.
            progress("discarded", str(err))
            err.checkpoint.remove()
            keras.utils.set_random_seed(spec.seed)
            return _train(*args)


class _UnfitCheckpoint(Exception):
    """A checkpoint whose weights do not load into its run's model."""

    def __init__(self, checkpoint, reason: str):
        super().__init__(reason)
        self.checkpoint = checkpoint


def _train(spec, dataset, settings, progress, save_model_to, checkpoint_dir, executor, t_setup, tensorboard_dir=None):
    import keras

    from gradzoo import zoo
    from gradzoo.benchmarks.datasets.batches import EpochBatches
    from gradzoo.benchmarks.harness.run.checkpoints import EpochCheckpoint, RunCheckpoint
    from gradzoo.benchmarks.harness.run.environment import environment
    from gradzoo.benchmarks.harness.instruments import Context, registered

    model = build_for_dataset(spec.model, dataset, spec.model_overrides)
    share_batch_statistics(model, spec.devices)
    model.compile(optimizer=zoo.make_optimizer(settings), loss=dataset.make_loss(), metrics=[dataset.make_metric()])

    if isinstance(dataset.train, tuple):
        train = EpochBatches(*dataset.train, batch_size=spec.batch_size, seed=spec.seed)
        probe = (dataset.train[0][:PROBE_EXAMPLES], dataset.train[1][:PROBE_EXAMPLES])
    else:
        train, probe = dataset.train, None  # a batch source (augmented CIFAR): batched and seeded already
    progress("batches", len(train))
    convergence = Convergence(dataset.metric, dataset.reached_target, on_batch=lambda i: progress("batch", i))
    callbacks = [DataOrder(train), convergence,
                 keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: progress("epoch", e))]  # fmt: skip
    stateful = {"convergence": convergence}
    instruments = []
    if spec.record_gradients:  # `--no-gradients` runs no instrument
        context = Context(
            through=zoo.measured_through(spec.model), probe_x=probe[0] if probe else None,
            probe_y=probe[1] if probe else None, loss_fn=dataset.make_loss(), first_steps=spec.grad_first_steps,
            stride=spec.grad_stride, log_dir=None if tensorboard_dir is None else f"{tensorboard_dir}/{spec.run_id}",
        )
        instruments = [cls(context) for cls in registered() if cls.applies(context)]
        # First, in registry order: the gradient recorder takes its statistics out of each step's logs
        # before the other callbacks read them.
        callbacks[:0] = [instrument.callback for instrument in instruments]
        stateful.update({instrument.key: instrument for instrument in instruments})

    initial_epoch, resumed_at = 0, None
    checkpoint = RunCheckpoint(checkpoint_dir, spec.run_id) if checkpoint_dir is not None else None
    if checkpoint is not None:
        state = checkpoint.load()
        if checkpoint.problem:
            # Cut short or corrupt: h5py would fail on it at every rerun. The run starts over instead.
            progress("discarded", checkpoint.problem)
            checkpoint.remove()
        if state is not None:
            try:
                # Keras warns about each part that does not fit before it raises: one line says it instead.
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    checkpoint.restore(model, state)
            except (OSError, ValueError, KeyError) as err:
                reason = " ".join(str(err).split())[:120]
                raise _UnfitCheckpoint(checkpoint, f"its weights do not fit the model: {reason}") from None
            for w in caught:  # a checkpoint that loaded: its warnings are the user's to see
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
            missing = [name for name in stateful if name not in state["callbacks"]]
            if missing:
                # Written by another gradzoo, or with other instruments registered: resuming would
                # leave the first epochs out of these logs.
                raise _UnfitCheckpoint(checkpoint, f"it holds no state for {', '.join(missing)}")
            for name, callback in stateful.items():
                callback.set_state(state["callbacks"][name])
            initial_epoch = resumed_at = int(state["epoch"])
            progress("resumed", resumed_at)
        callbacks.append(EpochCheckpoint(checkpoint, stateful, should_save=lambda: convergence.diverged_step is None))
    setup_s = time.perf_counter() - t_setup

    t_fit = time.perf_counter()
    # shuffle=False: the batch source orders each epoch itself, from (seed, epoch); Keras would
    # shuffle the batches again with Python's global random state, which a resumed process does not share.
    model.fit(train, epochs=spec.epochs, initial_epoch=initial_epoch, validation_data=dataset.val,
              validation_batch_size=spec.batch_size, callbacks=callbacks, shuffle=False, verbose=0)  # fmt: skip
    fit_s = time.perf_counter() - t_fit

    logs = {instrument.key: instrument.log() for instrument in instruments}
    grads = logs.get(GRADIENT_NORMS)
    diverged_step = convergence.diverged_step
    if grads is not None and grads.nonfinite_step is not None:
        diverged_step = grads.nonfinite_step if diverged_step is None else min(diverged_step, grads.nonfinite_step)
    diverged = diverged_step is not None

    test = {}
    if not diverged:
        tx, ty = dataset.test if isinstance(dataset.test, tuple) else (dataset.test, None)
        kwargs = {"batch_size": spec.batch_size} if ty is not None else {}
        test = {k: as_float(v) for k, v in model.evaluate(tx, ty, verbose=0, return_dict=True, **kwargs).items()}
    if save_model_to is not None and not diverged:
        model.save(save_model_to)

    h = convergence.history
    epochs_run = len(h["epoch"])
    train_s = convergence.train_s
    summary = Summary(
        epochs_run=epochs_run,
        steps_run=convergence.step,
        final_train_loss=h["loss"][-1] if h["loss"] else None,
        final_val_loss=h["val_loss"][-1] if h["val_loss"] else None,
        final_train_metric=h["metric"][-1] if h["metric"] else None,
        final_val_metric=h["val_metric"][-1] if h["val_metric"] else None,
        best_val_metric=_best(h["val_metric"], dataset.metric_mode),
        test_loss=test.get("loss"),
        test_metric=test.get(dataset.metric),
        test_metrics=test,
        steps_to_target=convergence.steps_to_target,
        epochs_to_target=convergence.epochs_to_target,
        seconds_to_target=convergence.seconds_to_target,
        train_s=train_s,
        fit_s=fit_s,
        setup_s=setup_s,
        samples_per_s=(dataset.num_examples("train") * epochs_run / train_s) if train_s > 0 else None,
        num_params=int(model.count_params()),
        resumed_at_epoch=resumed_at,
        overflow_steps=grads.overflow_steps if grads is not None else 0,
    )
    from gradzoo.benchmarks.harness.records.migrate import architecture_and_pair

    architecture, pair = architecture_and_pair(spec.model, spec.model_overrides)
    return RunRecord(
        run_id=spec.run_id,
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        config=spec.config(),
        optimizer={k: v for k, v in settings.items() if v is not None},
        model=ModelInfo(**zoo.get_spec(spec.model).to_dict(), architecture=architecture, pair=pair),
        dataset=build(DatasetSummary, dataset.to_dict(), "dataset"),
        env=environment(executor),
        status="diverged" if diverged else "completed",
        diverged_step=diverged_step,
        history=History(**h),
        summary=summary,
        instruments=logs,
        tuning=spec.tuning,
    )
