"""Measurements taken during training, each one `Instrument` (see `base`); the built-in ones register first."""

from gradzoo.benchmarks.harness.instruments.base import (
    THROUGH, Context, Instrument, figure_function, register_instrument, registered, unregister_instrument,
)  # fmt: skip
from gradzoo.benchmarks.harness.instruments import builtin as _builtin  # noqa: F401,E402  (registers the built-in three)

__all__ = ["THROUGH", "Context", "Instrument", "figure_function", "register_instrument", "registered", "unregister_instrument"]
