"""A tensorflow-datasets builder with MNIST's name, version and features and random pixels and labels,
for tests that prepare "mnist" offline.

It lives in a top-level module of its own: tfds locates a builder's code from its module name, and a
test module's dotted name (pytest's importlib mode) sends it down a path that needs `importlib_resources`.
"""

import numpy as np
import tensorflow_datasets as tfds

TRAIN, TEST = 60, 20


class FakeMnist(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """MNIST's name, version and features; random pixels and labels."""

    name = "mnist"
    VERSION = tfds.core.Version("3.0.1")

    def _info(self):
        features = tfds.features.FeaturesDict(
            {"image": tfds.features.Image(shape=(28, 28, 1)), "label": tfds.features.ClassLabel(num_classes=10)}
        )
        return tfds.core.DatasetInfo(builder=self, features=features, supervised_keys=("image", "label"))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(0, TRAIN), "test": self._generate_examples(1, TEST)}

    def _generate_examples(self, seed, n):
        rng = np.random.default_rng(seed)
        for i in range(n):
            yield i, {"image": rng.integers(0, 256, (28, 28, 1), dtype=np.uint8), "label": int(rng.integers(10))}
