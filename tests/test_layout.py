"""The layout shows the flow: no import cycles, modules one can read in a sitting, public Keras only,
and the record read through its type everywhere."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("benchmarks", "zoo")  # the folders that install as gradzoo.benchmarks and gradzoo.zoo
MAX_LINES = 420  # "roughly 400": a module a reader can hold in one sitting


def _modules():
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            yield f"gradzoo.{name}", path


def _imports(path: Path, name: str) -> set[str]:
    """Project modules a module imports, at any depth (function-level imports count: a cycle is a cycle)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
    return {m for m in out if m.split(".")[:2] in (["gradzoo", p] for p in PACKAGES)}


def test_no_module_is_longer_than_one_sitting():
    long = {name: n for name, path in _modules() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert not long, long


def test_the_package_graph_has_no_cycles():
    modules = dict(_modules())
    graph = {}
    for name, path in modules.items():
        targets = set()
        for imported in _imports(path, name):
            # `from gradzoo.benchmarks.analysis import verdicts` names a module; `from x import f` names x.
            target = imported if imported in modules else imported.rsplit(".", 1)[0]
            if target in modules and target != name and not name.startswith(target + ".") and target != "gradzoo.benchmarks":
                targets.add(target)
        graph[name] = targets
    assert sum(map(len, graph.values())) > 100, "the import graph came out nearly empty: are the imports still gradzoo.*?"

    def package(module):  # gradzoo.benchmarks.harness.records.schema -> gradzoo.benchmarks.harness.records
        parts = module.split(".")
        depth = 4 if parts[2:3] == ["harness"] else 3  # the harness's parts (plan, run, instruments, records)
        return ".".join(parts[:depth]) if parts[1] == "benchmarks" and len(parts) > depth else module

    # Between subpackages (datasets -> harness -> analysis -> reporting -> commands), the arrows go one way.
    edges = {(package(a), package(b)) for a, targets in graph.items() for b in targets if package(a) != package(b)}
    cycles = [(a, b) for a, b in edges if (b, a) in edges]
    assert not cycles, sorted(cycles)

    # And no module imports itself back through others.
    state = {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in graph[node]:
            if state.get(nxt) == "open":
                raise AssertionError(f"import cycle: {' -> '.join(stack[stack.index(nxt):] + [nxt])}")
            if nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for node in graph:
        if node not in state:
            visit(node, [node])


def test_only_the_public_keras_api_is_used():
    used = [name for name, path in _modules() if "keras.src" in path.read_text()]
    assert not used, used


def test_records_are_read_through_their_type_outside_the_record_package():
    # A string-key read of a record (`record["config"]`, `r.get("gradients")`) bypasses the type.
    pattern = re.compile(r"""\b(?:record|rec|r)\s*(?:\[\s*["']|\.get\(\s*["'])(?:config|summary|history|gradients|temporal|dataset|model|env)\b""")
    offenders = []
    for name, path in _modules():
        if name.startswith("gradzoo.benchmarks.harness.records"):
            continue
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line):
                offenders.append(f"{name}:{i}: {line.strip()}")
    assert not offenders, offenders


def test_the_derived_manifests_are_read_through_their_types():
    # The doctor's evidence (`doctor/evidence_types.py`) and the pretrained manifest (`zoo/manifest.py`) have
    # types; a string-key read of one of their fields (`pair["baseline"]`, `.get("fixes")`) bypasses them.
    fields = {"fixes", "pairs", "baseline", "mitigated", "models", "test_metrics", "gradients", "history", "summary"}
    readers = ("gradzoo.benchmarks.doctor", "gradzoo.zoo", "gradzoo.benchmarks.train_pretrained",
               "gradzoo.benchmarks.commands.pretrained_command")  # fmt: skip
    offenders = []
    for name, path in _modules():
        if not name.startswith(readers):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            key = None
            if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
                key = node.slice.value
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get" and node.args:
                key = getattr(node.args[0], "value", None)
            if key in fields and ast.unparse(node) not in NOT_MANIFESTS:
                offenders.append(f"{name}:{node.lineno}: {ast.unparse(node)}")
    assert not offenders, offenders


# Reads of the same field names on what is not a manifest, each with why.
NOT_MANIFESTS = {
    "d.anatomy.get('fixes', ())": "a Diagnosis's anatomy: the doctor's reading of the user's model (Anatomy.to_dict())",
}
