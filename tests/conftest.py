"""Shared test set-up: quiet TensorFlow logs, deterministic seeds, a private cache."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seed_and_cache(tmp_path_factory, monkeypatch):
    keras.utils.set_random_seed(0)
    # Embedded datasets are cached once per test session, never in ~/.cache.
    monkeypatch.setenv("GRADZOO_CACHE", str(tmp_path_factory.getbasetemp() / "gradzoo-cache"))
