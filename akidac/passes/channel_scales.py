"""Per-channel power-of-two scales of activated layer outputs (used by `quantize`).

One activation scale per tensor gives a channel whose calibrated range is far below the
tensor's only a few codes: a trained ReLU6 layer whose channels peak anywhere from 0.4 to 6.0
leaves the small ones 9 of the 127 codes of an int8 ReLU output, and a following layer that
weighs them strongly (a depthwise with folded BatchNorm, weights up to ±39) turns that into a
large error. Akida requantizes per filter (an unsigned 8-bit `output_scales` and an
`output_shift` per output channel, AKIDA.md "Numbers"), so a layer can write channel c at scale
S · 2^−k[c]; its readers take that back exactly, each in its own way:
- a DepthwiseConv2D has a weight scale per channel, so channel c simply accumulates in units
  S · 2^−k[c] · s_w[c] (nothing to shift);
- a Conv2D or Dense sums over input channels in one unit, so it shifts channel c left by
  kmax − k[c] (its per-input-channel `input_shift`, step 1 of the integer pipeline; Dense1D has
  one per flattened element) and accumulates in units S · 2^−kmax · s_w[f];
- the region's output DequantizeLinear dequantizes per channel (per-axis, opset ≥ 13).
Values read by anything else (Add and Concatenate rescale by shared powers of two only,
transposed convolutions, the input conv) keep one scale (k = 0).

k[c] = ⌊log2(R / p[c])⌋ clipped to [0, `MAX_CHANNEL_SHIFT`], with R = S · (largest code) the
tensor's range and p[c] the channel's calibrated peak max |x| over all samples: the channel's
own range R · 2^−k[c] is then between p[c] and 2 · p[c], so no calibrated value clips. A peak
needs many observations to be a range (`MIN_CHANNEL_OBSERVATIONS`): a feature map gives
H · W per sample, a Dense unit one, and a channel seen too rarely keeps the tensor's scale. Shifted
inputs make a Conv2D/Dense accumulator larger; k is lowered (every channel's at most kmax) until
the worst case Σ |w_q| · (largest input code) · 2^(kmax − k[c]) of every reader stays inside
the 28-bit accumulator, which therefore never saturates, and until no reader's accumulator
unit falls below what its output rescale expresses exactly (`quantize._reader_fits`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from akidac.passes.observation import ValueStats
from akidac.target import limits as lim

#: a channel gains at most 8 bits (256×) over the tensor's scale.
MAX_CHANNEL_SHIFT = 8
#: a channel's peak is trusted from this many observations (samples × pixels) on: the peak of a
#: Dense unit seen once per sample (32 values) is a poor guess of its range, and held-out inputs
#: beyond it would clip (measured on the zoo's MLP: 24 → 16 dB); a feature map's is not.
MIN_CHANNEL_OBSERVATIONS = 1024
#: readers that take a per-channel scale back by their input shifts (the sum over channels).
SHIFTING_READERS = ("akida.conv2d", "akida.dense")
#: readers whose per-channel weight scales absorb a per-channel input scale.
ABSORBING_READERS = ("akida.depthwise_conv2d",)
#: the accumulator's largest magnitude: 28-bit signed (AKIDA.md integer pipeline, step 2).
ACCUMULATOR_LIMIT: int = 2 ** (lim.ACCUMULATOR_BITS - 1) - 1


def activation_channel_peaks(stats: ValueStats) -> np.ndarray | None:
    """max |x| of every channel (last axis) over all observed samples; None when each channel
    was seen fewer than `MIN_CHANNEL_OBSERVATIONS` times."""
    if stats.channel_peaks is None or stats.channel_rows < MIN_CHANNEL_OBSERVATIONS:
        return None
    return np.array(stats.channel_peaks, copy=True)


def channel_shifts(tensor_range: float, peaks: np.ndarray) -> np.ndarray:
    """k[c] = ⌊log2(R / p[c])⌋ in [0, MAX_CHANNEL_SHIFT] (0 for a dead or non-finite channel)."""
    peaks = np.asarray(peaks, np.float64)
    usable = np.isfinite(peaks) & (peaks > 0) & np.isfinite(tensor_range) & (tensor_range > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(usable, tensor_range / np.where(usable, peaks, 1.0), 1.0)
    shifts = np.floor(np.log2(ratio) + 1e-12)
    return np.clip(shifts, 0, MAX_CHANNEL_SHIFT).astype(np.int64)


def input_shifts(shifts: np.ndarray, elements: int) -> np.ndarray:
    """The reader's `input_shift` (uint8): kmax − k[c] per channel, repeated over the H·W
    positions of a Dense1D's flattened (H, W, C) input (`elements` entries in all)."""
    per_channel = int(shifts.max(initial=0)) - np.asarray(shifts, np.int64)
    return np.tile(per_channel, elements // max(1, per_channel.size)).astype(np.uint8)


def accumulator_peak(
    weights_q: np.ndarray, axis: int, shift_per_input: np.ndarray, input_limit: int
) -> int:
    """Largest |accumulator| a reader can reach: max over filters of Σ |w_q| · limit · 2^shift,
    `shift_per_input` holding one shift per input channel (Conv2D, weights (F, Cin, kh, kw))
    or per flattened input element (Dense, weights (inputs, units))."""
    magnitude = np.abs(np.moveaxis(np.asarray(weights_q, np.int64), axis, 0))
    per_input = magnitude.reshape(magnitude.shape[0], shift_per_input.size, -1).sum(axis=2)
    sums = per_input @ (np.int64(1) << np.asarray(shift_per_input, np.int64))
    return int(sums.max(initial=0)) * int(input_limit)


def fitting_shifts(shifts: np.ndarray, fits: Callable[[np.ndarray], bool]) -> np.ndarray:
    """`shifts` capped at the largest kmax for which `fits(capped)` holds (0 always does)."""
    for cap in range(int(shifts.max(initial=0)), 0, -1):
        capped = np.asarray(np.minimum(shifts, cap))
        if fits(capped):
            return capped
    return np.zeros(np.shape(shifts), np.int64)
