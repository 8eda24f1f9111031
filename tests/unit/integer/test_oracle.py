"""An independent Python-int oracle of the Akida pipeline, with every saturation switchable.

The oracle computes each output element with plain Python integers (no NumPy arithmetic, no
shared code with the reference). With every clip switched off it gives the mathematically exact,
unsaturated result. Two kinds of test:
- random cases built so that nothing saturates: the reference equals the unsaturated oracle;
- one constructed case per saturation (shifted-input clip, int32 wrap, accumulator clip, bias
  clip, bias-sum clip, LUT scale clip, LUT index clip, GAP running clip, output scale clip,
  output range clip, Add operand and sum clips): the reference equals the fully clipped oracle,
  and differs from the oracle without that one clip exactly at the elements where the case
  was built to saturate. So every saturation in the reference is one the semantics intend.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from itertools import product

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from akidac.ir import reference
from akidac.target.layer_record import LayerRecord


@dataclass(frozen=True)
class Clips:
    """Which saturations the oracle applies (all by default)."""

    shifted_input: bool = True
    wrap32: bool = True
    accumulator: bool = True
    bias: bool = True
    bias_sum: bool = True
    lut_scale: bool = True
    lut_index: bool = True
    gap: bool = True
    output_scale: bool = True
    output_range: bool = True
    add_operands: bool = True
    add_sum: bool = True


ALL_CLIPS = Clips()
NO_CLIPS = Clips(**{field.name: False for field in fields(Clips)})


def sat(value: int, bits: int, enabled: bool = True) -> int:
    if not enabled:
        return value
    return min(max(value, -(1 << (bits - 1))), (1 << (bits - 1)) - 1)


def wrap32(value: int, enabled: bool = True) -> int:
    return ((value + (1 << 31)) % (1 << 32)) - (1 << 31) if enabled else value


def shift(value: int, amount: int) -> int:
    """Right shift rounding half up (ties toward +infinity) for amount < 0, left shift else."""
    if amount < 0:
        return (value + (1 << (-amount - 1))) >> -amount
    return value << amount


def pads(size: int, kernel: int, stride: int, padding: str) -> int:
    """The pad before the first pixel of one axis (README, "Padding")."""
    if padding == "Valid":
        return 0
    total = max(kernel - stride, 0) if size % stride == 0 else max(kernel - size % stride, 0)
    return total - total // 2 if padding == "SameUpper" else total // 2


def ints(array: np.ndarray) -> list:
    """A NumPy array as nested lists of Python ints."""
    return np.asarray(array).astype(object).tolist()


def oracle_sums(record: LayerRecord, x: np.ndarray, clips: Clips) -> list:
    """Σ xs·w per output element (N, H, W, F) as Python ints, before wrap and clips."""
    kind = record.layer_type
    p = record.params
    v = record.variables
    xl = ints(x)
    n_batch, height, width, channels = x.shape
    weights = ints(v["weights"])
    buffer_bits = int(p["buffer_bits"])
    if kind == "InputConv2D":

        def xs(n: int, i: int, j: int, c: int) -> int:
            return xl[n][i][j][c]

    else:
        shifts = ints(v["input_shift"])

        def xs(n: int, i: int, j: int, c: int) -> int:
            flat = (i * width + j) * channels + c if kind == "Dense1D" else c
            return sat(xl[n][i][j][c] << shifts[flat], buffer_bits, clips.shifted_input)

    if kind == "Dense1D":
        units = len(weights[0])
        sums = []
        for n in range(n_batch):
            row = [0] * units
            for i, j, c in product(range(height), range(width), range(channels)):
                e = (i * width + j) * channels + c
                for f in range(units):
                    row[f] += xs(n, i, j, c) * weights[e][f]
            sums.append([[row]])
        return sums
    k = int(p["kernel_size"])
    if kind in ("Conv2DTranspose", "DepthwiseConv2DTranspose"):
        depthwise = kind == "DepthwiseConv2DTranspose"
        filters = channels if depthwise else len(weights[0][0][0])
        out = [
            [[[0] * filters for _ in range(2 * width)] for _ in range(2 * height)]
            for _ in range(n_batch)
        ]
        crop = (k - 2) // 2
        for n, i, j, a, b, c in product(
            range(n_batch), range(height), range(width), range(k), range(k), range(channels)
        ):
            row, col = 2 * i + a - crop, 2 * j + b - crop
            if 0 <= row < 2 * height and 0 <= col < 2 * width:
                if depthwise:
                    out[n][row][col][c] += xs(n, i, j, c) * weights[a][b][c][0]
                else:
                    for f in range(filters):
                        out[n][row][col][f] += xs(n, i, j, c) * weights[a][b][c][f]
        return out
    stride = int(p["kernel_stride"])
    padding = str(p["padding"])
    top, left = pads(height, k, stride, padding), pads(width, k, stride, padding)
    total_h = max(k - stride, 0) if height % stride == 0 else max(k - height % stride, 0)
    total_w = max(k - stride, 0) if width % stride == 0 else max(k - width % stride, 0)
    if padding == "Valid":
        total_h = total_w = 0
    out_h = (height + total_h - k) // stride + 1
    out_w = (width + total_w - k) // stride + 1
    depthwise = kind == "DepthwiseConv2D"
    filters = channels if depthwise else len(weights[0][0][0])
    fill = ints(v["padding_value"]) if kind == "InputConv2D" else [0] * channels
    flip = kind != "InputConv2D"

    def pixel(n: int, i: int, j: int, c: int) -> int:
        if 0 <= i < height and 0 <= j < width:
            return xs(n, i, j, c)
        return fill[c]

    out = []
    for n in range(n_batch):
        rows = []
        for i in range(out_h):
            cols = []
            for j in range(out_w):
                values = []
                for f in range(filters):
                    total = 0
                    for a, b in product(range(k), range(k)):
                        ka, kb = (k - 1 - a, k - 1 - b) if flip else (a, b)
                        r, q = i * stride + a - top, j * stride + b - left
                        if depthwise:
                            total += pixel(n, r, q, f) * weights[ka][kb][f][0]
                        else:
                            for c in range(channels):
                                total += pixel(n, r, q, c) * weights[ka][kb][c][f]
                    values.append(total)
                cols.append(values)
            rows.append(cols)
        out.append(rows)
    return out


def oracle_layer(
    record: LayerRecord,
    inputs: list[np.ndarray],
    clips: Clips = ALL_CLIPS,
    lut_function: Callable[[int], int] | None = None,
) -> np.ndarray:
    """One layer's output as an int64 array (object ints when a disabled clip overflows)."""
    p = record.params
    v = record.variables
    bits = int(p["output_bits"])
    if record.layer_type == "Add":
        a, b = (ints(array) for array in inputs)
        buffer_bits = int(p["buffer_bits"])
        a_shift, b_shift, out_shift = (
            ints(v[key]) for key in ("a_shift", "b_shift", "output_shift")
        )
        low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        out = np.empty(inputs[0].shape, dtype=object)
        for index in np.ndindex(*inputs[0].shape):
            c = index[-1]
            av = a[index[0]][index[1]][index[2]][c]
            bv = b[index[0]][index[1]][index[2]][c]
            left = sat(av << a_shift[c], buffer_bits, clips.add_operands)
            right = sat(bv << b_shift[c], buffer_bits, clips.add_operands)
            total = shift(sat(left + right, buffer_bits, clips.add_sum), out_shift[c])
            out[index] = min(max(total, low), high) if clips.output_range else total
        return out
    sums = np.array(oracle_sums(record, inputs[0], clips), dtype=object)
    buffer_bits, post_bits = int(p["buffer_bits"]), int(p["post_op_buffer_bits"])
    bias = ints(v["bias"])
    bias_shift = ints(v["bias_shift"])
    n_batch, out_h, out_w, filters = sums.shape
    acc = np.empty(sums.shape, dtype=object)
    for n, i, j, f in np.ndindex(*sums.shape):
        value = sat(wrap32(sums[n, i, j, f], clips.wrap32), buffer_bits, clips.accumulator)
        scaled_bias = sat(bias[f] << bias_shift[f], post_bits, clips.bias)
        acc[n, i, j, f] = sat(value + scaled_bias, post_bits, clips.bias_sum)
    pool_type = p.get("pool_type", "NoPooling")
    if pool_type == "Max":
        size, stride = int(p["pool_size"]), int(p["pool_stride"])
        if p.get("padding") == "Valid":
            pooled_h, pooled_w, top, left = (
                (out_h - size) // stride + 1,
                (out_w - size) // stride + 1,
                0,
                0,
            )
        else:
            pooled_h, pooled_w = -(-out_h // stride), -(-out_w // stride)
            top, left = pads(out_h, size, stride, "Same"), pads(out_w, size, stride, "Same")
        pooled = np.empty((n_batch, pooled_h, pooled_w, filters), dtype=object)
        for n, i, j, f in np.ndindex(*pooled.shape):
            window = [
                acc[n, r, q, f]
                for r in range(i * stride - top, i * stride - top + size)
                for q in range(j * stride - left, j * stride - left + size)
                if 0 <= r < out_h and 0 <= q < out_w
            ]
            pooled[n, i, j, f] = max(window)
        acc = pooled
    activation = p.get("activation", "NoActivation")
    if activation == "ReLU":
        ceilings = [
            m << s for m, s in zip(ints(v["max_value"]), ints(v["max_value_shift"]), strict=True)
        ]
        for index in np.ndindex(*acc.shape):
            acc[index] = min(max(acc[index], 0), ceilings[index[-1]])
    elif activation == "LUT":
        table = ints(v["lut_values"])
        scales, shifts = ints(v["activation_scales"]), ints(v["activation_shift"])
        for index in np.ndindex(*acc.shape):
            f = index[-1]
            scaled = sat(acc[index] * scales[f], post_bits, clips.lut_scale)
            lut_index = sat(shift(scaled, shifts[f]), 11, clips.lut_index)
            if -1024 <= lut_index <= 1023:
                acc[index] = table[lut_index + 1024]
            else:
                assert lut_function is not None, "an unclipped index needs the LUT as a function"
                acc[index] = lut_function(lut_index)
    if pool_type == "Average":
        totals = np.zeros((acc.shape[0], 1, 1, acc.shape[3]), dtype=object)
        for n, f in product(range(acc.shape[0]), range(acc.shape[3])):
            total = 0
            for i, j in product(range(acc.shape[1]), range(acc.shape[2])):
                total = sat(total + acc[n, i, j, f], post_bits, clips.gap)
            totals[n, 0, 0, f] = total
        acc = totals
    scales, shifts = ints(v["output_scales"]), ints(v["output_shift"])
    low, high = (0, (1 << bits) - 1) if bits <= 4 else (-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    out = np.empty(acc.shape, dtype=object)
    for index in np.ndindex(*acc.shape):
        f = index[-1]
        value = shift(sat(acc[index] * scales[f], post_bits, clips.output_scale), shifts[f])
        out[index] = min(max(value, low), high) if clips.output_range else value
    return out


def assert_equal_ints(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.shape == expected.shape
    assert [int(value) for value in actual.ravel()] == [int(value) for value in expected.ravel()]


# ---------------------------------------------------------------------------------------------
# Random cases in which nothing saturates
# ---------------------------------------------------------------------------------------------

UNSATURATED_TYPES = (
    "Conv2D",
    "InputConv2D",
    "DepthwiseConv2D",
    "Conv2DTranspose",
    "DepthwiseConv2DTranspose",
    "Dense1D",
)


def quiet_record(rng: np.random.Generator, layer_type: str, draw: Callable) -> tuple:
    """A small record and input whose every intermediate stays far from every clip."""
    channels = 3 if layer_type == "InputConv2D" else int(rng.integers(1, 4))
    height, width = int(rng.integers(3, 6)), int(rng.integers(3, 6))
    x_high = 256 if layer_type == "InputConv2D" else 128
    x = rng.integers(0 if x_high == 256 else -128, x_high, (2, height, width, channels))
    x = x.astype(np.uint8 if x_high == 256 else np.int8)
    params: dict[str, int | str] = {
        "output_bits": 32,
        "buffer_bits": 28,
        "post_op_buffer_bits": 32,
        "activation": draw(st.sampled_from(("NoActivation", "ReLU", "LUT"))),
    }
    filters = int(rng.integers(1, 4))
    if layer_type in ("DepthwiseConv2D", "DepthwiseConv2DTranspose"):
        filters = channels
    if layer_type == "Dense1D":
        w_shape: tuple[int, ...] = (height * width * channels, filters)
        shifts = rng.integers(0, 3, height * width * channels)
    else:
        k = draw(st.sampled_from((3, 4) if "Transpose" in layer_type else (3, 5)))
        params["kernel_size"] = k
        w_shape = (k, k, channels, 1 if layer_type.startswith("Depthwise") else filters)
        shifts = rng.integers(0, 3, channels)
        if "Transpose" not in layer_type:
            params["kernel_stride"] = draw(st.integers(1, 2))
            params["padding"] = draw(st.sampled_from(("Same", "SameUpper", "Valid")))
            if params["padding"] == "Valid":
                k_fit = min(height, width)
                params["kernel_size"] = k = min(k, k_fit if k_fit % 2 else k_fit - 1)
                w_shape = (k, k, *w_shape[2:])
            params["pool_type"] = draw(st.sampled_from(("NoPooling", "Max", "Average")))
            if params["pool_type"] == "Max":
                params["pool_size"], params["pool_stride"] = 1, 1
                if params["padding"] != "Valid":
                    params["pool_size"], params["pool_stride"] = 2, draw(st.integers(1, 2))
    variables = {
        "weights": rng.integers(-128, 128, w_shape).astype(np.int8),
        "bias": rng.integers(-128, 128, filters).astype(np.int8),
        "bias_shift": rng.integers(0, 9, filters).astype(np.uint8),
        "output_scales": rng.integers(0, 16, filters).astype(np.uint8),
        "output_shift": rng.integers(-8, 3, filters).astype(np.int8),
    }
    if layer_type == "InputConv2D":
        variables["padding_value"] = rng.integers(0, 256, channels).astype(np.uint8)
    else:
        variables["input_shift"] = shifts.astype(np.uint8)
    if params["activation"] == "ReLU":
        variables["max_value"] = rng.integers(0, 256, filters).astype(np.uint8)
        variables["max_value_shift"] = rng.integers(8, 20, filters).astype(np.uint8)
    elif params["activation"] == "LUT":
        variables["activation_scales"] = rng.integers(0, 4, filters).astype(np.uint8)
        variables["activation_shift"] = np.full(filters, -14, np.int8)
        variables["lut_values"] = rng.integers(-(1 << 20), 1 << 20, 2048).astype(np.int32)
    return LayerRecord("layer", layer_type, [], params, variables), x


@settings(max_examples=25, deadline=None)
@given(data=st.data(), layer_type=st.sampled_from(UNSATURATED_TYPES), seed=st.integers(0, 2**32))
def test_without_saturation_the_reference_is_the_exact_unsaturated_arithmetic(
    data: st.DataObject, layer_type: str, seed: int
) -> None:
    record, x = quiet_record(np.random.default_rng(seed), layer_type, data.draw)
    unsaturated = oracle_layer(record, [x], NO_CLIPS)
    assert_equal_ints(oracle_layer(record, [x], ALL_CLIPS), unsaturated)  # truly nothing clips
    assert_equal_ints(reference.run_layer(record, [x]), unsaturated)


def test_without_saturation_add_is_the_exact_shifted_sum() -> None:
    rng = np.random.default_rng(7)
    a = rng.integers(-128, 128, (2, 3, 3, 4)).astype(np.int8)
    b = rng.integers(0, 16, (2, 3, 3, 4)).astype(np.uint8)
    record = LayerRecord(
        "add",
        "Add",
        ["a", "b"],
        {"output_bits": 16, "buffer_bits": 32},
        {
            "a_shift": np.array([0, 1, 2, 3], np.uint8),
            "b_shift": np.array([4, 3, 2, 0], np.uint8),
            "output_shift": np.array([-1, -2, 0, 1], np.int8),
        },
    )
    unsaturated = oracle_layer(record, [a, b], NO_CLIPS)
    assert_equal_ints(oracle_layer(record, [a, b], ALL_CLIPS), unsaturated)
    assert_equal_ints(reference.run_layer(record, [a, b]), unsaturated)


# ---------------------------------------------------------------------------------------------
# One constructed case per saturation
# ---------------------------------------------------------------------------------------------


@dataclass
class SaturationCase:
    """A layer built so that `clip` binds exactly at the output elements of `intended`."""

    clip: str
    record: LayerRecord
    inputs: list[np.ndarray]
    intended: np.ndarray
    lut_function: Callable[[int], int] | None = None


def conv1x1(
    weights: list[list[int]], shifts: list[int], tail: dict, **params: int | str
) -> LayerRecord:
    """A Conv2D 1×1 with weights[c][f]; `tail` holds bias/scales/shifts overrides."""
    filters = len(weights[0])
    variables = {
        "weights": np.array(weights, np.int8).reshape(1, 1, len(weights), filters),
        "input_shift": np.array(shifts, np.uint8),
        "bias": np.zeros(filters, np.int8),
        "bias_shift": np.zeros(filters, np.uint8),
        "output_scales": np.ones(filters, np.uint8),
        "output_shift": np.zeros(filters, np.int8),
    }
    variables.update(
        {
            key: np.asarray(value, variables.get(key, np.zeros(1, np.int8)).dtype)
            for key, value in tail.items()
            if key in variables
        }
    )
    variables.update({key: value for key, value in tail.items() if key not in variables})
    settings_ = {
        "kernel_size": 1,
        "kernel_stride": 1,
        "padding": "Same",
        "activation": "NoActivation",
        "pool_type": "NoPooling",
        "output_bits": 32,
        "buffer_bits": 28,
        "post_op_buffer_bits": 32,
        **params,
    }
    return LayerRecord("conv", "Conv2D", [], settings_, variables)


def pixels(values: list[list[int]], dtype: type = np.int8) -> np.ndarray:
    """A (1, 1, P, C) input: one pixel per row of `values`."""
    return np.array(values, dtype).reshape(1, 1, len(values), len(values[0]))


def saturation_cases() -> list[SaturationCase]:
    cases = []
    # shifted input: x << 26 clips to 2^27 - 1 when x >= 2; channel 1 (x = -1) keeps the sum
    # inside every other range.
    x = pixels([[1, -1], [2, -1], [3, -1], [0, -1]])
    cases.append(
        SaturationCase(
            "shifted_input",
            conv1x1([[1], [1]], [26, 26], {}),
            [x],
            np.array([False, True, True, False]).reshape(1, 1, 4, 1),
        )
    )
    # int32 wrap: terms of 2^26 · 12 sum past 2^31 only when all three inputs are 1.
    x = pixels([[1, 1, 1], [1, 0, 1], [1, 1, 0], [0, 0, 0]])
    cases.append(
        SaturationCase(
            "wrap32",
            conv1x1([[12], [12], [12]], [26, 26, 26], {}),
            [x],
            np.array([True, False, False, False]).reshape(1, 1, 4, 1),
        )
    )
    # accumulator: a sum of 2^26 · k exceeds 2^27 - 1 for k >= 2 (and stays below 2^31).
    x = pixels([[1], [2], [-3], [-1]])
    cases.append(
        SaturationCase(
            "accumulator",
            conv1x1([[3]], [25], {}, output_bits=32),
            [x],
            np.array([False, True, True, False]).reshape(1, 1, 4, 1),
        )
    )
    # bias: 127 << 26 clips to 2^31 - 1 (filter 0); with a negative sum the difference shows.
    x = pixels([[-1], [-1]])
    cases.append(
        SaturationCase(
            "bias",
            conv1x1([[100, 100]], [20], {"bias": [127, 127], "bias_shift": [26, 20]}),
            [x],
            np.array([[True, False], [True, False]]).reshape(1, 1, 2, 2),
        )
    )
    # bias sum: sum + (127 << 24) passes 2^31 - 1 for the large positive sum. This clip never
    # shows in a layer's output: every later stage (ReLU, LUT scale, GAP sum, output scale)
    # clips at the same P bits first, so the oracle without it agrees everywhere.
    x = pixels([[127], [0], [-127]])
    cases.append(
        SaturationCase(
            "bias_sum",
            conv1x1([[127]], [13], {"bias": [127], "bias_shift": [24]}),
            [x],
            np.zeros((1, 1, 3, 1), bool),
        )
    )
    # LUT scale: acc · 255 passes 2^31 for |acc| = 127 << 20 (filter 0 scale 255, filter 1
    # scale 1); acc = 127 << 14 stays below.
    identity = np.arange(-1024, 1024, dtype=np.int32)
    lut_tail = {
        "activation_scales": np.array([255, 1], np.uint8),
        "activation_shift": np.array([-24, -24], np.int8),
        "lut_values": identity,
    }
    x = pixels([[64], [1], [-64]])
    cases.append(
        SaturationCase(
            "lut_scale",
            conv1x1([[127, 127]], [14], lut_tail, activation="LUT"),
            [x],
            np.array([[True, False], [False, False], [True, False]]).reshape(1, 1, 3, 2),
        )
    )
    # LUT index: an identity LUT indexed by acc >> 4 clips at 1023 / -1024.
    index_tail = {
        "activation_scales": np.array([1], np.uint8),
        "activation_shift": np.array([-4], np.int8),
        "lut_values": identity,
    }
    x = pixels([[127], [10], [-127], [-10]])
    cases.append(
        SaturationCase(
            "lut_index",
            conv1x1([[127]], [3], index_tail, activation="LUT"),
            [x],
            np.array([True, False, True, False]).reshape(1, 1, 4, 1),
            lut_function=lambda i: i,
        )
    )
    # GAP: a sign LUT (±2^30) turns filter 0's pixels into 2^30, 2^30, 2^30, -2^30: the running
    # sum saturates at the second term, so the order matters; filter 1 alternates and never
    # reaches the clip.
    sign_lut = np.where(identity > 0, 1 << 30, np.where(identity < 0, -(1 << 30), 0))
    gap_tail = {
        "activation_scales": np.array([1, 1], np.uint8),
        "activation_shift": np.array([0, 0], np.int8),
        "lut_values": sign_lut.astype(np.int32),
    }
    x = pixels([[1, 1], [1, -1], [1, 1], [-1, -1]])
    cases.append(
        SaturationCase(
            "gap",
            conv1x1([[1, 0], [0, 1]], [0, 0], gap_tail, activation="LUT", pool_type="Average"),
            [x],
            np.array([[True, False]]).reshape(1, 1, 1, 2),
        )
    )
    # output scale: acc · 255 passes 2^31 for acc = 127 · 127 << 13 (filter 0 only).
    x = pixels([[127], [1]])
    cases.append(
        SaturationCase(
            "output_scale",
            conv1x1([[127, 127]], [13], {"output_scales": [255, 1], "output_shift": [-8, -8]}),
            [x],
            np.array([[True, False], [False, False]]).reshape(1, 1, 2, 2),
        )
    )
    # output range: 8-bit output of acc >> 4 clips beyond [-128, 127].
    x = pixels([[100], [5], [-100], [-5]])
    cases.append(
        SaturationCase(
            "output_range",
            conv1x1([[100]], [0], {"output_shift": [-4]}, output_bits=8),
            [x],
            np.array([True, False, True, False]).reshape(1, 1, 4, 1),
        )
    )
    # Add operands: a << 30 clips for |a| >= 2 (channel 0); b << 1 never clips, and its sign
    # keeps the sum away from the sum clip.
    add = LayerRecord(
        "add",
        "Add",
        ["a", "b"],
        {"output_bits": 32, "buffer_bits": 32},
        {
            "a_shift": np.array([30, 0], np.uint8),
            "b_shift": np.array([1, 1], np.uint8),
            "output_shift": np.array([0, 0], np.int8),
        },
    )
    a = np.array([[1, 5], [2, 5], [-3, 5]], np.int8).reshape(1, 1, 3, 2)
    b = np.array([[-1, 1], [-1, 1], [1, 1]], np.int8).reshape(1, 1, 3, 2)
    cases.append(
        SaturationCase(
            "add_operands",
            add,
            [a, b],
            np.array([[False, False], [True, False], [True, False]]).reshape(1, 1, 3, 2),
        )
    )
    # Add sum: with B = 24, (1 << 22) + (1 << 22) passes 2^23 - 1; the 32-bit output range
    # would not clip it.
    add_sum = replace(
        add,
        params={"output_bits": 32, "buffer_bits": 24},
        variables={
            **add.variables,
            "a_shift": np.array([22, 0], np.uint8),
            "b_shift": np.array([22, 1], np.uint8),
        },
    )
    a = np.array([[1, 5], [-1, 5]], np.int8).reshape(1, 1, 2, 2)
    b = np.array([[1, 1], [1, 1]], np.int8).reshape(1, 1, 2, 2)
    cases.append(
        SaturationCase(
            "add_sum",
            add_sum,
            [a, b],
            np.array([[True, False], [False, False]]).reshape(1, 1, 2, 2),
        )
    )
    return cases


SATURATION_CASES = saturation_cases()


def test_every_saturation_of_the_pipeline_has_a_constructed_case() -> None:
    assert {case.clip for case in SATURATION_CASES} == {field.name for field in fields(Clips)}


@pytest.mark.parametrize("case", SATURATION_CASES, ids=[case.clip for case in SATURATION_CASES])
def test_the_reference_saturates_exactly_where_the_semantics_intend(case: SaturationCase) -> None:
    clipped = oracle_layer(case.record, case.inputs, ALL_CLIPS, case.lut_function)
    actual = reference.run_layer(case.record, case.inputs)
    assert_equal_ints(actual, clipped)
    without = oracle_layer(
        case.record, case.inputs, replace(ALL_CLIPS, **{case.clip: False}), case.lut_function
    )
    differs = np.array(
        [int(a) != int(b) for a, b in zip(actual.ravel(), without.ravel(), strict=True)]
    )
    np.testing.assert_array_equal(differs.reshape(case.intended.shape), case.intended)


# ---------------------------------------------------------------------------------------------
# The worked examples of docs/integer-semantics.md
# ---------------------------------------------------------------------------------------------


def doc_record(layer_type: str, params: dict, variables: dict) -> LayerRecord:
    """A record with the defaults of the documented examples (identity requantization)."""
    defaults = {"buffer_bits": 28, "post_op_buffer_bits": 32, "activation": "NoActivation"}
    if layer_type in ("Conv2D", "DepthwiseConv2D", "InputConv2D"):
        defaults.update(kernel_stride=1, padding="Same", pool_type="NoPooling")
    dtypes = {
        "weights": np.int8,
        "bias": np.int8,
        "output_shift": np.int8,
        "activation_shift": np.int8,
        "lut_values": np.int32,
    }
    arrays = {key: np.array(value, dtypes.get(key, np.uint8)) for key, value in variables.items()}
    return LayerRecord("doc", layer_type, [], {**defaults, **params}, arrays)


def documented_examples() -> dict[str, tuple[LayerRecord, list[np.ndarray], list]]:
    identity = {"bias": [0], "bias_shift": [0], "output_scales": [1], "output_shift": [0]}
    w3 = np.array([[1, 0, -1], [2, 1, 0], [0, -1, 1]]).reshape(3, 3, 1, 1)
    x3 = np.array([[1, 2, 0], [-1, 3, 1], [0, 1, -2]], np.int8).reshape(1, 3, 3, 1)
    image = np.arange(10, 170, 10, dtype=np.uint8).reshape(1, 4, 4, 1)
    depthwise_x = np.stack(
        [np.arange(1, 10).reshape(3, 3), np.array([[1, 0, -1], [0, 2, 0], [-1, 0, 1]])], -1
    ).astype(np.int8)[None]
    depthwise_w = np.zeros((3, 3, 2, 1), np.int8)
    depthwise_w[1, 2, 0, 0] = 1
    depthwise_w[1, 1, 1, 0] = -1
    lut = np.clip(np.arange(-1024, 1024) * 2, -300, 300)
    return {
        "conv2d": (
            doc_record(
                "Conv2D",
                {"kernel_size": 3, "activation": "ReLU", "output_bits": 8},
                {
                    "weights": w3,
                    "input_shift": [1],
                    "bias": [3],
                    "bias_shift": [2],
                    "max_value": [3],
                    "max_value_shift": [3],
                    "output_scales": [3],
                    "output_shift": [-2],
                },
            ),
            [x3],
            [18, 15, 5, 17, 12, 12, 14, 0, 9],
        ),
        "max pooling": (
            doc_record(
                "Conv2D",
                {
                    "kernel_size": 3,
                    "pool_type": "Max",
                    "pool_size": 2,
                    "pool_stride": 2,
                    "output_bits": 8,
                },
                {
                    "weights": w3,
                    "input_shift": [1],
                    "bias": [-3],
                    "bias_shift": [3],
                    "output_scales": [1],
                    "output_shift": [0],
                },
            ),
            [x3],
            [-8, -20, -18, -24],
        ),
        "input conv2d": (
            doc_record(
                "InputConv2D",
                {
                    "kernel_size": 3,
                    "kernel_stride": 2,
                    "buffer_bits": 32,
                    "activation": "ReLU",
                    "output_bits": 8,
                },
                {
                    "weights": np.array([[0, 1, 0], [1, -2, 1], [0, 1, 2]]).reshape(3, 3, 1, 1),
                    "padding_value": [10],
                    "bias": [-50],
                    "bias_shift": [0],
                    "max_value": [127],
                    "max_value_shift": [31],
                    "output_scales": [1],
                    "output_shift": [-2],
                },
            ),
            [image],
            [73, 13, 20, 0],
        ),
        "depthwise": (
            doc_record(
                "DepthwiseConv2D",
                {"kernel_size": 3, "output_bits": 4},
                {
                    "weights": depthwise_w,
                    "input_shift": [0, 2],
                    "bias": [0, 0],
                    "bias_shift": [0, 0],
                    "output_scales": [1, 1],
                    "output_shift": [0, 0],
                },
            ),
            [depthwise_x],
            [0, 0, 1, 0, 2, 4, 0, 0, 4, 0, 5, 0, 0, 4, 7, 0, 8, 0],
        ),
        "conv2d transpose": (
            doc_record(
                "Conv2DTranspose",
                {"kernel_size": 3, "output_bits": 8},
                {"weights": np.arange(1, 10).reshape(3, 3, 1, 1), "input_shift": [0], **identity},
            ),
            [np.array([2, -1], np.int8).reshape(1, 1, 2, 1)],
            [2, 4, 5, -2, 8, 10, 8, -5],
        ),
        "depthwise transpose": (
            doc_record(
                "DepthwiseConv2DTranspose",
                {"kernel_size": 4, "output_bits": 8},
                {"weights": np.arange(1, 17).reshape(4, 4, 1, 1), "input_shift": [0], **identity},
            ),
            [np.array([3], np.int8).reshape(1, 1, 1, 1)],
            [18, 21, 30, 33],
        ),
        "dense1d": (
            doc_record(
                "Dense1D",
                {"units": 2, "output_bits": 32},
                {
                    "weights": [[1, 0], [2, 1], [-1, 3], [0, -2]],
                    "input_shift": [0, 1, 0, 2],
                    "bias": [1, -1],
                    "bias_shift": [4, 0],
                    "output_scales": [2, 5],
                    "output_shift": [1, -1],
                },
            ),
            [np.array([1, -2, 3, 4], np.int8).reshape(1, 1, 2, 2)],
            [24, -70],
        ),
        "lut": (
            doc_record(
                "Conv2D",
                {"kernel_size": 1, "activation": "LUT", "output_bits": 16},
                {
                    "weights": [[[[3]]]],
                    "input_shift": [0],
                    "activation_scales": [5],
                    "activation_shift": [-2],
                    "lut_values": lut,
                    **identity,
                },
            ),
            [np.array([10, -7, 100, 0], np.int8).reshape(1, 1, 4, 1)],
            [76, -52, 300, 0],
        ),
        "gap": (
            doc_record(
                "Conv2D",
                {"kernel_size": 1, "activation": "ReLU", "pool_type": "Average", "output_bits": 8},
                {
                    "weights": [[[[1]]]],
                    "input_shift": [0],
                    "max_value": [127],
                    "max_value_shift": [31],
                    "bias": [0],
                    "bias_shift": [0],
                    "output_scales": [1],
                    "output_shift": [-2],
                },
            ),
            [np.array([100, 120, -50, 90], np.int8).reshape(1, 2, 2, 1)],
            [78],
        ),
        "add": (
            LayerRecord(
                "doc",
                "Add",
                ["a", "b"],
                {"output_bits": 8, "buffer_bits": 32},
                {
                    "a_shift": np.array([1], np.uint8),
                    "b_shift": np.array([0], np.uint8),
                    "output_shift": np.array([-1], np.int8),
                },
            ),
            [
                np.array([5, -3, 1, 100], np.int8).reshape(1, 1, 4, 1),
                np.array([2, 7, -2, 100], np.int8).reshape(1, 1, 4, 1),
            ],
            [6, 1, 0, 127],
        ),
    }


DOC_EXAMPLES = documented_examples()


@pytest.mark.parametrize("name", sorted(DOC_EXAMPLES))
def test_the_documented_worked_example_is_what_reference_and_oracle_compute(name: str) -> None:
    record, inputs, expected = DOC_EXAMPLES[name]
    assert [int(v) for v in reference.run_layer(record, inputs).ravel()] == expected
    assert [int(v) for v in oracle_layer(record, inputs).ravel()] == expected


def test_the_documented_rounding_table_rounds_half_up() -> None:
    values = np.array([-5, -3, -1, 1, 3, 5, 7])
    assert reference.rounding_shift(values, np.array([-1])).tolist() == [-2, -1, 0, 1, 2, 3, 4]
    assert [shift(int(v), -1) for v in values] == [-2, -1, 0, 1, 2, 3, 4]
