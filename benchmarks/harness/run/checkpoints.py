"""Epoch checkpoints: a run killed mid-way resumes at the epoch it was in.

After every epoch the runner saves, in `OUT/checkpoints/<run_id>/`, the model's
weights with its optimizer state (Keras `save_weights`) and the state of the
harness's callbacks (the curves, and each instrument's state by its key) as JSON. The
JSON file is written last and names the weights file, so it is the commit
point: a kill during a save leaves the previous checkpoint whole. The data
order of an epoch depends only on `(seed, epoch)` (see
`gradzoo.benchmarks.datasets.batches`), so a resumed run trains on the same batches as
an uninterrupted one and, on CPU, ends with the same numbers. The checkpoint is
removed once the run's record is written.

A checkpoint that cannot be used (cut short by a full disk or a crash of the
machine, edited by hand) is found before the model loads it: the runner says so
in one line, discards it and trains the run from its first epoch. A save that
cannot be written raises one `OSError` naming the file, before h5py is asked to
write on a full disk.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import json
import os
import shutil
from pathlib import Path

import keras

from gradzoo.benchmarks.storage import write_atomic

CHECKPOINTS_SUBDIR = "checkpoints"
STATE_FILE = "state.json"
CHECKPOINT_SLACK = 1 << 18  # bytes asked free beyond twice the weights


class RunCheckpoint:
    """The checkpoint directory of one run."""

    def __init__(self, out_dir, run_id: str):
        self.directory = Path(out_dir) / CHECKPOINTS_SUBDIR / run_id
        self.run_id = run_id
        self.problem = None  # why `load` found the checkpoint unusable

    def load(self) -> dict | None:
        """The saved state (`epoch`, `weights`, `callbacks`), or `None` when there is no usable checkpoint.

        A checkpoint that is there but cannot be used (a state file that is
        not JSON or names another run, a weights file missing, truncated or
        corrupt) gives `None` too, with the reason in `self.problem`: the
        caller says so in one line and discards it.
        """
        self.problem = None
        path = self.directory / STATE_FILE
        if not os.path.lexists(path):
            return None
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            self.problem = f"{STATE_FILE} cannot be read ({getattr(err, 'strerror', None) or 'not JSON'})"
            return None
        if not isinstance(state, dict) or state.get("run_id") != self.run_id or not isinstance(state.get("epoch"), int):
            self.problem = f"{STATE_FILE} is not this run's"
            return None
        self.problem = _weights_problem(self.directory / str(state.get("weights")))
        return None if self.problem else restore_floats(state)

    def restore(self, model, state: dict) -> None:
        """Loads the checkpoint's weights and optimizer state into a compiled, freshly built model."""
        model.optimizer.build(model.trainable_variables)
        model.load_weights(self.directory / state["weights"])

    def save(self, model, epoch: int, callbacks: dict) -> None:
        """Saves the state after `epoch` epochs; the previous checkpoint stays valid until this one is whole.

        Raises:
            OSError: the checkpoint could not be written (a full disk), naming
                the file; nothing half-written is left behind.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        weights = f"epoch-{epoch}.weights.h5"
        tmp = self.directory / f".tmp-{weights}"
        _check_space(model, self.directory / weights)
        try:
            model.save_weights(tmp)  # Keras wants the .weights.h5 suffix: a hidden name, then a rename
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(tmp, self.directory / weights)
        except OSError as err:
            code = err.errno or errno.EIO
            # The failed h5py file lives on in the error's traceback; left to be finalized at exit, after
            # HDF5 has shut down, it crashes the process (exit 139). Dropped and collected here instead.
            err.__traceback__ = None
            del err
            gc.collect()
            with contextlib.suppress(OSError):
                tmp.unlink()
            # h5py's message is a paragraph of HDF5 internals: keep the errno and name the file.
            raise OSError(code, os.strerror(code), str(self.directory / weights)) from None
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


def _check_space(model, path: Path) -> None:
    """Raises `OSError(ENOSPC)` naming `path` unless its folder has room for the model's weights.

    h5py writing on a full disk can crash the process (a segfault inside
    `File.close`, exit 139) before Python can say why, so the room is proven
    before h5py is asked to write: the free space is read, then, where the
    system allows, actually reserved (`posix_fallocate` of a scratch file, which
    quotas and tmpfs account for too) and handed back just before the save.
    """
    import numpy as np

    variables = list(model.weights) + list(getattr(model.optimizer, "variables", []))
    need = sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in variables)
    need = 2 * need + CHECKPOINT_SLACK  # HDF5's own structures, and the state file
    full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
    if shutil.disk_usage(path.parent).free < need:
        raise full
    if not hasattr(os, "posix_fallocate"):
        return
    scratch = path.parent / ".space-check.tmp"
    fd = os.open(scratch, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.posix_fallocate(fd, 0, need)
    except OSError as err:
        if err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise full from None
        # EOPNOTSUPP and the like: a filesystem that cannot reserve; the free space read above must do.
    finally:
        os.close(fd)
        os.unlink(scratch)


def _weights_problem(path: Path) -> str | None:
    """Why the weights file at `path` cannot be loaded, or `None`: every dataset in it is read once."""
    import h5py

    if not path.is_file():
        return f"its weights file {path.name} is missing"

    def read(name, item):
        if isinstance(item, h5py.Dataset):
            item[()]

    try:
        with h5py.File(path, "r") as f:
            f.visititems(read)
    except (OSError, RuntimeError, ValueError, KeyError) as err:
        return f"its weights file {path.name} is truncated or corrupt: {' '.join(str(err).split())[:120]}"
    return None


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


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves the run's checkpoint after every epoch.

    Args:
        checkpoint: a `RunCheckpoint`.
        stateful: the callbacks whose `get_state()` goes into the checkpoint, by name.
        should_save: optional `should_save() -> bool`; a run that is stopping
            because it diverged is not checkpointed, so it is not resumed.
    """

    def __init__(self, checkpoint, stateful: dict, should_save=None):
        super().__init__()
        self.checkpoint = checkpoint
        self.stateful = stateful
        self.should_save = should_save or (lambda: True)

    def on_epoch_end(self, epoch, logs=None):
        if self.should_save():
            self.checkpoint.save(self.model, epoch + 1, {name: cb.get_state() for name, cb in self.stateful.items()})
