"""Samples for a graph: the feeds that calibrate it and measure its fidelity.

`samples` maps each graph input (or "", a single `.npy`, to the only one) to an array (N, ...)
with the input's shape after the batch axis (cast to its dtype when no value changes; anything
else is a `UsageError`); `samples_dir` is a folder of images (`akidac.frontend.images`); without
either, seeded standard-normal inputs are used and the quantize pass warns. The first
`num_samples` calibrate; those after them are held out to measure fidelity.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from akidac.errors import UsageError
from akidac.frontend.images import load_image_samples
from akidac.frontend.sample_files import SampleFile, shape_text
from akidac.ir.graph import Graph, Value
from akidac.ir.types import dtype_to_numpy


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
        raise UsageError(f"{label} has shape {shape_text(shape)}; expected {shape_text(expected)}")
    if shape[0] < batch:
        least = "at least 1 sample" if batch == 1 else f"N >= the input's batch {batch}"
        raise UsageError(
            f"{label} has shape {shape_text(shape)}; expected {shape_text(expected)} with {least}"
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
