"""From measurements to a diagnosis: a verdict per region of the network, the layers where the
gradient collapses or blows up, and ranked suggestions; `diagnose()` runs the whole doctor.

The verdicts are the harness's (`gradzoo.benchmarks.analysis.verdicts.judge`, with
`VANISHING_RATIO` and `EXPLODING_NORM`), on the doctor's numbers:

- each weight layer is judged by its mean gradient norm over the probe training
  against the last weight layer's (normalization layers left out), and
  neighbouring layers with the same verdict form a region;
- for recurrent nets fed float sequences, the input steps are judged the same
  way by the gradient reaching each step against the last 10% of steps, after
  the probe;
- the whole model gets `judge(ratio, peak, diverged)`: the early/late-step ratio
  after the probe where the gradient through time was measured, else the
  first/last weight-layer ratio over the probe; the peak raw global norm of
  any probe step; and whether a probe step was non-finite. Without a probe
  (a model that cannot be copied) the norms at the given weights stand in.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from gradzoo.benchmarks.analysis.verdicts import EXPLODING_NORM, VANISHING_RATIO, judge
from gradzoo.benchmarks.doctor.defaults import DEFAULT_BATCH, DEFAULT_STEPS  # noqa: F401  (re-exported)

# Consecutive weight layers whose norms differ by more than this factor are a steep step.
STEEP_FACTOR = 2.0


def _finite(v) -> bool:
    return v is not None and isinstance(v, (int, float)) and math.isfinite(v)


def layer_norms(measurements) -> tuple[list[str], list[float], str]:
    """Weight layers' names and norms (the probe's mean where it ran, else at the given weights), and which."""
    weight = [i for i, layer in enumerate(measurements.layers) if layer["kind"] == "weight"]
    probe = measurements.probe
    if probe is not None and probe["mean"] is not None and all(_finite(probe["mean"][i]) for i in weight):
        source, norms = "probe", probe["mean"]
    else:
        source, norms = "init", measurements.init["norms"]
    return [measurements.layers[i]["name"] for i in weight], [norms[i] for i in weight], source


def _group(labels, verdicts, ratios, kind) -> list[dict]:
    regions = []
    for label, word, ratio in zip(labels, verdicts, ratios):
        if regions and regions[-1]["verdict"] == word:
            region = regions[-1]
            region.update(last=label, count=region["count"] + 1)
            region["ratios"].append(ratio)
        else:
            regions.append({"kind": kind, "first": label, "last": label, "count": 1, "verdict": word, "ratios": [ratio]})
    for region in regions:
        values = [r for r in region.pop("ratios") if _finite(r)]
        region["ratio_min"] = min(values) if values else None
        region["ratio_max"] = max(values) if values else None
    return regions


def layer_regions(names, norms) -> tuple[list[float | None], list[dict]]:
    """Each weight layer's ratio to the last weight layer, and the runs of layers that share a verdict."""
    last = norms[-1] if norms else None
    ratios = [n / last if _finite(n) and _finite(last) and last > 0 else None for n in norms]
    words = ["unknown" if r is None else judge(r, None) for r in ratios]
    return ratios, _group(names, words, ratios, "layers")


def time_regions(profile, edge_fraction) -> list[dict]:
    """Runs of input steps whose gradient, against the last `edge_fraction` of steps', shares a verdict.

    Each step's gradient is the mean over a window of `edge_fraction` of the
    steps around it, as the early/late ratio averages its edges: single steps
    near a threshold would otherwise split a sequence into flickering regions.
    """
    if not profile:
        return []
    a = np.asarray(profile, dtype=np.float64)
    k = max(1, int(round(a.size * edge_fraction)))
    late = a[-k:].mean()
    window = np.ones(k) / k
    smooth = np.convolve(np.pad(a, (k // 2, k - 1 - k // 2), mode="edge"), window, mode="valid")
    ratios = [float(v / late) if late > 0 and np.isfinite(v) else None for v in smooth]
    words = ["unknown" if r is None else judge(r, None) for r in ratios]
    return _group([f"step {t + 1}" for t in range(a.size)], words, ratios, "time")


def where(names, norms) -> dict:
    """Where the gradient collapses or blows up on its way from the last weight layer to the first.

    Returns:
        `per_layer_factor` (the geometric mean change per layer, first/last),
        `crossing` (the layer nearest the output beyond a threshold, with its
        ratio and direction) and `steepest` (up to three layer-to-layer steps
        of more than `STEEP_FACTOR`, largest first: `layer` (the one nearer the
        input), `above`, `factor`).
    """
    out = {"per_layer_factor": None, "crossing": None, "steepest": []}
    if len(norms) < 2 or not all(_finite(n) for n in norms) or norms[-1] <= 0:
        return out
    if norms[0] > 0:
        out["per_layer_factor"] = (norms[0] / norms[-1]) ** (1 / (len(norms) - 1))
    for i in range(len(norms) - 2, -1, -1):
        ratio = norms[i] / norms[-1]
        if ratio < VANISHING_RATIO or ratio > 1 / VANISHING_RATIO:
            out["crossing"] = {"layer": names[i], "ratio": ratio, "direction": "collapse" if ratio < 1 else "blow-up"}
            break
    steps = []
    for i in range(len(norms) - 1):
        if norms[i + 1] > 0 and norms[i] > 0:
            factor = norms[i] / norms[i + 1]
            if factor > STEEP_FACTOR or factor < 1 / STEEP_FACTOR:
                steps.append({"layer": names[i], "above": names[i + 1], "factor": factor})
        elif norms[i] == 0 < norms[i + 1]:
            steps.append({"layer": names[i], "above": names[i + 1], "factor": 0.0})
    steps.sort(key=lambda s: -abs(math.log10(s["factor"])) if s["factor"] > 0 else -math.inf)
    out["steepest"] = steps[:3]
    return out


def overall(measurements, ratios) -> dict:
    """The model's verdict with what it rests on (see the module docstring)."""
    probe, temporal = measurements.probe, measurements.temporal
    ratio, basis = None, "first/last weight layer"
    if temporal is not None and _finite(temporal["after_ratio"] if probe else temporal["init_ratio"]):
        ratio, basis = (temporal["after_ratio"] if probe else temporal["init_ratio"]), "early/late input steps"
    elif len(ratios) >= 2:
        ratio = ratios[0]
    if probe is not None:
        pre = [v for v in probe["global_pre"] if _finite(v)]
        peak = max(pre) if pre else None
        diverged = probe["nonfinite_step"] is not None
    else:
        peak, diverged = measurements.init["global_norm"], not _finite(measurements.init["global_norm"])
    return {"verdict": judge(ratio, peak, diverged), "ratio": ratio, "basis": basis, "peak_global_norm": peak,
            "diverged": diverged, "nonfinite_step": probe["nonfinite_step"] if probe else None}  # fmt: skip


def global_norms(measurements) -> dict:
    """The global gradient norm before and after clipping: at the given weights and over the probe."""
    out = {"init": measurements.init["global_norm"], "init_after_clipping": measurements.init["global_norm_clipped"]}
    probe = measurements.probe
    if probe is not None:
        pre = [v for v in probe["global_pre"] if _finite(v)]
        post = [v for v in probe["global_post"] if _finite(v)]
        out.update(probe_mean=float(np.mean(pre)) if pre else None, probe_max=max(pre) if pre else None,
                   probe_after_clipping_mean=float(np.mean(post)) if post else None, clip_rate=probe["clip_rate"])  # fmt: skip
    return out


@dataclasses.dataclass
class Diagnosis:
    """The doctor's findings about one model; `text()`, `to_json()` and `write_html()` present them.

    Attributes:
        model: `name`, `type` (sequential, functional, subclassed), `params`, `input_shape`.
        data: `source`, `examples`, `x_shape`, `y_dtype`.
        setup: the probe: `loss`, `optimizer`, `assumed` (the model was not
            compiled, so both were chosen by the doctor), `steps`,
            `batch_size`, `seed`, `copy` (how the model was copied, or why not).
        verdict: `"vanishing"`, `"exploding"` or `"healthy"` for the whole model.
        basis: what `verdict` rests on (`ratio`, `basis`, `peak_global_norm`, `diverged`, `nonfinite_step`).
        layers: per weight layer: `name`, `norm_init`, `norm`, `ratio` (to the last weight layer), `verdict`.
        norms_from: `"probe"` or `"init"`: which norms the layer verdicts use.
        regions: runs of weight layers (`kind="layers"`) or input steps (`kind="time"`) sharing a verdict.
        where: see `where()`.
        global_norm: see `global_norms()`.
        activations: the saturated/dead fractions before and after the probe, or `None`.
        temporal: the gradient-through-time profiles and ratios, or `None`.
        anatomy: see `gradzoo.benchmarks.doctor.anatomy.Anatomy`.
        suggestions: ranked, each with `change`, `why`, `evidence`, `fix`, `coverage`, `strength`, `score`.
        notes: what could not be measured, and why.
        measurements: the raw `Measurements`.
    """

    model: dict
    data: dict
    setup: dict
    verdict: str
    basis: dict
    layers: list
    norms_from: str
    regions: list
    where: dict
    global_norm: dict
    activations: dict | None
    temporal: dict | None
    anatomy: dict
    suggestions: list
    notes: list
    measurements: dict
    thresholds: dict = dataclasses.field(default_factory=lambda: {"vanishing_ratio": VANISHING_RATIO,
                                                                  "exploding_norm": EXPLODING_NORM})  # fmt: skip

    def text(self, width: int = 100) -> str:
        """The terminal summary."""
        from gradzoo.benchmarks.doctor.render import diagnosis_text

        return diagnosis_text(self, width)

    def to_json(self) -> dict:
        """Strict-JSON-ready data (non-finite numbers as `null`)."""
        from gradzoo.benchmarks.doctor.render import diagnosis_json

        return diagnosis_json(self)

    def write_html(self, out_dir) -> dict:
        """Writes `out_dir/doctor.html` (one self-contained page), its figure and `diagnosis.json`; returns the paths."""
        from gradzoo.benchmarks.doctor.render import write_outputs

        return write_outputs(self, out_dir)


def _use_the_users_names(model, copy, m, parts) -> None:
    """Names the copy's layers as the user's model names them (a subclassed model loaded back gets fresh names)."""
    from gradzoo.benchmarks.harness.instruments.gradnorms import layer_groups

    if copy is model or not model.built:
        return
    own = [g["name"] for g in layer_groups(model.trainable_variables, model)]
    if len(own) != len(m.layers):
        return
    rename = {layer["name"]: name for layer, name in zip(m.layers, own)}
    for layer in m.layers:
        layer["name"] = rename[layer["name"]]
    for w in parts.weight_layers:
        w.name = rename.get(w.name, w.name)


def diagnose(model, x, y, steps: int = DEFAULT_STEPS, batch_size: int = DEFAULT_BATCH, seed: int = 0, data_label: str | None = None,
             evidence: dict | None = None, run_eagerly: bool = False) -> Diagnosis:  # fmt: skip
    """Diagnoses a Keras model's gradient on data: where it vanishes or explodes, and what to change.

    Args:
        model: a `keras.Model` (Sequential, functional or subclassed), compiled
            or not. It is only read: the probe trains a copy, and its weights
            and optimizer state are left exactly as they were.
        x: inputs, one example per row (NumPy or array-like).
        y: targets.
        steps: probe training steps. Defaults to `50`.
        batch_size: examples per step. Defaults to `128`.
        seed: seeds the probe's data order and Keras's random state (dropout,
            and the global seed: `keras.utils.set_random_seed`). Defaults to `0`.
        data_label: how to name the data in the report. Defaults to the array shapes.
        evidence: the `Evidence` to cite (`gradzoo.benchmarks.doctor.evidence_types`);
            defaults to the shipped one (`gradzoo.benchmarks.doctor.evidence.load_evidence()`).
        run_eagerly: train the probe without compiling its train step. For a
            few steps of a deep model this skips a compilation that takes longer
            than the probe (3 steps of the 56-layer `plain_56_1d` on a 2-core CPU:
            about 3 s eagerly, about 30 s compiled). Defaults to `False`.

    Returns:
        A `Diagnosis`.

    Raises:
        UserError: the model is not built or has no trainable weights, the
            data holds non-finite values or targets the loss cannot take or does
            not fit the model, or `steps`/`batch_size` are not positive integers.
    """
    from gradzoo.zoo import checks
    from gradzoo.benchmarks.doctor.anatomy import anatomy
    from gradzoo.benchmarks.doctor.datachecks import check_trainable
    from gradzoo.benchmarks.doctor.evidence import load_evidence
    from gradzoo.benchmarks.doctor.measure import measure
    from gradzoo.benchmarks.doctor.prepare import check_data, copy_model, probe_setup
    from gradzoo.benchmarks.doctor.suggest import suggestions
    from gradzoo.benchmarks.errors import UserError, as_user_error

    with as_user_error("doctor"):
        steps = checks.integer("steps", steps, 1)
        batch_size = checks.integer("batch_size", batch_size, 1)
        seed = checks.integer("seed", seed, 0)
    if not model.built:
        raise UserError(f"Model {model.name!r} is not built, so it has no weights to diagnose yet; give it a "
                        "`keras.Input` or call it once on a batch (`model(x[:1])`) first.")  # fmt: skip
    x, y = check_data(model, x, y)  # the data first: its faults are named as the data's, not the model's
    check_trainable(model)
    copy, how = copy_model(model)
    subject = copy if copy is not None else model
    setup = probe_setup(model, subject, x, y)
    parts = anatomy(subject, setup["optimizer"])  # the probe's optimizer: the model's own, or the assumed one
    m = measure(model, copy, setup, x, y, steps, batch_size, seed, recurrent=bool(parts.recurrent), run_eagerly=run_eagerly)
    _use_the_users_names(model, subject, m, parts)
    names, norms, norms_from = layer_norms(m)
    ratios, regions = layer_regions(names, norms)
    init_by_name = {layer["name"]: v for layer, v in zip(m.layers, m.init["norms"])}
    layers = [{"name": n, "norm_init": init_by_name[n], "norm": v, "ratio": r, "verdict": "unknown" if r is None else judge(r, None)}
              for n, v, r in zip(names, norms, ratios)]  # fmt: skip
    temporal = m.temporal
    if temporal is not None:
        profile = temporal["after"] if temporal["after"] is not None else temporal["init"]
        regions = regions + time_regions(profile, temporal["edge_fraction"])
    notes = setup["warnings"] + list(m.notes)
    if copy is None:
        notes.insert(0, f"No probe training: {how}. The verdict rests on the gradient at the given weights alone.")
    if setup["assumed"]:
        notes.insert(0, f"The model is not compiled, so the doctor assumed the loss {setup['loss_text']} (from the "
                        f"targets and outputs) and the optimizer {setup['optimizer_text']}.")  # fmt: skip
    diagnosis = Diagnosis(
        model={"name": model.name, "type": parts.model_type, "params": int(subject.count_params()),
               "input_shape": list(x.shape[1:])},
        data={"source": data_label or f"arrays x {tuple(x.shape)}, y {tuple(y.shape)}", "examples": int(len(x)),
              "x_shape": list(x.shape[1:]), "y_dtype": str(y.dtype)},
        setup={"loss": setup["loss_text"], "optimizer": setup["optimizer_text"], "assumed": setup["assumed"],
               "steps": steps, "batch_size": min(batch_size, len(x)), "seed": seed, "copy": how, "probed": copy is not None,
               "eager": bool(run_eagerly)},
        verdict="healthy", basis=overall(m, ratios), layers=layers, norms_from=norms_from, regions=regions,
        where=where(names, norms), global_norm=global_norms(m), activations=m.activations, temporal=temporal,
        anatomy=parts.to_dict(), suggestions=[], notes=notes, measurements=m.to_dict(),
    )  # fmt: skip
    diagnosis.verdict = diagnosis.basis["verdict"]
    diagnosis.suggestions = suggestions(diagnosis, parts, evidence if evidence is not None else load_evidence())
    return diagnosis
