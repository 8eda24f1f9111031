"""Sample files: the arrays of an `.npz`/`.npy` the user gives as calibration or run inputs.

Headers are read first, so a file whose arrays would not fit the memory budget, or that holds
pickled objects, is refused with a one-line `UsageError` before any data is read.
"""

from __future__ import annotations

import math
import os
import struct
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np

from akidac.errors import UsageError
from akidac.limits import MAX_TENSOR_BYTES_ENV, max_tensor_bytes

#: what a corrupt or truncated NPY/NPZ file (or an image, decoded by Pillow) raises.
DECODE_ERRORS = (
    OSError,
    ValueError,
    EOFError,
    zipfile.BadZipFile,
    zlib.error,
    struct.error,
    KeyError,
    IndexError,
)


def shape_text(shape: tuple[Any, ...]) -> str:
    """A shape as Python prints a tuple: (3,) or (1, 3, 224, 224)."""
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def nbytes(shape: tuple[int, ...], dtype: np.dtype) -> int:
    """Bytes an array of this shape and dtype holds."""
    return math.prod(shape) * dtype.itemsize


def read_npy_header(stream: IO[bytes], where: str) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) from the header of an NPY stream, without reading its data."""
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
    elif version in ((2, 0), (3, 0)):
        shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
    else:
        raise ValueError(f"{where}: unsupported NPY format version {version}")
    if dtype.hasobject:
        raise ValueError(f"{where} holds Python objects (pickled data), which akidac never loads")
    if any(int(d) < 0 for d in shape):
        raise ValueError(f"{where}: negative dimension in {shape}")
    return tuple(int(d) for d in shape), dtype


def array_headers(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """{array name: (shape, dtype)} of an NPY ('' for its one array) or NPZ file, read from
    the headers only (by content, not suffix). Unreadable files raise one of
    `DECODE_ERRORS`."""
    with path.open("rb") as stream:
        magic = stream.read(6)
        stream.seek(0)
        if magic == b"\x93NUMPY":
            return {"": read_npy_header(stream, f"'{path}'")}
    if not zipfile.is_zipfile(path):
        raise ValueError("not a NumPy .npy/.npz file")
    headers: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            with archive.open(info) as member:
                headers[name] = read_npy_header(member, f"'{path}' array '{name}'")
    return headers


class SampleFile(Mapping[str, np.ndarray]):
    """The arrays of an `.npz` (by name) or `.npy` (keyed '' for the single input), read
    lazily: every array's shape and dtype come from its header when the file is opened
    (`declared`), its data only when it is used, so `check_samples` compares the declared
    shapes with the model's inputs before anything large is read.

    Opening refuses (`UsageError`, exit 2): a missing or unreadable file, an `.npz` with no
    arrays, object (pickled) arrays, and any array whose declared size is above the per-tensor
    memory budget (`akidac.limits.max_tensor_bytes`, `AKIDAC_MAX_TENSOR_BYTES`).
    """

    def __init__(self, path: str | os.PathLike[str], what: str = "--samples") -> None:
        self.path = Path(path)
        self.what = what
        if not self.path.is_file():
            raise UsageError(f"{what} file '{self.path}' does not exist or is not a file")
        try:
            self.headers = array_headers(self.path)
        except DECODE_ERRORS as error:
            first = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise UsageError(
                f"{what} file '{self.path}' is not a readable NumPy .npz/.npy file ({first})"
            ) from None
        if not self.headers:
            raise UsageError(
                f"{what} file '{self.path}' holds no arrays; it needs one array (N, ...) per "
                "model input"
            )
        limit = max_tensor_bytes()
        for name, (shape, dtype) in self.headers.items():
            size = nbytes(shape, dtype)
            if size > limit:
                label = f"array '{name}'" if name else "its array"
                raise UsageError(
                    f"{what} file '{self.path}': {label} declares shape {shape_text(shape)} "
                    f"{dtype}, {size:,} bytes, above akidac's memory budget of {limit:,} bytes "
                    f"per tensor (pass fewer samples, or raise {MAX_TENSOR_BYTES_ENV})"
                )
        self._loaded: dict[str, np.ndarray] = {}

    def declared(self, name: str) -> tuple[tuple[int, ...], np.dtype]:
        """The (shape, dtype) array `name` declares in its header."""
        return self.headers[name]

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self.headers:
            raise KeyError(name)
        if name not in self._loaded:
            try:
                loaded = np.load(self.path, allow_pickle=False)
                if isinstance(loaded, np.lib.npyio.NpzFile):
                    with loaded as data:
                        array = np.asarray(data[name])
                else:
                    array = np.asarray(loaded)
            except DECODE_ERRORS as error:
                first = str(error).splitlines()[0] if str(error) else type(error).__name__
                raise UsageError(
                    f"{self.what} file '{self.path}': cannot read array '{name}' ({first})"
                ) from None
            self._loaded[name] = array
        return self._loaded[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.headers)

    def __len__(self) -> int:
        return len(self.headers)


def load_sample_file(path: str | os.PathLike[str], what: str = "--samples") -> SampleFile:
    """An `.npz`/`.npy` of calibration or run inputs, checked and read lazily (`SampleFile`)."""
    return SampleFile(path, what)
