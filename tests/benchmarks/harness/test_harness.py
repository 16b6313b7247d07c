"""The benchmark harness end to end: suites -> runs -> records -> tables, resume, divergence, bad input."""

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from helpers import DATA, ROOT, cli_error

from gradzoo.benchmarks.cli import main
from gradzoo.benchmarks.harness import records as records_mod
from gradzoo.benchmarks.harness.plan.run_plan import Plan
from gradzoo.benchmarks.harness.run.run_one import run_one
from gradzoo.benchmarks.harness.plan.spec import RunSpec
from gradzoo.benchmarks.harness.plan.suites import list_suites, load_suite
from gradzoo.benchmarks.storage import DirectoryLock

TINY = str(DATA / "tiny.toml")


def _specs(suite, **kwargs):
    return Plan(load_suite(suite), **kwargs).specs({})[0]


@pytest.fixture(scope="module")
def tiny_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    assert main(["run", TINY, "--out", str(out)]) == 0
    return out


def test_tiny_suite_end_to_end(tiny_results):
    recs = records_mod.load_records(tiny_results)
    assert sorted(r.run_id for r in recs) == sorted(s.run_id for s in _specs(TINY))
    assert len(recs) == 2 + 2 * 2  # mlp pair + rnn pair x 2 clipnorm values
    for r in recs:
        assert r.status in ("completed", "diverged") and r.config.phase == "eval"
        assert r.env.keras and r.env.backend == "tensorflow" and r.env.hardware.cpu_count
        assert len(r.history.loss) == r.summary.epochs_run == 2
        assert r.summary.train_s > 0 and r.summary.setup_s >= 0
        assert len(r.gradients.epoch.mean) == 2 and len(r.gradients.layers) == len(r.gradients.norms[0])
    assert not (tiny_results / "checkpoints").exists()  # removed once the records are written
    assert (tiny_results / "suites" / "tiny.toml").read_text() == Path(TINY).read_text()

    conv = pd.read_csv(tiny_results / "convergence.csv")
    for col in ["suite", "phase", "tuned_over", "pair", "model", "registry_model", "role", "dataset", "seed",
                "epochs_run", "final_train_loss", "final_val_loss", "metric_name", "final_val_metric", "best_val_metric",
                "steps_to_target", "diverged", "diverged_step", "train_s", "samples_per_s"]:  # fmt: skip
        assert col in conv.columns, col
    assert len(conv) == 6 and set(conv.phase) == {"eval"}
    assert set(conv.model) >= {"mlp_sigmoid_deep[depth=6, width=16]", "rnn_gru[units=4]"}
    grads = pd.read_csv(tiny_results / "gradients.csv.gz")
    for col in ["run_id", "model", "epoch", "layer", "depth_index", "grad_norm_min", "grad_norm_mean", "grad_norm_max"]:
        assert col in grads.columns, col
    assert (grads.grad_norm_min <= grads.grad_norm_mean + 1e-12).all()
    assert (grads.grad_norm_mean <= grads.grad_norm_max + 1e-12).all()

    comp = pd.read_csv(tiny_results / "comparison.csv")
    assert set(zip(comp.baseline, comp.mitigated)) == {
        ("mlp_sigmoid_deep[depth=6, width=16]", "mlp_he_relu_bn[depth=6, width=16]"), ("rnn_simple[units=4]", "rnn_gru[units=4]")}
    assert len(comp) == 3 and set(comp.baseline_tuning) == {"untuned"}
    assert set(comp.baseline_verdict) <= {"vanishing", "exploding", "healthy"}
    assert "untuned" in (tiny_results / "comparison.md").read_text()


def test_clip_sweep_shows_in_the_gradient_log(tiny_results):
    recs = records_mod.load_records(tiny_results)
    clipped = [r for r in recs if r.config.optimizer.get("clipnorm") == 0.01]
    unclipped = [r for r in recs if r.config.optimizer.get("clipnorm") == 0]
    assert clipped and unclipped
    for r in clipped:
        g = r.gradients
        assert all(post <= pre + 1e-6 for pre, post in zip(g.global_norm_pre, g.global_norm_post))
        assert any(g.clipped) and r.optimizer["clipnorm"] == 0.01
    for r in unclipped:
        assert "clipnorm" not in r.optimizer
        assert r.gradients.global_norm_pre == r.gradients.global_norm_post


def test_rerun_skips_recorded_runs(tiny_results, capsys):
    before = {p.name: p.read_bytes() for p in (tiny_results / "records").glob("*.json.gz")}
    assert main(["run", TINY, "--out", str(tiny_results)]) == 0
    assert "6 already recorded" in capsys.readouterr().out
    after = {p.name: p.read_bytes() for p in (tiny_results / "records").glob("*.json.gz")}
    assert before == after


def test_unreadable_records_are_named_and_retrained(tiny_results, tmp_path, capsys):
    out = tmp_path / "out"
    (out / "records").mkdir(parents=True)
    files = sorted((tiny_results / "records").glob("*.json.gz"))
    for f in files:
        (out / "records" / f.name).write_bytes(f.read_bytes())
    truncated, fieldless = files[0].name, files[1].name
    (out / "records" / truncated).write_bytes(gzip.compress(gzip.decompress(files[0].read_bytes())[:1000]))
    data = json.loads(gzip.decompress(files[1].read_bytes()))
    del data["history"]
    (out / "records" / fieldless).write_bytes(gzip.compress(json.dumps(data).encode()))

    assert main(["report", "--results", str(out)]) == 0
    said = capsys.readouterr().out
    assert f"Left out, unreadable: {truncated} is not valid JSON" in said and f"{fieldless} lacks the field `history`" in said
    assert "Left out: 2 unreadable record(s)" in (out / "report.md").read_text()

    assert main(["run", TINY, "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert f"Unreadable record, trained again: {truncated}" in said and "4 already recorded" in said
    assert not records_mod.scan(out).problems and len(records_mod.load_records(out)) == 6


def test_killed_suite_resumes_without_duplicates(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    cmd = [sys.executable, "-m", "gradzoo.benchmarks.cli", "run", TINY, "--out", str(out)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and len(list((out / "records").glob("*.json.gz"))) < 2:
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)  # kill -9, mid-run
    proc.wait()
    survivors = {p.name: p.read_bytes() for p in (out / "records").glob("*.json.gz")}
    assert 2 <= len(survivors) < 6
    for blob in survivors.values():
        json.loads(gzip.decompress(blob))  # complete, never truncated

    assert main(["run", TINY, "--out", str(out)]) == 0
    ids = [records_mod.read_record(p).run_id for p in (out / "records").glob("*.json.gz")]
    assert len(ids) == len(set(ids)) == 6
    for name, blob in survivors.items():
        assert (out / "records" / name).read_bytes() == blob  # nothing recorded was touched


def test_a_second_run_on_the_same_out_is_refused(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    with DirectoryLock(out):
        err = cli_error(main, ["run", TINY, "--out", str(out)], capsys)
    assert f"{str(out)!r} is in use by another gradzoo run (pid {os.getpid()}); wait for it" in err
    assert err.count("\n") == 1 and not (out / "records").exists()
    with DirectoryLock(out):  # released when its holder ends: a killed run leaves no stale lock
        pass


@pytest.mark.parametrize("make", [
    lambda p: (p / "file.txt").write_text("x") and p / "file.txt" / "out",  # a file where a directory must go
    lambda p: Path("/proc/gradzoo-out"),  # a directory no process can create
])  # fmt: skip
def test_an_unwritable_out_is_refused_before_training(tmp_path, capsys, monkeypatch, make):
    import gradzoo.benchmarks.harness.run.run_one as runner

    monkeypatch.setattr(runner, "run_one", lambda *a, **k: pytest.fail("trained before checking --out"))
    err = cli_error(main, ["run", TINY, "--out", str(make(tmp_path))], capsys)
    assert "cannot be written" in err and "choose a directory you can write to" in err and err.count("\n") == 1


def test_a_bad_override_in_a_later_group_fails_before_any_training(tmp_path, capsys):
    suite = tmp_path / "bad.toml"
    suite.write_text(Path(TINY).read_text().replace('model_overrides = { units = 4 }',
                                                    'model_overrides = { units = 4, activation = "nope" }'))
    out = tmp_path / "out"
    err = cli_error(main, ["run", str(suite), "--out", str(out)], capsys)
    assert "Suite 'bad', group 'rnn_tiny' (model 'rnn_simple'" in err and "`activation` must be one of" in err
    assert "'nope'" in err and err.count("\n") == 1
    assert not list(out.glob("records/*.json"))


@pytest.mark.parity  # on JAX the divergence is seen from a worker thread
def test_divergence_is_recorded_and_the_suite_goes_on(tmp_path):
    suite = tmp_path / "explode.toml"
    suite.write_text(
        'epochs = 3\nbatch_size = 32\n[[runs]]\nmodels = ["mlp_relu_large_init", "mlp_relu_large_init_clipped"]\n'
        'dataset = "mnist1d"\ndataset_params = { num_samples = 300 }\n'
    )
    assert main(["run", str(suite), "--out", str(tmp_path / "out")]) == 0
    recs = {r.config.model: r for r in records_mod.load_records(tmp_path / "out")}
    base = recs["mlp_relu_large_init"]
    assert base.diverged and base.status == "diverged" and base.diverged_step is not None
    assert base.summary.steps_run < 3 * 9
    clipped = recs["mlp_relu_large_init_clipped"]
    assert not clipped.diverged and clipped.summary.epochs_run == 3
    conv = pd.read_csv(tmp_path / "out" / "convergence.csv")
    assert conv.set_index("registry_model").loc["mlp_relu_large_init", "verdict"] == "exploding"
    text = gzip.decompress(records_mod.record_path(tmp_path / "out", base.run_id).read_bytes()).decode()
    assert "NaN" not in text and "Infinity" not in text  # strict JSON, whatever diverged


def test_convergence_takes_the_earliest_nonfinite_step_when_steps_arrive_out_of_order():
    # On JAX and torch Keras runs batch callbacks in worker threads, so step 7
    # may be read before step 6; the divergence is the earliest, by index.
    from types import SimpleNamespace

    from gradzoo.benchmarks.harness.run.callbacks import Convergence

    seen = []
    callback = Convergence("accuracy", lambda score: False, seen.append)
    model = SimpleNamespace(stop_training=False)
    callback.set_model(model)
    callback.on_train_begin()
    callback.on_epoch_begin(0)
    for batch, loss in [(0, 1.0), (2, float("nan")), (1, float("inf")), (3, 1.0)]:
        callback.on_train_batch_end(batch, {"loss": loss})
    assert callback.diverged_step == 1 and callback.step == 4 and model.stop_training
    assert seen == [0, 2, 1, 3]


def _strip_volatile(record):
    data = record.to_json()
    for key in ("created", "env"):
        data.pop(key)
    for key in ("train_s", "fit_s", "setup_s", "samples_per_s", "seconds_to_target"):
        data["summary"].pop(key)
    data["history"].pop("epoch_train_s")
    return data


def test_same_seed_gives_identical_records():
    spec = RunSpec(model="mlp_he_relu_bn", dataset="mnist1d", epochs=2, batch_size=32,
                   model_overrides={"depth": 3, "width": 16}, dataset_params={"num_samples": 200})  # fmt: skip
    a, b = _strip_volatile(run_one(spec)), _strip_volatile(run_one(spec))
    assert a == b
    other = _strip_volatile(run_one(spec.replace(seed=1)))
    assert other["history"]["loss"] != a["history"]["loss"]


def test_shipped_suites_load_and_expand():
    names = [name for name, _ in list_suites()]
    assert names[0] == "quick" and {"quick", "depth", "length", "full", "claims"} <= set(names)
    for name in names:
        specs = _specs(name)
        assert specs and len({s.run_id for s in specs}) == len(specs)


def test_seeds_and_epochs_override():
    specs = _specs(TINY, seeds=3, epochs=1)
    assert {s.seed for s in specs} == {0, 1, 2} and {s.epochs for s in specs} == {1}


def test_model_dataset_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match=r"cannot take inputs of shape \(40, 1\)"):
        run_one(RunSpec(model="resnet_20", dataset="mnist1d", epochs=1))
    with pytest.raises(ValueError, match="needs one per time step"):
        run_one(RunSpec(model="mlp_he_relu_bn", dataset="copy_memory", epochs=1,
                        dataset_params={"length": 5, "num_train": 8, "num_val": 4, "num_test": 4}))  # fmt: skip


# ---- bad input at the command line: one sentence, non-zero exit, nothing touched ----


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["run", "no_such_suite"], "Unknown suite 'no_such_suite'. Available suites: "),
        (["run", "missing.toml"], "does not exist"),
        (["run", "--epochs", "0"], "expected a positive integer, received '0'"),
        (["run", "--epochs", "ten"], "expected a positive integer, received 'ten'"),
        (["run", "--seeds", "-1"], "expected a positive integer, received '-1'"),
        (["run", "--backend", "theano"], "invalid choice: 'theano'"),
        (["run", "--precision", "float8"], "invalid choice: 'float8'"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["pretrained", "show", "nope.mnist1d"], "Unknown pretrained model 'nope.mnist1d'"),
    ],
)
def test_bad_cli_input(args, fragment, capsys):
    assert fragment in cli_error(main, args, capsys)


def test_malformed_suite_files(tmp_path, capsys):
    cases = {
        "broken.toml": ("[[runs]\nmodels = [", "is not valid TOML"),
        "model.toml": ('[[runs]]\nmodels = ["resnet_19"]\ndataset = "mnist1d"\n', "unknown model 'resnet_19'"),
        "dataset.toml": ('[[runs]]\nmodels = ["rnn_lstm"]\ndataset = "imagenet"\n', "unknown dataset 'imagenet'"),
        "key.toml": ('epoch = 3\n[[runs]]\nmodels = ["rnn_lstm"]\ndataset = "adding"\n', "unknown key `epoch`"),
        "empty.toml": ('description = "nothing"\n', "needs at least one [[runs]] group"),
        "param.toml": ('[[runs]]\nmodels = ["rnn_lstm"]\ndataset = "adding"\ndataset_params = { lenght = 5 }\n',
                       "unknown parameter `lenght` for dataset 'adding'"),
        "optimizer.toml": ('[[runs]]\nmodels = ["rnn_lstm"]\ndataset = "adding"\noptimizer = { learning_rate = -1 }\n',
                           "`optimizer.learning_rate` must be a positive number"),
        "name.toml": ('[[runs]]\nname = "a\\tb"\nmodels = ["rnn_lstm"]\ndataset = "adding"\n', "no control characters"),
    }
    for name, (text, fragment) in cases.items():
        path = tmp_path / name
        path.write_text(text)
        err = cli_error(main, ["run", str(path), "--out", str(tmp_path / "out")], capsys)
        assert fragment in err, (name, err)
        assert err.count("\n") == 1, err  # one sentence, one line
    assert not list((tmp_path / "out").glob("records/*"))


def test_output_path_that_is_a_file(tmp_path, capsys):
    target = tmp_path / "results.txt"
    target.write_text("precious")
    err = cli_error(main, ["run", TINY, "--out", str(target)], capsys)
    assert "is a file" in err and target.read_text() == "precious"


def test_a_bug_keeps_its_traceback_and_exits_1(monkeypatch, capsys):
    import gradzoo.benchmarks.commands.list_command as list_command

    def broken(args):
        raise ValueError("an internal invariant broke")

    monkeypatch.setattr(list_command, "run", broken)
    assert main(["list"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "an internal invariant broke" in err and "this is a bug in gradzoo" in err


def test_cli_errors_print_no_tensorflow_log_lines():
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    out = subprocess.run([sys.executable, "-m", "gradzoo.benchmarks.cli", "run", "no_such_suite"], env=env,
                         capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    assert out.returncode == 2
    assert out.stderr.startswith("gradzoo: error: Unknown suite") and out.stderr.count("\n") == 1, out.stderr


def test_help_does_not_import_keras():
    # What keeps `gradzoo --help` under a second: no heavy import before a command runs.
    subprocess.run([sys.executable, "-m", "gradzoo.benchmarks.cli", "--help"], check=True, capture_output=True, cwd=ROOT)
    code = "import sys, benchmarks.cli; benchmarks.cli.build_parser(); print('keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.strip() == "False"


def test_the_default_output_is_not_the_reference_results(monkeypatch, tmp_path):
    from gradzoo.benchmarks.cli import build_parser

    args = build_parser().parse_args(["run"])
    assert args.out == "runs" and args.suite == "quick"
    assert build_parser().parse_args(["report"]).results == "runs"
