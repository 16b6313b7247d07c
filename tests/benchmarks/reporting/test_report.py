"""The report: built from a tiny suite's records, self-contained, with verdicts in words."""

import re
from pathlib import Path

import numpy as np
import pytest

from helpers import DATA, make_record, temporal_log

from gradzoo.benchmarks.analysis import verdicts
from gradzoo.benchmarks.analysis.formatting import format_number
from gradzoo.benchmarks.cli import main
from gradzoo.benchmarks.reporting import report
from gradzoo.benchmarks.reporting.html import markdown_to_html

TINY = str(DATA / "tiny.toml")


@pytest.fixture(scope="module")
def tiny_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny_report")
    assert main(["run", TINY, "--out", str(out)]) == 0
    assert main(["report", "--results", str(out)]) == 0
    return out


def test_report_builds_and_every_figure_exists(tiny_report):
    md = (tiny_report / "report.md").read_text()
    page = (tiny_report / "report.html").read_text()
    figures = re.findall(r"!\[[^\]]*\]\((figures/[^)]+)\)", md)
    # 3 pairs x (curves, gradient flow, heatmap, global norm, activations: sigmoid/ReLU MLPs and the tanh
    # SimpleRNN), gradient through time for the 2 RNN pairs, and the clipnorm sweep.
    assert len(figures) == 3 * 5 + 2 + 1
    for rel in figures:
        assert (tiny_report / rel).is_file(), rel
        assert (tiny_report / rel).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in (tiny_report / "figures").glob("*.png")) == sorted(Path(f).name for f in figures)
    # Self-contained: every image inline, nothing fetched from a network.
    assert page.count('src="data:image/png;base64,') == len(figures)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert all(src.startswith("data:") for src in re.findall(r'src="([^"]*)"', page))
    # Provenance, thresholds, the comparison table and a verdict per model.
    for text in (md, page):
        assert "Suite" in text and "tiny" in text and "seeds 0" in text
        assert "Keras 3." in text and "CPU cores" in text and "Report generated" in text
        assert f"below {format_number(verdicts.VANISHING_RATIO)} times" in text
        assert "mlp_he_relu_bn" in text and "rnn_gru" in text
    assert "| suite | group | sweep |" in md
    assert "<table>" in page
    assert re.search(r"`mlp_sigmoid_deep\[depth=6, width=16\]`: \*\*vanishing\*\*; first-layer gradient \S+ of the last layer's", md)
    assert "Fraction of units saturated for sigmoid (output within 0.01 of a bound) or dead for ReLU" in md
    assert "Fraction of units saturated for tanh" in md


def test_report_rebuild_removes_stale_figures(tiny_report):
    stale = tiny_report / "figures" / "gone_pair_curves.png"
    stale.write_bytes(b"old")
    paths = report.build_report(tiny_report)
    assert not stale.exists()
    assert set(paths["figures"]) == set((tiny_report / "figures").glob("*.png"))
    assert paths["html"].is_file() and paths["markdown"].is_file()


def test_verdict_in_words_vanishing_and_healthy():
    sigmoid = verdicts.verdict_in_words([make_record("mlp_sigmoid_deep", "baseline", 1e-9)])
    assert sigmoid.startswith("`mlp_sigmoid_deep`: **vanishing**")
    assert "first-layer gradient 1e-9 of the last layer's" in sigmoid
    assert "never left chance level in 30 epochs" in sigmoid

    healthy = verdicts.verdict_in_words([make_record("mlp_he_relu_bn", "mitigated", 0.8, best=0.88, epochs_to_target=12)])
    assert healthy.startswith("`mlp_he_relu_bn`: **healthy**")
    assert "ratio 0.8" in healthy and "reached the target 0.6 in epoch 12" in healthy
    assert "vanishing" not in healthy and "exploding" not in healthy


def test_verdict_in_words_exploding_clipped_and_seeds():
    exploded = verdicts.verdict_in_words([make_record("mlp_relu_large_init", "baseline", 1.0, diverged_step=37)])
    assert "**exploding**" in exploded and "diverged (non-finite loss or gradient) at step 37" in exploded

    clipped = verdicts.verdict_in_words([make_record("mlp_relu_large_init_clipped", "mitigated", 1.0, peak=5e4, clipnorm=1.0, best=0.3)])
    assert "**exploding**" in clipped and "peaked at 5e4" in clipped
    assert "clipping (clipnorm=1) shrank 40% of updates" in clipped
    assert "left chance level but missed the target" in clipped

    seeds = [make_record("m", "baseline", 1e-9), make_record("m", "baseline", 1e-8), make_record("m", "baseline", 0.5)]
    text = verdicts.verdict_in_words(seeds)
    assert "**vanishing** in 2 of 3 seeds (healthy in 1)" in text and "median of 3 seeds" in text


def test_verdict_in_words_through_time():
    record = make_record("rnn_simple", "baseline", 0.9, temporal=temporal_log([1e-9, 2e-9]))
    text = verdicts.verdict_in_words([record])
    assert "**vanishing**" in text
    assert "the gradient reaching the first 10% of input steps is 2e-9 of that reaching the last 10%" in text
    assert "first/last-layer ratio 0.9" in text
    assert any("through time" in line for line in verdicts.thresholds_lines([record]))
    assert not any("through time" in line for line in verdicts.thresholds_lines([make_record("m", "baseline", 0.9)]))


def test_left_chance_threshold():
    # chance 0.1, target 0.6: leaving chance needs more than 0.1 + 0.1 * 0.5 = 0.15.
    assert not verdicts.left_chance(0.15, 0.1, 0.6, "max")
    assert verdicts.left_chance(0.16, 0.1, 0.6, "max")
    # Lower is better (MSE): chance 1/6, target 0.01.
    assert verdicts.left_chance(0.1, 1 / 6, 0.01, "min")
    assert not verdicts.left_chance(0.16, 1 / 6, 0.01, "min")
    assert not verdicts.left_chance(None, 0.1, 0.6, "max")


def test_markdown_to_html_inlines_only_the_reports_own_figures(tmp_path):
    figures = tmp_path / "figures"
    figures.mkdir()
    (figures / "a.png").write_bytes(b"\x89PNG\r\n\x1a\nfake")
    secret = tmp_path / "id_rsa"
    secret.write_text("PRIVATE KEY")
    (figures / "link.png").symlink_to(secret)
    text = ("# T <script>alert(1)</script>\n\n- `x` <b>\n\n![a](figures/a.png)\n*cap*\n\n| h |\n|---|\n| **c** |\n\n"
            f"![stolen](figures/../id_rsa) ![abs]({secret}) ![link](figures/link.png)\n")
    page = markdown_to_html(text, figures)
    assert "<h1>" in page and "&lt;script&gt;" in page and "<script>" not in page
    assert "<code>x</code> &lt;b&gt;" in page
    assert page.count('src="data:image/png;base64,') == 1 and "<em>cap</em>" in page
    assert "<td><strong>c</strong></td>" in page
    import base64

    assert base64.b64encode(b"PRIVATE KEY").decode() not in page and "id_rsa" not in page.split("<body>")[1].split("stolen")[0]
    assert "stolen" in page and "abs" in page and "link" in page  # shown as their alt text, nothing embedded


def test_a_group_name_with_markdown_cannot_embed_a_file(tmp_path, capsys):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    suite = tmp_path / "evil.toml"
    suite.write_text(f'epochs = 1\nbatch_size = 32\n[[runs]]\nname = "x\\n![s]({secret})"\nmodels = ["mlp_he_relu_bn"]\n'
                     'dataset = "mnist1d"\ndataset_params = { num_samples = 100, shape = "flat" }\n'
                     'model_overrides = { depth = 1, width = 4 }\n')
    assert main(["run", str(suite), "--out", str(tmp_path / "out")]) == 2
    assert "control characters" in capsys.readouterr().err
    suite.write_text(suite.read_text().replace("\\n", " "))
    assert main(["run", str(suite), "--out", str(tmp_path / "out")]) == 0
    assert main(["report", "--results", str(tmp_path / "out")]) == 0
    import base64

    page = (tmp_path / "out" / "report.html").read_text()
    assert base64.b64encode(b"TOP SECRET").decode() not in page and "TOP SECRET" not in page


@pytest.mark.parametrize("make, fragment", [
    (lambda p: p / "missing", "does not exist"),
    (lambda p: (p / "file.txt").write_text("x") and p / "file.txt", "is a file"),
    (lambda p: (p / "empty").mkdir() or p / "empty", "holds no readable run records"),
])
def test_bad_results_dir_is_one_sentence(tmp_path, capsys, make, fragment):
    path = make(tmp_path)
    assert main(["report", "--results", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gradzoo: error: ") and fragment in err
    assert "Traceback" not in err and err.count("\n") == 1
    with pytest.raises(ValueError, match=fragment):  # a UserError is a ValueError too
        report.build_report(path)


@pytest.mark.parametrize(
    "value, text",
    [
        (None, "–"),
        (float("nan"), "–"),
        (np.float64(3.2e-7), "3.2e-7"),
        (0.85, "0.85"),
        (12.0, "12"),
        (np.int64(7), "7"),
        (1234.5, "1234"),
        (123456.0, "1.2e5"),
        (float("-inf"), "-inf"),
        ("healthy", "healthy"),
    ],
)
def test_numbers_read_the_same_in_tables_report_and_readme(value, text):
    from gradzoo.benchmarks.analysis.formatting import format_mean_std, format_number

    assert format_number(value) == text
    assert format_mean_std(value, 0.0) == ("–" if text == "–" else f"{text} ± 0")
