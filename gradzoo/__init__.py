"""gradzoo: a Keras 3 model zoo and benchmark for vanishing and exploding gradients.

Everything installs under this one name (`zoo` and `benchmarks` are taken on
the package index, and `benchmarks` is a folder in countless repositories):

```python
import gradzoo
model = gradzoo.zoo.build("resnet_56_1d", (40, 1), 10)       # the model zoo
model = gradzoo.zoo.load_pretrained("resnet_56_1d.mnist1d")  # pretrained, by name
from gradzoo import GradientRecorder                         # per-layer gradient norms in your own fit
report = gradzoo.diagnose(model, x, y)                        # the doctor
```

`gradzoo.zoo` is the repository's `zoo/` folder and `gradzoo.benchmarks` its
`benchmarks/` folder: a wheel puts them inside this package, and in a source
checkout this module finds them beside itself.
"""

from __future__ import annotations

from pathlib import Path

__version__ = "0.2.0"
__all__ = ["zoo", "benchmarks", "GradientRecorder", "diagnose", "Diagnosis", "__version__"]

# A source checkout (an editable install, a worktree on PYTHONPATH): `zoo/` and `benchmarks/` sit beside this
# folder rather than inside it, so the checkout joins this package's search path and `gradzoo.zoo` is `zoo/`.
# (setuptools' editable finder maps them too, but always to the checkout that was installed, not a worktree.)
_HERE = Path(__file__).resolve().parent
_CHECKOUT = _HERE.parent
if not (_HERE / "zoo").is_dir() and (_CHECKOUT / "zoo" / "__init__.py").is_file():
    __path__.append(str(_CHECKOUT))  # noqa: F821  (a package's __path__)

_LAZY = {  # imported on first use, so `import gradzoo` does not load Keras
    "zoo": ("gradzoo.zoo", None),
    "benchmarks": ("gradzoo.benchmarks", None),
    "GradientRecorder": ("gradzoo.benchmarks.harness.instruments.recorder", "GradientRecorder"),
    "diagnose": ("gradzoo.benchmarks.doctor.diagnosis", "diagnose"),
    "Diagnosis": ("gradzoo.benchmarks.doctor.diagnosis", "Diagnosis"),
}


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'gradzoo' has no attribute {name!r}")
    import importlib

    module_name, attribute = _LAZY[name]
    module = importlib.import_module(module_name)
    return module if attribute is None else getattr(module, attribute)


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
