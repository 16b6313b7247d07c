"""Packaging glue that pyproject.toml cannot say: the repository's `zoo/` and `benchmarks/` folders
install as `gradzoo.zoo` and `gradzoo.benchmarks`, so `pip install gradzoo` adds one import name
(`zoo` and `benchmarks` are taken on the package index). Everything else is in pyproject.toml."""

from setuptools import find_packages, setup

FOLDERS = ("zoo", "benchmarks")
packages = ["gradzoo"] + [f"gradzoo.{name}" for folder in FOLDERS for name in [folder, *(
    f"{folder}.{sub}" for sub in find_packages(folder))]]
package_dir = {"gradzoo": "gradzoo", **{f"gradzoo.{folder}": folder for folder in FOLDERS}}

setup(packages=packages, package_dir=package_dir)
