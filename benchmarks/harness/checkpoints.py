"""Epoch checkpoints: a run killed mid-way resumes at the epoch it was in.

After every epoch the runner saves, in `OUT/checkpoints/<run_id>/`, the model's
weights with its optimizer state (Keras `save_weights`) and the state of the
harness's callbacks (curves, gradient log, gradient through time) as JSON. The
JSON file is written last and names the weights file, so it is the commit
point: a kill during a save leaves the previous checkpoint whole. The data
order of an epoch depends only on `(seed, epoch)` (see
`benchmarks.datasets.batches`), so a resumed run trains on the same batches as
an uninterrupted one and, on CPU, ends with the same numbers. The checkpoint is
removed once the run's record is written.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path

from benchmarks.storage import write_atomic

CHECKPOINTS_SUBDIR = "checkpoints"
STATE_FILE = "state.json"


class RunCheckpoint:
    """The checkpoint directory of one run."""

    def __init__(self, out_dir, run_id: str):
        self.directory = Path(out_dir) / CHECKPOINTS_SUBDIR / run_id
        self.run_id = run_id

    def load(self) -> dict | None:
        """The saved state (`epoch`, `weights`, `callbacks`), or `None` when there is no usable checkpoint."""
        try:
            state = json.loads((self.directory / STATE_FILE).read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(state, dict) or state.get("run_id") != self.run_id:
            return None
        if not (self.directory / str(state.get("weights"))).is_file():
            return None
        return restore_floats(state)

    def restore(self, model, state: dict) -> None:
        """Loads the checkpoint's weights and optimizer state into a compiled, freshly built model."""
        model.optimizer.build(model.trainable_variables)
        model.load_weights(self.directory / state["weights"])

    def save(self, model, epoch: int, callbacks: dict) -> None:
        """Saves the state after `epoch` epochs; the previous checkpoint stays valid until this one is whole."""
        self.directory.mkdir(parents=True, exist_ok=True)
        weights = f"epoch-{epoch}.weights.h5"
        tmp = self.directory / f".tmp-{weights}"
        model.save_weights(tmp)  # Keras wants the .weights.h5 suffix: a hidden name, then a rename
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, self.directory / weights)
        state = {"run_id": self.run_id, "epoch": epoch, "weights": weights, "callbacks": callbacks}
        write_atomic(self.directory / STATE_FILE, json.dumps(_json_safe(state)))
        for old in self.directory.glob("epoch-*.weights.h5"):
            if old.name != weights:
                with contextlib.suppress(FileNotFoundError):
                    old.unlink()

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)
        with contextlib.suppress(OSError):
            self.directory.parent.rmdir()  # only if no other run has a checkpoint


def _json_safe(value):
    """NaN and infinities as strings, so the state file is strict JSON; `_restore_floats` undoes it."""
    if isinstance(value, float) and value != value:
        return "__nan__"
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return "__inf__" if value > 0 else "__-inf__"
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def restore_floats(value):
    """Undoes `_json_safe`."""
    if isinstance(value, str) and value in ("__nan__", "__inf__", "__-inf__"):
        return {"__nan__": float("nan"), "__inf__": float("inf"), "__-inf__": float("-inf")}[value]
    if isinstance(value, dict):
        return {k: restore_floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [restore_floats(v) for v in value]
    return value
