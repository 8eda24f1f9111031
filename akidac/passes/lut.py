"""LUT activations: the 2048-entry integer table of a float function and its index rescale.

The engine turns the accumulator (after bias and max pooling) into an 11-bit index
`i = sat11(shift(sat32(acc · activation_scales[f]), activation_shift[f]))` and reads
`lut_values[i + 1024]`. With one accumulator unit worth `a[f]` (real) and an index step worth
`s_idx` (real), `activation_scales · 2^activation_shift ≈ a[f] / s_idx`, and entry `i` holds
`round(f(i · s_idx) / s_lut)`. `s_idx = R / 1023` spreads the table over the calibrated
pre-activation range [−R, R] (beyond it the index saturates, as the output would); `s_lut` makes
the largest entry `LUT_VALUE_MAX` (14-bit values, as BrainChip's converter stores them), so
`lut · output_scales` never reaches 32 bits. The table's units then go through
output_scales/output_shift like an accumulator: ratio `s_lut / s_out` (÷ H·W after GAP).
The float functions are exactly those `akidac.ir.onnx_export.emit_lut_function` lowers to ONNX.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from akidac.passes.fixed_point import encode_scale, min_safe_shift, round_half_away
from akidac.target.limits import LUT_ENTRIES, LUT_INDEX_MAX, LUT_OFFSET

#: largest index magnitude: the index is clipped to [−1024, 1023].
INDEX_LIMIT = LUT_INDEX_MAX
#: largest |lut value|: 14-bit signed values.
LUT_VALUE_MAX = 8191

_ERF = np.vectorize(math.erf, otypes=[np.float64])


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


LUT_FUNCTIONS: dict[str, Callable[[np.ndarray, float | None], np.ndarray]] = {
    "gelu": lambda x, _: 0.5 * x * (1.0 + _ERF(x / math.sqrt(2.0))),
    "swish": lambda x, _: x * _sigmoid(x),
    "hardswish": lambda x, _: x * np.clip(x / 6.0 + 0.5, 0.0, 1.0),
    "leaky_relu": lambda x, a: np.where(x >= 0, x, x * (0.01 if a is None else a)),
    "sigmoid": lambda x, _: _sigmoid(x),
    "tanh": lambda x, _: np.tanh(x),
    "elu": lambda x, a: np.where(x > 0, x, (1.0 if a is None else a) * np.expm1(np.minimum(x, 0))),
    "identity": lambda x, _: x,
}


def lut_function(name: str, alpha: float | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """The float function of a LUT activation (`KeyError` for an unknown name)."""
    function = LUT_FUNCTIONS[name]
    return lambda x: function(np.asarray(x, dtype=np.float64), alpha)


def index_scale(pre_activation_range: float) -> float:
    """Real value of one index step: the calibrated range [−R, R] fills the table."""
    return max(float(pre_activation_range), 1e-12) / INDEX_LIMIT


def index_points(step: float) -> np.ndarray:
    """The real inputs i · step of the 2048 entries, i = −1024 … 1023."""
    return np.arange(-LUT_OFFSET, LUT_ENTRIES - LUT_OFFSET, dtype=np.float64) * step


def build_table(
    name: str, alpha: float | None, step: float, scale: float = 1.0, offset: float = 0.0
) -> tuple[np.ndarray, float]:
    """(lut_values int32[2048], s_lut): entry i is round((scale · f(i · step) + offset) / s_lut)."""
    values = scale * lut_function(name, alpha)(index_points(step)) + offset
    peak = float(np.abs(values).max())
    value_scale = peak / LUT_VALUE_MAX if peak > 0 else 1.0
    table = np.clip(round_half_away(values / value_scale), -LUT_VALUE_MAX, LUT_VALUE_MAX)
    return table.astype(np.int32), value_scale


def encode_index_scale(acc_scale: np.ndarray, step: float) -> tuple[np.ndarray, np.ndarray]:
    """(activation_scales uint8, activation_shift int8) ≈ acc_scale[f] / step per channel."""
    return encode_scale(np.asarray(acc_scale, np.float64) / step, min_safe_shift(INDEX_LIMIT))
