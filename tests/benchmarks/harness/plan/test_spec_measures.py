"""The planner builds a model for a dataset from what the model declares it is measured through,
not from its family: only a recurrence (measured through time) gives per-step outputs or embeds tokens."""

import types

import pytest

from gradzoo import zoo
from gradzoo.benchmarks.errors import UserError
from gradzoo.benchmarks.harness.plan.spec import build_for_dataset
from gradzoo.zoo import registry


def _signature(**kw):
    base = dict(input_shape=(6, 1), num_outputs=2, sequence_output=False, input_dtype="float32", vocab_size=None)
    return types.SimpleNamespace(**{**base, **kw})


def test_per_step_outputs_and_tokens_need_a_model_measured_through_time():
    with pytest.raises(UserError, match="needs one per time step; use an rnn model"):
        build_for_dataset("mlp_sigmoid_deep", _signature(sequence_output=True), {"depth": 2, "width": 4})
    with pytest.raises(UserError, match="only rnn models embed tokens"):
        build_for_dataset("resnet_20_1d", _signature(input_shape=(6,), input_dtype="int32", vocab_size=5), {})
    model = build_for_dataset("rnn_simple", _signature(sequence_output=True), {"units": 4})
    assert model.output.shape == (None, 6, 2)


def test_a_newly_registered_recurrence_is_planned_from_its_declaration(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    rnn = zoo.get_spec("rnn_simple")
    zoo.register("zeta", family="rnn", role="baseline", description="a recurrence by another name",
                 measured_through=("layers", "time"))(rnn.builder)  # fmt: skip
    model = build_for_dataset("zeta", _signature(input_shape=(6,), input_dtype="int32", vocab_size=5), {"units": 4})
    assert [layer.name for layer in model.layers][:2] == ["inputs", "embedding"]


def test_the_declaration_not_the_family_decides(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    rnn = zoo.get_spec("rnn_simple")
    zoo.register("eta", family="rnn", role="baseline", description="declared as measured through layers only",
                 measured_through=("layers",))(rnn.builder)  # fmt: skip
    with pytest.raises(UserError, match="only rnn models embed tokens"):
        build_for_dataset("eta", _signature(input_shape=(6,), input_dtype="int32", vocab_size=5), {"units": 4})
