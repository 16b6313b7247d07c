"""The doctor agrees with the harness on the zoo's own pairs, each model loaded from a `.keras` file
by `gradzoo doctor` as a user would load it.

The harness judges feed-forward nets over epoch 1 from initialization, so the
MLP and CNN models are freshly built (and saved); it judges recurrent nets by
the gradient through time at the end of training, so the RNNs are the shipped
pretrained files, whose manifest carries the harness's own verdict. The
expected verdicts are those of the reference results (`results/comparison.md`):
the deep sigmoid MLP vanishes and He + ReLU + BatchNorm is healthy; plain-56's
raw gradient norm explodes and ResNet-56 is healthy; the SimpleRNN's gradient
through time vanishes and the GRU's and LSTM's are healthy.
"""

import json

import keras
import pytest

from gradzoo import zoo
from gradzoo.benchmarks.cli import main

FRESH = [
    ("mlp_sigmoid_deep", ["--dataset", "mnist1d", "--param", "shape=flat"], "vanishing", "residual"),  # ranked by the depth records: BN alone explodes past 50 layers
    ("mlp_he_relu_bn", ["--dataset", "mnist1d", "--param", "shape=flat"], "healthy", None),
]
PRETRAINED = [("rnn_simple.adding", "gated_rnn"), ("rnn_gru.adding", None)]
FAST = ["--steps", "3", "--eager", "--json"]  # the harness's batch of 128; few steps, no compile


def _doctor(args, capsys) -> dict:
    capsys.readouterr()
    assert main(["doctor", *args]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("name, data, expected, first_fix", FRESH, ids=[f[0] for f in FRESH])
def test_fresh_zoo_models_get_the_harness_verdict(name, data, expected, first_fix, tmp_path, capsys):
    check_fresh(name, data, expected, first_fix, tmp_path, capsys)


def check_fresh(name, data, expected, first_fix, tmp_path, capsys):
    """Builds a zoo model, saves it, runs `gradzoo doctor` on the file, and checks the verdict and first fix."""
    spec = zoo.get_spec(name)
    shape = (40,) if "shape=flat" in data else (40, 1)
    model = zoo.build(name, shape, 10)
    model.compile(optimizer=zoo.make_optimizer(spec.optimizer), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    path = tmp_path / f"{name}.keras"
    model.save(path)
    d = _doctor([str(path), *data, *FAST], capsys)
    assert d["verdict"] == expected, d["verdict_sentence"]
    assert d["model"]["name"] == name and not d["setup"]["assumed"]
    assert not any("expects probabilities" in note for note in d["notes"])
    if first_fix is None:
        assert d["suggestions"] == []
    else:
        assert d["suggestions"][0]["fix"] == first_fix, [s["fix"] for s in d["suggestions"]]


@pytest.mark.parametrize("name, first_fix", PRETRAINED, ids=[p[0] for p in PRETRAINED])
def test_pretrained_recurrent_nets_get_the_harness_verdict_through_time(name, first_fix, capsys):
    info = zoo.pretrained_info(name)
    path = zoo.pretrained.WEIGHTS_DIR / info["file"]
    d = _doctor([str(path), "--dataset", info["dataset"], "--param", f"length={info['dataset_params']['length']}", *FAST],
                capsys)  # fmt: skip
    assert d["verdict"] == info["gradients"]["verdict"], d["verdict_sentence"]
    assert d["basis"]["basis"] == "early/late input steps"
    assert any(r["kind"] == "time" for r in d["regions"])
    if first_fix is not None:
        assert d["suggestions"][0]["fix"] == first_fix
        assert "rnn_simple" in d["suggestions"][0]["evidence"]


def test_a_fresh_simple_rnn_is_collapsing_during_the_probe_and_gets_gated_cells(tmp_path, capsys):
    # Freshly built, a SimpleRNN still passes the gradient back through time (its verdict
    # comes at the end of training); the doctor sees the collapse under way in the probe.
    model = zoo.build("rnn_simple", (50, 2), 1)
    model.compile(optimizer=zoo.make_optimizer(zoo.get_spec("rnn_simple").optimizer), loss="mse")
    model.save(tmp_path / "rnn.keras")
    d = _doctor([str(tmp_path / "rnn.keras"), "--dataset", "adding", "--param", "length=50", "--json"], capsys)
    t = d["temporal"]
    assert t["after_ratio"] < t["init_ratio"] / 10, t
    assert d["suggestions"][0]["fix"] == "gated_rnn" and "during the probe" in d["suggestions"][0]["why"]


# The CNN pair at depth 56: plain-56's raw gradient norm explodes, ResNet-56 is healthy (the slowest models
# the doctor's tests load).
CNN = [
    ("plain_56_1d", ["--dataset", "mnist1d"], "exploding", "residual"),
    ("resnet_56_1d", ["--dataset", "mnist1d"], "healthy", None),
]


@pytest.mark.parametrize("name, data, expected, first_fix", CNN, ids=[c[0] for c in CNN])
def test_fresh_zoo_cnns_get_the_harness_verdict(name, data, expected, first_fix, tmp_path, capsys):
    check_fresh(name, data, expected, first_fix, tmp_path, capsys)
