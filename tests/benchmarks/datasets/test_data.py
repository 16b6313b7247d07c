"""Tests for benchmarks.datasets: the embedded generators, the real tfds readers and the seeded batch sources.

Embedded datasets are generated at small sizes into a per-test cache directory;
the real datasets run under `tfds.testing.mock_data`, since this machine cannot
download them.
"""

import json
import math
import re
import sys

import keras
import numpy as np
import pytest

from gradzoo.benchmarks.datasets import (
    Dataset,
    DatasetNotAvailableError,
    dataset_info,
    dataset_signature,
    list_datasets,
    load_dataset,
)
from gradzoo.benchmarks.datasets import embedded, real
from gradzoo.benchmarks.datasets.batches import AugmentedImages, EpochBatches, pad_crop_flip

SMALL = {
    "mnist1d": dict(num_samples=200),
    "adding": dict(length=12, num_train=64, num_val=16, num_test=32),
    "copy_memory": dict(length=5, num_train=64, num_val=16, num_test=32),
}
# name -> (input_shape, num_outputs) as documented.
REAL = {
    "mnist": ((28, 28, 1), 10),
    "fashion_mnist": ((28, 28, 1), 10),
    "cifar10": ((32, 32, 3), 10),
    "cifar100": ((32, 32, 3), 100),
    "imdb_reviews": ((200,), 2),
    "seq_mnist": ((784, 1), 10),
    "permuted_seq_mnist": ((784, 1), 10),
}


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    """A fresh, empty dataset cache for every test."""
    monkeypatch.setenv("GRADZOO_CACHE", str(tmp_path / "gradzoo"))
    return tmp_path / "gradzoo" / "datasets"


def arrays(ds: Dataset) -> list[np.ndarray]:
    return [a for split in ("train", "val", "test") for a in ds.split(split)]


def assert_one_sentence(message: str) -> None:
    assert "\n" not in message and "Traceback" not in message
    assert message.endswith(".")
    assert not re.search(r"[.!?]\s+[A-Z]", message[:-1]), message


# ---------------------------------------------------------------- listing


def test_list_datasets_names_every_dataset_once():
    rows = list_datasets()
    names = [r["name"] for r in rows]
    assert names and len(names) == len(set(names)), names
    embedded = [r["embedded"] for r in rows]
    assert embedded == sorted(embedded, reverse=True), "embedded datasets are listed first"
    # Every registered dataset is exercised below: a new one needs its small parameters (embedded) or its
    # documented shape (real) in this file's tables.
    assert {n for n, e in zip(names, embedded) if e} == set(SMALL)
    assert {n for n, e in zip(names, embedded) if not e} == set(REAL)
    for row in rows:
        assert row["task"] in ("classification", "regression")
        assert row["description"] and "\n" not in row["description"]
        assert row["params"]["seed"] == 0 and row["params"]["batch_size"] == 128
    json.dumps(rows)


# ---------------------------------------------------------------- embedded


@pytest.mark.parametrize(
    "name, params, x_shape, y_shape, y_dtype",
    [
        ("mnist1d", {}, (40, 1), (), np.int32),
        ("mnist1d", {"shape": "flat"}, (40,), (), np.int32),
        ("adding", {}, (12, 2), (1,), np.float32),
        ("copy_memory", {}, (25, 10), (25,), np.int32),
    ],
)
def test_embedded_shapes_and_dtypes(name, params, x_shape, y_shape, y_dtype):
    ds = load_dataset(name, **SMALL[name], **params)
    assert ds.embedded and ds.input_shape == x_shape
    for split in ("train", "val", "test"):
        x, y = ds.split(split)
        assert x.dtype == np.float32 and x.shape[1:] == x_shape
        assert y.dtype == y_dtype and y.shape[1:] == y_shape and len(x) == len(y) > 0
        assert np.isfinite(x).all()
    summary = ds.to_dict()
    json.dumps(summary)
    assert summary["params"] == {**dataset_info(name).defaults, **SMALL[name], **params}
    assert (summary["n_train"], summary["n_val"], summary["n_test"]) == tuple(
        ds.num_examples(s) for s in ("train", "val", "test")
    )


def test_mnist1d_matches_package_default_sizes_and_keeps_global_rng():
    np.random.seed(123)
    expected = np.random.rand()
    np.random.seed(123)
    ds = load_dataset("mnist1d")
    assert np.random.rand() == expected  # the generator's global seeding was undone
    # mnist1d's default: 5000 samples, 4000 train (here 3600 + 400 val) / 1000 test.
    assert [ds.num_examples(s) for s in ("train", "val", "test")] == [3600, 400, 1000]
    assert ds.num_outputs == 10 and ds.chance == 0.1 and ds.metric == "accuracy"
    assert set(np.unique(ds.train[1])) == set(range(10))


@pytest.mark.parametrize("name", list(SMALL))
def test_same_seed_same_data_other_seed_different(name, monkeypatch, tmp_path):
    first = load_dataset(name, seed=3, **SMALL[name])
    # A second, empty cache: equality comes from generation, not from reading the cache.
    monkeypatch.setenv("GRADZOO_CACHE", str(tmp_path / "other"))
    again = load_dataset(name, seed=3, **SMALL[name])
    other = load_dataset(name, seed=4, **SMALL[name])
    for a, b, c in zip(arrays(first), arrays(again), arrays(other)):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first.train[0], other.train[0])
    assert not np.array_equal(first.test[0], other.test[0])


def test_adding_targets_are_the_sum_of_the_marked_values():
    ds = load_dataset("adding", **SMALL["adding"])
    x, y = ds.train
    values, mask = x[..., 0], x[..., 1]
    assert ((values >= 0) & (values < 1)).all()
    assert set(np.unique(mask)) == {0.0, 1.0}
    half = 12 // 2
    assert (mask[:, :half].sum(1) == 1).all() and (mask[:, half:].sum(1) == 1).all()
    np.testing.assert_allclose(y[:, 0], (values * mask).sum(1), rtol=1e-6)


def test_adding_chance_is_the_mse_of_predicting_one():
    ds = load_dataset("adding", length=2, num_train=1, num_val=1, num_test=40000)
    assert ds.task == "regression" and ds.metric == "mse" and ds.metric_mode == "min"
    assert ds.chance == pytest.approx(1 / 6)
    metric = ds.make_metric()
    y = ds.test[1]
    metric.update_state(y, np.ones_like(y))
    assert float(metric.result()) == pytest.approx(ds.chance, abs=0.005)
    assert ds.target < ds.chance
    assert ds.reached_target(0.005) and not ds.reached_target(0.1) and not ds.reached_target(float("nan"))


def test_copy_memory_targets_are_the_first_ten_symbols_after_the_delay():
    length = SMALL["copy_memory"]["length"]
    ds = load_dataset("copy_memory", **SMALL["copy_memory"])
    x, y = ds.train
    symbols = x.argmax(-1)
    np.testing.assert_array_equal(x.sum(-1), 1.0)  # one-hot
    assert ((symbols[:, :10] >= 1) & (symbols[:, :10] <= 8)).all()
    assert (symbols[:, 10 : 10 + length - 1] == 0).all()
    assert (symbols[:, 10 + length - 1] == 9).all()
    assert (symbols[:, length + 10 :] == 0).all()
    assert (y[:, : length + 10] == 0).all()
    np.testing.assert_array_equal(y[:, -10:], symbols[:, :10])
    assert ds.sequence_output and ds.num_outputs == 9


@pytest.mark.parametrize("length", [2, 5, 100])
def test_copy_memory_chance_matches_its_formula(length):
    ds = load_dataset("copy_memory", length=length, num_train=4, num_val=4, num_test=64)
    assert ds.metric == "crossentropy" and ds.metric_mode == "min"
    assert ds.chance == pytest.approx(10 * math.log(8) / (length + 20))
    # The chance strategy: blank until the marker, then uniform over the 8 symbols.
    y = ds.test[1]
    logits = np.full((*y.shape, 9), -50.0, np.float32)
    logits[:, : length + 10, 0] = 50.0
    logits[:, length + 10 :, 1:] = 0.0
    metric = ds.make_metric()
    metric.update_state(y, logits)
    assert float(metric.result()) == pytest.approx(ds.chance, rel=1e-4)
    assert 0 < ds.target < ds.chance


@pytest.mark.parametrize(
    "name, params, words",
    [
        ("nope", {}, ["'nope'", "mnist1d"]),
        ("adding", {"length": 1}, ["`length` must be", "length=1"]),
        ("copy_memory", {"length": 0}, ["`length`", "length=0"]),
        ("adding", {"length": 2.5}, ["`length`", "2.5"]),
        ("adding", {"lenght": 10}, ["`lenght`", "length"]),
        ("mnist1d", {"shape": "image"}, ["`shape`", "'image'"]),
        ("mnist1d", {"val_fraction": 1.0}, ["`val_fraction`", "1.0"]),
        ("mnist1d", {"seed": -1}, ["`seed`", "-1"]),
        ("cifar10", {"augment": "yes"}, ["`augment`", "'yes'"]),
        ("imdb_reviews", {"maxlen": 0}, ["`maxlen`"]),
    ],
)
def test_bad_input_raises_value_error_naming_it(name, params, words):
    kwargs = dict(params)
    seed = kwargs.pop("seed", 0)
    with pytest.raises(ValueError) as info:
        load_dataset(name, seed=seed, **kwargs)
    for word in words:
        assert word in str(info.value)


def test_unknown_split_raises_value_error():
    ds = load_dataset("adding", **SMALL["adding"])
    with pytest.raises(ValueError, match="`split`.*'validation'"):
        ds.num_examples("validation")


def test_cache_hit_returns_the_same_arrays(cache, monkeypatch):
    first = load_dataset("adding", **SMALL["adding"])
    assert len(list(cache.glob("adding-*.npz"))) == 1
    assert not [p for p in cache.iterdir() if p.suffix == ".tmp"]

    def fail(*args, **kwargs):
        raise AssertionError("regenerated instead of reading the cache")

    monkeypatch.setattr(embedded, "_adding_examples", fail)
    for a, b in zip(arrays(first), arrays(load_dataset("adding", **SMALL["adding"]))):
        np.testing.assert_array_equal(a, b)
    # batch_size does not change the arrays, so it shares the cache entry.
    load_dataset("adding", batch_size=7, **SMALL["adding"])


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_cache_is_regenerated(cache, damage):
    first = load_dataset("copy_memory", **SMALL["copy_memory"])
    (path,) = cache.glob("copy_memory-*.npz")
    content = path.read_bytes()
    path.write_bytes(b"not an npz file" if damage == "garbage" else content[: len(content) // 2])
    for a, b in zip(arrays(first), arrays(load_dataset("copy_memory", **SMALL["copy_memory"]))):
        np.testing.assert_array_equal(a, b)
    assert path.read_bytes() == content  # rewritten whole


@pytest.mark.parity
@pytest.mark.parametrize("name", ["mnist1d", "adding", "copy_memory"])
def test_loss_and_metric_train_a_logit_model(name):
    params = dict(SMALL[name], **({"shape": "flat"} if name == "mnist1d" else {}))
    ds = load_dataset(name, **params)
    # A per-step head for sequence outputs, a pooled one otherwise.
    head = [] if ds.sequence_output or len(ds.input_shape) == 1 else [keras.layers.Flatten()]
    model = keras.Sequential([keras.Input(ds.input_shape), *head, keras.layers.Dense(ds.num_outputs)])
    model.compile(optimizer="adam", loss=ds.make_loss(), metrics=[ds.make_metric()])
    history = model.fit(*ds.train, validation_data=ds.val, batch_size=32, epochs=1, verbose=0)
    assert np.isfinite(history.history[f"val_{ds.metric}"][-1])


# ---------------------------------------------------------------- augmentation


def test_pad_crop_flip_returns_shifted_or_flipped_crops():
    rng = np.random.default_rng(0)
    images = rng.normal(size=(16, 8, 8, 3)).astype(np.float32)
    out = pad_crop_flip(images, np.random.default_rng(1), pad=2)
    assert out.shape == images.shape and out.dtype == np.float32
    padded = np.pad(images, ((0, 0), (2, 2), (2, 2), (0, 0)))
    flips = 0
    for i in range(len(images)):
        candidates = [
            (flip, crop[:, ::-1] if flip else crop)
            for dy in range(5)
            for dx in range(5)
            for crop in [padded[i, dy : dy + 8, dx : dx + 8]]
            for flip in (False, True)
        ]
        matches = [flip for flip, c in candidates if np.array_equal(c, out[i])]
        assert matches, f"image {i} is not a crop of its padded original"
        flips += matches[0]
    assert 0 < flips < len(images)


@pytest.mark.parity
def test_augmented_images_are_seeded_per_epoch_and_train():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(40, 32, 32, 3), dtype=np.uint8)
    y = rng.integers(0, 10, size=40).astype(np.int32)
    source = AugmentedImages(x, y, mean=[0.5] * 3, std=[0.25] * 3, batch_size=16, seed=5)
    assert len(source) == 3 and source.num_examples == 40
    xb, yb = source[2]
    assert xb.shape == (8, 32, 32, 3) and xb.dtype == np.float32 and yb.dtype == np.int32
    twin = AugmentedImages(x, y, mean=[0.5] * 3, std=[0.25] * 3, batch_size=16, seed=5, lookahead=0)
    np.testing.assert_array_equal(source[0][0], twin[0][0])
    source.on_epoch_end()
    assert not np.array_equal(source[0][0], twin[0][0])
    # A batch depends on (seed, epoch, index) only: whatever the order, the thread, or the lookahead.
    twin.set_epoch(source.epoch)
    for i in (2, 0, 1):
        np.testing.assert_array_equal(source[i][0], twin[i][0])
    with pytest.raises(IndexError):
        source[3]

    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(), keras.layers.Dense(10)])
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(source, epochs=2, verbose=0)
    assert source.epoch >= 3 and np.isfinite(history.history["loss"]).all()


@pytest.mark.parity
def test_epoch_batches_order_is_a_function_of_seed_and_epoch():
    x = np.arange(50, dtype=np.float32).reshape(25, 2)
    y = np.arange(25, dtype=np.int32)
    a, b = EpochBatches(x, y, batch_size=10, seed=3), EpochBatches(x, y, batch_size=10, seed=3)
    assert len(a) == 3
    epoch0 = np.concatenate([np.asarray(a[i][1]) for i in range(3)])
    assert sorted(epoch0.tolist()) == list(range(25))  # a permutation: every example once
    b.set_epoch(4)
    a.set_epoch(4)
    for i in (2, 1, 0):
        np.testing.assert_array_equal(np.asarray(a[i][0]), np.asarray(b[i][0]))
    epoch4 = np.concatenate([np.asarray(a[i][1]) for i in range(3)])
    assert not np.array_equal(epoch0, epoch4)
    c = EpochBatches(x, y, batch_size=10, seed=4)
    assert not np.array_equal(epoch0, np.concatenate([np.asarray(c[i][1]) for i in range(3)]))


def test_signatures_describe_datasets_without_their_data():
    for name, (shape, outputs) in REAL.items():
        sig = dataset_signature(name)
        assert sig.input_shape == shape and sig.num_outputs == outputs
    assert dataset_signature("adding", length=7).input_shape == (7, 2)
    assert dataset_signature("mnist1d", shape="flat").input_shape == (40,)
    assert dataset_signature("imdb_reviews", maxlen=30).vocab_size == 10000
    ds = load_dataset("copy_memory", **SMALL["copy_memory"])
    sig = dataset_signature("copy_memory", **SMALL["copy_memory"])
    assert (sig.input_shape, sig.num_outputs, sig.sequence_output, sig.chance) == (
        ds.input_shape, ds.num_outputs, ds.sequence_output, ds.chance)


# ---------------------------------------------------------------- real (tfds)


@pytest.mark.parametrize("name", list(REAL))
def test_tfds_datasets_load_under_mock_data(name, tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    input_shape, num_outputs = REAL[name]
    with tfds.testing.mock_data(num_examples=20):
        ds = load_dataset(name, seed=1, data_dir=str(tmp_path), batch_size=8)
    assert not ds.embedded and ds.task == "classification"
    assert ds.input_shape == input_shape and ds.num_outputs == num_outputs
    assert ds.chance == pytest.approx(1 / num_outputs) and ds.chance < ds.target < 1
    assert [ds.num_examples(s) for s in ("train", "val", "test")] == [18, 2, 20]
    json.dumps(ds.to_dict())
    x_dtype = np.int32 if name == "imdb_reviews" else np.float32
    for split in ("train", "val", "test"):
        source = ds.split(split)
        x, y = source if isinstance(source, tuple) else source[0]
        assert x.shape[1:] == input_shape and x.dtype == x_dtype and ds.input_dtype == x_dtype.__name__
        assert y.dtype == np.int32 and ((y >= 0) & (y < num_outputs)).all()
    if name.startswith("cifar"):
        assert isinstance(ds.train, AugmentedImages) and len(ds.train) == 3
    if name == "imdb_reviews":
        assert ((x >= 0) & (x < 10000)).all() and (x[:, 0] == 0).all()  # short mock texts: pre-padded


def test_permuted_seq_mnist_is_seq_mnist_under_a_fixed_permutation(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=12):
        plain = load_dataset("seq_mnist", data_dir=str(tmp_path))
        permuted = load_dataset("permuted_seq_mnist", data_dir=str(tmp_path))
    perm = np.random.default_rng(0).permutation(784)
    np.testing.assert_array_equal(permuted.test[0], plain.test[0][:, perm])
    np.testing.assert_array_equal(permuted.test[1], plain.test[1])
    x, _ = plain.train
    assert abs(float(x.mean())) < 1e-3 and float(x.std()) == pytest.approx(1.0, rel=1e-3)


def test_cifar_without_augmentation_gives_standardized_arrays(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=20):
        ds = load_dataset("cifar10", data_dir=str(tmp_path), augment=False)
    x, _ = ds.train
    assert isinstance(ds.train, tuple)
    np.testing.assert_allclose(x.mean(axis=(0, 1, 2)), 0.0, atol=1e-4)
    np.testing.assert_allclose(x.std(axis=(0, 1, 2)), 1.0, rtol=1e-3)


@pytest.mark.parametrize("name", ["cifar10", "seq_mnist"])
def test_missing_data_is_one_clear_sentence(name, tmp_path, monkeypatch):
    pytest.importorskip("tensorflow_datasets")
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("GRADZOO_TFDS_DIR", str(empty))
    with pytest.raises(DatasetNotAvailableError) as info:
        load_dataset(name)
    message = str(info.value)
    assert_one_sentence(message)
    for part in (repr(name), str(empty), "tfds build", "GRADZOO_TFDS_DIR", "data_dir"):
        assert part in message
    assert info.value.__cause__ is None and info.value.__suppress_context__
    subject = "is" if name == "cifar10" else "needs the TFDS dataset 'mnist', which is"
    assert message.startswith(f"Dataset {name!r} {subject} not prepared in {empty} ")

    # The argument wins over the environment.
    with pytest.raises(DatasetNotAvailableError, match=re.escape(str(tmp_path / "arg"))):
        load_dataset(name, data_dir=str(tmp_path / "arg"))


def test_imdb_tokens_follow_training_word_frequency():
    texts = np.array([b"The movie was great<br />great!", b"the plot, THE end", b"unseen words here"], dtype=object)
    y = np.array([1, 0, 1], np.int32)
    splits = {"train": (texts[:2], y[:2]), "val": (texts[:1], y[:1]), "test": (texts[2:], y[2:])}
    info = dataset_info("imdb_reviews")
    params = {**info.defaults, "vocab_size": 5, "maxlen": 4}
    ds = real._build_imdb(info, params, splits)
    # ids: 0 pad, 1 unknown, then "the" (3x), "great" (2x), "end" (first of the 1x words).
    np.testing.assert_array_equal(ds.train[0], [[1, 1, 3, 3], [2, 1, 2, 4]])  # keeps the last 4
    np.testing.assert_array_equal(ds.test[0], [[0, 1, 1, 1]])  # padded at the front
    assert ds.train[0].dtype == np.int32 and ds.input_shape == (4,)


def test_missing_tensorflow_datasets_is_one_clear_sentence(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # makes the import fail
    with pytest.raises(DatasetNotAvailableError) as info:
        load_dataset("mnist")
    assert_one_sentence(str(info.value))
    assert "'mnist'" in str(info.value) and "pip install" in str(info.value)
