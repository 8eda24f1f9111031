"""Hypothesis: the int32 requantization paths equal the int64 `finish_layer` bit for bit.

`hwmodel` runs steps 3-8 of a layer in int32 (`kernels.finish_clamped_int32`,
`kernels.finish_lut_int32`, and max pooling of their outputs) only when its plans prove that no
intermediate leaves int32. These tests draw the epilogue's parameters over their whole legal
ranges (accumulator and post-operation widths 2-32 bits, output widths 1-32, bias and bias shift,
ReLU ceilings, LUT scales, shifts and entries, output scales 0-255 and shifts -31..31) and
accumulators over all of int32 with the edges of every clip, run both paths on the same
accumulator and compare. Every example whose plan is refused is counted as such (the int64 path
is then the only one), and `test_typical_layers_are_planned` checks that the layers the compiler
writes do take the int32 paths.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from akidac.backends.akida import hwmodel, kernels
from akidac.target.layer_record import LayerRecord

SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


def _vector(draw: st.DrawFn, filters: int, low: int, high: int, dtype: type) -> np.ndarray:
    values = draw(st.lists(st.integers(low, high), min_size=filters, max_size=filters))
    return np.array(values, dtype=dtype)


@st.composite
def epilogue_records(
    draw: st.DrawFn, activations: tuple[str, ...] = ("NoActivation", "ReLU", "LUT")
) -> LayerRecord:
    """A Conv2D record whose steps 3-8 take any legal parameters (no pooling)."""
    filters = draw(st.integers(1, 4))
    params: dict[str, int | str] = {
        "buffer_bits": draw(st.integers(2, 32)),
        "post_op_buffer_bits": draw(st.integers(2, 32)),
        "output_bits": draw(st.integers(1, 32)),
        "activation": draw(st.sampled_from(activations)),
    }
    variables = {
        "bias": _vector(draw, filters, -128, 127, np.int8),
        "bias_shift": _vector(draw, filters, 0, 31, np.uint8),
        "output_scales": _vector(draw, filters, 0, 255, np.uint8),
        "output_shift": _vector(draw, filters, -31, 31, np.int8),
    }
    if params["activation"] == "ReLU":
        variables["max_value"] = _vector(draw, filters, 0, 255, np.uint8)
        variables["max_value_shift"] = _vector(draw, filters, 0, 31, np.uint8)
    elif params["activation"] == "LUT":
        variables["activation_scales"] = _vector(draw, filters, 0, 255, np.uint8)
        variables["activation_shift"] = _vector(draw, filters, -31, 31, np.int8)
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        top = 1 << draw(st.integers(0, 31))
        lut = rng.integers(-top, top, 2048, dtype=np.int64)
        lut[rng.integers(0, 2048, 8)] = rng.choice([INT32_MIN, INT32_MAX, 0, -1, 1], 8)
        variables["lut_values"] = lut.astype(np.int32)
    return LayerRecord("layer", "Conv2D", [], params, variables)


def accumulators(draw: st.DrawFn, epilogue: hwmodel._Epilogue, filters: int) -> np.ndarray:
    """(1, 1, M, F) int32: random over all of int32, the int32 and B-bit edges, and the edges
    of every clip the plans chose (where a wrong bound would show)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    edges = [INT32_MIN, INT32_MIN + 1, -1, 0, 1, INT32_MAX - 1, INT32_MAX]
    half_range = 1 << (epilogue.buffer_bits - 1)
    edges += [-half_range - 1, -half_range, -half_range + 1, half_range - 2, half_range - 1]
    plans = [epilogue.int32_params, *(epilogue.lut_int32_params or ())]
    for plan in plans:
        if plan is not None:
            for bound in np.concatenate([plan[0], plan[1]]).tolist():
                edges += [bound - 1, bound, bound + 1]
    edges = np.clip(np.array(edges, np.int64), INT32_MIN, INT32_MAX)
    spread = rng.integers(INT32_MIN, INT32_MAX, 64, dtype=np.int64, endpoint=True)
    small = rng.integers(-(1 << 12), 1 << 12, 64, dtype=np.int64)
    values = np.concatenate([edges, spread, small])
    acc = np.repeat(values[:, None], filters, axis=1)
    acc = np.concatenate([acc, rng.permuted(acc, axis=0)])  # filters meet different values
    return acc.astype(np.int32).reshape(1, 1, -1, filters)


def int64_path(epilogue: hwmodel._Epilogue, acc: np.ndarray) -> np.ndarray:
    """`kernels.finish_layer` alone: steps 3-8 in int64, as before any int32 plan."""
    _, out_h, out_w, filters = acc.shape
    rows, cols, top, left = out_h, out_w, 0, 0
    if epilogue.pool_kind == kernels.POOL_MAX:
        rows, top = epilogue._pool_axis(out_h)
        cols, left = epilogue._pool_axis(out_w)
    pool = kernels.PoolWindow(
        epilogue.pool_kind, epilogue.pool_size, epilogue.pool_stride, top, left
    )
    out = np.empty((acc.shape[0], rows, cols, filters), epilogue.kernel_dtype)
    kernels.finish_layer(acc, out_h, out_w, epilogue.stage, pool, out)
    return out.view(epilogue.dtype)


@SETTINGS
@given(st.data())
def test_int32_requantization_equals_int64(data: st.DataObject) -> None:
    record = data.draw(epilogue_records())
    filters = record.variables["bias"].shape[0]
    epilogue = hwmodel._Epilogue.from_record(record, filters)
    planned = epilogue.int32_params is not None or epilogue.lut_int32_params is not None
    event(f"{record.params['activation']}: {'int32' if planned else 'int64 only'}")
    acc = accumulators(data.draw, epilogue, filters)
    expected = int64_path(epilogue, acc)
    got = np.empty(acc.shape, epilogue.kernel_dtype)
    _, out_h, out_w, _ = acc.shape
    if epilogue.lut_int32_params is not None:
        # the kernel itself: `run` takes it only from LUT_INT32_MIN_FILTERS filters on
        index_plan, value_plan = epilogue.lut_int32_params
        lut, low, high = epilogue.lut32, epilogue.low, epilogue.high
        kernels.finish_lut_int32(acc, out_h, out_w, index_plan, lut, value_plan, low, high, got)
        got = got.view(epilogue.dtype)
    else:
        got = epilogue.run(record, acc, out_h, out_w)
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)
    if epilogue.lut_index_params is not None:
        # the table path of layers with few filters, whatever their number of filters
        table = hwmodel.lut_output_table(
            epilogue.lut,
            epilogue.post_bits,
            epilogue.out_scales,
            epilogue.out_shifts,
            epilogue.low,
            epilogue.high,
        ).astype(epilogue.kernel_dtype)
        by_table = np.empty(acc.shape, epilogue.kernel_dtype)
        kernels.finish_lut_table(acc, out_h, out_w, epilogue.lut_index_params, table, by_table)
        np.testing.assert_array_equal(by_table.view(epilogue.dtype), expected)


@SETTINGS
@given(st.data())
def test_max_pooled_outputs_equal_int64(data: st.DataObject) -> None:
    """A clamp activation with max pooling: the int32 outputs pooled equal the int64 path,
    which pools the biased accumulators and then activates and requantizes."""
    record = data.draw(epilogue_records(("NoActivation", "ReLU")))
    size = data.draw(st.integers(1, 3))
    record.params.update(
        pool_type="Max",
        pool_size=size,
        pool_stride=data.draw(st.integers(1, size)),
        padding=data.draw(st.sampled_from(("Same", "Valid"))),
    )
    filters = record.variables["bias"].shape[0]
    epilogue = hwmodel._Epilogue.from_record(record, filters)
    event("int32" if epilogue.int32_params is not None else "int64 only")
    values = accumulators(data.draw, epilogue, filters).reshape(-1, filters)
    height = data.draw(st.integers(size, 7))
    width = data.draw(st.integers(size, 7))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    picks = rng.integers(0, len(values), height * width)
    acc = np.ascontiguousarray(values[picks].reshape(1, height, width, filters))
    expected = int64_path(epilogue, acc)
    got = epilogue.run(record, acc, height, width)
    np.testing.assert_array_equal(got, expected)


def test_typical_layers_are_planned() -> None:
    """The layers the compiler writes (28-bit accumulator, 32-bit post-operations, 8-bit
    output, output shifts of about -8 to -20) take the int32 paths: ReLU, none, the LUT, and
    ReLU with max pooling."""
    rng = np.random.default_rng(3)
    filters = 32
    variables = {
        "bias": rng.integers(-128, 128, filters).astype(np.int8),
        "bias_shift": rng.integers(0, 12, filters).astype(np.uint8),
        "output_scales": rng.integers(1, 256, filters).astype(np.uint8),
        "output_shift": rng.integers(-20, -8, filters).astype(np.int8),
        "max_value": np.full(filters, 255, np.uint8),
        "max_value_shift": rng.integers(8, 16, filters).astype(np.uint8),
        "activation_scales": rng.integers(1, 256, filters).astype(np.uint8),
        "activation_shift": rng.integers(-20, -10, filters).astype(np.int8),
        "lut_values": rng.integers(-(1 << 15), 1 << 15, 2048).astype(np.int32),
    }
    base = {"buffer_bits": 28, "post_op_buffer_bits": 32, "output_bits": 8}
    forms = [
        {"activation": "NoActivation"},
        {"activation": "ReLU"},
        {"activation": "ReLU", "pool_type": "Max", "pool_size": 2, "pool_stride": 2},
    ]
    for form in forms:
        record = LayerRecord("layer", "Conv2D", [], {**base, **form}, variables)
        assert hwmodel._Epilogue.from_record(record, filters).int32_params is not None, form
    record = LayerRecord("layer", "Conv2D", [], {**base, "activation": "LUT"}, variables)
    assert hwmodel._Epilogue.from_record(record, filters).lut_int32_params is not None
