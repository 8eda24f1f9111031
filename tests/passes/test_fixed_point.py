"""Akida's fixed-point encoders round-trip within one LSB and respect the engine's limits."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from akidac.ir import reference
from akidac.passes.fixed_point import (
    add_rule_holds,
    add_shifts,
    decode_scale,
    encode_bias,
    encode_relu_max,
    encode_scale,
    min_safe_shift,
    quantize_weights,
    scale_is_exact,
)
from akidac.passes.lut import (
    INDEX_LIMIT,
    LUT_OFFSET,
    LUT_VALUE_MAX,
    build_table,
    encode_index_scale,
    index_points,
    lut_function,
)


def test_an_output_scale_is_an_8_bit_multiplier_within_half_an_lsb_of_the_ratio() -> None:
    ratios = np.exp2(np.random.default_rng(0).uniform(-17, 12, 5000))
    scales, shifts = encode_scale(ratios)
    assert scales.dtype == np.uint8 and shifts.dtype == np.int8
    assert (scales >= 128).all()
    error = np.abs(decode_scale(scales, shifts) - ratios)
    assert (error <= np.exp2(shifts.astype(float)) / 2 * (1 + 1e-12)).all()
    assert scale_is_exact(ratios, scales, shifts).all()


def test_tiny_ratios_keep_the_shift_at_the_safety_bound_and_never_below_minus_31() -> None:
    scales, shifts = encode_scale(np.array([2.0**-18, 2.0**-40]))
    assert (shifts == -24).all()
    assert scales[0] == 64 and scales[1] == 0
    assert not scale_is_exact(np.array([2.0**-40]), scales[1:], shifts[1:]).any()
    _, deep = encode_scale(np.array([2.0**-40]), min_shift=-60)
    assert int(deep[0]) == -31


def test_the_safe_shift_bound_is_minus_24_for_8_bit_outputs_and_minus_21_for_a_lut_index() -> None:
    assert min_safe_shift(127) == -24
    assert min_safe_shift(15) == -27
    assert min_safe_shift(INDEX_LIMIT) == -21


@settings(max_examples=300, deadline=None)
@given(
    acc=st.integers(-(2**31), 2**31 - 1),
    log_ratio=st.floats(-24.0, 2.0),
)
def test_the_32_bit_clip_before_the_shift_never_changes_an_8_bit_result(
    acc: int, log_ratio: float
) -> None:
    scales, shifts = encode_scale(np.array([2.0**log_ratio]))
    engine = reference.rounding_shift(
        reference.saturate(np.array([acc]) * scales.astype(np.int64), 32), shifts
    )
    exact = reference.rounding_shift(np.array([acc]) * scales.astype(np.int64), shifts)
    assert np.clip(engine, -128, 127)[0] == np.clip(exact, -128, 127)[0]


def test_a_bias_is_an_int8_mantissa_shifted_left_within_half_an_lsb() -> None:
    values = np.random.default_rng(1).normal(0, 1, 2000) * np.exp2(
        np.random.default_rng(2).uniform(0, 30, 2000)
    )
    bias, shift = encode_bias(values)
    assert bias.dtype == np.int8 and shift.dtype == np.uint8
    decoded = bias.astype(np.float64) * np.exp2(shift.astype(float))
    assert (np.abs(decoded - values) <= np.exp2(shift.astype(float)) / 2 + 1e-9).all()
    small_bias, small_shift = encode_bias(np.array([0.0, 3.4, -127.0, 127.6]))
    assert small_bias.tolist() == [0, 3, -127, 64] and small_shift.tolist() == [0, 0, 0, 1]


def test_a_relu_ceiling_is_an_unsigned_mantissa_shifted_left_within_half_an_lsb() -> None:
    values = np.exp2(np.random.default_rng(3).uniform(0, 34, 500))
    mantissa, shift = encode_relu_max(values)
    decoded = mantissa.astype(np.float64) * np.exp2(shift.astype(float))
    assert (np.abs(decoded - values) <= np.exp2(shift.astype(float)) / 2 + 1e-9).all()


@pytest.mark.parametrize("bits", [4, 8])
def test_weights_are_symmetric_per_output_channel_within_half_a_step(bits: int) -> None:
    weights = (
        np.random.default_rng(4).normal(0, 1, (6, 3, 3, 3)) * np.arange(1, 7)[:, None, None, None]
    )
    q, scale = quantize_weights(weights, bits, axis=0)
    limit = 2 ** (bits - 1) - 1
    assert q.dtype == np.int8 and int(np.abs(q).max()) == limit
    assert (
        np.abs(q * scale[:, None, None, None] - weights) <= scale[:, None, None, None] / 2 + 1e-12
    ).all()
    q_t, scale_t = quantize_weights(weights.transpose(1, 0, 2, 3), bits, axis=1)
    np.testing.assert_array_equal(q_t, q.transpose(1, 0, 2, 3))
    np.testing.assert_allclose(scale_t, scale)


def test_add_shifts_put_the_unit_at_the_finer_operand_and_satisfy_the_rule() -> None:
    assert add_shifts(0, 2, 1) == (0, 2, -1)
    assert add_shifts(-3, -1, -5) == (0, 2, 2)
    assert add_rule_holds(*add_shifts(0, 2, 1))
    assert not add_rule_holds(*add_shifts(0, 0, 5))
    assert not add_rule_holds(*add_shifts(6, 0, 0))
    for k_a, k_b, k_out in [(0, 0, 0), (1, 4, 3), (2, -2, -2)]:
        a_shift, b_shift, out_shift = add_shifts(k_a, k_b, k_out)
        assert out_shift + max(a_shift, b_shift) == max(k_a, k_b) - k_out


@pytest.mark.parametrize(
    "function", ["gelu", "swish", "hardswish", "leaky_relu", "sigmoid", "tanh", "elu"]
)
def test_a_lut_table_holds_the_function_within_one_lsb(function: str) -> None:
    step = 4.0 / INDEX_LIMIT
    table, unit = build_table(function, None, step)
    assert table.dtype == np.int32 and table.shape == (2048,)
    assert int(np.abs(table).max()) == LUT_VALUE_MAX
    expected = lut_function(function)(index_points(step))
    assert np.abs(table * unit - expected).max() <= unit / 2 + 1e-12
    assert table[LUT_OFFSET] == 0 or function == "sigmoid"


def test_the_lut_index_of_the_engine_follows_the_real_pre_activation_to_8_bit_precision() -> None:
    acc_scale = np.array([1.7e-4, 3.1e-5, 9.0e-3])
    step = 3.0 / INDEX_LIMIT
    scales, shifts = encode_index_scale(acc_scale, step)
    acc = np.random.default_rng(5).integers(-40000, 40000, (1, 1, 200, 3))
    scaled = reference.saturate(acc * scales.astype(np.int64), 32)
    index = reference.saturate(reference.rounding_shift(scaled, shifts), 11)
    exact = np.clip(acc * acc_scale / step, -1024, 1023)
    # half a step of rounding, plus the 8-bit multiplier's relative error of at most 1/256
    assert (np.abs(index - exact) <= 0.5 + np.abs(exact) / 256 + 1e-9).all()
