"""Convolutions whose shifted inputs do not fit a byte run on VNNI dot products of int16 pairs.

`vpdpbusd` multiplies bytes: an input shift (x << s), a 16-bit input or a wide pad value puts
the layer beyond it. When every shifted, clipped input sat_B(x << s) fits int16 (proved from
the dtype, or from the values of an int32 input), the layer runs on `vpdpwssd` instead, still
exact in wrapping int32. These tests pin that choice, its tile widths, and exactness at the
values that stress wrapping and saturation, with the VNNI kernels and without them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pytest

from akidac.backends.akida import hwmodel, kernels
from akidac.ir import reference
from akidac.target.layer_record import LayerRecord

needs_vnni = pytest.mark.skipif(not kernels.VNNI, reason="no AVX-512 VNNI on this machine")


@pytest.fixture
def vnni_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple]]:
    """Every call of `kernels.conv_vnni_layer` that ran (not a refusal of bytes whose shifted
    input did not fit), with its arguments."""
    seen: list[tuple] = []
    kernel = kernels.conv_vnni_layer

    def wrapper(*args: object) -> object:
        ran = kernel(*args)
        if ran:
            seen.append(args)
        return ran

    monkeypatch.setattr(kernels, "conv_vnni_layer", wrapper)
    yield seen


def layer(
    kernel: int,
    channels: int,
    filters: int,
    shifts: np.ndarray,
    seed: int = 0,
    buffer_bits: int = 28,
    weights: np.ndarray | None = None,
) -> LayerRecord:
    """An 8-bit ReLU Conv2D with the given input shifts (as `conv_net`'s third layer has)."""
    rng = np.random.default_rng(seed)
    shape = (kernel, kernel, channels, filters)
    return LayerRecord(
        "layer",
        "Conv2D",
        [],
        {
            "kernel_size": kernel,
            "kernel_stride": 1,
            "padding": "Same",
            "activation": "ReLU",
            "output_bits": 8,
            "buffer_bits": buffer_bits,
            "post_op_buffer_bits": 32,
        },
        {
            "weights": rng.integers(-128, 128, shape).astype(np.int8)
            if weights is None
            else weights,
            "input_shift": shifts.astype(np.uint8),
            "bias": rng.integers(-64, 64, filters).astype(np.int8),
            "bias_shift": np.full(filters, 4, np.uint8),
            "max_value": np.full(filters, 127, np.uint8),
            "max_value_shift": np.full(filters, 31, np.uint8),
            "output_scales": rng.integers(64, 256, filters).astype(np.uint8),
            "output_shift": np.full(filters, -22, np.int8),
        },
    )


def kinds(calls: list[tuple]) -> list[str]:
    """ "bytes" or "int16" per call of `kernels.conv_vnni_layer`, from its plan."""
    words = kernels.VNNI_LAYER.index("words")
    return ["int16" if args[6][words] else "bytes" for args in calls]


def check(model: hwmodel.HardwareModel, record: LayerRecord, x: np.ndarray) -> None:
    np.testing.assert_array_equal(model.run(x), reference.run_layer(record, [x]))


def extremes(dtype: type, shape: tuple[int, ...], rng: np.random.Generator) -> list[np.ndarray]:
    """Random values, then all-minimum and all-maximum inputs and a checkerboard of both."""
    info = np.iinfo(dtype)
    low, high = int(info.min), int(info.max)
    board = np.where(np.indices(shape).sum(axis=0) % 2 == 0, low, high).astype(dtype)
    return [
        rng.integers(low, high + 1, shape).astype(dtype),
        np.full(shape, low, dtype),
        np.full(shape, high, dtype),
        board,
    ]


@needs_vnni
@pytest.mark.parametrize(
    ("kernel", "channels", "filters", "stride", "padding", "pool", "width"),
    [
        (3, 32, 32, 1, "Same", True, 8),  # conv_net's third layer: 8-pixel tiles
        (3, 16, 32, 1, "Same", False, 4),  # 4-pixel tiles
        (3, 5, 16, 1, "Valid", True, 11),  # an odd row of terms: a zero-weight pad term
        (5, 8, 70, 1, "SameUpper", False, 13),  # filters beyond whole 64-filter blocks
        (3, 24, 100, 2, "Same", True, 10),
        (3, 7, 48, 2, "Valid", False, 17),
        (1, 20, 70, 1, "Same", False, 9),  # 1×1 layers too
        (1, 9, 32, 2, "Same", True, 10),
    ],
)
def test_shifted_8_bit_inputs_run_on_int16_pairs(
    vnni_calls: list[tuple],
    kernel: int,
    channels: int,
    filters: int,
    stride: int,
    padding: str,
    pool: bool,
    width: int,
) -> None:
    """int8 inputs with shifts up to 8 and uint8 with shifts up to 7 fit int16 whatever their
    values: every run takes the int16 kernel, random and extreme inputs alike, exactly."""
    rng = np.random.default_rng(3)
    for dtype, most in ((np.int8, 8), (np.uint8, 7)):
        shifts = rng.integers(0, most + 1, channels)
        shifts[0] = most
        record = layer(kernel, channels, filters, shifts)
        record.params.update(kernel_stride=stride, padding=padding)
        if pool:
            record.params.update(pool_type="Max", pool_size=2, pool_stride=2)
        model = hwmodel.HardwareModel([record])
        before = len(vnni_calls)
        inputs = extremes(dtype, (2, 9, width, channels), rng)
        for x in inputs:
            check(model, record, x)
        assert kinds(vnni_calls[before:]) == ["int16"] * len(inputs)
        assert model._executors[0]._known  # the dtype proved the fit: remembered


@needs_vnni
def test_int16_pairs_wrap_the_int32_accumulator_exactly(vnni_calls: list[tuple]) -> None:
    """576 terms of (-32768) · (-128) sum to 1.125 · 2^31: the accumulator wraps, as the
    engine's does, and the int16 kernel agrees with the reference."""
    channels = 64
    weights = np.full((3, 3, channels, 16), -128, np.int8)
    weights[..., 1] = 127  # a filter that wraps the other way
    record = layer(3, channels, 16, np.zeros(channels), weights=weights)
    record.params.update(padding="Valid")
    model = hwmodel.HardwareModel([record])
    for value in (-(1 << 15), (1 << 15) - 1):
        x = np.full((1, 5, 5, channels), value, np.int16)
        check(model, record, x)
    total = 9 * channels * (-(1 << 15)) * -128
    assert total >= 1 << 31  # the sum does not fit int32: the check above saw a wrap
    assert kinds(vnni_calls) == ["int16"] * 2


@needs_vnni
def test_saturating_shifts_are_clipped_before_the_int16_kernel(vnni_calls: list[tuple]) -> None:
    """With a 12-bit buffer, x << 8 saturates at ±2^11 for most inputs: the clip is applied as
    the int16 input is written (any buffer of at most 16 bits fits int16 whatever the
    shift)."""
    channels = 12
    rng = np.random.default_rng(5)
    record = layer(3, channels, 32, np.full(channels, 20), buffer_bits=12)
    model = hwmodel.HardwareModel([record])
    for x in extremes(np.int8, (1, 7, 8, channels), rng):
        check(model, record, x)
    for x in extremes(np.int16, (1, 7, 8, channels), rng):
        check(model, record, x)
    assert kinds(vnni_calls) == ["int16"] * 8


@needs_vnni
def test_wide_inputs_take_int16_pairs_only_when_their_values_fit(
    vnni_calls: list[tuple],
) -> None:
    """An int32 input fits int16 pairs by its values, checked on every run (not remembered);
    beyond int16 the float32 or int32 kernels run, exactly."""
    channels = 8
    rng = np.random.default_rng(6)
    record = layer(3, channels, 16, np.zeros(channels))
    model = hwmodel.HardwareModel([record])
    small = rng.integers(-(1 << 15), 1 << 15, (1, 6, 8, channels)).astype(np.int32)
    large = small * 4
    large[0, 0, 0, 0] = (1 << 15) + 3
    for x in (small, large, small):
        check(model, record, x)
    assert kinds(vnni_calls) == ["int16"] * 2
    assert not model._executors[0]._known
    # an int8 input shifted by 9 may reach -2^16: the dtype does not prove the fit
    record = layer(3, channels, 16, np.full(channels, 9))
    model = hwmodel.HardwareModel([record])
    check(model, record, rng.integers(-128, 128, (1, 6, 8, channels)).astype(np.int8))
    assert len(vnni_calls) == 2


@pytest.mark.parametrize("vnni", [True, False])
def test_shifted_layers_are_exact_with_and_without_vnni(
    monkeypatch: pytest.MonkeyPatch, vnni_calls: list[tuple], vnni: bool
) -> None:
    """The same shifted layers on every machine: int16 pairs with VNNI, the float32 kernels
    without it, one result."""
    if vnni and not kernels.VNNI:
        pytest.skip("no AVX-512 VNNI on this machine")
    monkeypatch.setattr(kernels, "VNNI", vnni)
    rng = np.random.default_rng(8)
    for width in (1, 3, 4, 6, 8, 9, 16):
        shifts = rng.integers(0, 4, 16)
        record = layer(3, 16, 32, shifts, seed=width)
        model = hwmodel.HardwareModel([record])
        for x in extremes(np.int8, (1, 5, width, 16), rng):
            check(model, record, x)
    assert bool(vnni_calls) == vnni


@pytest.mark.parametrize(
    ("out_w", "filters", "expected"),
    [(8, 32, 8), (16, 32, 8), (4, 32, 4), (12, 64, 6), (36, 128, 6), (1, 16, 4), (32, 16, 8)],
)
def test_the_tile_width_fits_the_row(out_w: int, filters: int, expected: int) -> None:
    """Narrow rows take tiles that waste no pixels: 8 output pixels one tile of 8, not two of
    6 (a third of the work wasted)."""
    assert kernels.vnni_tile_pixels(out_w, filters) == expected


def _shapes() -> list[tuple[int, int]]:
    return [(h, w) for h in (1, 2, 5) for w in range(1, 18)]


@needs_vnni
def test_every_row_width_is_exact_on_both_vnni_kernels(vnni_calls: list[tuple]) -> None:
    """Rows of 1 to 17 pixels (each tile width, whole and partial tiles), bytes and int16."""
    rng = np.random.default_rng(9)
    plain = layer(3, 8, 32, np.zeros(8), seed=1)
    shifted = layer(3, 8, 32, np.full(8, 4), seed=2)
    runs: list[tuple[LayerRecord, Callable[[tuple[int, ...]], np.ndarray]]] = [
        (plain, lambda shape: rng.integers(-128, 128, shape).astype(np.int8)),
        (shifted, lambda shape: rng.integers(-128, 128, shape).astype(np.int8)),
    ]
    for record, make in runs:
        model = hwmodel.HardwareModel([record])
        for h, w in _shapes():
            check(model, record, make((1, h, w, 8)))
    assert set(kinds(vnni_calls)) == {"bytes", "int16"}


@needs_vnni
@pytest.mark.parametrize("padding", ["Same", "Valid"])
@pytest.mark.parametrize(("size", "stride"), [(2, 2), (3, 2), (2, 1), (3, 3), (1, 1)])
def test_max_pooling_on_both_vnni_kernels_is_exact(
    vnni_calls: list[tuple], padding: str, size: int, stride: int
) -> None:
    """Max pooling of every window and row parity: 2×2 stride 2 with every window inside is
    pooled on the accumulators (before the requantization), the rest on the outputs."""
    rng = np.random.default_rng(10)
    for shifts in (np.zeros(8), np.full(8, 5)):
        record = layer(3, 8, 48, shifts, seed=size)
        record.params.update(padding=padding, pool_type="Max", pool_size=size)
        record.params.update(pool_stride=stride)
        model = hwmodel.HardwareModel([record])
        for h, w in [(6, 8), (7, 9), (9, 6), (5, 17), (5, 5)]:
            for x in extremes(np.int8, (2, h, w, 8), rng)[:2]:
                check(model, record, x)
    assert set(kinds(vnni_calls)) == {"bytes", "int16"}
