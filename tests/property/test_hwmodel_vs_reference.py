"""Hypothesis: the numba hardware model equals the NumPy reference bit for bit, per layer type.

Random small shapes, weights, shifts, scales, activations, pooling and bit widths, with inputs
and parameters pushed to saturation edges (huge input_shift, bias_shift, output_scales, full
int32 inputs), so that every clip, the int32 wrap, both float32 paths (one chunk, several
chunks) and the int32 fallback of the convolution, and the int32 requantization plan are hit.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from akidac.backends.akida import hwmodel
from akidac.backends.akida.hwmodel import HardwareModel
from akidac.ir import reference
from akidac.target.layer_record import LayerRecord

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
OUTPUT_BITS = (1, 2, 3, 4, 5, 7, 8, 9, 12, 16, 20, 28, 32)
INPUT_KINDS = ("int8", "uint4", "uint8", "int16", "int32", "extremes")


def random_input(rng: np.random.Generator, shape: tuple[int, ...], kind: str) -> np.ndarray:
    """An input tensor of one of the dtypes Akida layers exchange, or int8 extremes."""
    if kind == "int8":
        return rng.integers(-128, 128, shape).astype(np.int8)
    if kind == "uint4":
        return rng.integers(0, 16, shape).astype(np.uint8)
    if kind == "uint8":
        return rng.integers(0, 256, shape).astype(np.uint8)
    if kind == "int16":
        return rng.integers(-(1 << 15), 1 << 15, shape).astype(np.int16)
    if kind == "int32":
        return rng.integers(-(1 << 31), 1 << 31, shape, dtype=np.int64).astype(np.int32)
    return rng.choice(np.array([-128, -127, 0, 126, 127], np.int8), shape)


@st.composite
def epilogue(draw: st.DrawFn, filters: int, seed: int, poolable: bool) -> dict:
    """Parameters and variables of steps 3-8: bias, pooling, activation, requantization."""
    rng = np.random.default_rng(seed)
    large_shifts = draw(st.booleans())
    top_shift = 31 if large_shifts else 12
    params: dict[str, int | str] = {
        "output_bits": draw(st.sampled_from(OUTPUT_BITS)),
        "buffer_bits": draw(st.one_of(st.just(28), st.integers(8, 32))),
        "post_op_buffer_bits": draw(st.one_of(st.just(32), st.integers(16, 32))),
    }
    variables: dict[str, np.ndarray] = {
        "bias": rng.integers(-128, 128, filters).astype(np.int8),
        "bias_shift": rng.integers(0, top_shift + 1, filters).astype(np.uint8),
        "output_scales": rng.integers(0, 256, filters).astype(np.uint8),
        "output_shift": rng.integers(-31, 32 if large_shifts else 4, filters).astype(np.int8),
    }
    activation = draw(st.sampled_from(("NoActivation", "ReLU", "LUT")))
    params["activation"] = activation
    if activation == "ReLU":
        variables["max_value"] = rng.integers(0, 256, filters).astype(np.uint8)
        variables["max_value_shift"] = rng.integers(0, 32, filters).astype(np.uint8)
    elif activation == "LUT":
        variables["activation_scales"] = rng.integers(0, 256, filters).astype(np.uint8)
        variables["activation_shift"] = rng.integers(-31, 32, filters).astype(np.int8)
        lut_range = 1 << draw(st.sampled_from((8, 14, 31)))
        variables["lut_values"] = rng.integers(-lut_range, lut_range, 2048).astype(np.int32)
    if poolable:
        pool_type = draw(st.sampled_from(("NoPooling", "NoPooling", "Max", "Average")))
        params["pool_type"] = pool_type
        if pool_type == "Max":
            size = draw(st.integers(1, 3))
            params["pool_size"] = size
            params["pool_stride"] = draw(st.integers(1, size))
    return {"params": params, "variables": variables}


@st.composite
def conv_layers(draw: st.DrawFn, layer_type: str) -> tuple[LayerRecord, np.ndarray]:
    """A Conv2D, InputConv2D or DepthwiseConv2D record and an input it accepts."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    kernel_choices = {"Conv2D": (1, 3, 5, 7), "InputConv2D": (3, 4, 5, 7)}
    k = draw(st.sampled_from(kernel_choices.get(layer_type, (3, 5, 7))))
    if layer_type == "InputConv2D":
        stride = draw(st.integers(1, min(k, 6)))
        channels = draw(st.sampled_from((1, 3)))
    else:
        stride = draw(st.integers(1, 2))
        channels = draw(st.integers(1, 6))
    padding = draw(st.sampled_from(("Same", "SameUpper", "Valid")))
    minimum = k if padding == "Valid" else 1
    height = draw(st.integers(minimum, minimum + 7))
    width = draw(st.integers(minimum, minimum + 7))
    batch = draw(st.integers(1, 2))
    filters = channels if layer_type == "DepthwiseConv2D" else draw(st.integers(1, 9))
    weight_bits = draw(st.sampled_from((4, 8)))
    w_max = 1 << (weight_bits - 1)
    shape = (k, k, channels, 1 if layer_type == "DepthwiseConv2D" else filters)
    tail = draw(epilogue(filters, seed + 1, poolable=True))
    params = {
        "kernel_size": k,
        "kernel_stride": stride,
        "padding": padding,
        "weights_bits": weight_bits,
        **tail["params"],
    }
    variables = {"weights": rng.integers(-w_max, w_max, shape).astype(np.int8), **tail["variables"]}
    if layer_type == "InputConv2D":
        params["buffer_bits"] = draw(st.one_of(st.just(32), st.integers(16, 32)))
        variables["padding_value"] = rng.integers(0, 256, channels).astype(np.uint8)
        x = rng.integers(0, 256, (batch, height, width, channels)).astype(np.uint8)
    else:
        large = draw(st.booleans())
        shift_top = 31 if large else 3
        variables["input_shift"] = rng.integers(0, shift_top + 1, channels).astype(np.uint8)
        kind = draw(st.sampled_from(INPUT_KINDS))
        x = random_input(rng, (batch, height, width, channels), kind)
    if params.get("pool_type") == "Max" and padding == "Valid":
        out_h = (height - k) // stride + 1
        out_w = (width - k) // stride + 1
        params["pool_size"] = min(int(params["pool_size"]), out_h, out_w)
        params["pool_stride"] = min(int(params["pool_stride"]), int(params["pool_size"]))
    record = LayerRecord("layer", layer_type, [], params, variables)
    return record, x


@st.composite
def transpose_layers(draw: st.DrawFn, layer_type: str) -> tuple[LayerRecord, np.ndarray]:
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    k = draw(st.sampled_from((3, 4)))
    channels = draw(st.integers(1, 6))
    filters = channels if layer_type == "DepthwiseConv2DTranspose" else draw(st.integers(1, 9))
    shape = (k, k, channels, 1 if layer_type == "DepthwiseConv2DTranspose" else filters)
    tail = draw(epilogue(filters, seed + 1, poolable=False))
    large = draw(st.booleans())
    variables = {
        "weights": rng.integers(-128, 128, shape).astype(np.int8),
        "input_shift": rng.integers(0, 32 if large else 4, channels).astype(np.uint8),
        **tail["variables"],
    }
    params = {"kernel_size": k, **tail["params"]}
    kind = draw(st.sampled_from(INPUT_KINDS))
    batch, height, width = draw(st.integers(1, 2)), draw(st.integers(1, 6)), draw(st.integers(1, 6))
    x = random_input(rng, (batch, height, width, channels), kind)
    return LayerRecord("layer", layer_type, [], params, variables), x


@st.composite
def dense_layers(draw: st.DrawFn) -> tuple[LayerRecord, np.ndarray]:
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    batch, height, width = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    channels = draw(st.integers(1, 8))
    length = height * width * channels
    units = draw(st.integers(1, 12))
    tail = draw(epilogue(units, seed + 1, poolable=False))
    large = draw(st.booleans())
    variables = {
        "weights": rng.integers(-128, 128, (length, units)).astype(np.int8),
        "input_shift": rng.integers(0, 32 if large else 4, length).astype(np.uint8),
        **tail["variables"],
    }
    params = {"units": units, **tail["params"]}
    x = random_input(rng, (batch, height, width, channels), draw(st.sampled_from(INPUT_KINDS)))
    return LayerRecord("layer", "Dense1D", [], params, variables), x


def assert_same(record: LayerRecord, *inputs: np.ndarray) -> None:
    expected = reference.run_layer(record, list(inputs))
    actual = hwmodel.run_layer(record, list(inputs))
    assert actual.dtype == expected.dtype
    assert actual.shape == expected.shape
    np.testing.assert_array_equal(actual, expected)
    # a prepared model run twice: the second run takes the known-shape fast paths
    executor = hwmodel._EXECUTORS[record.layer_type](record)
    for _ in range(2):
        again = executor.run(list(inputs))
        assert again.dtype == expected.dtype
        np.testing.assert_array_equal(again, expected)


@SETTINGS
@given(conv_layers("Conv2D"))
def test_conv2d_matches_the_reference(layer: tuple[LayerRecord, np.ndarray]) -> None:
    assert_same(*layer)


@SETTINGS
@given(conv_layers("InputConv2D"))
def test_input_conv2d_matches_the_reference(layer: tuple[LayerRecord, np.ndarray]) -> None:
    assert_same(*layer)


@SETTINGS
@given(conv_layers("DepthwiseConv2D"))
def test_depthwise_conv2d_matches_the_reference(layer: tuple[LayerRecord, np.ndarray]) -> None:
    assert_same(*layer)


@SETTINGS
@given(transpose_layers("Conv2DTranspose"))
def test_conv2d_transpose_matches_the_reference(layer: tuple[LayerRecord, np.ndarray]) -> None:
    assert_same(*layer)


@SETTINGS
@given(transpose_layers("DepthwiseConv2DTranspose"))
def test_depthwise_conv2d_transpose_matches_the_reference(
    layer: tuple[LayerRecord, np.ndarray],
) -> None:
    assert_same(*layer)


@SETTINGS
@given(dense_layers())
def test_dense1d_matches_the_reference(layer: tuple[LayerRecord, np.ndarray]) -> None:
    assert_same(*layer)


@SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    kinds=st.tuples(st.sampled_from(INPUT_KINDS), st.sampled_from(INPUT_KINDS)),
    output_bits=st.sampled_from(OUTPUT_BITS),
    buffer_bits=st.one_of(st.just(32), st.integers(8, 32)),
    channels=st.integers(1, 8),
)
def test_add_matches_the_reference(
    seed: int, kinds: tuple[str, str], output_bits: int, buffer_bits: int, channels: int
) -> None:
    rng = np.random.default_rng(seed)
    shape = (2, 3, 2, channels)
    record = LayerRecord(
        "add",
        "Add",
        ["a", "b"],
        {"output_bits": output_bits, "buffer_bits": buffer_bits, "post_op_buffer_bits": 32},
        {
            "a_shift": rng.integers(0, 32, channels).astype(np.uint8),
            "b_shift": rng.integers(0, 32, channels).astype(np.uint8),
            "output_shift": rng.integers(-31, 32, channels).astype(np.int8),
        },
    )
    a = random_input(rng, shape, kinds[0])
    b = random_input(rng, shape, kinds[1])
    assert_same(record, a, b)


@SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    kinds=st.lists(st.sampled_from(INPUT_KINDS), min_size=2, max_size=2),
    channels=st.lists(st.integers(1, 9), min_size=2, max_size=2),
    batch=st.integers(1, 2),
)
def test_concatenate_matches_the_reference(
    seed: int, kinds: list[str], channels: list[int], batch: int
) -> None:
    """Inputs of one dtype or of two (numpy's promotion), narrow or wide."""
    rng = np.random.default_rng(seed)
    inputs = [
        random_input(rng, (batch, 3, 2, c), kind) for kind, c in zip(kinds, channels, strict=False)
    ]
    names = [f"in{i}" for i in range(len(inputs))]
    record = LayerRecord("concat", "Concatenate", names, {}, {})
    assert_same(record, *inputs)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), magnitude=st.integers(11, 14), k=st.sampled_from((3, 5)))
def test_conv2d_float_path_in_several_chunks_matches_the_reference(
    seed: int, magnitude: int, k: int
) -> None:
    """Inputs too large for one exact float32 sum per window, small enough for chunks of it."""
    rng = np.random.default_rng(seed)
    channels, filters = 16, 5
    x = rng.integers(-(1 << magnitude), 1 << magnitude, (1, 6, 7, channels)).astype(np.int16)
    tail = {
        "bias": rng.integers(-128, 128, filters).astype(np.int8),
        "bias_shift": np.full(filters, 8, np.uint8),
        "output_scales": rng.integers(1, 256, filters).astype(np.uint8),
        "output_shift": np.full(filters, -20, np.int8),
    }
    record = LayerRecord(
        "conv",
        "Conv2D",
        [],
        {
            "kernel_size": k,
            "kernel_stride": 1,
            "padding": "Same",
            "activation": "NoActivation",
            "output_bits": 16,
            "buffer_bits": 28,
            "post_op_buffer_bits": 32,
        },
        {
            "weights": rng.integers(-128, 128, (k, k, channels, filters)).astype(np.int8),
            "input_shift": np.zeros(channels, np.uint8),
            **tail,
        },
    )
    model = HardwareModel([record])
    executor = model._executors[0]
    window = k * k * channels
    chunk = executor._chunk_for(1 << magnitude)
    assert 0 < chunk < window, "the case must need several float32 chunks"
    expected = reference.run_layer(record, [x])
    np.testing.assert_array_equal(model.run(x), expected)


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    layer_type=st.sampled_from(("Conv2D", "DepthwiseConv2D", "Dense1D")),
    output_bits=st.sampled_from((4, 8)),
    clipped_relu=st.booleans(),
)
def test_realistic_quantized_layers_match_the_reference(
    seed: int, layer_type: str, output_bits: int, clipped_relu: bool
) -> None:
    """8-bit layers as a quantizer emits them: the int32 requantization plan and its clamps."""
    rng = np.random.default_rng(seed)
    channels, filters = 8, 8
    if layer_type == "Dense1D":
        shape: tuple[int, ...] = (2 * 2 * channels, filters)
        x = rng.integers(-128, 128, (2, 2, 2, channels)).astype(np.int8)
        params: dict[str, int | str] = {"units": filters}
        shifts = rng.integers(0, 3, 2 * 2 * channels)
    else:
        filters = channels if layer_type == "DepthwiseConv2D" else filters
        shape = (3, 3, channels, 1 if layer_type == "DepthwiseConv2D" else filters)
        x = rng.integers(-128, 128, (1, 6, 6, channels)).astype(np.int8)
        params = {"kernel_size": 3, "kernel_stride": 1, "padding": "Same", "pool_type": "NoPooling"}
        shifts = rng.integers(0, 3, channels)
    record = LayerRecord(
        "layer",
        layer_type,
        [],
        {
            "activation": "ReLU",
            "output_bits": output_bits,
            "buffer_bits": 28,
            "post_op_buffer_bits": 32,
            **params,
        },
        {
            "weights": rng.integers(-128, 128, shape).astype(np.int8),
            "input_shift": shifts.astype(np.uint8),
            "bias": rng.integers(-128, 128, filters).astype(np.int8),
            "bias_shift": rng.integers(0, 13, filters).astype(np.uint8),
            "max_value": (
                rng.integers(1, 128, filters) if clipped_relu else np.full(filters, 127)
            ).astype(np.uint8),
            "max_value_shift": (
                rng.integers(8, 16, filters) if clipped_relu else np.full(filters, 31)
            ).astype(np.uint8),
            "output_scales": rng.integers(1, 256, filters).astype(np.uint8),
            "output_shift": rng.integers(-24, 0, filters).astype(np.int8),
        },
    )
    assert_same(record, x)
