"""Shared test helpers: typed records made by hand, and CLI error capture."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from gradzoo.benchmarks.harness.records import (
    ActivationLog,
    DatasetSummary,
    EpochStats,
    Environment,
    GradientLog,
    Hardware,
    History,
    LayerInfo,
    ModelInfo,
    RunConfig,
    RunRecord,
    Summary,
    TemporalLog,
)

ROOT = Path(__file__).resolve().parent.parent  # the repository
DATA = Path(__file__).resolve().parent / "data"  # suite files and records the tests read

MNIST1D = dict(name="mnist1d", params={"seed": 0}, description="", embedded=True, task="classification",
               input_shape=[40], input_dtype="float32", num_outputs=10, sequence_output=False,
               loss="sparse_categorical_crossentropy", metric="accuracy", metric_mode="max", chance=0.1, target=0.6,
               n_train=3600, n_val=400, n_test=1000, preprocessing={})  # fmt: skip


def make_record(model="mlp_sigmoid_deep", role="baseline", ratio=1e-9, *, best=0.09, seed=0, epochs_to_target=None,
                diverged_step=None, peak=1.0, clipnorm=None, group="g", suite="s", sweep=None, phase="eval",
                train_loss=1.0, test=None, temporal=None, dataset=None, overrides=None, optimizer=None,
                baseline="mlp_sigmoid_deep", tuning=None, tuned_over=None) -> RunRecord:  # fmt: skip
    """A small typed record: two weight layers (first, last) and a norm layer, one epoch."""
    config = RunConfig(model=model, dataset="mnist1d", seed=seed, epochs=30, suite=suite, group=group, sweep=sweep or {},
                       phase=phase, model_overrides=overrides or {}, optimizer=optimizer or {}, tuned_over=tuned_over)  # fmt: skip
    gradients = GradientLog(
        layers=[LayerInfo("dense_0", 0, "weight", 10), LayerInfo("bn_0", 1, "norm", 2), LayerInfo("head", 2, "weight", 10)],
        first_steps=100, stride=10, steps=[0], norms=[[ratio, 5.0, 1.0]], global_norm_pre=[peak], global_norm_post=[peak],
        clipped=[False],
        epoch=EpochStats(min=[[ratio, 5.0, 1.0]], mean=[[ratio, 5.0, 1.0]], max=[[ratio, 5.0, 1.0]],
                         global_pre_mean=[peak], global_pre_max=[peak], clip_rate=[0.4 if clipnorm else 0.0]),
        nonfinite_step=diverged_step, steps_seen=1,
    )  # fmt: skip
    instruments = {"gradient_norms": gradients, "activations": ActivationLog(layers=[], saturation_level=0.99, per_epoch=[])}
    if temporal is not None:
        instruments["temporal"] = temporal
    return RunRecord(
        run_id=f"{model}-{seed}-{group}-{sorted((sweep or {}).items())}",
        created="2026-01-01T00:00:00+00:00",
        config=config,
        optimizer={"name": "adam", **({"clipnorm": clipnorm} if clipnorm else {})},
        model=ModelInfo(name=model, family="mlp", role=role, baseline=None if role == "baseline" else baseline,
                        partners=[], description="", defaults={}, optimizer={}, reference="", architecture=model,
                        pair=model if role == "baseline" else baseline),  # fmt: skip
        dataset=DatasetSummary(**{**MNIST1D, **(dataset or {})}),
        env=Environment(gradzoo="0", keras="3", backend="tensorflow", backend_version="2", python="3.11", platform="x",
                        hardware=Hardware("x86_64", None, 2, []), git_commit=None),  # fmt: skip
        status="diverged" if diverged_step is not None else "completed",
        diverged_step=diverged_step,
        history=History(epoch=[1], loss=[train_loss], metric=[best], val_loss=[1.0], val_metric=[best], epoch_train_s=[1.0]),
        summary=Summary(epochs_run=30, steps_run=300, final_train_loss=train_loss, final_val_loss=1.0,
                        final_train_metric=best, final_val_metric=best, best_val_metric=best, test_loss=None,
                        test_metric=test, test_metrics={}, steps_to_target=None if epochs_to_target is None else 10 * epochs_to_target,
                        epochs_to_target=epochs_to_target, seconds_to_target=None, train_s=1.0, fit_s=1.0, setup_s=0.1,
                        samples_per_s=100.0, num_params=22),  # fmt: skip
        instruments=instruments,
        tuning=tuning,
    )


def temporal_log(ratios, profile=(1e-9, 1.0)) -> TemporalLog:
    return TemporalLog(epochs=list(range(len(ratios))), profiles=[list(profile)] * len(ratios),
                       early_late_ratio=list(ratios), edge_fraction=0.1)  # fmt: skip


def replace(record: RunRecord, **changes) -> RunRecord:
    return dataclasses.replace(record, **changes)


def cli_error(main, args, capsys) -> str:
    """Runs the CLI and returns its stderr, asserting one line, no traceback and a non-zero exit."""
    with pytest.raises(SystemExit) as info:
        raise SystemExit(main(args))
    err = capsys.readouterr().err
    assert info.value.code not in (0, None), err
    assert "Traceback" not in err, err
    return err


def tiny_suite(models=("mlp_he_relu_bn",), epochs: int = 1) -> str:
    """A suite's text: one group of tiny MLPs (depth 2, width 8) on 200 MNIST-1D examples; seconds per run."""
    listed = ", ".join(f'"{m}"' for m in models)
    return (f"epochs = {epochs}\nseeds = 1\nbatch_size = 32\n[[runs]]\nname = \"tiny\"\nmodels = [{listed}]\n"
            'dataset = "mnist1d"\ndataset_params = { num_samples = 200, shape = "flat" }\n'
            "model_overrides = { depth = 2, width = 8 }\n")
