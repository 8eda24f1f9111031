"""Numba kernels of the hardware model: the integer arithmetic of Akida layers, NHWC, one thread.

Two kinds of accumulator kernels produce `wrap32(Σ xs·w)`, the engine's int32 accumulator:
exact int32 kernels (wrapping multiply-adds, exact for every input by construction) and fast
float32 kernels that `hwmodel` only uses when a bound proves every partial sum is an exact
float32 integer: `conv_float32`, register tiles of output pixels × filter vectors written in
LLVM IR (`_float32_tile`), and `depthwise3_fused_float32`. `finish_layer` then applies steps 3-8
of the pipeline (saturation, bias, pooling, activation, GAP, requantization) in int64, or
`finish_clamped_int32` in int32 under the plan `hwmodel` proves safe; `depthwise3_fused` and
`depthwise3_fused_float32` run a whole common depthwise layer in one pass, and
`conv_fused_float32` and `conv1x1_fused_float32` the accumulation and that plan of a common
convolution (the sums requantized while they are in cache). No kernel is
parallel and none calls BLAS. All kernels are cached on disk (per compile target: the vector
width follows it); array dtypes are fixed (int8/uint8/int32 inputs, int32/float32 buffers,
int64 parameters) so that each kernel has few specialisations.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, NamedTuple, cast


def _configure_cache_dir() -> None:
    """Point numba's cache at a user directory when this package's folder is read-only."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    package_dir = Path(__file__).resolve().parent
    if os.access(package_dir, os.W_OK):
        return
    cache_dir = Path.home() / ".cache" / "akidac" / "numba"
    os.environ["NUMBA_CACHE_DIR"] = str(cache_dir)
    if "numba" in sys.modules:
        # numba read its configuration when it was imported: update the live value too.
        sys.modules["numba"].config.CACHE_DIR = str(cache_dir)


_configure_cache_dir()

import llvmlite.binding as llvm  # noqa: E402
import numpy as np  # noqa: E402
from llvmlite import ir  # noqa: E402
from numba import njit, types  # noqa: E402
from numba.core import cgutils, config  # noqa: E402
from numba.extending import intrinsic, overload  # noqa: E402

from akidac.target.limits import LUT_INDEX_MAX, LUT_INDEX_MIN, LUT_OFFSET  # noqa: E402

#: float32 holds every integer of magnitude up to 2^24 exactly.
FLOAT32_EXACT_LIMIT = 1 << 24


def _vector_lanes() -> int:
    """float32 lanes of the widest vector register numba compiles for: 16, 8 or 4."""
    features = config.CPU_FEATURES
    if features is None:
        features = llvm.get_host_cpu_features().flatten()
    enabled = {feature[1:] for feature in features.split(",") if feature.startswith("+")}
    if "avx512f" in enabled:
        return 16
    return 8 if "avx" in enabled else 4


#: float32 lanes of one vector register of the compile target (numba's cache is per target).
VECTOR_LANES = _vector_lanes()
#: tile of the float32 convolution: TILE_PIXELS output pixels × up to TILE_VECTORS vectors of
#: VECTOR_LANES filters, accumulators, weight vectors and a broadcast all in registers (24 + 4
#: + 1 of 32 with AVX-512, 12 + 3 + 1 of 16 with AVX2). Six pixels rather than four with
#: AVX-512: each weight vector loaded serves 6 multiply-adds, not 4 (bench/hwmodel.py, this
#: Xeon: the 1×1 128→128 GEMM 0.20 -> 0.135 ms, the 3×3 64→64 conv 1.3-1.7 -> 1.25 ms).
TILE_PIXELS = 6 if VECTOR_LANES == 16 else 4
TILE_VECTORS = 4 if VECTOR_LANES == 16 else 3
#: terms (kernel taps × channels) of one pass of the fused float32 convolutions over a row of
#: pixels: the pass's block of weights (K_BLOCK × 64 float32 with AVX-512) stays in L1.
K_BLOCK = 96
#: pixels per block of the fused 1×1 convolution: their float32 inputs and int32 sums stay in
#: cache between the three steps.
GEMM_BLOCK_PIXELS = 8 * TILE_PIXELS
#: filter tile of the int32 convolution.
TILE_FILTERS = 4

#: codes passed to `finish_layer`.
POOL_NONE, POOL_MAX, POOL_AVERAGE = 0, 1, 2
ACT_NONE, ACT_RELU, ACT_LUT = 0, 1, 2

# ---------------------------------------------------------------------------------------------
# int32 arithmetic without numba's promotion to int64
# ---------------------------------------------------------------------------------------------


@intrinsic
def madd32(typingctx: object, acc: object, a: object, b: object) -> object:
    """`acc + a * b` in wrapping int32 arithmetic (numba would otherwise compute in int64)."""
    sig = types.int32(types.int32, types.int32, types.int32)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        total, left, right = args
        return builder.add(total, builder.mul(left, right))

    return sig, codegen


@intrinsic
def requantize32(
    typingctx: object,
    value: object,
    bias: object,
    scale: object,
    half: object,
    right: object,
    left: object,
) -> object:
    """`(((value + bias) · scale + half) >> right) << left` in int32 arithmetic.

    Only used where `hwmodel` has proved that no intermediate leaves int32.
    """
    sig = types.int32(types.int32, types.int32, types.int32, types.int32, types.int32, types.int32)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        value_, bias_, scale_, half_, right_, left_ = args
        scaled = builder.mul(builder.add(value_, bias_), scale_)
        return builder.shl(builder.ashr(builder.add(scaled, half_), right_), left_)

    return sig, codegen


# ---------------------------------------------------------------------------------------------
# Step 1: shifted, clipped and padded inputs
# ---------------------------------------------------------------------------------------------


@njit(cache=True)
def shift_and_pad(
    x: np.ndarray,
    shifts: np.ndarray,
    buffer_bits: int,
    pad_top: int,
    pad_left: int,
    fill: np.ndarray,
    xp: np.ndarray,
) -> None:
    """xp[n, pad_top + i, pad_left + j, c] = sat_B(x[n, i, j, c] << shifts[c]); pads = fill[c].

    `x` may be any integer type of at most 32 bits; `xp` (int32 or float32) may be larger than
    the padded input: extra pixels are set to `fill` too. Shifts are at most 31, so the shifted
    value fits int64 before its clip. `xp` may also be int16 when the caller has proved that
    every clipped value and every fill fits int16 (the input of `conv_fused_vnni`).
    """
    n_batch, height, width, channels = x.shape
    high = (np.int64(1) << (buffer_bits - 1)) - 1
    low = -high - 1
    plain = _is_plain(x, shifts, buffer_bits)
    padded_w = xp.shape[2]
    first = min(pad_left, padded_w)
    last = min(pad_left + width, padded_w)
    # a padded row of fill values, copied flat: a loop over C per pixel is slow for few
    # channels (3 for an input layer), a flat copy of the same type vectorizes
    row_length = padded_w * channels
    pattern = np.empty(row_length, xp.dtype)
    for j in range(padded_w):
        for c in range(channels):
            pattern[j * channels + c] = fill[c]
    head = first * channels
    tail = last * channels
    # flat views taken once (a numba reshape per row costs more than a narrow row's copy)
    xp_flat = xp.reshape(-1)
    x_flat = x.reshape(-1)
    source_row = width * channels
    for n in range(n_batch):
        for i in range(xp.shape[1]):
            si = i - pad_top
            base = (n * xp.shape[1] + i) * row_length
            row = xp_flat[base : base + row_length]
            if si < 0 or si >= height:
                _copy(pattern, row)
                continue
            _copy(pattern[:head], row[:head])
            if plain and first == pad_left:
                # one run of (last - first) · C values: a flat loop vectorizes whatever C is
                source = (n * height + si) * source_row
                _copy(x_flat[source : source + tail - head], row[head:tail])
            elif plain:
                dst = xp[n, i]
                src = x[n, si]
                for j in range(first, last):
                    for c in range(channels):
                        dst[j, c] = src[j - pad_left, c]
            else:
                dst = xp[n, i]
                src = x[n, si]
                for j in range(first, last):
                    for c in range(channels):
                        value = np.int64(src[j - pad_left, c]) << shifts[c]
                        dst[j, c] = min(max(value, low), high)
            _copy(pattern[tail:], row[tail:])


@njit(cache=True, inline="always")
def _copy(src: np.ndarray, dst: np.ndarray) -> None:
    """dst[e] = src[e] of two 1-D arrays of one length, converting (indices from 0: numba
    checks for negative indices it cannot rule out, and that check stops vectorization)."""
    for e in range(dst.shape[0]):
        dst[e] = src[e]


@njit(cache=True, inline="always")
def _is_plain(x: np.ndarray, shifts: np.ndarray, buffer_bits: int) -> bool:
    """Whether sat_B(x << shift) is x itself for every value: 8-bit x, shifts 0, B >= 9 (a
    bare conversion then, which vectorizes three times better than the shift and clip)."""
    return x.itemsize == 1 and buffer_bits >= 9 and not np.any(shifts)


@njit(cache=True)
def shift_flat(x: np.ndarray, shifts: np.ndarray, buffer_bits: int, xs: np.ndarray) -> None:
    """xs[n, e] = sat_B(x[n, e] << shifts[e]) for the flattened input of Dense1D."""
    high = (np.int64(1) << (buffer_bits - 1)) - 1
    low = -high - 1
    for n in range(x.shape[0]):
        for e in range(x.shape[1]):
            value = np.int64(x[n, e]) << shifts[e]
            xs[n, e] = min(max(value, low), high)


# ---------------------------------------------------------------------------------------------
# Step 2: accumulators, wrap32(Σ xs·w) as int32
# ---------------------------------------------------------------------------------------------


@njit(cache=True)
def _fill_row_buffer(xp: np.ndarray, n: int, row0: int, kh: int, row_buffer: np.ndarray) -> None:
    """row_buffer[jj, a, c] = xp[n, row0 + a, jj, c]: the kh input rows of one output row,
    interleaved so that each output pixel's window is one contiguous run of kw·kh·C values."""
    width = xp.shape[2]
    channels = xp.shape[3]
    span = kh * channels
    for jj in range(width):
        base = jj * span
        for a in range(kh):
            src = xp[n, row0 + a, jj]
            offset = base + a * channels
            for c in range(channels):
                row_buffer[offset + c] = src[c]


#: the integers `_float32_tile` takes, in order, as one tuple.
TILE_GEOMETRY = (
    "x0",
    "pixel_step",
    "row_step",
    "w0",
    "w_stride",
    "span",
    "start",
    "stop",
    "acc0",
    "acc_stride",
)


@intrinsic
def _float32_tile(
    typingctx: object,
    x: object,
    w: object,
    acc: object,
    geometry: object,
    accumulate: object,
    pixels: object,
    vectors: object,
) -> object:
    """One register tile of the float32 convolution, written directly in LLVM IR.

    With `geometry` = (x0, pixel_step, row_step, w0, w_stride, span, start, stop, acc0,
    acc_stride), for p < pixels, q < vectors · VECTOR_LANES and the terms g = r · span + t of
    [start, stop) (kernel row r, term t of that row), and flat C-order indices into the arrays:

        acc[acc0 + p · acc_stride + q] (+)= Σ_g x[x0 + p · pixel_step + r · row_step + t]
                                               · w[g · w_stride + w0 + q]

    The pixels × vectors float32 accumulators live in vector registers: per term, `vectors`
    weight vectors are loaded, each input value is broadcast and multiply-added into its row of
    accumulators (`llvm.fmuladd`: one rounding or two, see `conv_float32` for why it is exact).
    At the end each accumulator is converted to int32 and stored, or with `accumulate` added to
    the int32 already there (a wrapping int32 addition). `pixels` and `vectors` are literal.
    """
    literals = (pixels, vectors)
    if not all(isinstance(value, types.IntegerLiteral) for value in literals):
        return None
    for array, dtype in ((x, types.float32), (w, types.float32), (acc, types.int32)):
        if not isinstance(array, types.Array) or array.dtype != dtype or array.layout != "C":
            return None
    if geometry != types.UniTuple(types.int64, len(TILE_GEOMETRY)):
        return None
    n_pixels, n_vectors = cast(Any, pixels).literal_value, cast(Any, vectors).literal_value
    lanes = VECTOR_LANES
    sig = types.void(x, w, acc, geometry, types.boolean, pixels, vectors)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        x_arg, w_arg, acc_arg, geometry_arg, accumulate_ = args[:5]
        x_ptr = context.make_array(signature.args[0])(context, builder, x_arg).data
        w_ptr = context.make_array(signature.args[1])(context, builder, w_arg).data
        acc_ptr = context.make_array(signature.args[2])(context, builder, acc_arg).data
        (x0_, pixel_step_, row_step_, w0_, w_stride_, span_, start_, stop_, acc0_, acc_stride_) = (
            cgutils.unpack_tuple(builder, geometry_arg, len(TILE_GEOMETRY))
        )
        int64 = ir.IntType(64)
        int32 = ir.IntType(32)
        floats = ir.VectorType(ir.FloatType(), lanes)
        ints = ir.VectorType(int32, lanes)
        fmuladd = cgutils.get_or_insert_function(
            builder.module,
            ir.FunctionType(floats, [floats, floats, floats]),
            f"llvm.fmuladd.v{lanes}f32",
        )

        def const(value: int) -> ir.Constant:
            return ir.Constant(int64, value)

        # accumulators as stack slots: LLVM promotes them to registers (mem2reg)
        slots = [
            [cgutils.alloca_once(builder, floats) for _ in range(n_vectors)]
            for _ in range(n_pixels)
        ]
        for row in slots:
            for slot in row:
                builder.store(ir.Constant(floats, [0.0] * lanes), slot)
        splat_mask = ir.Constant(ints, [0] * lanes)
        first_row = builder.sdiv(start_, span_)
        end_row = builder.sdiv(builder.add(stop_, builder.sub(span_, const(1))), span_)
        with cgutils.for_range_slice(builder, first_row, end_row, const(1)) as (r, _):
            row_first = builder.mul(r, span_)
            t_low = builder.sub(start_, row_first)
            t_low = builder.select(builder.icmp_signed("<", t_low, const(0)), const(0), t_low)
            t_high = builder.sub(stop_, row_first)
            t_high = builder.select(builder.icmp_signed(">", t_high, span_), span_, t_high)
            x_row = builder.add(x0_, builder.mul(r, row_step_))
            with cgutils.for_range_slice(builder, t_low, t_high, const(1)) as (t, _):
                x_term = builder.add(x_row, t)
                w_term = builder.add(builder.mul(builder.add(row_first, t), w_stride_), w0_)
                weights = []
                for v in range(n_vectors):
                    pointer = builder.gep(w_ptr, [builder.add(w_term, const(v * lanes))])
                    weights.append(
                        builder.load(builder.bitcast(pointer, floats.as_pointer()), align=4)
                    )
                for p in range(n_pixels):
                    offset = builder.add(x_term, builder.mul(pixel_step_, const(p)))
                    value = builder.load(builder.gep(x_ptr, [offset]), align=4)
                    single = builder.insert_element(
                        ir.Constant(floats, ir.Undefined), value, ir.Constant(int32, 0)
                    )
                    splat = builder.shuffle_vector(
                        single, ir.Constant(floats, ir.Undefined), splat_mask
                    )
                    for v in range(n_vectors):
                        total = builder.call(
                            fmuladd, [splat, weights[v], builder.load(slots[p][v])]
                        )
                        builder.store(total, slots[p][v])
        zeros = ir.Constant(ints, [0] * lanes)
        for p in range(n_pixels):
            row_offset = builder.add(acc0_, builder.mul(acc_stride_, const(p)))
            for v in range(n_vectors):
                pointer = builder.gep(acc_ptr, [builder.add(row_offset, const(v * lanes))])
                pointer = builder.bitcast(pointer, ints.as_pointer())
                value = builder.fptosi(builder.load(slots[p][v]), ints)
                previous = builder.select(accumulate_, builder.load(pointer, align=4), zeros)
                builder.store(builder.add(previous, value), pointer, align=4)
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True)
def conv_float32(
    xp: np.ndarray,
    weights: np.ndarray,
    chunk: int,
    stride: int,
    kh: int,
    kw: int,
    acc: np.ndarray,
) -> None:
    """acc[n, i, j, f] = wrap32(Σ_{a,b,c} xp[n, i·s + a, j·s + b, c] · weights[(a, b, c), f]).

    xp: (N, Hp, Wp, C) float32, padded and wide enough for every tile ((W4 - 1)·s + kw <= Wp);
    weights: (kh·kw·C, F') float32, rows in (a, b, c) order, F' a multiple of VECTOR_LANES;
    acc: (N, Ho, W4, F') int32 with W4 a multiple of TILE_PIXELS.

    Each kernel row's window of an output pixel is one contiguous run of kw·C values of xp, so
    a tile of output pixels × filters is a small GEMM read straight from xp (no im2col):
    `_float32_tile` broadcasts input values against contiguous weight vectors.

    Exactness: the caller has proved that over every run of `chunk` consecutive terms (in
    (a, b, c) order) max|xp| · Σ|w| < 2^24 for every filter. Every product is then an integer
    of magnitude < 2^24 and so is every partial sum of the run, whatever the order of the
    additions and whether a multiply-add rounds once or twice: each intermediate result is a
    sum of a subset of the terms, an integer float32 holds exactly, so no step rounds. Each
    run's float32 sum is converted to int32 exactly and the runs are added in wrapping int32,
    which gives wrap32 of the whole sum, the engine's int32 accumulator.

    Loop order: filter blocks outermost, so that one block of weights stays in cache while all
    the pixels of the image pass.
    """
    n_batch, out_h, out_w4, filters = acc.shape
    height, width, channels = xp.shape[1], xp.shape[2], xp.shape[3]
    span = kw * channels
    length = kh * span
    pixel_step = stride * channels
    row_step = width * channels
    for n in range(n_batch):
        f0 = 0
        while f0 < filters:
            vectors = min((filters - f0) // VECTOR_LANES, TILE_VECTORS)
            for i in range(out_h):
                x_row = (n * height + i * stride) * row_step
                acc_row = ((n * out_h + i) * out_w4) * filters + f0
                for j in range(0, out_w4, TILE_PIXELS):
                    x0 = x_row + j * pixel_step
                    acc0 = acc_row + j * filters
                    for start in range(0, length, chunk):
                        stop = min(start + chunk, length)
                        geometry = (
                            x0, pixel_step, row_step, f0, filters, span, start, stop, acc0, filters
                        )  # fmt: skip
                        later = start > 0
                        if vectors == TILE_VECTORS:
                            _float32_tile(
                                xp, weights, acc, geometry, later, TILE_PIXELS, TILE_VECTORS
                            )
                        elif vectors >= 2:
                            _float32_tile(xp, weights, acc, geometry, later, TILE_PIXELS, 2)
                        else:
                            _float32_tile(xp, weights, acc, geometry, later, TILE_PIXELS, 1)
            if vectors == TILE_VECTORS:
                f0 += TILE_VECTORS * VECTOR_LANES
            else:
                f0 += (2 if vectors >= 2 else 1) * VECTOR_LANES


@njit(cache=True)
def conv_int32(
    xp: np.ndarray, weights: np.ndarray, stride: int, kh: int, kw: int, acc: np.ndarray
) -> None:
    """The exact twin of `conv_float32`: the same layouts, wrapping int32 multiply-adds.

    xp: (N, Hp, Wp, C) int32; weights: (F4, kw·kh·C) int32; acc: (N, Ho, W4, F4) int32.
    """
    n_batch, out_h, out_w4, filters4 = acc.shape
    channels = xp.shape[3]
    span = kh * channels
    length = kw * span
    width = xp.shape[2]
    row_buffer = np.empty(width * span, np.int32)
    step = stride * span
    for n in range(n_batch):
        for i in range(out_h):
            _fill_row_buffer(xp, n, i * stride, kh, row_buffer)
            out_row = acc[n, i]
            for f in range(0, filters4, 4):
                # 2 pixels × 4 filters per pass: each input value loaded serves 4 filters and
                # each weight 2 pixels; the group's rows taken once per row, not per pixel
                w0 = weights[f]
                w1 = weights[f + 1]
                w2 = weights[f + 2]
                w3 = weights[f + 3]
                for j in range(0, out_w4, 2):
                    k = min(j + 1, out_w4 - 1)  # the pixel paired with j (j itself if last)
                    x0 = row_buffer[j * step : j * step + length]
                    x1 = row_buffer[k * step : k * step + length]
                    s0 = s1 = s2 = s3 = np.int32(0)
                    r0 = r1 = r2 = r3 = np.int32(0)
                    for t in range(length):
                        a = x0[t]
                        b = x1[t]
                        s0 = madd32(s0, a, w0[t])
                        s1 = madd32(s1, a, w1[t])
                        s2 = madd32(s2, a, w2[t])
                        s3 = madd32(s3, a, w3[t])
                        r0 = madd32(r0, b, w0[t])
                        r1 = madd32(r1, b, w1[t])
                        r2 = madd32(r2, b, w2[t])
                        r3 = madd32(r3, b, w3[t])
                    out_row[j, f] = s0
                    out_row[j, f + 1] = s1
                    out_row[j, f + 2] = s2
                    out_row[j, f + 3] = s3
                    out_row[k, f] = r0
                    out_row[k, f + 1] = r1
                    out_row[k, f + 2] = r2
                    out_row[k, f + 3] = r3


@njit(cache=True, inline="always")
def _madd3(total: int, a: int, b: int, c: int, ta: int, tb: int, tc: int) -> int:
    """total + a·ta + b·tb + c·tc in wrapping int32: one kernel row of a 3×3 tap, in order."""
    return madd32(madd32(madd32(total, a, ta), b, tb), c, tc)


@njit(cache=True)
def _depthwise3_row(
    r0: np.ndarray, r1: np.ndarray, r2: np.ndarray, weights: np.ndarray, acc_row: np.ndarray
) -> None:
    """One output row of a 3×3 stride-1 depthwise conv from its three padded input rows, 4
    adjacent output pixels at a time: the 6 input pixels of each kernel row are loaded once for
    4 outputs. acc_row: (W4, C), W4 a multiple of 4; r0, r1, r2: (>= W4 + 2, C)."""
    out_w4, channels = acc_row.shape
    w00 = weights[0, 0]
    w01 = weights[0, 1]
    w02 = weights[0, 2]
    w10 = weights[1, 0]
    w11 = weights[1, 1]
    w12 = weights[1, 2]
    w20 = weights[2, 0]
    w21 = weights[2, 1]
    w22 = weights[2, 2]
    zero = np.int32(0)
    for j in range(0, out_w4, 4):
        px0 = r0[j + 0]
        px1 = r0[j + 1]
        px2 = r0[j + 2]
        px3 = r0[j + 3]
        px4 = r0[j + 4]
        px5 = r0[j + 5]
        py0 = r1[j + 0]
        py1 = r1[j + 1]
        py2 = r1[j + 2]
        py3 = r1[j + 3]
        py4 = r1[j + 4]
        py5 = r1[j + 5]
        pz0 = r2[j + 0]
        pz1 = r2[j + 1]
        pz2 = r2[j + 2]
        pz3 = r2[j + 3]
        pz4 = r2[j + 4]
        pz5 = r2[j + 5]
        o0 = acc_row[j + 0]
        o1 = acc_row[j + 1]
        o2 = acc_row[j + 2]
        o3 = acc_row[j + 3]
        for c in range(channels):
            t00 = w00[c]
            t01 = w01[c]
            t02 = w02[c]
            t10 = w10[c]
            t11 = w11[c]
            t12 = w12[c]
            t20 = w20[c]
            t21 = w21[c]
            t22 = w22[c]
            x0 = px0[c]
            x1 = px1[c]
            x2 = px2[c]
            x3 = px3[c]
            x4 = px4[c]
            x5 = px5[c]
            y0 = py0[c]
            y1 = py1[c]
            y2 = py2[c]
            y3 = py3[c]
            y4 = py4[c]
            y5 = py5[c]
            z0 = pz0[c]
            z1 = pz1[c]
            z2 = pz2[c]
            z3 = pz3[c]
            z4 = pz4[c]
            z5 = pz5[c]
            total = _madd3(_madd3(zero, x0, x1, x2, t00, t01, t02), y0, y1, y2, t10, t11, t12)
            o0[c] = _madd3(total, z0, z1, z2, t20, t21, t22)
            total = _madd3(_madd3(zero, x1, x2, x3, t00, t01, t02), y1, y2, y3, t10, t11, t12)
            o1[c] = _madd3(total, z1, z2, z3, t20, t21, t22)
            total = _madd3(_madd3(zero, x2, x3, x4, t00, t01, t02), y2, y3, y4, t10, t11, t12)
            o2[c] = _madd3(total, z2, z3, z4, t20, t21, t22)
            total = _madd3(_madd3(zero, x3, x4, x5, t00, t01, t02), y3, y4, y5, t10, t11, t12)
            o3[c] = _madd3(total, z3, z4, z5, t20, t21, t22)


@njit(cache=True)
def depthwise_int32(xp: np.ndarray, weights: np.ndarray, stride: int, acc: np.ndarray) -> None:
    """acc[n, i, j, c] = wrap32(Σ_{a,b} xp[n, i·s + a, j·s + b, c] · weights[a, b, c]).

    xp: (N, Hp, Wp, C) int32; weights: (k, k, C) int32 (already flipped); acc: (N, Ho, W4, C)
    with W4 a multiple of 4. 3×3 stride 1 takes the 4-pixel path (xp at least W4 + 2 wide);
    otherwise only the first Wo = (Wp - k) // s + 1 columns are computed.
    """
    k = weights.shape[0]
    if k == 3 and stride == 1:
        for n in range(acc.shape[0]):
            for i in range(acc.shape[1]):
                _depthwise3_row(xp[n, i], xp[n, i + 1], xp[n, i + 2], weights, acc[n, i])
        return
    n_batch, out_h, _, channels = acc.shape
    out_w = min((xp.shape[2] - k) // stride + 1, acc.shape[2])
    for n in range(n_batch):
        for i in range(out_h):
            for j in range(out_w):
                out = acc[n, i, j]
                for c in range(channels):
                    out[c] = 0
                for a in range(k):
                    src_row = xp[n, i * stride + a]
                    for b in range(k):
                        pixel = src_row[j * stride + b]
                        tap = weights[a, b]
                        for c in range(channels):
                            out[c] = madd32(out[c], pixel[c], tap[c])


@njit(cache=True)
def _shifted_padded_row(
    x: np.ndarray,
    n: int,
    src: np.ndarray,
    shifts: np.ndarray,
    buffer_bits: int,
    pad_left: int,
    row: np.ndarray,
) -> None:
    """row[jj] = sat_B(x[n, src, jj - pad_left] << shifts) inside the image, 0 in the pads."""
    height, width, channels = x.shape[1], x.shape[2], x.shape[3]
    if src < 0 or src >= height:
        row[:] = 0
        return
    high = (np.int64(1) << (buffer_bits - 1)) - 1
    low = -high - 1
    first = min(pad_left, row.shape[0])
    last = min(pad_left + width, row.shape[0])
    row[:first] = 0
    image_row = x[n, src]
    if _is_plain(x, shifts, buffer_bits):
        for jj in range(first, last):
            for c in range(channels):
                row[jj, c] = image_row[jj - pad_left, c]
    else:
        for jj in range(first, last):
            for c in range(channels):
                value = np.int64(image_row[jj - pad_left, c]) << shifts[c]
                row[jj, c] = np.int32(min(max(value, low), high))
    row[last:] = 0


@njit(cache=True)
def depthwise3_fused(
    x: np.ndarray,
    shifts: np.ndarray,
    buffer_bits: int,
    pad_top: int,
    pad_left: int,
    weights: np.ndarray,
    params: np.ndarray,
    low: int,
    high: int,
    out: np.ndarray,
) -> None:
    """A whole 3×3 stride-1 DepthwiseConv2D layer with the int32 requantization plan.

    Row by row: the shifted, padded input rows live in a ring of three (each built once), the
    accumulator row stays in cache and is requantized at once (see `finish_clamped_int32`).
    x: (N, H, W, C) int8/uint8/int32; out: (N, Ho, Wo, C).
    """
    n_batch = x.shape[0]
    channels = x.shape[3]
    out_h, out_w = out.shape[1], out.shape[2]
    out_w4 = (out_w + 3) // 4 * 4
    ring = np.zeros((3, out_w4 + 2, channels), np.int32)
    acc_row = np.empty((out_w4, channels), np.int32)
    held = np.full(3, -1, np.int64)
    for n in range(n_batch):
        held[:] = -1
        for i in range(out_h):
            for a in range(3):
                slot = (i + a) % 3
                if held[slot] != i + a:
                    _shifted_padded_row(
                        x, n, i + a - pad_top, shifts, buffer_bits, pad_left, ring[slot]
                    )
                    held[slot] = i + a
            _depthwise3_row(ring[i % 3], ring[(i + 1) % 3], ring[(i + 2) % 3], weights, acc_row)
            _requantize_int32_rows(acc_row, out_w, params, low, high, out[n, i], 0)


@intrinsic
def _depthwise3_float32_row(
    typingctx: object,
    ring: object,
    slot0: object,
    slot1: object,
    slot2: object,
    stride: object,
    weights: object,
    params: object,
    low: object,
    high: object,
    out_row: object,
) -> object:
    """One output row of a 3×3 depthwise layer of stride s, requantized, in LLVM IR vectors.

    ring: (3, >= (Wo - 1)·s + 3, C') float32, the padded input rows i·s, i·s + 1, i·s + 2 in
    slots slot0, slot1, slot2 (output pixel j reads their columns j·s to j·s + 2); weights:
    (3, 3, C') float32 (flipped); params: (7, C') int32, the plan of `finish_clamped_int32`;
    out_row: (Wo, C') int8, int16 or int32; C' a multiple of VECTOR_LANES. For each block of
    VECTOR_LANES channels the 9 weight vectors and the 7 parameter vectors stay in registers
    while the row passes: per output pixel, 9 float32 multiply-adds of ring vectors, an exact
    conversion to int32 (see `depthwise3_fused_float32` for why the float32 sum is exact), then
    clip(shift((clip(acc, A, B) + bias) · scale), low, high) in int32 and a store.
    """
    arrays = ((ring, types.float32, 3), (weights, types.float32, 3), (params, types.int32, 2))
    for array, dtype, ndim in arrays:
        if not isinstance(array, types.Array) or array.dtype != dtype or array.layout != "C":
            return None
        if array.ndim != ndim:
            return None
    if not isinstance(out_row, types.Array) or out_row.ndim != 2 or out_row.layout != "C":
        return None
    if not isinstance(out_row.dtype, types.Integer) or not out_row.dtype.signed:
        return None
    lanes = VECTOR_LANES
    i64 = types.int64
    sig = types.void(ring, i64, i64, i64, i64, weights, params, i64, i64, out_row)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        ring_arg, slot0_, slot1_, slot2_, stride_, weights_arg, params_arg = args[:7]
        low_, high_, out_arg = args[7:]
        ring_struct = context.make_array(signature.args[0])(context, builder, ring_arg)
        out_struct = context.make_array(signature.args[9])(context, builder, out_arg)
        ring_ptr = ring_struct.data
        w_ptr = context.make_array(signature.args[5])(context, builder, weights_arg).data
        p_ptr = context.make_array(signature.args[6])(context, builder, params_arg).data
        out_ptr = out_struct.data
        ring_width, channels = cgutils.unpack_tuple(builder, ring_struct.shape, 3)[1:]
        out_w = cgutils.unpack_tuple(builder, out_struct.shape, 2)[0]
        int64 = ir.IntType(64)
        int32 = ir.IntType(32)
        floats = ir.VectorType(ir.FloatType(), lanes)
        ints = ir.VectorType(int32, lanes)
        stored = ir.VectorType(ir.IntType(signature.args[9].dtype.bitwidth), lanes)
        fmuladd = cgutils.get_or_insert_function(
            builder.module,
            ir.FunctionType(floats, [floats, floats, floats]),
            f"llvm.fmuladd.v{lanes}f32",
        )

        def const(value: int) -> ir.Constant:
            return ir.Constant(int64, value)

        def load(pointer: Any, index: Any, vector: ir.VectorType) -> Any:
            address = builder.bitcast(builder.gep(pointer, [index]), vector.as_pointer())
            return builder.load(address, align=4)

        def splat(value: Any) -> Any:
            value = builder.trunc(value, int32)
            single = builder.insert_element(ir.Constant(ints, ir.Undefined), value, const(0))
            return builder.shuffle_vector(
                single, ir.Constant(ints, ir.Undefined), ir.Constant(ints, [0] * lanes)
            )

        def clip(value: Any, lower: Any, upper: Any) -> Any:
            value = builder.select(builder.icmp_signed("<", value, lower), lower, value)
            return builder.select(builder.icmp_signed(">", value, upper), upper, value)

        low_vector, high_vector = splat(low_), splat(high_)
        slots = (slot0_, slot1_, slot2_)
        with cgutils.for_range_slice(builder, const(0), channels, const(lanes)) as (c0, _):
            taps = [
                load(w_ptr, builder.add(builder.mul(const(tap), channels), c0), floats)
                for tap in range(9)
            ]
            lower, upper, bias, scale, half, right, left = (
                load(p_ptr, builder.add(builder.mul(const(k), channels), c0), ints)
                for k in range(7)
            )
            with cgutils.for_range(builder, out_w) as loop:
                j = loop.index
                column = builder.mul(j, stride_)
                total = ir.Constant(floats, [0.0] * lanes)
                for a in range(3):
                    pixel = builder.add(builder.mul(slots[a], ring_width), column)
                    for b in range(3):
                        index = builder.mul(builder.add(pixel, const(b)), channels)
                        value = load(ring_ptr, builder.add(index, c0), floats)
                        total = builder.call(fmuladd, [value, taps[3 * a + b], total])
                acc = clip(builder.fptosi(total, ints), lower, upper)
                scaled = builder.add(builder.mul(builder.add(acc, bias), scale), half)
                result = clip(
                    builder.shl(builder.ashr(scaled, right), left), low_vector, high_vector
                )
                address = builder.add(builder.mul(j, channels), c0)
                target = builder.bitcast(builder.gep(out_ptr, [address]), stored.as_pointer())
                value = builder.trunc(result, stored) if stored != ints else result
                builder.store(value, target, align=stored.element.width // 8)
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True)
def depthwise3_fused_float32(
    x: np.ndarray,
    shifts: np.ndarray,
    buffer_bits: int,
    pad_top: int,
    pad_left: int,
    stride: int,
    weights: np.ndarray,
    params: np.ndarray,
    low: int,
    high: int,
    out: np.ndarray,
) -> None:
    """`depthwise3_fused` with float32 sums, for layers where they are provably exact, and
    any stride (output pixel (i, j) reads padded input rows i·s to i·s + 2, columns j·s to
    j·s + 2; each input row is shifted once, into a ring of three).

    weights: (3, 3, C') float32, flipped, channels zero-padded to C', a multiple of
    VECTOR_LANES; params: (7, C') int32, the plan of `finish_clamped_int32`, padded alike.

    Exactness: the caller has proved max|xs| · Σ_{a,b} |w[a, b, c]| < 2^24 for every channel,
    so every product and every partial sum of a window is an integer of magnitude < 2^24 that
    float32 holds exactly, whatever the order and whether a multiply-add rounds once or twice;
    the int32 conversion is then exact and no int32 wrap can occur. Float32 vectors do 16
    multiply-adds per instruction with AVX-512 where int32 multiplies are slow.
    """
    n_batch = x.shape[0]
    channels = x.shape[3]
    padded = weights.shape[2]
    out_h, out_w = out.shape[1], out.shape[2]
    ring = np.zeros((3, (out_w - 1) * stride + 3, padded), np.float32)
    out_row = np.empty((out_w, padded), out.dtype)
    held = np.full(3, -1, np.int64)
    for n in range(n_batch):
        held[:] = -1
        for i in range(out_h):
            top = i * stride  # padded input row r lives in ring slot r % 3
            for a in range(3):
                slot = (top + a) % 3
                if held[slot] != top + a:
                    _shifted_padded_row(
                        x, n, top + a - pad_top, shifts, buffer_bits, pad_left, ring[slot]
                    )
                    held[slot] = top + a
            s0, s1, s2 = top % 3, (top + 1) % 3, (top + 2) % 3
            if padded == channels:
                _depthwise3_float32_row(
                    ring, s0, s1, s2, stride, weights, params, low, high, out[n, i]
                )
            else:
                _depthwise3_float32_row(
                    ring, s0, s1, s2, stride, weights, params, low, high, out_row
                )
                out[n, i] = out_row[:, :channels]


@njit(cache=True)
def transpose_int32(xs: np.ndarray, weights: np.ndarray, depthwise: bool, acc: np.ndarray) -> None:
    """acc[n, 2i + a - p, 2j + b - p, f] += xs[n, i, j, c] · w[a, b, c, f], p = (k - 2) // 2.

    Wrapping int32; out-of-range contributions are dropped; acc: (N, 2H, 2W, F), zeroed here.
    Depthwise: weights (k, k, C, 1) and f = c.
    """
    n_batch, height, width, channels = xs.shape
    k = weights.shape[0]
    pad = (k - 2) // 2
    filters = acc.shape[3]
    acc[...] = 0
    for n in range(n_batch):
        for i in range(height):
            for a in range(k):
                row = 2 * i + a - pad
                if row < 0 or row >= 2 * height:
                    continue
                for j in range(width):
                    pixel = xs[n, i, j]
                    for b in range(k):
                        col = 2 * j + b - pad
                        if col < 0 or col >= 2 * width:
                            continue
                        out = acc[n, row, col]
                        if depthwise:
                            tap = weights[a, b]
                            for c in range(channels):
                                out[c] = madd32(out[c], pixel[c], tap[c, 0])
                        else:
                            for c in range(channels):
                                tap = weights[a, b, c]
                                value = pixel[c]
                                for f in range(filters):
                                    out[f] = madd32(out[f], value, tap[f])


@njit(cache=True)
def dense_int32(xs: np.ndarray, weights: np.ndarray, acc: np.ndarray) -> None:
    """acc[n, f] = wrap32(Σ_e xs[n, e] · weights[e, f]); xs (N, E) int32, weights int8 (E, F)."""
    n_batch, length = xs.shape
    units = weights.shape[1]
    for n in range(n_batch):
        out = acc[n]
        for f in range(units):
            out[f] = 0
        x = xs[n]
        e = 0
        while e + 4 <= length:
            x0 = x[e]
            x1 = x[e + 1]
            x2 = x[e + 2]
            x3 = x[e + 3]
            w0 = weights[e]
            w1 = weights[e + 1]
            w2 = weights[e + 2]
            w3 = weights[e + 3]
            for f in range(units):
                total = madd32(out[f], x0, np.int32(w0[f]))
                total = madd32(total, x1, np.int32(w1[f]))
                total = madd32(total, x2, np.int32(w2[f]))
                out[f] = madd32(total, x3, np.int32(w3[f]))
            e += 4
        while e < length:
            x0 = x[e]
            w0 = weights[e]
            for f in range(units):
                out[f] = madd32(out[f], x0, np.int32(w0[f]))
            e += 1


@njit(cache=True)
def dense_fused(
    x: np.ndarray,
    shifts: np.ndarray,
    buffer_bits: int,
    weights: np.ndarray,
    params: np.ndarray,
    low: int,
    high: int,
    out: np.ndarray,
) -> None:
    """A whole Dense1D layer with the int32 requantization plan in one call: `shift_flat`,
    `dense_int32` and `finish_clamped_int32` on x (N, H, W, C) int8, uint8 or int32 (H·W·C =
    E, contiguous) into out (N, 1, 1, F) (int8, int16 or int32): a small layer's cost is
    mostly its calls, not its arithmetic."""
    n_batch = x.shape[0]
    units = weights.shape[1]
    flat = x.reshape((n_batch, weights.shape[0]))
    xs = np.empty(flat.shape, np.int32)
    shift_flat(flat, shifts, buffer_bits, xs)
    acc = np.empty((n_batch, units), np.int32)
    dense_int32(xs, weights, acc)
    _requantize_int32_rows(acc, n_batch, params, low, high, out.reshape((n_batch, units)), 0)


# ---------------------------------------------------------------------------------------------
# Steps 3-8: saturation, bias, pooling, activation, GAP, requantization
# ---------------------------------------------------------------------------------------------


@njit(cache=True, inline="always")
def _saturate(value: int, low: int, high: int) -> int:
    return min(max(value, low), high)


@njit(cache=True, inline="always")
def _rounding_shift(value: int, right: int, half: int, left: int) -> int:
    """shift(v, s): (v + half) >> right for s < 0 (round half up), v << left for s > 0."""
    return ((value + half) >> right) << left


class OutputStage(NamedTuple):
    """Steps 3-8 of one layer after its accumulation, as `finish_layer` takes them.

    Widths of the accumulator (`buffer_bits`, B) and of the post-operation values (`post_bits`,
    P); the bias, already shifted; the activation: `act_kind` with a clamp to
    [act_low, act_high[f]] (ReLU: [0, max_value << max_value_shift]; none: the P-bit range) or
    the LUT (`act_scales`, its index shift, `lut`); the requantization (`out_scales` and its
    shift) and the output range [low, high]. Every per-filter shift comes split into a right
    shift, its rounding term `half` and a left shift (one of the two shifts is 0). A NamedTuple,
    not a dataclass, so that numba kernels take it whole and read its fields by name.
    """

    buffer_bits: int
    post_bits: int
    bias: np.ndarray
    act_kind: int
    act_low: int
    act_high: np.ndarray
    act_scales: np.ndarray
    act_right: np.ndarray
    act_half: np.ndarray
    act_left: np.ndarray
    lut: np.ndarray
    out_scales: np.ndarray
    out_right: np.ndarray
    out_half: np.ndarray
    out_left: np.ndarray
    low: int
    high: int


class PoolWindow(NamedTuple):
    """The pooling of one layer: `kind` (POOL_NONE, POOL_MAX, POOL_AVERAGE = global), and for max
    pooling the square window `size`, its `stride` and the pads before the first row and column
    (`top`, `left`; pad pixels never win)."""

    kind: int
    size: int
    stride: int
    top: int
    left: int


@njit(cache=True, inline="always")
def _signed_range(bits: int) -> tuple[np.int64, np.int64]:
    """[low, high] of a `bits`-bit signed value."""
    high = (np.int64(1) << (bits - 1)) - 1
    return -high - 1, high


@njit(cache=True, inline="always")
def _bias_row(src: np.ndarray, j: int, stage: OutputStage, dst: np.ndarray, k: int) -> None:
    """Steps 3-4 on pixel j of the row `src`: dst[k] = sat_P(sat_B(acc) + bias).

    The helpers of this section index rows (W, F) by pixel rather than take one pixel's view:
    a numba view costs reference-count updates, more than the arithmetic of a narrow pixel."""
    acc_low, acc_high = _signed_range(stage.buffer_bits)
    post_low, post_high = _signed_range(stage.post_bits)
    for f in range(dst.shape[1]):
        value = _saturate(np.int64(src[j, f]), acc_low, acc_high)
        dst[k, f] = _saturate(value + stage.bias[f], post_low, post_high)


@njit(cache=True, inline="always")
def _activate_row(values: np.ndarray, stage: OutputStage) -> None:
    """Step 6 on one pixel, in place: a clamp [act_low, act_high[f]] (ReLU, or none with the
    P-bit range) or the LUT."""
    if stage.act_kind == ACT_LUT:
        post_low, post_high = _signed_range(stage.post_bits)
        for f in range(values.shape[0]):
            scaled = _saturate(values[f] * stage.act_scales[f], post_low, post_high)
            index = _rounding_shift(
                scaled, stage.act_right[f], stage.act_half[f], stage.act_left[f]
            )
            values[f] = stage.lut[_saturate(index, LUT_INDEX_MIN, LUT_INDEX_MAX) + LUT_OFFSET]
    else:
        for f in range(values.shape[0]):
            values[f] = min(max(values[f], stage.act_low), stage.act_high[f])


@njit(cache=True, inline="always")
def _requantize_row(values: np.ndarray, stage: OutputStage, out: np.ndarray, j: int) -> None:
    """Step 8 on one pixel, into pixel j of the row `out`: clip(shift(sat_P(v · scale), s),
    low, high)."""
    post_low, post_high = _signed_range(stage.post_bits)
    for f in range(out.shape[1]):
        scaled = _saturate(values[f] * stage.out_scales[f], post_low, post_high)
        shifted = _rounding_shift(scaled, stage.out_right[f], stage.out_half[f], stage.out_left[f])
        out[j, f] = _saturate(shifted, stage.low, stage.high)


@njit(cache=True, inline="always")
def _fused_row(src: np.ndarray, stage: OutputStage, out: np.ndarray, j: int) -> None:
    """Steps 3-8 on pixel j of the rows `src` and `out`, without pooling and with a clamp
    activation, in one loop."""
    acc_low, acc_high = _signed_range(stage.buffer_bits)
    post_low, post_high = _signed_range(stage.post_bits)
    for f in range(out.shape[1]):
        value = _saturate(np.int64(src[j, f]), acc_low, acc_high)
        value = _saturate(value + stage.bias[f], post_low, post_high)
        value = min(max(value, stage.act_low), stage.act_high[f])
        scaled = _saturate(value * stage.out_scales[f], post_low, post_high)
        shifted = _rounding_shift(scaled, stage.out_right[f], stage.out_half[f], stage.out_left[f])
        out[j, f] = _saturate(shifted, stage.low, stage.high)


@njit(cache=True)
def _finish_clamped(
    acc: np.ndarray, out_h: int, out_w: int, stage: OutputStage, out: np.ndarray
) -> None:
    """No pooling, a clamp activation: every pixel in one fused loop."""
    for n in range(acc.shape[0]):
        for i in range(out_h):
            src = acc[n, i]
            dst = out[n, i]
            for j in range(out_w):
                _fused_row(src, stage, dst, j)


@njit(cache=True)
def _finish_lut(
    acc: np.ndarray, out_h: int, out_w: int, stage: OutputStage, out: np.ndarray
) -> None:
    """No pooling, the LUT activation: bias, activate, requantize every pixel."""
    scratch = np.empty((1, out.shape[3]), np.int64)
    values = scratch[0]
    for n in range(acc.shape[0]):
        for i in range(out_h):
            src = acc[n, i]
            dst = out[n, i]
            for j in range(out_w):
                _bias_row(src, j, stage, scratch, 0)
                _activate_row(values, stage)
                _requantize_row(values, stage, dst, j)


@njit(cache=True)
def _finish_global_average(
    acc: np.ndarray, out_h: int, out_w: int, stage: OutputStage, out: np.ndarray
) -> None:
    """Global average pooling: the activated pixels summed (the running sum clipped to P bits
    after every addition, in row-major order), then requantized once (the scale holds 1/(H·W))."""
    filters = out.shape[3]
    post_low, post_high = _signed_range(stage.post_bits)
    scratch = np.empty((1, filters), np.int64)
    values = scratch[0]
    totals = np.empty(filters, np.int64)
    for n in range(acc.shape[0]):
        totals[:] = 0
        for i in range(out_h):
            src = acc[n, i]
            for j in range(out_w):
                _bias_row(src, j, stage, scratch, 0)
                _activate_row(values, stage)
                for f in range(filters):
                    totals[f] = _saturate(totals[f] + values[f], post_low, post_high)
        _requantize_row(totals, stage, out[n, 0], 0)


@njit(cache=True, inline="always")
def _window_max(
    plane: np.ndarray, pool: PoolWindow, i: int, j: int, best: np.ndarray, k: int
) -> None:
    """best[k] = the per-filter maximum of pooling window (i, j) of `plane` (H, W, ≥F); pad
    pixels are outside the plane and never win."""
    first_row = max(i * pool.stride - pool.top, 0)
    last_row = min(i * pool.stride - pool.top + pool.size, plane.shape[0])
    first_col = max(j * pool.stride - pool.left, 0)
    last_col = min(j * pool.stride - pool.left + pool.size, plane.shape[1])
    filters = best.shape[1]
    for f in range(filters):
        best[k, f] = plane[first_row, first_col, f]
    for pi in range(first_row, last_row):
        for pj in range(first_col, last_col):
            for f in range(filters):
                best[k, f] = max(best[k, f], plane[pi, pj, f])


@njit(cache=True)
def _finish_max_pooled(
    acc: np.ndarray, out_h: int, out_w: int, stage: OutputStage, pool: PoolWindow, out: np.ndarray
) -> None:
    """Max pooling of the biased values, then activation and requantization of each window's
    maximum. Pad pixels act as -infinity: only real pixels of the window compete."""
    filters = out.shape[3]
    scratch = np.empty((1, filters), np.int64)
    values = scratch[0]
    biased = np.empty((out_h, out_w, filters), np.int64)
    for n in range(acc.shape[0]):
        for i in range(out_h):
            src = acc[n, i]
            dst = biased[i]
            for j in range(out_w):
                _bias_row(src, j, stage, dst, j)
        for i in range(out.shape[1]):
            dst = out[n, i]
            for j in range(out.shape[2]):
                _window_max(biased, pool, i, j, scratch, 0)
                _activate_row(values, stage)
                _requantize_row(values, stage, dst, j)


@njit(cache=True)
def finish_layer(
    acc: np.ndarray, out_h: int, out_w: int, stage: OutputStage, pool: PoolWindow, out: np.ndarray
) -> None:
    """Steps 3-8 on the int32 accumulator `acc` (N, ≥out_h, ≥out_w, ≥F); result in `out`.

    `out` (N, rows, cols, F) has the pooled size; `out_h`, `out_w` are the conv output size
    before pooling. One named step per pooling and activation form.
    """
    if pool.kind == POOL_NONE and stage.act_kind != ACT_LUT:
        _finish_clamped(acc, out_h, out_w, stage, out)
    elif pool.kind == POOL_NONE:
        _finish_lut(acc, out_h, out_w, stage, out)
    elif pool.kind == POOL_AVERAGE:
        _finish_global_average(acc, out_h, out_w, stage, out)
    else:
        _finish_max_pooled(acc, out_h, out_w, stage, pool, out)


@njit(cache=True)
def finish_layer_packed(
    acc: np.ndarray,
    out_h: int,
    out_w: int,
    vectors: np.ndarray,
    lut: np.ndarray,
    scalars: np.ndarray,
    pool_kind: int,
    pool_size: int,
    pool_stride: int,
    pool_top: int,
    pool_left: int,
    out: np.ndarray,
) -> None:
    """`finish_layer` with its `OutputStage` packed into arrays and its `PoolWindow` as integers:
    numba types a NamedTuple argument field by field at every call (~2 µs for a stage), arrays
    and integers cheaply.

    vectors: (10, F) int64, the stage's bias, act_high, act_scales, act_right, act_half,
    act_left, out_scales, out_right, out_half, out_left; scalars: (6,) int64, its buffer_bits,
    post_bits, act_kind, act_low, low, high.
    """
    stage = OutputStage(
        scalars[0],
        scalars[1],
        vectors[0],
        scalars[2],
        scalars[3],
        vectors[1],
        vectors[2],
        vectors[3],
        vectors[4],
        vectors[5],
        lut,
        vectors[6],
        vectors[7],
        vectors[8],
        vectors[9],
        scalars[4],
        scalars[5],
    )
    pool = PoolWindow(pool_kind, pool_size, pool_stride, pool_top, pool_left)
    finish_layer(acc, out_h, out_w, stage, pool, out)


@njit(cache=True, inline="always")
def _requantize_int32_row(
    src: np.ndarray, params: np.ndarray, low: int, high: int, dst: np.ndarray
) -> None:
    """One pixel of `finish_clamped_int32`."""
    lower = params[0]
    upper = params[1]
    bias = params[2]
    scale = params[3]
    half = params[4]
    right = params[5]
    left = params[6]
    low32 = np.int32(low)
    high32 = np.int32(high)
    for f in range(dst.shape[0]):
        value = min(max(src[f], lower[f]), upper[f])
        result = requantize32(value, bias[f], scale[f], half[f], right[f], left[f])
        dst[f] = min(max(result, low32), high32)


@njit(cache=True, inline="always")
def _requantize_int32_rows(
    acc: np.ndarray,
    count: int,
    params: np.ndarray,
    low: int,
    high: int,
    out: np.ndarray,
    first: int,
) -> None:
    """out[first + r, f] = the plan of `finish_clamped_int32` on acc[r, f], for r < count and
    every filter f of `out` (acc may be wider): 2-D indexing and the plan's rows taken once,
    where a view per pixel would cost reference-count updates."""
    lower = params[0]
    upper = params[1]
    bias = params[2]
    scale = params[3]
    half = params[4]
    right = params[5]
    left = params[6]
    low32 = np.int32(low)
    high32 = np.int32(high)
    for r in range(count):
        for f in range(out.shape[1]):
            value = min(max(acc[r, f], lower[f]), upper[f])
            result = requantize32(value, bias[f], scale[f], half[f], right[f], left[f])
            out[first + r, f] = min(max(result, low32), high32)


@njit(cache=True)
def finish_clamped_int32(
    acc: np.ndarray,
    out_h: int,
    out_w: int,
    params: np.ndarray,
    low: int,
    high: int,
    out: np.ndarray,
) -> None:
    """Steps 3-8 without pooling and with a clamp activation (ReLU or none), in int32.

    `params` (7, F) int32 holds per filter: clamp bounds A, B, bias, output scale, rounding term,
    right shift, left shift, from `hwmodel`'s requantization plan, which proves that
    clip(shift((clip(acc, A, B) + bias) · scale), low, high) equals the pipeline's
    clip(shift(sat_P(act(sat_P(sat_B(acc) + bias)) · scale)), low, high) and that every
    intermediate fits int32: 16 lanes per vector instead of 8.
    """
    for n in range(acc.shape[0]):
        for i in range(out_h):
            _requantize_int32_rows(acc[n, i], out_w, params, low, high, out[n, i], 0)


@njit(cache=True, inline="always")
def _lut_int32_row(
    src: np.ndarray,
    index_params: np.ndarray,
    lut: np.ndarray,
    value_params: np.ndarray,
    low: int,
    high: int,
    entries: np.ndarray,
    dst: np.ndarray,
) -> None:
    """One pixel of `finish_lut_int32` in three loops, so that the two arithmetic ones
    vectorize: the LUT indices, the entries they read (a gather), their requantization (the
    value plan's bias is 0)."""
    _requantize_int32_row(src, index_params, LUT_INDEX_MIN, LUT_INDEX_MAX, entries)
    for f in range(dst.shape[0]):
        entries[f] = lut[entries[f] + LUT_OFFSET]
    _requantize_int32_row(entries, value_params, low, high, dst)


@njit(cache=True)
def finish_lut_int32(
    acc: np.ndarray,
    out_h: int,
    out_w: int,
    index_params: np.ndarray,
    lut: np.ndarray,
    value_params: np.ndarray,
    low: int,
    high: int,
    out: np.ndarray,
) -> None:
    """Steps 3-8 without pooling and with the LUT activation, in int32.

    Two requantizations of the form of `finish_clamped_int32`, each planned by `hwmodel`
    (`plan_int32_lut`): `index_params` (7, F) takes the accumulator to the LUT index,
    clip(shift((clip(acc, A, B) + bias) · act_scale), -1024, 1023); `value_params` (7, F) takes
    the entry `lut` (int32) to the output, clip(shift(clip(entry, A', B') · out_scale), low,
    high), with bias 0. Every intermediate fits int32 (proved by the plans), so the loop runs
    on int32 vectors instead of scalar int64.
    """
    entries = np.empty(out.shape[3], np.int32)
    for n in range(acc.shape[0]):
        for i in range(out_h):
            for j in range(out_w):
                _lut_int32_row(
                    acc[n, i, j], index_params, lut, value_params, low, high, entries, out[n, i, j]
                )


@njit(cache=True)
def finish_lut_table(
    acc: np.ndarray,
    out_h: int,
    out_w: int,
    index_params: np.ndarray,
    table: np.ndarray,
    out: np.ndarray,
) -> None:
    """Steps 3-8 without pooling and with the LUT activation, by table: the LUT index of each
    value in int32 (`index_params` (7, F), the index plan of `finish_lut_int32`), then
    out = table[f, index + LUT_OFFSET], `table` (F, LUT_ENTRIES) holding every filter's
    requantized output for every entry (`hwmodel.lut_output_table`). Rows at a time: the
    indices of a whole row, then its gathers (a layer with few filters has short pixels)."""
    filters = out.shape[3]
    indices = np.empty((out_w, filters), np.int32)
    for n in range(acc.shape[0]):
        for i in range(out_h):
            _requantize_int32_rows(
                acc[n, i], out_w, index_params, LUT_INDEX_MIN, LUT_INDEX_MAX, indices, 0
            )
            dst = out[n, i]
            for j in range(out_w):
                for f in range(filters):
                    dst[j, f] = table[f, indices[j, f] + LUT_OFFSET]


@njit(cache=True)
def max_pool(src: np.ndarray, pool: PoolWindow, out: np.ndarray) -> None:
    """Max pooling of finished outputs `src` (N, H, W, F) into `out` (N, rows, cols, F): the
    windows of `_finish_max_pooled`, pad pixels never winning.

    `hwmodel` pools a layer's outputs instead of its biased accumulators when its activation
    is a clamp: every step from the accumulator to the output is then nondecreasing (sat, +
    bias, clamp, · scale >= 0, rounding shift, clip), and max(f(a), f(b)) = f(max(a, b)) for a
    nondecreasing f, so both orders give the same bytes.
    """
    rows, cols = out.shape[1], out.shape[2]
    if (
        pool.size == 2
        and pool.stride == 2
        and 2 * rows <= src.shape[1]
        and 2 * cols <= src.shape[2]
        and pool.top == 0
        and pool.left == 0
    ):
        # the common 2×2 stride-2 pooling with every window inside: two rows at a time, the
        # filters of a pixel pair in one vector loop
        filters = out.shape[3]
        for n in range(src.shape[0]):
            for i in range(rows):
                upper = src[n, 2 * i]
                lower = src[n, 2 * i + 1]
                dst = out[n, i]
                for j in range(cols):
                    for f in range(filters):
                        top = max(upper[2 * j, f], upper[2 * j + 1, f])
                        dst[j, f] = max(top, max(lower[2 * j, f], lower[2 * j + 1, f]))
        return
    for n in range(src.shape[0]):
        plane = src[n]
        for i in range(rows):
            dst = out[n, i]
            for j in range(cols):
                _window_max(plane, pool, i, j, dst, j)


@njit(cache=True)
def add_layer(
    a: np.ndarray,
    b: np.ndarray,
    a_shift: np.ndarray,
    b_shift: np.ndarray,
    buffer_bits: int,
    right: np.ndarray,
    half: np.ndarray,
    left: np.ndarray,
    low: int,
    high: int,
    out: np.ndarray,
) -> None:
    """Add on (M, C) int32 views: clip(shift(sat_B(sat_B(a << sa) + sat_B(b << sb)), s), lo, hi)."""
    high_b = (np.int64(1) << (buffer_bits - 1)) - 1
    low_b = -high_b - 1
    for m in range(a.shape[0]):
        for c in range(a.shape[1]):
            left_a = _saturate(np.int64(a[m, c]) << a_shift[c], low_b, high_b)
            left_b = _saturate(np.int64(b[m, c]) << b_shift[c], low_b, high_b)
            total = _saturate(left_a + left_b, low_b, high_b)
            out[m, c] = _saturate(_rounding_shift(total, right[c], half[c], left[c]), low, high)


@njit(cache=True)
def concatenate2(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """A Concatenate's two inputs (P, Ca) and (P, Cb) into (P, Ca + Cb), all of one dtype
    (`hwmodel` passes whole pixels as words of up to 8 bytes)."""
    width = a.shape[1]
    for p in range(a.shape[0]):
        for c in range(width):
            out[p, c] = a[p, c]
        for c in range(b.shape[1]):
            out[p, width + c] = b[p, c]


# ---------------------------------------------------------------------------------------------
# Fused convolutions: float32 sums and the int32 requantization in one pass
# ---------------------------------------------------------------------------------------------


#: bytes of one cache line, and of the widest vector numba loads (AVX-512): a vector at an
#: address not a multiple of it straddles two lines.
CACHE_LINE = 64


@njit(cache=True)
def _aligned_scratch(rows: int, cols: int) -> np.ndarray:
    """An uninitialised (rows, cols) int32 array starting on a cache line (numba's own
    allocations are only 32-byte aligned: half the AVX-512 loads and stores would split)."""
    lanes = CACHE_LINE // 4
    buffer = np.empty(rows * cols + lanes, np.int32)
    offset = ((-buffer.ctypes.data) % CACHE_LINE) // 4
    return buffer[offset : offset + rows * cols].reshape((rows, cols))


@njit(cache=True)
def _float32_row(
    x: np.ndarray,
    weights: np.ndarray,
    chunk: int,
    x_row: int,
    pixel_step: int,
    row_step: int,
    span: int,
    acc: np.ndarray,
    pixels: int,
) -> None:
    """acc[p, f] = wrap32(Σ_g x[x_row + p · pixel_step + r · row_step + t] · weights[g, f]) for
    p < pixels (a multiple of TILE_PIXELS) and every filter f < F' of `weights` (length, F'),
    over the terms g = r · span + t of [0, length): one row of output pixels of `conv_float32`,
    into the (>= pixels, F') int32 array `acc`.

    The terms are passed in blocks of K_BLOCK, each over the whole row, so that a block of
    weights stays in L1 while the row's tiles read it; a block's partial sums are added to
    the int32 accumulators in memory (each piece is a sub-run of one of the `chunk`-long runs
    the caller proved exact, hence exact too, and the pieces add in wrapping int32).
    """
    length, filters = weights.shape
    rows_apart = np.int64(row_step)  # a literal 0 from the 1×1 caller would not type the tile
    f0 = 0
    while f0 < filters:
        vectors = min((filters - f0) // VECTOR_LANES, TILE_VECTORS)
        for k0 in range(0, length, K_BLOCK):
            k1 = min(k0 + K_BLOCK, length)
            for p in range(0, pixels, TILE_PIXELS):
                x0 = x_row + p * pixel_step
                acc0 = p * filters + f0
                start = k0
                while start < k1:
                    stop = min((start // chunk + 1) * chunk, k1)
                    geometry = (
                        x0, pixel_step, rows_apart, f0, filters, span, start, stop, acc0, filters
                    )  # fmt: skip
                    later = start > 0
                    if vectors == TILE_VECTORS:
                        _float32_tile(x, weights, acc, geometry, later, TILE_PIXELS, TILE_VECTORS)
                    elif vectors >= 2:
                        _float32_tile(x, weights, acc, geometry, later, TILE_PIXELS, 2)
                    else:
                        _float32_tile(x, weights, acc, geometry, later, TILE_PIXELS, 1)
                    start = stop
        if vectors == TILE_VECTORS:
            f0 += TILE_VECTORS * VECTOR_LANES
        else:
            f0 += (2 if vectors >= 2 else 1) * VECTOR_LANES


@njit(cache=True)
def conv_fused_float32(
    xp: np.ndarray,
    weights: np.ndarray,
    chunk: int,
    stride: int,
    kh: int,
    kw: int,
    params: np.ndarray,
    low: int,
    high: int,
    out: np.ndarray,
) -> None:
    """`conv_float32` then `finish_clamped_int32`, one output row at a time.

    xp: (N, Hp, Wp, C) float32, padded and wide enough for every tile of the row (rounded up to
    TILE_PIXELS); weights: (kh·kw·C, F') float32 as `conv_float32` takes them, with the same
    exactness proof for `chunk`; params: (7, F) int32, the plan of `finish_clamped_int32`;
    out: (N, Ho, Wo, F) int8, int16 or int32. A row's int32 sums stay in cache and are
    requantized at once instead of in a second pass over a whole accumulator.
    """
    n_batch, out_h, out_w, _ = out.shape
    height, width, channels = xp.shape[1], xp.shape[2], xp.shape[3]
    filters = weights.shape[1]
    out_w4 = -(-out_w // TILE_PIXELS) * TILE_PIXELS
    acc = _aligned_scratch(out_w4, filters)
    span = kw * channels
    pixel_step = stride * channels
    row_step = width * channels
    for n in range(n_batch):
        for i in range(out_h):
            x_row = (n * height + i * stride) * row_step
            _float32_row(xp, weights, chunk, x_row, pixel_step, row_step, span, acc, out_w4)
            _requantize_int32_rows(acc, out_w, params, low, high, out[n, i], 0)


@njit(cache=True)
def conv_fused_lut_float32(
    xp: np.ndarray,
    weights: np.ndarray,
    chunk: int,
    stride: int,
    kh: int,
    kw: int,
    index_params: np.ndarray,
    table: np.ndarray,
    out: np.ndarray,
) -> None:
    """`conv_float32` then `finish_lut_table`, one output row at a time: `conv_fused_float32`
    for a LUT activation, the row's sums turned into LUT indices and outputs while in cache."""
    n_batch, out_h, out_w, filters_out = out.shape
    height, width, channels = xp.shape[1], xp.shape[2], xp.shape[3]
    filters = weights.shape[1]
    out_w4 = -(-out_w // TILE_PIXELS) * TILE_PIXELS
    acc = _aligned_scratch(out_w4, filters)
    indices = np.empty((out_w, filters_out), np.int32)
    span = kw * channels
    pixel_step = stride * channels
    row_step = width * channels
    for n in range(n_batch):
        for i in range(out_h):
            x_row = (n * height + i * stride) * row_step
            _float32_row(xp, weights, chunk, x_row, pixel_step, row_step, span, acc, out_w4)
            _requantize_int32_rows(
                acc, out_w, index_params, LUT_INDEX_MIN, LUT_INDEX_MAX, indices, 0
            )
            dst = out[n, i]
            for j in range(out_w):
                for f in range(filters_out):
                    dst[j, f] = table[f, indices[j, f] + LUT_OFFSET]


@njit(cache=True)
def conv1x1_fused_float32(
    x: np.ndarray,
    shifts: np.ndarray,
    buffer_bits: int,
    weights: np.ndarray,
    chunk: int,
    params: np.ndarray,
    low: int,
    high: int,
    out: np.ndarray,
) -> None:
    """A whole 1×1 stride-1 layer with the int32 requantization plan: a GEMM over the pixels.

    x: (P, C) int8, uint8 or int32, the pixels of the batch; weights (C, F') and `chunk` as
    `conv_float32` takes them; params (7, F) int32, the plan of `finish_clamped_int32`;
    out: (P, F) int8, int16 or int32. Per block of GEMM_BLOCK_PIXELS pixels: the shifted
    inputs sat_B(x << shift) as float32, their sums, and the requantized outputs, the block's
    inputs and sums staying in cache (one pass over memory instead of three).
    """
    pixels, channels = x.shape
    filters = weights.shape[1]
    block = GEMM_BLOCK_PIXELS
    xs = np.zeros((block, channels), np.float32)
    acc = _aligned_scratch(block, filters)
    high_b = (np.int64(1) << (buffer_bits - 1)) - 1
    low_b = -high_b - 1
    plain = _is_plain(x, shifts, buffer_bits)
    for p0 in range(0, pixels, block):
        rows = min(block, pixels - p0)
        if plain:
            for r in range(rows):
                for c in range(channels):
                    xs[r, c] = x[p0 + r, c]
        else:
            for r in range(rows):
                for c in range(channels):
                    value = np.int64(x[p0 + r, c]) << shifts[c]
                    xs[r, c] = min(max(value, low_b), high_b)
        if rows < block:
            xs[rows:] = 0
        tiles = -(-rows // TILE_PIXELS) * TILE_PIXELS
        _float32_row(xs, weights, chunk, 0, channels, 0, channels, acc, tiles)
        _requantize_int32_rows(acc, rows, params, low, high, out, p0)


# ---------------------------------------------------------------------------------------------
# 8-bit convolutions on AVX-512 VNNI: exact int32 dot products of 4 byte pairs
# ---------------------------------------------------------------------------------------------


def _has_vnni() -> bool:
    """Whether numba's compile target has AVX-512 VNNI (`vpdpbusd`) with 16-lane vectors."""
    features = config.CPU_FEATURES
    if features is None:
        features = llvm.get_host_cpu_features().flatten()
    enabled = {feature[1:] for feature in features.split(",") if feature.startswith("+")}
    return VECTOR_LANES == 16 and "avx512vnni" in enabled


#: whether `conv_fused_vnni` can run here (`hwmodel` takes it for 8-bit plain inputs).
VNNI = _has_vnni()

#: the integers `_vnni_tile` takes, in order, as one tuple.
VNNI_GEOMETRY = ("x0", "pixel_step", "row_step", "rows", "groups", "w_stride", "f0")


@intrinsic
def _vnni_tile(
    typingctx: object,
    x: object,
    w: object,
    init: object,
    acc: object,
    geometry: object,
    acc0: object,
    acc_stride: object,
    pixels: object,
    vectors: object,
) -> object:
    """One register tile of the VNNI convolution, in LLVM IR with `llvm.x86.avx512.vpdpbusd`
    (x bytes) or `llvm.x86.avx512.vpdpwssd` (x int16).

    With `geometry` = (x0, pixel_step, row_step, rows, groups, w_stride, f0), K the terms per
    dword (4 for bytes, 2 for int16), for p < pixels and the 16 · `vectors` filters from f0
    (flat C-order indices, in elements of x; w is int32):

        acc[acc0 + p · acc_stride + q] = init[f0 + q] + Σ_{r < rows, g < groups} Σ_{k < K}
            x[x0 + p · pixel_step + r · row_step + K·g + k] · (element k of w[(r · groups
            + g) · w_stride + f0 + q])

    in wrapping int32, bytes as u8(x) · s8(w) and int16 as s16(x) · s16(w): both instructions
    add the K exact products of a dword (each within ±2^15 for bytes, ±2^30 for int16) to the
    int32 lane in wrapping arithmetic, without saturation (vpdpwssd's two products may sum
    past int32 only for weights of -2^15, and then wrap like the lane), so the tile is exact
    for every input.
    """
    literals = (pixels, vectors)
    if not all(isinstance(value, types.IntegerLiteral) for value in literals):
        return None
    if not isinstance(x, types.Array) or x.dtype not in (types.uint8, types.int16):
        return None
    per_dword = 4 if x.dtype == types.uint8 else 2
    expected = ((x, x.dtype), (w, types.int32), (init, types.int32), (acc, types.int32))
    for array, dtype in expected:
        if not isinstance(array, types.Array) or array.dtype != dtype or array.layout != "C":
            return None
    if geometry != types.UniTuple(types.int64, len(VNNI_GEOMETRY)):
        return None
    n_pixels, n_vectors = cast(Any, pixels).literal_value, cast(Any, vectors).literal_value
    lanes = 16
    sig = types.void(x, w, init, acc, geometry, types.int64, types.int64, pixels, vectors)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        x_arg, w_arg, init_arg, acc_arg, geometry_arg, acc0_, acc_stride_ = args[:7]
        x_ptr = context.make_array(signature.args[0])(context, builder, x_arg).data
        w_ptr = context.make_array(signature.args[1])(context, builder, w_arg).data
        init_ptr = context.make_array(signature.args[2])(context, builder, init_arg).data
        acc_ptr = context.make_array(signature.args[3])(context, builder, acc_arg).data
        (x0_, pixel_step_, row_step_, rows_, groups_, w_stride_, f0_) = cgutils.unpack_tuple(
            builder, geometry_arg, len(VNNI_GEOMETRY)
        )
        int64 = ir.IntType(64)
        int32 = ir.IntType(32)
        ints = ir.VectorType(int32, lanes)
        dot = cgutils.get_or_insert_function(
            builder.module,
            ir.FunctionType(ints, [ints, ints, ints]),
            "llvm.x86.avx512.vpdpbusd.512" if per_dword == 4 else "llvm.x86.avx512.vpdpwssd.512",
        )

        def const(value: int) -> ir.Constant:
            return ir.Constant(int64, value)

        slots = [
            [cgutils.alloca_once(builder, ints) for _ in range(n_vectors)] for _ in range(n_pixels)
        ]
        for v in range(n_vectors):
            pointer = builder.gep(init_ptr, [builder.add(f0_, const(v * lanes))])
            start = builder.load(builder.bitcast(pointer, ints.as_pointer()), align=4)
            for p in range(n_pixels):
                builder.store(start, slots[p][v])
        splat_mask = ir.Constant(ints, [0] * lanes)
        with cgutils.for_range_slice(builder, const(0), rows_, const(1)) as (r, _):
            x_row = builder.add(x0_, builder.mul(r, row_step_))
            w_row = builder.mul(r, groups_)
            with cgutils.for_range_slice(builder, const(0), groups_, const(1)) as (g, _):
                x_group = builder.add(x_row, builder.mul(g, const(per_dword)))
                w_group = builder.add(builder.mul(builder.add(w_row, g), w_stride_), f0_)
                weights = []
                for v in range(n_vectors):
                    pointer = builder.gep(w_ptr, [builder.add(w_group, const(v * lanes))])
                    weights.append(
                        builder.load(builder.bitcast(pointer, ints.as_pointer()), align=4)
                    )
                for p in range(n_pixels):
                    offset = builder.add(x_group, builder.mul(pixel_step_, const(p)))
                    pointer = builder.bitcast(builder.gep(x_ptr, [offset]), int32.as_pointer())
                    value = builder.load(pointer, align=1)
                    single = builder.insert_element(
                        ir.Constant(ints, ir.Undefined), value, ir.Constant(int32, 0)
                    )
                    splat = builder.shuffle_vector(
                        single, ir.Constant(ints, ir.Undefined), splat_mask
                    )
                    for v in range(n_vectors):
                        total = builder.call(dot, [builder.load(slots[p][v]), splat, weights[v]])
                        builder.store(total, slots[p][v])
        for p in range(n_pixels):
            row_offset = builder.add(acc0_, builder.mul(acc_stride_, const(p)))
            for v in range(n_vectors):
                pointer = builder.gep(acc_ptr, [builder.add(row_offset, const(v * lanes))])
                pointer = builder.bitcast(pointer, ints.as_pointer())
                builder.store(builder.load(slots[p][v]), pointer, align=4)
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True)
def pad_bytes(
    x: np.ndarray,
    shifts: np.ndarray,
    buffer_bits: int,
    offset: int,
    pad_top: int,
    pad_left: int,
    fill: np.ndarray,
    xp: np.ndarray,
) -> bool:
    """xp[n, pad_top + i, pad_left + j, c] = sat_B(x[n, i, j, c] << shifts[c]) + offset, pads
    fill[c] + offset: the uint8 input of `conv_fused_vnni` (offset 128 for int8 x, 0 for
    uint8). Returns False as soon as a value falls outside [0, 255] (`xp` is then unusable):
    a shifted input may not fit a byte (`hwmodel` checks the pads before)."""
    n_batch, height, width, channels = x.shape
    high = (np.int64(1) << (buffer_bits - 1)) - 1
    low = -high - 1
    padded_w = xp.shape[2]
    if _is_plain(x, shifts, buffer_bits) and pad_left + width <= padded_w:
        # x + offset lies in [0, 255] for 8-bit x: flat row copies, as `shift_and_pad`
        row_length = padded_w * channels
        pattern = np.empty(row_length, np.uint8)
        for j in range(padded_w):
            for c in range(channels):
                pattern[j * channels + c] = fill[c] + offset
        head = pad_left * channels
        tail = head + width * channels
        xp_flat = xp.reshape(-1)
        x_flat = x.reshape(-1)
        bias = np.uint8(offset)
        for n in range(n_batch):
            for i in range(xp.shape[1]):
                si = i - pad_top
                base = (n * xp.shape[1] + i) * row_length
                row = xp_flat[base : base + row_length]
                if si < 0 or si >= height:
                    _copy(pattern, row)
                    continue
                _copy(pattern[:head], row[:head])
                source = (n * height + si) * (width * channels)
                src = x_flat[source : source + tail - head]
                dst = row[head:tail]
                for e in range(dst.shape[0]):
                    dst[e] = np.uint8(src[e]) + bias  # int8 + 128 wraps to the right byte
                _copy(pattern[tail:], row[tail:])
        return True
    for n in range(n_batch):
        for i in range(xp.shape[1]):
            si = i - pad_top
            dst = xp[n, i]
            for j in range(padded_w):
                sj = j - pad_left
                if si < 0 or si >= height or sj < 0 or sj >= width:
                    for c in range(channels):
                        dst[j, c] = fill[c] + offset
                else:
                    src = x[n, si, sj]
                    bad = False
                    for c in range(channels):
                        value = min(max(np.int64(src[c]) << shifts[c], low), high) + offset
                        bad |= value < 0 or value > 255
                        dst[j, c] = value
                    if bad:
                        return False
    return True


@njit(cache=True, inline="always")
def _vnni_row(
    xq: np.ndarray,
    weights: np.ndarray,
    init: np.ndarray,
    acc: np.ndarray,
    x_row: int,
    pixel_step: int,
    row_step: int,
    rows: int,
    tile: int,
) -> None:
    """acc[p, f] = init[f] + the window sums of output pixel p of one row, for p < acc's rows
    (a multiple of `tile`), on VNNI tiles (`_vnni_tile`; x_row: the row's first input element).
    The pooled and the plain convolution are two kernels, each inlining this: with both in one
    function LLVM compiled the plain loop nest worse (a 16×16×3 → 8 layer 2.6 -> 4.3 µs)."""
    filters = weights.shape[1]
    groups = weights.shape[0] // rows
    f0 = 0
    while f0 < filters:
        vectors = _vnni_block(tile, (filters - f0) // 16)
        for p in range(0, acc.shape[0], tile):
            geometry = (x_row + p * pixel_step, pixel_step, row_step, rows, groups, filters, f0)
            acc0 = p * filters + f0
            if tile == 8:
                if vectors == 2:
                    _vnni_tile(xq, weights, init, acc, geometry, acc0, filters, 8, 2)
                else:
                    _vnni_tile(xq, weights, init, acc, geometry, acc0, filters, 8, 1)
            elif tile == 4:
                if vectors == 4:
                    _vnni_tile(xq, weights, init, acc, geometry, acc0, filters, 4, 4)
                elif vectors == 2:
                    _vnni_tile(xq, weights, init, acc, geometry, acc0, filters, 4, 2)
                else:
                    _vnni_tile(xq, weights, init, acc, geometry, acc0, filters, 4, 1)
            elif vectors == 4:
                _vnni_tile(xq, weights, init, acc, geometry, acc0, filters, 6, 4)
            elif vectors == 2:
                _vnni_tile(xq, weights, init, acc, geometry, acc0, filters, 6, 2)
            else:
                _vnni_tile(xq, weights, init, acc, geometry, acc0, filters, 6, 1)
        f0 += vectors * 16


@njit(cache=True)
def conv_fused_vnni(
    xq: np.ndarray,
    padded_h: int,
    padded_w: int,
    channels: int,
    weights: np.ndarray,
    init: np.ndarray,
    stride: int,
    rows: int,
    tile: int,
    params: np.ndarray,
    low: int,
    high: int,
    out: np.ndarray,
) -> None:
    """A convolution with the int32 plan, one output row at a time, on VNNI tiles of `tile`
    output pixels (4, 6 or 8, `vnni_tile_pixels`; the input is padded for whole tiles).

    xq: the (N, Hp, Wp, C) input flattened, either uint8 (from `pad_bytes`, with at least 3
    spare bytes after it) or int16 (sat_B(x << shift) from `shift_and_pad`, with at least one
    spare element): a window row's last dword may read past it, against zero weights. weights:
    (rows · groups, F') int32, each lane K weights of consecutive terms of a kernel row (K = 4
    int8 for bytes, 2 int16 for int16; the row's kw·C terms padded with zero weights to K ·
    groups); init: (F',) int32, the accumulators' start: -offset · Σw per filter for bytes
    (offset: what `pad_bytes` added), zeros for int16. Then
    acc = wrap32(Σ (x + offset) · w) - offset · Σw = wrap32(Σ x · w), requantized by `params`
    as `conv_fused_float32` does.
    """
    n_batch, out_h, out_w, _ = out.shape
    acc = _aligned_scratch(-(-out_w // tile) * tile, weights.shape[1])
    pixel_step = stride * channels
    row_step = padded_w * channels
    for n in range(n_batch):
        for i in range(out_h):
            x_row = (n * padded_h + i * stride) * row_step
            _vnni_row(xq, weights, init, acc, x_row, pixel_step, row_step, rows, tile)
            _requantize_int32_rows(acc, out_w, params, low, high, out[n, i], 0)


@njit(cache=True)
def conv_pooled_vnni(
    xq: np.ndarray,
    padded_h: int,
    padded_w: int,
    channels: int,
    weights: np.ndarray,
    init: np.ndarray,
    stride: int,
    rows: int,
    tile: int,
    params: np.ndarray,
    low: int,
    high: int,
    out: np.ndarray,
) -> None:
    """`conv_fused_vnni` followed by a 2×2 stride-2 max pooling whose windows all lie inside
    the convolution's output: `out` (N, R, C', F) pools its first 2R × 2C' outputs, a pair of
    rows at a time, before they are requantized. The int32 plan is nondecreasing in the
    accumulator (see `max_pool`), so max(f(a), ...) = f(max(a, ...)): the same bytes, a
    quarter of the pixels requantized."""
    n_batch, out_rows, out_cols, _ = out.shape
    filters = weights.shape[1]
    out_wt = -(-(2 * out_cols) // tile) * tile
    upper = _aligned_scratch(out_wt, filters)
    lower = _aligned_scratch(out_wt, filters)
    pooled = _aligned_scratch(out_cols, filters)
    pixel_step = stride * channels
    row_step = padded_w * channels
    for n in range(n_batch):
        for i in range(out_rows):
            x_row = (n * padded_h + 2 * i * stride) * row_step
            _vnni_row(xq, weights, init, upper, x_row, pixel_step, row_step, rows, tile)
            x_row += stride * row_step
            _vnni_row(xq, weights, init, lower, x_row, pixel_step, row_step, rows, tile)
            for j in range(out_cols):
                for f in range(filters):
                    top = max(upper[2 * j, f], upper[2 * j + 1, f])
                    pooled[j, f] = max(top, max(lower[2 * j, f], lower[2 * j + 1, f]))
            _requantize_int32_rows(pooled, out_cols, params, low, high, out[n, i], 0)


#: output pixels per tile of `conv_fused_vnni` and the most 16-filter vectors a tile of that
#: many pixels holds in registers (pixels × vectors accumulators, the vectors' weights and a
#: broadcast: at most 32 registers).
VNNI_TILES = {6: 4, 8: 2, 4: 4}


def vnni_block_vectors(tile: int, remaining: int) -> int:
    """16-filter vectors of the next filter block of `conv_fused_vnni`: 4, 2 or 1 (an
    8-pixel tile has registers for 2)."""
    if remaining >= 4 and tile != 8:
        return 4
    return 2 if remaining >= 2 else 1


#: the same rule inside the kernels
_vnni_block = njit(cache=True, inline="always")(vnni_block_vectors)


def vnni_tile_pixels(out_w: int, filters: int) -> int:
    """The pixels per tile of `conv_fused_vnni` for rows of `out_w` output pixels and `filters`
    (a multiple of 16) filters: the tile that issues the fewest instructions per output row,
    counted as each tile's pixels × vectors dot products plus its pixels broadcasts and
    vectors weight loads over the row's tiles (padded to whole tiles) and filter blocks. A
    narrow row gains most: 8 output pixels take one 8-pixel tile, not two 6-pixel ones."""
    best, best_cost = 6, -1
    for pixels in VNNI_TILES:
        tiles = -(-out_w // pixels)
        cost = 0
        remaining = filters // 16
        while remaining > 0:
            vectors = vnni_block_vectors(pixels, remaining)
            cost += tiles * (pixels * vectors + pixels + vectors)
            remaining -= vectors
        if best_cost < 0 or cost < best_cost:
            best, best_cost = pixels, cost
    return best


def _pad_vnni(
    x: np.ndarray,
    shifts: np.ndarray,
    buffer_bits: int,
    offset: int,
    pad_top: int,
    pad_left: int,
    fill: np.ndarray,
    xp: np.ndarray,
) -> bool:
    """The VNNI kernel's input: `pad_bytes` into uint8 `xp`, `shift_and_pad` into int16 (True:
    the caller proved the fit). Chosen by xp's type as numba compiles (only the kind a model
    uses is compiled); plain Python has no use for it."""
    raise NotImplementedError("numba only")


@overload(_pad_vnni)
def _pad_vnni_typed(
    x: Any,
    shifts: Any,
    buffer_bits: Any,
    offset: Any,
    pad_top: Any,
    pad_left: Any,
    fill: Any,
    xp: Any,
) -> Any:
    # the implementations repeat the typing function's signature, annotations included (numba
    # compares them)
    if xp.dtype == types.uint8:

        def bytes_input(
            x: Any,
            shifts: Any,
            buffer_bits: Any,
            offset: Any,
            pad_top: Any,
            pad_left: Any,
            fill: Any,
            xp: Any,
        ) -> Any:
            return pad_bytes(x, shifts, buffer_bits, offset, pad_top, pad_left, fill, xp)

        return bytes_input

    def words_input(
        x: Any,
        shifts: Any,
        buffer_bits: Any,
        offset: Any,
        pad_top: Any,
        pad_left: Any,
        fill: Any,
        xp: Any,
    ) -> Any:
        shift_and_pad(x, shifts, buffer_bits, pad_top, pad_left, fill, xp)
        return True

    return words_input


@njit(cache=True, inline="always")
def _vnni_convolve(
    xq: np.ndarray,
    shape: tuple[int, int, int, int],
    weights: np.ndarray,
    init: np.ndarray,
    stride: int,
    rows: int,
    tile: int,
    params: np.ndarray,
    low: int,
    high: int,
    pool2: bool,
    out: np.ndarray,
) -> None:
    """`conv_pooled_vnni` when `pool2`, else `conv_fused_vnni`, on xq padded to `shape`."""
    _, padded_h, padded_w, channels = shape
    if pool2:
        conv_pooled_vnni(
            xq,
            padded_h,
            padded_w,
            channels,
            weights,
            init,
            stride,
            rows,
            tile,
            params,
            low,
            high,
            out,
        )
    else:
        conv_fused_vnni(
            xq,
            padded_h,
            padded_w,
            channels,
            weights,
            init,
            stride,
            rows,
            tile,
            params,
            low,
            high,
            out,
        )


#: the integers `conv_vnni_layer` takes, in order, as one tuple.
VNNI_LAYER = (
    "buffer_bits",
    "offset",
    "words",
    "pad_top",
    "pad_left",
    "padded_h",
    "padded_w",
    "stride",
    "rows",
    "tile",
    "low",
    "high",
    "out_h",
    "out_w",
    "pool_kind",
    "pool_size",
    "pool_stride",
    "pool_top",
    "pool_left",
)


@njit(cache=True)
def conv_vnni_layer(
    x: np.ndarray,
    shifts: np.ndarray,
    fill: np.ndarray,
    weights: np.ndarray,
    init: np.ndarray,
    params: np.ndarray,
    plan: tuple,
    kind: np.ndarray,
    out: np.ndarray,
) -> bool:
    """A whole common convolution on VNNI tiles in one call: the shifted, padded input in the
    dtype of `kind` (an empty uint8 or int16 array: bytes from `pad_bytes`, or int16 from
    `shift_and_pad`; `words` in `plan` says the same), `conv_fused_vnni` or, for a 2×2
    stride-2 pooling, `conv_pooled_vnni`, else max pooling (`max_pool`) when `pool_kind` is
    POOL_MAX, into `out`. `plan` holds the integers of VNNI_LAYER; the scratch is allocated
    here, not by the caller (a numpy allocation and a kernel dispatch per step cost more than a
    small layer's arithmetic). The dtype is a type, not a flag, so that a model compiles only
    the input kind it uses (each kind's tiles take seconds to compile). Returns False when a
    shifted input does not fit a byte (`out` is then unusable; the caller checks that int16
    inputs fit before)."""
    (
        buffer_bits,
        offset,
        _words,  # the dtype of `kind` says it
        pad_top,
        pad_left,
        padded_h,
        padded_w,
        stride,
        rows,
        tile,
        low,
        high,
        out_h,
        out_w,
        pool_kind,
        pool_size,
        pool_stride,
        pool_top,
        pool_left,
    ) = plan
    n_batch, channels = x.shape[0], x.shape[3]
    shape = (n_batch, padded_h, padded_w, channels)
    size = n_batch * padded_h * padded_w * channels
    # the common 2×2 stride-2 pooling with every window inside is done on the accumulators
    pool2 = (
        pool_kind == POOL_MAX
        and pool_size == 2
        and pool_stride == 2
        and pool_top == 0
        and pool_left == 0
        and 2 * out.shape[1] <= out_h
        and 2 * out.shape[2] <= out_w
    )
    full = out
    if pool_kind == POOL_MAX and not pool2:
        full = np.empty((n_batch, out_h, out_w, out.shape[3]), out.dtype)
    target = out if pool2 else full
    xq = np.empty(size + CACHE_LINE, kind.dtype)  # a row's last dword reads past
    if not _pad_vnni(
        x, shifts, buffer_bits, offset, pad_top, pad_left, fill, xq[:size].reshape(shape)
    ):
        return False
    _vnni_convolve(xq, shape, weights, init, stride, rows, tile, params, low, high, pool2, target)
    if pool_kind == POOL_MAX and not pool2:
        max_pool(full, PoolWindow(pool_kind, pool_size, pool_stride, pool_top, pool_left), out)
    return True


#: every kernel the hardware model may call, for `kernels_are_cached`.
ALL_KERNELS = (
    shift_and_pad,
    shift_flat,
    conv_float32,
    conv_fused_float32,
    conv_fused_lut_float32,
    conv1x1_fused_float32,
    conv_int32,
    depthwise_int32,
    depthwise3_fused,
    depthwise3_fused_float32,
    transpose_int32,
    dense_int32,
    dense_fused,
    finish_layer,
    finish_layer_packed,
    finish_clamped_int32,
    finish_lut_int32,
    finish_lut_table,
    max_pool,
    add_layer,
    concatenate2,
) + ((pad_bytes, conv_fused_vnni, conv_pooled_vnni, conv_vnni_layer) if VNNI else ())


def kernels_are_cached() -> bool:
    """Whether numba's on-disk cache holds code for this machine for every kernel.

    When it does not, the first run compiles (about 1-2 s per kernel): the CLI says so.
    """
    try:
        for kernel in ALL_KERNELS:
            cache = kernel._cache
            magic = kernel.targetctx.codegen().magic_tuple()
            index = cache._cache_file._load_index()
            if not any(key[1] == magic for key in index):
                return False
    except (AttributeError, OSError, TypeError, IndexError, ValueError):
        return False
    return True


def kernels_compiled_in_this_process() -> int:
    """How many kernel specialisations this process compiled (numba cache misses) so far.

    The sum over this module's numba dispatchers of `len(dispatcher.stats.cache_misses)`: a
    caller compares it before and after a run to say whether the run compiled kernels (the
    first run on a machine, or after a numba/akidac upgrade) or loaded them all from the cache.
    """
    from numba.core.dispatcher import Dispatcher

    dispatchers = {id(v): v for v in globals().values() if isinstance(v, Dispatcher)}
    total = 0
    for dispatcher in dispatchers.values():
        try:
            total += len(dispatcher.stats.cache_misses)
        except AttributeError:  # a dispatcher without a cache (numba internals changed)
            total += len(getattr(dispatcher, "_cache_misses", ()))
    return total
