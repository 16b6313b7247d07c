"""`pip install gradzoo` adds one import name, `gradzoo`: no top-level `zoo` or `benchmarks` (both are taken
on the package index, and `benchmarks` is a folder in countless repositories), with the data files the
package reads (suites, the doctor's evidence, the pretrained weights) inside it."""

import os
import shutil
import subprocess
import sys
import zipfile

from helpers import ROOT

SOURCES = ("gradzoo", "zoo", "benchmarks", "setup.py", "pyproject.toml", "README.md")


def test_the_wheel_installs_one_package_named_gradzoo(tmp_path):
    src = tmp_path / "src"  # a copy, so the build leaves no build/ or egg-info in the checkout
    src.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(ROOT / name, src / name)
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp_path / "dist"), str(src)], capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("gradzoo-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"gradzoo"}, sorted(tops)
    for needed in ("gradzoo/zoo/registry.py", "gradzoo/benchmarks/cli.py", "gradzoo/benchmarks/suites/quick.toml",
                   "gradzoo/benchmarks/doctor/evidence.json", "gradzoo/zoo/weights/manifest.json",
                   "gradzoo/benchmarks/harness/records/schema.py"):  # fmt: skip
        assert needed in names, needed
    # Every package of the checkout is in the wheel (setup.py finds them: a new subpackage needs no edit).
    for folder in ("zoo", "benchmarks"):
        for init in (ROOT / folder).rglob("__init__.py"):
            assert "gradzoo/" + init.relative_to(ROOT).as_posix() in names, init
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "gradzoo = gradzoo.benchmarks.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()


def test_the_installed_checkout_imports_as_gradzoo_only():
    # As installed (`pip install -e .`): PYTHONPATH, which would put the checkout's folders on the path, is dropped.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    code = ("import importlib.util, gradzoo, gradzoo.zoo, gradzoo.benchmarks.cli; "
            "print(importlib.util.find_spec('zoo'), importlib.util.find_spec('benchmarks'))")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/", env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["None", "None"]
