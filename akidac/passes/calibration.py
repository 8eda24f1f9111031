"""Calibration: samples (user arrays, a folder of images, or seeded random), observers, fidelity.

Samples. `samples` maps each graph input (or "", a single `.npy`, to the only one) to an array
(N, ...) with the input's shape after the batch axis (cast to its dtype when no value changes;
anything else is a `UsageError`); `samples_dir` is a folder of images (PNG, PGM/PPM, NPY/NPZ;
JPEG when Pillow is installed) resized to the input's H × W and normalised; without either,
seeded standard-normal inputs are used and the quantize pass warns.
The first `num_samples` calibrate; those after them are held out to measure fidelity.

Observers (what range each value is given):
- activations, `calibration = "percentile"`: the `percentile` (99.99) of |x| over all samples;
  `"minmax"`: max |x|; `"mse"`: the clip c minimising E[(x − Q_c(x))²] for the value's bit
  width, searched over 40 candidates between 5 % and 100 % of max |x|; `"auto"` (default):
  percentile for 8-bit values, mse for 4-bit ones (15 levels cannot afford a rare outlier);
- weights, `weight_observer = "minmax"`: max |w| per output channel; `"mse"`: per channel the
  clip ratio r ∈ {0.50, 0.525, …, 1.0} × max |w| minimising Σ (w − Q_r(w))²; `"auto"`
  (default): minmax for 8-bit weights, mse for 4-bit ones.
The float IR is exported to ONNX (`akidac.ir.onnx_export`) with every value of interest, and the
pre-activation of every LUT layer, as extra outputs and run in onnxruntime one sample at a time.
"""

from __future__ import annotations

import math
import os
import struct
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

from akidac.errors import UnsupportedModelError, UsageError
from akidac.ir.graph import Graph, Value
from akidac.ir.onnx_export import graph_to_model
from akidac.ir.types import dtype_to_numpy
from akidac.limits import (
    MAX_IMAGE_PIXELS_ENV,
    MAX_TENSOR_BYTES_ENV,
    max_image_pixels,
    max_tensor_bytes,
)
from akidac.passes.fixed_point import weight_limit

IMAGE_SUFFIXES = (".png", ".pgm", ".ppm", ".pnm", ".npy", ".npz", ".jpg", ".jpeg")
ACTIVATION_OBSERVERS = ("auto", "percentile", "minmax", "mse")
WEIGHT_OBSERVERS = ("auto", "minmax", "mse")
#: clip ratios the MSE weight observer tries.
WEIGHT_CLIP_RATIOS = np.linspace(0.5, 1.0, 21)
#: at most this many elements per value enter the MSE activation search (a strided subsample).
MSE_MAX_ELEMENTS = 1 << 20


# ------------------------------------------------------------------------------------ samples
@dataclass
class SampleSet:
    """Calibration feeds (batch 1 each), held-out feeds, and where they came from."""

    feeds: list[dict[str, np.ndarray]]
    held_out: list[dict[str, np.ndarray]] = field(default_factory=list)
    random: bool = False
    source: str = "samples"


def validate_sample_options(options: Any) -> None:
    """`num_samples` ≥ 1 and `fidelity_samples` ≥ 0, both integers; else a `UsageError`."""
    for key, least in (("num_samples", 1), ("fidelity_samples", 0)):
        value = getattr(options, key, least)
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least:
            raise UsageError(f"{key} must be an integer >= {least}, not {value!r}")


def _shape_text(shape: tuple[Any, ...]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _batch(value: Value) -> int:
    """Samples one feed of the input takes: its static batch size (1 for a rank-0 input)."""
    shape = value.type.shape or ()
    return int(shape[0]) if shape and isinstance(shape[0], int) and shape[0] > 0 else 1


def _cast_samples(array: np.ndarray, dtype: np.dtype, what: str) -> np.ndarray:
    """`array` as `dtype` when no value changes (any float to float); else a `UsageError`."""
    source = array.dtype
    if source == dtype:
        return array
    if source.kind == "f" and dtype.kind == "f":
        with np.errstate(all="ignore"):
            return array.astype(dtype)
    if source.kind in "biu" and dtype.kind in "biuf":
        if np.can_cast(source, dtype, "safe"):
            return array.astype(dtype)
        with np.errstate(all="ignore"):
            converted = array.astype(dtype)
            if dtype.kind in "iu":
                info = np.iinfo(dtype)
                fits = array.size == 0 or (array.min() >= info.min and array.max() <= info.max)
            else:
                fits = True
            if fits and np.array_equal(converted.astype(source), array):
                return converted
        raise UsageError(
            f"{what} has dtype {source}, whose values do not all fit the input's {dtype}"
        )
    raise UsageError(
        f"{what} has dtype {source}; the input takes {dtype} (only integer arrays whose values "
        "fit, and float arrays into float inputs, are converted)"
    )


# ------------------------------------------------------------------------- sample files
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
    `_DECODE_ERRORS`."""
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


def _nbytes(shape: tuple[int, ...], dtype: np.dtype) -> int:
    return math.prod(shape) * dtype.itemsize


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
        except _DECODE_ERRORS as error:
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
            size = _nbytes(shape, dtype)
            if size > limit:
                label = f"array '{name}'" if name else "its array"
                raise UsageError(
                    f"{what} file '{self.path}': {label} declares shape {_shape_text(shape)} "
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
            except _DECODE_ERRORS as error:
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


def check_samples(
    graph: Graph, samples: dict[str, Any], what: str = "--samples"
) -> dict[str, np.ndarray]:
    """User arrays keyed by input name, checked and converted to the inputs' dtypes.

    The key "" (a single `.npy` file) stands for the model's only input. Each array is
    (N, ...) with the input's static shape after the batch axis, N at least the input's batch
    size, finite when it is float. Anything else is a one-line `UsageError`.
    """
    if isinstance(samples, SampleFile):
        declared: SampleFile | None = samples
    else:
        declared = None
        samples = dict(samples)
    keys = {key: key for key in samples}  # input name → key of its array
    if "" in keys:
        if len(graph.inputs) != 1:
            names = ", ".join(v.name for v in graph.inputs)
            raise UsageError(
                f"a single {what} array feeds one input, but the model has {len(graph.inputs)} "
                f"({names}); pass an .npz with one array per input name"
            )
        name = graph.inputs[0].name
        if name in keys:
            raise UsageError(f"{what} gives input '{name}' twice (by name and as a single array)")
        keys[name] = keys.pop("")
    missing = [v.name for v in graph.inputs if v.name not in keys]
    if missing:
        given = ", ".join(repr(k) for k in samples) or "none"
        raise UsageError(
            f"{what} has no array for input(s) {', '.join(missing)} (arrays given: {given})"
        )
    checked: dict[str, np.ndarray] = {}
    for value in graph.inputs:
        label = f"{what} array for input '{value.name}'"
        shape = tuple(value.type.shape or ())
        batch = _batch(value)
        expected = ("N", *shape[1:]) if shape else ("N",)
        if declared is not None:  # check the header before reading the data
            _check_sample_shape(declared.declared(keys[value.name])[0], expected, batch, label)
        try:
            array = np.asarray(samples[keys[value.name]])
        except (ValueError, TypeError) as error:
            raise UsageError(f"{label} is not a NumPy array: {error}") from None
        _check_sample_shape(array.shape, expected, batch, label)
        array = _cast_samples(array, dtype_to_numpy(value.type.dtype), label)
        if array.dtype.kind == "f":
            bad = int(array.size - np.count_nonzero(np.isfinite(array)))
            if bad:
                raise UsageError(f"{label} holds {bad} non-finite value(s) (NaN or inf)")
        checked[value.name] = array
    return checked


def _check_sample_shape(
    shape: tuple[int, ...], expected: tuple[Any, ...], batch: int, label: str
) -> None:
    """(N, ...) with the input's shape after the batch axis and N ≥ its batch; else UsageError."""
    if len(shape) != len(expected) or tuple(shape[1:]) != tuple(expected[1:]):
        raise UsageError(
            f"{label} has shape {_shape_text(shape)}; expected {_shape_text(expected)}"
        )
    if shape[0] < batch:
        least = "at least 1 sample" if batch == 1 else f"N >= the input's batch {batch}"
        raise UsageError(
            f"{label} has shape {_shape_text(shape)}; expected {_shape_text(expected)} with {least}"
        )


def _sample_count(graph: Graph, samples: dict[str, np.ndarray]) -> int:
    """Feeds the checked arrays make: the fewest whole batches over the inputs."""
    return min(len(samples[v.name]) // _batch(v) for v in graph.inputs)


def _feeds_from_arrays(
    graph: Graph, samples: dict[str, np.ndarray], start: int, stop: int
) -> list[dict[str, np.ndarray]]:
    feeds = []
    for i in range(start, stop):
        feed = {}
        for v in graph.inputs:
            batch = _batch(v)
            rows = samples[v.name][i * batch : (i + 1) * batch]
            feed[v.name] = np.ascontiguousarray(rows).reshape(tuple(v.type.shape or ()))  # type: ignore[arg-type]
        feeds.append(feed)
    return feeds


def calibration_samples(
    graph: Graph, samples: dict[str, np.ndarray] | None, count: int, seed: int
) -> tuple[list[dict[str, np.ndarray]], bool]:
    """Per-sample feeds (batch 1 each) and whether they are random."""
    if samples:
        checked = check_samples(graph, samples)
        total = min(_sample_count(graph, checked), count)
        return _feeds_from_arrays(graph, checked, 0, total), False
    rng = np.random.default_rng(seed)
    return [{v.name: random_input(v, rng) for v in graph.inputs} for _ in range(count)], True


def sample_set(graph: Graph, options: Any, held_out: int = 0) -> SampleSet:
    """Calibration and held-out feeds from `CompileOptions` (samples, samples_dir or random).

    Held-out feeds are the samples after the first `num_samples` (at most `held_out` of them);
    there are none when the user gave no more than `num_samples`. Bad options or arrays are a
    `UsageError` (see `validate_sample_options`, `check_samples`).
    """
    validate_sample_options(options)
    count = int(options.num_samples)
    samples = options.samples
    if samples is not None and len(samples) == 0:
        raise UsageError(
            "--samples holds no arrays; it needs one array (N, ...) per model input (or omit "
            "--samples to calibrate on random inputs)"
        )
    source, what = "samples", "--samples"
    if not samples and getattr(options, "samples_dir", None):
        samples = {_single_input(graph).name: _directory_samples(graph, options, count + held_out)}
        source, what = f"directory {options.samples_dir}", f"samples folder '{options.samples_dir}'"
    if samples:
        checked = check_samples(graph, samples, what)
        total = _sample_count(graph, checked)
        feeds = _feeds_from_arrays(graph, checked, 0, min(total, count))
        rest = _feeds_from_arrays(graph, checked, len(feeds), min(total, len(feeds) + held_out))
        return SampleSet(feeds, rest, False, source)
    feeds, _ = calibration_samples(graph, None, count, options.seed)
    return SampleSet(feeds, [], True, "random")


def _single_input(graph: Graph) -> Value:
    if len(graph.inputs) != 1:
        names = ", ".join(v.name for v in graph.inputs)
        raise UsageError(
            f"a samples folder feeds one input, but the model has {len(graph.inputs)} ({names}); "
            "pass an .npz with one array per input instead"
        )
    return graph.inputs[0]


def _directory_samples(graph: Graph, options: Any, limit: int) -> np.ndarray:
    value = _single_input(graph)
    shape = [int(d) for d in value.type.shape or ()]  # type: ignore[arg-type]
    if len(shape) != 4:
        raise UsageError(f"a samples folder needs a 4-D image input; '{value.name}' is {shape}")
    nhwc = value.type.layout == "NHWC" or (shape[1] not in (1, 3, 4) and shape[3] in (1, 3, 4))
    channels, size = (shape[3], (shape[1], shape[2])) if nhwc else (shape[1], (shape[2], shape[3]))
    images = load_image_samples(
        options.samples_dir,
        size,
        getattr(options, "sample_mean", None),
        getattr(options, "sample_std", None),
        channels=channels,
        limit=limit,
    )
    return images.transpose(0, 2, 3, 1) if nhwc else images


def random_input(value: Value, rng: np.random.Generator) -> np.ndarray:
    """A random tensor of the value's type: standard-normal floats; false/true for bool;
    small non-negative integers for integer inputs — below the size of the axis they index
    when the input (through Cast/Reshape/Squeeze/Unsqueeze/Flatten/Identity) is the indices
    of a Gather or GatherElements, else in [0, 10)."""
    dtype = dtype_to_numpy(value.type.dtype)
    shape = tuple(int(d) for d in value.type.shape or ())  # type: ignore[arg-type]
    if dtype.kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    if dtype.kind == "b":
        return rng.integers(0, 2, shape).astype(dtype)
    high = 10
    bound = index_bound(value)
    if bound is not None:
        high = max(1, min(high, bound))
    if dtype.kind == "u" or dtype.kind == "i":
        high = min(high, int(np.iinfo(dtype).max) + 1)
    return rng.integers(0, high, shape).astype(dtype)


#: ops that pass integer values through unchanged (so the values still index what they feed).
_PASS_THROUGH = frozenset({"Cast", "Reshape", "Squeeze", "Unsqueeze", "Flatten", "Identity"})


def index_bound(value: Value, depth: int = 8) -> int | None:
    """The smallest static size of an axis the value's elements index (Gather/GatherElements
    indices, possibly through value-preserving ops), or None."""
    bounds = []
    for op in value.users:
        if op.dialect != "onnx":
            continue
        if op.op_type in ("Gather", "GatherElements") and len(op.inputs) > 1:
            data = op.inputs[0]
            if op.inputs[1] is not value or data is None or not data.type.shape:
                continue
            axis = op.attrs.get("axis", 0)
            rank = len(data.type.shape)
            if not isinstance(axis, int) or not -rank <= axis < rank:
                continue
            size = data.type.shape[axis]
            if isinstance(size, int) and size > 0:
                bounds.append(size)
        elif op.op_type in _PASS_THROUGH and depth > 0 and op.inputs and op.inputs[0] is value:
            inner = index_bound(op.outputs[0], depth - 1)
            if inner is not None:
                bounds.append(inner)
    return min(bounds) if bounds else None


# ------------------------------------------------------------------------------------- images
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


#: what a corrupt or truncated NPY/NPZ/PNG/PGM raises while it is decoded.
_DECODE_ERRORS = (
    OSError,
    ValueError,
    EOFError,
    zipfile.BadZipFile,
    zlib.error,
    struct.error,
    KeyError,
    IndexError,
)


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
    except _DECODE_ERRORS as error:
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
    if _nbytes(shape, dtype) > max_tensor_bytes():
        raise UsageError(
            f"'{path}' declares a {_shape_text(shape)} {dtype} array, {_nbytes(shape, dtype):,} "
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
        from PIL import Image
    except ImportError:
        raise UsageError(
            f"'{path}' is a JPEG: install Pillow to read JPEG, or convert the images to PNG/NPY"
        ) from None
    try:
        with Image.open(path) as image:  # reads the header only
            _check_pixels(image.height, image.width, str(path))
            return np.asarray(image.convert("RGB"), dtype=np.float64)
    except (*_DECODE_ERRORS, SyntaxError, Image.DecompressionBombError) as error:
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
        return np.asarray(image @ np.array([[0.299], [0.587], [0.114]]))
    raise UsageError(f"'{path}' has {have} channels; the model input takes {channels}")


def resize_image(image: np.ndarray, size: tuple[int, int], mode: str = "area") -> np.ndarray:
    """Resize (H, W, C) to `size`: box-area averaging or nearest neighbour."""
    height, width = image.shape[:2]
    if (height, width) == tuple(size):
        return image.astype(np.float64)
    rows = _resize_matrix(height, size[0], mode)
    cols = _resize_matrix(width, size[1], mode)
    return np.asarray(np.einsum("ih,hwc,jw->ijc", rows, image.astype(np.float64), cols))


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


# ---------------------------------------------------------------------------------- observing
def observe(
    graph: Graph,
    values: list[Value],
    feeds: list[dict[str, np.ndarray]],
    extra_names: list[str] | None = None,
) -> dict[str, list[np.ndarray]]:
    """Run the float graph on each feed; return every requested value per sample.

    `extra_names` are tensors of the exported model that are not IR values (the
    pre-activations of LUT layers, `preactivation_name(op)`).
    """
    model = graph_to_model(graph, extra_outputs=values)
    produced = {name for node in model.graph.node for name in node.output}
    extras = [name for name in extra_names or [] if name in produced]
    for name in extras:
        model.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    session = _session(model)
    names = [v.name for v in values] + extras
    seen: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for feed in feeds:
        for name, array in zip(names, session.run(names, feed), strict=True):
            seen[name].append(array)
    return seen


def _session(model: onnx.ModelProto | bytes) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    # 4 = fatal only: at 3 onnxruntime still prints its ANSI-coloured error lines on stderr
    # (e.g. a failing node) before the exception that akidac turns into its one-line message
    options.log_severity_level = 4
    data = model if isinstance(model, bytes) else model.SerializeToString()
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def _flat(arrays: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([np.asarray(a, np.float64).reshape(-1) for a in arrays])


def _finite(value: float, name: str | None) -> float:
    """`value` when finite; else AK-QUANT naming the value whose observations were not."""
    if not math.isfinite(value):
        label = f"'{name}'" if name else "a value"
        raise UnsupportedModelError(
            f"the calibrated range of {label} is {value}: the float model computes non-finite "
            "values (inf or NaN) there on the calibration samples; check the samples and the model",
            code="AK-QUANT",
            node=name,
        )
    return value


def abs_range(arrays: list[np.ndarray], percentile: float, *, name: str | None = None) -> float:
    """The `percentile` of |x| over all samples (max when percentile ≥ 100), never 0.

    A non-finite result (inf or NaN observed) is AK-QUANT naming `name`.
    """
    with np.errstate(all="ignore"):
        flat = np.abs(_flat(arrays))
        value = float(flat.max() if percentile >= 100 else np.percentile(flat, percentile))
    _finite(value, name)
    return value if value > 0 else 1e-6


def min_max_range(
    arrays: list[np.ndarray], percentile: float, *, name: str | None = None
) -> tuple[float, float]:
    """(low, high) percentiles of x (min and max when percentile ≥ 100), always spanning 0."""
    with np.errstate(all="ignore"):
        flat = _flat(arrays)
        if percentile >= 100:
            low, high = float(flat.min()), float(flat.max())
        else:
            low, high = (float(v) for v in np.percentile(flat, [100 - percentile, percentile]))
    _finite(low, name)
    _finite(high, name)
    low, high = min(low, 0.0), max(high, 0.0)
    return (low, high) if high > low else (low, low + 1e-6)


def mse_range(
    arrays: list[np.ndarray], bits: int, signed: bool, *, name: str | None = None
) -> float:
    """The clip c minimising the mean squared error of `bits`-bit quantization of x.

    Levels: signed values use [−L, L] with L = 2^(bits−1) − 1, unsigned [0, 2^bits − 1] (their
    negatives clip to 0 and cost the same for every c). 40 candidates in (0.05, 1] × max |x|.
    """
    with np.errstate(all="ignore"):
        flat = _flat(arrays)
        if flat.size > MSE_MAX_ELEMENTS:
            flat = flat[:: -(-flat.size // MSE_MAX_ELEMENTS)]
        data = np.abs(flat) if signed else np.maximum(flat, 0.0)
        peak = _finite(float(data.max()), name)
        if peak <= 0:
            return 1e-6
        levels = 2 ** (bits - 1) - 1 if signed else 2**bits - 1
        best, best_error = peak, np.inf
        for ratio in np.linspace(0.05, 1.0, 40):
            clip = peak * ratio
            step = clip / levels
            q = np.minimum(np.floor(data / step + 0.5), levels) * step
            error = float(np.mean((q - data) ** 2))
            if error < best_error:
                best, best_error = clip, error
    return best


def activation_range(
    arrays: list[np.ndarray],
    method: str,
    percentile: float,
    bits: int,
    signed: bool,
    *,
    name: str | None = None,
) -> float:
    """The range one activation is quantized to, by the chosen observer.

    A non-finite range (inf or NaN observed) is AK-QUANT naming `name`.
    """
    if method == "auto":
        method = "mse" if bits <= 4 else "percentile"
    if method == "mse":
        return mse_range(arrays, bits, signed, name=name)
    return abs_range(arrays, 100.0 if method == "minmax" else percentile, name=name)


def mse_weight_peaks(
    weights: np.ndarray, bits: int, axis: int, *, name: str | None = None
) -> np.ndarray:
    """Per output channel, the clip r · max |w| (r in WEIGHT_CLIP_RATIOS) of least squared error.

    Non-finite weights are AK-QUANT naming `name`.
    """
    limit = weight_limit(bits)
    moved = np.moveaxis(np.asarray(weights, np.float64), axis, 0)
    flat = moved.reshape(moved.shape[0], -1)
    if not np.isfinite(flat).all():
        label = f"'{name}'" if name else "a layer"
        raise UnsupportedModelError(
            f"the weights of {label} hold non-finite values (inf or NaN)",
            code="AK-QUANT",
            node=name,
        )
    peaks = np.abs(flat).max(axis=1) if flat.size else np.zeros(flat.shape[0])
    best = peaks.copy()
    best_error = np.full(peaks.shape, np.inf)
    for ratio in WEIGHT_CLIP_RATIOS:
        clip = np.where(peaks > 0, peaks * ratio, 1.0)
        step = (clip / limit)[:, None]
        q = np.clip(np.floor(np.abs(flat) / step + 0.5), 0, limit) * np.sign(flat) * step
        error = ((flat - q) ** 2).sum(axis=1)
        better = error < best_error
        best = np.where(better, clip, best)
        best_error = np.where(better, error, best_error)
    return np.where(peaks > 0, best, 0.0)


# ----------------------------------------------------------------------------------- fidelity
def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two arrays, flattened (1.0 when both are zero)."""
    x, y = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    with np.errstate(all="ignore"):
        norm = float(np.linalg.norm(x) * np.linalg.norm(y))
        if norm == 0:
            return 1.0 if not x.any() and not y.any() else 0.0
        return float(x @ y / norm)


class OutputRunner(Protocol):
    """What `measure_fidelity` runs the hybrid model with: `HybridSession` (or any session with
    onnxruntime's `run(output_names, feeds)`)."""

    def run(self, output_names: list[str], input_feed: dict[str, np.ndarray]) -> list[Any]: ...


def measure_fidelity(
    float_model: onnx.ModelProto | bytes,
    hybrid: OutputRunner,
    feeds: list[dict[str, np.ndarray]],
) -> dict[str, dict[str, float]]:
    """Per graph output: cosine similarity and max |error| of the hybrid model against the float
    model over all `feeds` (each output's values of every feed concatenated).

    Returns {output name: {"cosine": c, "max_abs_error": e, "samples": n}}. The float model runs
    in onnxruntime; `hybrid` is a `HybridSession` of the compiled model (passes do not import the
    runtime, so the caller opens it: `HybridSession(result.model)`).
    """
    float_session = _session(float_model)
    names = [o.name for o in float_session.get_outputs()]
    expected: dict[str, list[np.ndarray]] = {name: [] for name in names}
    actual: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for feed in feeds:
        for name, array in zip(names, float_session.run(names, feed), strict=True):
            expected[name].append(np.asarray(array, np.float64).ravel())
        for name, array in zip(names, hybrid.run(names, feed), strict=True):
            actual[name].append(np.asarray(array, np.float64).ravel())
    result: dict[str, dict[str, float]] = {}
    for name in names:
        if not feeds:
            continue
        want, got = np.concatenate(expected[name]), np.concatenate(actual[name])
        with np.errstate(all="ignore"):
            error = float(np.abs(got - want).max()) if want.size else 0.0
        result[name] = {
            "cosine": round(cosine(got, want), 6),
            "max_abs_error": error,
            "samples": len(feeds),
        }
    return result


def fidelity_feeds(
    graph: Graph, options: Any, count: int = 8
) -> tuple[list[dict[str, np.ndarray]], str]:
    """Held-out feeds to measure fidelity on, and a note saying what they are.

    The samples after the first `num_samples` when the user gave more; otherwise the last
    calibration samples (in-sample: the figure then measures quantization error only); and for a
    random calibration, fresh random inputs from another seed.
    """
    sets = sample_set(graph, options, held_out=count)
    if sets.held_out:
        return sets.held_out, f"{len(sets.held_out)} held-out samples ({sets.source})"
    if sets.random:
        rng = np.random.default_rng(int(options.seed) + 1)
        feeds = [{v.name: random_input(v, rng) for v in graph.inputs} for _ in range(count)]
        return feeds, (
            f"{count} fresh random standard-normal inputs (calibration was random too); "
            "pass representative samples for a meaningful figure"
        )
    feeds = sets.feeds[-count:]
    return feeds, (
        f"{len(feeds)} calibration samples ({sets.source}): no held-out samples; give more than "
        "num_samples samples to measure on unseen data"
    )
