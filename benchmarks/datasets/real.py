"""The real datasets: read through tensorflow-datasets, then preprocessed in NumPy.

gradzoo never downloads: a dataset must be prepared beforehand (`tfds build NAME
--data_dir DIR` on a machine with network), and a missing one raises
`DatasetNotAvailableError` with one sentence saying how to provide it.

Two readers, chosen by what is installed:

- with TensorFlow, `builder.as_dataset` reads any prepared format (TFRecord, the
  default of `tfds build`, or ArrayRecord);
- without TensorFlow (a JAX-only GPU machine), `builder.as_data_source` reads
  data prepared as ArrayRecord (`tfds build NAME --file_format=array_record`),
  in pure Python. `GRADZOO_TFDS_READER=data_source` forces this reader.

Everything after reading (validation split, normalization, tokenization,
augmentation) is NumPy, so training runs on any Keras backend.

Scores: classification accuracy throughout; chance is 1/classes. Each target is
a level a healthy model of the matching zoo family reaches, set below the
published result of that family so that a short benchmark budget can reach it.
"""

from __future__ import annotations

import collections
import importlib.util
import math
import os
import re

import keras
import numpy as np

from gradzoo.benchmarks.datasets.base import (
    Dataset,
    DatasetInfo,
    DatasetNotAvailableError,
    Signature,
    register,
    split_off_validation,
)
from gradzoo.benchmarks.datasets.batches import AugmentedImages, standardize

EMBEDDED_NAMES = "mnist1d, adding, copy_memory"

# name -> (TFDS name, number of classes, target accuracy, input shape). Targets and sources:
_SPECS = {
    # 0.97 ~ 3-layer MLPs in LeCun et al. 1998 (2.95-3.05% test error).
    "mnist": ("mnist", 10, 0.97, (28, 28, 1)),
    # 0.85: Xiao et al. 2017 report ~87% for an MLP on Fashion-MNIST.
    "fashion_mnist": ("fashion_mnist", 10, 0.85, (28, 28, 1)),
    # 0.80: below ResNet-20's 91.25% (He et al. 2016) so that a short budget can reach it.
    "cifar10": ("cifar10", 10, 0.80, (32, 32, 3)),
    # 0.50: below the ~70% of deep ResNets on CIFAR-100, for the same reason.
    "cifar100": ("cifar100", 100, 0.50, (32, 32, 3)),
    # 0.85: Maas et al. 2011 report 88.9% with learned word vectors.
    "imdb_reviews": ("imdb_reviews", 2, 0.85, None),
    # 0.90: Le et al. 2015 report 97% for an IRNN; Arjovsky et al. 2016 98.2% for an LSTM.
    "seq_mnist": ("mnist", 10, 0.90, (784, 1)),
    # 0.80: Le et al. 2015 report 82% (IRNN); Arjovsky et al. 2016 88% (LSTM), 91.4% (uRNN).
    "permuted_seq_mnist": ("mnist", 10, 0.80, (784, 1)),
}


def tfds_name(name: str) -> str:
    """The tensorflow-datasets dataset a gradzoo dataset is read from (`seq_mnist` -> `mnist`)."""
    return _SPECS[name][0]


def _signature(name: str):
    def signature(params: dict) -> Signature:
        _, num_classes, target, shape = _SPECS[name]
        token_ids = name == "imdb_reviews"
        return Signature(
            input_shape=(params["maxlen"],) if token_ids else shape,
            num_outputs=num_classes,
            metric="accuracy",
            metric_mode="max",
            chance=1.0 / num_classes,
            target=target,
            input_dtype="int32" if token_ids else "float32",
            vocab_size=params["vocab_size"] if token_ids else None,
        )

    return signature


def build(info: DatasetInfo, params: dict, data_dir: str | None) -> Dataset:
    """Builds a real dataset from validated params."""
    raw = read_splits(info.name, resolve_data_dir(data_dir))
    train, val = split_off_validation(len(raw["train"][0]), params["val_fraction"], params["seed"])
    splits = {
        "train": (raw["train"][0][train], raw["train"][1][train]),
        "val": (raw["train"][0][val], raw["train"][1][val]),
        "test": raw["test"],
    }
    if info.name == "imdb_reviews":
        return _build_imdb(info, params, splits)
    if info.name.startswith("cifar"):
        return _build_cifar(info, params, splits)
    return _build_mnist_like(info, params, splits)


def resolve_data_dir(data_dir: str | None) -> str:
    """The TFDS data directory: the argument, else `$GRADZOO_TFDS_DIR`, else
    `$TFDS_DATA_DIR`, else TFDS's default `~/tensorflow_datasets`."""
    for candidate in (data_dir, os.environ.get("GRADZOO_TFDS_DIR"), os.environ.get("TFDS_DATA_DIR")):
        if candidate:
            return os.path.expanduser(str(candidate))
    return os.path.join(os.path.expanduser("~"), "tensorflow_datasets")


def reader() -> str:
    """`"as_dataset"` where TensorFlow is installed, else `"data_source"` (or `$GRADZOO_TFDS_READER`)."""
    forced = os.environ.get("GRADZOO_TFDS_READER")
    if forced in ("as_dataset", "data_source"):
        return forced
    try:
        found = importlib.util.find_spec("tensorflow") is not None
    except ImportError:  # a broken or blocked installation counts as none
        found = False
    return "as_dataset" if found else "data_source"


def _not_prepared(name: str, data_dir: str, file_format: str = "") -> DatasetNotAvailableError:
    tfds = tfds_name(name)
    needs = f"needs the TFDS dataset {tfds!r}, which is" if tfds != name else "is"
    return DatasetNotAvailableError(
        f"Dataset {name!r} {needs} not prepared in {data_dir} and gradzoo does not download datasets; run "
        f"`tfds build {tfds}{file_format} --data_dir DIR` on a machine with network, then pass data_dir=DIR "
        "(`--data-dir DIR`) or set GRADZOO_TFDS_DIR=DIR."
    )


def _import_tfds(name: str):
    try:
        import tensorflow_datasets as tfds
    except ImportError as err:
        raise DatasetNotAvailableError(
            f"Dataset {name!r} is read through tensorflow-datasets, but {err.name or 'it'} cannot be imported here; "
            f"install it with `pip install tensorflow-datasets` or use an embedded dataset ({EMBEDDED_NAMES})."
        ) from None
    return tfds


def is_prepared(name: str, data_dir: str | None) -> bool:
    """Whether a real dataset's files are in the data directory (reads its metadata only)."""
    tfds = _import_tfds(name)
    data_dir = resolve_data_dir(data_dir)
    if reader() == "data_source":
        from tensorflow_datasets.core import read_only_builder

        try:
            return bool(read_only_builder.builder_from_files(tfds_name(name), data_dir=data_dir).is_prepared())
        except (ValueError, AssertionError, FileNotFoundError, KeyError):
            return False
    return bool(tfds.builder(tfds_name(name), data_dir=data_dir).is_prepared())


def check_prepared(name: str, data_dir: str | None) -> None:
    """Raises `DatasetNotAvailableError` (one sentence saying how to prepare it) unless the dataset is prepared."""
    if not is_prepared(name, data_dir):
        # Without TensorFlow only ArrayRecord files can be read: say so in the command to run.
        file_format = " --file_format=array_record" if reader() == "data_source" else ""
        raise _not_prepared(name, resolve_data_dir(data_dir), file_format)


def read_splits(name: str, data_dir: str) -> dict:
    """Reads the train and test splits of a prepared TFDS dataset into memory.

    Returns:
        `{"train": (x, y), "test": (x, y)}` with raw `x` (uint8 images or byte
        strings) and int32 `y`.
    """
    tfds = _import_tfds(name)
    if reader() == "data_source":
        return _read_data_source(name, data_dir)
    return _read_as_dataset(name, tfds.builder(tfds_name(name), data_dir=data_dir), data_dir)


def _read_as_dataset(name: str, builder, data_dir: str) -> dict:
    """The TensorFlow reader: any prepared file format."""
    import tensorflow as tf
    import tensorflow_datasets as tfds

    if keras.backend.backend() != "tensorflow":
        # TF only reads files here; keep it off the accelerator the backend trains on.
        try:
            tf.config.set_visible_devices([], "GPU")
        except RuntimeError:
            pass  # TF was already initialized by someone else; nothing to undo
    arrays = {}
    for split in ("train", "test"):
        try:
            ds = builder.as_dataset(split=split, as_supervised=True, batch_size=4096, shuffle_files=False)
        except AssertionError:
            # TFDS signals "no prepared data in data_dir" with an AssertionError.
            raise _not_prepared(name, data_dir) from None
        ds = ds.prefetch(tf.data.AUTOTUNE)  # decode the next block while this one is copied out
        batches = list(tfds.as_numpy(ds))
        arrays[split] = (np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches]).astype(np.int32))
    return arrays


def _read_data_source(name: str, data_dir: str) -> dict:
    """The TensorFlow-free reader: prepared ArrayRecord files through `as_data_source`.

    The builder comes from the prepared files (their `dataset_info.json`), not
    from the dataset's code, which imports TensorFlow.
    """
    from tensorflow_datasets.core import read_only_builder

    if importlib.util.find_spec("array_record") is None:
        raise DatasetNotAvailableError(
            f"Dataset {name!r} is read without TensorFlow through ArrayRecord files, which needs the array_record "
            "package; install it with `pip install array-record`, or install tensorflow."
        )
    try:
        builder = read_only_builder.builder_from_files(tfds_name(name), data_dir=data_dir)
    except (ValueError, AssertionError, FileNotFoundError, KeyError):  # DatasetNotFoundError is a ValueError
        raise _not_prepared(name, data_dir, " --file_format=array_record") from None
    arrays = {}
    for split in ("train", "test"):
        try:
            source = builder.as_data_source(split=split)
        except NotImplementedError:
            # Prepared, but as TFRecord: only TensorFlow reads those.
            raise DatasetNotAvailableError(
                f"Dataset {name!r} in {data_dir} is not prepared as ArrayRecord, the only format read without "
                f"TensorFlow; run `tfds build {tfds_name(name)} --file_format=array_record --data_dir DIR`, or "
                "install tensorflow."
            ) from None
        except (ValueError, KeyError, FileNotFoundError, AssertionError):
            raise _not_prepared(name, data_dir, " --file_format=array_record") from None
        image, label = builder.info.supervised_keys
        examples = [source[i] for i in range(len(source))]
        if name == "imdb_reviews":
            x = np.array([e[image] for e in examples], dtype=object)
        else:
            x = np.stack([np.asarray(e[image]) for e in examples])
        arrays[split] = (x, np.array([e[label] for e in examples], dtype=np.int32))
    return arrays


def _pixel_moments(pixels: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation on the [0, 1] scale of uint8 pixels, exact,
    from a histogram: no float copy of the whole training set."""
    counts = np.bincount(pixels.ravel(), minlength=256)
    levels = np.arange(256) / 255.0
    mean = float(counts @ levels / counts.sum())
    std = math.sqrt(float(counts @ (levels - mean) ** 2 / counts.sum()))
    return mean, std or 1.0  # a constant image set would divide by zero


def _build_mnist_like(info, params, splits) -> Dataset:
    """MNIST and Fashion-MNIST as `(28, 28, 1)` images; `seq_mnist` and
    `permuted_seq_mnist` as `(784, 1)` pixel sequences in row-major order.

    Pixels are scaled to [0, 1], then standardized with the mean and standard
    deviation of the training split (validation part excluded). The permutation
    of `permuted_seq_mnist` is `np.random.default_rng(permutation_seed)
    .permutation(784)`, fixed across runs whatever `seed` is.
    """
    mean, std = _pixel_moments(splits["train"][0])
    out = {s: (standardize(x, mean, std), y) for s, (x, y) in splits.items()}
    preprocessing = {"scale": 1 / 255, "mean": mean, "std": std}
    if info.name in ("seq_mnist", "permuted_seq_mnist"):
        out = {s: (x.reshape(-1, 784, 1), y) for s, (x, y) in out.items()}
    if info.name == "permuted_seq_mnist":
        perm = np.random.default_rng(params["permutation_seed"]).permutation(784)
        out = {s: (np.ascontiguousarray(x[:, perm]), y) for s, (x, y) in out.items()}
        preprocessing["permutation"] = f"np.random.default_rng({params['permutation_seed']}).permutation(784)"
    return info.make(params, **out, preprocessing=preprocessing)


def _build_cifar(info, params, splits) -> Dataset:
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
    out = {s: (standardize(x, mean, std), y) for s, (x, y) in splits.items() if s != "train"}
    if params["augment"]:
        out["train"] = AugmentedImages(
            x_train, splits["train"][1], mean, std, batch_size=params["batch_size"], seed=params["seed"]
        )
    else:
        out["train"] = (standardize(x_train, mean, std), splits["train"][1])
    preprocessing = {"scale": 1 / 255, "mean": mean.tolist(), "std": std.tolist(),
                     "augment": "pad-4 crop + horizontal flip" if params["augment"] else None}  # fmt: skip
    return info.make(params, **out, preprocessing=preprocessing)


_WORD = re.compile(r"[a-z0-9']+")


def _tokenize(text) -> list[str]:
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    return _WORD.findall(text.lower().replace("<br />", " "))


def _build_imdb(info, params, splits) -> Dataset:
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
    return info.make(params, **out, preprocessing=preprocessing)


def _real(name: str, description: str, **defaults) -> None:
    register(name, description, embedded=False, task="classification", signature=_signature(name), **defaults)(build)


_real("mnist", "MNIST handwritten digits, 28x28x1, standardized", val_fraction=0.1)
_real("fashion_mnist", "Fashion-MNIST clothing images, 28x28x1, standardized", val_fraction=0.1)
_real("cifar10", "CIFAR-10 images, 32x32x3, per-channel standardized, pad-4 crop + flip on train",
      val_fraction=0.1, augment=True)  # fmt: skip
_real("cifar100", "CIFAR-100 images (100 fine labels), 32x32x3, per-channel standardized, pad-4 crop + flip on train",
      val_fraction=0.1, augment=True)  # fmt: skip
_real("imdb_reviews", "IMDB movie-review sentiment, lowercase word tokens padded to `maxlen` (int32 inputs)",
      val_fraction=0.1, vocab_size=10000, maxlen=200)  # fmt: skip
_real("seq_mnist", "Pixel-by-pixel MNIST: 784-step sequences of one pixel", val_fraction=0.1)
_real("permuted_seq_mnist", "Pixel-by-pixel MNIST under a fixed random permutation of the 784 steps",
      val_fraction=0.1, permutation_seed=0)  # fmt: skip
