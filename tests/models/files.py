"""Files for tests of sample and image loading: a PNG encoder (every scanline filter of the PNG
specification, chosen per row, so decoding is checked against pixels the test knows), a folder
of mixed images, an NPY whose header lies about its size, and the peak memory of an action."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from akidac.errors import UsageError


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def encode_png(image: np.ndarray, filters: list[int]) -> bytes:
    """A PNG whose scanline y uses filter `filters[y % len(filters)]` (the test's own encoder)."""
    height, width, channels = image.shape
    color = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    raw = bytearray()
    previous = [0] * (width * channels)
    for y in range(height):
        line = image[y].reshape(-1).astype(int).tolist()
        kind = filters[y % len(filters)]
        out = []
        for x, value in enumerate(line):
            left = line[x - channels] if x >= channels else 0
            up = previous[x]
            upper_left = previous[x - channels] if x >= channels else 0
            predictor = [0, left, up, (left + up) // 2, _paeth(left, up, upper_left)][kind]
            out.append((value - predictor) & 0xFF)
        raw.append(kind)
        raw.extend(out)
        previous = line

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    header = struct.pack(">IIBBBBB", width, height, 8, color, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(raw)))
        + chunk(b"IEND", b"")
    )


def image_folder(folder: Path) -> None:
    """An RGB PNG (16×16), a gray PGM, an integer and a float NPY (8×8), and a text file."""
    rng = np.random.default_rng(0)
    (folder / "a.png").write_bytes(
        encode_png(rng.integers(0, 256, (16, 16, 3)).astype(np.uint8), [4])
    )
    gray = rng.integers(0, 256, (8, 8)).astype(np.uint8)
    (folder / "b.pgm").write_bytes(b"P5 8 8 255\n" + gray.tobytes())
    np.save(folder / "c.npy", rng.integers(0, 256, (8, 8, 3)).astype(np.uint8))
    np.save(folder / "d.npy", np.full((8, 8, 3), 0.25, np.float32))
    (folder / "notes.txt").write_text("not an image")


def lying_npy(shape: tuple[int, ...]) -> bytes:
    """An NPY header that declares `shape` float32, followed by a few bytes (issue 10: 897 B)."""
    import io

    stream = io.BytesIO()
    header = {"descr": "<f4", "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(stream, header)
    return stream.getvalue() + b"\0" * 768


def peak_bytes(action: Callable[[], object]) -> int:
    """Peak bytes Python allocated while `action` ran (a `UsageError` it raises is expected)."""
    import tracemalloc

    tracemalloc.start()
    try:
        action()
    except UsageError:
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak
