"""Observing the float model on the calibration samples, in memory bounded by one sample.

`quantize` needs, for every value it gives a scale, a few statistics over all calibration
samples: max |x|, min and max, a high percentile of |x| (99.99 by default) or of x at both ends,
and, for the MSE observer, a strided subsample of at most `MSE_MAX_ELEMENTS` elements. Keeping
every sample of every watched value (what akidac did first) costs about five times the largest
tensor per sample: 10.9 GB for a 3→16 Conv at 1000×1000 on 32 samples. So each sample is folded
into a `ValueStats` as it arrives and then dropped:

- a percentile p of N values (numpy's default "linear" method) reads the sorted values at ranks
  ⌊(N−1)·p/100⌋ and the next one, so only the top N − ⌊(N−1)·p/100⌋ values (0.01 % of them at
  99.99) are kept, in a buffer that `np.partition` trims after every sample; the lower
  percentile of `min_max_range` keeps the bottom tail the same way;
- the MSE subsample takes the same global positions of the concatenated samples that a stride
  over the whole concatenation would (the total is known from the first sample: every sample of
  a value has one shape), and only when an MSE observer can be asked for;
- a NaN anywhere makes every statistic NaN, as `np.percentile` and `np.max` do.
The results equal, bit for bit, those of the same observers over all samples held at once
(tests/passes/test_observation.py checks it against numpy).

The fidelity guard needs whole arrays, but only of the first few samples and only at region
borders (and, for a failing region, at its layers): `Observation.replay` computes them again,
one sample at a time, instead of keeping them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper

from akidac.float_session import float_session
from akidac.ir.graph import Graph, Value
from akidac.ir.onnx_export import graph_to_model

#: at most this many elements per value enter the MSE activation search (a strided subsample).
MSE_MAX_ELEMENTS = 1 << 20


def _fraction(percentile: float) -> np.float64:
    """p / 100 as `np.percentile` computes it (a true division in float64)."""
    return np.float64(np.true_divide(np.float64(percentile), 100))


def _virtual_rank(count: int, fraction: np.float64) -> np.float64:
    """numpy's 'linear' virtual index of a quantile: (n − 1) · q."""
    return np.float64((count - 1) * fraction)


def _top_needed(count: int, percentile: float) -> int:
    """How many of the largest of `count` values the `percentile` reads (ranks ⌊v⌋ and ⌊v⌋+1)."""
    if count == 0:
        return 0
    if percentile >= 100:
        return 1
    rank = _virtual_rank(count, _fraction(percentile))
    if rank >= count - 1:
        return 1
    return int(count - max(math.floor(rank), 0))


def _bottom_needed(count: int, percentile: float) -> int:
    """How many of the smallest of `count` values the 100 − `percentile` percentile reads."""
    if percentile >= 100:
        return min(count, 1)
    rank = _virtual_rank(count, _fraction(100 - percentile))
    if rank >= count - 1:
        return count
    return min(count, max(math.floor(rank), 0) + 2)


def _keep_largest(kept: np.ndarray, new: np.ndarray, count: int) -> np.ndarray:
    """The `count` largest of `kept` ∪ `new` (unordered), by `np.partition` (linear time)."""
    if count <= 0:
        return kept[:0]
    if new.size > count:
        new = np.partition(new, new.size - count)[new.size - count :]
    merged = np.concatenate([kept, new]) if kept.size else np.array(new, copy=True)
    if merged.size > count:
        merged = np.partition(merged, merged.size - count)[merged.size - count :]
    return merged


def _lerp(a: np.float64, b: np.float64, t: np.float64) -> float:
    """numpy's `_lerp`: a + (b − a)·t, computed from b when t ≥ 0.5 (so t = 1 gives b exactly);
    an infinite a or b gives what numpy gives (NaN where inf − inf appears)."""
    with np.errstate(invalid="ignore"):
        diff = b - a
        return float(b - diff * (1 - t)) if t >= 0.5 else float(a + diff * t)


def percentile_of_sorted_top(top: np.ndarray, count: int, percentile: float) -> float:
    """The `percentile` of `count` values of which `top` holds the largest, sorted ascending,
    computed as `np.percentile(values, percentile)` would (float64, 'linear')."""
    if count == 0:
        return float("nan")
    if percentile >= 100:
        return float(np.float64(top[-1]))
    rank = _virtual_rank(count, _fraction(percentile))
    if rank >= count - 1:
        # numpy interpolates the last value with itself, at weight rank + 1 (inf gives NaN)
        last = np.float64(top[-1])
        return _lerp(last, last, rank + 1)
    low = max(math.floor(rank), 0)
    offset = count - top.size
    if low < offset:
        raise ValueError(
            f"the {percentile} percentile of {count} values needs rank {low}, "
            f"but only the largest {top.size} were kept"
        )
    a, b = np.float64(top[low - offset]), np.float64(top[low + 1 - offset])
    return _lerp(a, b, np.float64(rank - np.float64(low)))


def percentile_of_sorted_bottom(bottom: np.ndarray, count: int, percentile: float) -> float:
    """The `percentile` of `count` values of which `bottom` holds the smallest, sorted
    ascending (`np.percentile` arithmetic)."""
    if count == 0:
        return float("nan")
    rank = _virtual_rank(count, _fraction(percentile))
    if rank >= count - 1:
        if bottom.size < count:
            raise ValueError(f"the {percentile} percentile reads the largest value")
        last = np.float64(bottom[-1])
        return _lerp(last, last, rank + 1)
    low = max(math.floor(rank), 0)
    if low + 1 >= bottom.size:
        raise ValueError(
            f"the {percentile} percentile of {count} values needs rank {low + 1}, "
            f"but only the smallest {bottom.size} were kept"
        )
    a, b = np.float64(bottom[low]), np.float64(bottom[low + 1])
    return _lerp(a, b, np.float64(rank - np.float64(low)))


@dataclass
class ValueStats:
    """What the activation observers read of one value over all calibration samples.

    Built one sample at a time (`add`), for `samples` samples of one size each; `percentile` is
    the one percentile (besides max and min) the tails are kept for.
    """

    percentile: float
    samples: int
    keep_subsample: bool
    #: elements seen so far, and elements per sample (from the first sample).
    count: int = 0
    per_sample: int = 0
    has_nan: bool = False
    top_abs: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    top: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    bottom: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    subsample: list[np.ndarray] = field(default_factory=list)
    #: max |x| of every channel (the last axis) over all samples (float64; NaN where a NaN was
    #: seen), and how many values of each channel that is (samples × positions), for the
    #: per-channel activation scales (`channel_scales.activation_channel_peaks`).
    channel_peaks: np.ndarray | None = None
    channel_rows: int = 0
    _sorted: bool = False

    @classmethod
    def of(cls, arrays: Sequence[np.ndarray], *, keep_subsample: bool = True) -> ValueStats:
        """Statistics of arrays held at once (any percentile can then be read): for tests and
        for callers that already hold the data."""
        flat = [np.asarray(a).reshape(-1) for a in arrays]
        stats = cls(0.0, 1, keep_subsample)
        for array in arrays:
            stats._add_channels(np.asarray(array))
        stats._add_values(np.concatenate(flat) if flat else np.zeros(0, np.float32))
        return stats

    @property
    def total(self) -> int:
        """Elements over all samples (known from the first one)."""
        return self.per_sample * self.samples

    def add(self, array: np.ndarray) -> None:
        """Fold one sample in."""
        self._add_channels(np.asarray(array))
        self._add_values(np.asarray(array).reshape(-1))

    def _add_channels(self, array: np.ndarray) -> None:
        """Fold one sample into the per-channel peaks (channels on the last axis)."""
        if array.ndim == 0 or array.size == 0:
            return
        with np.errstate(all="ignore"):
            peaks = np.abs(array).reshape(-1, array.shape[-1]).max(axis=0).astype(np.float64)
        if self.channel_peaks is None or self.channel_peaks.shape != peaks.shape:
            # a sample with another channel count starts over (values of one tensor do not)
            self.channel_peaks, self.channel_rows = peaks, 0
        else:
            self.channel_peaks = np.maximum(self.channel_peaks, peaks)  # NaN stays NaN
        self.channel_rows += array.size // array.shape[-1]

    def _add_values(self, flat: np.ndarray) -> None:
        """Fold one sample's values (flattened) into the tails, min/max and subsample."""
        if flat.dtype != np.float32 and flat.dtype != np.float64:
            flat = flat.astype(np.float64)
        if self.count == 0:
            self.per_sample = flat.size
        elif flat.size != self.per_sample:
            raise ValueError(
                f"calibration samples of one value differ in size ({flat.size} and "
                f"{self.per_sample} elements)"
            )
        start, self.count = self.count, self.count + flat.size
        self._sorted = False
        if self.keep_subsample:
            stride = -(-self.total // MSE_MAX_ELEMENTS) if self.total > MSE_MAX_ELEMENTS else 1
            self.subsample.append(np.array(flat[(-start) % stride :: stride], copy=True))
        if self.has_nan:
            return
        with np.errstate(all="ignore"):
            if np.isnan(flat).any():
                self.has_nan = True
                return
            high = _top_needed(self.total, self.percentile)
            low = _bottom_needed(self.total, self.percentile)
            self.top_abs = _keep_largest(self.top_abs, np.abs(flat), high)
            self.top = _keep_largest(self.top, flat, high)
            self.bottom = -_keep_largest(-self.bottom, -flat, low)

    def _sort(self) -> None:
        if not self._sorted:
            self.top_abs, self.top, self.bottom = (
                np.sort(self.top_abs),
                np.sort(self.top),
                np.sort(self.bottom),
            )
            self._sorted = True

    def abs_percentile(self, percentile: float, *, positive: bool = False) -> float:
        """The `percentile` of |x| over all samples, or of max(x, 0) with `positive`."""
        if self.has_nan or self.count == 0:
            return float("nan")
        self._sort()
        if positive:
            positives = np.abs(np.maximum(self.top, 0))
            return percentile_of_sorted_top(positives, self.count, percentile)
        return percentile_of_sorted_top(self.top_abs, self.count, percentile)

    def low_high(self, percentile: float) -> tuple[float, float]:
        """(the 100 − p percentile, the p percentile) of x; (min, max) when p ≥ 100."""
        if self.has_nan or self.count == 0:
            return float("nan"), float("nan")
        self._sort()
        if percentile >= 100:
            return float(np.float64(self.bottom[0])), float(np.float64(self.top[-1]))
        low = percentile_of_sorted_bottom(self.bottom, self.count, 100 - percentile)
        return low, percentile_of_sorted_top(self.top, self.count, percentile)

    def mse_data(self) -> np.ndarray:
        """The strided subsample of x (float64) the MSE observer searches over."""
        if not self.keep_subsample:
            raise ValueError("this value was observed without the MSE subsample")
        if not self.subsample:
            return np.zeros(0)
        return np.concatenate([np.asarray(a, np.float64) for a in self.subsample])


class Observation:
    """The float model's values on the calibration samples: a `ValueStats` per watched value,
    and `replay`, which runs the float model again on the first samples for the whole arrays
    the fidelity guard compares with (one sample at a time)."""

    def __init__(
        self,
        session: ort.InferenceSession,
        feeds: list[dict[str, np.ndarray]],
        stats: dict[str, ValueStats],
    ) -> None:
        self._session = session
        self._feeds = feeds
        self.stats = stats

    def __contains__(self, name: str) -> bool:
        return name in self.stats

    def __getitem__(self, name: str) -> ValueStats:
        return self.stats[name]

    @property
    def samples(self) -> int:
        return len(self._feeds)

    def replay(self, names: Sequence[str], count: int) -> Iterator[dict[str, np.ndarray]]:
        """The values `names` (watched ones) on each of the first `count` samples, in order."""
        names = list(dict.fromkeys(names))
        for feed in self._feeds[:count]:
            yield dict(zip(names, self._session.run(names, feed), strict=True))


def observe(
    graph: Graph,
    values: list[Value],
    feeds: list[dict[str, np.ndarray]],
    extra_names: list[str] | None = None,
    *,
    percentile: float = 99.99,
    keep_subsample: bool = False,
) -> Observation:
    """Run the float graph on each feed and fold every requested value into its `ValueStats`.

    `extra_names` are tensors of the exported model that are not IR values (the
    pre-activations of LUT layers, `preactivation_name(op)`); `keep_subsample` keeps what the
    MSE observer reads (bounded by `MSE_MAX_ELEMENTS` per value).
    """
    model = graph_to_model(graph, extra_outputs=values)
    produced = {name for node in model.graph.node for name in node.output}
    extras = [name for name in extra_names or [] if name in produced]
    for name in extras:
        model.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    session = float_session(model)
    names = list(dict.fromkeys([v.name for v in values] + extras))
    stats = {name: ValueStats(percentile, len(feeds), keep_subsample) for name in names}
    for feed in feeds:
        for name, array in zip(names, session.run(names, feed), strict=True):
            stats[name].add(array)
    return Observation(session, feeds, stats)
