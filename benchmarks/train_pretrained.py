"""Trains the pretrained zoo models and writes them, with their manifest, to `zoo/weights/`.

Each entry is one harness run (`benchmarks.runner.run_one`, the same code path
as `gradzoo run`), so a shipped model was trained exactly as the benchmark
trains it; its record is condensed into a manifest entry: the config, the
dataset and its parameters, the test scores, the per-epoch history and a
compact gradient-log summary (per epoch: first/last weight-layer ratio, global
norm mean and max, clip rate, mean norm per layer; for recurrent nets also the
gradient through time). Mitigated models ship next to their baselines, so the
two can be compared on the same data and budget.

Evidence: one run per entry (seed 0), on a 2-core CPU with the TensorFlow
backend, about 5 minutes for the whole set; the scores are in the manifest and
in `gradzoo pretrained list`.

Usage:

```bash
python -m benchmarks.train_pretrained                 # train what is missing or stale
python -m benchmarks.train_pretrained --only rnn_gru.adding --force
python -m benchmarks.train_pretrained --list
```

Idempotent: an entry whose config is unchanged and whose file still matches
its sha256 is kept as is. Files are written atomically (temporary file in the
same directory, then `os.replace`), the manifest last.
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

from benchmarks.runner import RunSpec

# MNIST-1D: 3600 / 400 / 1000 examples; the MLPs take it flat, `(40,)`.
_MNIST1D_FLAT = {"shape": "flat"}
# Adding problem at T = 50 with the models' Adam at 1e-2 (per batch of 32): at
# these settings LSTM and GRU leave the 1/6 MSE plateau within 10 epochs,
# while the tanh SimpleRNN stays on it.
_ADDING = {"length": 50, "num_train": 4000}
_ADDING_RUN = dict(epochs=10, batch_size=32, dataset_params=_ADDING, optimizer={"learning_rate": 0.01})

# name -> the run that produces it. Names are `model.dataset` (timm's `arch.tag`).
PRETRAINED: dict[str, RunSpec] = {
    "mlp_he_relu_bn.mnist1d": RunSpec("mlp_he_relu_bn", "mnist1d", epochs=20, dataset_params=_MNIST1D_FLAT),
    "mlp_sigmoid_deep.mnist1d": RunSpec("mlp_sigmoid_deep", "mnist1d", epochs=20, dataset_params=_MNIST1D_FLAT),
    "resnet_20_1d.mnist1d": RunSpec("resnet_20_1d", "mnist1d", epochs=10),
    "plain_20_1d.mnist1d": RunSpec("plain_20_1d", "mnist1d", epochs=10),
    "rnn_gru.adding": RunSpec("rnn_gru", "adding", **_ADDING_RUN),
    "rnn_lstm.adding": RunSpec("rnn_lstm", "adding", **_ADDING_RUN),
    "rnn_simple.adding": RunSpec("rnn_simple", "adding", **_ADDING_RUN),
}
SUITE = "pretrained"
SIGNIFICANT_DIGITS = 5  # of the per-layer gradient norms kept in the manifest


def weights_dir() -> Path:
    """`zoo/weights/` of the source tree this script belongs to."""
    import zoo.pretrained

    return zoo.pretrained.WEIGHTS_DIR


def run_spec(name: str) -> RunSpec:
    """The `RunSpec` of one pretrained entry, tagged with the `pretrained` suite."""
    import dataclasses

    spec = PRETRAINED[name]
    return dataclasses.replace(spec, suite=SUITE, group=name)


def _sig(value, digits: int = SIGNIFICANT_DIGITS):
    if value is None or not isinstance(value, float) or not math.isfinite(value) or value == 0:
        return value
    return float(f"{value:.{digits}g}")


def gradient_summary(record: dict) -> dict | None:
    """The compact gradient-log summary of a run record (per epoch, not per step)."""
    from benchmarks import verdicts

    grads = record.get("gradients")
    if not grads:
        return None
    epochs = len(grads["epoch"]["mean"])
    return {
        "layers": [
            {"name": g["name"], "kind": g["kind"], "num_params": g["num_params"]} for g in grads["layers"]
        ],
        "verdict": verdicts.verdict(record),
        "first_last_ratio": [_sig(verdicts.first_last_ratio(record, epoch=e)) for e in range(epochs)],
        "global_norm_mean": [_sig(v) for v in grads["epoch"]["global_pre_mean"]],
        "global_norm_max": [_sig(v) for v in grads["epoch"]["global_pre_max"]],
        "clip_rate": [_sig(v) for v in grads["epoch"]["clip_rate"]],
        "layer_norm_mean": [[_sig(v) for v in row] for row in grads["epoch"]["mean"]],
        "activations": {
            "layers": grads["activations"]["layers"],
            "saturation_level": grads["activations"]["saturation_level"],
            "per_epoch": [[_sig(v) for v in row] for row in grads["activations"]["per_epoch"]],
        },
        "temporal": _temporal_summary(record.get("temporal")),
        "steps_seen": grads["steps_seen"],
        "nonfinite_step": grads["nonfinite_step"],
    }


def _temporal_summary(temporal: dict | None) -> dict | None:
    """Gradient through time (rnn runs): the early/late ratio per epoch, the profile at start and end."""
    if not temporal or not temporal.get("profiles"):
        return None
    return {
        "epochs": temporal["epochs"],
        "early_late_ratio": [_sig(v) for v in temporal["early_late_ratio"]],
        "edge_fraction": temporal["edge_fraction"],
        "profile_first": [_sig(v) for v in temporal["profiles"][0]],
        "profile_last": [_sig(v) for v in temporal["profiles"][-1]],
    }


def manifest_entry(name: str, record: dict, path: Path, sha256: str) -> dict:
    """One manifest entry from a run record and the file it saved."""
    dataset = record["dataset"]
    summary = record["summary"]
    keep = ("epochs_run", "steps_run", "best_val_metric", "final_val_metric", "final_train_metric",
            "steps_to_target", "epochs_to_target", "train_s", "num_params")  # fmt: skip
    return {
        "name": name,
        "file": path.name,
        "sha256": sha256,
        "size_bytes": path.stat().st_size,
        "model": record["config"]["model"],
        "role": record["model"]["role"],
        "compare_with": [f"{p}.{dataset['name']}" for p in record["model"]["partners"] if f"{p}.{dataset['name']}" in PRETRAINED],
        "description": record["model"]["description"],
        "dataset": dataset["name"],
        "dataset_params": dataset["params"],
        "loss": dataset["loss"],
        "metric": dataset["metric"],
        "metric_mode": dataset["metric_mode"],
        "chance": dataset["chance"],
        "target": dataset["target"],
        "input_shape": dataset["input_shape"],
        "num_outputs": dataset["num_outputs"],
        "test_metrics": summary["test_metrics"],
        "summary": {k: summary[k] for k in keep},
        "config": record["config"],
        "optimizer": record["optimizer"],
        "model_spec": record["model"],
        "dataset_info": dataset,
        "history": record["history"],
        "gradients": gradient_summary(record),
        "run_id": record["run_id"],
        "created": record["created"],
        "env": record["env"],
    }


def _is_current(entry: dict | None, name: str, directory: Path) -> bool:
    from zoo.pretrained import file_sha256

    if not entry or entry.get("config") != run_spec(name).config():
        return False
    path = directory / entry["file"]
    return path.is_file() and file_sha256(path) == entry["sha256"]


def train_one(name: str, directory: Path) -> dict:
    """Trains one entry, saves its `.keras` file atomically and returns its manifest entry."""
    from benchmarks.runner import run_one
    from zoo.pretrained import file_sha256

    spec = run_spec(name)
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"{name}.keras"
    # Keras saves only to a `.keras` name: save into a hidden scratch directory
    # beside the target (never matched by the package-data glob), then rename.
    scratch = Path(tempfile.mkdtemp(prefix=".train-", dir=directory))
    try:
        tmp = scratch / final.name
        record = run_one(spec, save_model_to=str(tmp))
        if record["diverged"]:
            raise RuntimeError(f"{name} diverged at step {record['diverged_step']}; nothing saved.")
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # package data: readable by everyone
        os.replace(tmp, final)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return manifest_entry(name, record, final, file_sha256(final))


def write_manifest(directory: Path, entries: dict) -> Path:
    from benchmarks.records import write_json_atomic
    from zoo.pretrained import MANIFEST_SCHEMA

    path = directory / "manifest.json"
    ordered = {n: entries[n] for n in PRETRAINED if n in entries}
    write_json_atomic(path, {
        "schema": MANIFEST_SCHEMA,
        "generated_by": "python -m benchmarks.train_pretrained",
        "updated": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "models": ordered,
    })  # fmt: skip
    os.chmod(path, 0o644)
    return path


def _read_manifest(directory: Path) -> dict:
    import json

    path = directory / "manifest.json"
    if not path.is_file():
        return {}
    with open(path) as f:
        return json.load(f).get("models", {})


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.train_pretrained", description=__doc__.split("\n")[0])
    parser.add_argument("--only", action="append", metavar="NAME", choices=list(PRETRAINED),
                        help="train only this entry (repeatable); the others' entries are kept")  # fmt: skip
    parser.add_argument("--force", action="store_true", help="retrain even if the shipped file is current")
    parser.add_argument("--out", metavar="DIR", help="write here instead of zoo/weights/")
    parser.add_argument("--list", action="store_true", help="print the entries and their run settings, then exit")
    args = parser.parse_args(argv)
    if args.list:
        for name in PRETRAINED:
            spec = run_spec(name)
            print(f"{name:<28} epochs={spec.epochs} batch_size={spec.batch_size} "
                  f"dataset_params={spec.dataset_params} optimizer={spec.optimizer}")  # fmt: skip
        return 0

    directory = Path(args.out) if args.out else weights_dir()
    entries = _read_manifest(directory)
    changed = not (directory / "manifest.json").is_file()
    for name in args.only or list(PRETRAINED):
        if not args.force and _is_current(entries.get(name), name, directory):
            print(f"{name}: current, kept")
            continue
        changed = True
        print(f"{name}: training ...", flush=True)
        entry = train_one(name, directory)
        entries[name] = entry
        write_manifest(directory, entries)  # after each model, so an interrupted run keeps what it finished
        scores = ", ".join(f"{k}={v:.4f}" for k, v in entry["test_metrics"].items())
        print(f"{name}: test {scores}; {entry['summary']['train_s']:.0f} s; {entry['size_bytes'] / 1e6:.2f} MB", flush=True)
    if changed:
        print(f"Manifest: {write_manifest(directory, entries)}")
    else:
        print("Nothing to do: every entry is current.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
