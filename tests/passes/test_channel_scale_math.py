"""Per-channel power-of-two activation scales (`akidac.passes.channel_scales`): the shifts, the
readers' input shifts and the accumulator bound that limits them."""

from __future__ import annotations

import numpy as np

from akidac.passes.channel_scales import (
    ACCUMULATOR_LIMIT,
    MAX_CHANNEL_SHIFT,
    accumulator_peak,
    activation_channel_peaks,
    channel_shifts,
    fitting_shifts,
    input_shifts,
)
from akidac.passes.observation import ValueStats


def test_a_channel_gets_the_finest_power_of_two_scale_that_still_holds_its_peak() -> None:
    peaks = np.array([6.0, 0.43, 3.1, 2.9, 0.0, 1e-9, np.nan])
    shifts = channel_shifts(6.0, peaks)
    assert shifts.tolist() == [0, 3, 0, 1, 0, MAX_CHANNEL_SHIFT, 0]
    # the channel's own range 6 · 2^−k lies between its peak and twice its peak
    usable = slice(0, 4)
    ranges = 6.0 * np.exp2(-shifts[usable])
    assert np.all(ranges >= peaks[usable]) and np.all(ranges < 2 * peaks[usable])


def test_a_channel_above_the_tensor_range_keeps_the_tensor_scale() -> None:
    # the tensor range is a percentile: one channel may peak above it
    assert channel_shifts(5.0, np.array([7.0, 5.0])).tolist() == [0, 0]


def test_channel_peaks_are_taken_over_every_sample_on_the_last_axis() -> None:
    a = np.zeros((1, 16, 16, 3))
    b = np.zeros((1, 16, 16, 3))
    a[0, 1, 0, 2] = -4.0
    b[0, 0, 1, 0] = 2.5
    stats = ValueStats(99.99, 4, keep_subsample=False)
    for sample in (a, b, a, b):  # 4 × 256 observations per channel, folded one at a time
        stats.add(sample)
    peaks = activation_channel_peaks(stats)
    assert peaks is not None and peaks.tolist() == [2.5, 0.0, 4.0]
    assert activation_channel_peaks(ValueStats.of([a, b, a, b])) is not None


def test_a_nan_in_a_channel_makes_its_peak_nan_whatever_comes_after() -> None:
    stats = ValueStats(99.99, 3, keep_subsample=False)
    first = np.ones((1, 32, 32, 2))
    first[0, 0, 0, 1] = np.nan
    for sample in (first, 2 * np.ones((1, 32, 32, 2)), np.ones((1, 32, 32, 2))):
        stats.add(sample)
    peaks = activation_channel_peaks(stats)
    assert peaks is not None and peaks[0] == 2.0 and np.isnan(peaks[1])


def test_a_channel_seen_too_rarely_has_no_peak() -> None:
    # a Dense unit: one value per sample, 32 samples (held-out inputs would exceed the peak)
    units = [np.random.default_rng(k).random((1, 8)) for k in range(32)]
    assert activation_channel_peaks(ValueStats.of(units)) is None
    assert activation_channel_peaks(ValueStats.of([])) is None


def test_input_shifts_bring_every_channel_to_the_finest_one_and_repeat_per_position() -> None:
    shifts = np.array([0, 3, 1])
    assert input_shifts(shifts, 3).tolist() == [3, 0, 2]
    # a Dense1D's flattened (H, W, C) input: one entry per element
    assert input_shifts(shifts, 6).tolist() == [3, 0, 2, 3, 0, 2]


def test_the_accumulator_peak_weighs_each_input_channel_by_its_shift() -> None:
    weights_q = np.zeros((2, 3, 1, 1), np.int8)  # Conv2D (F, Cin, kh, kw)
    weights_q[0, :, 0, 0] = [1, -2, 3]
    weights_q[1, :, 0, 0] = [127, 0, 0]
    shift = np.array([2, 0, 1])
    # filter 0: (1·4 + 2·1 + 3·2) · 127 = 1524; filter 1: 127·4·127 = 64516
    assert accumulator_peak(weights_q, 0, shift, 127) == 64516
    dense = np.array([[1, 2], [3, -4]], np.int8)  # Dense (inputs, units)
    assert accumulator_peak(dense, 1, np.array([1, 0]), 10) == (2 * 2 + 4) * 10


def test_shifts_are_capped_until_the_reader_fits() -> None:
    shifts = np.array([0, 5, 8, 2])
    capped = fitting_shifts(shifts, lambda k: int(k.max()) <= 3)
    assert capped.tolist() == [0, 3, 3, 2]
    assert fitting_shifts(shifts, lambda k: False).tolist() == [0, 0, 0, 0]
    big = np.full((1, 64, 3, 3), 127, np.int8)
    assert accumulator_peak(big, 0, np.full(64, 8), 127) > ACCUMULATOR_LIMIT
