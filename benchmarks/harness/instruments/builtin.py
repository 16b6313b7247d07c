"""The built-in instruments: gradient norms per layer, activation statistics, gradient through time.

Each wraps the callback that measures (`recorder.GradientRecorder`,
`activations.ActivationStats`, `temporal.TemporalProbe`) and says what the
record, the tables and the report take from its log. The callbacks are
imported when a run makes one, so reading the registry (tables, reports) does
not import Keras.
"""

from __future__ import annotations

import numpy as np

from gradzoo.benchmarks.harness.instruments.base import Context, Instrument, register_instrument
from gradzoo.benchmarks.harness.records import ACTIVATIONS, GRADIENT_NORMS, TEMPORAL, ActivationLog, GradientLog, TemporalLog

_FIGURES = "gradzoo.benchmarks.reporting.figures"


class GradientNorms(Instrument):
    """Per-layer gradient norms on every train step, inside the compiled step (`GradientRecorder`).

    Per step: the raw gradient's L2 norm per layer (before clipping, loss
    scale divided out) and the global norm before and after clipping; per
    epoch their min/mean/max. Its log also tells the runner the first
    non-finite step (a divergence) and the loss-scale overflows.
    """

    key = GRADIENT_NORMS
    log_type = GradientLog
    columns = ("grad_ratio_first_last", "max_global_grad_norm", "clip_rate")
    compared = {"grad_ratio_first_last": "grad ratio first/last layer"}
    layer_columns = ("depth_index", "kind", "grad_norm_min", "grad_norm_mean", "grad_norm_max")
    figures = (("gradient_flow", f"{_FIGURES}:figure_gradient_flow"), ("heatmap", f"{_FIGURES}:figure_heatmap"),
               ("global_norm", f"{_FIGURES}:figure_global_norm"))  # fmt: skip

    @classmethod
    def applies(cls, context: Context) -> bool:
        return "layers" in context.through

    def make_callback(self):
        from gradzoo.benchmarks.harness.instruments.recorder import GradientRecorder

        c = self.context
        return GradientRecorder(first_steps=c.first_steps, stride=c.stride, stop_on_nonfinite=c.stop_on_nonfinite,
                                log_dir=c.log_dir)  # fmt: skip

    def log(self) -> GradientLog:
        from gradzoo.benchmarks.harness.records.codec import build

        summary = self.callback.summary()
        summary.pop("activations")  # measured without a probe here: the `activations` instrument has them
        return build(GradientLog, summary, f"the {self.key} log")

    @staticmethod
    def table_columns(log: GradientLog) -> dict:
        return {"grad_ratio_first_last": log.first_last_ratio(), "max_global_grad_norm": log.peak_global_norm,
                "clip_rate": log.clip_rate}  # fmt: skip

    @staticmethod
    def layer_rows(log: GradientLog) -> list[dict]:
        return [{"epoch": e, "layer": layer.name, "depth_index": layer.depth_index, "kind": layer.kind,
                 "grad_norm_min": lo, "grad_norm_mean": mean, "grad_norm_max": hi}
                for e, (mins, means, maxs) in enumerate(zip(log.epoch.min, log.epoch.mean, log.epoch.max), start=1)
                for layer, lo, mean, hi in zip(log.layers, mins, means, maxs)]  # fmt: skip


class Activations(Instrument):
    """The saturated (sigmoid/tanh) or dead (ReLU) fraction of each activation layer, on a fixed probe batch."""

    key = ACTIVATIONS
    log_type = ActivationLog
    figures = (("activations", f"{_FIGURES}:figure_activations"),)
    at_start = True

    @classmethod
    def applies(cls, context: Context) -> bool:
        return "layers" in context.through and context.probe_x is not None

    def make_callback(self):
        from gradzoo.benchmarks.harness.instruments.activations import ActivationStats

        return ActivationStats(self.context.probe_x, log_dir=self.context.log_dir)


class GradientThroughTime(Instrument):
    """|dL/dx_t| per input step of a recurrent net, at initialization and after each epoch (`TemporalProbe`).

    It needs float sequences `(batch, steps, features)`: token ids have no gradient.
    """

    key = TEMPORAL
    log_type = TemporalLog
    columns = ("temporal_ratio_early_late",)
    compared = {"temporal_ratio_early_late": "grad ratio early/late steps"}
    figures = (("through_time", f"{_FIGURES}:figure_through_time"),)
    at_start = True

    @classmethod
    def applies(cls, context: Context) -> bool:
        if "time" not in context.through or context.probe_x is None:
            return False
        x = np.asarray(context.probe_x)
        return x.dtype.kind == "f" and x.ndim == 3

    def make_callback(self):
        from gradzoo.benchmarks.harness.instruments.temporal import TemporalProbe

        c = self.context
        return TemporalProbe(c.probe_x, c.probe_y, c.loss_fn)

    @staticmethod
    def table_columns(log: TemporalLog) -> dict:
        return {"temporal_ratio_early_late": log.final_ratio}


for _instrument in (GradientNorms, Activations, GradientThroughTime):
    register_instrument(_instrument)
