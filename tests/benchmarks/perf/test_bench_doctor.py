"""`bench_doctor` still runs and prints both tables (sizes shrunk; the figures are not asserted)."""

from gradzoo.benchmarks.perf import bench_doctor


def test_bench_doctor_prints_both_tables(monkeypatch, capsys):
    monkeypatch.setattr(bench_doctor, "CASES", {"mlp": ("mlp_he_relu_bn", (40,), 10, 256)})
    tiny = ("mlp_sigmoid_deep", {"depth": 12, "width": 8}, "mnist1d", {"shape": "flat", "num_samples": 300})
    monkeypatch.setattr(bench_doctor, "DOCTOR_CASES", {"mlp": tiny})
    bench_doctor.main(["--repeats", "1", "--epochs", "1", "--steps", "2", "--models", "mlp", "--families", "mlp"])
    printed = capsys.readouterr().out
    tb = next(line for line in printed.splitlines() if line.startswith("| mlp_he_relu_bn |"))
    assert float(tb.strip("|").split("|")[3]) > 0
    doctor = next(line for line in printed.splitlines() if line.startswith("| mlp_sigmoid_deep |"))
    assert "| vanishing |" in doctor
