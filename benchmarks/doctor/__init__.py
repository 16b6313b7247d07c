"""The doctor: why doesn't my model train?

`diagnose(model, x, y)` (and `gradzoo doctor MODEL.keras`) measures a user's
own model the way the harness measures the zoo's: per-layer gradient norms at
the given weights and over a short probe training of a copy, with the model's
own loss and optimizer; saturated and dead units; the gradient through time of
recurrent layers; the global norm before and after clipping. It then gives a
verdict per region of the network with the harness's thresholds
(`gradzoo.benchmarks.analysis.verdicts`), names the layers where the gradient
collapses or blows up, and ranks suggestions, each backed by numbers from
gradzoo's own reference runs (`gradzoo.benchmarks.doctor.evidence`).

```python
from gradzoo.benchmarks.doctor import diagnose

report = diagnose(model, x_train, y_train, steps=50)
print(report.text())           # the terminal summary
report.verdict                 # "vanishing", "exploding" or "healthy"
report.write_html("doctor/")   # one page with the gradient-flow figure
```

The user's model object and weights are never changed: the probe trains a
copy.
"""

__all__ = ["Diagnosis", "diagnose"]


def __getattr__(name):
    # Lazy: `gradzoo --help` imports the doctor's command module, which must not load Keras.
    if name in __all__:
        from gradzoo.benchmarks.doctor import diagnosis

        return getattr(diagnosis, name)
    raise AttributeError(f"module 'gradzoo.benchmarks.doctor' has no attribute {name!r}")
