"""The real datasets: read through tensorflow-datasets, then preprocessed in NumPy.

TensorFlow is touched in one function, `_read_tfds`, which reads a prepared TFDS
dataset into NumPy arrays; everything after that (validation split,
normalization, tokenization, augmentation) is NumPy, so training runs on any
Keras backend. `tensorflow_datasets` is imported lazily, when a real dataset is
first loaded.

gradzoo never downloads: a dataset must be prepared beforehand (`tfds build NAME
--data_dir DIR` on a machine with network), and a missing one raises
`DatasetNotAvailableError` with one sentence saying how to provide it.

Scores: classification accuracy throughout; chance is 1/classes. Each target is
a level a healthy model of the matching zoo family reaches, set below the
published result of that family so that a short benchmark budget can reach it.
"""

from __future__ import annotations

import collections
import math
import os
import re

import keras
import numpy as np

from benchmarks.data import (
    Dataset,
    DatasetInfo,
    DatasetNotAvailableError,
    split_off_validation,
)

EMBEDDED_NAMES = "mnist1d, adding, copy_memory"

# name -> (TFDS name, number of classes, target accuracy). Targets and sources:
_SPECS = {
    # 0.97 ~ 3-layer MLPs in LeCun et al. 1998 (2.95-3.05% test error).
    "mnist": ("mnist", 10, 0.97),
    # 0.85: Xiao et al. 2017 report ~87% for an MLP on Fashion-MNIST.
    "fashion_mnist": ("fashion_mnist", 10, 0.85),
    # 0.80: below ResNet-20's 91.25% (He et al. 2016) so that a short budget can reach it.
    "cifar10": ("cifar10", 10, 0.80),
    # 0.50: below the ~70% of deep ResNets on CIFAR-100, for the same reason.
    "cifar100": ("cifar100", 100, 0.50),
    # 0.85: Maas et al. 2011 report 88.9% with learned word vectors.
    "imdb_reviews": ("imdb_reviews", 2, 0.85),
    # 0.90: Le et al. 2015 report 97% for an IRNN; Arjovsky et al. 2016 98.2% for an LSTM.
    "seq_mnist": ("mnist", 10, 0.90),
    # 0.80: Le et al. 2015 report 82% (IRNN); Arjovsky et al. 2016 88% (LSTM), 91.4% (uRNN).
    "permuted_seq_mnist": ("mnist", 10, 0.80),
}


def build(info: DatasetInfo, params: dict, data_dir: str | None) -> Dataset:
    """Builds a real dataset from validated params.

    Args:
        info: the registry entry.
        params: the resolved, validated parameters.
        data_dir: the argument given to `load_dataset`, or `None`.

    Returns:
        A `Dataset`.
    """
    tfds_name, num_classes, target = _SPECS[info.name]
    raw = _read_tfds(info.name, tfds_name, resolve_data_dir(data_dir))
    train, val = split_off_validation(len(raw["train"][0]), params["val_fraction"], params["seed"])
    splits = {
        "train": (raw["train"][0][train], raw["train"][1][train]),
        "val": (raw["train"][0][val], raw["train"][1][val]),
        "test": raw["test"],
    }
    scores = dict(num_outputs=num_classes, metric="accuracy", metric_mode="max",
                  chance=1.0 / num_classes, target=target)  # fmt: skip
    if info.name == "imdb_reviews":
        return _build_imdb(info, params, splits, scores)
    if info.name.startswith("cifar"):
        return _build_cifar(info, params, splits, scores)
    return _build_mnist_like(info, params, splits, scores)


def resolve_data_dir(data_dir: str | None) -> str:
    """The TFDS data directory: the argument, else `$GRADZOO_TFDS_DIR`, else
    `$TFDS_DATA_DIR`, else TFDS's default `~/tensorflow_datasets`."""
    for candidate in (data_dir, os.environ.get("GRADZOO_TFDS_DIR"), os.environ.get("TFDS_DATA_DIR")):
        if candidate:
            return os.path.expanduser(str(candidate))
    return os.path.join(os.path.expanduser("~"), "tensorflow_datasets")


def _read_tfds(name: str, tfds_name: str, data_dir: str) -> dict:
    """Reads the train and test splits of a prepared TFDS dataset into memory.

    Returns:
        `{"train": (x, y), "test": (x, y)}` with raw `x` (uint8 images or byte
        strings) and int32 `y`.
    """
    try:
        import tensorflow as tf
        import tensorflow_datasets as tfds
    except ImportError as err:
        raise DatasetNotAvailableError(
            f"Dataset {name!r} is read through tensorflow-datasets, but {err.name or 'it'} cannot be "
            f"imported here; install it with `pip install tensorflow tensorflow-datasets` "
            f"or use an embedded dataset ({EMBEDDED_NAMES})."
        ) from None
    if keras.backend.backend() != "tensorflow":
        # TF only reads files here; keep it off the accelerator the backend trains on.
        try:
            tf.config.set_visible_devices([], "GPU")
        except RuntimeError:
            pass  # TF was already initialized by someone else; nothing to undo
    builder = tfds.builder(tfds_name, data_dir=data_dir)
    arrays = {}
    for split in ("train", "test"):
        try:
            ds = builder.as_dataset(split=split, as_supervised=True, batch_size=4096, shuffle_files=False)
        except AssertionError:
            # TFDS signals "no prepared data in data_dir" with an AssertionError.
            needs = f"needs the TFDS dataset {tfds_name!r}, which is" if tfds_name != name else "is"
            raise DatasetNotAvailableError(
                f"Dataset {name!r} {needs} not prepared in {data_dir} and gradzoo does not "
                f"download datasets; run `tfds build {tfds_name} --data_dir DIR` on a machine with "
                f"network, then pass data_dir=DIR (`--data-dir DIR`) or set GRADZOO_TFDS_DIR=DIR."
            ) from None
        batches = list(tfds.as_numpy(ds))
        x = np.concatenate([b[0] for b in batches])
        y = np.concatenate([b[1] for b in batches]).astype(np.int32)
        arrays[split] = (x, y)
    return arrays


def _standardize(x: np.ndarray, mean, std) -> np.ndarray:
    """`(x / 255 - mean) / std` in float32, in place after one cast (no temporaries)."""
    mean, std = np.asarray(mean, np.float32), np.asarray(std, np.float32)
    out = x.astype(np.float32)
    out *= 1.0 / (255.0 * std)
    out -= mean / std
    return out


def _pixel_moments(pixels: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation on the [0, 1] scale of uint8 pixels, exact,
    from a histogram: no float copy of the whole training set."""
    counts = np.bincount(pixels.ravel(), minlength=256)
    levels = np.arange(256) / 255.0
    mean = float(counts @ levels / counts.sum())
    std = math.sqrt(float(counts @ (levels - mean) ** 2 / counts.sum()))
    return mean, std or 1.0  # a constant image set would divide by zero


def _build_mnist_like(info, params, splits, scores) -> Dataset:
    """MNIST and Fashion-MNIST as `(28, 28, 1)` images; `seq_mnist` and
    `permuted_seq_mnist` as `(784, 1)` pixel sequences in row-major order.

    Pixels are scaled to [0, 1], then standardized with the mean and standard
    deviation of the training split (validation part excluded). The permutation
    of `permuted_seq_mnist` is `np.random.default_rng(permutation_seed)
    .permutation(784)`, fixed across runs whatever `seed` is.
    """
    mean, std = _pixel_moments(splits["train"][0])
    out = {s: (_standardize(x, mean, std), y) for s, (x, y) in splits.items()}
    preprocessing = {"scale": 1 / 255, "mean": mean, "std": std}
    input_shape = (28, 28, 1)
    if info.name in ("seq_mnist", "permuted_seq_mnist"):
        input_shape = (784, 1)
        out = {s: (x.reshape(-1, 784, 1), y) for s, (x, y) in out.items()}
    if info.name == "permuted_seq_mnist":
        perm = np.random.default_rng(params["permutation_seed"]).permutation(784)
        out = {s: (np.ascontiguousarray(x[:, perm]), y) for s, (x, y) in out.items()}
        preprocessing["permutation"] = f"np.random.default_rng({params['permutation_seed']}).permutation(784)"
    return info.make(params, **out, input_shape=input_shape, preprocessing=preprocessing, **scores)


def _build_cifar(info, params, splits, scores) -> Dataset:
    """CIFAR-10/100 as `(32, 32, 3)` images.

    Each channel is standardized with the training split's mean and standard
    deviation (He et al. 2016 subtract the per-pixel mean; per-channel
    standardization is the common modern variant). With `augment=True` the
    training split is an `AugmentedImages` batch source: every epoch a new seeded
    shuffle, a random 32x32 crop of the image zero-padded by 4 pixels (zero is the
    mean after standardization, as in He et al.) and a horizontal flip with
    probability 1/2. Validation and test are never augmented.
    """
    x_train = splits["train"][0]
    moments = [_pixel_moments(x_train[..., channel]) for channel in range(3)]
    mean, std = (np.array(values, np.float32) for values in zip(*moments))
    out = {s: (_standardize(x, mean, std), y) for s, (x, y) in splits.items() if s != "train"}
    if params["augment"]:
        out["train"] = AugmentedImages(
            x_train, splits["train"][1], mean, std, batch_size=params["batch_size"], seed=params["seed"]
        )
    else:
        out["train"] = (_standardize(x_train, mean, std), splits["train"][1])
    preprocessing = {"scale": 1 / 255, "mean": mean.tolist(), "std": std.tolist(),
                     "augment": "pad-4 crop + horizontal flip" if params["augment"] else None}  # fmt: skip
    return info.make(params, **out, input_shape=(32, 32, 3), preprocessing=preprocessing, **scores)


class AugmentedImages(keras.utils.PyDataset):
    """Seeded, shuffled batches of standardized images with a pad-and-crop and
    horizontal-flip augmentation drawn anew every epoch (He et al. 2016).

    Batch `i` of epoch `e` depends only on `(seed, e, i)`, so it is reproducible
    whatever order or thread Keras fetches it in. `epoch` counts Keras's
    `on_epoch_end` calls (one per `fit` epoch, plus one when `fit` resets its
    iterator), each of which moves to a new shuffle and new crops. With
    `steps_per_epoch` shorter than a pass, a Keras epoch is not a pass over the
    data; batches are then still uniform random samples of the training set.

    Args:
        x: uint8 images `(n, h, w, c)`, kept as uint8 to save memory.
        y: int32 labels `(n,)`.
        mean, std: per-channel statistics on the [0, 1] scale.
        batch_size: examples per batch; the last batch may be smaller.
        seed: seeds shuffling and augmentation.
        pad: pixels of zero padding on each side before cropping. Defaults to `4`.
        **kwargs: passed to `keras.utils.PyDataset`. `workers` defaults to `2`
            threads, so the next batches are prepared while the model trains
            (NumPy releases the GIL in the heavy operations); order and content do
            not depend on it.
    """

    def __init__(self, x, y, mean, std, batch_size: int, seed: int, pad: int = 4, **kwargs):
        kwargs.setdefault("workers", 2)
        super().__init__(**kwargs)
        self.x, self.y = x, y
        self.mean, self.std = np.asarray(mean, np.float32), np.asarray(std, np.float32)
        self.batch_size, self.seed, self.pad = batch_size, seed, pad
        self.num_examples = len(x)
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Moves to `epoch`'s shuffle and augmentation (e.g. to resume a run)."""
        self.epoch = epoch
        self._order = np.random.default_rng([self.seed, epoch]).permutation(self.num_examples)

    def on_epoch_end(self):
        self.set_epoch(self.epoch + 1)

    def __len__(self):
        return math.ceil(self.num_examples / self.batch_size)

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(f"Batch index {index} is out of range for {len(self)} batches.")
        rows = self._order[index * self.batch_size : (index + 1) * self.batch_size]
        rng = np.random.default_rng([self.seed, self.epoch, index])
        images = _standardize(self.x[rows], self.mean, self.std)
        return pad_crop_flip(images, rng, self.pad), self.y[rows]


def pad_crop_flip(images: np.ndarray, rng: np.random.Generator, pad: int = 4) -> np.ndarray:
    """Zero-pads each image by `pad`, crops it back to size at a random offset and
    flips it horizontally with probability 1/2.

    Args:
        images: `(n, h, w, c)` float32.
        rng: the generator for offsets and flips.
        pad: padding on each side. Defaults to `4`.

    Returns:
        The augmented `(n, h, w, c)` float32 batch.
    """
    n, h, w, c = images.shape
    height, width = h + 2 * pad, w + 2 * pad
    padded = np.zeros((n, height, width, c), images.dtype)
    padded[:, pad : pad + h, pad : pad + w] = images
    dy = rng.integers(0, 2 * pad + 1, size=n)
    dx = rng.integers(0, 2 * pad + 1, size=n)
    flip = rng.random(n) < 0.5
    cols = dx[:, None] + np.arange(w)
    cols = np.where(flip[:, None], cols[:, ::-1], cols)
    rows = dy[:, None] + np.arange(h)
    # One `take` of flat pixel indices: ~3x faster than broadcast fancy indexing.
    pixels = (np.arange(n)[:, None, None] * height + rows[:, :, None]) * width + cols[:, None, :]
    return padded.reshape(-1, c).take(pixels.ravel(), axis=0).reshape(n, h, w, c)


_WORD = re.compile(r"[a-z0-9']+")


def _tokenize(text) -> list[str]:
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    return _WORD.findall(text.lower().replace("<br />", " "))


def _build_imdb(info, params, splits, scores) -> Dataset:
    """IMDB reviews as `(maxlen,)` int32 token ids; models need an `Embedding`.

    Tokens are lowercase runs of letters, digits and apostrophes (`<br />` tags
    dropped). The vocabulary is the training split's `vocab_size - 2` most frequent
    words (ties broken alphabetically, so it is deterministic); id 0 is padding,
    1 out-of-vocabulary, 2.. the words by decreasing frequency. Sequences keep
    their last `maxlen` tokens and are zero-padded at the front, as
    `keras.utils.pad_sequences` does by default, so an RNN ends on real words.
    """
    vocab_size, maxlen = params["vocab_size"], params["maxlen"]
    tokens = {s: [_tokenize(t) for t in x] for s, (x, _) in splits.items()}
    counts = collections.Counter(word for doc in tokens["train"] for word in doc)
    words = sorted(counts, key=lambda word: (-counts[word], word))[: vocab_size - 2]
    index = {word: i + 2 for i, word in enumerate(words)}
    out = {}
    for split, (_, y) in splits.items():
        ids = [[index.get(word, 1) for word in doc] for doc in tokens[split]]
        x = keras.utils.pad_sequences(ids, maxlen=maxlen, dtype="int32", padding="pre", truncating="pre")
        out[split] = (x, y)
    preprocessing = {"tokenizer": "lowercase [a-z0-9']+ words", "vocab_size": vocab_size,
                     "maxlen": maxlen, "padding": "pre", "oov_id": 1, "pad_id": 0}  # fmt: skip
    return info.make(
        params, **out, input_shape=(maxlen,), input_dtype="int32", preprocessing=preprocessing, **scores
    )
