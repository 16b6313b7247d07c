"""Reading a user's `.npz` lazily: only the rows the doctor uses, whatever the file declares.

`np.load` on an `.npz` decompresses each array whole (`mmap_mode` does not
apply inside a zip), so a 2 MB `np.savez_compressed` file of 12.5 million rows
of zeros took 2.9 GB to give the doctor its first 20,000 rows. Here each member
is opened as a stream (`zipfile`), its `.npy` header read with
`np.lib.format`, and only the first rows' bytes are decompressed (or read, for
an uncompressed member). The header's declared shape gives both arrays'
lengths before any data is read, so `x` and `y` of different lengths are named
even where neither is read to its end.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from pathlib import Path

import numpy as np

from gradzoo.benchmarks.errors import UserError

# What the doctor reads from one array at most, whatever the file declares: 20,000 rows of
# 224x224x3 float32 images would be 12 GB, so large examples get fewer rows, not a refusal.
MAX_READ_BYTES = 1 << 30
_CHUNK = 16 << 20  # bytes per read: bounds the memory that reading itself takes


def _header(stream, where: str) -> tuple[tuple, bool, np.dtype]:
    """`(shape, fortran_order, dtype)` from an `.npy` header; refuses anything but plain numbers."""
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
    else:  # 3.0 only adds UTF-8 field names, for structured arrays, which the doctor does not take
        raise UserError(f"{where} is an .npy version {version[0]}.{version[1]} array; save plain numeric arrays with np.savez.")
    if dtype.hasobject:
        raise UserError(f"{where} holds Python objects (dtype {dtype}), which the doctor never unpickles; save numeric arrays.")
    return tuple(shape), bool(fortran), dtype


def _read_into(stream, out: np.ndarray, where: str) -> None:
    """Fills `out` (contiguous) with the stream's next bytes, in chunks."""
    raw = out.reshape(-1).view(np.uint8)
    pos = 0
    while pos < raw.size:
        chunk = stream.read(min(_CHUNK, raw.size - pos))
        if not chunk:
            raise UserError(f"{where} ends before the data its header declares; the file is truncated or damaged.")
        raw[pos:pos + len(chunk)] = np.frombuffer(chunk, np.uint8)
        pos += len(chunk)


def _first_rows(stream, shape: tuple, fortran: bool, dtype: np.dtype, rows: int, where: str) -> np.ndarray:
    """The first `rows` rows of an array whose data starts at the stream's position."""
    row_shape = shape[1:]
    if not fortran or rows == shape[0] or not row_shape:
        out = np.empty((rows, *row_shape) if shape else (), dtype=dtype, order="F" if fortran else "C")
        if fortran:  # the whole array, in Fortran order: its bytes are the transpose's, in C order
            _read_into(stream, out.T, where)
        else:
            _read_into(stream, out, where)
        return np.ascontiguousarray(out)
    # Fortran order keeps each column's rows together: read `rows` of each, skip the rest.
    columns = int(np.prod(row_shape))
    out = np.empty((columns, rows), dtype=dtype)
    skip = (shape[0] - rows) * dtype.itemsize
    for c in range(columns):
        _read_into(stream, out[c], where)
        if c + 1 < columns:
            stream.seek(skip, io.SEEK_CUR)  # a compressed member decompresses and drops, in bounded chunks
    return np.ascontiguousarray(out.reshape(*row_shape[::-1], rows).T)


def _member(archive: zipfile.ZipFile, name: str) -> zipfile.ZipInfo | None:
    for candidate in (f"{name}.npy", name):  # np.savez writes `x.npy`; np.load accepts either
        try:
            return archive.getinfo(candidate)
        except KeyError:
            continue
    return None


def read_npz(path, max_rows: int) -> tuple[np.ndarray, np.ndarray, str]:
    """The first rows of arrays `x` and `y` of an `.npz` file, and a label naming the file and their shapes.

    Args:
        path: the `.npz` file (`np.savez` or `np.savez_compressed`).
        max_rows: rows to read at most; fewer for an array whose rows would
            take more than `MAX_READ_BYTES`.

    Returns:
        `(x, y, label)`.

    Raises:
        UserError: a missing or unreadable file, one without both arrays,
            arrays that are not plain numbers or that declare more data than
            they hold, or `x` and `y` of different lengths.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"No data file at {str(path)!r}; give an .npz file with arrays `x` and `y` (np.savez(path, x=x, y=y)).")
    try:
        with zipfile.ZipFile(path) as archive:
            members = {name: _member(archive, name) for name in ("x", "y")}
            if None in members.values():
                held = ", ".join(n.removesuffix(".npy") for n in archive.namelist()) or "nothing"
                raise UserError(f"{str(path)!r} must hold arrays named `x` and `y`; it holds: {held}.")
            return _read_members(path, archive, members, max_rows)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as err:
        if isinstance(err, UserError):
            raise
        # Only our own words: zlib's and NumPy's messages describe their internals, not the user's file.
        raise UserError(f"{str(path)!r} is not a readable .npz file of numeric arrays (written by np.savez or "
                        "np.savez_compressed); it is damaged or of another format.") from None  # fmt: skip


def _read_members(path: Path, archive: zipfile.ZipFile, members: dict, max_rows: int):
    streams = {name: archive.open(info) for name, info in members.items()}
    try:
        headers = {name: _header(streams[name], f"`{name}` in {path.name}") for name in members}
        shapes = {name: headers[name][0] for name in members}
        for name, (shape, _, _) in headers.items():
            if not shape:
                raise UserError(f"`{name}` in {path.name} is a single number; give one example per row in `x` and `y`.")
        if shapes["x"][0] != shapes["y"][0]:
            raise UserError(f"`x` has {shapes['x'][0]} examples but `y` has {shapes['y'][0]} in {path.name}; give one target per example.")
        rows = min(shapes["x"][0], max_rows)
        for name, (shape, _, dtype) in headers.items():
            row_bytes = int(np.prod(shape[1:])) * dtype.itemsize
            rows = min(rows, MAX_READ_BYTES // max(row_bytes, 1))
        if rows == 0 and shapes["x"][0] > 0:
            raise UserError(f"One example of {path.name} takes more than {MAX_READ_BYTES >> 20} MB (x {shapes['x']}, "
                            f"y {shapes['y']}); the doctor reads at most that much of each array.")  # fmt: skip
        arrays = {name: _first_rows(streams[name], *headers[name], rows, f"`{name}` in {path.name}") for name in members}
    finally:
        for stream in streams.values():
            stream.close()
    label = f"{path.name} (x {shapes['x']}, y {shapes['y']})"
    if rows < shapes["x"][0]:
        label += f", its first {rows} rows"
    return arrays["x"], arrays["y"], label
