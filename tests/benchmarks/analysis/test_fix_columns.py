"""The comparison table and the report name each pair's fix from the mitigated model's declaration
(`zoo.register(..., fixes=...)`), so a reader sees what changed without knowing the zoo's names."""

from helpers import make_record

from gradzoo import zoo
from gradzoo.benchmarks.analysis.fixes import fixes_in_words, fixes_of
from gradzoo.benchmarks.analysis.tables import comparison_markdown, comparison_table, convergence_table


def _pair():
    return [make_record("mlp_sigmoid_deep", "baseline", seed=s) for s in (0, 1)] + [
        make_record("mlp_he_relu_bn", "mitigated", ratio=0.5, best=0.7, seed=s) for s in (0, 1)]


def test_the_comparison_names_the_declared_fix():
    declared = zoo.get_spec("mlp_he_relu_bn").fixes
    assert declared  # a mitigated model declares at least one fix
    comparison = comparison_table(convergence_table(_pair()))
    assert comparison.fixes.tolist() == [" + ".join(declared)]
    text = comparison_markdown(comparison)
    assert "| fix |" in text
    row = next(line for line in text.splitlines() if "`mlp_he_relu_bn`" in line)
    assert all(f"`{key}`" in row for key in declared), row


def test_a_baseline_or_an_unregistered_model_has_no_fix():
    assert fixes_of("mlp_sigmoid_deep") == ()
    assert fixes_of("no_such_model_here") == () and fixes_in_words("no_such_model_here") == ""
    assert fixes_in_words("rnn_lstm") == ", ".join(zoo.FIXES[k].name for k in zoo.get_spec("rnn_lstm").fixes)
