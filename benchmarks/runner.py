"""One run -> one record; a suite -> records, resumable.

`run_one(spec)` builds the zoo model, loads the dataset, trains with
`model.fit` and the `GradientRecorder`, and returns the record (a plain dict
that `benchmarks.records` writes as JSON). `run_suite(specs, out_dir)` skips
every run that already has a record, so a suite killed at any moment resumes
losing at most the run in flight.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import math
import os
import platform
import subprocess
import threading
import time
from pathlib import Path

from benchmarks import records as records_mod

# Gradient log defaults: every step for the first 100 (where vanishing and
# explosion show first), then every 10th.
GRAD_FIRST_STEPS = 100
GRAD_STRIDE = 10
PROBE_EXAMPLES = 256
# Optimizer settings a suite may sweep; 0 means "off" for the clipping knobs
# (TOML has no null).
CLIP_KEYS = ("clipnorm", "global_clipnorm", "clipvalue")


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """Everything that defines one training run.

    Attributes:
        model: a zoo model name.
        dataset: a dataset name (`benchmarks.data.list_datasets()`).
        seed: seeds weight init, shuffling and dropout. Defaults to `0`.
        epochs: Defaults to `10`.
        batch_size: Defaults to `128`.
        model_overrides: hyperparameters passed to `zoo.build`.
        dataset_params: parameters passed to `load_dataset` (its own `seed`
            fixes the data; the run seed does not change the data).
        optimizer: settings laid over the model's recommended optimizer.
        suite: the suite this run belongs to (part of the run id).
        group: the comparison group inside the suite (runs compared side by side).
        sweep: the swept values of this run, e.g. `{"depth": 56}`.
        record_gradients: attach the `GradientRecorder`. Defaults to `True`.
        grad_first_steps, grad_stride: the recorder's retention.
        data_dir: where prepared tensorflow-datasets data lives (not part of
            the run id: it changes where data is read, not what is trained).
    """

    model: str
    dataset: str
    seed: int = 0
    epochs: int = 10
    batch_size: int = 128
    model_overrides: dict = dataclasses.field(default_factory=dict)
    dataset_params: dict = dataclasses.field(default_factory=dict)
    optimizer: dict = dataclasses.field(default_factory=dict)
    suite: str = ""
    group: str = ""
    sweep: dict = dataclasses.field(default_factory=dict)
    record_gradients: bool = True
    grad_first_steps: int = GRAD_FIRST_STEPS
    grad_stride: int = GRAD_STRIDE
    data_dir: str | None = None

    def config(self) -> dict:
        """The JSON config that identifies the run (everything but `data_dir`)."""
        config = dataclasses.asdict(self)
        config.pop("data_dir")
        return config

    @property
    def run_id(self) -> str:
        """A stable hash of the config: the same config always gets the same id."""
        blob = json.dumps(self.config(), sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def optimizer_settings(spec: RunSpec) -> dict:
    """The model's recommended optimizer with the run's overrides on top."""
    import zoo

    settings = {**zoo.get_spec(spec.model).optimizer, **spec.optimizer}
    for key in CLIP_KEYS:
        if settings.get(key) == 0:
            settings[key] = None
    return settings


def build_for_dataset(model_name: str, dataset, overrides: dict):
    """Builds a zoo model for a dataset, or explains why the two do not fit.

    Raises:
        ValueError: naming the model, the dataset and the shapes involved.
    """
    import zoo

    spec = zoo.get_spec(model_name)
    overrides = dict(overrides)
    if dataset.sequence_output:
        if spec.family != "rnn":
            raise ValueError(
                f"Model {model_name!r} gives one output per example, but dataset {dataset.name!r} "
                f"needs one per time step; use an rnn model."
            )
        overrides.setdefault("sequence_output", True)
    if dataset.input_dtype == "int32":
        if spec.family != "rnn":
            raise ValueError(
                f"Dataset {dataset.name!r} gives token ids; only rnn models embed tokens. Received: model={model_name!r}"
            )
        overrides.setdefault("vocab_size", int(dataset.params.get("vocab_size", 0)) or None)
    try:
        return zoo.build(model_name, dataset.input_shape, dataset.num_outputs, **overrides)
    except TypeError as e:
        raise ValueError(f"Invalid override for model {model_name!r}: {e}. Received: {overrides}") from None
    except ValueError as e:
        raise ValueError(
            f"Model {model_name!r} cannot take dataset {dataset.name!r} "
            f"(input_shape={tuple(dataset.input_shape)}): {e}"
        ) from None


def environment() -> dict:
    """Versions, hardware and git commit, for the record's provenance."""
    import keras

    import benchmarks

    backend = keras.backend.backend()
    try:
        backend_version = __import__({"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}[backend]).__version__
    except (ImportError, KeyError):
        backend_version = None
    devices = []
    try:
        from keras.src.distribution import list_devices

        devices = list_devices()
    except (ImportError, RuntimeError, ValueError):
        pass
    return {
        "gradzoo": _package_version(),
        "keras": keras.__version__,
        "backend": backend,
        "backend_version": backend_version,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "hardware": {
            "machine": platform.machine(),
            "processor": platform.processor() or None,
            "cpu_count": os.cpu_count(),
            "devices": [str(d) for d in devices],
        },
        "git_commit": _git_commit(Path(benchmarks.__file__).resolve().parent.parent),
    }


def _package_version() -> str | None:
    from importlib import metadata

    try:
        return metadata.version("gradzoo")
    except metadata.PackageNotFoundError:
        return None


def _git_commit(root: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _convergence_callback(dataset, progress_batch):
    """A callback that keeps the per-epoch curves and watches for divergence."""
    import keras

    class Convergence(keras.callbacks.Callback):
        # Lets Keras run `on_train_batch_end` in a worker thread (JAX, torch):
        # a callback that is not async-safe makes a JAX fit wait for every
        # step, which cost a small MLP about a quarter of its throughput. The
        # method takes a lock and places each step by its `batch` index, as
        # steps may be read out of order.
        async_safe = True

        def __init__(self):
            super().__init__()
            self.history = {"epoch": [], "loss": [], "metric": [], "val_loss": [], "val_metric": [], "epoch_train_s": []}
            self.step = 0
            self.diverged_step = None
            self.train_s = 0.0
            self.steps_to_target = self.seconds_to_target = self.epochs_to_target = None
            self._lock = threading.Lock()
            self._epoch_base = 0
            self._fit_model = None

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
            progress_batch(batch)

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            # Training time ends at the last batch: validation is not training.
            seconds = self._last_batch - self._t0
            self.train_s += seconds
            h = self.history
            h["epoch"].append(epoch + 1)
            h["epoch_train_s"].append(seconds)
            h["loss"].append(_float(logs.get("loss")))
            h["metric"].append(_float(logs.get(dataset.metric)))
            h["val_loss"].append(_float(logs.get("val_loss")))
            h["val_metric"].append(_float(logs.get(f"val_{dataset.metric}")))
            score = h["val_metric"][-1]
            if self.steps_to_target is None and score is not None and dataset.reached_target(score):
                self.steps_to_target = self.step
                self.seconds_to_target = self.train_s
                self.epochs_to_target = epoch + 1

    return Convergence()


def _float(value):
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value  # NaN is "no value"; +-inf stays, it says how a run diverged


def _best(values, mode):
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return None
    return max(finite) if mode == "max" else min(finite)


def _fit_inputs(split):
    return (split[0], split[1]) if isinstance(split, tuple) else (split, None)


def run_one(spec: RunSpec, progress=None, save_model_to=None) -> dict:
    """Trains one run and returns its record (not yet written).

    Args:
        spec: the run.
        progress: optional `progress(kind, value)` callable, called with
            `("batches", n)` (steps per epoch) once, then `("batch", i)` after
            each train step and `("epoch", e)` after each epoch; the CLI draws
            its bars with it. On JAX and torch the `"batch"` calls come from a
            worker thread and may arrive out of order.
        save_model_to: if given, the trained model is saved there (`.keras`),
            compiled, unless the run diverged.

    Returns:
        The record dict: see `benchmarks/records.py` and the README.
    """
    import keras

    import zoo
    from benchmarks.data import load_dataset
    from benchmarks.recorder import GradientRecorder
    from benchmarks.temporal import TemporalProbe

    progress = progress or (lambda kind, value: None)
    t_setup = time.perf_counter()
    keras.utils.set_random_seed(spec.seed)
    dataset_params = dict(spec.dataset_params)
    # Batch sources (augmented or streamed data) come batched by the dataset.
    dataset_params.setdefault("batch_size", spec.batch_size)
    dataset = load_dataset(spec.dataset, data_dir=spec.data_dir, **dataset_params)
    model = build_for_dataset(spec.model, dataset, spec.model_overrides)
    settings = optimizer_settings(spec)
    model.compile(optimizer=zoo.make_optimizer(settings), loss=dataset.make_loss(), metrics=[dataset.make_metric()])

    x, y = _fit_inputs(dataset.train)
    steps_per_epoch = math.ceil(dataset.num_examples("train") / spec.batch_size) if y is not None else len(x)
    progress("batches", steps_per_epoch)
    convergence = _convergence_callback(dataset, lambda i: progress("batch", i))
    callbacks = [convergence, keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: progress("epoch", e))]
    recorder = temporal = None
    if spec.record_gradients:
        probe = dataset.train[0][:PROBE_EXAMPLES] if isinstance(dataset.train, tuple) else None
        recorder = GradientRecorder(first_steps=spec.grad_first_steps, stride=spec.grad_stride, probe_x=probe)
        callbacks.insert(0, recorder)
        # For recurrent nets the gradient vanishes through time, not through layers.
        if probe is not None and zoo.get_spec(spec.model).family == "rnn" and dataset.input_dtype == "float32":
            temporal = TemporalProbe(probe, dataset.train[1][:PROBE_EXAMPLES], dataset.make_loss())
            callbacks.append(temporal)
    setup_s = time.perf_counter() - t_setup

    t_fit = time.perf_counter()
    fit_kwargs = dict(epochs=spec.epochs, validation_data=dataset.val, callbacks=callbacks, verbose=0)
    if y is not None:
        fit_kwargs.update(batch_size=spec.batch_size, shuffle=True)
    model.fit(x, y, **fit_kwargs)
    fit_s = time.perf_counter() - t_fit

    grads = recorder.summary() if recorder is not None else None
    diverged_step = convergence.diverged_step
    if grads is not None and grads["nonfinite_step"] is not None:
        diverged_step = grads["nonfinite_step"] if diverged_step is None else min(diverged_step, grads["nonfinite_step"])
    diverged = diverged_step is not None

    test = {}
    if not diverged:
        tx, ty = _fit_inputs(dataset.test)
        kwargs = {"batch_size": spec.batch_size} if ty is not None else {}
        test = {k: _float(v) for k, v in model.evaluate(tx, ty, verbose=0, return_dict=True, **kwargs).items()}

    if save_model_to is not None and not diverged:
        model.save(save_model_to)

    h = convergence.history
    epochs_run = len(h["epoch"])
    train_s = convergence.train_s
    n_train = dataset.num_examples("train")
    summary = {
        "epochs_run": epochs_run,
        "steps_run": convergence.step,
        "final_train_loss": h["loss"][-1] if h["loss"] else None,
        "final_val_loss": h["val_loss"][-1] if h["val_loss"] else None,
        "final_train_metric": h["metric"][-1] if h["metric"] else None,
        "final_val_metric": h["val_metric"][-1] if h["val_metric"] else None,
        "best_val_metric": _best(h["val_metric"], dataset.metric_mode),
        "test_loss": test.get("loss"),
        "test_metric": test.get(dataset.metric),
        "test_metrics": test,
        "steps_to_target": convergence.steps_to_target,
        "epochs_to_target": convergence.epochs_to_target,
        "seconds_to_target": convergence.seconds_to_target,
        "train_s": train_s,
        "fit_s": fit_s,
        "setup_s": setup_s,
        "samples_per_s": (n_train * epochs_run / train_s) if train_s > 0 else None,
        "num_params": int(model.count_params()),
    }
    spec_info = zoo.get_spec(spec.model)
    return {
        "schema": records_mod.SCHEMA_VERSION,
        "run_id": spec.run_id,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "config": spec.config(),
        "optimizer": {k: v for k, v in settings.items() if v is not None},
        "model": spec_info.to_dict(),
        "dataset": dataset.to_dict(),
        "env": environment(),
        "status": "diverged" if diverged else "completed",
        "diverged": diverged,
        "diverged_step": diverged_step,
        "history": h,
        "summary": summary,
        "gradients": grads,
        "temporal": temporal.summary() if temporal is not None else None,
    }


def run_suite(specs, out_dir, progress_factory=None, on_record=None) -> dict:
    """Runs every spec that has no record yet in `out_dir`.

    Args:
        specs: `RunSpec`s (duplicates by run id are run once).
        out_dir: the output directory; records go to `out_dir/records/`.
        progress_factory: optional `progress_factory(spec) -> progress`
            giving each run's progress callable (see `run_one`).
        on_record: optional callable called with each new record.

    Returns:
        `{"ran": [...ids], "skipped": [...ids]}`.
    """
    done = records_mod.recorded_ids(out_dir)
    ran, skipped, seen = [], [], set()
    for spec in specs:
        run_id = spec.run_id
        if run_id in seen:
            continue
        seen.add(run_id)
        if run_id in done:
            skipped.append(run_id)
            continue
        record = run_one(spec, progress_factory(spec) if progress_factory else None)
        records_mod.write_record(out_dir, record)
        ran.append(run_id)
        if on_record:
            on_record(record)
    return {"ran": ran, "skipped": skipped}
