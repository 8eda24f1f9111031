"""Image folders as calibration samples: decoding, channel conversion, resizing, normalising.

A folder of images (PNG, PGM/PPM, NPY/NPZ; JPEG when Pillow is installed) becomes one float32
(N, C, H, W) array for a single image input. Every image's declared size is checked against the
pixel and memory limits before it is decoded (a decompression bomb stops at its header).
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from akidac.errors import UsageError
from akidac.frontend.sample_files import DECODE_ERRORS, array_headers, nbytes, shape_text
from akidac.limits import MAX_IMAGE_PIXELS_ENV, max_image_pixels, max_tensor_bytes

IMAGE_SUFFIXES = (".png", ".pgm", ".ppm", ".pnm", ".npy", ".npz", ".jpg", ".jpeg")


def load_image_samples(
    directory: str | os.PathLike[str],
    size: tuple[int, int],
    mean: tuple[float, ...] | list[float] | None = None,
    std: tuple[float, ...] | list[float] | None = None,
    *,
    channels: int = 3,
    resize: str = "area",
    limit: int | None = None,
) -> np.ndarray:
    """Images of a folder (sorted by name) as float32 (N, C, H, W).

    Integer images (PNG, PGM/PPM, integer NPY) are divided by their maximum value (255 for
    8-bit), then normalised as (x − mean) / std per channel (mean and std in [0, 1] units, e.g.
    ImageNet's (0.485, 0.456, 0.406) and (0.229, 0.224, 0.225)); float NPY/NPZ arrays are taken
    as they are (H, W, C or H, W), only resized. `resize` is "area" (box average; exact nearest
    for integer upscales) or "nearest". Gray images are repeated to 3 channels, RGB images
    reduced to 1 with ITU-R 601 weights, and alpha dropped.
    """
    folder = Path(directory)
    if not folder.is_dir():
        raise UsageError(f"samples folder '{folder}' does not exist or is not a folder")
    if resize not in ("area", "nearest"):
        raise UsageError(f"resize must be 'area' or 'nearest', not {resize!r}")
    offset = _channel_constants(mean, "mean", channels)
    divisor = _channel_constants(std, "std", channels)
    if divisor is not None and not divisor.all():
        raise UsageError(f"std must not be 0, got {tuple(float(v) for v in divisor.ravel())}")
    try:
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    except OSError as error:
        raise UsageError(f"cannot list samples folder '{folder}': {error.strerror}") from None
    if limit is not None:
        files = files[:limit]
    if not files:
        raise UsageError(f"samples folder '{folder}' holds no images ({', '.join(IMAGE_SUFFIXES)})")
    images = []
    for path in files:
        pixels, integer_max = read_image(path)
        if pixels.shape[0] == 0 or pixels.shape[1] == 0:
            raise UsageError(f"image '{path}' is empty ({pixels.shape[0]} x {pixels.shape[1]})")
        if integer_max is None and not np.isfinite(pixels).all():
            raise UsageError(f"image '{path}' holds non-finite values (NaN or inf)")
        image = _to_channels(pixels, channels, path)
        image = resize_image(image, size, resize)
        if integer_max is not None:
            image = image / integer_max
            if offset is not None:
                image = image - offset
            if divisor is not None:
                image = image / divisor
        images.append(image.transpose(2, 0, 1))
    return np.stack(images).astype(np.float32)


def _channel_constants(values: Any, what: str, channels: int) -> np.ndarray | None:
    """`mean`/`std` as a (1, 1, 1 or C) array: one finite number, or one per channel."""
    if values is None:
        return None
    try:
        array = np.asarray(values, np.float64).reshape(-1)
    except (ValueError, TypeError):
        raise UsageError(f"{what} must be numbers, got {values!r}") from None
    if array.size not in (1, channels):
        raise UsageError(
            f"{what} has {array.size} values; expected 1 or one per channel ({channels})"
        )
    if not np.isfinite(array).all():
        raise UsageError(f"{what} must be finite numbers, got {values!r}")
    return array.reshape(1, 1, -1)


def read_image(path: Path) -> tuple[np.ndarray, int | None]:
    """(pixels (H, W, C) or (H, W), the integer maximum or None for float arrays).

    A file that cannot be read or decoded is a `UsageError` naming it.
    """
    suffix = path.suffix.lower()
    try:
        if suffix in (".npy", ".npz"):
            array = _load_array(path)
        elif suffix in (".pgm", ".ppm", ".pnm"):
            return decode_netpbm(path.read_bytes(), str(path))
        elif suffix == ".png":
            return decode_png(path.read_bytes(), str(path)), 255
        else:
            return _read_with_pillow(path), 255
    except DECODE_ERRORS as error:
        reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
        raise UsageError(f"cannot read image '{path}': {reason}") from None
    if array.ndim not in (2, 3):
        raise UsageError(f"'{path}' holds a {array.ndim}-D array; expected (H, W) or (H, W, C)")
    if array.dtype.kind not in "biuf":
        raise UsageError(f"'{path}' holds a {array.dtype} array; expected integer or float pixels")
    if array.dtype.kind == "b":
        return array.astype(np.float64), 1
    if array.dtype.kind in "iu":
        return array.astype(np.float64), 255 if array.dtype.itemsize == 1 else 65535
    return array.astype(np.float64), None


def _check_pixels(height: int, width: int, where: str) -> None:
    """Refuse an image above `max_image_pixels()` before it is decoded."""
    limit = max_image_pixels()
    if height * width > limit:
        raise UsageError(
            f"image '{where}' is {width} x {height} = {height * width:,} pixels, above akidac's "
            f"limit of {limit:,} (a decompression bomb?); shrink it, or raise "
            f"{MAX_IMAGE_PIXELS_ENV}"
        )


def _load_array(path: Path) -> np.ndarray:
    """The array of an NPY file, or the first array of an NPZ (by content, not suffix); its
    declared size is checked against the image and memory limits before it is read."""
    headers = array_headers(path)
    if not headers:
        raise UsageError(f"'{path}' holds no array")
    shape, dtype = next(iter(headers.values()))
    if len(shape) >= 2:
        _check_pixels(shape[0], shape[1], str(path))
    if nbytes(shape, dtype) > max_tensor_bytes():
        raise UsageError(
            f"'{path}' declares a {shape_text(shape)} {dtype} array, {nbytes(shape, dtype):,} "
            f"bytes, above akidac's memory budget of {max_tensor_bytes():,} bytes per tensor"
        )
    loaded = np.load(path, allow_pickle=False)
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        return np.asarray(loaded)
    with loaded as data:
        if not data.files:
            raise UsageError(f"'{path}' holds no array")
        return np.asarray(data[data.files[0]])


def _read_with_pillow(path: Path) -> np.ndarray:
    try:
        from PIL import Image  # type: ignore[import-not-found]
    except ImportError:
        raise UsageError(
            f"'{path}' is a JPEG: install Pillow to read JPEG, or convert the images to PNG/NPY"
        ) from None
    try:
        with Image.open(path) as image:  # reads the header only
            _check_pixels(image.height, image.width, str(path))
            return np.asarray(image.convert("RGB"), dtype=np.float64)
    except (*DECODE_ERRORS, SyntaxError, Image.DecompressionBombError) as error:
        raise UsageError(f"cannot read image '{path}': {error}") from None


def _to_channels(pixels: np.ndarray, channels: int, path: Path) -> np.ndarray:
    image = pixels if pixels.ndim == 3 else pixels[:, :, None]
    have = image.shape[2]
    if have in (2, 4):  # gray + alpha, RGBA: drop alpha
        image = image[:, :, : have - 1]
        have -= 1
    if have == channels:
        return image
    if have == 1:
        return np.repeat(image, channels, axis=2)
    if have == 3 and channels == 1:
        return image @ np.array([[0.299], [0.587], [0.114]])
    raise UsageError(f"'{path}' has {have} channels; the model input takes {channels}")


def resize_image(image: np.ndarray, size: tuple[int, int], mode: str = "area") -> np.ndarray:
    """Resize (H, W, C) to `size`: box-area averaging or nearest neighbour."""
    height, width = image.shape[:2]
    if (height, width) == tuple(size):
        return image.astype(np.float64)
    rows = _resize_matrix(height, size[0], mode)
    cols = _resize_matrix(width, size[1], mode)
    return np.einsum("ih,hwc,jw->ijc", rows, image.astype(np.float64), cols)


def _resize_matrix(source: int, target: int, mode: str) -> np.ndarray:
    """(target, source) weights: each output pixel's overlap with every input pixel."""
    matrix = np.zeros((target, source))
    step = source / target
    for i in range(target):
        if mode == "nearest":
            matrix[i, min(int((i + 0.5) * step), source - 1)] = 1.0
            continue
        start, stop = i * step, (i + 1) * step
        for j in range(int(np.floor(start)), min(int(np.ceil(stop)), source)):
            matrix[i, j] = min(stop, j + 1) - max(start, j)
        matrix[i] /= matrix[i].sum()
    return matrix


def decode_netpbm(data: bytes, name: str = "<netpbm>") -> tuple[np.ndarray, int]:
    """A PGM/PPM image (P2, P3, P5, P6): (pixels (H, W) or (H, W, 3), maxval)."""
    magic = data[:2]
    if magic not in (b"P2", b"P3", b"P5", b"P6"):
        raise ValueError(f"{name} is not a PGM/PPM file (magic {magic!r})")
    fields: list[int] = []
    position = 2
    while len(fields) < 3:
        while position < len(data) and data[position : position + 1].isspace():
            position += 1
        if data[position : position + 1] == b"#":
            while position < len(data) and data[position : position + 1] not in (b"\n", b"\r"):
                position += 1
            continue
        start = position
        while position < len(data) and not data[position : position + 1].isspace():
            position += 1
        if start == position:
            raise ValueError(f"{name}: truncated header")
        fields.append(int(data[start:position]))
    width, height, maxval = fields
    _check_pixels(height, width, name)
    channels = 3 if magic in (b"P3", b"P6") else 1
    count = width * height * channels
    if not 0 < maxval < 65536:
        raise ValueError(f"{name}: maxval {maxval} is out of range")
    if magic in (b"P2", b"P3"):
        values = np.array(data[position:].split()[:count], dtype=np.int64)
    else:
        body = data[position + 1 :]
        dtype = np.dtype(">u2") if maxval > 255 else np.dtype(np.uint8)
        values = np.frombuffer(body[: count * dtype.itemsize], dtype=dtype)
    if values.size != count:
        raise ValueError(f"{name}: expected {count} samples, found {values.size}")
    shape = (height, width, 3) if channels == 3 else (height, width)
    return values.reshape(shape).astype(np.float64), maxval


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}


def decode_png(data: bytes, name: str = "<png>") -> np.ndarray:
    """An 8-bit, non-interlaced gray/RGB/gray+alpha/RGBA PNG as uint8 (H, W, C).

    Chunks → zlib-inflated IDAT → one filter byte per scanline (None, Sub, Up, Average, Paeth)
    undone with the previous scanline, as the PNG specification (ISO/IEC 15948) defines.
    """
    if not data.startswith(_PNG_SIGNATURE):
        raise ValueError(f"{name} is not a PNG file")
    position = len(_PNG_SIGNATURE)
    header: tuple[int, ...] | None = None
    compressed = bytearray()
    while position + 8 <= len(data):
        length, tag = struct.unpack(">I4s", data[position : position + 8])
        body = data[position + 8 : position + 8 + length]
        position += 12 + length
        if tag == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif tag == b"IDAT":
            compressed.extend(body)
        elif tag == b"IEND":
            break
    if header is None:
        raise ValueError(f"{name} has no IHDR chunk")
    width, height, depth, color, _, _, interlace = header
    if depth != 8 or color not in _PNG_CHANNELS or interlace:
        raise ValueError(
            f"{name}: only 8-bit non-interlaced gray, RGB, gray+alpha or RGBA PNGs are supported "
            f"(bit depth {depth}, color type {color}, interlace {interlace})"
        )
    _check_pixels(height, width, name)
    channels = _PNG_CHANNELS[color]
    stride = width * channels
    # never inflate more than the image holds (a decompression bomb stops here)
    raw = zlib.decompressobj().decompress(bytes(compressed), height * (stride + 1))
    if len(raw) < height * (stride + 1):
        raise ValueError(f"{name}: image data is truncated")
    rows = np.zeros((height, stride), np.uint8)
    previous = np.zeros(stride, np.int64)
    for y in range(height):
        start = y * (stride + 1)
        kind = raw[start]
        line = np.frombuffer(raw, np.uint8, stride, start + 1).astype(np.int64)
        if kind == 0:
            out = line
        elif kind == 1:
            out = np.cumsum(line.reshape(width, channels), axis=0).reshape(-1) % 256
        elif kind == 2:
            out = (line + previous) % 256
        elif kind in (3, 4):
            out = _unfilter_sequential(line.tolist(), previous.tolist(), channels, kind)
        else:
            raise ValueError(f"{name}: scanline {y} has unknown filter {kind}")
        rows[y] = out
        previous = np.asarray(out, np.int64)
    return rows.reshape(height, width, channels)


def _unfilter_sequential(line: list[int], up: list[int], bpp: int, kind: int) -> np.ndarray:
    """Average (3) and Paeth (4) filters, which depend on the byte just decoded."""
    out = [0] * len(line)
    for x, value in enumerate(line):
        left = out[x - bpp] if x >= bpp else 0
        above = up[x]
        if kind == 3:
            out[x] = (value + (left + above) // 2) & 0xFF
            continue
        upper_left = up[x - bpp] if x >= bpp else 0
        estimate = left + above - upper_left
        pa, pb, pc = abs(estimate - left), abs(estimate - above), abs(estimate - upper_left)
        predictor = left if pa <= pb and pa <= pc else above if pb <= pc else upper_left
        out[x] = (value + predictor) & 0xFF
    return np.asarray(out, np.int64)
