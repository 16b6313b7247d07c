"""What the doctor reads from disk: a `.keras` model, loaded in safe mode, and the data, from a
registered dataset or an `.npz` file. Every failure a user can fix is one sentence (`UserError`).
"""

from __future__ import annotations

import warnings
import zipfile
from pathlib import Path

import numpy as np

from gradzoo.benchmarks.errors import UserError

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

    from gradzoo import zoo  # noqa: F401  (registers the zoo's custom layers, so zoo models load by name)

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
        raise UserError(_why_not_loaded(path, err)) from None


def _config_objects(node):
    """Every serialized object in a Keras config: the dicts that name a `class_name` and a `module`."""
    if isinstance(node, dict):
        if isinstance(node.get("class_name"), str) and "module" in node:
            yield node
        for value in node.values():
            yield from _config_objects(value)
    elif isinstance(node, list):
        for value in node:
            yield from _config_objects(value)


def _unknown_object(config) -> str | None:
    """What in a model's config this process cannot rebuild, in the user's terms, or `None` if nothing is found.

    Keras wraps the failure of a layer inside a `Sequential` or functional
    model in a message about `from_config` with the model's class path and a
    cut config; the config itself says which object is at fault.
    """
    import importlib

    import keras

    from gradzoo.benchmarks.doctor.datachecks import plain_reason

    for obj in _config_objects(config):
        name, module, registered = obj["class_name"], obj.get("module"), obj.get("registered_name")
        if name.startswith("__") or (registered and keras.saving.get_registered_object(registered) is not None):
            continue  # a tensor, a lambda (safe mode names it) or a registered class, such as the zoo's
        if name == "function" and module in (None, "builtins"):
            continue  # a Keras function saved by name ("relu"); Keras looks it up among its own
        if registered and (not isinstance(module, str) or not module.startswith("keras")):
            return (f"names the custom class {registered!r}, which is not registered here; gradzoo's CLI loads models "
                    "built from Keras's and gradzoo's own layers, so load this one yourself (with its module imported) "
                    "and call `gradzoo.benchmarks.doctor.diagnose(model, x, y)`")  # fmt: skip
        if not isinstance(module, str):
            continue
        if module != "keras" and not module.startswith("keras."):
            return (f"names module {module!r} (class {name!r}), which is not a Keras layer module; gradzoo loads only "
                    "models built from Keras layers (safe_mode)")  # fmt: skip
        try:
            cls = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            return (f"names the class {name!r} in {module!r}, which this Keras ({keras.__version__}) does not have; the "
                    "model was saved by another Keras version or its config was edited")  # fmt: skip
        if module == "keras.layers" and isinstance(obj.get("config"), dict):
            try:
                cls.from_config(obj["config"])
            except (ValueError, TypeError, KeyError) as err:
                reason = plain_reason(err, limit=200)
                layer = obj["config"].get("name", name)
                return (f"has a layer {layer!r} ({name}) that this Keras ({keras.__version__}) cannot rebuild from its "
                        f"saved arguments{f' ({reason})' if reason else ''}; save the model again with this Keras")  # fmt: skip
    return None


def _why_not_loaded(path: Path, err: Exception) -> str:
    """One sentence in gradzoo's words for a `.keras` file that Keras refused, without Keras's internals."""
    import json

    import keras

    from gradzoo.benchmarks.doctor.datachecks import plain_reason

    reason = " ".join(str(err).split())
    if "safe_mode" in reason or "arbitrary code" in reason or "unsafe" in reason.lower():
        return (f"{str(path)!r} cannot be loaded safely: it holds Python code (such as a `Lambda` layer's function), which "
                "the doctor never runs; rebuild it from layers that serialize without code, or load it yourself and call "
                "`gradzoo.benchmarks.doctor.diagnose(model, x, y)`.")  # fmt: skip
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except (KeyError, ValueError, OSError, zipfile.BadZipFile):
        return (f"{str(path)!r} has no readable model config (its config.json is missing or damaged); save the model "
                "again with `model.save('name.keras')`.")  # fmt: skip
    unknown = _unknown_object(config)
    if unknown:
        return f"The model config in {str(path)!r} {unknown}."
    if "weights" in reason.lower() or "h5" in reason.lower() or isinstance(err, OSError):
        return (f"{str(path)!r} holds a model config, but its weights (model.weights.h5) are missing or damaged; save "
                "the model again with `model.save('name.keras')`.")  # fmt: skip
    plain = plain_reason(err, limit=200)
    return (f"{str(path)!r} cannot be loaded by this Keras ({keras.__version__}){f' ({plain})' if plain else ''}; it may "
            "have been saved by another Keras version, or need a custom class: load it yourself and call "
            "`gradzoo.benchmarks.doctor.diagnose(model, x, y)`.")  # fmt: skip


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
    from gradzoo.benchmarks.datasets import load_dataset

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

    See `gradzoo.benchmarks.doctor.npzfile.read_npz`: only the rows used are read, so a
    highly compressed file that declares millions of rows costs no more memory
    than its first rows.

    Raises:
        UserError: a missing or unreadable file, one without both arrays, or `x` and `y` of different lengths.
    """
    from gradzoo.benchmarks.doctor.npzfile import read_npz

    return read_npz(path, max_rows)
