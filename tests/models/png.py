"""A PNG encoder for tests: every scanline filter of the PNG specification, chosen per row, so a
decoder's handling of each one is checked against pixels the test knows."""

from __future__ import annotations

import struct
import zlib

import numpy as np


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
