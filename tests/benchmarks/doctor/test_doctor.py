"""The doctor on models the zoo does not contain: verdicts, regions, suggestions with evidence,
a user's model left untouched, and the three outputs (text, JSON, one HTML page)."""

import json

import keras
import numpy as np
import pytest

from gradzoo.benchmarks.analysis.verdicts import VANISHING_RATIO
from gradzoo.benchmarks.doctor import diagnose
from gradzoo.benchmarks.doctor.anatomy import anatomy
from gradzoo.benchmarks.doctor.diagnosis import layer_regions, time_regions, where
from gradzoo.benchmarks.doctor.prepare import infer_loss
from gradzoo.benchmarks.doctor.evidence_types import Evidence
from gradzoo.benchmarks.doctor.suggest import strength, suggestions


@keras.saving.register_keras_serializable(package="gradzoo_tests")
class ResidualMLP(keras.Model):
    """A well-built subclassed net: He init, LayerNorm, GELU, residual blocks."""

    def __init__(self, width=32, blocks=3, classes=4, **kwargs):
        super().__init__(**kwargs)
        self.width, self.blocks, self.classes = width, blocks, classes
        self.stem = keras.layers.Dense(width, kernel_initializer="he_normal", name="stem")
        self.norms = [keras.layers.LayerNormalization(name=f"ln_{i}") for i in range(blocks)]
        self.dense = [keras.layers.Dense(width, activation="gelu", kernel_initializer="he_normal", name=f"block_{i}")
                      for i in range(blocks)]  # fmt: skip
        self.head = keras.layers.Dense(classes, name="head")

    def call(self, x):
        h = self.stem(x)
        for norm, dense in zip(self.norms, self.dense):
            h = h + dense(norm(h))
        return self.head(h)

    def get_config(self):
        return {**super().get_config(), "width": self.width, "blocks": self.blocks, "classes": self.classes}


class Unregistered(keras.Model):
    def __init__(self):
        super().__init__()
        self.a = keras.layers.Dense(16, activation="relu", kernel_initializer="he_normal")
        self.b = keras.layers.Dense(4)

    def call(self, x):
        return self.b(self.a(x))


def _data(n=256, features=12, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype("float32")
    y = (np.argmax(x[:, :classes], axis=1)).astype("int32")
    return x, y


def _state(model):
    weights = [np.array(w) for w in model.get_weights()]
    optimizer = getattr(model, "optimizer", None)
    opt = [np.array(keras.ops.convert_to_numpy(v)) for v in optimizer.variables] if optimizer is not None else None
    return weights, opt


def _same(a, b) -> bool:
    return len(a) == len(b) and all(np.array_equal(u, v) for u, v in zip(a, b))


def test_a_well_built_subclassed_model_outside_the_zoo_is_healthy_and_left_untouched():
    x, y = _data()
    model = ResidualMLP()
    model(x[:1])
    weights, _ = _state(model)
    d = diagnose(model, x, y, steps=6, batch_size=32)
    assert d.verdict == "healthy", d.text()
    assert d.setup["probed"] and d.setup["assumed"], d.setup
    assert d.setup["loss"] == "SparseCategoricalCrossentropy(from_logits=True)"
    assert "not compiled" in d.text() and "assumed" in d.text()
    assert [layer["name"] for layer in d.layers] == ["stem", "block_0", "block_1", "block_2", "head"]
    assert d.suggestions == []
    assert _same(weights, _state(model)[0]), "the user's weights changed"
    assert getattr(model, "optimizer", None) is None, "the user's model was compiled by the doctor"


@pytest.mark.parity
def test_a_compiled_functional_cnn_keeps_its_weights_and_optimizer_state_bit_for_bit():
    keras.utils.set_random_seed(1)
    x = np.random.default_rng(1).normal(size=(192, 16, 2)).astype("float32")
    y = (x[:, :8, 0].mean(axis=1) > 0).astype("int32")
    inputs = keras.Input((16, 2))
    h = keras.layers.Conv1D(8, 3, padding="same", kernel_initializer="he_normal", name="conv_0")(inputs)
    h = keras.layers.BatchNormalization(name="bn_0")(h)
    h = keras.layers.Activation("relu", name="act_0")(h)
    h = keras.layers.Conv1D(8, 3, padding="same", kernel_initializer="he_normal", name="conv_1")(h)
    h = keras.layers.GlobalAveragePooling1D()(h)
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(h))
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9, clipnorm=0.1),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))  # fmt: skip
    model.fit(x, y, batch_size=64, epochs=1, verbose=0)  # a model mid-training: its optimizer has state
    before = _state(model)
    iterations = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
    d = diagnose(model, x, y, steps=5, batch_size=32)
    after = _state(model)
    assert _same(before[0], after[0]) and _same(before[1], after[1])
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == iterations
    assert d.verdict == "healthy" and not d.setup["assumed"]
    assert d.setup["optimizer"] == "SGD(learning_rate=0.05, clipnorm=0.1)"
    g = d.global_norm
    # clipnorm clips each variable's gradient: after clipping is never larger, and it clipped here.
    assert g["probe_after_clipping_mean"] <= g["probe_mean"] and g["clip_rate"] > 0
    assert d.activations["layers"] == [{"name": "act_0", "activation": "relu"}]
    assert len(d.measurements["probe"]["norms"]) == 5


def test_an_unregistered_subclassed_model_is_judged_at_its_weights_and_says_why_there_was_no_probe():
    x, y = _data()
    model = Unregistered()
    model(x[:1])
    weights, _ = _state(model)
    d = diagnose(model, x, y, steps=3, batch_size=32)
    assert not d.setup["probed"] and d.measurements["probe"] is None
    assert any("No probe training" in n and "register_keras_serializable" in n for n in d.notes), d.notes
    assert d.verdict == "healthy" and d.norms_from == "init"
    assert _same(weights, _state(model)[0])


def test_a_deep_sigmoid_stack_is_vanishing_with_regions_where_and_evidence_in_numbers():
    keras.utils.set_random_seed(0)
    x, y = _data(features=12)
    model = keras.Sequential([keras.Input((12,))] + [
        keras.layers.Dense(32, activation="sigmoid", kernel_initializer=keras.initializers.RandomNormal(stddev=0.05),
                           name=f"d{i}") for i in range(12)] + [keras.layers.Dense(4, name="out")])  # fmt: skip
    d = diagnose(model, x, y, steps=4, batch_size=64, run_eagerly=True)
    assert d.verdict == "vanishing", d.text()
    first = d.regions[0]
    assert first["kind"] == "layers" and first["first"] == "d0" and first["verdict"] == "vanishing"
    assert first["ratio_max"] < VANISHING_RATIO
    assert d.regions[-1]["last"] == "out" and d.regions[-1]["verdict"] == "healthy"
    assert d.where["crossing"]["direction"] == "collapse" and d.where["per_layer_factor"] < 0.5
    # The shipped evidence ranks the two: the depth records show BN alone exploding past 50 layers,
    # so skip connections may lead; both must head the list.
    fixes = [s["fix"] for s in d.suggestions]
    assert set(fixes[:2]) == {"he_relu_bn", "residual"}, fixes
    bn = next(s for s in d.suggestions if s["fix"] == "he_relu_bn")
    assert "sigmoid" in bn["why"] and "small init" in bn["why"] and "no normalization" in bn["why"]
    assert "mlp_sigmoid_deep" in bn["evidence"] and "first/last-layer gradient ratio" in bn["evidence"]
    text = d.text()
    assert "VANISHING" in text and "Evidence:" in text and "d0 … " in text


def test_an_unbuilt_model_is_one_sentence():
    from gradzoo.benchmarks.errors import UserError

    x, y = _data()
    with pytest.raises(UserError, match="is not built"):
        diagnose(keras.Sequential([keras.layers.Dense(4)]), x, y)


def test_infer_loss_reads_labels_and_outputs():
    logits = np.array([[2.0, -1.0, 0.5]])
    probs = np.array([[0.7, 0.2, 0.1]])
    ints = np.array([1])
    assert infer_loss(logits, ints).get_config()["from_logits"] is True
    assert infer_loss(probs, ints).get_config()["from_logits"] is False
    assert isinstance(infer_loss(np.array([[0.3]]), ints), keras.losses.BinaryCrossentropy)
    assert isinstance(infer_loss(logits, np.array([[0.0, 1.0, 0.0]])), keras.losses.CategoricalCrossentropy)
    assert isinstance(infer_loss(np.array([[0.3, 2.0]]), np.array([[0.5, 1.5]])), keras.losses.MeanSquaredError)


def test_regions_group_layers_by_the_harness_thresholds():
    names = ["a", "b", "c", "d", "e"]
    norms = [1e-9, 1e-5, 2e-3, 0.5, 1.0]
    ratios, regions = layer_regions(names, norms)
    assert ratios[-1] == 1.0
    assert [(r["first"], r["last"], r["verdict"], r["count"]) for r in regions] == [
        ("a", "b", "vanishing", 2), ("c", "e", "healthy", 3)]  # fmt: skip
    w = where(names, norms)
    assert w["crossing"] == {"layer": "b", "ratio": 1e-5, "direction": "collapse"}
    assert w["steepest"][0]["layer"] == "a" and w["steepest"][0]["factor"] == pytest.approx(1e-4)
    blowup = where(["a", "b", "c"], [5e3, 2.0, 1.0])
    assert blowup["crossing"]["direction"] == "blow-up" and layer_regions(["a", "b", "c"], [5e3, 2.0, 1.0])[1][0]["verdict"] == "exploding"
    steps = time_regions([1e-9] * 8 + [1.0, 1.0], 0.1)
    assert [(r["first"], r["verdict"]) for r in steps] == [("step 1", "vanishing"), ("step 9", "healthy")]


def _pair(fix, family, b_verdict, m_verdict, b_score, m_score, depth=20):
    side = dict(first_last_ratio=1e-10, early_late_ratio=None, early_late_ratio_init=None, peak_global_norm=1.0,
                clipping=None, clip_rate=None, saturated=None, dead=0.01, reached_target="0/1", diverged="0/1")  # fmt: skip
    return {"fix": fix, "family": family, "suite": "s", "group": "g", "sweep": "", "dataset": "mnist1d", "metric": "accuracy",
            "metric_mode": "max", "chance": 0.1, "target": 0.6, "seeds": 1, "weight_layers": depth + 1, "depth": depth,
            "length": None, "baseline": {**side, "model": f"base_{fix}", "verdict": b_verdict, "best_score": b_score},
            "mitigated": {**side, "model": f"fix_{fix}", "verdict": m_verdict, "best_score": m_score,
                          "first_last_ratio": 2.0}}  # fmt: skip


def test_suggestions_rank_by_coverage_and_strength_and_cite_the_closest_pair():
    evidence = Evidence.model_validate({"fixes": {
        "he_relu_bn": {"title": "he", "pairs": [_pair("he_relu_bn", "mlp", "vanishing", "healthy", 0.1, 0.35, depth=20),
                                                _pair("he_relu_bn", "mlp", "vanishing", "healthy", 0.1, 0.5, depth=5)]},
        "residual": {"title": "residual", "pairs": [_pair("residual", "cnn", "exploding", "healthy", 0.1, 0.6, depth=56)]},
    }})  # fmt: skip
    # Same-family evidence that turned the verdict counts fully; another family's counts half.
    assert strength(evidence, "he_relu_bn", "mlp") == pytest.approx(0.5 + 0.5 * 0.65)
    assert strength(evidence, "residual", "mlp") == pytest.approx(0.5 * (0.5 + 0.5 * 1.0))
    assert strength(evidence, "clipping", "mlp") == 0.0
    keras.utils.set_random_seed(0)
    x, y = _data(features=12)
    model = keras.Sequential([keras.Input((12,))] + [
        keras.layers.Dense(16, activation="tanh", kernel_initializer=keras.initializers.RandomNormal(stddev=0.02))
        for _ in range(11)] + [keras.layers.Dense(4)])  # fmt: skip
    d = diagnose(model, x, y, steps=2, batch_size=64, evidence=evidence, run_eagerly=True)
    fixes = [s["fix"] for s in d.suggestions]
    assert fixes[:2] == ["he_relu_bn", "residual"], d.text()
    assert [s["score"] for s in d.suggestions] == sorted((s["score"] for s in d.suggestions), reverse=True)
    top = d.suggestions[0]
    # 12 weight layers are closer to the depth-20 pair (21 weight layers) than to depth 5 (6) on a log scale.
    assert "depth-20 MLP pair" in top["evidence"] and "1e-10 to about 2" in top["evidence"] and "0.1 to 0.35" in top["evidence"]
    assert "depth-56 CNN pair" in d.suggestions[1]["evidence"]
    assert suggestions(d, anatomy(model), Evidence())[0]["evidence"].startswith("gradzoo's reference records hold no run")


def test_json_is_strict_and_the_html_page_is_self_contained(tmp_path):
    x, y = _data()
    model = ResidualMLP(blocks=1)
    model(x[:1])
    d = diagnose(model, x, y, steps=2, batch_size=64)
    paths = d.write_html(tmp_path / "out")
    data = json.loads(paths["json"].read_text())
    assert data["verdict"] == d.verdict and data["schema"] == 1 and data["thresholds"]["vanishing_ratio"] == VANISHING_RATIO
    json.dumps(d.to_json(), allow_nan=False)
    page = paths["html"].read_text()
    assert page.count("data:image/png;base64,") == 1 and "HEALTHY" in page and "<table>" in page
    assert paths["figure"].stat().st_size > 1000


def test_a_crossentropy_that_expects_probabilities_on_logits_is_named():
    x, y = _data()
    model = keras.Sequential([keras.Input((12,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(4)])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")  # from_logits=False on a linear head
    d = diagnose(model, x, y, steps=2, batch_size=64, run_eagerly=True)
    assert any("expects probabilities" in note and "from_logits=True" in note for note in d.notes), d.notes
    assert "expects probabilities" in d.text()
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    assert not any("expects probabilities" in note for note in diagnose(model, x, y, steps=2, batch_size=64).notes)


def test_a_large_init_relu_stack_explodes_and_the_doctor_names_the_init_and_clipping():
    keras.utils.set_random_seed(0)
    x, y = _data(features=12)
    large = keras.initializers.VarianceScaling(scale=8.0, mode="fan_in", distribution="untruncated_normal", seed=0)
    model = keras.Sequential([keras.Input((12,))] + [keras.layers.Dense(64, activation="relu", kernel_initializer=large)
                                                      for _ in range(14)] + [keras.layers.Dense(4)])  # fmt: skip
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    d = diagnose(model, x, y, steps=3, batch_size=64, run_eagerly=True)
    assert d.verdict == "exploding", d.text()
    assert d.basis["diverged"] or d.basis["peak_global_norm"] > 1e3
    fixes = [s["fix"] for s in d.suggestions]
    assert set(fixes) == {"clipping", "he_init"}, fixes  # not the skips, not the units a divergence killed
    init = next(s for s in d.suggestions if s["fix"] == "he_init")
    assert "2.8" in init["why"] and "instead of a larger one" in init["change"]
