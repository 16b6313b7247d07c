"""No code outside zoo/ tells what a model fixes or can be measured through from its name or family:
it reads the declarations (`zoo.get_spec(name).fixes`, `zoo.measured_through(name)`)."""

import io
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Fragments of zoo model names, and the zoo families. A string literal holding one that is compared
# (`==`, `!=`, `in`, `startswith`) on a line about a model's name or family is a name tested in code.
NAME_FRAGMENTS = ("resnet", "residual", "plain_", "lstm", "gru", "selu", "irnn", "_bn", "clipped", "sigmoid_deep",
                  "large_init", "mlp_", "rnn_")  # fmt: skip
FAMILIES = ("mlp", "cnn", "rnn")
NAMEISH = {"name", "model", "model_name", "label", "architecture", "family", "pair", "baseline", "registry_model"}
# perf/torch_peers.py rebuilds each zoo architecture in PyTorch, so it dispatches on the builder family:
# that is which builder to mirror, not what the model fixes or measures.
ALLOWED = {"benchmarks/perf/torch_peers.py"}


def _named(tok) -> bool:
    text = tok.string.lower()
    return tok.type == tokenize.STRING and (any(f in text for f in NAME_FRAGMENTS) or text.strip("\"'") in FAMILIES)


def _compared(line) -> bool:
    """Whether a name-like string literal is an operand of a comparison or a substring search."""
    words = [t.string for t in line]
    for i, tok in enumerate(line):
        if not _named(tok):
            continue
        before, after = words[i - 1] if i else "", words[i + 1] if i + 1 < len(words) else ""
        if after in ("==", "!=", "in", "not") or before in ("==", "!="):
            return True
        # Inside the parentheses of `in (...)`, `startswith(...)` or `endswith(...)`.
        depth = 0
        for j in range(i - 1, 0, -1):
            depth += {")": 1, "]": 1, "(": -1, "[": -1}.get(words[j], 0)
            if depth < 0:
                if words[j - 1] in ("in", "startswith", "endswith"):
                    return True
                depth = 0
    return False


def name_tests(source: str) -> list[tuple[int, str]]:
    """(line, text) of each logical line whose code tests a zoo model's name or family against a literal."""
    found, line = [], []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type in (tokenize.NEWLINE, tokenize.ENDMARKER):
            # A `for` statement iterates over names (a listing); it tests none.
            if line and line[0].string != "for" and {t.string for t in line if t.type == tokenize.NAME} & NAMEISH and _compared(line):
                found.append((line[0].start[0], " ".join(t.string for t in line)))
            line = []
        elif tok.type not in (tokenize.COMMENT, tokenize.NL, tokenize.INDENT, tokenize.DEDENT):
            line.append(tok)
    return found


def test_the_scanner_catches_what_it_is_for():
    assert name_tests('if any(w in m.name for w in ("resnet", "residual")):\n    pass\n')
    assert name_tests('if spec.family != "rnn":\n    pass\n')
    assert name_tests('ok = name.startswith("plain_")\n')
    assert name_tests('is_rnn = model.family in ("rnn",)\n')
    assert not name_tests('"""A ResNet in the zoo: residual blocks."""\nCASES = {"rnn_lstm": 1}\nfor family in ("mlp", "cnn"):\n    pass\n')
    assert not name_tests('ok = "time" in zoo.measured_through(name)\nrelu = layer.activation == "selu"\n')


def test_no_code_outside_the_zoo_tests_a_model_name():
    files = [p for folder in ("benchmarks", "gradzoo") for p in sorted((ROOT / folder).rglob("*.py"))]
    scanned = [p for p in files if p.relative_to(ROOT).as_posix() not in ALLOWED]
    assert len(scanned) > 50, len(scanned)  # the whole harness, not an empty glob
    assert any(p.name == "evidence.py" for p in scanned) and any(p.name == "run_one.py" for p in scanned)
    offenders = [f"{p.relative_to(ROOT)}:{n}: {text}" for p in scanned for n, text in name_tests(p.read_text())]
    assert not offenders, "\n".join(offenders)
