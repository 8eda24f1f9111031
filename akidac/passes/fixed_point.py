"""Akida's fixed-point forms of real numbers, with the math written down.

Notation: `round(v)` is round half away from zero; `shift(v, s)` is the engine's shift (a left
shift for s > 0, a right shift rounding half up for s < 0); every layer computes in integers.
- A scale r > 0 (output or LUT-index rescale) is `M · 2^s` with an unsigned 8-bit `M` and a
  signed shift: s = ⌊log2 r⌋ − 7, M = round(r / 2^s) ∈ [128, 255] (s + 1 when M rounds to 256).
  The engine computes `sat32(v · M)` before shifting, so s is kept ≥ `min_safe_shift(limit)`
  = ⌈log2(limit + 1)⌉ − 31, where `limit` is the largest result that does not saturate (127 for
  an 8-bit output: s ≥ −24; 1023 for a LUT index: s ≥ −21). Then `|v · M| ≥ 2^31` implies
  `|v · M · 2^s| ≥ limit + 1`, a value that saturates anyway, so the 32-bit clip never changes a
  result. Below that bound M loses leading bits; it never rounds a positive ratio to 0 silently
  (callers check `scale_is_exact`). The engine crashes on s = −32: s ≥ −31 always.
- A bias b (accumulator units) is `bias << bias_shift` with an int8 `bias`:
  bias_shift = max(0, ⌈log2(|b| / 127)⌉), bias = round(b / 2^bias_shift).
- A ReLU ceiling m (accumulator units) is `max_value << max_value_shift`, uint8 `max_value`.
- Weights are symmetric per output channel: q = clip(round(w / s_w), −L, L), L = 2^(bits−1) − 1,
  s_w = peak / L where `peak` is max |w| of the channel (or an observer's clip value).
- Add rescales nothing: `(a << a_shift) + (b << b_shift)` then `shift(·, out_shift)`, so its input
  scales differ by powers of two: s_a = u · 2^a_shift, s_b = u · 2^b_shift and the output scale is
  u · 2^(−out_shift). The hardware requires −4 ≤ out_shift + max(a_shift, b_shift) ≤ 3.
Every encoder is exact to half a unit of its last place (tests/passes/test_fixed_point.py).
"""

from __future__ import annotations

import math

import numpy as np

from akidac.target import limits as lim

#: output_shift ≥ −24 keeps `sat32(acc · M)` harmless for 8-bit outputs (see module docstring).
MIN_OUTPUT_SHIFT = -24
#: the engine crashes on −32; shifts are signed 8-bit in [−31, 31].
MIN_SHIFT = lim.OUTPUT_SHIFT_MIN
MAX_SHIFT = lim.OUTPUT_SHIFT_MAX
#: post-operation width P of the engine (the 32-bit clips after bias, LUT scale and output scale).
POST_OP_BITS = lim.POST_OP_BITS
#: the Add rule −4 ≤ out_shift + max(a_shift, b_shift) ≤ 3.
ADD_SHIFT_LOW = lim.ADD_SHIFT_SUM_MIN
ADD_SHIFT_HIGH = lim.ADD_SHIFT_SUM_MAX


def min_safe_shift(limit: int, post_bits: int = POST_OP_BITS) -> int:
    """Smallest shift s for which `sat_P(v · M)` clips only values that saturate anyway."""
    return max(MIN_SHIFT, math.ceil(math.log2(limit + 1)) - (post_bits - 1))


def round_half_away(values: np.ndarray) -> np.ndarray:
    """Round half away from zero (NumPy's `round` is half-to-even)."""
    values = np.asarray(values, dtype=np.float64)
    return np.asarray(np.sign(values) * np.floor(np.abs(values) + 0.5))


def encode_scale(
    ratio: np.ndarray, min_shift: int = MIN_OUTPUT_SHIFT
) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (scales uint8, shift int8) with M · 2^s ≈ ratio and s ≥ `min_shift`."""
    ratio = np.asarray(ratio, dtype=np.float64)
    safe = np.where(ratio > 0, ratio, 1.0)
    low = max(min_shift, MIN_SHIFT)
    shift = np.floor(np.log2(safe)).astype(np.int64) - 7
    shift = np.clip(shift, low, MAX_SHIFT)
    mantissa = np.floor(safe / np.exp2(shift) + 0.5).astype(np.int64)
    overflow = (mantissa > 255) & (shift < MAX_SHIFT)
    shift = np.where(overflow, shift + 1, shift)
    mantissa = np.floor(safe / np.exp2(shift) + 0.5).astype(np.int64)
    mantissa = np.clip(np.where(ratio > 0, mantissa, 0), 0, 255)
    return mantissa.astype(np.uint8), shift.astype(np.int8)


def decode_scale(scales: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """The real value M · 2^s of an encoded scale."""
    return scales.astype(np.float64) * np.exp2(shifts.astype(np.float64))


def scale_is_exact(ratio: np.ndarray, scales: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Per channel: the encoding is within half an LSB of M and M ≥ 16 (≥ 4 significant bits)."""
    ratio = np.asarray(ratio, dtype=np.float64)
    error = np.abs(decode_scale(scales, shifts) - ratio)
    half_lsb = np.exp2(shifts.astype(np.float64)) / 2
    return np.asarray((error <= half_lsb * (1 + 1e-9)) & ((scales >= 16) | (ratio <= 0)))


def encode_mantissa_shift(
    value: np.ndarray, mantissa_max: int, signed: bool
) -> tuple[np.ndarray, np.ndarray]:
    """(mantissa, left shift ≥ 0) with mantissa << shift ≈ value, |mantissa| ≤ mantissa_max."""
    value = np.asarray(value, dtype=np.float64)
    magnitude = np.abs(value)
    shift = np.ceil(np.log2(np.maximum(magnitude, 1e-300) / mantissa_max))
    shift = np.clip(shift, 0, MAX_SHIFT).astype(np.int64)
    mantissa = np.sign(value) * np.floor(magnitude / np.exp2(shift) + 0.5)
    low = -mantissa_max - 1 if signed else 0
    mantissa = np.clip(mantissa, low, mantissa_max).astype(np.int64)
    return mantissa, shift


def encode_bias(bias_acc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(bias int8, bias_shift uint8) for a bias in accumulator units."""
    mantissa, shift = encode_mantissa_shift(bias_acc, 127, signed=True)
    return mantissa.astype(np.int8), shift.astype(np.uint8)


def encode_relu_max(ceiling_acc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(max_value uint8, max_value_shift uint8) for a ReLU ceiling in accumulator units."""
    mantissa, shift = encode_mantissa_shift(ceiling_acc, 255, signed=False)
    return mantissa.astype(np.uint8), shift.astype(np.uint8)


def weight_limit(bits: int) -> int:
    """Largest weight magnitude of a symmetric `bits`-bit weight: 127 (8 bits), 7 (4 bits)."""
    return int(2 ** (bits - 1) - 1)


def channel_peaks(weights: np.ndarray, axis: int) -> np.ndarray:
    """max |w| of every output channel (`axis` is the output-channel axis)."""
    moved = np.moveaxis(np.asarray(weights, dtype=np.float64), axis, 0)
    return np.asarray(np.abs(moved.reshape(moved.shape[0], -1)).max(axis=1))


def quantize_with_scale(weights: np.ndarray, scale: np.ndarray, bits: int, axis: int) -> np.ndarray:
    """int8 weights q = clip(round(w / s_w[f]), −L, L) for given per-channel scales."""
    limit = weight_limit(bits)
    moved = np.moveaxis(np.asarray(weights, dtype=np.float64), axis, 0)
    q = np.clip(
        round_half_away(moved / scale.reshape(-1, *([1] * (moved.ndim - 1)))), -limit, limit
    )
    return np.asarray(np.moveaxis(q, 0, axis).astype(np.int8))


def quantize_weights(
    weights: np.ndarray, bits: int, axis: int, peak: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-channel weights: (int8 array, per-channel scale along `axis`).

    `peak` (per channel) replaces max |w| as the clip value, e.g. from the MSE observer.
    """
    peak = channel_peaks(weights, axis) if peak is None else np.asarray(peak, np.float64)
    scale = np.where(peak > 0, peak / weight_limit(bits), 1.0)
    return quantize_with_scale(weights, scale, bits, axis), scale


def add_shifts(k_a: int, k_b: int, k_out: int) -> tuple[int, int, int]:
    """(a_shift, b_shift, out_shift) of an Add whose scales are S · 2^k_a, S · 2^k_b, S · 2^k_out.

    The common unit is u = S · 2^min(k_a, k_b): a_shift = k_a − min, b_shift = k_b − min and
    out_shift = min − k_out, so out_shift + max(a_shift, b_shift) = max(k_a, k_b) − k_out.
    """
    low = min(k_a, k_b)
    return k_a - low, k_b - low, low - k_out


def add_rule_holds(a_shift: int, b_shift: int, out_shift: int) -> bool:
    """The hardware's Add rule: −4 ≤ out_shift + max(a_shift, b_shift) ≤ 3."""
    return ADD_SHIFT_LOW <= out_shift + max(a_shift, b_shift) <= ADD_SHIFT_HIGH
