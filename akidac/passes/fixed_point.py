"""Akida's fixed-point forms of real numbers, with the math written down.

- An output scale r > 0 is `M · 2^s` with an unsigned 8-bit `M` (128..255 when r allows) and a
  shift s ≥ `MIN_OUTPUT_SHIFT`: s = ⌊log2 r⌋ − 7, M = round(r / 2^s). The shift is kept ≥ −24
  so that `sat32(acc · M)` never clips a value whose shifted result would still fit 8 bits:
  with s ≥ −24, `acc · M ≥ 2^31` implies `acc · M · 2^s ≥ 2^7`, which saturates anyway.
- A bias b (in accumulator units) is `bias << bias_shift` with an int8 `bias`:
  bias_shift = max(0, ⌈log2(|b| / 127)⌉), bias = round(b / 2^bias_shift).
- A ReLU ceiling m (accumulator units) is `max_value << max_value_shift`, uint8 `max_value`.
Rounding is half away from zero (np.round is half-even; the difference is below 1 LSB).
"""

from __future__ import annotations

import numpy as np

MIN_OUTPUT_SHIFT = -24
MAX_SHIFT = 31


def encode_scale(ratio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (output_scales uint8, output_shift int8) with M · 2^s ≈ ratio."""
    ratio = np.asarray(ratio, dtype=np.float64)
    safe = np.where(ratio > 0, ratio, 1.0)
    shift = np.floor(np.log2(safe)).astype(np.int64) - 7
    shift = np.clip(shift, MIN_OUTPUT_SHIFT, MAX_SHIFT)
    mantissa = np.floor(safe / np.exp2(shift) + 0.5).astype(np.int64)
    overflow = mantissa > 255
    shift = np.where(overflow, shift + 1, shift)
    mantissa = np.where(overflow, np.floor(safe / np.exp2(shift) + 0.5), mantissa).astype(np.int64)
    mantissa = np.clip(np.where(ratio > 0, mantissa, 0), 0, 255)
    return mantissa.astype(np.uint8), shift.astype(np.int8)


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


def quantize_weights(weights: np.ndarray, bits: int, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-channel weights: (int8 array, per-channel scale along `axis`)."""
    limit = 2 ** (bits - 1) - 1
    moved = np.moveaxis(weights.astype(np.float64), axis, 0)
    peak = np.abs(moved.reshape(moved.shape[0], -1)).max(axis=1)
    scale = np.where(peak > 0, peak / limit, 1.0)
    q = np.clip(np.round(moved / scale.reshape(-1, *([1] * (moved.ndim - 1)))), -limit, limit)
    return np.moveaxis(q, 0, axis).astype(np.int8), scale
