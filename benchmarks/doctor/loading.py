"""What the doctor reads from disk: a `.keras` model, loaded in safe mode, and the data, from a
registered dataset or an `.npz` file. Every failure a user can fix is one sentence (`UserError`).
"""

from __future__ import annotations

import warnings
import zipfile
from pathlib import Path

import numpy as np

from benchmarks.errors import UserError

# How many training examples the doctor reads at most: the probe needs a few thousand.
MAX_EXAMPLES = 20_000


def load_model_file(path):
    """A `.keras` model, loaded with `safe_mode=True` (no Python code is deserialized) and compiled if it was saved so.

    Raises:
        UserError: the file is missing, is not a `.keras` archive, or cannot be
            loaded safely (a `Lambda` layer with Python code, a custom class
            that is not registered).
    """
    import keras

    import zoo  # noqa: F401  (registers the zoo's custom layers, so zoo models load by name)

    path = Path(path)
    if not path.is_file():
        raise UserError(f"No model file at {str(path)!r}; give the path of a `.keras` file saved with `model.save(...)`.")
    if path.suffix != ".keras" or not zipfile.is_zipfile(path):
        raise UserError(f"{str(path)!r} is not a `.keras` model archive; the doctor reads models saved with "
                        "`model.save('name.keras')` (Keras 3 format).")  # fmt: skip
    try:
        with warnings.catch_warnings():
            # A model saved compiled but never trained has no optimizer variables; Keras warns that it
            # skips loading them. The doctor trains with a fresh optimizer of the same configuration anyway.
            warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer", category=UserWarning)
            return keras.saving.load_model(path, safe_mode=True)
    except (ValueError, TypeError, KeyError, AttributeError, OSError, zipfile.BadZipFile) as err:
        reason = " ".join(str(err).split())
        if "safe_mode" in reason or "arbitrary code" in reason or "unsafe" in reason.lower():
            raise UserError(f"{str(path)!r} cannot be loaded safely: it holds Python code (such as a `Lambda` layer's "
                            "function), which the doctor never runs; rebuild it from layers that serialize without "
                            "code, or load it yourself and call `benchmarks.doctor.diagnose(model, x, y)`.") from None  # fmt: skip
        raise UserError(f"{str(path)!r} cannot be loaded: {reason[:300].rstrip('.')}; a custom class must be registered "
                        "with `keras.saving.register_keras_serializable` and imported first.") from None  # fmt: skip


def parse_params(pairs) -> dict:
    """`["length=50", "shape=flat"]` -> `{"length": 50, "shape": "flat"}` (ints, floats, true/false, else text)."""
    params = {}
    for pair in pairs or ():
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise UserError(f"--param takes KEY=VALUE, such as `--param length=50`. Received: {pair!r}")
        value: object = text
        if text.lower() in ("true", "false"):
            value = text.lower() == "true"
        else:
            for kind in (int, float):
                try:
                    value = kind(text)
                    break
                except ValueError:
                    continue
        params[key] = value
    return params


def load_dataset_split(name: str, params: dict, data_dir=None) -> tuple[np.ndarray, np.ndarray, str]:
    """The training split of a registered dataset (see `gradzoo list`), as arrays, and its label.

    Raises:
        UserError: unknown dataset or parameter, a bad value, or a real dataset that is not prepared.
    """
    from benchmarks.datasets import load_dataset

    params = dict(params)
    seed = params.pop("seed", 0)
    try:
        dataset = load_dataset(name, seed=seed, data_dir=data_dir, **params)
    except UserError:
        raise  # already one sentence that names the dataset
    except (ValueError, TypeError) as err:  # a parameter's value, in the Keras style
        raise UserError(f"Dataset {name!r}: {' '.join(str(err).split())}") from None
    train = dataset.train
    if isinstance(train, tuple):
        x, y = train
    else:  # a batch source (augmented CIFAR): read batches until there are enough examples
        xs, ys = [], []
        for i in range(len(train)):
            bx, by = train[i]
            xs.append(np.asarray(bx))
            ys.append(np.asarray(by))
            if sum(len(b) for b in xs) >= MAX_EXAMPLES:
                break
        x, y = np.concatenate(xs), np.concatenate(ys)
    shown = {k: v for k, v in dataset.params.items() if k not in ("batch_size",)}
    label = f"{name} (" + ", ".join(f"{k}={v}" for k, v in shown.items()) + "), training split"
    return np.asarray(x)[:MAX_EXAMPLES], np.asarray(y)[:MAX_EXAMPLES], label


def load_npz(path, max_rows: int = MAX_EXAMPLES) -> tuple[np.ndarray, np.ndarray, str]:
    """The first `max_rows` rows of arrays `x` and `y` in an `.npz` file, read lazily and without pickle.

    See `benchmarks.doctor.npzfile.read_npz`: only the rows used are read, so a
    highly compressed file that declares millions of rows costs no more memory
    than its first rows.

    Raises:
        UserError: a missing or unreadable file, one without both arrays, or `x` and `y` of different lengths.
    """
    from benchmarks.doctor.npzfile import read_npz

    return read_npz(path, max_rows)
