"""Pillow decodes 8-bit PNG, PGM and PPM images to exactly the pixels akidac's own decoder gave.

Checked before the hand-written decoder is replaced by Pillow: every PNG scanline filter, every
8-bit colour type, binary and ASCII netpbm, over many random images.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from models.png import encode_png
from PIL import Image

from akidac.frontend.images import decode_netpbm, decode_png


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_pillow_and_the_png_decoder_give_the_same_pixels(channels: int) -> None:
    rng = np.random.default_rng(channels)
    for case in range(25):
        height, width = (int(n) for n in rng.integers(1, 40, 2))
        image = rng.integers(0, 256, (height, width, channels)).astype(np.uint8)
        filters = [int(f) for f in rng.integers(0, 5, 1 + case % 7)]
        data = encode_png(image, filters)
        with Image.open(io.BytesIO(data)) as decoded:
            pillow = np.asarray(decoded).reshape(height, width, channels)
        np.testing.assert_array_equal(pillow, decode_png(data))
        np.testing.assert_array_equal(pillow, image)


@pytest.mark.parametrize("magic", [b"P2", b"P3", b"P5", b"P6"])
def test_pillow_and_the_netpbm_decoder_give_the_same_8_bit_pixels(magic: bytes) -> None:
    rng = np.random.default_rng(magic[1])
    channels = 3 if magic in (b"P3", b"P6") else 1
    for _ in range(25):
        height, width = (int(n) for n in rng.integers(1, 40, 2))
        image = rng.integers(0, 256, (height, width, channels)).astype(np.uint8)
        header = magic + b"\n# a comment\n" + f"{width} {height}\n255\n".encode()
        if magic in (b"P5", b"P6"):
            data = header + image.tobytes()
        else:
            data = header + " ".join(str(v) for v in image.reshape(-1)).encode() + b"\n"
        with Image.open(io.BytesIO(data)) as decoded:
            pillow = np.asarray(decoded).reshape(height, width, channels)
        pixels, maxval = decode_netpbm(data)
        assert maxval == 255
        np.testing.assert_array_equal(pillow, pixels.reshape(height, width, channels))
