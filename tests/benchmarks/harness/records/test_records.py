"""The run record: one typed format, strict JSON, older schemas migrated, bad files named."""

import gzip
import json
import math
import shutil
from pathlib import Path

import pytest
from helpers import DATA, make_record, replace

from gradzoo.benchmarks.errors import RecordError
from gradzoo.benchmarks.harness.records import (
    SCHEMA_VERSION,
    RunConfig,
    RunRecord,
    read_record,
    recorded_ids,
    scan,
    write_record,
)

def record_text(path) -> str:
    """The JSON text of a record file (`.json.gz`), as `zcat` shows it."""
    return gzip.decompress(Path(path).read_bytes()).decode()


def write_record_text(path, text: str) -> None:
    Path(path).write_bytes(gzip.compress(text.encode()))


V1 = DATA / "v1" / "a9e2178a58038cfa.json"  # a schema-1 record of the first reference results


def test_a_diverged_record_is_strict_json_and_round_trips(tmp_path):
    record = make_record(diverged_step=3)
    gradients = replace(record.gradients, norms=[[float("nan"), float("inf"), 1.0]])
    record = replace(record, history=replace(record.history, loss=[float("inf")], val_metric=[None]),
                     instruments={**record.instruments, "gradient_norms": gradients})  # fmt: skip
    path = write_record(tmp_path, record)
    assert path.name == f"{record.run_id}.json.gz"
    text = record_text(path)
    json.loads(text, parse_constant=lambda token: pytest.fail(f"non-strict token {token}"))  # jq and JS read it
    data = json.loads(text)
    assert data["nonfinite"] == {"/history/loss/0": "inf", "/instruments/gradient_norms/norms/0/0": "nan",
                                 "/instruments/gradient_norms/norms/0/1": "inf"}
    assert data["history"]["loss"] == [None] and data["schema"] == SCHEMA_VERSION
    back = read_record(path)
    assert back.history.loss == [float("inf")] and back.history.val_metric == [None]
    assert math.isnan(back.gradients.norms[0][0]) and back.gradients.norms[0][1:] == [float("inf"), 1.0]
    assert back.diverged and back.status == "diverged"
    assert replace(back, instruments={}) == replace(record, instruments={})


def test_schema_1_records_load_through_the_migration():
    record = read_record(V1)
    assert isinstance(record, RunRecord) and record.schema == SCHEMA_VERSION
    assert record.config.phase == "eval" and record.config.tuned_over is None and record.config.precision == "float32"
    assert record.config.backend == record.env.backend == "tensorflow"
    assert record.label == "rnn_lstm" and record.pair == "rnn_simple"
    assert record.best_score == pytest.approx(0.00226, rel=1e-2)
    # v1 ids were hashes of the v1 config: the file name stays the record's id.
    assert record.run_id == V1.stem


def test_v1_nan_tokens_are_read(tmp_path):
    data = json.loads(V1.read_text())
    data["history"]["val_loss"][0] = float("nan")
    path = tmp_path / f"{data['run_id']}.json"
    path.write_text(json.dumps(data, allow_nan=True))  # what schema 1 wrote
    assert "NaN" in path.read_text()
    assert math.isnan(read_record(path).history.val_loss[0])


@pytest.mark.parametrize("damage, reason", [
    (lambda text: text[: len(text) // 2], "is not valid JSON (truncated or corrupted"),
    (lambda text: json.dumps({k: v for k, v in json.loads(text).items() if k != "summary"}), "lacks the field `summary`"),
    (lambda text: json.dumps({**json.loads(text), "schema": 99}), "has schema 99; this gradzoo reads schemas 1 to 3; upgrade"),
    (lambda text: text.replace('"epochs_run":', '"epochs_run":"x","old":'), "`summary.epochs_run` must be an integer"),
    (lambda text: "[1, 2]", "is not a JSON object"),
])  # fmt: skip
def test_unreadable_records_are_named_with_their_reason(tmp_path, damage, reason):
    out = tmp_path
    good = write_record(out, make_record(seed=0))
    bad = write_record(out, make_record(seed=1))
    write_record_text(bad, damage(record_text(bad)))
    found = scan(out)
    assert [r.run_id for r in found.records] == [make_record(seed=0).run_id]
    ((path, message),) = found.problems
    assert path == bad and message.startswith(bad.name) and reason in message, message
    assert "\n" not in message
    with pytest.raises(RecordError, match=reason.split(";")[0][:30].replace("(", r"\(")):
        read_record(bad)


def test_a_record_under_another_runs_name_is_refused(tmp_path):
    path = write_record(tmp_path, make_record())
    shutil.copy(path, tmp_path / "records" / "0123456789abcdef.json")
    (_, reason), = scan(tmp_path).problems
    assert "not the run its file name says" in reason


def test_recorded_ids_come_from_file_names(tmp_path, monkeypatch):
    write_record(tmp_path, make_record(seed=0))
    write_record(tmp_path, make_record(seed=1))
    (tmp_path / "records" / ".x.json.tmp").write_text("partial")  # a killed write
    import gradzoo.benchmarks.harness.records.files as files

    monkeypatch.setattr(files, "read_record", lambda path: pytest.fail("parsed a record to learn its id"))
    assert recorded_ids(tmp_path) == {make_record(seed=0).run_id, make_record(seed=1).run_id}


def test_a_scan_parses_each_unchanged_file_once(tmp_path, monkeypatch):
    write_record(tmp_path, make_record())
    import gradzoo.benchmarks.harness.records.files as files

    calls = []
    real = files.read_record
    monkeypatch.setattr(files, "read_record", lambda path: calls.append(path) or real(path))
    scan(tmp_path), scan(tmp_path)
    assert len(calls) <= 1


def test_accessors_compute_what_readers_need():
    r = make_record("mlp_he_relu_bn", "mitigated", ratio=0.5, best=0.7, peak=12.0, clipnorm=1.0,
                    sweep={"model.depth": 20, "optimizer.clipnorm": 1.0})  # fmt: skip
    assert r.first_last_ratio() == 0.5 and r.verdict_ratio == 0.5 and r.temporal_ratio is None
    assert r.peak_global_norm == 12.0 and r.clip_rate == pytest.approx(0.4) and r.clipping == "clipnorm=1"
    assert r.best_score == 0.7 and r.pair == "mlp_sigmoid_deep" and r.label == "mlp_he_relu_bn"
    assert r.sweep_label == "model.depth=20, optimizer.clipnorm=1"
    assert r.dataset.is_better(0.8, 0.7) and r.dataset.better == "higher"


def test_run_ids_hash_the_whole_config():
    a = RunConfig(model="rnn_lstm", dataset="adding")
    assert a.run_id == RunConfig(model="rnn_lstm", dataset="adding").run_id
    for change in ({"seed": 1}, {"phase": "tune"}, {"precision": "mixed_bfloat16"}, {"backend": "jax"},
                   {"tuned_over": "optimizer.learning_rate in {0.1}"}):  # fmt: skip
        assert RunConfig(model="rnn_lstm", dataset="adding", **change).run_id != a.run_id, change
