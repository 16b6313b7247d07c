"""The doctor's measurements: the same numbers the harness records, on a user's model.

At the given weights (initialization, or whatever was loaded), per-layer
gradient norms from plain forward/backward passes that update nothing
(`gradzoo.benchmarks.harness.instruments.autodiff.loss_and_gradients`). Then a probe training of
`steps` steps with a real `model.fit` on a copy of the model, with the model's
own loss and optimizer, running the harness's registered instruments: every
step's per-layer norms and global norm before and after clipping, the
saturated and dead unit fractions before and after the probe and, for
recurrent layers fed float sequences, the gradient through time.
"""

from __future__ import annotations

import dataclasses
import math

import keras
import numpy as np

from gradzoo.benchmarks.doctor.anatomy import model_type
from gradzoo.benchmarks.harness.instruments import Context, registered
from gradzoo.benchmarks.harness.instruments.autodiff import loss_and_gradients
from gradzoo.benchmarks.harness.instruments.gradnorms import gradient_stats, layer_groups
from gradzoo.benchmarks.harness.instruments.temporal import early_late_ratio
from gradzoo.benchmarks.harness.records import ACTIVATIONS, GRADIENT_NORMS, TEMPORAL
from gradzoo.benchmarks.harness.run.run_one import PROBE_EXAMPLES  # the harness's activation and temporal probe size

INIT_BATCHES = 2  # batches averaged for the norms at the given weights


@dataclasses.dataclass
class Measurements:
    """What the doctor measured, as JSON-ready data.

    Attributes:
        layers: per layer with trainable weights (`layer_groups` order, input
            side first): `name`, `depth_index`, `kind` (`"weight"` or
            `"norm"`), `num_params`.
        init: at the given weights: `norms` (one per layer, mean over
            `INIT_BATCHES` batches), `global_norm`, `global_norm_clipped`.
        probe: the probe training, or `None` if it could not run: `steps`,
            `norms` (per step, per layer), `mean` (per layer, over finite
            steps), `global_pre` and `global_post` (per step), `clip_rate`,
            `nonfinite_step`, `loss` (the fit's mean loss).
        activations: `layers` (`name`, `activation`), `init` and `after` (the
            fraction per layer before and after the probe), or `None`.
        temporal: for recurrent nets on float sequences: `init` and `after`
            (|dL/dx_t| per step), `init_ratio`, `after_ratio` (early/late), or `None`.
        notes: sentences about what could not be measured and why.
        instruments: the logs (plain JSON) of every other registered
            instrument that applied, by key.
    """

    layers: list
    init: dict
    probe: dict | None
    activations: dict | None
    temporal: dict | None
    notes: list
    instruments: dict = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _numpy(tensor) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(tensor), dtype=np.float64)


def probe_order(n: int, steps: int, batch_size: int, seed: int) -> np.ndarray:
    """Example indices for `steps` batches: seeded shuffles of the data, one after another."""
    rng = np.random.default_rng(seed)
    needed = steps * batch_size
    rounds = -(-needed // n)
    return np.concatenate([rng.permutation(n) for _ in range(rounds)])[:needed]


def at_weights(model, loss_fn, x, y, order, batch_size, optimizer=None) -> dict:
    """Per-layer gradient norms at the model's current weights, nothing updated."""
    groups = layer_groups(model.trainable_variables, model)
    rows = []
    for b in range(INIT_BATCHES):
        index = order[b * batch_size:(b + 1) * batch_size]
        if len(index) == 0:
            break
        _, grads = loss_and_gradients(model, loss_fn, x[index], y[index])
        rows.append(_numpy(gradient_stats(grads, groups, optimizer)))
    stats = np.mean(rows, axis=0)
    return {"norms": stats[:-2].tolist(), "global_norm": float(stats[-2]), "global_norm_clipped": float(stats[-1])}


def _profile_ratio(profile):
    return early_late_ratio(profile) if profile else None


def measure(model, copy, setup: dict, x, y, steps: int, batch_size: int, seed: int, recurrent: bool,
            run_eagerly: bool = False) -> Measurements:  # fmt: skip
    """Measures `model` at its weights and trains `copy` (if any) for `steps` steps.

    The probe training runs every registered instrument that applies
    (`gradzoo.benchmarks.harness.instruments`), as a harness run does; without
    a copy, the instruments that measure when training begins (`at_start`)
    measure the model as it is.

    Args:
        model: the user's model; only read.
        copy: its copy, compiled here with `setup`'s loss and optimizer, or
            `None` (then only the measurements at the given weights are made).
        setup: `gradzoo.benchmarks.doctor.prepare.probe_setup(...)`.
        x, y: the data (NumPy).
        steps: probe training steps.
        batch_size: examples per step.
        seed: seeds the data order and Keras's random state.
        recurrent: the model has recurrent layers (the gradient through time is measured).
        run_eagerly: train the probe without compiling its train step.
    """
    from gradzoo.benchmarks.doctor.prepare import loss_callable
    from gradzoo.benchmarks.harness.records.codec import to_plain

    keras.utils.set_random_seed(seed)
    batch_size = min(batch_size, len(x))
    order = probe_order(len(x), max(steps, INIT_BATCHES), batch_size, seed)
    probe_index = order[:PROBE_EXAMPLES]
    loss_fn = loss_callable(setup["loss"])
    subject = copy if copy is not None else model  # the stateless passes read weights only; the copy is as good
    notes = []
    layers = [{k: g[k] for k in ("name", "depth_index", "kind", "num_params")}
              for g in layer_groups(subject.trainable_variables, subject)]  # fmt: skip
    init = at_weights(subject, loss_fn, x, y, order, batch_size, setup["optimizer"])

    context = Context(through=frozenset({"layers", "time"} if recurrent else {"layers"}), probe_x=x[probe_index],
                      probe_y=y[probe_index], loss_fn=loss_fn, first_steps=steps, stride=1)  # fmt: skip
    instruments = [cls(context) for cls in registered() if cls.applies(context)]
    if recurrent and not any(i.key == TEMPORAL for i in instruments):
        notes.append("The gradient through time was not measured: it needs float sequences (batch, steps, features) "
                     "as the model's input, not token ids.")  # fmt: skip
    probe_loss = None
    if copy is None:
        instruments = [i for i in instruments if i.at_start]
        for instrument in instruments:
            instrument.callback.set_model(model)
            instrument.callback.on_train_begin()
    else:
        copy.compile(optimizer=setup["optimizer"], loss=setup["loss"], run_eagerly=run_eagerly)
        index = order[: steps * batch_size]
        history = copy.fit(x[index], y[index], batch_size=batch_size, epochs=1, shuffle=False, verbose=0,
                           callbacks=[i.callback for i in instruments])  # fmt: skip
        probe_loss = (history.history.get("loss") or [None])[-1]
    logs = {i.key: i.log() for i in instruments}

    probe = _probe(logs.get(GRADIENT_NORMS), probe_loss)
    activations = None
    a = logs.get(ACTIVATIONS)
    if a is not None and a.layers:
        activations = {"layers": [{"name": layer.name, "activation": layer.activation} for layer in a.layers],
                       "init": a.initial, "after": a.per_epoch[-1] if a.per_epoch else None}  # fmt: skip
    elif model_type(subject) == "subclassed":
        notes.append("Saturated and dead units were not measured: a subclassed model has no symbolic layer outputs to read.")
    temporal = None
    t = logs.get(TEMPORAL)
    if t is not None and t.profiles:
        after = t.profiles[-1] if len(t.profiles) > 1 else None
        temporal = {"init": t.profiles[0], "after": after, "init_ratio": _profile_ratio(t.profiles[0]),
                    "after_ratio": _profile_ratio(after), "edge_fraction": t.edge_fraction}  # fmt: skip
    if probe is not None and probe["mean"] is not None and not all(math.isfinite(v) for v in probe["mean"]):
        notes.append("Some layers' gradient norms were not finite during the probe.")
    others = {key: to_plain(log) for key, log in logs.items() if key not in (GRADIENT_NORMS, ACTIVATIONS, TEMPORAL)}
    return Measurements(layers=layers, init=init, probe=probe, activations=activations, temporal=temporal, notes=notes,
                        instruments=others)  # fmt: skip


def _probe(log, loss) -> dict | None:
    """The probe training's gradient norms, as `Measurements.probe` gives them."""
    if log is None:
        return None
    return {
        "steps": log.steps, "norms": log.norms, "mean": log.epoch.mean[-1] if log.epoch.mean else None,
        "global_pre": log.global_norm_pre, "global_post": log.global_norm_post,
        "clip_rate": log.epoch.clip_rate[-1] if log.epoch.clip_rate else None,
        "nonfinite_step": log.nonfinite_step, "loss": None if loss is None else float(loss),
    }  # fmt: skip
