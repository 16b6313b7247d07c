"""The manual's worked example of the doctor, generated: a user's model that does not train, the
doctor's output on it, the one change it suggests first, the doctor's output after the change, and
both models' validation curves.

```bash
python -m gradzoo.benchmarks.doctor.example            # rewrites the block between the doctor-example markers of EXAMPLE_FILE
python -m gradzoo.benchmarks.doctor.example --print    # prints the block instead
```

Everything is seeded and the kernels are deterministic (`deterministic_ops`),
so the block repeats exactly on the same backend (TensorFlow, which wrote the
README's) and a test can check the README against it. It takes seconds on a
CPU: MNIST-1D is embedded, the models are small.
"""

from __future__ import annotations

import argparse
import inspect
import sys
import tempfile
from pathlib import Path

from gradzoo.benchmarks.reporting.blocks import Block

EXAMPLE_FILE = "docs/doctor.md"  # relative to the repository root: the one line to change when the example moves
EXAMPLE = Block("doctor-example", EXAMPLE_FILE, "python -m gradzoo.benchmarks.doctor.example")
DATA = ["--dataset", "mnist1d", "--param", "shape=flat"]
EPOCHS = 8
BATCH = 128
SEED = 0


def my_model():
    """The user's model: ten sigmoid layers with a small init. It stays at chance."""
    import keras

    layers = [keras.Input((40,))]
    for i in range(10):
        small = keras.initializers.RandomNormal(stddev=0.05, seed=i)
        layers.append(keras.layers.Dense(64, activation="sigmoid", kernel_initializer=small, name=f"dense_{i}"))
    small = keras.initializers.RandomNormal(stddev=0.05, seed=10)
    layers.append(keras.layers.Dense(10, kernel_initializer=small, name="logits"))
    model = keras.Sequential(layers, name="my_model")
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss, metrics=["accuracy"])
    return model


def my_model_fixed():
    """The same model after the doctor's first suggestion: He-normal init, BatchNorm, ReLU."""
    import keras

    layers = [keras.Input((40,))]
    for i in range(10):
        he = keras.initializers.HeNormal(seed=i)
        layers.append(keras.layers.Dense(64, kernel_initializer=he, name=f"dense_{i}"))
        layers.append(keras.layers.BatchNormalization(name=f"bn_{i}"))
        layers.append(keras.layers.ReLU(name=f"relu_{i}"))
    layers.append(keras.layers.Dense(10, kernel_initializer=keras.initializers.HeNormal(seed=10), name="logits"))
    model = keras.Sequential(layers, name="my_model_fixed")
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss, metrics=["accuracy"])
    return model


def _doctor(path: Path) -> str:
    """What `gradzoo doctor PATH --dataset mnist1d --param shape=flat` prints (its defaults are the library's)."""
    from gradzoo.benchmarks.doctor import diagnose
    from gradzoo.benchmarks.doctor.loading import load_dataset_split, load_model_file

    x, y, label = load_dataset_split("mnist1d", {"shape": "flat"})
    return diagnose(load_model_file(path), x, y, data_label=label).text().rstrip("\n")


def _curve(build, dataset) -> list[float]:
    """Validation accuracy after each epoch, the data in the same seeded order per epoch for every model."""
    import keras

    from gradzoo.benchmarks.datasets.batches import EpochBatches
    from gradzoo.benchmarks.harness.run.callbacks import DataOrder

    keras.utils.set_random_seed(SEED)
    model = build()
    train = EpochBatches(*dataset.train, batch_size=BATCH, seed=SEED)
    history = model.fit(train, validation_data=dataset.val, validation_batch_size=BATCH, epochs=EPOCHS, shuffle=False,
                        callbacks=[DataOrder(train)], verbose=0)  # fmt: skip
    return [float(v) for v in history.history["val_accuracy"]]


def _source(fn) -> str:
    lines = inspect.getsource(fn).splitlines()
    body = [line for line in lines if not line.strip().startswith(('"""', "import keras"))]
    return "\n".join(body).replace("\n\n", "\n")


def example_markdown() -> str:
    """The README block: the code, the two doctor outputs and the two validation curves."""
    import keras

    from gradzoo.benchmarks.analysis.formatting import format_number
    from gradzoo.benchmarks.datasets import load_dataset
    from gradzoo.benchmarks.harness.instruments.autodiff import deterministic_ops

    deterministic_ops()
    with tempfile.TemporaryDirectory(prefix="gradzoo-example-") as tmp:
        keras.utils.set_random_seed(SEED)
        my_model().save(Path(tmp) / "my_model.keras")
        my_model_fixed().save(Path(tmp) / "my_model_fixed.keras")
        before = _doctor(Path(tmp) / "my_model.keras")
        after = _doctor(Path(tmp) / "my_model_fixed.keras")
    dataset = load_dataset("mnist1d", shape="flat")
    curves = [_curve(my_model, dataset), _curve(my_model_fixed, dataset)]
    command = "gradzoo doctor {} " + " ".join(DATA)
    rows = "\n".join(f"| {e + 1} | {format_number(a)} | {format_number(b)} |" for e, (a, b) in enumerate(zip(*curves)))
    return "\n".join([
        f"Generated by `python -m gradzoo.benchmarks.doctor.example` ({keras.backend.backend()} backend, seed {SEED}, "
        "deterministic kernels); a test checks that this block is what the script prints.",
        "",
        "A user's model that does not train, saved with `my_model().save(\"my_model.keras\")`:",
        "", "```python", _source(my_model), "```", "",
        "```text", "$ " + command.format("my_model.keras"), before, "```", "",
        "The one change the doctor suggests first (He-normal init, BatchNorm, ReLU), and nothing else, saved as "
        "`my_model_fixed.keras`:",
        "", "```python", _source(my_model_fixed), "```", "",
        "```text", "$ " + command.format("my_model_fixed.keras"), after, "```", "",
        f"Validation accuracy on MNIST-1D after each epoch (Adam 1e-3, batch {BATCH}, the same data order for both; "
        f"chance {format_number(dataset.chance)}):",
        "",
        "| epoch | `my_model` | `my_model_fixed` |",
        "|---|---|---|",
        rows,
    ]) + "\n"  # fmt: skip


def update_readme(root=".", block: str | None = None) -> bool:
    """Rewrites the example block in `root`'s `EXAMPLE_FILE`; returns whether the file changed."""
    return EXAMPLE.update(root, block or example_markdown())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=".", help=f"the repository root, whose {EXAMPLE_FILE} holds the block (default: .)")
    parser.add_argument("--print", action="store_true", help=f"print the block instead of rewriting {EXAMPLE_FILE}")
    args = parser.parse_args(argv)
    block = example_markdown()
    if args.print:
        print(block, end="")
        return 0
    changed = update_readme(args.root, block)
    print(f"{EXAMPLE.path(args.root)}: doctor example {'updated' if changed else 'already up to date'}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
