"""Streaming calibration statistics give what numpy gives over all samples held at once."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from models import conv_net

from akidac.frontend import import_model
from akidac.passes.calibration import abs_range, min_max_range, mse_range
from akidac.passes.observation import MSE_MAX_ELEMENTS, ValueStats, observe

PERCENTILES = st.sampled_from([99.99, 99.9, 99.0, 90.0, 50.0, 100.0])


def _streamed(samples: list[np.ndarray], percentile: float) -> ValueStats:
    stats = ValueStats(percentile, len(samples), keep_subsample=True)
    for sample in samples:
        stats.add(sample)
    return stats


def _same(actual: float, expected: float) -> None:
    """Equal as numbers (0.0 == −0.0: ties of signed zeros may come out in either order), or
    both NaN."""
    assert actual == expected or (np.isnan(actual) and np.isnan(expected)), (actual, expected)


@st.composite
def _samples(draw: st.DrawFn) -> list[np.ndarray]:
    count = draw(st.integers(1, 6))
    size = draw(st.integers(1, 300))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = draw(st.sampled_from(["normal", "ties", "one-sided", "inf"]))
    data = rng.standard_normal((count, size)).astype(np.float32)
    if kind == "ties":
        data = np.round(data * 2) / 2
    elif kind == "one-sided":
        data = np.abs(data) * 6
    elif kind == "inf":
        data.flat[rng.integers(0, data.size)] = np.inf if rng.random() < 0.5 else -np.inf
    return list(data)


@settings(max_examples=200, deadline=None)
@given(samples=_samples(), percentile=PERCENTILES)
def test_streamed_percentiles_equal_numpy_over_all_samples(
    samples: list[np.ndarray], percentile: float
) -> None:
    stats = _streamed(samples, percentile)
    flat = np.concatenate([np.asarray(s, np.float64) for s in samples])
    with np.errstate(all="ignore"):
        expected_abs = float(
            np.abs(flat).max() if percentile >= 100 else np.percentile(np.abs(flat), percentile)
        )
        positive = np.maximum(flat, 0)
        expected_pos = float(
            positive.max() if percentile >= 100 else np.percentile(positive, percentile)
        )
        if percentile >= 100:
            expected_low, expected_high = float(flat.min()), float(flat.max())
        else:
            expected_low, expected_high = (
                float(v) for v in np.percentile(flat, [100 - percentile, percentile])
            )
    _same(stats.abs_percentile(percentile), expected_abs)
    _same(stats.abs_percentile(percentile, positive=True), expected_pos)
    low, high = stats.low_high(percentile)
    _same(low, expected_low)
    _same(high, expected_high)
    # the tails are small: at most what the percentile reads, not the data
    if percentile >= 99.0 and flat.size >= 1000:
        assert stats.top.size < flat.size // 50


def test_a_nan_makes_every_range_an_error_naming_the_value() -> None:
    samples = [np.ones(10, np.float32), np.array([np.nan] * 10, np.float32)]
    stats = _streamed(samples, 99.99)
    for read in (
        lambda: abs_range(stats, 99.99, name="conv1"),
        lambda: min_max_range(stats, 100, name="conv1"),
        lambda: mse_range(stats, 4, True, name="conv1"),
    ):
        with pytest.raises(Exception, match="'conv1'"):
            read()


def test_the_mse_subsample_takes_the_positions_of_a_stride_over_all_samples() -> None:
    rng = np.random.default_rng(4)
    samples = [rng.standard_normal(MSE_MAX_ELEMENTS // 3 + 7).astype(np.float32) for _ in range(5)]
    stats = _streamed(samples, 99.99)
    flat = np.concatenate(samples)
    stride = -(-flat.size // MSE_MAX_ELEMENTS)
    np.testing.assert_array_equal(stats.mse_data(), flat[::stride].astype(np.float64))
    assert stats.mse_data().size <= MSE_MAX_ELEMENTS


def test_observe_keeps_statistics_not_samples_and_replays_the_first_ones() -> None:
    graph = import_model(conv_net())
    rng = np.random.default_rng(5)
    x = graph.inputs[0]
    shape = tuple(x.type.shape)
    feeds = [{x.name: rng.standard_normal(shape).astype(np.float32)} for _ in range(6)]
    output = graph.outputs[0]
    observation = observe(graph, [output], feeds)
    stats = observation[output.name]
    assert stats.count == 6 * stats.per_sample and not stats.subsample
    assert stats.top.size < stats.per_sample  # a tail, not the data
    replayed = list(observation.replay([output.name], 2))
    assert len(replayed) == 2
    assert replayed[0][output.name].shape == tuple(output.type.shape)
    whole = np.concatenate(
        [r[output.name].reshape(-1) for r in observation.replay([output.name], 6)]
    )
    assert abs_range(stats, 100) == float(np.abs(whole).max())
