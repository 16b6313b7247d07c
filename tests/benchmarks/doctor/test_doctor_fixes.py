"""The doctor reads fixes as declared data: a zoo pair is cited from its declaration alone, whatever its
name, and a user's model is read for the fixes it already applies, which the doctor never advises."""

import keras
import numpy as np
import pytest
from helpers import make_record

from gradzoo import zoo
from gradzoo.benchmarks.doctor import diagnose
from gradzoo.benchmarks.doctor.anatomy import anatomy
from gradzoo.benchmarks.doctor.evidence_types import Evidence, EvidenceFix
from gradzoo.benchmarks.doctor.evidence import FIXES, evidence_text, pair_entries
from gradzoo.zoo import registry


@pytest.fixture
def alpha_omega(monkeypatch):
    """A pair with names no rule could guess: `alpha`, and `omega` declaring skip connections (gone after the test)."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    mlp = zoo.get_spec("mlp_sigmoid_deep")
    zoo.register("alpha", family="mlp", role="baseline", description="a plain deep stack")(mlp.builder)
    zoo.register("omega", family="mlp", role="mitigated", baseline="alpha", description="the same stack with shortcuts",
                 fixes=("skip_connections",))(mlp.builder)  # fmt: skip
    yield
    assert "omega" in zoo.list_models()


def test_a_pair_with_unguessable_names_is_evidence_and_advice_from_its_declaration(alpha_omega):
    records = [make_record("alpha", "baseline", 1e-12, best=0.1, seed=s) for s in (0, 1)] + [
        make_record("omega", "mitigated", 0.4, best=0.55, seed=s, baseline="alpha") for s in (0, 1)]  # fmt: skip
    entries, skipped = pair_entries(records)
    assert skipped == [] and [e.fix for e in entries] == ["residual"]
    e = entries[0]
    assert (e.baseline.model, e.mitigated.model, e.seeds) == ("alpha", "omega", 2)
    assert e.baseline.verdict == "vanishing" and e.mitigated.verdict == "healthy"
    evidence = Evidence(fixes={"residual": EvidenceFix(title=FIXES["residual"], pairs=entries)})
    evidence_text(evidence)  # strict JSON, as shipped

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(256, 12)).astype("float32"), rng.integers(0, 4, 256)
    model = keras.Sequential([keras.Input((12,))] + [
        keras.layers.Dense(32, activation="sigmoid", kernel_initializer=keras.initializers.RandomNormal(stddev=0.05))
        for _ in range(12)] + [keras.layers.Dense(4)])  # fmt: skip
    d = diagnose(model, x, y, steps=2, batch_size=64, evidence=evidence, run_eagerly=True)
    residual = next(s for s in d.suggestions if s["fix"] == "residual")
    assert residual["advises"] == ["skip_connections"]
    assert "`alpha` → `omega`" in residual["evidence"] and "0.1 to 0.55" in residual["evidence"], residual["evidence"]
    assert residual["strength"] > 0


def test_an_undeclared_pair_is_left_out_and_said_so(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    entries, skipped = pair_entries([make_record("gone", "baseline"), make_record("gone_too", "mitigated", baseline="gone")])
    assert entries == [] and skipped == ["s/g -: gone -> gone_too"]


def test_the_parts_a_user_model_already_has_are_read_as_fixes():
    inputs = keras.Input((8,))
    h = keras.layers.Dense(16, kernel_initializer="he_normal")(inputs)
    h = keras.layers.BatchNormalization()(h)
    h = keras.layers.ReLU()(h)
    branch = keras.layers.Dense(16, kernel_initializer="he_normal", activation="relu")(h)
    skip = keras.layers.Add()([h, keras.layers.Dense(16, kernel_initializer="he_normal")(branch)])  # depths differ
    model = keras.Model(inputs, keras.layers.Dense(2)(skip))
    parts = anatomy(model, keras.optimizers.SGD(clipnorm=1.0))
    assert parts.skips == 1 and {"skip_connections", "clipping", "relu", "he_init"} <= set(parts.fixes)
    assert "batch_norm" not in parts.fixes  # the branch's Dense has no normalization before its ReLU

    # Two branches of the same depth added together give no shorter path: no skip connection.
    a, b = keras.layers.Dense(4, activation="tanh")(inputs), keras.layers.Dense(4, activation="tanh")(inputs)
    parallel = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Add()([a, b])))
    parts = anatomy(parallel)
    assert parts.skips == 0 and parts.merges == 1 and not {"skip_connections", "clipping", "relu"} & set(parts.fixes)

    rnn = keras.Sequential([keras.Input((5, 3)), keras.layers.GRU(8), keras.layers.Dense(1)])
    rnn.compile(optimizer=keras.optimizers.Adam(global_clipnorm=1.0), loss="mse")
    assert {"gating", "clipping"} <= set(anatomy(rnn).fixes)


def test_mobilenet_v2_with_dead_units_is_not_told_to_add_the_batchnorm_it_has():
    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, weights=None, classes=10,
                                           classifier_activation=None)  # fmt: skip
    # A learning rate of 1 kills ReLU6 units within three steps: the dead-unit rule has something to say.
    model.compile(optimizer=keras.optimizers.SGD(1.0), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(128, 32, 32, 3)).astype("float32"), rng.integers(0, 10, 128)
    d = diagnose(model, x, y, steps=3, batch_size=64, run_eagerly=True)
    has = set(d.anatomy["fixes"])
    assert {"batch_norm", "skip_connections", "relu"} <= has, has  # BatchNorm before every ReLU6, inverted residuals
    dead = [s for s in d.suggestions if "dead ReLU units" in s["change"]]
    assert dead, [s["change"] for s in d.suggestions]  # the rule that used to advise BatchNorm did fire
    for s in d.suggestions:
        assert not set(s["advises"]) & has, s
        assert "BatchNormalization" not in s["change"] and "skip" not in s["change"], s["change"]
