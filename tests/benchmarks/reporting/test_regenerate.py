"""`gradzoo regenerate`: one ordered run writes every derived file, a second run skips what is up to
date, a killed run resumes at the step it was in, and `--check` names each stale file."""

import dataclasses
import shutil

import pytest
from helpers import cli_error, make_record

from gradzoo.benchmarks.cli import main
from gradzoo.benchmarks.harness.records import write_record
from gradzoo.benchmarks.regenerate import runner
from gradzoo.benchmarks.reporting.readme import HEADLINE

# Everything but the steps that train (the doctor example, the pretrained weights).
FROM_RECORDS = ["tables", "claims", "report", "readme", "evidence"]


@pytest.fixture
def folders(tmp_path):
    """A results folder with the records of one `quick` pair, and a checkout whose README has the headline markers."""
    results, repo = tmp_path / "results", tmp_path / "repo"
    for seed in (0, 1):
        write_record(results, make_record("mlp_sigmoid_deep", "baseline", 1e-12, best=0.1, seed=seed, suite="quick", group="mlp"))
        write_record(results, make_record("mlp_he_relu_bn", "mitigated", 0.5, best=0.8, seed=seed, suite="quick", group="mlp",
                                          epochs_to_target=3))  # fmt: skip
    repo.mkdir()
    (repo / "README.md").write_text(f"# Title\n\nWords before.\n\n{HEADLINE.start}\nold numbers\n{HEADLINE.end}\n\nWords after.\n")
    return results, repo


def _check(results, repo):
    lines = []
    return runner.check(results, repo, only=FROM_RECORDS, log=lines.append), lines


def test_one_run_writes_every_derived_file_and_the_check_then_passes(folders):
    results, repo = folders
    done = runner.regenerate(results, repo, only=FROM_RECORDS, log=lambda line: None)
    assert done == dict.fromkeys(FROM_RECORDS, "ran")
    for name in ("convergence.csv", "gradients.csv.gz", "comparison.csv", "comparison.md", "report.md"):
        assert (results / name).is_file(), name
    assert list((results / "figures").glob("*.png"))
    readme = (repo / "README.md").read_text()
    assert "old numbers" not in readme and "`mlp_he_relu_bn`" in HEADLINE.current(readme)
    assert readme.startswith("# Title\n\nWords before.\n") and readme.endswith("\n\nWords after.\n")
    assert (repo / "benchmarks" / "doctor" / "evidence.json").is_file()
    stale, _ = _check(results, repo)
    assert stale == []


def test_the_check_names_each_stale_file_and_the_command_that_fixes_it(folders):
    results, repo = folders
    runner.regenerate(results, repo, only=FROM_RECORDS, log=lambda line: None)
    before = {p: p.read_bytes() for p in [*results.rglob("*"), *repo.rglob("*")] if p.is_file()}
    report = results / "report.md"
    report.write_text(report.read_text().replace("mlp_he_relu_bn", "mlp_typed_by_hand", 1))
    (results / "figures" / "gone_pair_curves.png").write_bytes(b"old")
    stale, lines = _check(results, repo)
    assert len(stale) == 2, stale
    assert stale[0].endswith("report.md: stale (differs from what the records give); run "
                             f"`gradzoo regenerate --only report --results {results}`")  # fmt: skip
    assert "figures" in stale[1] and "1 not drawn" in stale[1]
    # Nothing written: every file is as it was, apart from the two edits made above.
    after = {p: p.read_bytes() for p in [*results.rglob("*"), *repo.rglob("*")] if p.is_file()}
    assert set(after) - set(before) == {results / "figures" / "gone_pair_curves.png"}
    assert all(after[p] == b for p, b in before.items() if p != report)


def test_the_check_exits_1_from_the_command_line(folders, capsys):
    results, repo = folders
    assert main(["regenerate", "--results", str(results), "--repo", str(repo), "--only", *FROM_RECORDS]) == 0
    assert main(["regenerate", "--results", str(results), "--repo", str(repo), "--check", "--only", *FROM_RECORDS]) == 0
    (results / "comparison.md").write_text("typed by hand\n")
    capsys.readouterr()
    assert main(["regenerate", "--results", str(results), "--repo", str(repo), "--check", "--only", *FROM_RECORDS]) == 1
    out = capsys.readouterr().out
    assert f"comparison.md: stale (differs from what the records give); run `gradzoo regenerate --only tables --results {results}`" in out
    assert out.rstrip().endswith("1 stale file(s).")


def test_a_second_run_skips_what_is_up_to_date_and_redoes_an_edited_output(folders):
    results, repo = folders
    runner.regenerate(results, repo, only=FROM_RECORDS, log=lambda line: None)
    assert runner.regenerate(results, repo, only=FROM_RECORDS, log=lambda line: None) == dict.fromkeys(FROM_RECORDS, "skipped")
    (results / "claims.md").unlink(missing_ok=True)
    (results / "comparison.md").write_text("typed by hand\n")
    done = runner.regenerate(results, repo, only=FROM_RECORDS, log=lambda line: None)
    assert done["tables"] == "ran" and done["report"] == "skipped"
    assert (results / "comparison.md").read_text() != "typed by hand\n"


def test_a_killed_run_resumes_at_the_step_it_was_in(folders, monkeypatch):
    results, repo = folders
    real = runner.STEPS

    def killed(roots):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "STEPS", tuple(dataclasses.replace(s, run=killed) if s.name == "report" else s for s in real))
    with pytest.raises(KeyboardInterrupt):
        runner.regenerate(results, repo, only=FROM_RECORDS, log=lambda line: None)
    monkeypatch.setattr(runner, "STEPS", real)
    done = runner.regenerate(results, repo, only=FROM_RECORDS, log=lambda line: None)
    assert done == {"tables": "skipped", "claims": "skipped", "report": "ran", "readme": "ran", "evidence": "ran"}
    # New records make every step that reads them run again.
    write_record(results, make_record("mlp_he_relu_bn", "mitigated", 0.5, best=0.8, seed=2, suite="quick", group="mlp"))
    assert set(runner.regenerate(results, repo, only=FROM_RECORDS, log=lambda line: None).values()) == {"ran"}


def test_mistakes_are_one_sentence(folders, tmp_path, capsys):
    results, _ = folders
    err = cli_error(main, ["regenerate", "--results", str(results), "--only", "figures"], capsys)
    assert "No step 'figures'; the steps are tables, claims, report" in err
    err = cli_error(main, ["regenerate", "--results", str(tmp_path / "nowhere"), "--check"], capsys)
    assert "has no records/ folder" in err
