"""Pretrained zoo models, loaded by name and checked by hash.

Names are `model.dataset` (timm's `arch.tag`): `resnet_56_1d.mnist1d` is the
zoo's `resnet_56_1d` trained on MNIST-1D. Each mitigated model ships next to
its baseline, trained on the same data, seed and budget, with its history.

```python
from gradzoo import zoo
zoo.list_pretrained()                          # ['mlp_he_relu_bn.mnist1d', ...]
info = zoo.pretrained_info("rnn_gru.adding")   # the manifest entry
info["test_metrics"]                           # {'loss': ..., 'mse': ...}
model = zoo.load_pretrained("rnn_gru.adding")  # compiled with its loss and metric
```

The shipped files live in `zoo/weights/` with `manifest.json`, written by
`python -m gradzoo.benchmarks.train_pretrained`. An entry holds the file name, its
sha256, what the model was tuned over and the setting chosen, the dataset and
its parameters, the test scores (keyed as `model.evaluate(...,
return_dict=True)` names them), the full run config, the per-epoch history and
a compact gradient-log summary.

Weights hosted elsewhere are registered with a URL and their sha256, and are
downloaded once into `$GRADZOO_CACHE/weights` (else `~/.cache/gradzoo/weights`)
with `keras.utils.get_file`:

```python
zoo.register_pretrained("mlp_he_relu_bn.mnist1d_s1", url="https://.../x.keras",
                        sha256="...", info={"dataset": "mnist1d", ...})
```

Every load checks the file's sha256 against the expected one before anything
is deserialized, then loads a private copy of the checked bytes with Keras's
safe mode (no Python lambdas are ever deserialized).
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import hashlib
import io
import json
import os
import re
import tempfile
import zipfile
from pathlib import Path

from gradzoo.zoo.checks import cache_dir
from gradzoo.zoo.manifest import MANIFEST_SCHEMA, ManifestEntry, read_manifest  # noqa: F401  (MANIFEST_SCHEMA: public)

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"

_NAME = re.compile(r"^[A-Za-z0-9_\-]+\.[A-Za-z0-9_.\-]+$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclasses.dataclass(frozen=True)
class _Registered:
    """A model registered with `register_pretrained`: where its file is, its hash, and the user's `info`."""

    name: str
    sha256: str
    source: str  # "url" or "path"
    url: str | None
    path: str | None
    info: dict


_REGISTERED: dict[str, _Registered] = {}
_manifest_cache: dict = {"key": None, "entries": {}}


class PretrainedHashError(ValueError):
    """A weights file does not have the sha256 its entry expects: it was not loaded."""


class PretrainedFetchError(OSError):
    """A registered URL could not be downloaded."""


def file_sha256(path) -> str:
    """The hex sha256 of a file's content."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _shipped() -> dict[str, ManifestEntry]:
    """The shipped manifest's entries (checked against their type), re-read when the file changes."""
    path = WEIGHTS_DIR / "manifest.json"
    try:
        stat = path.stat()
    except FileNotFoundError:
        return {}
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if _manifest_cache["key"] != key:
        _manifest_cache.update(key=key, entries=read_manifest(path).models)
    return _manifest_cache["entries"]


def _entry(name: str) -> ManifestEntry | _Registered:
    """The entry of `name`; ValueError listing the names if unknown."""
    if isinstance(name, str):
        if name in _REGISTERED:
            return _REGISTERED[name]
        shipped = _shipped()
        if name in shipped:
            return shipped[name]
    available = list_pretrained()
    close = difflib.get_close_matches(str(name), available, n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise ValueError(
        f"Unknown pretrained model {name!r}.{hint} Available: {', '.join(available) or 'none'}."
    )


def list_pretrained() -> list[str]:
    """Names of the pretrained models: the shipped ones, then those registered.

    Returns:
        `model.dataset` names, e.g. `"resnet_56_1d.mnist1d"`.
    """
    shipped = list(_shipped())
    return shipped + [n for n in _REGISTERED if n not in shipped]


def pretrained_entry(name: str) -> ManifestEntry | None:
    """The typed manifest entry of a shipped model (`gradzoo.zoo.manifest.ManifestEntry`).

    Returns:
        The entry, or `None` for a model registered with `register_pretrained`
        (its `info` is the user's own, free-form; `pretrained_info` returns it).

    Raises:
        ValueError: unknown name (the message lists the available ones).
    """
    entry = _entry(name)
    return entry if isinstance(entry, ManifestEntry) else None


def pretrained_info(name: str) -> dict:
    """What is known about a pretrained model: its manifest entry, as a copy.

    Args:
        name: a name from `list_pretrained()`.

    Returns:
        A dict with at least `name`, `sha256` and `source` (`"shipped"`,
        `"url"` or `"path"`). Shipped entries also hold `model`, `role`,
        `compare_with`, `dataset`, `dataset_params` (pass them to
        `gradzoo.benchmarks.data.load_dataset(dataset, **dataset_params)` to rebuild
        the data), `loss`, `metric`, `test_metrics` (keyed as
        `model.evaluate(..., return_dict=True)` names them), `config` (the run
        config), `optimizer`, `history` (per epoch), `gradients` (per-epoch
        gradient-log summary), `file`, `size_bytes`, `env` and `created`.
        Registered entries hold the `info` they were registered with.

    Raises:
        ValueError: unknown name (the message lists the available ones).
    """
    entry = _entry(name)
    if isinstance(entry, ManifestEntry):
        return {**entry.model_dump(), "source": "shipped", "path": str(WEIGHTS_DIR / entry.file)}
    where = {"url": entry.url} if entry.source == "url" else {"path": entry.path}
    return {**copy.deepcopy(entry.info), "name": name, "sha256": entry.sha256, "source": entry.source, **where}


def register_pretrained(
    name: str,
    *,
    sha256: str,
    url: str | None = None,
    path=None,
    info: dict | None = None,
    overwrite: bool = False,
) -> None:
    """Registers weights that are not shipped with gradzoo: a URL or a local file.

    A URL is fetched on first load with `keras.utils.get_file` into
    `cache_dir() / "weights"` and reused after; `file://` URLs work too. Either
    way the file's sha256 must equal `sha256` before it is loaded.

    Args:
        name: a `model.tag` name, e.g. `"resnet_56_1d.mnist1d_seed1"`; shipped
            names cannot be replaced.
        sha256: the file's hex sha256 (64 characters), from a trusted channel.
        url: where to download the `.keras` file from. Give `url` or `path`.
        path: a local `.keras` file.
        info: what `pretrained_info(name)` returns besides the name, hash and
            source; e.g. `dataset`, `dataset_params`, `test_metrics`.
        overwrite: replace an earlier registration of `name`. Defaults to `False`.

    Raises:
        ValueError: a malformed name or hash, both or neither of `url` and
            `path`, or a name that is already taken.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"`name` must look like `model.tag`, e.g. 'resnet_56_1d.mnist1d'. Received: name={name!r}")
    if not isinstance(sha256, str) or not _SHA256.match(sha256.lower()):
        raise ValueError(f"`sha256` must be 64 hexadecimal characters. Received: sha256={sha256!r}")
    if (url is None) == (path is None):
        raise ValueError(f"Give exactly one of `url` and `path`. Received: url={url!r}, path={path!r}")
    if url is not None and (not isinstance(url, str) or "://" not in url):
        raise ValueError(f"`url` must be a URL such as 'https://...' or 'file:///...'. Received: url={url!r}")
    if info is not None and not isinstance(info, dict):
        raise ValueError(f"`info` must be a dict. Received: info={type(info).__name__}")
    if name in _shipped():
        raise ValueError(f"{name!r} is a shipped pretrained model and cannot be replaced; register another name.")
    if name in _REGISTERED and not overwrite:
        raise ValueError(f"Pretrained model {name!r} is already registered; pass `overwrite=True` to replace it.")
    _REGISTERED[name] = _Registered(
        name=name, sha256=sha256.lower(), source="url" if url is not None else "path", url=url,
        path=None if path is None else str(Path(path).expanduser().resolve()), info=copy.deepcopy(info or {}),
    )  # fmt: skip


def _fetch(name: str, entry: _Registered) -> Path:
    """Downloads (or finds in the cache) a URL entry's file; the hash is checked by the caller too."""
    import keras

    sha = entry.sha256
    fname = f"{name}-{sha[:12]}.keras"
    root = cache_dir()
    target = root / "weights" / fname
    # get_file falls back to /tmp/.keras when `cache_dir` is not an existing writable directory.
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        got = keras.utils.get_file(
            fname, origin=entry.url, file_hash=sha, hash_algorithm="sha256",
            cache_dir=str(root), cache_subdir="weights",
        )  # fmt: skip
    except ValueError as e:
        if target.is_file():  # get_file keeps a download whose hash is wrong: do not
            actual = file_sha256(target)
            target.unlink()
            raise _hash_error(name, entry.url, actual, sha) from None
        raise PretrainedFetchError(f"Could not download pretrained model {name!r} from {entry.url}: {e}") from None
    except Exception as e:  # get_file raises a bare Exception for URL errors
        raise PretrainedFetchError(
            f"Could not download pretrained model {name!r} from {entry.url} ({e}); "
            f"without network, download the file elsewhere and register it with `path=`."
        ) from None
    return Path(got)


def _hash_error(name: str, where, actual: str, expected: str) -> PretrainedHashError:
    return PretrainedHashError(
        f"Pretrained model {name!r} failed its sha256 check: {where} has sha256 {actual}, "
        f"expected {expected}; the file is corrupted or was tampered with, so it was not loaded."
    )


def pretrained_path(name: str) -> Path:
    """The local file of a pretrained model, downloaded first if registered by URL.

    The hash is not checked here (`load_pretrained` checks the bytes it loads).

    Raises:
        ValueError: unknown name.
        FileNotFoundError: a shipped or registered local file is missing.
        PretrainedFetchError, PretrainedHashError: a URL entry could not be
            downloaded, or what was downloaded has the wrong hash.
    """
    entry = _entry(name)
    shipped = isinstance(entry, ManifestEntry)
    if not shipped and entry.source == "url":
        return _fetch(name, entry)
    path = WEIGHTS_DIR / entry.file if shipped else Path(entry.path)
    if not path.is_file():
        hint = " Reinstall gradzoo, or run `gradzoo regenerate --only pretrained`." if shipped else ""
        raise FileNotFoundError(f"The weights file of pretrained model {name!r} is missing: {path}.{hint}")
    return path


def load_pretrained(name: str, compile: bool = True):
    """Loads a pretrained zoo model after checking its sha256.

    Args:
        name: a name from `list_pretrained()`, e.g. `"resnet_56_1d.mnist1d"`.
        compile: return the model compiled with the loss, metric and optimizer
            settings it was trained with (a fresh optimizer: the shipped files
            leave out the optimizer's moment estimates), so
            `model.evaluate(...)` gives the keys of `test_metrics` at once.
            Every shipped file is saved compiled; a registered file is
            compiled only if it was saved compiled. Defaults to `True`.
            The file is loaded uncompiled and then compiled from its saved
            compile config: Keras would otherwise try to restore the 2 saved
            optimizer variables into a built optimizer and warn that it skipped them.

    Returns:
        A `keras.Model` that outputs logits (classification) or values
        (regression), as every zoo model does.

    Raises:
        ValueError: unknown name.
        PretrainedHashError: the file's sha256 is not the expected one (a
            `ValueError`); nothing is deserialized.
        FileNotFoundError, PretrainedFetchError: the file cannot be had.
    """
    import keras

    from gradzoo import zoo  # noqa: F401  (registers the zoo's custom layers for deserialization)

    entry = _entry(name)
    path = pretrained_path(name)
    # Hash the bytes that will be loaded, not the path: a file swapped between
    # the check and the load cannot slip through.
    data = path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != entry.sha256:
        raise _hash_error(name, path, actual, entry.sha256)
    with tempfile.TemporaryDirectory(prefix="gradzoo-") as tmp:
        copy_path = Path(tmp) / f"{name}.keras"
        copy_path.write_bytes(data)
        model = keras.saving.load_model(copy_path, compile=False, safe_mode=True)
    config = _compile_config(data) if compile else None
    if config is not None:
        model.compile_from_config(config)  # a fresh optimizer, as loading compiled gave, minus the warning
    return model


def _compile_config(data: bytes) -> dict | None:
    """The compile config saved in a `.keras` file's `config.json`, or `None` if it was saved uncompiled."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        config = json.loads(archive.read("config.json"))
    return config.get("compile_config") if isinstance(config, dict) else None
