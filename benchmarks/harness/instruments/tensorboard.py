"""TensorBoard event files for the gradient recorder, written without TensorFlow.

`GradientRecorder(log_dir=...)` hands each finished epoch to an `EventWriter`,
which writes through TensorBoard's own event-file writer and protocol buffers
(`tensorboard.summary.writer`, `tensorboard.compat.proto`), so the files are
the ones the stock TensorBoard reads, on any Keras backend: the accelerator
machine runs JAX without TensorFlow.

Tags (step = the global train step for per-step values, the 0-based epoch for
`epoch_*` values, as Keras's own `TensorBoard` callback does):

- `gradient_norm/<layer>`: the L2 norm of the layer's raw gradient (before
  clipping), at every step the recorder keeps;
- `global_norm/before_clipping`, `global_norm/after_clipping`: the same steps;
- `epoch_gradient_norm/<layer>`: the layer's mean norm over all finite steps
  of the epoch (what the verdicts read);
- `epoch_global_norm/before_clipping_mean`, `epoch_global_norm/before_clipping_max`;
- `epoch_clip_rate`: the fraction of the epoch's steps whose update clipping shrank;
- `epoch_saturated/<layer>` (sigmoid/tanh) or `epoch_dead/<layer>` (ReLU): the
  fraction of units, when the recorder has a probe batch;
- `epoch_gradient_norm_log10` (a histogram): log10 of every layer's mean norm
  in the epoch, so a spread over decades reads at a glance; layers whose norm
  is zero or non-finite are left out of it.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

HISTOGRAM_BUCKETS = 30


def histogram_proto(values):
    """A TensorBoard `HistogramProto` of `values` with equal-width buckets, or `None` for no finite value."""
    from tensorboard.compat.proto.summary_pb2 import HistogramProto

    a = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    if a.size == 0:
        return None
    lo, hi = float(a.min()), float(a.max())
    if hi > lo:
        edges = np.linspace(lo, hi, HISTOGRAM_BUCKETS + 1)
        counts, _ = np.histogram(a, bins=edges)
        limits = edges[1:].tolist()
    else:
        counts, limits = np.array([a.size]), [hi]
    return HistogramProto(min=lo, max=hi, num=float(a.size), sum=float(a.sum()), sum_squares=float(np.square(a).sum()),
                          bucket_limit=limits, bucket=counts.astype(float).tolist())  # fmt: skip


class EventWriter:
    """Appends scalars and histograms to a new event file in `log_dir`.

    Args:
        log_dir: the run's TensorBoard directory; created if missing. Each
            writer starts a new `events.out.tfevents.*` file there, so a
            resumed run adds to what an earlier process wrote.
    """

    def __init__(self, log_dir):
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        self.log_dir = Path(log_dir)
        self._writer = EventFileWriter(str(self.log_dir))

    def _add(self, step: int, values) -> None:
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.compat.proto.summary_pb2 import Summary

        if values:
            self._writer.add_event(Event(wall_time=time.time(), step=int(step), summary=Summary(value=values)))

    def scalars(self, step: int, scalars: dict) -> None:
        """One event with a scalar per tag (`None` values are skipped; NaN is written as NaN)."""
        from tensorboard.compat.proto.summary_pb2 import Summary

        self._add(step, [Summary.Value(tag=tag, simple_value=float(v)) for tag, v in scalars.items() if v is not None])

    def histogram(self, step: int, tag: str, values) -> None:
        """One histogram event; nothing is written when no value is finite."""
        from tensorboard.compat.proto.summary_pb2 import Summary

        proto = histogram_proto(values)
        if proto is not None:
            self._add(step, [Summary.Value(tag=tag, histo=proto)])

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


def log_epoch(writer: EventWriter, epoch: int, layer_names, rows, epoch_row: dict | None, activations) -> None:
    """Writes one epoch of a `GradientRecorder`'s log, then flushes so a live TensorBoard sees it.

    Args:
        writer: the run's `EventWriter`.
        epoch: the 0-based epoch.
        layer_names: one name per column of the norms.
        rows: the epoch's kept steps, `(step, per_layer_norms, global_pre, global_post)`.
        epoch_row: the epoch's statistics (`mean` per layer, `global_pre_mean`,
            `global_pre_max`, `clip_rate`), or `None` when no step was recorded.
        activations: `(layers, fractions)`: the recorder's activation layers
            (`name`, `activation`) and this epoch's fractions, or `None`.
    """
    for step, norms, pre, post in rows:
        scalars = {f"gradient_norm/{name}": value for name, value in zip(layer_names, norms)}
        scalars.update({"global_norm/before_clipping": pre, "global_norm/after_clipping": post})
        writer.scalars(step, scalars)
    if epoch_row is not None:
        scalars = {f"epoch_gradient_norm/{name}": value for name, value in zip(layer_names, epoch_row["mean"])}
        scalars.update({
            "epoch_global_norm/before_clipping_mean": epoch_row["global_pre_mean"],
            "epoch_global_norm/before_clipping_max": epoch_row["global_pre_max"],
            "epoch_clip_rate": epoch_row["clip_rate"],
        })  # fmt: skip
        writer.scalars(epoch, scalars)
        writer.histogram(epoch, "epoch_gradient_norm_log10", [math.log10(v) for v in epoch_row["mean"] if v and v > 0])
    if activations is not None:
        log_activations(writer, epoch, *activations)
    writer.flush()


def log_activations(writer: EventWriter, epoch: int, layers, fractions) -> None:
    """Writes one epoch's saturated (sigmoid/tanh) or dead (ReLU) fraction per activation layer (`name`, `activation`)."""
    writer.scalars(epoch, {
        f"epoch_{'dead' if info['activation'] == 'relu' else 'saturated'}/{info['name']}": value
        for info, value in zip(layers, fractions)
    })  # fmt: skip
