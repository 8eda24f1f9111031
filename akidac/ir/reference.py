"""The reference interpreter: the exact integer semantics of every Akida 2 layer, in plain NumPy.

This is the definition the numba hardware model (`akidac/backends/akida/`) is tested against, so
it is written to be read, not to be fast: int64 throughout, one function per layer type, and each
step of `tests/data/vectors/README.md` ("The integer pipeline, as measured") spelled out in order.
`docs/integer-semantics.md` describes the same pipeline with worked examples.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from akidac.target.layer_record import LayerRecord
from akidac.target.limits import LUT_INDEX_BITS, LUT_OFFSET

#: Shift counts above these caps cannot change a result (the value is 0 or saturated already);
#: the caps keep every intermediate inside int64. A value v with |v| <= 2^32 shifted right with
#: rounding by 40 or more is 0; any non-zero |v| <= 2^31 shifted left by 32 exceeds every clip
#: range of at most 32 bits.
RIGHT_SHIFT_CAP = 40
LEFT_SHIFT_CAP = 32


# ---------------------------------------------------------------------------------------------
# Integer helpers (the notation of the README)
# ---------------------------------------------------------------------------------------------


def saturate(values: np.ndarray, bits: int) -> np.ndarray:
    """`sat_n`: clip to the signed range of `bits` bits, [-2^(bits-1), 2^(bits-1) - 1]."""
    low = -(1 << (bits - 1))
    high = (1 << (bits - 1)) - 1
    return np.asarray(np.clip(values, low, high))


def wrap32(values: np.ndarray) -> np.ndarray:
    """`wrap32`: the value an int32 accumulator holds, ((v + 2^31) mod 2^32) - 2^31."""
    return np.asarray(np.mod(values + (1 << 31), 1 << 32) - (1 << 31))


def shift_left_saturating(values: np.ndarray, shifts: np.ndarray, bits: int) -> np.ndarray:
    """`sat_bits(v << s)` for unsigned shifts `s` (broadcast on the last axis).

    Any non-zero |v| <= 2^31 shifted by at least `bits` saturates, so capping the shift at `bits`
    (<= 32) gives the same result without leaving int64.
    """
    capped = np.minimum(shifts.astype(np.int64), bits)
    return saturate(values << capped, bits)


def rounding_shift(values: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """`shift(v, s)` of the README: s < 0 is a right shift rounding half up, s > 0 a left shift.

    Round half up means ties go toward +infinity: -2.5 -> -2 and 2.5 -> 3. `values` must lie
    within 32 bits (they always do: each call follows a 32-bit saturation).
    """
    shifts = np.broadcast_to(shifts.astype(np.int64), values.shape)
    right = np.minimum(np.maximum(-shifts, 0), RIGHT_SHIFT_CAP)
    left = np.minimum(np.maximum(shifts, 0), LEFT_SHIFT_CAP)
    # (v + 2^(n-1)) >> n for n > 0; for n = 0 the rounding term is 0.
    half = np.where(right > 0, np.left_shift(1, np.maximum(right - 1, 0)), 0)
    shifted_right = (values + half) >> right
    return np.asarray(np.where(shifts < 0, shifted_right, values << left))


def output_range(bits: int, *, always_signed: bool = False) -> tuple[int, int]:
    """Clip range of a layer output: <= 4 bits unsigned [0, 2^b - 1] (not for Add), else signed."""
    if bits <= 4 and not always_signed:
        return 0, (1 << bits) - 1
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def output_dtype(bits: int, *, always_signed: bool = False) -> np.dtype:
    """The engine's output dtype: uint8 for <= 4 bits, else the smallest signed type that fits."""
    if bits <= 4 and not always_signed:
        return np.dtype(np.uint8)
    if bits <= 8:
        return np.dtype(np.int8)
    if bits <= 16:
        return np.dtype(np.int16)
    return np.dtype(np.int32)


def same_padding(size: int, kernel: int, stride: int, padding: str) -> tuple[int, int]:
    """Pads (before, after) of one spatial axis for `Same`, `SameUpper` or `Valid`.

    total = max(k - s, 0) if n % s == 0 else max(k - n % s, 0). `Same` puts the odd extra pixel
    after (bottom/right, TF "SAME"), `SameUpper` before (top/left), `Valid` pads nothing.
    """
    if padding == "Valid":
        return 0, 0
    if size % stride == 0:
        total = max(kernel - stride, 0)
    else:
        total = max(kernel - size % stride, 0)
    if padding == "SameUpper":
        return total - total // 2, total // 2
    return total // 2, total - total // 2


def _variable(record: LayerRecord, name: str) -> np.ndarray:
    """A variable of the record as int64."""
    return np.asarray(record.variables[name]).astype(np.int64)


def _int_param(record: LayerRecord, name: str) -> int:
    return int(record.params[name])


# ---------------------------------------------------------------------------------------------
# Step 1: shifted inputs; step 2-3: the accumulator of each geometry
# ---------------------------------------------------------------------------------------------


def _shifted_input(record: LayerRecord, x: np.ndarray) -> np.ndarray:
    """Step 1: xs = sat_B(x << input_shift), one shift per input channel (last axis)."""
    buffer_bits = _int_param(record, "buffer_bits")
    return shift_left_saturating(x, _variable(record, "input_shift"), buffer_bits)


def _pad_spatial(
    x: np.ndarray, pads_h: tuple[int, int], pads_w: tuple[int, int], fill: np.ndarray
) -> np.ndarray:
    """Pad axes 1 and 2 of an NHWC array, the padded pixels holding `fill[c]`."""
    n, h, w, c = x.shape
    padded = np.empty((n, h + sum(pads_h), w + sum(pads_w), c), dtype=np.int64)
    padded[...] = fill.reshape(1, 1, 1, c)
    padded[:, pads_h[0] : pads_h[0] + h, pads_w[0] : pads_w[0] + w, :] = x
    return padded


def _conv_accumulate(
    xs: np.ndarray, kernel: np.ndarray, stride: int, padding: str, fill: np.ndarray
) -> np.ndarray:
    """Σ xp[i*s + a, j*s + b, c] * kernel[a, b, c, f] (a cross-correlation of the given kernel).

    The exact sum in int64 (no wrap yet). Callers flip the kernel for a true convolution.
    """
    _, h, w, _ = xs.shape
    k = kernel.shape[0]
    pads_h = same_padding(h, k, stride, padding)
    pads_w = same_padding(w, k, stride, padding)
    xp = _pad_spatial(xs, pads_h, pads_w, fill)
    out_h = (h + sum(pads_h) - k) // stride + 1
    out_w = (w + sum(pads_w) - k) // stride + 1
    acc = np.zeros((xs.shape[0], out_h, out_w, kernel.shape[3]), dtype=np.int64)
    for a in range(k):
        for b in range(k):
            window = xp[:, a : a + stride * out_h : stride, b : b + stride * out_w : stride, :]
            acc += np.einsum("nhwc,cf->nhwf", window, kernel[a, b])
    return acc


def _depthwise_accumulate(
    xs: np.ndarray, kernel: np.ndarray, stride: int, padding: str
) -> np.ndarray:
    """Σ xp[i*s + a, j*s + b, c] * kernel[a, b, c], per channel (cross-correlation)."""
    _, h, w, c = xs.shape
    k = kernel.shape[0]
    pads_h = same_padding(h, k, stride, padding)
    pads_w = same_padding(w, k, stride, padding)
    xp = _pad_spatial(xs, pads_h, pads_w, np.zeros(c, dtype=np.int64))
    out_h = (h + sum(pads_h) - k) // stride + 1
    out_w = (w + sum(pads_w) - k) // stride + 1
    acc = np.zeros((xs.shape[0], out_h, out_w, c), dtype=np.int64)
    for a in range(k):
        for b in range(k):
            window = xp[:, a : a + stride * out_h : stride, b : b + stride * out_w : stride, :]
            acc += window * kernel[a, b, :, 0]
    return acc


def _transpose_accumulate(xs: np.ndarray, kernel: np.ndarray, depthwise: bool) -> np.ndarray:
    """acc[2i + a - p, 2j + b - p] += x[i, j] · w[a, b] with p = (k - 2) // 2, output 2H × 2W.

    Not flipped; contributions falling outside [0, 2H) × [0, 2W) are dropped.
    """
    n, h, w, c = xs.shape
    k = kernel.shape[0]
    p = (k - 2) // 2
    filters = c if depthwise else kernel.shape[3]
    acc = np.zeros((n, 2 * h, 2 * w, filters), dtype=np.int64)
    for a in range(k):
        for b in range(k):
            if depthwise:
                contribution = xs * kernel[a, b, :, 0]
            else:
                contribution = np.einsum("nhwc,cf->nhwf", xs, kernel[a, b])
            for i in range(h):
                row = 2 * i + a - p
                if not 0 <= row < 2 * h:
                    continue
                for j in range(w):
                    col = 2 * j + b - p
                    if 0 <= col < 2 * w:
                        acc[:, row, col, :] += contribution[:, i, j, :]
    return acc


# ---------------------------------------------------------------------------------------------
# Steps 3-8: saturation, bias, pooling, activation, GAP, requantization
# ---------------------------------------------------------------------------------------------


def _saturate_and_add_bias(record: LayerRecord, exact_sum: np.ndarray) -> np.ndarray:
    """Steps 2-4: wrap32 of the sum, sat_B, then sat_P(acc + sat_P(bias << bias_shift))."""
    buffer_bits = _int_param(record, "buffer_bits")
    post_bits = _int_param(record, "post_op_buffer_bits")
    acc = saturate(wrap32(exact_sum), buffer_bits)
    bias = shift_left_saturating(
        _variable(record, "bias"), _variable(record, "bias_shift"), post_bits
    )
    return saturate(acc + bias, post_bits)


def pool_output_and_pads(
    size: int, pool: int, stride: int, valid: bool
) -> tuple[int, tuple[int, int]]:
    """Max pooling geometry of one axis: TF "SAME" (out = ceil(n / s)) or valid (no pads)."""
    if valid:
        return (size - pool) // stride + 1, (0, 0)
    out = -(-size // stride)
    total = max(pool - stride, 0) if size % stride == 0 else max(pool - size % stride, 0)
    return out, (total // 2, total - total // 2)


def _max_pool(record: LayerRecord, acc: np.ndarray) -> np.ndarray:
    """Step 5: max pooling of the accumulator; pad pixels act as -infinity (they never win).

    After a `Valid` conv the pooling is valid too; otherwise it is TF "SAME" (SameUpper with max
    pooling is untested against the engine and treated as Same).
    """
    pool = _int_param(record, "pool_size")
    stride = _int_param(record, "pool_stride")
    valid = record.params.get("padding") == "Valid"
    n, h, w, f = acc.shape
    out_h, (top, _) = pool_output_and_pads(h, pool, stride, valid)
    out_w, (left, _) = pool_output_and_pads(w, pool, stride, valid)
    pooled = np.empty((n, out_h, out_w, f), dtype=np.int64)
    for i in range(out_h):
        rows = range(max(i * stride - top, 0), min(i * stride - top + pool, h))
        for j in range(out_w):
            cols = range(max(j * stride - left, 0), min(j * stride - left + pool, w))
            window = acc[:, rows.start : rows.stop, cols.start : cols.stop, :]
            pooled[:, i, j, :] = window.max(axis=(1, 2))
    return pooled


def _activation(record: LayerRecord, acc: np.ndarray) -> np.ndarray:
    """Step 6: ReLU clipped at max_value << max_value_shift, or the 2048-entry LUT."""
    activation = record.params.get("activation", "NoActivation")
    if activation == "ReLU":
        ceiling = _variable(record, "max_value") << np.minimum(
            _variable(record, "max_value_shift"), LEFT_SHIFT_CAP
        )
        return np.asarray(np.minimum(np.maximum(acc, 0), ceiling))
    if activation == "LUT":
        post_bits = _int_param(record, "post_op_buffer_bits")
        scaled = saturate(acc * _variable(record, "activation_scales"), post_bits)
        index = saturate(
            rounding_shift(scaled, _variable(record, "activation_shift")), LUT_INDEX_BITS
        )
        return np.asarray(_variable(record, "lut_values")[index + LUT_OFFSET])
    return acc


def _global_average_pool(record: LayerRecord, acc: np.ndarray) -> np.ndarray:
    """Step 7: a running sum over positions, row-major, clipped to P bits after every addition.

    There is no division: 1/(H·W) is folded into output_scales/output_shift.
    """
    post_bits = _int_param(record, "post_op_buffer_bits")
    n, h, w, f = acc.shape
    total = np.zeros((n, f), dtype=np.int64)
    for i in range(h):
        for j in range(w):
            total = saturate(total + acc[:, i, j, :], post_bits)
    return total.reshape(n, 1, 1, f)


def _requantize(record: LayerRecord, acc: np.ndarray) -> np.ndarray:
    """Step 8: sat_P(acc · output_scales), rounding shift, clip to the output range and type."""
    post_bits = _int_param(record, "post_op_buffer_bits")
    bits = _int_param(record, "output_bits")
    scaled = saturate(acc * _variable(record, "output_scales"), post_bits)
    shifted = rounding_shift(scaled, _variable(record, "output_shift"))
    low, high = output_range(bits)
    return np.asarray(np.clip(shifted, low, high).astype(output_dtype(bits)))


def _finish(record: LayerRecord, exact_sum: np.ndarray) -> np.ndarray:
    """Steps 2-8 of every CNP/FNP layer, from the exact int64 sum of products."""
    acc = _saturate_and_add_bias(record, exact_sum)
    pool_type = record.params.get("pool_type", "NoPooling")
    if pool_type == "Max":
        acc = _max_pool(record, acc)
    acc = _activation(record, acc)
    if pool_type == "Average":
        acc = _global_average_pool(record, acc)
    return _requantize(record, acc)


# ---------------------------------------------------------------------------------------------
# One function per layer type
# ---------------------------------------------------------------------------------------------


def run_input_data(record: LayerRecord, inputs: Sequence[np.ndarray]) -> np.ndarray:
    """InputData: the program input, unchanged."""
    return np.asarray(inputs[0])


def run_input_conv2d(record: LayerRecord, inputs: Sequence[np.ndarray]) -> np.ndarray:
    """InputConv2D: a cross-correlation (not flipped) of the uint8 image, no input shift.

    The padded pixels hold `padding_value[c]` (the input zero point).
    """
    x = np.asarray(inputs[0]).astype(np.int64)
    kernel = _variable(record, "weights")
    exact_sum = _conv_accumulate(
        x,
        kernel,
        _int_param(record, "kernel_stride"),
        str(record.params["padding"]),
        _variable(record, "padding_value"),
    )
    return _finish(record, exact_sum)


def run_conv2d(record: LayerRecord, inputs: Sequence[np.ndarray]) -> np.ndarray:
    """Conv2D: a true convolution, the kernel flipped in both spatial axes; zero padding."""
    xs = _shifted_input(record, np.asarray(inputs[0]).astype(np.int64))
    flipped = _variable(record, "weights")[::-1, ::-1]
    exact_sum = _conv_accumulate(
        xs,
        flipped,
        _int_param(record, "kernel_stride"),
        str(record.params["padding"]),
        np.zeros(xs.shape[3], dtype=np.int64),
    )
    return _finish(record, exact_sum)


def run_depthwise_conv2d(record: LayerRecord, inputs: Sequence[np.ndarray]) -> np.ndarray:
    """DepthwiseConv2D: per channel, a true convolution (kernel flipped); zero padding."""
    xs = _shifted_input(record, np.asarray(inputs[0]).astype(np.int64))
    flipped = _variable(record, "weights")[::-1, ::-1]
    exact_sum = _depthwise_accumulate(
        xs, flipped, _int_param(record, "kernel_stride"), str(record.params["padding"])
    )
    return _finish(record, exact_sum)


def run_conv2d_transpose(record: LayerRecord, inputs: Sequence[np.ndarray]) -> np.ndarray:
    """Conv2DTranspose: stride 2, output 2H × 2W, kernel not flipped."""
    xs = _shifted_input(record, np.asarray(inputs[0]).astype(np.int64))
    exact_sum = _transpose_accumulate(xs, _variable(record, "weights"), depthwise=False)
    return _finish(record, exact_sum)


def run_depthwise_conv2d_transpose(record: LayerRecord, inputs: Sequence[np.ndarray]) -> np.ndarray:
    """DepthwiseConv2DTranspose: per channel, stride 2, output 2H × 2W, kernel not flipped."""
    xs = _shifted_input(record, np.asarray(inputs[0]).astype(np.int64))
    exact_sum = _transpose_accumulate(xs, _variable(record, "weights"), depthwise=True)
    return _finish(record, exact_sum)


def run_dense1d(record: LayerRecord, inputs: Sequence[np.ndarray]) -> np.ndarray:
    """Dense1D: the input flattened in (H, W, C) order, one input_shift per element.

    Output shape (N, 1, 1, units).
    """
    x = np.asarray(inputs[0]).astype(np.int64)
    flat = x.reshape(x.shape[0], -1)
    xs = _shifted_input(record, flat)
    exact_sum = xs @ _variable(record, "weights")
    acc = exact_sum.reshape(flat.shape[0], 1, 1, -1)
    return _finish(record, acc)


def run_add(record: LayerRecord, inputs: Sequence[np.ndarray]) -> np.ndarray:
    """Add: sat_B(a << a_shift) + sat_B(b << b_shift), sat_B, rounding shift, signed output.

    The output is always signed: 4 bits give -8..7. There is no scale.
    """
    buffer_bits = _int_param(record, "buffer_bits")
    a = np.asarray(inputs[0]).astype(np.int64)
    b = np.asarray(inputs[1]).astype(np.int64)
    a_shifted = shift_left_saturating(a, _variable(record, "a_shift"), buffer_bits)
    b_shifted = shift_left_saturating(b, _variable(record, "b_shift"), buffer_bits)
    total = saturate(a_shifted + b_shifted, buffer_bits)
    shifted = rounding_shift(total, _variable(record, "output_shift"))
    bits = _int_param(record, "output_bits")
    low, high = output_range(bits, always_signed=True)
    return np.asarray(np.clip(shifted, low, high).astype(output_dtype(bits, always_signed=True)))


def run_concatenate(record: LayerRecord, inputs: Sequence[np.ndarray]) -> np.ndarray:
    """Concatenate: the inbounds on the channel axis, first inbound first; nothing rescaled."""
    arrays = [np.asarray(array) for array in inputs]
    return np.concatenate(arrays, axis=-1).astype(np.result_type(*arrays))


LAYER_FUNCTIONS: dict[str, Callable[[LayerRecord, Sequence[np.ndarray]], np.ndarray]] = {
    "InputData": run_input_data,
    "InputConv2D": run_input_conv2d,
    "Conv2D": run_conv2d,
    "DepthwiseConv2D": run_depthwise_conv2d,
    "Conv2DTranspose": run_conv2d_transpose,
    "DepthwiseConv2DTranspose": run_depthwise_conv2d_transpose,
    "Dense1D": run_dense1d,
    "Add": run_add,
    "Concatenate": run_concatenate,
}


def run_layer(record: LayerRecord, inputs: list[np.ndarray]) -> np.ndarray:
    """Run one layer on its inputs (NHWC, batch first; Add and Concatenate take two)."""
    if record.layer_type not in LAYER_FUNCTIONS:
        raise ValueError(f"layer {record.name!r}: unknown layer type {record.layer_type!r}")
    return LAYER_FUNCTIONS[record.layer_type](record, inputs)


def run_layers(records: list[LayerRecord], x: np.ndarray) -> dict[str, np.ndarray]:
    """Run records in order on the program input `x`; return every layer's output by name.

    A layer with no inbounds (the first one) reads `x`. Records must be in topological order.
    """
    outputs: dict[str, np.ndarray] = {}
    for record in records:
        missing = [name for name in record.inbounds if name not in outputs]
        if missing:
            raise ValueError(
                f"layer {record.name!r}: inbound {missing[0]!r} is not an earlier layer"
            )
        inputs = [outputs[name] for name in record.inbounds] if record.inbounds else [x]
        outputs[record.name] = run_layer(record, inputs)
    return outputs
