"""Pretrained zoo models: every shipped one loads, matches its hash and
reproduces its manifest's test scores; tampered or unknown ones are refused."""

import json
import shutil

import keras
import pytest

from gradzoo import zoo
from gradzoo.benchmarks.cli import main
from gradzoo.benchmarks.datasets import load_dataset
from gradzoo.benchmarks.train_pretrained import pretrained_specs, run_spec
from gradzoo.zoo import pretrained

SHIPPED = zoo.list_pretrained()


@pytest.fixture(autouse=True)
def _no_registrations(monkeypatch):
    monkeypatch.setattr(pretrained, "_REGISTERED", {})


@pytest.fixture
def keras_loads(monkeypatch):
    """Records every `keras.saving.load_model` call (to prove a refused file is never deserialized)."""
    calls, real = [], keras.saving.load_model

    def spy(path, *args, **kwargs):
        calls.append(path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(keras.saving, "load_model", spy)
    return calls


def _flip_bytes(path, at=None):
    data = bytearray(path.read_bytes())
    at = len(data) // 2 if at is None else at
    data[at : at + 4] = bytes(b ^ 0xFF for b in data[at : at + 4])
    path.write_bytes(bytes(data))


def _small_shipped():
    """The smallest shipped entry, for the tests that only need some model."""
    return min(SHIPPED, key=lambda n: zoo.pretrained_info(n)["size_bytes"])


def test_every_training_entry_is_shipped_with_its_baseline():
    assert SHIPPED == list(pretrained_specs())
    for name in SHIPPED:
        info = zoo.pretrained_info(name)
        assert name == f"{info['model']}.{info['dataset']}"
        # The manifest was produced by the training script as it stands, from the quick suite's tuned runs.
        assert info["config"] == run_spec(name).config().to_dict()
        assert info["tuned_over"] and info["tuning_chosen"] and info["tuning_source"].startswith("quick_tuning/")
        assert info["optimizer"]["learning_rate"] == info["tuning_chosen"]["optimizer.learning_rate"]
        if info["role"] == "mitigated":
            assert f"{zoo.get_spec(info['model']).baseline}.{info['dataset']}" in SHIPPED


def test_every_mitigated_model_reaches_its_target_on_the_test_split():
    for name in SHIPPED:
        info = zoo.pretrained_info(name)
        if info["role"] == "mitigated":
            score = info["test_metrics"][info["metric"]]
            better = score >= info["target"] if info["metric_mode"] == "max" else score <= info["target"]
            assert better and info["reached_target_on_test"], (name, score, info["target"])


@pytest.mark.parity  # the files are written by the TensorFlow backend: they must load and score the same under JAX
@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_matches_hash_and_reproduces_test_scores(name):
    info = zoo.pretrained_info(name)
    assert pretrained.file_sha256(info["path"]) == info["sha256"]
    assert set(info["test_metrics"]) == {"loss", info["metric"]}
    epochs = info["summary"]["epochs_run"]
    assert len(info["history"]["val_metric"]) == epochs
    assert len(info["gradients"]["first_last_ratio"]) == epochs

    model = zoo.load_pretrained(name)
    dataset = load_dataset(info["dataset"], **info["dataset_params"])
    x, y = dataset.test
    assert len(x) <= 3000  # the quick MLPs' 15000-example MNIST-1D holds out 3000: still one batch
    # One batch: one compiled step (JAX compiles again for a smaller last batch).
    scores = model.evaluate(x, y, batch_size=len(x), verbose=0, return_dict=True)
    assert set(scores) == set(info["test_metrics"])
    for key, expected in info["test_metrics"].items():
        # Two examples in 1000 of accuracy; 1% of a loss (backends round differently).
        tolerance = 0.002 if key == "accuracy" else 0
        assert scores[key] == pytest.approx(expected, rel=0.01, abs=tolerance), key


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_loads_without_a_warning(name, caplog, capfd):
    # Keras warns through `warnings` ("Skipping variable loading for optimizer ...") and may log or print
    # (its io_utils); a user importing a zoo model should see none of it.
    import logging
    import warnings

    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        model = zoo.load_pretrained(name)
    assert [str(w.message) for w in caught] == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    out, err = capfd.readouterr()
    assert "Skipping" not in out + err and "warn" not in (out + err).lower()
    # Compiled as it was trained: its loss, its metric and an optimizer at the tuned learning rate.
    info = zoo.pretrained_info(name)
    assert model.optimizer is not None and model.loss is not None
    assert float(model.optimizer.learning_rate) == pytest.approx(info["optimizer"]["learning_rate"])


def test_mitigated_models_beat_their_baselines():
    for name in SHIPPED:
        info = zoo.pretrained_info(name)
        for partner in info["compare_with"]:
            if info["role"] != "mitigated":
                continue
            base = zoo.pretrained_info(partner)
            ours, theirs = info["test_metrics"][info["metric"]], base["test_metrics"][base["metric"]]
            assert ours > theirs if info["metric_mode"] == "max" else ours < theirs, (name, partner)


@pytest.mark.parity
def test_tampered_shipped_file_is_refused_and_not_loaded(tmp_path, monkeypatch, keras_loads):
    name = _small_shipped()
    info = zoo.pretrained_info(name)
    shutil.copy(pretrained.WEIGHTS_DIR / "manifest.json", tmp_path / "manifest.json")
    shutil.copy(info["path"], tmp_path / info["file"])
    _flip_bytes(tmp_path / info["file"])
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", tmp_path)
    with pytest.raises(pretrained.PretrainedHashError, match="corrupted or was tampered with, so it was not loaded"):
        zoo.load_pretrained(name)
    assert keras_loads == []


def test_corrupted_local_copy_is_refused(tmp_path, keras_loads):
    name = _small_shipped()
    info = zoo.pretrained_info(name)
    copy = tmp_path / "copy.keras"
    shutil.copy(info["path"], copy)
    zoo.register_pretrained("copy.local", path=copy, sha256=info["sha256"], info={"dataset": info["dataset"]})
    assert zoo.load_pretrained("copy.local").count_params() == info["summary"]["num_params"]
    assert len(keras_loads) == 1

    _flip_bytes(copy, at=100)
    with pytest.raises(ValueError, match=r"failed its sha256 check: .*expected " + info["sha256"]):
        zoo.load_pretrained("copy.local")
    assert len(keras_loads) == 1
    assert zoo.pretrained_info("copy.local")["dataset"] == info["dataset"]


@pytest.mark.parity
def test_url_entry_is_fetched_cached_and_hash_checked(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADZOO_CACHE", str(tmp_path / "cache"))
    name = _small_shipped()
    info = zoo.pretrained_info(name)
    source = tmp_path / "served" / "model.keras"
    source.parent.mkdir()
    shutil.copy(info["path"], source)

    zoo.register_pretrained("remote.ok", url=source.as_uri(), sha256=info["sha256"], info={"test_metrics": {}})
    assert zoo.pretrained_info("remote.ok")["source"] == "url"
    assert "remote.ok" in zoo.list_pretrained()
    model = zoo.load_pretrained("remote.ok")
    assert model.count_params() == info["summary"]["num_params"]
    cached = list((tmp_path / "cache" / "weights").glob("remote.ok-*.keras"))
    assert len(cached) == 1

    # A damaged cache copy is downloaded again; once cached, the source is not needed.
    _flip_bytes(cached[0])
    zoo.load_pretrained("remote.ok")
    source.unlink()
    zoo.load_pretrained("remote.ok")

    # A URL whose content does not have the registered hash is refused, and not kept.
    shutil.copy(info["path"], source)
    zoo.register_pretrained("remote.bad", url=source.as_uri(), sha256="0" * 64)
    with pytest.raises(pretrained.PretrainedHashError, match="corrupted or was tampered with"):
        zoo.load_pretrained("remote.bad")
    assert not list((tmp_path / "cache" / "weights").glob("remote.bad-*"))

    zoo.register_pretrained("remote.gone", url=(tmp_path / "missing.keras").as_uri(), sha256=info["sha256"])
    with pytest.raises(pretrained.PretrainedFetchError, match="Could not download pretrained model 'remote.gone'"):
        zoo.load_pretrained("remote.gone")


def test_unknown_name_lists_the_available_ones():
    with pytest.raises(ValueError, match="Unknown pretrained model 'resnet_56_1d.mnist'") as e:
        zoo.load_pretrained("resnet_56_1d.mnist")
    message = str(e.value)
    assert "Did you mean resnet_56_1d.mnist1d" in message
    assert all(name in message for name in SHIPPED)
    with pytest.raises(ValueError, match="Available: "):
        zoo.pretrained_info("nope")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(name="nodot", sha256="0" * 64, path="x.keras"), "`name` must look like `model.tag`"),
        (dict(name="a.b", sha256="abc", path="x.keras"), "`sha256` must be 64 hexadecimal"),
        (dict(name="a.b", sha256="0" * 64), "exactly one of `url` and `path`"),
        (dict(name="a.b", sha256="0" * 64, url="x.keras"), "`url` must be a URL"),
        (dict(name="mlp_he_relu_bn.mnist1d", sha256="0" * 64, path="x.keras"), "shipped pretrained model"),
    ],
)
def test_register_rejects_bad_input(kwargs, match):
    name = kwargs.pop("name")
    with pytest.raises(ValueError, match=match):
        zoo.register_pretrained(name, **kwargs)


def test_cli_list_and_show(capsys):
    assert main(["pretrained"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in SHIPPED)

    name = SHIPPED[0]
    info = zoo.pretrained_info(name)
    assert main(["pretrained", "show", name]) == 0
    out = capsys.readouterr().out
    assert info["sha256"] in out and info["metric"] in out and "val_loss" in out

    assert main(["pretrained", "show", name, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == info


@pytest.mark.parametrize("argv, match", [
    (["pretrained", "show", "nope"], "Unknown pretrained model 'nope'"),
    (["pretrained", "show"], "needs a NAME"),
])  # fmt: skip
def test_cli_errors_are_one_sentence(capsys, argv, match):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert match in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_the_manifest_reads_through_its_type_and_writes_back_the_same_bytes():
    from gradzoo.zoo.manifest import ManifestEntry, manifest_text, read_manifest

    path = pretrained.WEIGHTS_DIR / "manifest.json"
    manifest = read_manifest(path)
    assert list(manifest.models) == SHIPPED and all(isinstance(e, ManifestEntry) for e in manifest.models.values())
    assert manifest_text(manifest) == path.read_text()


def test_a_manifest_with_a_renamed_field_or_another_schema_is_refused(tmp_path, monkeypatch):
    import pydantic

    text = (pretrained.WEIGHTS_DIR / "manifest.json").read_text()
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", tmp_path)
    monkeypatch.setattr(pretrained, "_manifest_cache", {"key": None, "entries": {}})
    (tmp_path / "manifest.json").write_text(text.replace('"sha256":', '"sha":', 1))
    with pytest.raises(pydantic.ValidationError, match="sha256"):
        zoo.list_pretrained()
    (tmp_path / "manifest.json").write_text(text.replace('"schema": 1', '"schema": 2', 1))
    with pytest.raises(ValueError, match="manifest schema 2; this gradzoo reads schema 1"):
        zoo.list_pretrained()


def test_cli_lists_and_shows_a_registered_model_by_its_own_info(tmp_path, capsys):
    name = _small_shipped()
    info = zoo.pretrained_info(name)
    copy = tmp_path / "copy.keras"
    shutil.copy(info["path"], copy)
    zoo.register_pretrained("copy.local", path=copy, sha256=info["sha256"], info={"dataset": "mnist1d", "note": "mine"})
    assert zoo.pretrained.pretrained_entry("copy.local") is None and zoo.pretrained.pretrained_entry(name).sha256 == info["sha256"]
    assert main(["pretrained"]) == 0
    assert "copy.local" in capsys.readouterr().out
    assert main(["pretrained", "show", "copy.local"]) == 0
    out = capsys.readouterr().out
    assert "copy.local  (registered)" in out and "dataset=mnist1d, note=mine" in out and str(copy) in out
