"""Suite files from elsewhere: sizes nobody means, repeated values, references out of their folder.

Each case writes a suite file under `tmp_path` and runs `gradzoo run` on it: the
CLI must exit 2 with one sentence naming the file, the key, the value received
and what is accepted, before OUT exists. A new case is one row of `CASES`:
`(id, top-level lines, group lines, extra CLI arguments, fragments of the message)`.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from helpers import cli_error

from gradzoo.benchmarks.cli import main
from gradzoo.benchmarks.errors import SuiteError
from gradzoo.benchmarks.harness.plan.run_plan import Plan
from gradzoo.benchmarks.harness.plan.suites import SUITES_DIR, load_suite, suite_names

MODELS = 'models = ["mlp_he_relu_bn"]'
GROUP = ('name = "g"\ndataset = "mnist1d"\ndataset_params = { num_samples = 100, shape = "flat" }\n'
         'model_overrides = { depth = 1, width = 4 }\n')  # fmt: skip
TUNING = ('seeds = 0\nepochs = 1\nbatch_size = 32\n[[runs]]\n' + MODELS + "\n" + GROUP
          + '[runs.tune]\n"optimizer.learning_rate" = [0.01, 0.1]\n')  # fmt: skip
TUNED = '[runs.tuned]\nin = "{ref}"\nmlp_he_relu_bn = {{ "optimizer.learning_rate" = 0.01 }}\n'


def write_suite(folder: Path, top: str = "", group: str = "", models: str = MODELS, name: str = "evil.toml") -> Path:
    """A small valid suite (one MLP on 100 MNIST-1D examples) with hostile lines added."""
    path = folder / name
    path.write_text(f"epochs = 1\nbatch_size = 32\n{top}\n[[runs]]\n{models}\n{GROUP}{group}", encoding="utf-8")
    return path


CASES = [
    ("seeds_1e9", "seeds = 1000000000", "", [], ["`seeds` = 1000000000", "limit of 100", "--max-seeds 1000000000"]),
    ("cli_seeds_1e9", "", "", ["--seeds", "1000000000"], ["--seeds = 1000000000", "limit of 100", "--max-seeds"]),
    ("sweep_repeat", "", '[runs.sweep]\n"model.depth" = [3, 3]\n', [],
     ["group 'g'", "`sweep.model.depth` lists 3 twice", "list each value once", "Received: sweep.model.depth = [3, 3]"]),
    ("sweep_repeat_float", "", '[runs.sweep]\n"model.depth" = [2, 3, 3.0]\n', [], ["`sweep.model.depth` lists 3.0 twice"]),
    ("tune_repeat", "", '[runs.tune]\n"optimizer.learning_rate" = [0.01, 0.01]\n', [],
     ["`tune.optimizer.learning_rate` lists 0.01 twice", "list each value once"]),
    ("models_repeat", "", "", [], ["`models` lists 'mlp_he_relu_bn' twice"]),
    ("ref_passwd", "", TUNED.format(ref="../../../../etc/passwd"), [],
     ["group 'g'", "`tuned.in` = '../../../../etc/passwd'", "names neither a shipped suite nor a suite file beside",
      "quick_tuning", "same directory"]),
    ("ref_absolute", "", TUNED.format(ref="/etc/passwd.toml"), [], ["`tuned.in` = '/etc/passwd.toml'", "same directory"]),
    ("ref_subfolder", "", TUNED.format(ref="sub/t.toml"), [], ["`tuned.in` = 'sub/t.toml'", "shipped suite name"]),
    ("ref_dotdot_name", "", TUNED.format(ref="..toml"), [], ["`tuned.in` = '..toml'"]),
    ("ref_missing", "", TUNED.format(ref="nothere.toml"), [], ["`tuned.in` = 'nothere.toml' is not a file there"]),
    ("ref_symlink_out", "", TUNED.format(ref="link.toml"), [],
     ["`tuned.in` = 'link.toml' does not lead to a file in the same directory"]),
    ("ref_self", "", TUNED.format(ref="evil.toml"), [], ["leads back to", "evil.toml"]),
    ("tuned_and_swept", "", '[runs.sweep]\n"optimizer.learning_rate" = [0.1, 0.2]\n' + TUNED.format(ref="t.toml"), [],
     ["`sweep.optimizer.learning_rate` is also chosen by `tuned.in` = 't.toml'", "Received: sweep.optimizer.learning_rate = [0.1, 0.2]"]),
    ("batch_too_large", "", "batch_size = 1000\n", [],
     ["group 'g'", "`batch_size` = 1000 is larger than the 72 training examples", "at most 72"]),
    ("runs_limit", "", '[runs.sweep]\n"model.depth" = [' + ", ".join(map(str, range(1, 1202))) + "]\n", [],
     ["1201 configurations", "limit of 1000 runs", "--max-runs 1201"]),
    ("plan_runs_limit", "seeds = 3", '[runs.sweep]\n"model.depth" = [' + ", ".join(map(str, range(1, 400))) + "]\n", [],
     ["1197 runs", "limit of 1000", "--max-runs 1197"]),
    ("params_limit", "", 'model_overrides = { depth = 2, width = 100000 }\n', [],
     ["10005800010 parameters", "limit of 50000000", "--max-params 10005800010"]),
]


def _prepare(case_id: str, folder: Path) -> dict:
    """What a case needs besides its suite file: the outside target of a symlink, the models line."""
    if case_id == "ref_symlink_out":
        outside = folder / "elsewhere"
        outside.mkdir()
        (outside / "t.toml").write_text(TUNING, encoding="utf-8")
        os.symlink(outside / "t.toml", folder / "suites" / "link.toml")
    if case_id == "tuned_and_swept":
        (folder / "suites" / "t.toml").write_text(TUNING, encoding="utf-8")
    if case_id == "models_repeat":
        return {"models": 'models = ["mlp_he_relu_bn", "mlp_he_relu_bn"]'}
    return {}


@pytest.mark.parametrize("case_id, top, group, argv, fragments", CASES, ids=[c[0] for c in CASES])
def test_a_hostile_suite_is_one_sentence_and_exit_2_before_out_exists(tmp_path, capsys, case_id, top, group, argv, fragments):
    (tmp_path / "suites").mkdir()
    extra = _prepare(case_id, tmp_path)
    if case_id == "params_limit":  # the group's own model_overrides line, replaced
        extra["models"], group = MODELS, ""
        suite = write_suite(tmp_path / "suites", top, group, **extra)
        suite.write_text(suite.read_text().replace("model_overrides = { depth = 1, width = 4 }",
                                                   "model_overrides = { depth = 2, width = 100000 }"))  # fmt: skip
    else:
        suite = write_suite(tmp_path / "suites", top, group, **extra)
    out = tmp_path / "out"
    started = time.perf_counter()
    assert main(["run", str(suite), "--out", str(out), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gradzoo: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert str(suite) in err, err  # names the suite file
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    assert not out.exists()
    assert time.perf_counter() - started < 60  # refused by counting, not by listing or allocating


def test_limits_are_raised_on_purpose_and_dry_run_leaves_out_alone(tmp_path, capsys):
    suite = write_suite(tmp_path, "seeds = 150")
    out = tmp_path / "out"
    assert "--max-seeds" in cli_error(main, ["run", str(suite), "--out", str(out)], capsys)
    assert main(["run", str(suite), "--out", str(out), "--max-seeds", "150", "--dry-run"]) == 0
    assert "150 runs" in capsys.readouterr().out
    assert not out.exists()


def test_a_reference_to_a_suite_beside_the_file_or_a_shipped_name_loads(tmp_path):
    (tmp_path / "t.toml").write_text(TUNING, encoding="utf-8")
    beside = load_suite(write_suite(tmp_path, group=TUNED.format(ref="t.toml")))
    assert beside.group("g").tuned_in == "t.toml" and beside.group("g").tuned_choice == {"mlp_he_relu_bn": {"optimizer.learning_rate": 0.01}}
    inside_link = tmp_path / "same.toml"
    inside_link.symlink_to(tmp_path / "t.toml")  # a symlink that stays in the folder is a file beside
    assert load_suite(write_suite(tmp_path, group=TUNED.format(ref="same.toml"), name="b.toml")).group("g").tuned_in == "same.toml"
    with pytest.raises(SuiteError, match="shipped suite name"):  # a shipped name is a name, not a path from the CWD
        load_suite(write_suite(tmp_path, group=TUNED.format(ref="t"), name="c.toml"))


def test_seeds_1e9_is_refused_without_listing_the_seeds(tmp_path):
    from gradzoo.benchmarks.harness.plan.suite_checks import Limits

    suite = load_suite(write_suite(tmp_path, "seeds = 1000000000"))
    with pytest.raises(SuiteError, match="--max-seeds"):
        Plan(suite)
    # Raised on purpose, the runs limit still counts before listing anything.
    with pytest.raises(SuiteError, match="1000000000 runs"):
        Plan(suite, limits=Limits(seeds=10**9))


@pytest.mark.parametrize("name", suite_names())
def test_every_shipped_suite_plans_under_the_default_limits(name):
    from gradzoo.benchmarks.harness.plan.suite_checks import DEFAULT_LIMITS

    suite = load_suite(name)
    plan = Plan(suite)
    assert plan.size() <= DEFAULT_LIMITS.runs and len(plan.eval_seeds) <= DEFAULT_LIMITS.seeds
    assert (SUITES_DIR / f"{name}.toml").is_file()


@pytest.mark.parametrize("name", ["full", "claims"])
def test_the_largest_shipped_models_count_under_the_parameter_limit(name):
    from gradzoo.benchmarks.harness.plan.suite_checks import check_builds

    check_builds(load_suite(name))  # counted in a StatelessScope: no weight allocated, no dataset read
