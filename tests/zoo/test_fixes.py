"""Every zoo model declares, as data, what it changes against its baseline and what it can be measured
through; registration refuses a fix outside the vocabulary in one sentence."""

import pytest

from gradzoo import zoo
from gradzoo.zoo import registry
from gradzoo.zoo.fixes import MEASURES


@pytest.mark.parametrize("name", zoo.list_models())
def test_every_model_declares_its_fixes_from_the_vocabulary(name):
    spec = zoo.get_spec(name)
    assert set(spec.fixes) <= set(zoo.FIXES), spec.fixes
    if spec.role == "mitigated":
        assert spec.fixes, f"{name} is mitigated but declares no fix"
    else:
        assert spec.fixes == ()
    measured = zoo.measured_through(name)
    assert "layers" in measured and measured <= set(MEASURES)


def test_the_vocabulary_names_each_fix_and_its_paper():
    for key, fix in zoo.FIXES.items():
        assert fix.key == key and fix.name and fix.paper and fix.changes


def test_declarations_say_what_the_builders_change():
    # Read against the builders: a recurrence is measured through time; clipping is in the optimizer.
    for name in zoo.list_models():
        spec = zoo.get_spec(name)
        assert ("time" in spec.measured_through) == (spec.family == "rnn"), name
        clips = any(k in spec.optimizer for k in ("clipnorm", "clipvalue", "global_clipnorm"))
        baseline_clips = spec.baseline is not None and any(
            k in zoo.get_spec(spec.baseline).optimizer for k in ("clipnorm", "clipvalue", "global_clipnorm"))  # fmt: skip
        assert ("clipping" in spec.fixes) == (clips and not baseline_clips), name
        if "he_init" in spec.fixes:
            assert spec.defaults.get("initializer") == "he_normal", name
        if "batch_norm" in spec.fixes:
            assert spec.defaults.get("normalization") == "batch", name
        if "gating" in spec.fixes:
            assert spec.defaults.get("cell") in ("lstm", "gru"), name
    assert zoo.get_spec("resnet_56").fixes == ("skip_connections",)
    assert zoo.get_spec("plain_56").fixes == ()


@pytest.fixture
def scratch_registry(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


def test_an_unknown_fix_is_one_sentence_naming_it(scratch_registry):
    with pytest.raises(ValueError, match=r"Model 'x' declares an unknown fix 'dropout'; known fixes: he_init, ") as e:
        zoo.register("x", family="mlp", role="mitigated", baseline="mlp_sigmoid_deep", description="",
                     fixes=("he_init", "dropout"))  # fmt: skip
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="declares the fixes it applies"):
        zoo.register("y", family="mlp", role="mitigated", baseline="mlp_sigmoid_deep", description="")
    with pytest.raises(ValueError, match="measured through"):
        zoo.register("z", family="mlp", role="baseline", description="", measured_through=("depth",))
    assert not {"x", "y", "z"} & set(zoo.list_models())
