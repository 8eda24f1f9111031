"""Calibration observers: the range each activation and weight is given for quantization.

The feeds come from `PassContext.calibration`, which the compile driver fills through
`akidac.frontend.samples` (user arrays, a folder of images, or seeded random); the fidelity of a
compiled model is measured by `akidac.runtime.compare`.

Observers (what range each value is given):
- activations, `calibration = "percentile"`: the `percentile` (99.99) of |x| over all samples;
  `"minmax"`: max |x|; `"mse"`: the clip c minimising E[(x − Q_c(x))²] for the value's bit
  width, searched over 40 candidates between 5 % and 100 % of max |x|; `"auto"` (default):
  percentile for 8-bit values, mse for 4-bit ones (15 levels cannot afford a rare outlier);
- weights, `weight_observer = "minmax"`: max |w| per output channel; `"mse"`: per channel the
  clip ratio r ∈ {0.50, 0.525, …, 1.0} × max |w| minimising Σ (w − Q_r(w))²; `"auto"`
  (default): minmax for 8-bit weights, mse for 4-bit ones.
What they read is gathered by `akidac.passes.observation`: the float IR runs in onnxruntime one
sample at a time and each sample is folded into streaming statistics (tails for the percentiles,
a strided subsample for MSE) that give the same figures as the whole data would.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from akidac.errors import UnsupportedModelError
from akidac.passes.fixed_point import weight_limit
from akidac.passes.observation import ValueStats

ACTIVATION_OBSERVERS = ("auto", "percentile", "minmax", "mse")
WEIGHT_OBSERVERS = ("auto", "minmax", "mse")
#: clip ratios the MSE weight observer tries.
WEIGHT_CLIP_RATIOS = np.linspace(0.5, 1.0, 21)

#: what an observer reads: the streaming statistics `observe` gathers, or arrays held at once.
Observed = ValueStats | Sequence[np.ndarray]


def _stats(observed: Observed) -> ValueStats:
    return observed if isinstance(observed, ValueStats) else ValueStats.of(observed)


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


def abs_range(
    observed: Observed, percentile: float, *, name: str | None = None, positive: bool = False
) -> float:
    """The `percentile` of |x| over all samples (max when percentile ≥ 100), never 0; of
    max(x, 0) with `positive` (an unsigned value, whose negatives clip to 0).

    A non-finite result (inf or NaN observed) is AK-QUANT naming `name`.
    """
    value = _stats(observed).abs_percentile(percentile, positive=positive)
    _finite(value, name)
    return value if value > 0 else 1e-6


def min_max_range(
    observed: Observed, percentile: float, *, name: str | None = None
) -> tuple[float, float]:
    """(low, high) percentiles of x (min and max when percentile ≥ 100), always spanning 0."""
    low, high = _stats(observed).low_high(percentile)
    _finite(low, name)
    _finite(high, name)
    low, high = min(low, 0.0), max(high, 0.0)
    return (low, high) if high > low else (low, low + 1e-6)


def mse_range(observed: Observed, bits: int, signed: bool, *, name: str | None = None) -> float:
    """The clip c minimising the mean squared error of `bits`-bit quantization of x.

    Levels: signed values use [−L, L] with L = 2^(bits−1) − 1, unsigned [0, 2^bits − 1] (their
    negatives clip to 0 and cost the same for every c). 40 candidates in (0.05, 1] × max |x|,
    over a strided subsample of at most `MSE_MAX_ELEMENTS` elements.
    """
    stats = _stats(observed)
    if stats.has_nan:
        _finite(float("nan"), name)
    with np.errstate(all="ignore"):
        flat = stats.mse_data()
        data = np.abs(flat) if signed else np.maximum(flat, 0.0)
        peak = _finite(float(data.max()) if data.size else 0.0, name)
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
    observed: Observed,
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
        return mse_range(observed, bits, signed, name=name)
    percentile = 100.0 if method == "minmax" else percentile
    return abs_range(observed, percentile, name=name, positive=not signed)


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
