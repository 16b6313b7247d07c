"""The accelerator-scale speed scripts still run and print their tables, at tiny
sizes on the CPU: `bench_gpu` (Keras against a PyTorch twin) and
`bench_harness` (`gradzoo run` against `--no-gradients`). The figures are not
asserted: timing on a shared CI machine is noise."""

import importlib.util
import math

import numpy as np
import pytest

from gradzoo.benchmarks.perf import bench_gpu, bench_harness

SUITE = """
epochs = 2
batch_size = 32
[[runs]]
name = "one"
models = ["mlp_he_relu_bn"]
dataset = "mnist1d"
dataset_params = { num_samples = 200, shape = "flat" }
model_overrides = { depth = 2, width = 8 }
"""


def _cells(printed: str, model: str) -> list[str]:
    row = next(line for line in printed.splitlines() if line.startswith(f"| {model} |"))
    return [cell.strip() for cell in row.strip("|").split("|")]


def test_bench_gpu_tiny_prints_one_table_with_the_device(tmp_path, capsys):
    out = tmp_path / "gpu.md"
    bench_gpu.main(["--size", "tiny", "--models", "resnet_20", "--out", str(out)])
    printed = capsys.readouterr().out
    assert "no accelerator found" in printed  # CI has none; on a GPU machine this names it
    resnet = _cells(printed, "resnet_20")
    assert resnet[1] == "tiny (8, 8, 3), synthetic"
    bare, recorded, ratio = float(resnet[2].replace(",", "")), float(resnet[3].replace(",", "")), float(resnet[4])
    assert bare > 0 and recorded > 0 and math.isclose(ratio, recorded / bare, rel_tol=0.02)
    assert resnet[5] != "n/a"  # mixed_bfloat16 runs on a CPU
    if importlib.util.find_spec("torch") is None:
        assert "PyTorch columns skipped: PyTorch is not installed (`pip install gradzoo[peer]`)" in printed
        assert resnet[6] == resnet[7] == "n/a"
    else:
        assert float(resnet[6].replace(",", "")) > 0 and float(resnet[8]) > 0
    assert "python -m gradzoo.benchmarks.perf.bench_gpu" in out.read_text() and "| resnet_20 |" in out.read_text()


def test_bench_gpu_says_when_cifar_images_are_synthetic(tmp_path):
    x, y, source = bench_gpu.inputs(bench_gpu.CASES["resnet_56"], (32, 32, 3), 6, data_dir=str(tmp_path))
    assert source == "synthetic (CIFAR-10 not prepared)" and x.shape == (6, 32, 32, 3) and y.shape == (6,)


def test_bench_gpu_skips_only_the_pytorch_columns_without_torch(monkeypatch, capsys):
    found = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else found(name, *a))
    bench_gpu.main(["--size", "tiny", "--models", "rnn_lstm"])
    printed = capsys.readouterr().out
    assert "PyTorch columns skipped: PyTorch is not installed" in printed
    cells = _cells(printed, "rnn_lstm")
    assert float(cells[2].replace(",", "")) > 0 and cells[6] == cells[8] == "n/a"


def test_torch_twin_has_the_zoo_models_parameter_count():
    torch = pytest.importorskip("torch")  # noqa: F841  (the `peer` extra; CI runs without it)
    from gradzoo import zoo
    from gradzoo.benchmarks.perf import torch_peers

    for name, shape in [("resnet_20", (32, 32, 3)), ("rnn_lstm", (784, 1)), ("mlp_sigmoid_deep", (28, 28, 1))]:
        spec = zoo.get_spec(name)
        twin = torch_peers.build_peer({"name": name, "family": spec.family, "hparams": dict(spec.defaults)}, shape, 10)
        keras_params = zoo.build(name, shape, 10).count_params()
        torch_params = sum(p.numel() for p in twin.parameters())
        # Keras counts BatchNorm's moving statistics as (non-trainable) weights; PyTorch keeps them as buffers.
        buffers = sum(b.numel() for n, b in twin.named_buffers() if n.endswith(("running_mean", "running_var")))
        # PyTorch's LSTM has two bias vectors per gate where Keras has one.
        extra_bias = 4 * 128 if name == "rnn_lstm" else 0
        assert torch_params + buffers - extra_bias == keras_params, name


def test_bench_gpu_bad_models_is_one_sentence(capsys):
    with pytest.raises(SystemExit) as exc:
        bench_gpu.main(["--models", "vgg"])
    assert exc.value.code == 2 and "unknown --models ['vgg']" in capsys.readouterr().err


def test_bench_harness_times_each_run_both_ways(tmp_path, capsys):
    suite = tmp_path / "one.toml"
    suite.write_text(SUITE)
    out = tmp_path / "harness.md"
    bench_harness.main(["--suite", str(suite), "--repeats", "1", "--out", str(out)])
    text = out.read_text()
    row = next(line for line in text.splitlines() if line.startswith("| one | mlp_he_relu_bn"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    instrumented, plain, ratio = float(cells[4]), float(cells[5]), float(cells[6])
    assert instrumented > 0 and plain > 0 and np.isclose(ratio, plain / instrumented, rtol=0.01)
    # The epoch split adds up to the run's train_s (one repeat: the medians are the run's own).
    first, later = (float(v) for v in cells[8].split(" / ")), (float(v) for v in cells[9].split(" / "))
    for total, a, b in zip((instrumented, plain), first, later):
        assert np.isclose(a + b, total, rtol=0.02, atol=0.02)
    assert "python -m gradzoo.benchmarks.perf.bench_harness --suite" in text and "backend=" in text
