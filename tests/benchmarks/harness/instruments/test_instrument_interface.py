"""One instrument interface: a new measurement is one class and one registration.

`WeightNorms` below is written here, in the test, and registered once at module
level; nothing else in gradzoo names it. The tests show it reaching the record
of a tiny `gradzoo run`, the tables and the report, and surviving a resume;
and that the built-in instruments still apply where they should and old
records still load.
"""

from __future__ import annotations

import dataclasses
import gzip
import json

import keras
import numpy as np
import pandas as pd
import pytest
from helpers import DATA

from gradzoo.benchmarks.cli import main
from gradzoo.benchmarks.harness import records as records_mod
from gradzoo.benchmarks.harness.instruments import Context, Instrument, register_instrument, registered, unregister_instrument
from gradzoo.benchmarks.harness.records.types import Num, Str
from gradzoo.benchmarks.harness.run import checkpoints

TINY = str(DATA / "tiny.toml")


@dataclasses.dataclass(frozen=True)
class WeightNormLog:
    """Per epoch end, per layer with trainable weights: the L2 norm of all its weights."""

    layers: list[Str]
    per_epoch: list[list[Num]]


class WeightNormCallback(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.layers: list[str] = []
        self.per_epoch: list[list[float]] = []

    def on_epoch_end(self, epoch, logs=None):
        layers = [layer for layer in self.model.layers if layer.trainable_weights]
        self.layers = [layer.name for layer in layers]
        self.per_epoch.append([
            float(np.sqrt(sum(np.sum(np.square(keras.ops.convert_to_numpy(w), dtype=np.float64)) for w in layer.trainable_weights)))
            for layer in layers
        ])  # fmt: skip

    def get_state(self) -> dict:
        return {"layers": self.layers, "per_epoch": self.per_epoch}

    def set_state(self, state: dict) -> None:
        self.layers, self.per_epoch = list(state["layers"]), [list(row) for row in state["per_epoch"]]

    def summary(self) -> dict:
        return {"layers": list(self.layers), "per_epoch": [list(row) for row in self.per_epoch]}


def draw_weight_norms(unit, path):
    """Total weight norm per epoch, one line per model of the pair."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    logs = {m: unit.runs[m][0].instruments.get(WeightNorms.key) for m in unit.models}
    logs = {m: log for m, log in logs.items() if log is not None and log.per_epoch}
    if not logs:
        return None
    fig = Figure(figsize=(4, 3))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for model, log in logs.items():
        ax.plot(range(1, len(log.per_epoch) + 1), [np.sqrt(np.sum(np.square(row))) for row in log.per_epoch], label=model)
    ax.legend()
    fig.savefig(path)
    return path, "Total weight norm at the end of each epoch."


class WeightNorms(Instrument):
    key = "weight_norms"
    log_type = WeightNormLog
    columns = ("weight_norm_growth",)
    compared = {"weight_norm_growth": "weight norm growth"}
    layer_columns = ("weight_norm",)
    figures = (("weight_norms", draw_weight_norms),)

    @classmethod
    def applies(cls, context: Context) -> bool:
        return "layers" in context.through

    def make_callback(self):
        return WeightNormCallback()

    @staticmethod
    def table_columns(log: WeightNormLog) -> dict:
        first, last = np.sum(np.square(log.per_epoch[0])), np.sum(np.square(log.per_epoch[-1]))
        return {"weight_norm_growth": float(np.sqrt(last / first))}

    @staticmethod
    def layer_rows(log: WeightNormLog) -> list[dict]:
        return [{"epoch": e, "layer": name, "weight_norm": v}
                for e, row in enumerate(log.per_epoch, start=1) for name, v in zip(log.layers, row)]  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def _registered():
    # In a user's module this is one line at import. Here it is done while this module's tests run: pytest
    # imports every test module before running any, and the registry is the process's, so an import-time
    # registration would reach every other test module (a resume would then discard checkpoints without it).
    register_instrument(WeightNorms)  # the one line that adds a measurement to gradzoo
    yield
    unregister_instrument(WeightNorms.key)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("instrumented")
    assert main(["run", TINY, "--out", str(out)]) == 0
    assert main(["report", "--results", str(out)]) == 0
    return out, records_mod.load_records(out)


def test_the_registry_lists_the_built_in_instruments_first():
    assert [i.key for i in registered()] == ["gradient_norms", "activations", "temporal", "weight_norms"]


def test_a_registered_instrument_reaches_the_record(tiny):
    out, records = tiny
    assert len(records) == 6
    for r in records:
        log = r.instruments["weight_norms"]
        assert isinstance(log, WeightNormLog), "read back typed, as its registered log type"
        assert len(log.per_epoch) == r.summary.epochs_run == 2
        # The layers with weights are the layers the gradient recorder measured, in the same order.
        assert log.layers == [layer.name for layer in r.gradients.layers]
        assert all(np.isfinite(row).all() and min(row) > 0 for row in log.per_epoch)
        assert log.per_epoch[0] != log.per_epoch[1], "training moved the weights"
    raw = json.loads(gzip.decompress(records_mod.record_path(out, records[0].run_id).read_bytes()))
    assert raw["schema"] == 3 and set(raw["instruments"]) >= {"gradient_norms", "weight_norms"}


def test_it_reaches_the_convergence_comparison_and_gradient_tables(tiny):
    out, records = tiny
    by_id = {r.run_id: r for r in records}
    conv = pd.read_csv(out / "convergence.csv")
    for _, row in conv.iterrows():
        expected = WeightNorms.table_columns(by_id[row.run_id].instruments["weight_norms"])["weight_norm_growth"]
        assert row.weight_norm_growth == pytest.approx(expected)
    comparison = pd.read_csv(out / "comparison.csv")
    assert len(comparison) == 3  # the MLP pair, the RNN pair at each clipnorm
    for _, row in comparison.iterrows():
        runs = conv[(conv.group == row.group) & (conv.sweep.fillna("") == (row.sweep if isinstance(row.sweep, str) else ""))]
        base = runs[runs.model == row.baseline].weight_norm_growth.mean()
        assert row.baseline_weight_norm_growth_mean == pytest.approx(base)
    assert "weight norm growth" in (out / "comparison.md").read_text()
    grads = pd.read_csv(out / "gradients.csv.gz")
    for r in records:
        log = r.instruments["weight_norms"]
        rows = grads[grads.run_id == r.run_id]
        assert len(rows) == 2 * len(log.layers)  # one row per epoch and layer: the two instruments share them
        for e, values in enumerate(log.per_epoch, start=1):
            at = rows[rows.epoch == e].set_index("layer")
            assert [at.weight_norm[name] for name in log.layers] == pytest.approx(values)
            assert at.grad_norm_mean.notna().all()


def test_it_reaches_the_report(tiny):
    out, _ = tiny
    md = (out / "report.md").read_text()
    drawn = sorted((out / "figures").glob("*_weight_norms.png"))
    assert len(drawn) == 3  # one per pair
    for path in drawn:
        assert f"(figures/{path.name})" in md and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_gradient_through_time_is_measured_only_through_time(tiny):
    _, records = tiny
    for r in records:
        if r.model.family == "rnn":
            t = r.temporal
            assert t is not None and t.epochs == [0, 1, 2]  # at initialization and after each epoch
            assert all(len(profile) == 6 for profile in t.profiles)  # one value per input step (length 6)
        else:
            assert "temporal" not in r.instruments and r.temporal is None
        a = r.activations  # measured on every run with a probe batch; a GRU has no plain activation layer
        assert a is not None and (a.layers or r.config.model == "rnn_gru")
        assert len(a.per_epoch) == (2 if a.layers else 0) and len(a.initial) == len(a.layers)


def test_old_records_load_as_they_are_on_disk():
    v1 = records_mod.read_record(DATA / "v1" / "a9e2178a58038cfa.json")
    assert v1.schema == 3 and set(v1.instruments) == {"gradient_norms", "activations", "temporal"}
    assert v1.temporal.profiles and v1.gradients.epoch.mean
    path = sorted((DATA.parent.parent / "results" / "records").glob("*.json.gz"))[0]
    raw = json.loads(gzip.decompress(path.read_bytes()))
    assert raw["schema"] == 2 and "instruments" not in raw  # the committed file is left as it was written
    record = records_mod.read_record(path)
    assert record.schema == 3 and record.activations is not None
    assert record.activations.per_epoch == raw["gradients"]["activations"]["per_epoch"]
    assert record.gradients.steps == raw["gradients"]["steps"] and record.gradients.layers[0].name == raw["gradients"]["layers"][0]["name"]


class _Killed(Exception):
    pass


RESUME = """
epochs = 3
batch_size = 32
[[runs]]
name = "resume"
models = ["mlp_he_relu_bn"]
dataset = "mnist1d"
dataset_params = { num_samples = 300, shape = "flat" }
model_overrides = { depth = 3, width = 8 }
"""


def test_a_resumed_run_keeps_each_instruments_state(tmp_path, monkeypatch, capsys):
    suite, out = tmp_path / "resume.toml", tmp_path / "out"
    suite.write_text(RESUME)
    save = checkpoints.EpochCheckpoint.on_epoch_end

    def save_then_die(self, epoch, logs=None):
        save(self, epoch, logs)
        if epoch == 1:
            raise _Killed  # after the checkpoint of epoch 2, as a kill would

    monkeypatch.setattr(checkpoints.EpochCheckpoint, "on_epoch_end", save_then_die)
    assert main(["run", str(suite), "--out", str(out)]) != 0  # the CLI reports the exception as a bug
    monkeypatch.undo()
    (state_file,) = out.glob("checkpoints/*/state.json")
    state = json.loads(state_file.read_text())
    assert state["epoch"] == 2 and set(state["callbacks"]) >= {i.key for i in registered() if i.key != "temporal"}
    saved = state["callbacks"]["weight_norms"]["per_epoch"]
    assert len(saved) == 2

    assert main(["run", str(suite), "--out", str(out)]) == 0
    (record,) = records_mod.load_records(out)
    assert record.summary.resumed_at_epoch == 2
    log = record.instruments["weight_norms"]
    assert len(log.per_epoch) == 3
    np.testing.assert_allclose(log.per_epoch[:2], saved, rtol=1e-6)  # the record keeps float32 precision
    assert len(record.gradients.epoch.mean) == 3 and len(record.activations.per_epoch) == 3


def test_a_checkpoint_without_an_instruments_state_is_discarded(tmp_path, monkeypatch, capsys):
    suite, out = tmp_path / "resume.toml", tmp_path / "out"
    suite.write_text(RESUME)
    save = checkpoints.EpochCheckpoint.on_epoch_end

    def save_then_die(self, epoch, logs=None):
        save(self, epoch, logs)
        raise _Killed

    monkeypatch.setattr(checkpoints.EpochCheckpoint, "on_epoch_end", save_then_die)
    assert main(["run", str(suite), "--out", str(out)]) != 0  # the CLI reports the exception as a bug
    monkeypatch.undo()
    (state_file,) = out.glob("checkpoints/*/state.json")
    state = json.loads(state_file.read_text())
    del state["callbacks"]["weight_norms"]  # as a checkpoint written before the instrument was registered
    state_file.write_text(json.dumps(state))

    assert main(["run", str(suite), "--out", str(out)]) == 0
    said = capsys.readouterr()
    assert "weight_norms" in said.out + said.err
    (record,) = records_mod.load_records(out)
    assert record.summary.resumed_at_epoch is None and len(record.instruments["weight_norms"].per_epoch) == 3
