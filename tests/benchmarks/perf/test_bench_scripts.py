"""The speed benchmarks still run and print their tables: they are how the
issue's speed targets are checked, so they must not rot between measurements.
Sizes are shrunk here; the figures themselves are not asserted (timing on a
shared CI machine is noise)."""

import math

import pytest

from gradzoo.benchmarks.perf import bench_data, bench_ray, bench_recorder


def test_bench_recorder_prints_and_writes_its_table(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(bench_recorder, "CASES", {"mlp": ("mlp_he_relu_bn", (40,), 10, 256)})
    out = tmp_path / "speed" / "recorder.md"
    bench_recorder.main(["--repeats", "1", "--epochs", "1", "--models", "mlp", "--out", str(out)])
    printed = capsys.readouterr().out
    row = next(line for line in printed.splitlines() if line.startswith("| mlp_he_relu_bn |"))
    ratios = [float(cell) for cell in row.strip("|").split("|")[3:]]
    assert len(ratios) == 3 and all(math.isfinite(r) and r > 0 for r in ratios)
    text = out.read_text()
    assert row in text and "python -m gradzoo.benchmarks.perf.bench_recorder" in text


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["--repeats", "0"], "--repeats: expected a positive integer, received '0'"),
        (["--epochs", "x"], "--epochs: expected a positive integer, received 'x'"),
        (["--models", "vgg"], "unknown --models ['vgg']; choose from mlp, resnet, lstm"),
    ],
)
def test_bench_recorder_bad_arguments_are_one_sentence(argv, fragment, capsys):
    with pytest.raises(SystemExit) as exc:
        bench_recorder.main(argv)
    assert exc.value.code == 2
    assert fragment in capsys.readouterr().err


def test_bench_data_prints_its_table(capsys):
    bench_data.main(["--only", "adding", "--repeats", "1", "--steps", "2"])
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| adding-100 |"))
    assert "| rnn_lstm |" in row and row.endswith("x |")


def test_bench_data_names_an_unmatched_case(capsys):
    with pytest.raises(SystemExit):
        bench_data.main(["--only", "imagenet"])
    assert "--only 'imagenet' matches no case" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["--runs", "6"], "--runs must be an even number of at least 8 (two models, several seeds); got 6"),
        (["--runs", "9"], "--runs must be an even number of at least 8"),
        (["--cpus-per-run", "0"], "--cpus-per-run: expected a positive integer, received '0'"),
    ],
)
def test_bench_ray_bad_arguments_are_one_sentence(argv, fragment, capsys):
    # Its timed runs start Ray and train suites (minutes): tests/test_ray.py covers the executor they time.
    with pytest.raises(SystemExit) as exc:
        bench_ray.main(argv)
    assert exc.value.code == 2
    assert fragment in capsys.readouterr().err
