"""Is the input side ever what training waits for? Batches/s delivered per
dataset against the training steps/s of a zoo model on the same data.

Input rate: one epoch of batches drawn from the seeded batch source that
`gradzoo run` hands to `model.fit` (`EpochBatches` for in-memory data,
`AugmentedImages` for CIFAR), each converted to a backend tensor, with no model
attached. Training rate: `model.fit`
steps/s of a zoo model after a warm-up fit that compiles the step. A ratio well
above 1 means the input side is never the bottleneck: at ratio r it costs at most
1/r of a step even without any overlap.

The augmented CIFAR-10 row uses random uint8 images of CIFAR-10's size through
`AugmentedImages`, the exact path of the real training split, because this
machine cannot download CIFAR-10.

Usage:
    python -m gradzoo.benchmarks.perf.bench_data                      # every case, TF backend
    KERAS_BACKEND=jax python -m gradzoo.benchmarks.perf.bench_data --repeats 3 --only adding,copy
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import keras
import numpy as np

from gradzoo.benchmarks.datasets import Dataset, load_dataset
from gradzoo.benchmarks.datasets.batches import AugmentedImages, EpochBatches
from gradzoo.benchmarks.commands.options import positive_int

BATCH_SIZE = 128

# label -> (dataset, dataset params, zoo model, model overrides)
CASES = {
    "mnist1d-flat": ("mnist1d", {"shape": "flat"}, "mlp_he_relu_bn", {}),
    "mnist1d-seq": ("mnist1d", {}, "resnet_20_1d", {}),
    "adding-100": ("adding", {"length": 100}, "rnn_lstm", {}),
    "copy-100": ("copy_memory", {"length": 100}, "rnn_lstm", {"sequence_output": True}),
    "cifar10-aug": ("cifar10", {}, "resnet_20", {}),
}


def synthetic_cifar10(seed: int = 0, **kwargs) -> tuple[AugmentedImages, tuple]:
    """A training batch source shaped like CIFAR-10's (45000 after validation)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(45000, 32, 32, 3), dtype=np.uint8)
    y = rng.integers(0, 10, size=45000).astype(np.int32)
    source = AugmentedImages(x, y, mean=[0.49, 0.48, 0.45], std=[0.25, 0.24, 0.26], batch_size=BATCH_SIZE, seed=seed, **kwargs)
    return source, ((32, 32, 3), 10, False)


def input_batches_per_second(source, max_batches: int) -> float:
    """Batches/s of one pass over a seeded batch source, each batch made a backend tensor."""
    start = time.perf_counter()
    source.set_epoch(source.epoch + 1)
    count = 0
    for i in range(min(len(source), max_batches)):
        x, y = source[i]
        keras.ops.convert_to_tensor(x), keras.ops.convert_to_tensor(y)
        count += 1
    return count / (time.perf_counter() - start)


def build_model(model_name: str, overrides: dict, input_shape, num_outputs: int):
    """The zoo model and its registered optimizer."""
    from gradzoo import zoo

    model = zoo.build(model_name, input_shape, num_outputs, **overrides)
    return model, zoo.make_optimizer(zoo.get_spec(model_name).optimizer)


def train_steps_per_second(model, optimizer, ds: Dataset | None, train, steps: int, repeats: int) -> list[float]:
    """`fit` steps/s on `train` over `repeats` timed fits of `steps` steps."""
    if ds is not None:
        loss, metrics = ds.make_loss(), [ds.make_metric()]
    else:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics)

    def fit(n):
        model.fit(train, epochs=1, steps_per_epoch=n, verbose=0)

    fit(3)  # compiles the train step
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        fit(steps)
        rates.append(steps / (time.perf_counter() - start))
    return rates


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=positive_int, default=5, help="timed repeats per measurement. Defaults to 5.")
    parser.add_argument("--steps", type=positive_int, default=20, help="train steps per timed fit. Defaults to 20.")
    parser.add_argument("--workers", type=positive_int, default=None, help="`AugmentedImages` lookahead threads. Defaults to its own default.")
    parser.add_argument("--only", default="", help=f"comma-separated subset of: {', '.join(CASES)}.")
    args = parser.parse_args(argv)
    labels = [label for label in CASES if not args.only or any(part in label for part in args.only.split(","))]
    if not labels:
        parser.error(f"--only {args.only!r} matches no case; the cases are: {', '.join(CASES)}")
    print(
        f"backend={keras.backend.backend()} keras={keras.__version__} cpus={os.cpu_count()} "
        f"python={platform.python_version()} batch_size={BATCH_SIZE} repeats={args.repeats}"
    )
    rows = []
    for label in labels:
        name, params, model_name, overrides = CASES[label]
        if name == "cifar10":
            train, (input_shape, num_outputs, _) = synthetic_cifar10(
                **({} if args.workers is None else {"lookahead": args.workers})
            )
            ds = None
        else:
            ds = load_dataset(name, **params)
            train, input_shape, num_outputs = EpochBatches(*ds.train, batch_size=BATCH_SIZE, seed=0), ds.input_shape, ds.num_outputs
        num_batches = len(train)
        input_rates = [input_batches_per_second(train, num_batches) for _ in range(args.repeats)]
        model, optimizer = build_model(model_name, overrides, input_shape, num_outputs)
        train_rates = train_steps_per_second(model, optimizer, ds, train, args.steps, args.repeats)
        batches, steps = statistics.median(input_rates), statistics.median(train_rates)
        rows.append((label, model_name, batches, steps, batches / steps))
        print(f"  {label}: input {batches:.0f} batches/s, train {steps:.1f} steps/s", flush=True)

    print()
    print("| dataset | model | input batches/s | train steps/s | ratio |")
    print("|---|---|---:|---:|---:|")
    for label, used, batches, steps, ratio in rows:
        print(f"| {label} | {used} | {batches:,.0f} | {steps:,.1f} | {ratio:,.0f}x |")


if __name__ == "__main__":
    main()
