"""Registry-driven zoo tests: a newly registered model is covered with no edit here.

Marked `parity`: `.ci/run` runs them again under KERAS_BACKEND=jax.
"""

import functools

import keras
import numpy as np
import pytest

from gradzoo import zoo
from gradzoo.benchmarks.harness.instruments.autodiff import loss_and_gradients
from gradzoo.benchmarks.harness.instruments.gradnorms import layer_groups

pytestmark = pytest.mark.parity

MODELS = zoo.list_models()
NUM_OUTPUTS = 3
BATCH = 2


@functools.lru_cache(maxsize=None)
def built(name, shape):
    keras.utils.set_random_seed(0)
    return zoo.build(name, shape, NUM_OUTPUTS)


def example_batch(shape, seed=0):
    return np.random.default_rng(seed).normal(size=(BATCH, *shape)).astype("float32")


def cases():
    return [(name, shape) for name in MODELS for shape in zoo.get_spec(name).example_input_shapes]


def test_every_family_and_role_is_populated():
    for family in ("mlp", "cnn", "rnn"):
        assert zoo.list_models(family=family, role="baseline")
        assert zoo.list_models(family=family, role="mitigated")
    assert set(zoo.list_models()) == set(zoo.list_models(role="baseline")) | set(zoo.list_models(role="mitigated"))


@pytest.mark.parametrize("name", MODELS)
def test_spec_is_complete(name):
    spec = zoo.get_spec(name)
    assert spec.family in ("mlp", "cnn", "rnn")
    assert spec.role in ("baseline", "mitigated")
    assert spec.partner is not None, f"{name} has no comparison partner"
    assert spec.description and spec.example_input_shapes
    assert "name" in spec.optimizer and "learning_rate" in spec.optimizer
    zoo.make_optimizer(spec.optimizer)  # the recommended settings are valid


@pytest.mark.parametrize("name,shape", cases())
def test_builds_with_right_output_shape(name, shape):
    model = built(name, shape)
    out = model(example_batch(shape), training=False)
    assert tuple(out.shape) == (BATCH, NUM_OUTPUTS)
    assert model.name == name


@pytest.mark.parametrize("name", MODELS)
def test_every_weight_gets_a_finite_gradient(name):
    shape = zoo.get_spec(name).example_input_shapes[0]
    model = built(name, shape)
    y = np.array([0, 1])
    loss, grads = loss_and_gradients(
        model, keras.losses.SparseCategoricalCrossentropy(from_logits=True), example_batch(shape), y
    )
    assert np.isfinite(loss) or zoo.get_spec(name).optimizer.get("name") == "sgd"
    assert len(grads) == len(model.trainable_variables) > 0
    for v, g in zip(model.trainable_variables, grads):
        assert g.shape == tuple(v.shape), v.path
        assert np.all(np.isfinite(g)), f"non-finite gradient for {v.path}"


@pytest.mark.parametrize("name", MODELS)
def test_keras_file_round_trip(name, tmp_path):
    shape = zoo.get_spec(name).example_input_shapes[0]
    model = built(name, shape)
    x = example_batch(shape)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)  # safe_mode=True: no lambdas, registered layers only
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded(x, training=False)),
        keras.ops.convert_to_numpy(model(x, training=False)),
        rtol=1e-5,
        atol=1e-6,
    )


@pytest.mark.parametrize("baseline,mitigated", zoo.pairs())
def test_pairs_share_inputs_and_outputs(baseline, mitigated):
    b, m = zoo.get_spec(baseline), zoo.get_spec(mitigated)
    assert b.role == "baseline" and m.role == "mitigated" and m.baseline == baseline
    assert b.family == m.family and b.input_rank == m.input_rank
    shape = b.example_input_shapes[0]
    assert built(baseline, shape).output_shape == built(mitigated, shape).output_shape


def test_every_baseline_has_a_mitigated_partner():
    for name in zoo.list_models(role="baseline"):
        assert zoo.get_spec(name).partners, name


def _first_last_weight_ratio(name, seed=0):
    keras.utils.set_random_seed(seed)
    model = zoo.build(name, (40,), 10)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(128, 40)).astype("float32")
    y = rng.integers(0, 10, size=128)
    _, grads = loss_and_gradients(model, keras.losses.SparseCategoricalCrossentropy(from_logits=True), x, y)
    weights = [g for g in layer_groups(model.trainable_variables) if g["kind"] == "weight"]
    norm = lambda group: np.sqrt(sum(float(np.sum(grads[i] ** 2)) for i in group["indices"]))  # noqa: E731
    return norm(weights[0]) / norm(weights[-1])


def test_deep_sigmoid_gradient_vanishes_toward_the_input():
    # Each sigmoid layer scales the backward signal by ~0.14 (see zoo.components).
    assert _first_last_weight_ratio("mlp_sigmoid_deep") < 1e-6


def test_he_relu_bn_gradients_stay_comparable():
    assert 1e-2 < _first_last_weight_ratio("mlp_he_relu_bn") < 1e2


def test_large_init_gradient_explodes():
    keras.utils.set_random_seed(0)
    model = zoo.build("mlp_relu_large_init", (40,), 10)
    x = np.random.default_rng(0).normal(size=(64, 40)).astype("float32")
    _, grads = loss_and_gradients(model, keras.losses.SparseCategoricalCrossentropy(from_logits=True), x, np.zeros(64))
    assert np.sqrt(sum(float(np.sum(g**2)) for g in grads)) > 1e4


def test_resnet_params_match_he_et_al():
    # He et al. 2016, table 6: ResNet-20 0.27M, ResNet-56 0.85M, ResNet-110 1.7M parameters.
    for depth, millions in ((20, 0.27), (56, 0.85), (110, 1.7)):
        n = zoo.build(f"resnet_{depth}", (32, 32, 3), 10).count_params() / 1e6
        assert abs(n - millions) / millions < 0.03, (depth, n)


def test_plain_and_resnet_differ_only_by_shortcuts():
    plain, res = built("plain_20_1d", (40, 1)), built("resnet_20_1d", (40, 1))
    assert plain.count_params() == res.count_params()
    assert any(layer.name.endswith("_add") for layer in res.layers)
    assert not any(layer.name.endswith("_add") for layer in plain.layers)


def test_option_b_shortcut_adds_projections():
    model = zoo.build("resnet_20_1d", (40, 1), 10, shortcut="B")
    assert any(layer.name.endswith("_proj") for layer in model.layers)
    assert model.count_params() > built("resnet_20_1d", (40, 1)).count_params()


@pytest.mark.parametrize(
    "activation", ["sigmoid", "tanh", "relu", "leaky_relu", "prelu", "elu", "selu", "gelu"]
)
def test_mlp_activation_override(activation):
    model = zoo.build("mlp_sigmoid_deep", (8,), 2, depth=2, width=4, activation=activation)
    assert model(np.ones((1, 8), "float32")).shape == (1, 2)


@pytest.mark.parametrize(
    "init", ["small_normal", "glorot_uniform", "glorot_normal", "he_normal", "he_uniform", "lecun_normal", "orthogonal", "large_normal"]
)
@pytest.mark.parametrize("normalization", ["none", "batch", "layer"])
def test_mlp_initializer_and_normalization_overrides(init, normalization):
    model = zoo.build("mlp_he_relu_bn", (8,), 2, depth=2, width=4, initializer=init, normalization=normalization)
    assert model(np.ones((1, 8), "float32")).shape == (1, 2)


def test_rnn_sequence_output_and_tokens():
    model = zoo.build("rnn_gru", (12, 1), 10, sequence_output=True, units=8)
    assert model(np.ones((2, 12, 1), "float32")).shape == (2, 12, 10)
    model = zoo.build("rnn_lstm", (12,), 2, vocab_size=50, units=8)
    assert model(np.ones((2, 12), "int32")).shape == (2, 2)


@pytest.mark.parametrize(
    "name,overrides,fragment",
    [
        ("resnet_20", {"depth": 21}, "`depth` must be 6n+2"),
        ("plain_56_1d", {"depth": 5}, "Received: depth=5"),
        ("mlp_sigmoid_deep", {"depth": 0}, "`depth` must be an integer >= 1. Received: depth=0"),
        ("mlp_sigmoid_deep", {"width": -3}, "Received: width=-3"),
        ("mlp_sigmoid_deep", {"activation": "swishy"}, "Received: activation='swishy'"),
        ("mlp_he_relu_bn", {"initializer": "zeros_please"}, "Received: initializer='zeros_please'"),
        ("mlp_he_relu_bn", {"normalization": "group"}, "Received: normalization='group'"),
        ("rnn_lstm", {"units": 0}, "Received: units=0"),
        ("rnn_simple", {"cell": "transformer"}, "Received: cell='transformer'"),
        ("rnn_simple", {"recurrent_initializer": "big"}, "Received: recurrent_initializer='big'"),
    ],
)
def test_invalid_override_names_argument_and_value(name, overrides, fragment):
    shape = zoo.get_spec(name).example_input_shapes[0]
    with pytest.raises(ValueError, match=fragment.replace("(", r"\(").replace(")", r"\)").replace("+", r"\+")):
        zoo.build(name, shape, 10, **overrides)


def test_unknown_override_is_refused():
    with pytest.raises(TypeError):
        zoo.build("mlp_sigmoid_deep", (8,), 2, dropout=0.5)


def test_unknown_model_lists_available():
    with pytest.raises(ValueError) as info:
        zoo.build("resnet_19", (32, 32, 3), 10)
    message = str(info.value)
    assert "Unknown model 'resnet_19'" in message and "resnet_20" in message and "mlp_sigmoid_deep" in message


def test_wrong_input_rank_is_refused():
    with pytest.raises(ValueError, match="expects inputs of rank 3"):
        zoo.build("resnet_20", (40, 1), 10)
