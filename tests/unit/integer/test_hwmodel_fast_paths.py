"""The hardware model takes its fast kernels where they are provably exact, and only there.

The speed of `bench/hwmodel.py` rests on three choices: float32 register tiles for convolutions
(one GEMM over the whole batch for 1×1 stride-1 layers), requantized in the same kernel when
the layer has the int32 plan and no pooling, and the fused float32 kernel for 3×3 stride-1
depthwise layers. These tests pin each choice on realistic 8-bit layers, pin the int32
fallback where the float32 bound fails, and check every result against the reference.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from akidac.backends.akida import hwmodel, kernels
from akidac.ir import reference
from akidac.target.layer_record import LayerRecord

KERNEL_NAMES = (
    "conv_vnni_layer",
    "conv_float32",
    "conv_fused_float32",
    "conv_fused_lut_float32",
    "conv1x1_fused_float32",
    "conv_int32",
    "depthwise3_fused",
    "depthwise3_fused_float32",
    "depthwise_int32",
)


@pytest.fixture(autouse=True)
def no_vnni(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The float32 paths, pinned here, are what runs without AVX-512 VNNI: the tests of the
    VNNI kernel (named so) keep it, the others turn it off."""
    if "vnni" not in request.node.name:
        monkeypatch.setattr(kernels, "VNNI", False)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[tuple]]:
    """Every call of the accumulator kernels, by name, with its arguments."""
    seen: dict[str, list[tuple]] = {name: [] for name in KERNEL_NAMES}

    def spy(name: str, kernel: Callable) -> Callable:
        def wrapper(*args: object) -> object:
            seen[name].append(args)
            return kernel(*args)

        return wrapper

    for name in KERNEL_NAMES:
        monkeypatch.setattr(kernels, name, spy(name, getattr(kernels, name)))
    return seen


def quantized_layer(
    layer_type: str, kernel: int, channels: int, filters: int, seed: int = 0
) -> LayerRecord:
    """A realistic 8-bit ReLU layer, as a quantizer emits it."""
    rng = np.random.default_rng(seed)
    depthwise = layer_type == "DepthwiseConv2D"
    filters = channels if depthwise else filters
    shape = (kernel, kernel, channels, 1 if depthwise else filters)
    return LayerRecord(
        "layer",
        layer_type,
        [],
        {
            "kernel_size": kernel,
            "kernel_stride": 1,
            "padding": "Same",
            "activation": "ReLU",
            "output_bits": 8,
            "buffer_bits": 28,
            "post_op_buffer_bits": 32,
        },
        {
            "weights": rng.integers(-128, 128, shape).astype(np.int8),
            "input_shift": np.zeros(channels, np.uint8),
            "bias": rng.integers(-64, 64, filters).astype(np.int8),
            "bias_shift": np.full(filters, 4, np.uint8),
            "max_value": np.full(filters, 127, np.uint8),
            "max_value_shift": np.full(filters, 31, np.uint8),
            "output_scales": rng.integers(64, 256, filters).astype(np.uint8),
            "output_shift": np.full(filters, -18, np.int8),
        },
    )


def run_and_check(record: LayerRecord, x: np.ndarray) -> None:
    expected = reference.run_layer(record, [x])
    actual = hwmodel.run_layer(record, [x])
    assert actual.dtype == expected.dtype
    np.testing.assert_array_equal(actual, expected)


def test_the_vector_width_is_one_numba_targets() -> None:
    assert kernels.VECTOR_LANES in (4, 8, 16)
    assert kernels.TILE_VECTORS in (3, 4)


def test_a_3x3_conv_runs_on_float32_tiles(calls: dict[str, list[tuple]]) -> None:
    record = quantized_layer("Conv2D", 3, 24, 40)
    x = np.random.default_rng(1).integers(-128, 128, (1, 9, 11, 24)).astype(np.int8)
    run_and_check(record, x)
    assert len(calls["conv_fused_float32"]) == 1 and not calls["conv_int32"]
    assert not calls["conv_float32"], "the requantization is fused"
    xp, weights, chunk = calls["conv_fused_float32"][0][:3]
    assert chunk == weights.shape[0] == 3 * 3 * 24, "one exact float32 chunk per window"
    assert weights.shape[1] % kernels.VECTOR_LANES == 0
    assert weights.ctypes.data % kernels.CACHE_LINE == 0
    assert xp.dtype == np.float32


def test_a_1x1_stride_1_conv_is_one_gemm_over_the_batch(calls: dict[str, list[tuple]]) -> None:
    record = quantized_layer("Conv2D", 1, 20, 70)
    x = np.random.default_rng(2).integers(-128, 128, (2, 5, 7, 20)).astype(np.int8)
    run_and_check(record, x)
    assert len(calls["conv1x1_fused_float32"]) == 1 and not calls["conv_float32"]
    pixels, out = calls["conv1x1_fused_float32"][0][0], calls["conv1x1_fused_float32"][0][-1]
    assert pixels.shape == (2 * 5 * 7, 20) and out.shape == (2 * 5 * 7, 70)


@pytest.mark.parametrize(("kernel", "filters"), [(3, 8), (1, 4), (3, 40)])
def test_a_lut_layer_with_few_filters_reads_its_output_table_in_the_fused_kernel(
    calls: dict[str, list[tuple]], kernel: int, filters: int
) -> None:
    """Below LUT_INT32_MIN_FILTERS a LUT layer's outputs come from its (F, 2048) table, in the
    fused float32 convolution, on every run (the second takes the known-shape path)."""
    rng = np.random.default_rng(9)
    record = quantized_layer("Conv2D", kernel, 8, filters)
    record.params.update(activation="LUT")
    record.variables.update(
        activation_scales=rng.integers(1, 256, filters).astype(np.uint8),
        activation_shift=np.full(filters, -12, np.int8),
        lut_values=rng.integers(-(1 << 20), 1 << 20, 2048).astype(np.int32),
        output_shift=np.full(filters, -14, np.int8),
    )
    model = hwmodel.HardwareModel([record])
    assert model._executors[0].epilogue.lut_table.shape == (filters, 2048)
    for seed in (1, 2):
        x = np.random.default_rng(seed).integers(-128, 128, (2, 6, 7, 8)).astype(np.int8)
        np.testing.assert_array_equal(model.run(x), reference.run_layer(record, [x]))
    assert len(calls["conv_fused_lut_float32"]) == 2 and not calls["conv_float32"]


def test_max_pooled_convolutions_pool_the_fused_outputs(calls: dict[str, list[tuple]]) -> None:
    """With a clamp activation every step is nondecreasing: the fused kernels' outputs are
    max pooled (see `kernels.max_pool`); a global average keeps the separate epilogue."""
    x = np.random.default_rng(5).integers(-128, 128, (1, 6, 8, 12)).astype(np.int8)
    for kernel in (1, 3):
        for padding in ("Same", "Valid"):
            record = quantized_layer("Conv2D", kernel, 12, 20)
            record.params.update(pool_type="Max", pool_size=3, pool_stride=2, padding=padding)
            run_and_check(record, x)
    assert len(calls["conv_fused_float32"]) == 2 and len(calls["conv1x1_fused_float32"]) == 2
    assert not calls["conv_float32"]
    for kernel in (1, 3):
        record = quantized_layer("Conv2D", kernel, 12, 20)
        record.params.update(pool_type="Average")
        run_and_check(record, x)
    assert len(calls["conv_float32"]) == 2
    for stride in (1, 2):
        record = quantized_layer("DepthwiseConv2D", 3, 12, 12)
        record.params.update(pool_type="Max", pool_size=2, pool_stride=2, kernel_stride=stride)
        run_and_check(record, x)
    assert len(calls["depthwise3_fused_float32"]) == 2 and not calls["depthwise_int32"]


def test_outputs_are_fresh_arrays() -> None:
    """A caller may keep an output while the model runs again: no run returns a buffer that a
    later run writes."""
    for kernel in (1, 3):
        record = quantized_layer("Conv2D", kernel, 16, 16)
        model = hwmodel.HardwareModel([record])
        rng = np.random.default_rng(6)
        x1 = rng.integers(-128, 128, (1, 5, 6, 16)).astype(np.int8)
        x2 = rng.integers(-128, 128, (1, 5, 6, 16)).astype(np.int8)
        first = model.run(x1)
        kept = first.copy()
        second = model.run(x2)
        np.testing.assert_array_equal(first, kept)
        assert not np.shares_memory(first, second)


def test_a_3x3_depthwise_layer_runs_the_fused_float32_kernel(
    calls: dict[str, list[tuple]],
) -> None:
    record = quantized_layer("DepthwiseConv2D", 3, 40, 40)
    x = np.random.default_rng(3).integers(-128, 128, (2, 7, 6, 40)).astype(np.int8)
    run_and_check(record, x)
    assert len(calls["depthwise3_fused_float32"]) == 1
    assert not calls["depthwise3_fused"] and not calls["depthwise_int32"]


@pytest.mark.parametrize("padding", ["Same", "SameUpper", "Valid"])
def test_a_3x3_stride_2_depthwise_layer_runs_the_fused_float32_kernel(
    calls: dict[str, list[tuple]], padding: str
) -> None:
    record = quantized_layer("DepthwiseConv2D", 3, 40, 40)
    record.params.update(kernel_stride=2, padding=padding)
    for shape in [(2, 7, 6, 40), (1, 8, 9, 40)]:
        x = np.random.default_rng(8).integers(-128, 128, shape).astype(np.int8)
        run_and_check(record, x)
    assert len(calls["depthwise3_fused_float32"]) == 2
    assert not calls["depthwise3_fused"] and not calls["depthwise_int32"]


def test_inputs_beyond_the_float32_bound_take_the_int32_kernels(
    calls: dict[str, list[tuple]],
) -> None:
    rng = np.random.default_rng(4)
    # 2^26 · Σ|w| is far above 2^24: float32 sums could round, int32 ones wrap exactly
    x = rng.integers(-(1 << 26), 1 << 26, (1, 6, 6, 8)).astype(np.int32)
    run_and_check(quantized_layer("Conv2D", 3, 8, 8), x)
    run_and_check(quantized_layer("DepthwiseConv2D", 3, 8, 8), x)
    assert len(calls["conv_int32"]) == 1 and not calls["conv_float32"]
    assert len(calls["depthwise3_fused"]) == 1 and not calls["depthwise3_fused_float32"]


@pytest.mark.parametrize(
    ("layer_type", "kernel"), [("Conv2D", 1), ("Conv2D", 3), ("DepthwiseConv2D", 3)]
)
def test_repeated_runs_reuse_their_checked_geometry_only_for_the_same_input_kind(
    layer_type: str, kernel: int
) -> None:
    """A run remembers the geometry of an 8-bit input shape; another shape or dtype (uint8,
    int16: a bound from the values) is checked and planned afresh, and each result is exact."""
    record = quantized_layer(layer_type, kernel, 16, 16)
    model = hwmodel.HardwareModel([record])
    rng = np.random.default_rng(7)
    inputs = [
        rng.integers(-128, 128, (1, 5, 6, 16)).astype(np.int8),
        rng.integers(-128, 128, (1, 5, 6, 16)).astype(np.int8),
        rng.integers(0, 256, (1, 5, 6, 16)).astype(np.uint8),
        rng.integers(-128, 128, (2, 4, 7, 16)).astype(np.int8),
        rng.integers(-(1 << 14), 1 << 14, (1, 5, 6, 16)).astype(np.int16),
        rng.integers(-(1 << 26), 1 << 26, (1, 5, 6, 16)).astype(np.int32),
        rng.integers(-128, 128, (1, 5, 6, 16)).astype(np.int8),
        np.asfortranarray(rng.integers(-128, 128, (1, 5, 6, 16)).astype(np.int8)),
    ]
    for x in inputs:
        np.testing.assert_array_equal(model.run(x), reference.run_layer(record, [x]))
    assert len(model._executors[0]._known) == 3  # (1, 5, 6) int8 and uint8, (2, 4, 7) int8


def test_a_known_shape_still_meets_the_output_dims_check() -> None:
    record = quantized_layer("Conv2D", 3, 8, 8)
    record.output_dims = [5, 6, 8]
    model = hwmodel.HardwareModel([record])
    x = np.zeros((1, 5, 6, 8), np.int8)
    model.run(x)
    model.run(x)
    with pytest.raises(hwmodel.ProgramError, match="output_dims"):
        model.run(np.zeros((1, 4, 6, 8), np.int8))


needs_vnni = pytest.mark.skipif(not kernels.VNNI, reason="no AVX-512 VNNI on this machine")


@needs_vnni
@pytest.mark.parametrize(
    ("layer_type", "kernel", "channels", "filters", "stride", "padding", "pool"),
    [
        ("Conv2D", 3, 16, 32, 1, "Same", False),
        ("Conv2D", 3, 5, 16, 1, "Valid", True),
        ("Conv2D", 5, 8, 70, 1, "SameUpper", False),
        ("Conv2D", 3, 24, 100, 2, "Same", True),
        ("Conv2D", 1, 20, 70, 1, "Same", False),  # 1×1 layers too
        ("Conv2D", 1, 12, 32, 2, "Valid", True),
        ("InputConv2D", 3, 3, 16, 1, "Same", True),
        ("InputConv2D", 5, 1, 8, 2, "Valid", False),
    ],
)
def test_8_bit_convolutions_run_on_vnni_dot_products(
    calls: dict[str, list[tuple]],
    layer_type: str,
    kernel: int,
    channels: int,
    filters: int,
    stride: int,
    padding: str,
    pool: bool,
) -> None:
    """int8 and uint8 inputs, any geometry: the VNNI kernel on bytes, exact, on every run; a
    shifted input that does not fit a byte falls back to the VNNI kernel on int16 pairs and
    stays there."""
    record = quantized_layer("Conv2D", kernel, channels, filters)
    record.layer_type = layer_type
    record.params.update(kernel_stride=stride, padding=padding)
    if pool:
        record.params.update(pool_type="Max", pool_size=2, pool_stride=2)
    if layer_type == "InputConv2D":
        del record.variables["input_shift"]
        record.variables["padding_value"] = np.arange(channels, dtype=np.uint8) * 7 + 3
    model = hwmodel.HardwareModel([record])
    rng = np.random.default_rng(11)
    dtypes = [np.uint8] if layer_type == "InputConv2D" else [np.int8, np.uint8]
    runs = 0
    for dtype in dtypes:
        info = np.iinfo(dtype)
        for _ in range(2):
            x = rng.integers(info.min, info.max + 1, (2, 9, 10, channels)).astype(dtype)
            np.testing.assert_array_equal(model.run(x), reference.run_layer(record, [x]))
            runs += 1
    assert len(calls["conv_vnni_layer"]) == runs
    assert not calls["conv_fused_float32"] and not calls["conv_float32"]
    if layer_type == "Conv2D":
        record.variables["input_shift"] = np.full(channels, 3, np.uint8)
        model = hwmodel.HardwareModel([record])
        small = rng.integers(0, 32, (1, 6, 7, channels)).astype(np.uint8)  # << 3 fits a byte
        large = rng.integers(0, 256, (1, 6, 7, channels)).astype(np.uint8)
        for x in (small, large, large, small):
            np.testing.assert_array_equal(model.run(x), reference.run_layer(record, [x]))
        words = kernels.VNNI_LAYER.index("words")
        kinds = [args[6][words] for args in calls["conv_vnni_layer"][runs:]]
        assert kinds == [0, 0, 1, 1, 1]  # bytes, refused bytes, then int16 pairs
        assert not calls["conv_fused_float32"] and not calls["conv_float32"]
