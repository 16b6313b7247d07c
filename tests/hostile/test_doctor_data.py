"""The doctor on a careless user's data or model: one sentence about the data, never a verdict on the model.

Each row of `CASES` builds a bad `.npz` or `.keras` file under the test's own
folder and names the words the one-line error must hold: the array, the first
offending row, and what is accepted. A new case is one line. Before these
checks, a NaN in `x` gave "EXPLODING" and a clipnorm suggestion, fractional
labels under a sparse crossentropy gave "HEALTHY", a frozen model "HEALTHY ...
No change suggested", and labels out of range or a config naming a module
printed Keras's internals, one cut mid-word.
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import keras
import numpy as np
import pytest

from gradzoo.benchmarks.cli import main

ROOT = Path(__file__).resolve().parents[2]
ROWS = 300


def _model(path, loss="sparse_categorical_crossentropy", outputs=10, activation=None, frozen=False):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((40,)), keras.layers.Dense(8, activation="relu", name="hidden"),
                              keras.layers.Dense(outputs, activation=activation, name="out")], name="users_model")  # fmt: skip
    model.trainable = not frozen
    model.compile(optimizer="adam", loss=loss)
    model.save(path)
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """The users' models, saved once: a 10-class classifier, a regressor, a binary one and a frozen one."""
    root = tmp_path_factory.mktemp("models")
    return {
        "classes": _model(root / "classes.keras", keras.losses.SparseCategoricalCrossentropy(from_logits=True)),
        "regression": _model(root / "regression.keras", "mse", outputs=1),
        "binary": _model(root / "binary.keras", "binary_crossentropy", outputs=1, activation="sigmoid"),
        "frozen": _model(root / "frozen.keras", keras.losses.SparseCategoricalCrossentropy(from_logits=True), frozen=True),
    }


def _xy():
    rng = np.random.default_rng(0)
    return rng.normal(size=(ROWS, 40)).astype("float32"), rng.integers(0, 10, ROWS)


def _at(a, row, value, column=None):
    a = a.astype("float64") if isinstance(value, float) and a.dtype.kind != "f" else a.copy()
    if column is None:
        a[row] = value
    else:
        a[row, column] = value
    return a


def _edit_config(source, change):
    """A copy of a `.keras` file whose config.json was changed by `change(config)`, as a hostile file would be."""
    target = Path("edited.keras")
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for item in old.infolist():
            data = old.read(item.filename)
            if item.filename == "config.json":
                config = json.loads(data)
                change(config)
                data = json.dumps(config).encode()
            new.writestr(item, data)
    return target


def _names_module(module, name):
    def change(config):
        config["config"]["layers"][1].update(module=module, class_name=name)
    return change


def _npy_member(path, header_shape, data: bytes, dtype="<f4"):
    """An .npz whose `x` header declares `header_shape` but holds `data`: a lie only a lazy reader meets."""
    with zipfile.ZipFile(path, "w") as archive:
        with archive.open("x.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array_header_1_0(member, {"descr": dtype, "fortran_order": False, "shape": header_shape})
            member.write(data)
        with archive.open("y.npy", "w") as member:
            np.lib.format.write_array(member, np.zeros(header_shape[0], "int64"))
    return path


def _data(x=None, y=None, compressed=False, **arrays):
    """Writes `data.npz` in the test's folder from `_xy()` with `x`/`y` replaced; returns its path."""
    base_x, base_y = _xy()
    arrays = {"x": base_x if x is None else x, "y": base_y if y is None else y, **arrays}
    (np.savez_compressed if compressed else np.savez)("data.npz", **arrays)
    return "data.npz"


# (case, model, how to make the data file, words the sentence must hold)
CASES = [
    ("nan in x", "classes", lambda: _data(x=_at(_xy()[0], 17, np.nan, 3)), ["`x` holds nan at row 17", "finite numbers"]),
    ("inf in y", "regression", lambda: _data(y=_at(_xy()[1].astype("float32"), 3, np.inf)), ["`y` holds inf at row 3", "finite"]),
    ("fractional labels", "classes", lambda: _data(y=_xy()[1] + 0.5), ["`y` holds the label 4.5 at row 0", "integer class labels from 0 to 9"]),
    ("negative label", "classes", lambda: _data(y=_at(_xy()[1], 5, -1)), ["label -1 at row 5", "integer class labels from 0 to 9"]),
    ("label out of range", "classes", lambda: _data(y=_at(_xy()[1], 5, 10)), ["label 10 at row 5", "integer class labels from 0 to 9"]),
    ("labels shaped for another loss", "classes", lambda: _data(y=np.zeros((ROWS, 3, 3))), ["`y` (shape (3, 3) per example)", "one integer class label per example"]),
    ("targets wider than the output", "regression", lambda: _data(y=np.zeros((ROWS, 3), "float32")), ["`y` (shape (3,) per example)", "outputs (shape (1,))", "shaped like the outputs"]),
    ("binary targets outside [0, 1]", "binary", lambda: _data(y=_at(np.zeros(ROWS, "float32"), 4, 2.0)), ["`y` holds 2 at row 4", "between 0 and 1"]),
    ("x and y of different lengths", "classes", lambda: _data(y=_xy()[1][:-1]), ["`x` has 300 examples but `y` has 299", "one target per example"]),
    ("lengths differ past the rows read", "classes", lambda: _data(x=np.zeros((25_000, 40), "float32"), y=np.zeros(24_000, "int64"), compressed=True), ["`x` has 25000 examples but `y` has 24000"]),
    ("header declares more than it holds", "classes", lambda: _npy_member("data.npz", (ROWS, 40), bytes(4 * 40 * 10)), ["`x` in data.npz ends before the data its header declares"]),
    ("rows too large to read", "classes", lambda: _npy_member("data.npz", (4, 1 << 29), b""), ["takes more than 1024 MB", "x (4, 536870912)"]),
    ("pickled objects", "classes", lambda: _data(x=np.array([object()] * ROWS)), ["`x` in data.npz holds Python objects", "numeric arrays"]),
    ("not an npz", "classes", lambda: Path("data.npz").write_bytes(b"x,y\n1,2\n") and "data.npz", ["not a readable .npz file"]),
    ("a frozen model", "frozen", lambda: _data(), ["Model 'users_model' has no trainable weights", "unfreeze"]),
    ("a config naming a module", "edit:os", lambda: _data(), ["names module 'os'", "not a Keras layer module"]),
    ("a class Keras lacks", "edit:keras.layers", lambda: _data(), ["names the class 'Nope' in 'keras.layers'", "does not have"]),
]
# Framework internals that must never reach the user: class paths, kernel names, tensor reprs.
INTERNALS = ("keras.src", "<class", "{{", "function_node", "Tensor(", "config={")


@pytest.mark.parametrize("case, model, make, words", CASES, ids=[c[0] for c in CASES])
def test_bad_data_or_model_is_one_sentence_not_a_verdict(case, model, make, words, models, capsys):
    data = make()
    if model.startswith("edit:"):
        path = _edit_config(models["classes"], _names_module(model[5:], "system" if model == "edit:os" else "Nope"))
    else:
        path = models[model]
    code = main(["doctor", str(path), "--data", str(data), "--steps", "2", "--batch-size", "32"])
    captured = capsys.readouterr()
    err = captured.err
    assert code == 2, f"{case}: exit {code}\n{captured.out}{err}"
    assert err.startswith("gradzoo: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    for word in words:
        assert word in err, f"{case}: {word!r} not in {err!r}"
    assert not any(bit in err for bit in INTERNALS), err
    assert "EXPLODING" not in captured.out and "HEALTHY" not in captured.out and "Verdict" not in captured.out


def test_good_data_still_gets_a_verdict(models, capsys):
    # The checks must not refuse what fits: float labels that are whole numbers, a column of targets.
    x, y = _xy()
    np.savez_compressed("labels.npz", x=x, y=y.astype("float32")[:, None])
    assert main(["doctor", str(models["classes"]), "--data", "labels.npz", "--steps", "2", "--batch-size", "32"]) == 0
    assert "Verdict:" in capsys.readouterr().out


def _deflated_zeros(header: bytes, nbytes: int, block: int = 1 << 24) -> tuple[bytes, int]:
    """A raw deflate stream of `header` then `nbytes` zeros, and its CRC-32, without compressing gigabytes.

    One block of zeros is compressed once and ended with a full flush (byte
    aligned, no reference to earlier data), so the stream can repeat it; zlib
    would take a minute to deflate the 2 GB that 12.5 million rows declare.
    """
    def flushed(data):
        c = zlib.compressobj(9, zlib.DEFLATED, -15)
        return c.compress(data) + c.flush(zlib.Z_FULL_FLUSH)

    whole, rest = divmod(nbytes, block)
    zeros = bytes(block)
    crc = zlib.crc32(header)
    for _ in range(whole):
        crc = zlib.crc32(zeros, crc)
    crc = zlib.crc32(zeros[:rest], crc)
    stream = flushed(header) + flushed(zeros) * whole + flushed(zeros[:rest]) + b"\x03\x00"  # an empty final block
    return stream, crc


def _zeros_npz(path, arrays):
    """An .npz (deflated, as np.savez_compressed writes) of zero arrays `{name: (dtype, shape)}`, written by hand."""
    out, central = bytearray(), bytearray()
    for name, (dtype, shape) in arrays.items():
        buffer = io.BytesIO()
        np.lib.format.write_array_header_1_0(buffer, {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": shape})
        size = int(np.prod(shape)) * np.dtype(dtype).itemsize
        data, crc = _deflated_zeros(buffer.getvalue(), size)
        file_name, offset, total = f"{name}.npy".encode(), len(out), len(buffer.getvalue()) + size
        fields = (20, 0, 8, 0, 0, crc, len(data), total, len(file_name))  # version, flags, deflate, time, date, sizes
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, *fields, 0) + file_name + data
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, *fields, 0, 0, 0, 0, 0, offset) + file_name
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(arrays), len(arrays), len(central), len(out), 0)
    path.write_bytes(bytes(out + central + end))
    return path


def _peak_rss_mb(*commands) -> list[float]:
    """Peak resident memory (MB) of each `gradzoo ARGS`, each run in a fresh Python (side by side: both import Keras)."""
    probe = ("import resource, sys; from gradzoo.benchmarks.cli import main; code = main(sys.argv[1:]); "
             "print('PEAK_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(code)")  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    runs = [subprocess.Popen([sys.executable, "-c", probe, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=env) for args in commands]  # fmt: skip
    peaks = []
    for run in runs:
        out, err = run.communicate(timeout=600)
        assert run.returncode == 0, out + err
        peaks.append(int([line for line in out.splitlines() if line.startswith("PEAK_KB")][-1].split()[1]) / 1024)
    return peaks


def test_a_huge_compressed_npz_costs_only_the_rows_read(models):
    # 12.5 million rows of zeros compress to about 2 MB but are 2 GB in memory; the doctor uses 20,000 of them
    # (np.load decompressed them all: 2.9 GB peak). The baseline is the same command on those 20,000 rows alone.
    huge = _zeros_npz(Path("huge.npz"), {"x": ("<f4", (12_500_000, 40)), "y": ("<i8", (12_500_000,))})
    small = _zeros_npz(Path("small.npz"), {"x": ("<f4", (20_000, 40)), "y": ("<i8", (20_000,))})
    assert huge.stat().st_size < 4 << 20
    args = ["doctor", str(models["classes"]), "--steps", "1", "--batch-size", "32", "--json", "--data"]
    baseline, peak = _peak_rss_mb([*args, str(small)], [*args, str(huge)])
    assert peak - baseline < 1024, f"peak {peak:.0f} MB against {baseline:.0f} MB on the first 20,000 rows alone"


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed], ids=["stored", "deflated"])
@pytest.mark.parametrize("order", ["C", "F"])
def test_the_lazy_reader_gives_the_first_rows_in_either_layout(save, order):
    # A Fortran-ordered array keeps each column's rows together: the reader skips the rest of each column.
    from gradzoo.benchmarks.doctor.npzfile import read_npz

    x = np.arange(50 * 3 * 4, dtype="float64").reshape(50, 3, 4)
    save("layout.npz", x=np.asarray(x, order=order), y=np.arange(50))
    for rows in (7, 50, 80):
        got_x, got_y, label = read_npz("layout.npz", rows)
        assert np.array_equal(got_x, x[:rows]) and np.array_equal(got_y, np.arange(50)[:rows]) and got_x.flags.c_contiguous
    assert read_npz("layout.npz", 7)[2] == "layout.npz (x (50, 3, 4), y (50,)), its first 7 rows"
