"""Image folders as calibration samples: decoding, channel conversion, resizing, normalising.

A folder of images (NPY/NPZ arrays; PNG, PGM/PPM and JPEG through Pillow, the optional `images`
extra) becomes one float32 (N, C, H, W) array for a single image input. Every image's declared
size is checked against the pixel and memory limits before it is decoded (a decompression bomb
stops at its header).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from akidac.errors import UsageError
from akidac.frontend.sample_files import DECODE_ERRORS, array_headers, nbytes, shape_text
from akidac.limits import MAX_IMAGE_PIXELS_ENV, max_image_pixels, max_tensor_bytes

IMAGE_SUFFIXES = (".png", ".pgm", ".ppm", ".pnm", ".npy", ".npz", ".jpg", ".jpeg")
#: suffixes read with NumPy; every other image needs Pillow (the `images` extra).
_ARRAY_SUFFIXES = (".npy", ".npz")
#: Pillow image modes read as they are, with the largest value of their pixels.
_PILLOW_MODE_MAX = {
    "L": 255,
    "LA": 255,
    "RGB": 255,
    "RGBA": 255,
    "I": 65535,
    "I;16": 65535,
    "I;16B": 65535,
}


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
    pictures = [path for path in files if path.suffix.lower() not in _ARRAY_SUFFIXES]
    if pictures:
        _pillow(f"samples folder '{folder}' holds images ('{pictures[0].name}'): reading them")
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

    NPY/NPZ arrays are read with NumPy; every other image with Pillow (`_decode_with_pillow`). A
    file that cannot be read or decoded is a `UsageError` naming it.
    """
    try:
        if path.suffix.lower() in _ARRAY_SUFFIXES:
            array = _load_array(path)
        else:
            return _decode_with_pillow(path)
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


def _pillow(what: str) -> Any:
    """Pillow's `Image` module, or a `UsageError` saying how to install it."""
    try:
        from PIL import Image
    except ImportError:
        raise UsageError(
            f"{what} needs Pillow, which is not installed: pip install 'akidac[images]' (or save "
            "the images as .npy arrays, which need nothing more)"
        ) from None
    return Image


def _decode_with_pillow(path: Path) -> tuple[np.ndarray, int]:
    """(pixels, their integer maximum) of a PNG, PGM/PPM or JPEG, decoded by Pillow.

    Gray, gray+alpha, RGB and RGBA keep their channels; 16-bit gray reads as 0…65535 (netpbm
    files with another maximum are scaled by Pillow to 255 or 65535); any other mode (palette,
    1-bit, CMYK, …) is converted to RGB, or RGBA when it carries transparency. The size in the
    header is checked against `max_image_pixels()` before any pixel is decoded: akidac's limit
    stands in for Pillow's own `Image.MAX_IMAGE_PIXELS` during the call, so the refusal names
    the file and the variable that raises the limit.
    """
    Image = _pillow(f"reading image '{path}'")
    pillow_limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        with Image.open(path) as image:  # reads the header only
            _check_pixels(image.height, image.width, str(path))
            if image.mode == "1":
                image = image.convert("L")
            elif image.mode not in _PILLOW_MODE_MAX:
                image = image.convert("RGBA" if image.has_transparency_data else "RGB")
            return np.asarray(image, dtype=np.float64), _PILLOW_MODE_MAX[image.mode]
    except (*DECODE_ERRORS, SyntaxError, Image.UnidentifiedImageError) as error:
        reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
        raise UsageError(f"cannot read image '{path}': {reason}") from None
    finally:
        Image.MAX_IMAGE_PIXELS = pillow_limit


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
