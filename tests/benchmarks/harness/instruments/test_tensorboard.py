"""TensorBoard events from the gradient recorder and `gradzoo run --tensorboard`, read back with
TensorBoard's own event reader and checked against the recorder's summary and the run records."""

import math

import keras
import numpy as np
import pytest
from helpers import cli_error
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from gradzoo.benchmarks.cli import main
from gradzoo.benchmarks.harness import records as records_mod
from gradzoo.benchmarks.harness.instruments.recorder import GradientRecorder


def _events(log_dir) -> EventAccumulator:
    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "histograms": 0})
    acc.Reload()
    return acc


def _series(acc, tag):
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def _close(a, b) -> bool:
    # Event files store scalars as float32.
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-30)


@pytest.mark.parity
def test_recorder_events_match_its_summary(tmp_path):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 6)).astype("float32")
    y = rng.integers(0, 3, 96)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu", name="hidden"),
                              keras.layers.Dense(8, activation="tanh", name="squash"), keras.layers.Dense(3, name="head")])  # fmt: skip
    model.compile(optimizer=keras.optimizers.SGD(0.1, clipnorm=0.05), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    recorder = GradientRecorder(first_steps=4, stride=3, probe_x=x[:32], log_dir=tmp_path / "tb")
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[recorder])
    s = recorder.summary()
    acc = _events(tmp_path / "tb")
    names = [layer["name"] for layer in s["layers"]]
    assert names == ["hidden", "squash", "head"]

    for j, name in enumerate(names):
        series = _series(acc, f"gradient_norm/{name}")
        assert [step for step, _ in series] == s["steps"]
        assert all(_close(v, row[j]) for (_, v), row in zip(series, s["norms"]))
        epoch = _series(acc, f"epoch_gradient_norm/{name}")
        assert [step for step, _ in epoch] == [0, 1]
        assert all(_close(v, row[j]) for (_, v), row in zip(epoch, s["epoch"]["mean"]))
    for tag, key in (("global_norm/before_clipping", "global_norm_pre"), ("global_norm/after_clipping", "global_norm_post")):
        assert all(_close(v, w) for (_, v), w in zip(_series(acc, tag), s[key]))
    assert [v for _, v in _series(acc, "epoch_clip_rate")] == pytest.approx(s["epoch"]["clip_rate"])
    assert s["epoch"]["clip_rate"][0] > 0  # clipnorm=0.05 clips: the two series differ
    assert [v for _, v in _series(acc, "epoch_global_norm/before_clipping_max")] == pytest.approx(s["epoch"]["global_pre_max"])
    for j, info in enumerate(s["activations"]["layers"]):
        tag = f"epoch_{'dead' if info['activation'] == 'relu' else 'saturated'}/{info['name']}"
        assert [v for _, v in _series(acc, tag)] == pytest.approx([row[j] for row in s["activations"]["per_epoch"]])
    histograms = acc.Histograms("epoch_gradient_norm_log10")
    assert [h.step for h in histograms] == [0, 1]
    for h, means in zip(histograms, s["epoch"]["mean"]):
        logs = np.log10(means)
        assert h.histogram_value.num == len(names) and sum(h.histogram_value.bucket) == len(names)
        assert h.histogram_value.min == pytest.approx(logs.min()) and h.histogram_value.max == pytest.approx(logs.max())
    assert recorder.get_config()["log_dir"] == str(tmp_path / "tb")
    assert GradientRecorder(**recorder.get_config()).log_dir == str(tmp_path / "tb")


def test_gradzoo_run_writes_one_event_directory_per_run(tmp_path, capsys):
    suite = tmp_path / "tb_suite.toml"
    suite.write_text(
        'epochs = 2\nseeds = 1\nbatch_size = 32\n\n[[runs]]\nname = "mlp"\nmodels = ["mlp_sigmoid_deep", "mlp_he_relu_bn"]\n'
        'dataset = "mnist1d"\ndataset_params = { num_samples = 200, shape = "flat" }\nmodel_overrides = { depth = 3, width = 8 }\n'
    )
    tb = tmp_path / "tb"
    assert main(["run", str(suite), "--out", str(tmp_path / "out"), "--tensorboard", str(tb)]) == 0
    assert f"tensorboard --logdir {tb}" in capsys.readouterr().out
    records = records_mod.load_records(tmp_path / "out")
    assert sorted(p.name for p in tb.iterdir()) == sorted(r.run_id for r in records)
    for r in records:
        acc = _events(tb / r.run_id)
        g = r.gradients
        for j, layer in enumerate(g.layers):
            values = [v for _, v in _series(acc, f"epoch_gradient_norm/{layer.name}")]
            assert all(_close(v, row[j]) for v, row in zip(values, g.epoch.mean)) and len(values) == 2
        assert [step for step, _ in _series(acc, "global_norm/before_clipping")] == g.steps
        # The activations instrument writes its fractions beside the recorder's norms, under the recorder's tags.
        a = r.activations
        assert a.layers, "the sigmoid and ReLU MLPs have activation layers"
        for j, info in enumerate(a.layers):
            tag = f"epoch_{'dead' if info.activation == 'relu' else 'saturated'}/{info.name}"
            assert [v for _, v in _series(acc, tag)] == pytest.approx([row[j] for row in a.per_epoch])


def test_tensorboard_with_no_gradients_is_refused_before_anything_runs(tmp_path, capsys):
    err = cli_error(main, ["run", "quick", "--out", str(tmp_path / "out"), "--tensorboard", str(tmp_path / "tb"),
                           "--no-gradients"], capsys)  # fmt: skip
    assert "--no-gradients" in err and not (tmp_path / "out").exists() and not (tmp_path / "tb").exists()
