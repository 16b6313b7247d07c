"""The benchmark harness end to end: suites -> runs -> records -> tables, resume, divergence, bad input."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from benchmarks import records as records_mod
from benchmarks.cli import main
from benchmarks.runner import RunSpec, run_one
from benchmarks.suites import expand, list_suites, load_suite

TINY = str(Path(__file__).parent / "data" / "tiny.toml")


@pytest.fixture(scope="module")
def tiny_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    assert main(["run", TINY, "--out", str(out)]) == 0
    return out


def test_tiny_suite_end_to_end(tiny_results):
    recs = records_mod.load_records(tiny_results)
    specs = expand(load_suite(TINY))
    assert sorted(r["run_id"] for r in recs) == sorted(s.run_id for s in specs)
    assert len(recs) == 2 + 2 * 2  # mlp pair + rnn pair x 2 clipnorm values
    for r in recs:
        assert r["status"] in ("completed", "diverged")
        assert r["env"]["keras"] and r["env"]["backend"] and "hardware" in r["env"]
        assert len(r["history"]["loss"]) == r["summary"]["epochs_run"] == 2
        assert r["summary"]["train_s"] > 0 and r["summary"]["setup_s"] >= 0
        g = r["gradients"]
        assert len(g["epoch"]["mean"]) == 2 and len(g["layers"]) == len(g["norms"][0])

    conv = pd.read_csv(tiny_results / "convergence.csv")
    for col in ["suite", "pair", "model", "role", "dataset", "seed", "epochs_run", "final_train_loss", "final_val_loss",
                "metric_name", "final_val_metric", "best_val_metric", "steps_to_target", "diverged", "diverged_step",
                "train_s", "samples_per_s"]:
        assert col in conv.columns, col
    assert len(conv) == 6
    grads = pd.read_csv(tiny_results / "gradients.csv")
    for col in ["run_id", "model", "epoch", "layer", "depth_index", "grad_norm_min", "grad_norm_mean", "grad_norm_max"]:
        assert col in grads.columns, col
    assert (grads.grad_norm_min <= grads.grad_norm_mean + 1e-12).all()
    assert (grads.grad_norm_mean <= grads.grad_norm_max + 1e-12).all()
    first = grads[(grads.model == "mlp_sigmoid_deep") & (grads.epoch == 1)].sort_values("depth_index")
    assert first.layer.iloc[0] == "dense_0" and first.depth_index.iloc[0] == 0

    comp = pd.read_csv(tiny_results / "comparison.csv")
    assert set(zip(comp.baseline, comp.mitigated)) == {("mlp_sigmoid_deep", "mlp_he_relu_bn"), ("rnn_simple", "rnn_gru")}
    assert len(comp) == 3  # the rnn pair once per clipnorm sweep point
    assert set(comp.baseline_verdict) <= {"vanishing", "exploding", "healthy"}
    assert "mlp_sigmoid_deep" in (tiny_results / "comparison.md").read_text()


def test_clip_sweep_shows_in_the_gradient_log(tiny_results):
    recs = records_mod.load_records(tiny_results)
    clipped = [r for r in recs if r["config"]["optimizer"].get("clipnorm") == 0.01]
    unclipped = [r for r in recs if r["config"]["optimizer"].get("clipnorm") == 0]
    assert clipped and unclipped
    for r in clipped:
        g = r["gradients"]
        assert all(post <= pre + 1e-6 for pre, post in zip(g["global_norm_pre"], g["global_norm_post"]))
        assert any(g["clipped"]) and r["optimizer"]["clipnorm"] == 0.01
    for r in unclipped:
        assert "clipnorm" not in r["optimizer"]
        assert r["gradients"]["global_norm_pre"] == r["gradients"]["global_norm_post"]


def test_rerun_skips_recorded_runs(tiny_results, capsys):
    before = {p.name: p.read_bytes() for p in (tiny_results / "records").glob("*.json")}
    assert main(["run", TINY, "--out", str(tiny_results)]) == 0
    assert "6 already recorded" in capsys.readouterr().out
    after = {p.name: p.read_bytes() for p in (tiny_results / "records").glob("*.json")}
    assert before == after


def test_killed_suite_resumes_without_duplicates(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    cmd = [sys.executable, "-m", "benchmarks.cli", "run", TINY, "--out", str(out)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and len(list((out / "records").glob("*.json"))) < 2:
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)  # kill -9, mid-run
    proc.wait()
    survivors = {p.name: p.read_bytes() for p in (out / "records").glob("*.json")}
    assert 2 <= len(survivors) < 6
    for blob in survivors.values():
        json.loads(blob)  # complete, never truncated

    assert main(["run", TINY, "--out", str(out)]) == 0
    files = list((out / "records").glob("*.json"))
    ids = [records_mod.load_record(p)["run_id"] for p in files]
    assert len(ids) == len(set(ids)) == 6
    for name, blob in survivors.items():
        assert (out / "records" / name).read_bytes() == blob  # nothing recorded was touched


@pytest.mark.parity  # on JAX the divergence is seen from a worker thread
def test_divergence_is_recorded_and_the_suite_goes_on(tmp_path):
    suite = tmp_path / "explode.toml"
    suite.write_text(
        'epochs = 3\nbatch_size = 32\n[[runs]]\nmodels = ["mlp_relu_large_init", "mlp_relu_large_init_clipped"]\n'
        'dataset = "mnist1d"\ndataset_params = { num_samples = 300 }\n'
    )
    assert main(["run", str(suite), "--out", str(tmp_path / "out")]) == 0
    recs = {r["config"]["model"]: r for r in records_mod.load_records(tmp_path / "out")}
    base = recs["mlp_relu_large_init"]
    assert base["diverged"] and base["status"] == "diverged" and base["diverged_step"] is not None
    assert base["summary"]["steps_run"] < 3 * 9
    clipped = recs["mlp_relu_large_init_clipped"]
    assert not clipped["diverged"] and clipped["summary"]["epochs_run"] == 3
    conv = pd.read_csv(tmp_path / "out" / "convergence.csv")
    assert conv.set_index("model").loc["mlp_relu_large_init", "verdict"] == "exploding"


def test_convergence_takes_the_earliest_nonfinite_step_when_steps_arrive_out_of_order():
    # On JAX and torch Keras runs batch callbacks in worker threads, so step 7
    # may be read before step 6; the divergence is the earliest, by index.
    from types import SimpleNamespace

    from benchmarks.runner import _convergence_callback

    seen = []
    dataset = SimpleNamespace(metric="accuracy", reached_target=lambda score: False)
    callback = _convergence_callback(dataset, seen.append)
    model = SimpleNamespace(stop_training=False)
    callback.set_model(model)
    callback.on_train_begin()
    callback.on_epoch_begin(0)
    for batch in range(4):
        callback.on_train_batch_end(batch, {"loss": 1.0})
    callback.on_epoch_end(0, {"loss": 1.0, "accuracy": 0.5})
    callback.on_epoch_begin(1)
    callback.on_train_batch_end(3, {"loss": float("nan")})
    callback.on_train_batch_end(1, {"loss": 0.9})
    callback.on_train_batch_end(2, {"loss": float("inf")})
    assert callback.diverged_step == 6 and model.stop_training
    assert callback.step == 7 and seen == [0, 1, 2, 3, 3, 1, 2]


def _strip_volatile(record):
    record = json.loads(json.dumps(record))
    for key in ("created", "env"):
        record.pop(key)
    for key in ("train_s", "fit_s", "setup_s", "samples_per_s", "seconds_to_target"):
        record["summary"].pop(key)
    record["history"].pop("epoch_train_s")
    return record


def test_same_seed_gives_identical_records():
    spec = RunSpec(model="mlp_he_relu_bn", dataset="mnist1d", epochs=2, batch_size=32,
                   model_overrides={"depth": 3, "width": 16}, dataset_params={"num_samples": 200})
    a, b = _strip_volatile(run_one(spec)), _strip_volatile(run_one(spec))
    assert a == b
    other = _strip_volatile(run_one(RunSpec(**{**spec.__dict__, "seed": 1})))
    assert other["history"]["loss"] != a["history"]["loss"]


def test_run_ids_are_stable_and_distinct():
    a = RunSpec(model="rnn_lstm", dataset="adding")
    assert a.run_id == RunSpec(model="rnn_lstm", dataset="adding").run_id
    assert a.run_id != RunSpec(model="rnn_lstm", dataset="adding", seed=1).run_id
    assert a.run_id == RunSpec(model="rnn_lstm", dataset="adding", data_dir="/elsewhere").run_id


def test_shipped_suites_load_and_expand():
    names = [name for name, _ in list_suites()]
    assert names[0] == "quick" and {"quick", "depth", "length", "full"} <= set(names)
    for name in names:
        specs = expand(load_suite(name))
        assert specs and len({s.run_id for s in specs}) == len(specs)


def test_seeds_and_epochs_override():
    specs = expand(load_suite(TINY), seeds=3, epochs=1)
    assert {s.seed for s in specs} == {0, 1, 2} and {s.epochs for s in specs} == {1}


def test_model_dataset_mismatch_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="cannot take dataset 'mnist1d'"):
        run_one(RunSpec(model="resnet_20", dataset="mnist1d", epochs=1))
    with pytest.raises(ValueError, match="needs one per time step"):
        run_one(RunSpec(model="mlp_he_relu_bn", dataset="copy_memory", epochs=1, dataset_params={"length": 5, "num_train": 8, "num_val": 4, "num_test": 4}))


# ---- bad input at the command line: one sentence, non-zero exit, nothing touched ----

def _cli_error(args, capsys):
    with pytest.raises(SystemExit) as info:
        code = main(args)
        raise SystemExit(code)
    err = capsys.readouterr().err
    assert info.value.code != 0
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["run", "no_such_suite"], "Unknown suite 'no_such_suite'. Available suites: "),
        (["run", "missing.toml"], "does not exist"),
        (["run", "--epochs", "0"], "expected a positive integer, received '0'"),
        (["run", "--epochs", "ten"], "expected a positive integer, received 'ten'"),
        (["run", "--seeds", "-1"], "expected a positive integer, received '-1'"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_bad_cli_input(args, fragment, capsys):
    assert fragment in _cli_error(args, capsys)


def test_malformed_suite_files(tmp_path, capsys):
    cases = {
        "broken.toml": ("[[runs]\nmodels = [", "is not valid TOML"),
        "model.toml": ('[[runs]]\nmodels = ["resnet_19"]\ndataset = "mnist1d"\n', "unknown model 'resnet_19'"),
        "dataset.toml": ('[[runs]]\nmodels = ["rnn_lstm"]\ndataset = "imagenet"\n', "unknown dataset 'imagenet'"),
        "key.toml": ('epoch = 3\n[[runs]]\nmodels = ["rnn_lstm"]\ndataset = "adding"\n', "unknown key `epoch`"),
        "empty.toml": ('description = "nothing"\n', "needs at least one [[runs]] entry"),
    }
    for name, (text, fragment) in cases.items():
        path = tmp_path / name
        path.write_text(text)
        err = _cli_error(["run", str(path), "--out", str(tmp_path / "out")], capsys)
        assert fragment in err, (name, err)
        assert err.count("\n") == 1, err  # one sentence, one line
    assert not (tmp_path / "out").exists()


def test_output_path_that_is_a_file(tmp_path, capsys):
    target = tmp_path / "results.txt"
    target.write_text("precious")
    err = _cli_error(["run", TINY, "--out", str(target)], capsys)
    assert "is a file" in err and target.read_text() == "precious"


def test_help_does_not_import_keras():
    # What keeps `gradzoo --help` under a second: no heavy import before a command runs.
    subprocess.run([sys.executable, "-m", "benchmarks.cli", "--help"], check=True, capture_output=True)
    out = subprocess.run(
        [sys.executable, "-c", "import sys, benchmarks.cli; print('keras' in sys.modules)"], capture_output=True, text=True
    )
    assert out.stdout.strip() == "False"
