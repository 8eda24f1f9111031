"""Hypothesis: the hardware model's vector kernels equal the reference on wide layers too.

`test_hwmodel_vs_reference.py` draws narrow layers (at most 9 filters); the float32
convolution tiles filters by whole vectors (1, 2 or 4 vectors of 16 or 8 lanes) and the fused
depthwise kernel pads channels to whole vectors, so these tests draw up to 100 filters and 70
channels, every stride, padding and kernel size, batches (the 1×1 stride-1 convolution runs as
one GEMM over all the pixels of the batch, in blocks), inputs in one float32 chunk, in several,
or beyond the float32 bound (the int32 kernels), and every output width; half the layers have
the epilogue a quantizer emits, which the fused convolution kernels run, and a quarter of the
convolutions and depthwise layers are max pooled.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from akidac.target.layer_record import LayerRecord
from tests.property.test_hwmodel_vs_reference import assert_same, epilogue, random_input

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def wide_input(draw: st.DrawFn, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """An input in one of the test kinds, or int16 of a drawn magnitude (float32 chunks)."""
    kind = draw(st.sampled_from(("int8", "uint8", "extremes", "int32", "magnitude")))
    if kind != "magnitude":
        return random_input(rng, shape, kind)
    magnitude = draw(st.integers(7, 15))
    return rng.integers(-(1 << magnitude), 1 << magnitude, shape).astype(np.int16)


@st.composite
def mixed_epilogue(draw: st.DrawFn, rng: np.random.Generator, filters: int, seed: int) -> dict:
    """A random epilogue (`epilogue`, no pooling), or one as a quantizer emits it, for which
    the int32 requantization plan applies and the fused kernels run the whole layer."""
    if draw(st.booleans()):
        return draw(epilogue(filters, seed + 1, poolable=False))
    relu = draw(st.booleans())
    tail = {
        "params": {
            "activation": "ReLU" if relu else "NoActivation",
            "output_bits": draw(st.sampled_from((2, 4, 8, 12, 16, 32))),
            "buffer_bits": 28,
            "post_op_buffer_bits": 32,
        },
        "variables": {
            "bias": rng.integers(-128, 128, filters).astype(np.int8),
            "bias_shift": rng.integers(0, 13, filters).astype(np.uint8),
            "output_scales": rng.integers(1, 256, filters).astype(np.uint8),
            "output_shift": rng.integers(-24, 0, filters).astype(np.int8),
        },
    }
    if relu:
        tail["variables"]["max_value"] = rng.integers(1, 256, filters).astype(np.uint8)
        tail["variables"]["max_value_shift"] = rng.integers(0, 16, filters).astype(np.uint8)
    return tail


@st.composite
def wide_convs(draw: st.DrawFn) -> tuple[LayerRecord, np.ndarray]:
    """A Conv2D or InputConv2D with many filters (and channels, for Conv2D)."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    layer_type = draw(st.sampled_from(("Conv2D", "Conv2D", "InputConv2D")))
    if layer_type == "InputConv2D":
        k = draw(st.sampled_from((3, 4, 5, 7)))
        stride = draw(st.integers(1, min(k, 6)))
        channels = draw(st.sampled_from((1, 3)))
    else:
        k = draw(st.sampled_from((1, 1, 3, 5, 7)))
        stride = draw(st.integers(1, 2))
        channels = draw(st.integers(1, 24 if k <= 3 else 8))
    filters = draw(st.integers(1, 100))
    padding = draw(st.sampled_from(("Same", "SameUpper", "Valid")))
    minimum = k if padding == "Valid" else 1
    height = draw(st.integers(minimum, minimum + 8))
    width = draw(st.integers(minimum, minimum + 8))
    batch = draw(st.integers(1, 2))
    tail = draw(mixed_epilogue(rng, filters, seed))
    params = {"kernel_size": k, "kernel_stride": stride, "padding": padding, **tail["params"]}
    if padding != "Valid" and draw(st.booleans()):  # max pooling (its windows always fit)
        size = draw(st.integers(1, 3))
        params.update(pool_type="Max", pool_size=size, pool_stride=draw(st.integers(1, size)))
    weights = rng.integers(-128, 128, (k, k, channels, filters)).astype(np.int8)
    variables = {"weights": weights, **tail["variables"]}
    shape = (batch, height, width, channels)
    if layer_type == "InputConv2D":
        params["buffer_bits"] = 32
        variables["padding_value"] = rng.integers(0, 256, channels).astype(np.uint8)
        x = rng.integers(0, 256, shape).astype(np.uint8)
    else:
        shift_top = draw(st.sampled_from((0, 3, 31)))
        variables["input_shift"] = rng.integers(0, shift_top + 1, channels).astype(np.uint8)
        x = wide_input(draw, rng, shape)
    return LayerRecord("layer", layer_type, [], params, variables), x


@st.composite
def large_gemms(draw: st.DrawFn) -> tuple[LayerRecord, np.ndarray]:
    """A 1×1 stride-1 Conv2D over many pixels (several blocks of the fused GEMM, and a partial
    last block), mostly with the int32 plan, input shifts 0 or not."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    channels = draw(st.integers(1, 40))
    filters = draw(st.integers(1, 70))
    batch = draw(st.integers(1, 3))
    height, width = draw(st.integers(1, 20)), draw(st.integers(1, 20))
    tail = draw(mixed_epilogue(rng, filters, seed))
    params = {"kernel_size": 1, "kernel_stride": 1, "padding": "Same", **tail["params"]}
    shift_top = draw(st.sampled_from((0, 0, 3)))
    variables = {
        "weights": rng.integers(-128, 128, (1, 1, channels, filters)).astype(np.int8),
        "input_shift": rng.integers(0, shift_top + 1, channels).astype(np.uint8),
        **tail["variables"],
    }
    x = wide_input(draw, rng, (batch, height, width, channels))
    return LayerRecord("layer", "Conv2D", [], params, variables), x


@st.composite
def wide_depthwise(draw: st.DrawFn) -> tuple[LayerRecord, np.ndarray]:
    """A DepthwiseConv2D with up to 70 channels; mostly 3×3 with a clamp activation, the
    layer the fused kernels run (then max pooled, a quarter of the time when the padding is not
    Valid), with realistic or random requantization."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    channels = draw(st.integers(1, 70))
    k = draw(st.sampled_from((3, 3, 3, 5)))
    stride = draw(st.sampled_from((1, 1, 1, 2)))
    padding = draw(st.sampled_from(("Same", "SameUpper", "Valid")))
    minimum = k if padding == "Valid" else 1
    height = draw(st.integers(minimum, minimum + 8))
    width = draw(st.integers(minimum, minimum + 8))
    batch = draw(st.integers(1, 2))
    tail = draw(mixed_epilogue(rng, channels, seed))
    params = {"kernel_size": k, "kernel_stride": stride, "padding": padding, **tail["params"]}
    if padding != "Valid" and draw(st.booleans()):  # max pooling (its windows always fit)
        size = draw(st.integers(1, 3))
        params.update(pool_type="Max", pool_size=size, pool_stride=draw(st.integers(1, size)))
    shift_top = draw(st.sampled_from((0, 3, 31)))
    variables = {
        "weights": rng.integers(-128, 128, (k, k, channels, 1)).astype(np.int8),
        "input_shift": rng.integers(0, shift_top + 1, channels).astype(np.uint8),
        **tail["variables"],
    }
    x = wide_input(draw, rng, (batch, height, width, channels))
    return LayerRecord("layer", "DepthwiseConv2D", [], params, variables), x


@SETTINGS
@given(wide_convs())
def test_wide_convolutions_match_the_reference(layer: tuple[LayerRecord, np.ndarray]) -> None:
    assert_same(*layer)


@SETTINGS
@given(wide_depthwise())
def test_wide_depthwise_layers_match_the_reference(layer: tuple[LayerRecord, np.ndarray]) -> None:
    assert_same(*layer)


@SETTINGS
@given(large_gemms())
def test_large_1x1_convolutions_match_the_reference(layer: tuple[LayerRecord, np.ndarray]) -> None:
    assert_same(*layer)
