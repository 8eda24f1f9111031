"""akidac's memory limits, in one place: read by the frontend (tensor sizes at import) and by
sample loading (declared array sizes, image pixels) before anything is allocated.

- `max_tensor_bytes()`: the largest single tensor, 2 GiB by default; the environment variable
  `AKIDAC_MAX_TENSOR_BYTES` (bytes, or with a K/M/G/T suffix: 512M, 4G) overrides it.
- `max_image_pixels()`: the largest image of a samples folder, 2^25 (33.5 M) pixels by default;
  `AKIDAC_MAX_IMAGE_PIXELS` overrides it (a count, same suffixes, powers of 1000 not implied).

This module imports nothing of akidac but its errors.
"""

from __future__ import annotations

import os
import re

from akidac.errors import UsageError

#: the default per-tensor memory budget, bytes (2 GiB).
DEFAULT_MAX_TENSOR_BYTES = 2 << 30
#: the environment variable that overrides it.
MAX_TENSOR_BYTES_ENV = "AKIDAC_MAX_TENSOR_BYTES"
#: the default largest image (pixels) a samples folder may hold: 2^25, e.g. 8192 × 4096.
DEFAULT_MAX_IMAGE_PIXELS = 1 << 25
#: the environment variable that overrides it.
MAX_IMAGE_PIXELS_ENV = "AKIDAC_MAX_IMAGE_PIXELS"

_SCALE = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def _from_env(name: str, default: int, example: str) -> int:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    match = re.fullmatch(r"(\d+)\s*([kKmMgGtT]?)(i?[bB])?", text)
    value = int(match.group(1)) * _SCALE[match.group(2).lower()] if match else 0
    if value <= 0:
        raise UsageError(f"{name}={text!r} is not a positive count; e.g. {example}")
    return value


def max_tensor_bytes() -> int:
    """The per-tensor budget: `AKIDAC_MAX_TENSOR_BYTES` (e.g. 512M, 4G) or 2 GiB."""
    return _from_env(MAX_TENSOR_BYTES_ENV, DEFAULT_MAX_TENSOR_BYTES, "2147483648, 512M or 4G")


def max_image_pixels() -> int:
    """The largest image of a samples folder: `AKIDAC_MAX_IMAGE_PIXELS` or 2^25 pixels."""
    return _from_env(MAX_IMAGE_PIXELS_ENV, DEFAULT_MAX_IMAGE_PIXELS, "33554432 or 64M")
