"""`gradzoo doctor` from the shell: what a user can get wrong is one sentence and exit 2, before any
training; a good call prints the summary, or JSON, and writes the one-page report."""

import json

import keras
import numpy as np
import pytest

from gradzoo.benchmarks.cli import main
from helpers import cli_error


def _small_model(path, compiled=True):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((40,)), keras.layers.Dense(16, activation="relu", kernel_initializer="he_normal"),
                              keras.layers.Dense(10)], name="users_model")  # fmt: skip
    if compiled:
        model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.save(path)
    return path


@pytest.fixture
def model_file(tmp_path):
    return _small_model(tmp_path / "model.keras")


def _npz(path, x, y=None, **extra):
    arrays = {"x": x, **({} if y is None else {"y": y}), **extra}
    np.savez(path, **arrays)
    return path


def test_an_unknown_dataset_names_the_available_ones(model_file, capsys):
    err = cli_error(main, ["doctor", str(model_file), "--dataset", "nope"], capsys)
    assert "Unknown dataset 'nope'" in err and "mnist1d" in err and err.count("\n") == 1


def test_a_bad_dataset_parameter_is_one_sentence(model_file, capsys):
    err = cli_error(main, ["doctor", str(model_file), "--dataset", "mnist1d", "--param", "colour=red"], capsys)
    assert "Unknown parameter `colour`" in err and err.count("\n") == 1
    err = cli_error(main, ["doctor", str(model_file), "--dataset", "mnist1d", "--param", "shape"], capsys)
    assert "KEY=VALUE" in err


def test_data_whose_shape_does_not_fit_the_model(model_file, capsys):
    # MNIST-1D as sequences (40, 1) for a model that takes (40,).
    err = cli_error(main, ["doctor", str(model_file), "--dataset", "mnist1d"], capsys)
    assert "shape (40, 1)" in err and "(None, 40)" in err and err.count("\n") == 1


def test_an_npz_without_y_or_with_targets_that_do_not_fit(model_file, tmp_path, capsys):
    x = np.zeros((8, 40), "float32")
    err = cli_error(main, ["doctor", str(model_file), "--data", str(_npz(tmp_path / "a.npz", x, inputs=x))], capsys)
    assert "arrays named `x` and `y`" in err and "inputs" in err
    err = cli_error(main, ["doctor", str(model_file), "--data", str(_npz(tmp_path / "b.npz", x, np.zeros(5, "int32")))], capsys)
    assert "`x` has 8 examples but `y` has 5" in err
    wrong = _npz(tmp_path / "c.npz", x, np.zeros((8, 3, 3), "float32"))
    err = cli_error(main, ["doctor", str(model_file), "--data", str(wrong)], capsys)
    assert "do not fit the model's outputs" in err and err.count("\n") == 1


def test_a_model_that_cannot_be_loaded_safely(tmp_path, capsys):
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Lambda(lambda t: t * 2.0)(inputs))
    model.save(tmp_path / "lambda.keras")
    data = _npz(tmp_path / "d.npz", np.zeros((4, 4), "float32"), np.zeros((4, 4), "float32"))
    err = cli_error(main, ["doctor", str(tmp_path / "lambda.keras"), "--data", str(data)], capsys)
    assert "cannot be loaded safely" in err and err.count("\n") == 1


def test_missing_or_foreign_model_files(tmp_path, capsys):
    data = _npz(tmp_path / "e.npz", np.zeros((4, 40), "float32"), np.zeros(4, "int32"))
    err = cli_error(main, ["doctor", str(tmp_path / "absent.keras"), "--data", str(data)], capsys)
    assert "No model file" in err
    (tmp_path / "weights.h5").write_bytes(b"not a zip")
    err = cli_error(main, ["doctor", str(tmp_path / "weights.h5"), "--data", str(data)], capsys)
    assert "not a `.keras` model archive" in err


def test_param_needs_a_dataset_and_the_data_source_is_required(model_file, tmp_path, capsys):
    data = _npz(tmp_path / "f.npz", np.zeros((4, 40), "float32"), np.zeros(4, "int32"))
    err = cli_error(main, ["doctor", str(model_file), "--data", str(data), "--param", "length=3"], capsys)
    assert "--param sets a parameter of --dataset" in err
    with pytest.raises(SystemExit) as info:
        main(["doctor", str(model_file)])
    assert info.value.code == 2 and "--dataset" in capsys.readouterr().err


def test_an_uncompiled_model_on_npz_data_prints_the_summary_and_writes_the_page(tmp_path, capsys):
    path = _small_model(tmp_path / "plain.keras", compiled=False)
    rng = np.random.default_rng(0)
    data = _npz(tmp_path / "g.npz", rng.normal(size=(200, 40)).astype("float32"), rng.integers(0, 10, 200).astype("int32"))
    assert main(["doctor", str(path), "--data", str(data), "--steps", "3", "--batch-size", "50", "--out", str(tmp_path / "out")]) == 0
    out = " ".join(capsys.readouterr().out.split())  # the summary wraps at 100 columns
    assert "Verdict: HEALTHY" in out and "assumed: the model is not compiled" in out
    assert "SparseCategoricalCrossentropy(from_logits=True)" in out and "Adam(learning_rate=0.001)" in out
    assert "g.npz (x (200, 40), y (200,))" in out and "3 steps of 50" in out
    page = (tmp_path / "out" / "doctor.html").read_text()
    assert "data:image/png;base64," in page and "users_model" in page
    assert json.loads((tmp_path / "out" / "diagnosis.json").read_text())["verdict"] == "healthy"
    assert main(["doctor", str(path), "--data", str(data), "--steps", "2", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["setup"]["assumed"] is True and len(document["measurements"]["probe"]["steps"]) == 2
