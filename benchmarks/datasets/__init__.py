"""Datasets for gradzoo: the embedded offline tasks and the real
tensorflow-datasets ones, behind one `Dataset` type.

Embedded (generated from `seed`, no network, cached on disk as `.npz`):
`mnist1d`, `adding`, `copy_memory` (`gradzoo.benchmarks.datasets.embedded`). Real
(through tensorflow-datasets, `gradzoo.benchmarks.datasets.real`): `mnist`,
`fashion_mnist`, `cifar10`, `cifar100`, `imdb_reviews`, `seq_mnist`,
`permuted_seq_mnist`.

Every dataset fits in memory, so splits are `(x, y)` NumPy pairs; the one
exception is the augmented CIFAR training split, a seeded batch source that
draws a fresh pad-4 crop and flip each epoch. Both are backend-agnostic:
nothing here needs TensorFlow unless a real dataset is read with it.

Example:

```python
from gradzoo.benchmarks.datasets import load_dataset

ds = load_dataset("adding", seed=0, length=200)
model.compile(optimizer="adam", loss=ds.make_loss(), metrics=[ds.make_metric()])
model.fit(*ds.train, validation_data=ds.val, batch_size=128)
```
"""

from gradzoo.benchmarks.datasets.base import (
    SPLITS,
    Dataset,
    DatasetInfo,
    DatasetNotAvailableError,
    Signature,
    dataset_info,
    dataset_signature,
    list_datasets,
    load_dataset,
    resolve_params,
    split_off_validation,
)

# Importing the modules registers their datasets, embedded first.
from gradzoo.benchmarks.datasets import embedded as _embedded  # noqa: F401,E402
from gradzoo.benchmarks.datasets import real as _real  # noqa: F401,E402



def check_available(name: str, data_dir=None) -> None:
    """Raises a one-sentence `DatasetNotAvailableError` if a real dataset is not prepared (embedded ones always are)."""
    if not dataset_info(name).embedded:
        _real.check_prepared(name, data_dir)


__all__ = [
    "check_available", "SPLITS", "Dataset", "DatasetInfo", "DatasetNotAvailableError", "Signature", "dataset_info",
    "dataset_signature", "list_datasets", "load_dataset", "resolve_params", "split_off_validation",
]
