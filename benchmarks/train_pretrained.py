"""Trains the pretrained zoo models and writes them, with their manifest, to `zoo/weights/`.

Each entry is the seed-0 evaluation run of a model of the `quick` suite, at the
setting the suite's tuning chose (`benchmarks/suites/quick.toml`), trained by
`gradzoo.benchmarks.harness.run.run_one.run_one`, the code path of `gradzoo run`. So a
shipped model was trained exactly as the benchmark trains it, and its manifest
entry says what it was tuned over and what was chosen. The record is condensed
into the entry: config, dataset and parameters, test scores, per-epoch
history and a compact gradient-log summary. Mitigated models ship next to
their baselines, so the two can be compared on the same data and budget.

The files hold the weights and the compile configuration (loss, metric,
optimizer settings) but not the optimizer's moment estimates, which would
triple their size and matter only to resume that exact training.

Usage:

```bash
python -m gradzoo.benchmarks.train_pretrained                 # train what is missing or stale
python -m gradzoo.benchmarks.train_pretrained --only rnn_gru.adding --force
python -m gradzoo.benchmarks.train_pretrained --list
```

Idempotent: an entry whose config is unchanged and whose file still matches
its sha256 is kept as is. Files are written atomically, the manifest last.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path

SOURCE_SUITE = "quick"
SIGNIFICANT_DIGITS = 5  # of the per-layer gradient norms kept in the manifest


def pretrained_specs() -> dict:
    """`{"model.dataset": RunSpec}`: the seed-0 evaluation run of every model of the source suite."""
    from gradzoo.benchmarks.harness.plan.run_plan import Plan
    from gradzoo.benchmarks.harness.plan.suites import load_suite

    plan = Plan(load_suite(SOURCE_SUITE), seeds=1)
    specs = {}
    for spec in plan.specs({})[0]:
        if spec.phase == "eval":
            specs.setdefault(f"{spec.model}.{spec.dataset}", spec)
    return specs


def run_spec(name: str):
    """The `RunSpec` of one pretrained entry."""
    specs = pretrained_specs()
    if name not in specs:
        raise ValueError(f"Unknown pretrained entry {name!r}. Entries: {', '.join(specs)}.")
    return specs[name]


def _sig(value, digits: int = SIGNIFICANT_DIGITS):
    if value is None or not isinstance(value, float) or not math.isfinite(value) or value == 0:
        return value
    return float(f"{value:.{digits}g}")


def gradient_summary(record) -> dict | None:
    """The compact gradient-log summary of a run record (per epoch, not per step)."""
    from gradzoo.benchmarks.analysis import verdicts

    g = record.gradients
    if g is None:
        return None
    epochs = len(g.epoch.mean)
    t, a = record.temporal, record.activations
    return {
        "layers": [{"name": layer.name, "kind": layer.kind, "num_params": layer.num_params} for layer in g.layers],
        "verdict": verdicts.verdict(record),
        "first_last_ratio": [_sig(record.first_last_ratio(epoch=e)) for e in range(epochs)],
        "global_norm_mean": [_sig(v) for v in g.epoch.global_pre_mean],
        "global_norm_max": [_sig(v) for v in g.epoch.global_pre_max],
        "clip_rate": [_sig(v) for v in g.epoch.clip_rate],
        "layer_norm_mean": [[_sig(v) for v in row] for row in g.epoch.mean],
        "activations": None if a is None else {
            "layers": [{"name": layer.name, "activation": layer.activation} for layer in a.layers],
            "saturation_level": a.saturation_level,
            "per_epoch": [[_sig(v) for v in row] for row in a.per_epoch],
        },
        "temporal": None if t is None or not t.profiles else {
            "epochs": t.epochs,
            "early_late_ratio": [_sig(v) for v in t.early_late_ratio],
            "edge_fraction": t.edge_fraction,
            "profile_first": [_sig(v) for v in t.profiles[0]],
            "profile_last": [_sig(v) for v in t.profiles[-1]],
        },
        "steps_seen": g.steps_seen,
        "nonfinite_step": g.nonfinite_step,
    }  # fmt: skip


def manifest_entry(name: str, record, path: Path, sha256: str, names):
    """One manifest entry (`gradzoo.zoo.manifest.ManifestEntry`) from a run record and the file it saved."""
    from gradzoo.benchmarks.harness.records.codec import to_plain
    from gradzoo.zoo.manifest import ManifestEntry

    d, s = record.dataset, record.summary
    keep = ("epochs_run", "steps_run", "best_val_metric", "final_val_metric", "final_train_metric",
            "steps_to_target", "epochs_to_target", "train_s", "num_params")  # fmt: skip
    tuning = record.tuning
    return ManifestEntry.model_validate({
        "name": name,
        "file": path.name,
        "sha256": sha256,
        "size_bytes": path.stat().st_size,
        "model": record.config.model,
        "role": record.model.role,
        "compare_with": [f"{p}.{d.name}" for p in record.model.partners if f"{p}.{d.name}" in names],
        "description": record.model.description,
        "dataset": d.name,
        "dataset_params": d.params,
        "loss": d.loss,
        "metric": d.metric,
        "metric_mode": d.metric_mode,
        "chance": d.chance,
        "target": d.target,
        "input_shape": d.input_shape,
        "num_outputs": d.num_outputs,
        "test_metrics": s.test_metrics,
        "reached_target_on_test": s.test_metric is not None and (d.is_better(s.test_metric, d.target) or s.test_metric == d.target),
        "summary": {k: getattr(s, k) for k in keep},
        "tuned_over": record.config.tuned_over,
        "tuning_chosen": tuning.chosen if tuning else None,
        "tuning_source": tuning.source if tuning else None,
        "config": record.config.to_dict(),
        "optimizer": record.optimizer,
        "model_spec": to_plain(record.model),
        "dataset_info": to_plain(record.dataset),
        "history": to_plain(record.history),
        "gradients": gradient_summary(record),
        "run_id": record.run_id,
        "created": record.created,
        "env": to_plain(record.env),
    })


def _is_current(entry, spec, directory: Path) -> bool:
    from gradzoo.zoo.pretrained import file_sha256

    if entry is None or entry.config != spec.config().to_dict():
        return False
    path = directory / entry.file
    return path.is_file() and file_sha256(path) == entry.sha256


def train_one(name: str, spec, directory: Path, names):
    """Trains one entry, saves its `.keras` file atomically and returns its manifest entry."""
    import keras

    from gradzoo import zoo
    from gradzoo.benchmarks.harness.run.run_one import run_one
    from gradzoo.zoo.pretrained import file_sha256

    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"{name}.keras"
    # Keras saves only to a `.keras` name: save into a hidden scratch directory
    # beside the target (never matched by the package-data glob), then rename.
    scratch = Path(tempfile.mkdtemp(prefix=".train-", dir=directory))
    try:
        trained = scratch / "trained.keras"
        record = run_one(spec, save_model_to=str(trained))
        if record.diverged:
            raise RuntimeError(f"{name} diverged at step {record.diverged_step}; nothing saved.")
        # Ship weights and compile settings, not Adam's moments: a fresh optimizer is never built, so not saved.
        model = keras.saving.load_model(trained, safe_mode=True)
        lean = keras.models.clone_model(model)
        lean.set_weights(model.get_weights())
        lean.compile(optimizer=zoo.make_optimizer(record.optimizer), loss=model.loss, metrics=[_metric(record)])
        tmp = scratch / final.name
        lean.save(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # package data: readable by everyone
        os.replace(tmp, final)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return manifest_entry(name, record, final, file_sha256(final), names)


def _metric(record):
    from gradzoo.benchmarks.datasets.base import make_metric

    return make_metric(record.dataset.metric)


def write_manifest(directory: Path, entries: dict, order) -> Path:
    """Writes `manifest.json` (a `gradzoo.zoo.manifest.Manifest`) with the entries in `order`."""
    from gradzoo.benchmarks.storage import write_atomic
    from gradzoo.zoo.manifest import Manifest, manifest_text

    path = directory / "manifest.json"
    manifest = Manifest(generated_by="python -m gradzoo.benchmarks.train_pretrained",
                        updated=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                        models={n: entries[n] for n in order if n in entries})  # fmt: skip
    write_atomic(path, manifest_text(manifest))
    os.chmod(path, 0o644)
    return path


def _read_manifest(directory: Path) -> dict:
    """The entries of the manifest in `directory`, checked against their type; `{}` if there is none."""
    from gradzoo.zoo.manifest import read_manifest

    path = directory / "manifest.json"
    return dict(read_manifest(path).models) if path.is_file() else {}


def main(argv=None) -> int:
    specs = pretrained_specs()
    parser = argparse.ArgumentParser(prog="python -m gradzoo.benchmarks.train_pretrained", description=__doc__.split("\n")[0])
    parser.add_argument("--only", action="append", metavar="NAME", choices=list(specs),
                        help="train only this entry (repeatable); the others' entries are kept")  # fmt: skip
    parser.add_argument("--force", action="store_true", help="retrain even if the shipped file is current")
    parser.add_argument("--out", metavar="DIR", help="write here instead of zoo/weights/")
    parser.add_argument("--list", action="store_true", help="print the entries and their run settings, then exit")
    args = parser.parse_args(argv)
    if args.list:
        for name, spec in specs.items():
            print(f"{name:<28} epochs={spec.epochs} batch_size={spec.batch_size} dataset_params={spec.dataset_params} "
                  f"optimizer={spec.optimizer}")  # fmt: skip
        return 0

    import gradzoo.zoo.pretrained

    directory = Path(args.out) if args.out else zoo.pretrained.WEIGHTS_DIR
    entries = {n: e for n, e in _read_manifest(directory).items() if n in specs}
    changed = not (directory / "manifest.json").is_file()
    for name in args.only or list(specs):
        if not args.force and _is_current(entries.get(name), specs[name], directory):
            print(f"{name}: current, kept")
            continue
        changed = True
        print(f"{name}: training ...", flush=True)
        entries[name] = train_one(name, specs[name], directory, specs)
        write_manifest(directory, entries, specs)  # after each model, so an interrupted run keeps what it finished
        entry = entries[name]
        scores = ", ".join(f"{k}={v:.4f}" for k, v in entry.test_metrics.items())
        print(f"{name}: test {scores}; {entry.summary.train_s:.0f} s; {entry.size_bytes / 1e6:.2f} MB", flush=True)
    for stale in set(p.name for p in directory.glob("*.keras")) - {f"{n}.keras" for n in entries}:
        (directory / stale).unlink()  # an entry the source suite no longer has
        changed = True
    if changed:
        print(f"Manifest: {write_manifest(directory, entries, specs)}")
    else:
        print("Nothing to do: every entry is current.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
