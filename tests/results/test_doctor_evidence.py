"""The doctor's shipped evidence is generated from the reference records, pair by pair (that
regenerating it from `results/` gives the same file is `tests/results/test_derived_files.py`)."""

import dataclasses
from pathlib import Path

import pytest
from helpers import ROOT, make_record, temporal_log

from gradzoo.benchmarks.doctor.evidence import classify, load_evidence, pair_entries



def test_the_shipped_evidence_backs_the_main_fixes():
    evidence = load_evidence()
    for key in ("he_relu_bn", "residual", "gated_rnn"):
        assert evidence.pairs(key), key
        pair = evidence.pairs(key)[0]
        assert pair.baseline.model and pair.mitigated.model and pair.seeds >= 1


def _with(record, name, family="mlp", **defaults):
    return dataclasses.replace(record, model=dataclasses.replace(record.model, name=name, family=family, defaults=defaults))


def test_pairs_are_filed_under_the_fix_that_tells_them_apart():
    sig = dict(activation="sigmoid", initializer="small_normal", normalization="none", depth=20)
    base = _with(make_record("mlp_sigmoid_deep", "baseline", 1e-17, best=0.09), "mlp_sigmoid_deep", **sig)
    he = _with(make_record("mlp_he_relu_bn", "mitigated", 18.0, best=0.37), "mlp_he_relu_bn",
               **{**sig, "activation": "relu", "initializer": "he_normal", "normalization": "batch"})  # fmt: skip
    selu = _with(make_record("mlp_selu", "mitigated", 0.5), "mlp_selu", **{**sig, "activation": "selu", "initializer": "lecun_normal"})
    residual = _with(make_record("mlp_residual", "mitigated", 0.3), "mlp_residual", **{**sig, "activation": "relu"})
    glorot = _with(make_record("mlp_relu_glorot", "baseline"), "mlp_relu_glorot", activation="relu", initializer="glorot_normal")
    he_only = _with(make_record("mlp_relu_he", "mitigated"), "mlp_relu_he", activation="relu", initializer="he_normal")
    simple = _with(make_record("rnn_simple", "baseline"), "rnn_simple", "rnn", cell="simple")
    gru = _with(make_record("rnn_gru", "mitigated", clipnorm=1.0), "rnn_gru", "rnn", cell="gru")
    large = _with(make_record("mlp_relu_large_init", "baseline"), "mlp_relu_large_init", initializer="large_normal")
    clipped = _with(make_record("mlp_relu_large_init_clipped", "mitigated", clipnorm=1.0), "mlp_relu_large_init_clipped",
                    initializer="large_normal")  # fmt: skip
    irnn = _with(make_record("rnn_irnn", "mitigated", clipnorm=1.0), "rnn_irnn", "rnn", cell="simple")
    assert classify(base, he) == "he_relu_bn"
    assert classify(base, selu) == "selu_lecun"
    assert classify(base, residual) == "residual"
    assert classify(glorot, he_only) == "he_init"
    assert classify(simple, gru) == "gated_rnn"
    assert classify(large, clipped) == "clipping"
    assert classify(simple, irnn) == "irnn"
    # A clipping pair whose records show no clipping (a sweep set clipnorm off) is no clipping evidence.
    assert classify(large, _with(make_record("mlp_relu_large_init_clipped", "mitigated"), "mlp_relu_large_init_clipped")) is None

    entries, skipped = pair_entries([base, he])
    assert skipped == [] and len(entries) == 1
    e = entries[0]
    assert e.fix == "he_relu_bn" and e.depth == 20 and e.weight_layers == 2 and e.seeds == 1
    assert e.baseline.first_last_ratio == 1e-17 and e.mitigated.first_last_ratio == 18.0
    assert e.baseline.best_score == 0.09 and e.mitigated.verdict == "healthy"


def test_a_swept_clipnorm_is_clipping_evidence_with_the_gradient_through_time():
    off = make_record("rnn_simple", sweep={"dataset.length": 50, "optimizer.clipnorm": 0}, peak=2e3,
                      temporal=temporal_log([0.3, 1e-30]))  # fmt: skip
    on = make_record("rnn_simple", sweep={"dataset.length": 50, "optimizer.clipnorm": 1.0}, clipnorm=1.0, peak=2e3,
                     temporal=temporal_log([0.3, 1e-20]))  # fmt: skip
    other = make_record("rnn_simple", sweep={"dataset.length": 20, "optimizer.clipnorm": 1.0}, clipnorm=1.0)
    entries, _ = pair_entries([off, on, other])
    assert [e.fix for e in entries] == ["clipping"]
    e = entries[0]
    assert e.baseline.clipping is None and e.mitigated.clipping == "clipnorm=1"
    assert e.mitigated.clip_rate == 0.4 and e.baseline.peak_global_norm == 2e3
    assert e.baseline.early_late_ratio_init == 0.3 and e.baseline.early_late_ratio == 1e-30
    assert e.baseline.verdict == "exploding"


def test_the_shipped_evidence_reads_through_its_type_and_writes_back_the_same_bytes():
    from gradzoo.benchmarks.doctor.evidence import SHIPPED, evidence_text

    assert evidence_text(load_evidence()) == SHIPPED.read_text()


def test_an_evidence_file_with_a_renamed_field_is_refused(tmp_path):
    import pydantic

    path = tmp_path / "evidence.json"
    path.write_text(load_evidence().model_dump_json().replace('"first_last_ratio"', '"first_last"'))
    with pytest.raises(pydantic.ValidationError, match="first_last"):
        load_evidence(path)
