"""The hardware model: executes Akida layer records bit-exactly, fast, on one CPU thread.

It checks every record first (`validate_record` raises `ProgramError` naming the layer and what
is wrong, so a bad program never reaches a numba kernel), prepares each layer's weights once,
then runs layers with the kernels of `kernels.py`. It must agree bit for bit with the reference
interpreter `akidac.ir.reference`; convolutions take a float32 fast path only when a bound on
the layer's weights and inputs proves every partial sum exact, and int32 kernels otherwise.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np

from akidac.backends.akida import kernels
from akidac.errors import ProgramError
from akidac.target import limits as target_limits
from akidac.target.layer_record import ENUM_PARAMS, LAYER_TYPES, LayerRecord

#: The engine's acceptance tables, derived from the target's one table (`LAYER_LIMITS`).
#: They are deliberately looser than the compiler's rules, as the vendor's engine is: a stride is
#: checked against every stride the layer type allows at any kernel size (Conv2D accepts stride 2
#: with a 5×5 kernel here; `legalize` and the verifier never emit that pairing), and max pooling
#: against the largest pool any layer type fuses (3, the input conv's). The engine must run every
#: program the compiler writes, and refuse what would make its kernels read out of bounds.
_LIMITS_BY_LAYER = {limits.akida_layer: limits for limits in target_limits.LAYER_LIMITS.values()}
KERNEL_SIZES: dict[str, tuple[int, ...]] = {
    layer: tuple(sorted(limits.kernels))
    for layer, limits in _LIMITS_BY_LAYER.items()
    if limits.kernels
}
STRIDES: dict[str, tuple[int, ...]] = {
    layer: tuple(sorted({s for strides in limits.strides_by_kernel.values() for s in strides}))
    for layer, limits in _LIMITS_BY_LAYER.items()
    if layer in ("InputConv2D", "Conv2D", "DepthwiseConv2D")  # transposes: stride 2, checked apart
}
MAX_KERNEL_SIZE = max(max(sizes) for sizes in KERNEL_SIZES.values())
MAX_POOL_SIZE = max(size for limits in _LIMITS_BY_LAYER.values() for size in limits.pool_sizes)
#: widths in bits of outputs, accumulators and weights.
MAX_BITS = max(
    target_limits.POST_OP_BITS,
    target_limits.INPUT_CONV_ACCUMULATOR_BITS,
    target_limits.DENSE_HOST_OUTPUT_BITS,
)
MAX_WEIGHT_BITS = max(target_limits.WEIGHT_BITS)
#: signed shifts (`output_shift`, `activation_shift`) lie in [-31, 31]: the vendor's engine
#: crashes on an output shift of -32. Unsigned shifts lie in [0, 31].
MAX_SHIFT = target_limits.OUTPUT_SHIFT_MAX

_CONV_TYPES = ("InputConv2D", "Conv2D", "DepthwiseConv2D")
_TRANSPOSE_TYPES = ("Conv2DTranspose", "DepthwiseConv2DTranspose")
_NEURAL_TYPES = (*_CONV_TYPES, *_TRANSPOSE_TYPES, "Dense1D")
_DEPTHWISE_TYPES = ("DepthwiseConv2D", "DepthwiseConv2DTranspose")

#: engine dtype of every variable.
VARIABLE_DTYPES: dict[str, np.dtype] = {
    "weights": np.dtype(np.int8),
    "input_shift": np.dtype(np.uint8),
    "bias": np.dtype(np.int8),
    "bias_shift": np.dtype(np.uint8),
    "max_value": np.dtype(np.uint8),
    "max_value_shift": np.dtype(np.uint8),
    "activation_scales": np.dtype(np.uint8),
    "activation_shift": np.dtype(np.int8),
    "lut_values": np.dtype(np.int32),
    "output_scales": np.dtype(np.uint8),
    "output_shift": np.dtype(np.int8),
    "padding_value": np.dtype(np.uint8),
    "a_shift": np.dtype(np.uint8),
    "b_shift": np.dtype(np.uint8),
}
_SIGNED_SHIFTS = ("output_shift", "activation_shift")
_UNSIGNED_SHIFTS = ("input_shift", "bias_shift", "max_value_shift", "a_shift", "b_shift")


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------


def _fail(record: LayerRecord, message: str) -> ProgramError:
    return ProgramError(
        f"layer {record.name!r} ({record.layer_type}): {message}", node=str(record.name)
    )


def _int_param(record: LayerRecord, key: str, low: int, high: int) -> int:
    """A required integer parameter within [low, high]."""
    if key not in record.params:
        raise _fail(record, f"missing parameter {key!r}")
    value = record.params[key]
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise _fail(record, f"parameter {key!r} must be an integer, not {value!r}")
    if not low <= int(value) <= high:
        raise _fail(record, f"parameter {key!r} = {value} is outside [{low}, {high}]")
    return int(value)


def _enum_param(record: LayerRecord, key: str, default: str | None = None) -> str:
    """An enum parameter, by name; `default` when absent (or required when None)."""
    if key not in record.params:
        if default is None:
            raise _fail(record, f"missing parameter {key!r}")
        return default
    value = record.params[key]
    if value not in ENUM_PARAMS[key]:
        allowed = ", ".join(ENUM_PARAMS[key])
        raise _fail(record, f"parameter {key!r} = {value!r} is not one of {allowed}")
    return str(value)


def _variable(record: LayerRecord, key: str, shape: tuple[int, ...] | None) -> np.ndarray:
    """A required variable with the engine's dtype and, when given, this exact shape."""
    if key not in record.variables:
        raise _fail(record, f"missing variable {key!r}")
    value = record.variables[key]
    if not isinstance(value, np.ndarray):
        raise _fail(record, f"variable {key!r} is not an array")
    if value.dtype != VARIABLE_DTYPES[key]:
        raise _fail(record, f"variable {key!r} has dtype {value.dtype}, not {VARIABLE_DTYPES[key]}")
    if shape is not None and value.shape != shape:
        raise _fail(record, f"variable {key!r} has shape {value.shape}, expected {shape}")
    if key in _SIGNED_SHIFTS and value.size and np.abs(value.astype(np.int64)).max() > MAX_SHIFT:
        raise _fail(record, f"variable {key!r} holds a shift outside [-31, 31]")
    if key in _UNSIGNED_SHIFTS and value.size and int(value.max()) > MAX_SHIFT:
        raise _fail(record, f"variable {key!r} holds a shift above 31")
    return value


def _check_weights(record: LayerRecord, shape_rank: int) -> np.ndarray:
    """The weights: int8 of the given rank, within `weights_bits` when that is given."""
    weights = _variable(record, "weights", None)
    if weights.ndim != shape_rank or 0 in weights.shape:
        raise _fail(record, f"variable 'weights' has shape {weights.shape}")
    if "weights_bits" in record.params:
        bits = _int_param(record, "weights_bits", 1, MAX_WEIGHT_BITS)
        low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        if int(weights.min()) < low or int(weights.max()) > high:
            raise _fail(record, f"weights exceed weights_bits = {bits} ([{low}, {high}])")
    return weights


def _check_neural(record: LayerRecord) -> None:
    """Kernel geometry, bit widths, activation, pooling and per-filter variables."""
    kind = record.layer_type
    if kind == "Dense1D":
        weights = _check_weights(record, 2)
        in_channels, filters = weights.shape
        if "units" in record.params:
            _int_param(record, "units", filters, filters)
    else:
        weights = _check_weights(record, 4)
        k = _int_param(record, "kernel_size", 1, MAX_KERNEL_SIZE)
        if k not in KERNEL_SIZES[kind]:
            raise _fail(record, f"kernel_size {k} is not one of {KERNEL_SIZES[kind]}")
        if weights.shape[:2] != (k, k):
            raise _fail(record, f"weights shape {weights.shape} does not match kernel_size {k}")
        in_channels = weights.shape[2]
        if kind in _DEPTHWISE_TYPES:
            if weights.shape[3] != 1:
                raise _fail(record, f"depthwise weights must be (K, K, C, 1), not {weights.shape}")
            filters = in_channels
        else:
            filters = weights.shape[3]
            if "filters" in record.params:
                _int_param(record, "filters", filters, filters)
        if kind in _CONV_TYPES:
            stride = _int_param(record, "kernel_stride", 1, max(STRIDES[kind]))
            if stride not in STRIDES[kind] or (kind == "InputConv2D" and stride > k):
                raise _fail(record, f"kernel_stride {stride} is not allowed with kernel {k}")
            _enum_param(record, "padding")
    _int_param(record, "output_bits", 1, MAX_BITS)
    _int_param(record, "buffer_bits", 2, MAX_BITS)
    _int_param(record, "post_op_buffer_bits", 2, MAX_BITS)
    if kind == "InputConv2D":
        _variable(record, "padding_value", (in_channels,))
    else:
        _variable(record, "input_shift", (in_channels,))
    for key in ("bias", "bias_shift", "output_scales", "output_shift"):
        _variable(record, key, (filters,))
    activation = _enum_param(record, "activation", "NoActivation")
    if activation == "ReLU":
        _variable(record, "max_value", (filters,))
        _variable(record, "max_value_shift", (filters,))
    elif activation == "LUT":
        _variable(record, "activation_scales", (filters,))
        _variable(record, "activation_shift", (filters,))
        _variable(record, "lut_values", (target_limits.LUT_ENTRIES,))
    pool_type = _enum_param(record, "pool_type", "NoPooling")
    if pool_type != "NoPooling" and kind not in _CONV_TYPES:
        raise _fail(record, f"pool_type {pool_type} is not supported by {kind}")
    if pool_type == "Max":
        size = _int_param(record, "pool_size", 1, MAX_POOL_SIZE)
        _int_param(record, "pool_stride", 1, size)


def validate_record(record: LayerRecord, available: Collection[str] | None = None) -> None:
    """Check that a record is complete and consistent; raise `ProgramError` if it is not.

    Checks the type, the parameters (enum names, kernel, stride, bit widths, shifts), the
    variables (present, engine dtype, shapes consistent with the weights) and, when `available`
    (the names of the earlier layers) is given, that every inbound exists.
    """
    if not isinstance(record, LayerRecord):
        raise ProgramError(f"not a layer record: {type(record).__name__}")
    if not isinstance(record.name, str) or not record.name:
        raise ProgramError(f"a layer record has no name ({record.layer_type})")
    if record.layer_type not in LAYER_TYPES:
        raise _fail(record, f"unknown layer type (known: {', '.join(LAYER_TYPES)})")
    if not isinstance(record.params, dict) or not isinstance(record.variables, dict):
        raise _fail(record, "params and variables must be dictionaries")
    inbounds = list(record.inbounds)
    merge = target_limits.MERGE_INPUTS  # the target's fan-in of Add and Concatenate
    expected_inbounds = {"Add": (merge, merge), "Concatenate": (merge, merge), "InputData": (0, 0)}
    low, high = expected_inbounds.get(record.layer_type, (0, 1))
    if not low <= len(inbounds) <= high:
        raise _fail(record, f"has {len(inbounds)} inbounds, expected {low} to {high}")
    if available is not None:
        for name in inbounds:
            if name not in available:
                raise _fail(record, f"inbound {name!r} is not an earlier layer of the program")
    kind = record.layer_type
    if kind in _NEURAL_TYPES:
        _check_neural(record)
    elif kind == "Add":
        _int_param(record, "output_bits", 1, MAX_BITS)
        _int_param(record, "buffer_bits", 2, MAX_BITS)
        shapes = {_variable(record, key, None).shape for key in ("a_shift", "b_shift")}
        shapes.add(_variable(record, "output_shift", None).shape)
        if len(shapes) != 1 or len(next(iter(shapes))) != 1:
            raise _fail(record, "a_shift, b_shift and output_shift must be equal-length vectors")


def validate_records(records: Sequence[LayerRecord]) -> None:
    """Validate every record, unique names, inbounds that name earlier layers, and the graph's
    activation sizes (`validate_activations`)."""
    if not records:
        raise ProgramError("the program has no layers")
    seen: set[str] = set()
    for record in records:
        validate_record(record, seen)
        if record.name in seen:
            raise _fail(record, "duplicate layer name")
        seen.add(record.name)
    validate_activations(records)


def validate_activations(records: Sequence[LayerRecord]) -> None:
    """Check the program's merges before anything runs: a merge (Add, Concatenate) states its
    `output_dims` and they follow from its inbounds' (same H × W; Add the same channels,
    Concatenate their sum). With the fan-in of the target (`validate_record`) and every layer's
    computed output checked against its `output_dims` as it runs, the declared dims bound what
    running allocates, and `executor.check_program` holds those within the memory budget: a few
    bytes claiming huge merges are refused at load, not after gigabytes of allocation."""
    dims = {r.name: tuple(int(d) for d in r.output_dims) for r in records}
    for record in records:
        own = dims[record.name]
        if any(d <= 0 for d in own):
            raise _fail(record, f"output_dims {own} must be positive")
        if record.layer_type not in ("Add", "Concatenate"):
            continue
        sources = [dims[name] for name in record.inbounds]
        if len(own) != 3 or any(len(d) != 3 for d in sources):
            raise _fail(record, "a merge and its inbounds must state (H, W, C) output_dims")
        channels = [d[2] for d in sources]
        expected = sum(channels) if record.layer_type == "Concatenate" else channels[0]
        if (
            len({d[:2] for d in sources}) != 1
            or own[:2] != sources[0][:2]
            or (record.layer_type == "Add" and len(set(channels)) != 1)
            or own[2] != expected
        ):
            raise _fail(record, f"inbounds of {sources} do not give output_dims {own}")


# ---------------------------------------------------------------------------------------------
# Shared geometry and requantization helpers
# ---------------------------------------------------------------------------------------------


_GEOMETRY_CACHE: dict[tuple[int, int, int, int, str], tuple] = {}


def _window_geometry(
    record: LayerRecord, height: int, width: int, k: int, s: int, padding: str
) -> tuple[tuple[int, int], tuple[int, int], int, int]:
    """(pads_h, pads_w, out_h, out_w) of a k×k stride-s window; a window that does not fit the
    input is a `ProgramError`. Memoized: it depends only on its numbers, and runs per layer."""
    key = (height, width, k, s, padding)
    cached = _GEOMETRY_CACHE.get(key)
    if cached is not None:
        return cached
    result = _compute_geometry(record, height, width, k, s, padding)
    if len(_GEOMETRY_CACHE) < 4096:
        _GEOMETRY_CACHE[key] = result
    return result


def _compute_geometry(
    record: LayerRecord, height: int, width: int, k: int, s: int, padding: str
) -> tuple[tuple[int, int], tuple[int, int], int, int]:
    pads_h = padding_pads(height, k, s, padding)
    pads_w = padding_pads(width, k, s, padding)
    out_h = (height + sum(pads_h) - k) // s + 1
    out_w = (width + sum(pads_w) - k) // s + 1
    if out_h < 1 or out_w < 1:
        raise _fail(record, f"a {k}×{k} kernel does not fit the {height}×{width} input")
    return pads_h, pads_w, out_h, out_w


def padding_pads(size: int, kernel: int, stride: int, padding: str) -> tuple[int, int]:
    """(before, after) pads: Same (extra pixel after), SameUpper (extra before) or Valid."""
    if padding == "Valid":
        return 0, 0
    remainder = size % stride
    total = max(kernel - (stride if remainder == 0 else remainder), 0)
    small, large = total // 2, total - total // 2
    return (large, small) if padding == "SameUpper" else (small, large)


def _split_shifts(shifts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-channel (right, half, left) of `shift(v, s)`: round-half-up right shift or left shift."""
    signed = shifts.astype(np.int64)
    right = np.maximum(-signed, 0)
    left = np.maximum(signed, 0)
    half = np.where(right > 0, np.left_shift(1, np.maximum(right - 1, 0)), 0).astype(np.int64)
    return right, half, left


def output_dtype(bits: int, *, always_signed: bool = False) -> np.dtype:
    """uint8 for <= 4 bits (except Add), else the smallest signed type holding `bits`."""
    if bits <= 4 and not always_signed:
        return np.dtype(np.uint8)
    return np.dtype(np.int8 if bits <= 8 else np.int16 if bits <= 16 else np.int32)


def output_limits(bits: int, *, always_signed: bool = False) -> tuple[int, int]:
    """Output clip range: [0, 2^b - 1] for <= 4 bits (except Add), else signed."""
    if bits <= 4 and not always_signed:
        return 0, (1 << bits) - 1
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def _as_int32(record: LayerRecord, x: np.ndarray, name: str = "input") -> np.ndarray:
    """An integer input as int32 (every Akida tensor fits 32 bits), or a ProgramError."""
    if not isinstance(x, np.ndarray) or x.dtype.kind not in "iu":
        kind = getattr(x, "dtype", type(x).__name__)
        raise _fail(record, f"{name} must be an integer array, not {kind}")
    if x.dtype.itemsize < 4 or x.dtype == np.int32:
        return x.astype(np.int32, copy=False)
    if x.size and (int(x.min()) < -(1 << 31) or int(x.max()) >= (1 << 31)):
        raise _fail(record, f"{name} holds values outside 32 bits")
    return x.astype(np.int32)


#: input dtypes the kernels read directly (each is one numba specialisation); others become int32.
_KERNEL_INPUT_DTYPES = (np.dtype(np.int8), np.dtype(np.uint8), np.dtype(np.int32))


def _kernel_input(record: LayerRecord, x: np.ndarray, name: str = "input") -> np.ndarray:
    """A contiguous int8, uint8 or int32 array for the kernels, or a ProgramError."""
    if isinstance(x, np.ndarray) and x.dtype in _KERNEL_INPUT_DTYPES:
        return np.ascontiguousarray(x)
    return np.ascontiguousarray(_as_int32(record, x, name))


def _magnitude_bound(x: np.ndarray) -> int:
    """An upper bound of |x|: from the dtype for 8-bit arrays, else from the values."""
    if x.dtype == np.int8:
        return 128
    if x.dtype == np.uint8:
        return 255
    if x.size == 0:
        return 0
    return max(abs(int(x.min())), abs(int(x.max())))


INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1


def _compose_clips(
    low1: np.ndarray, high1: np.ndarray, low2: np.ndarray, high2: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """clip(clip(v, low1, high1), low2, high2) == clip(v, low, high): return (low, high).

    Clips are monotone and the identity between their bounds, so their composition is a clip
    (a constant when the intervals do not meet).
    """
    return np.clip(low1, low2, high2), np.clip(high1, low2, high2)


def plan_int32_requantization(
    buffer_bits: int,
    post_bits: int,
    bias: np.ndarray,
    act_low: int,
    act_high: np.ndarray,
    scales: np.ndarray,
    shifts: tuple[np.ndarray, np.ndarray, np.ndarray],
    low: int,
    high: int,
) -> np.ndarray | None:
    """Per-filter int32 parameters for `kernels.finish_clamped_int32`, or None when unsafe.

    Steps 3-8 without pooling, for a clamp activation, are
    out = g(clamp(sat_P(sat_B(acc) + bias))) with g(v) = clip(shift(sat_P(v · scale)), low, high)
    monotone in v. g is constant below v_low (the largest v with g(v) <= low) and above v_high
    (the smallest v with g(v) >= high), so the clamp may be narrowed to [v_low, v_high]; all
    clips then compose into one, moved before the bias: out = g(clip(acc, A, B) + bias). The
    plan is returned only when every intermediate of that formula, at both ends of the now
    bounded range, fits int32 and the sat_P inside g never binds there.
    """
    right, half, left = shifts
    post_low, post_high = -(1 << (post_bits - 1)), (1 << (post_bits - 1)) - 1
    filters = bias.shape[0]

    def after_scale(v: np.ndarray) -> np.ndarray:
        return ((np.clip(v * scales, post_low, post_high) + half) >> right) << left

    def g(v: np.ndarray) -> np.ndarray:
        return np.clip(after_scale(v), low, high)

    # v_high: the smallest v with g(v) >= high (post_high when there is none).
    lower = np.full(filters, post_low, np.int64)
    upper = np.full(filters, post_high, np.int64)
    while np.any(lower < upper):
        middle = (lower + upper) // 2
        reached = g(middle) >= high
        upper = np.where(reached, middle, upper)
        lower = np.where(reached, lower, middle + 1)
    v_high = lower
    # v_low: the largest v with g(v) <= low (post_low when there is none).
    lower = np.full(filters, post_low, np.int64)
    upper = np.full(filters, post_high, np.int64)
    while np.any(lower < upper):
        middle = (lower + upper + 1) // 2
        below = g(middle) <= low
        lower = np.where(below, middle, lower)
        upper = np.where(below, upper, middle - 1)
    v_low = lower
    bound_low, bound_high = _compose_clips(
        np.full(filters, post_low, np.int64),
        np.full(filters, post_high, np.int64),
        np.full(filters, act_low, np.int64),
        act_high,
    )
    bound_low, bound_high = _compose_clips(bound_low, bound_high, v_low, v_high)
    acc_low, acc_high = -(1 << (buffer_bits - 1)), (1 << (buffer_bits - 1)) - 1
    clamp_low, clamp_high = _compose_clips(
        np.full(filters, acc_low, np.int64),
        np.full(filters, acc_high, np.int64),
        bound_low - bias,
        bound_high - bias,
    )
    checks = [clamp_low, clamp_high, bias, bound_low, bound_high]
    for end in (bound_low, bound_high):
        product = end * scales
        if np.any(product < post_low) or np.any(product > post_high):
            return None  # the sat_P after the scale would bind inside the range
        checks += [product, product + half, after_scale(end)]
    if any(np.any(c < INT32_MIN) or np.any(c > INT32_MAX) for c in checks):
        return None
    return np.stack([clamp_low, clamp_high, bias, scales, half, right, left]).astype(np.int32)


def plan_int32_lut(
    buffer_bits: int,
    post_bits: int,
    bias: np.ndarray,
    act_scales: np.ndarray,
    act_shifts: tuple[np.ndarray, np.ndarray, np.ndarray],
    out_scales: np.ndarray,
    out_shifts: tuple[np.ndarray, np.ndarray, np.ndarray],
    low: int,
    high: int,
) -> tuple[np.ndarray, np.ndarray] | None:
    """The two int32 plans of `kernels.finish_lut_int32` (index, value), or None when unsafe.

    Steps 3-8 without pooling, with the LUT, are index = clip(shift(sat_P(v · act_scale)),
    -1024, 1023) of v = sat_P(sat_B(acc) + bias), then out = clip(shift(sat_P(lut[index] ·
    out_scale)), low, high). Both are the form `plan_int32_requantization` plans, with the
    identity clamp (no activation): the index with the layer's B, bias and activation scale;
    the value with B = 32 (an entry is int32: sat_B is the identity) and bias 0, since
    sat_P(sat_P(e) · s) = sat_P(e · s) for a scale s >= 0 (uint8): an entry beyond the P-bit
    range saturates either way. Each plan narrows its input to the range where its result
    still changes and checks every intermediate at both ends (the shifts of the target reach
    31 bits and P is 32, so nothing holds from the bit widths alone); when either plan is
    refused, the layer keeps the int64 `finish_layer`.
    """
    filters = bias.shape[0]
    post_low, post_high = -(1 << (post_bits - 1)), (1 << (post_bits - 1)) - 1
    no_clamp = np.full(filters, post_high, np.int64)
    index_plan = plan_int32_requantization(
        buffer_bits,
        post_bits,
        bias,
        post_low,
        no_clamp,
        act_scales,
        act_shifts,
        target_limits.LUT_INDEX_MIN,
        target_limits.LUT_INDEX_MAX,
    )
    if index_plan is None:
        return None
    value_plan = plan_int32_requantization(
        32,
        post_bits,
        np.zeros(filters, np.int64),
        post_low,
        no_clamp,
        out_scales,
        out_shifts,
        low,
        high,
    )
    if value_plan is None:
        return None
    return index_plan, value_plan


def lut_output_table(
    lut: np.ndarray,
    post_bits: int,
    scales: np.ndarray,
    shifts: tuple[np.ndarray, np.ndarray, np.ndarray],
    low: int,
    high: int,
) -> np.ndarray:
    """(F, LUT_ENTRIES) int64: table[f, e] = clip(shift(sat_P(lut[e] · scale[f])), low, high).

    After the LUT, step 8 depends only on the filter and the entry read, so a layer with few
    filters requantizes each of its LUT_ENTRIES entries once, here, and its kernel
    (`kernels.finish_lut_table`) only computes the index and reads the table. The formula is
    `finish_layer`'s, in int64 (an entry is int32 and a scale uint8: the product and a left
    shift of at most 31 of the P-bit result stay within int64).
    """
    right, half, left = (s[:, None] for s in shifts)
    post_low, post_high = -(1 << (post_bits - 1)), (1 << (post_bits - 1)) - 1
    scaled = np.clip(lut[None, :].astype(np.int64) * scales[:, None], post_low, post_high)
    return np.clip(((scaled + half) >> right) << left, low, high)


#: the fewest filters for which the LUT's int32 kernel beats the int64 one: its three vector
#: loops cost ~80 ns per pixel, repaid from ~64 filters on (measured per element on this
#: Zen 4, one thread: 20 vs 5 ns at 4 filters, 2.6 vs 2.1 at 32, 1.7 vs 1.75 at 64, 0.8 vs
#: 5.6 at 480).
LUT_INT32_MIN_FILTERS = 64


@dataclass
class _Epilogue:
    """Steps 3-8 of a CNP/FNP layer, prepared once: per-filter int64 vectors and codes."""

    buffer_bits: int
    post_bits: int
    bias: np.ndarray
    pool_kind: int
    pool_size: int
    pool_stride: int
    pool_valid: bool
    act_kind: int
    act_low: int
    act_high: np.ndarray
    act_scales: np.ndarray
    act_shifts: tuple[np.ndarray, np.ndarray, np.ndarray]
    lut: np.ndarray
    out_scales: np.ndarray
    out_shifts: tuple[np.ndarray, np.ndarray, np.ndarray]
    low: int
    high: int
    dtype: np.dtype
    #: the int32 plan of `plan_int32_requantization`, when it applies and is safe (a clamp
    #: activation, no pooling or max pooling: then the outputs are pooled).
    int32_params: np.ndarray | None = None
    #: the LUT's int32 plans (index, value) of `plan_int32_lut`, when they apply and are safe.
    lut_int32_params: tuple[np.ndarray, np.ndarray] | None = None
    #: the LUT's int32 index plan alone (`plan_int32_requantization` to [-1024, 1023]), when
    #: it applies and is safe: with `lut_table`, the path of layers with few filters.
    lut_index_params: np.ndarray | None = None

    @classmethod
    def from_record(cls, record: LayerRecord, filters: int) -> _Epilogue:
        params = record.params
        variables = record.variables
        post_bits = int(params["post_op_buffer_bits"])
        bias = variables["bias"].astype(np.int64) << variables["bias_shift"].astype(np.int64)
        bias = np.clip(bias, -(1 << (post_bits - 1)), (1 << (post_bits - 1)) - 1)
        pool_type = params.get("pool_type", "NoPooling")
        pool_kind = {"NoPooling": kernels.POOL_NONE, "Max": kernels.POOL_MAX}.get(
            str(pool_type), kernels.POOL_AVERAGE
        )
        activation = params.get("activation", "NoActivation")
        empty = np.zeros(filters, np.int64)
        act_low = -(1 << (post_bits - 1))
        act_high = np.full(filters, (1 << (post_bits - 1)) - 1, np.int64)
        act_scales = empty
        act_shifts = (empty, empty, empty)
        lut = np.zeros(target_limits.LUT_ENTRIES, np.int64)
        act_kind = kernels.ACT_NONE
        if activation == "ReLU":
            act_kind = kernels.ACT_RELU
            act_low = 0
            act_high = variables["max_value"].astype(np.int64) << variables[
                "max_value_shift"
            ].astype(np.int64)
        elif activation == "LUT":
            act_kind = kernels.ACT_LUT
            act_scales = variables["activation_scales"].astype(np.int64)
            act_shifts = _split_shifts(variables["activation_shift"])
            lut = variables["lut_values"].astype(np.int64)
        bits = int(params["output_bits"])
        low, high = output_limits(bits)
        out_scales = variables["output_scales"].astype(np.int64)
        out_shifts = _split_shifts(variables["output_shift"])
        buffer_bits = int(params["buffer_bits"])
        int32_params = lut_int32_params = lut_index_params = None
        if pool_kind != kernels.POOL_AVERAGE and act_kind != kernels.ACT_LUT:
            # with max pooling too: the outputs are pooled instead (`kernels.max_pool`)
            int32_params = plan_int32_requantization(
                buffer_bits, post_bits, bias, act_low, act_high, out_scales, out_shifts, low, high
            )
        elif pool_kind == kernels.POOL_NONE:
            lut_index_params = plan_int32_requantization(
                buffer_bits,
                post_bits,
                bias,
                -(1 << (post_bits - 1)),
                np.full(filters, (1 << (post_bits - 1)) - 1, np.int64),
                act_scales,
                act_shifts,
                target_limits.LUT_INDEX_MIN,
                target_limits.LUT_INDEX_MAX,
            )
            lut_int32_params = plan_int32_lut(
                buffer_bits,
                post_bits,
                bias,
                act_scales,
                act_shifts,
                out_scales,
                out_shifts,
                low,
                high,
            )
        return cls(
            buffer_bits=buffer_bits,
            post_bits=post_bits,
            bias=bias,
            pool_kind=pool_kind,
            pool_size=int(params.get("pool_size", 1)) if pool_kind == kernels.POOL_MAX else 1,
            pool_stride=int(params.get("pool_stride", 1)) if pool_kind == kernels.POOL_MAX else 1,
            pool_valid=params.get("padding") == "Valid",
            act_kind=act_kind,
            act_low=act_low,
            act_high=act_high,
            act_scales=act_scales,
            act_shifts=act_shifts,
            lut=lut,
            out_scales=out_scales,
            out_shifts=out_shifts,
            low=low,
            high=high,
            dtype=output_dtype(bits),
            int32_params=int32_params,
            lut_int32_params=lut_int32_params,
            lut_index_params=lut_index_params,
        )

    def _pool_axis(self, size: int) -> tuple[int, int]:
        """(pooled size, pads before) of one axis: TF "SAME" or valid."""
        if self.pool_valid:
            return (size - self.pool_size) // self.pool_stride + 1, 0
        remainder = size % self.pool_stride
        total = max(self.pool_size - (self.pool_stride if remainder == 0 else remainder), 0)
        return -(-size // self.pool_stride), total // 2

    def run(self, record: LayerRecord, acc: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
        """Apply steps 3-8 to the int32 accumulator (its first out_h × out_w pixels)."""
        n_batch = acc.shape[0]
        filters = self.bias.shape[0]
        top = left = 0
        if self.pool_kind == kernels.POOL_MAX:
            rows, top = self._pool_axis(out_h)
            cols, left = self._pool_axis(out_w)
            if rows < 1 or cols < 1:
                raise _fail(record, f"max pooling does not fit its {out_h}×{out_w} input")
        elif self.pool_kind == kernels.POOL_AVERAGE:
            rows, cols = 1, 1
        else:
            rows, cols = out_h, out_w
        # <= 8-bit outputs (uint8 0..15 included) are written as int8 bytes, then viewed
        out = np.empty((n_batch, rows, cols, filters), self.kernel_dtype)
        if self.int32_params is not None and self.pool_kind == kernels.POOL_MAX:
            pool = kernels.PoolWindow(self.pool_kind, self.pool_size, self.pool_stride, top, left)
            full = np.empty((n_batch, out_h, out_w, filters), self.kernel_dtype)
            kernels.finish_clamped_int32(
                acc, out_h, out_w, self.int32_params, self.low, self.high, full
            )
            kernels.max_pool(full, pool, out)
            return out.view(self.dtype)
        if self.int32_params is not None:
            kernels.finish_clamped_int32(
                acc, out_h, out_w, self.int32_params, self.low, self.high, out
            )
            return out.view(self.dtype)
        if self.lut_table is not None:
            kernels.finish_lut_table(acc, out_h, out_w, self.lut_index_params, self.lut_table, out)
            return out.view(self.dtype)
        if self.lut_int32_params is not None and filters >= LUT_INT32_MIN_FILTERS:
            index_plan, value_plan = self.lut_int32_params
            kernels.finish_lut_int32(
                acc, out_h, out_w, index_plan, self.lut32, value_plan, self.low, self.high, out
            )
            return out.view(self.dtype)
        kernels.finish_layer_packed(
            acc,
            out_h,
            out_w,
            self.stage_vectors,
            self.lut,
            self.stage_scalars,
            self.pool_kind,
            self.pool_size,
            self.pool_stride,
            top,
            left,
            out,
        )
        return out.view(self.dtype)

    def __post_init__(self) -> None:
        #: the array type the kernel writes: int8 for every <= 8-bit output (set once: a
        #: property cost ~2 µs per layer per run)
        self.kernel_dtype = np.dtype(np.int8) if self.dtype.itemsize == 1 else self.dtype
        #: whether the kernel's array is already of the output dtype (no view needed)
        self.same_dtype = self.kernel_dtype == self.dtype
        #: the LUT's entries as the int32 kernel reads them (they are int32 in the record)
        self.lut32 = np.ascontiguousarray(self.lut.astype(np.int32))
        #: (F, LUT_ENTRIES) in `kernel_dtype`: every filter's output for every LUT index, when
        #: the index plan is safe and the layer has few filters (see `lut_output_table`)
        self.lut_table: np.ndarray | None = None
        filters = self.bias.shape[0]
        if self.lut_index_params is not None and filters < LUT_INT32_MIN_FILTERS:
            self.lut_table = lut_output_table(
                self.lut, self.post_bits, self.out_scales, self.out_shifts, self.low, self.high
            ).astype(self.kernel_dtype)
        #: steps 3-8 as `kernels.finish_layer` takes them (built once, not per run)
        self.stage = kernels.OutputStage(
            self.buffer_bits,
            self.post_bits,
            self.bias,
            self.act_kind,
            self.act_low,
            self.act_high,
            self.act_scales,
            *self.act_shifts,
            self.lut,
            self.out_scales,
            *self.out_shifts,
            self.low,
            self.high,
        )
        #: the same stage as `kernels.finish_layer_packed` takes it (cheaper to pass)
        stage = self.stage
        self.stage_vectors = np.ascontiguousarray(
            np.stack(
                [
                    stage.bias,
                    stage.act_high,
                    stage.act_scales,
                    stage.act_right,
                    stage.act_half,
                    stage.act_left,
                    stage.out_scales,
                    stage.out_right,
                    stage.out_half,
                    stage.out_left,
                ]
            ).astype(np.int64)
        )
        self.stage_scalars = np.array(
            [
                stage.buffer_bits,
                stage.post_bits,
                stage.act_kind,
                stage.act_low,
                self.low,
                self.high,
            ],
            np.int64,
        )


# ---------------------------------------------------------------------------------------------
# Layer executors
# ---------------------------------------------------------------------------------------------


def _check_input_shape(
    record: LayerRecord, x: np.ndarray, channels: int | None, what: str = "input"
) -> None:
    if x.ndim != 4 or 0 in x.shape:
        raise _fail(record, f"{what} must be a non-empty (N, H, W, C) array, not {x.shape}")
    if channels is not None and x.shape[3] != channels:
        raise _fail(record, f"{what} has {x.shape[3]} channels, the weights expect {channels}")


def _check_output_dims(record: LayerRecord, result: np.ndarray) -> np.ndarray:
    """The computed output must match `output_dims` when the record states them."""
    if record.output_dims and tuple(result.shape[1:]) != tuple(record.output_dims):
        raise _fail(
            record,
            f"computes an output of {tuple(result.shape[1:])}, but output_dims says "
            f"{tuple(record.output_dims)}",
        )
    return result


#: input (shape, dtype) pairs an executor remembers the checked geometry of (a model usually
#: sees one or two: batch sizes).
_KNOWN_SHAPES = 8


def _aligned_zeros(shape: tuple[int, int]) -> np.ndarray:
    """A float32 array of zeros starting on a cache line: the float32 kernels load its rows as
    whole vectors, and an AVX-512 load that straddles two lines costs two (numpy aligns large
    arrays to 16 bytes only)."""
    size = shape[0] * shape[1]
    lanes = kernels.CACHE_LINE // 4
    buffer = np.zeros(size + lanes, np.float32)
    offset = (-buffer.ctypes.data % kernels.CACHE_LINE) // 4
    return buffer[offset : offset + size].reshape(shape)


def _vnni_weights(weights: np.ndarray, width: int, per_dword: int, dtype: type) -> np.ndarray:
    """(kh · groups, width) int32 operand of `kernels.conv_fused_vnni` from (kh, kw, C, F)
    weights: each lane holds `per_dword` weights (int8 or int16) of consecutive terms of a
    kernel row, whose kw·C terms are padded with zeros to whole dwords, filters to `width`."""
    kh, kw, channels, filters = weights.shape
    span = kw * channels
    groups = -(-span // per_dword)
    padded = np.zeros((kh, per_dword * groups, width), dtype)
    padded[:, :span, :filters] = weights.reshape(kh, span, filters)
    layout = np.ascontiguousarray(
        padded.reshape(kh, groups, per_dword, width).transpose(0, 1, 3, 2)
    )
    return np.ascontiguousarray(layout.view(np.int32)[..., 0].reshape(kh * groups, width))


def _max_pool(
    record: LayerRecord, epilogue: _Epilogue, out_shape: tuple[int, int, int, int]
) -> tuple[tuple[int, ...], kernels.PoolWindow] | None:
    """The pooled shape and window of a max-pooled layer whose finished outputs have
    `out_shape` (N, H, W, F); None without pooling."""
    if epilogue.pool_kind != kernels.POOL_MAX:
        return None
    n_batch, out_h, out_w, filters = out_shape
    rows, top = epilogue._pool_axis(out_h)
    cols, left = epilogue._pool_axis(out_w)
    if rows < 1 or cols < 1:
        raise _fail(record, f"max pooling does not fit its {out_h}×{out_w} input")
    size, stride = epilogue.pool_size, epilogue.pool_stride
    window = kernels.PoolWindow(kernels.POOL_MAX, size, stride, top, left)
    return (n_batch, rows, cols, filters), window


def _pooled(out: np.ndarray, pool: tuple[tuple[int, ...], kernels.PoolWindow] | None) -> np.ndarray:
    """`out` max pooled by `pool` (from `_max_pool`), or `out` itself when it is None."""
    if pool is None:
        return out
    pooled = np.empty(pool[0], out.dtype)
    kernels.max_pool(out, pool[1], pooled)
    return pooled


class _LayerExecutor:
    """Base: one prepared layer; `run` takes its input arrays and returns its output."""

    def __init__(self, record: LayerRecord) -> None:
        self.record = record

    def run(self, inputs: list[np.ndarray]) -> np.ndarray:
        raise NotImplementedError


class _InputDataExecutor(_LayerExecutor):
    def run(self, inputs: list[np.ndarray]) -> np.ndarray:
        x = inputs[0]
        if not isinstance(x, np.ndarray) or x.dtype.kind not in "iu":
            raise _fail(self.record, "the program input must be an integer array")
        _check_input_shape(self.record, x, None)
        return _check_output_dims(self.record, x)


class _ConvExecutor(_LayerExecutor):
    """Conv2D and InputConv2D: float32 fast path when provably exact, int32 kernel otherwise."""

    def __init__(self, record: LayerRecord) -> None:
        super().__init__(record)
        weights = record.variables["weights"].astype(np.int64)
        if record.layer_type == "Conv2D":
            weights = weights[::-1, ::-1]  # a true convolution: the kernel is flipped
        self.kernel = weights.shape[0]
        self.in_channels = weights.shape[2]
        self.filters = weights.shape[3]
        self.stride = int(record.params["kernel_stride"])
        self.padding = str(record.params["padding"])
        self.buffer_bits = int(record.params["buffer_bits"])
        # float32 kernel: rows in (a, b, c) order, filters padded to whole vectors.
        terms = weights.reshape(-1, self.filters)
        lanes = kernels.VECTOR_LANES
        self.weights_f32 = _aligned_zeros((terms.shape[0], -(-self.filters // lanes) * lanes))
        self.weights_f32[:, : self.filters] = terms
        self.abs_prefix = np.concatenate(
            [np.zeros((self.filters, 1), np.int64), np.cumsum(np.abs(terms), axis=0).T], axis=1
        )
        self.max_abs_weight = int(np.abs(terms).max())
        # int32 kernel: (F, b, a, c), one output pixel's window is contiguous in its row buffer.
        ordered = weights.transpose(3, 1, 0, 2).reshape(self.filters, -1)
        filters4 = -(-self.filters // kernels.TILE_FILTERS) * kernels.TILE_FILTERS
        self.weights_i32 = np.zeros((filters4, ordered.shape[1]), np.int32)
        self.weights_i32[: self.filters] = ordered
        if record.layer_type == "InputConv2D":
            self.shifts = np.zeros(self.in_channels, np.int64)
            self.fill = record.variables["padding_value"].astype(np.int64)
        else:
            self.shifts = record.variables["input_shift"].astype(np.int64)
            self.fill = np.zeros(self.in_channels, np.int64)
        self.epilogue = _Epilogue.from_record(record, self.filters)
        self._chunks: dict[int, int] = {}
        self.max_shift = int(self.shifts.max())
        self.max_fill = int(self.fill.max())
        #: the int32 plan the fused float32 kernels apply per row (a clamp activation, no
        #: pooling or max pooling: then their outputs are pooled, see `kernels.max_pool`)
        self.fused_plan = self.epilogue.int32_params
        #: per (input shape, 8-bit dtype) that ran the fused kernels: the method and its
        #: arguments
        self._known: dict[tuple, tuple] = {}
        #: the VNNI kernel's operands (`kernels.conv_fused_vnni`): weights as dwords of 4
        #: int8 terms of a kernel row for byte inputs, of 2 int16 terms for int16 inputs
        #: (each row's kw·C terms padded with zeros to whole dwords), and Σw per filter for
        #: the byte input's offset correction
        self.weights_vnni: np.ndarray | None = None
        self.weights_words: np.ndarray | None = None
        if kernels.VNNI and self.fused_plan is not None:
            width = self.weights_f32.shape[1]
            self.weights_vnni = _vnni_weights(weights, width, 4, np.int8)
            self.weights_words = _vnni_weights(weights, width, 2, np.int16)
            self.weight_sums = np.zeros(width, np.int64)
            self.weight_sums[: self.filters] = weights.sum(axis=(0, 1, 2))
            self._vnni_init: dict[int, np.ndarray] = {}
            self._words_init = np.zeros(width, np.int32)
            #: empty arrays whose dtype tells `kernels.conv_vnni_layer` the input kind
            self._bytes_kind = np.empty(0, np.uint8)
            self._words_kind = np.empty(0, np.int16)

    def _vnni_offset(self, x: np.ndarray) -> int | None:
        """The offset that makes the shifted input and the pads uint8 for the VNNI kernel
        (128 for int8, 0 for uint8), or None when the kernel does not apply: no VNNI
        operands, an input wider than 8 bits, or a pad value that the offset does not bring
        into [0, 255]. (Shifted values are checked as they are written, `kernels.pad_bytes`.)"""
        if self.weights_vnni is None or x.dtype.itemsize != 1:
            return None
        offset = 128 if x.dtype == np.int8 else 0
        if int(self.fill.min()) + offset < 0 or int(self.fill.max()) + offset > 255:
            return None
        if offset not in self._vnni_init:
            init = -(offset * self.weight_sums)
            self._vnni_init[offset] = ((init + (1 << 31)) % (1 << 32) - (1 << 31)).astype(np.int32)
        return offset

    def _words_fit(self, x: np.ndarray) -> bool:
        """Whether every shifted, clipped input sat_B(x << shift) and every pad value fits
        int16, the input of the VNNI kernel on int16 pairs: from the dtype for inputs of up to
        16 bits, from the values for int32 (the caller remembers only the former)."""
        if self.weights_words is None:
            return False
        if x.dtype.itemsize <= 2:
            info = np.iinfo(x.dtype)
            low, high = int(info.min), int(info.max)
        elif x.size:
            low, high = int(x.min()), int(x.max())
        else:
            low = high = 0
        limit = 1 << (self.buffer_bits - 1)
        low = max(min(low, 0) << self.max_shift, -limit)
        high = min(max(high, 0) << self.max_shift, limit - 1)
        fills = (int(self.fill.min()), self.max_fill)
        return all(-(1 << 15) <= v < (1 << 15) for v in (low, high, *fills))

    def _run_vnni(
        self,
        x: np.ndarray,
        out_shape: tuple[int, ...],
        weights: np.ndarray,
        init: np.ndarray,
        plan: tuple[int, ...],
    ) -> np.ndarray:
        """The common layer on VNNI dot products (exact for every input), bytes or int16 pairs
        as `plan` says, in one kernel call (`kernels.conv_vnni_layer`: pad, accumulate,
        requantize row by row, max pool); a shifted value beyond a byte runs the checks
        again without bytes."""
        epilogue = self.epilogue
        out = np.empty(out_shape, epilogue.kernel_dtype)
        kind = self._words_kind if plan[2] else self._bytes_kind
        if not kernels.conv_vnni_layer(
            x, self.shifts, self.fill, weights, init, self.fused_plan, plan, kind, out
        ):
            return self._run_checked(x, vnni=False)  # a shifted value beyond a byte: int16
        return out.view(epilogue.dtype)

    def _chunk_for(self, input_bound: int) -> int:
        """Longest run of terms whose float32 partial sums stay exact, 0 if none does.

        With |xs| <= input_bound, a chunk (of terms in the (a, b, c) order of `weights_f32`)
        is exact when input_bound · Σ|w| over the chunk is below 2^24 for every filter: every
        partial sum, in any order, is then an integer of magnitude < 2^24, which float32
        represents exactly.
        """
        if input_bound in self._chunks:
            return self._chunks[input_bound]
        length = self.abs_prefix.shape[1] - 1
        limit = (kernels.FLOAT32_EXACT_LIMIT - 1) // max(input_bound, 1)
        chunk = 0
        if self.max_abs_weight <= limit:
            parts = 1
            while True:
                size = -(-length // parts)
                starts = np.arange(0, length, size)
                stops = np.minimum(starts + size, length)
                sums = self.abs_prefix[:, stops] - self.abs_prefix[:, starts]
                if int(sums.max()) <= limit:
                    chunk = size
                    break
                parts += 1
        self._chunks[input_bound] = chunk
        return chunk

    def _run_fused(
        self,
        x: np.ndarray,
        out_shape: tuple[int, ...],
        xp_shape: tuple[int, ...] | None,
        pad_top: int,
        pad_left: int,
        chunk: int,
        pool: tuple[tuple[int, ...], kernels.PoolWindow] | None,
    ) -> np.ndarray:
        """The common layer: float32 sums requantized while they are in cache (`xp_shape` None:
        the 1×1 stride-1 GEMM over the pixels of the batch), then max pooled when `pool`
        (the pooled shape and window) is given."""
        epilogue = self.epilogue
        plan = self.fused_plan
        out = np.empty(out_shape, epilogue.kernel_dtype)
        if plan is None:
            # a LUT activation by table (`_Epilogue.lut_table`), never 1×1-as-GEMM
            assert xp_shape is not None and epilogue.lut_table is not None
            xp = np.empty(xp_shape, np.float32)
            kernels.shift_and_pad(
                x, self.shifts, self.buffer_bits, pad_top, pad_left, self.fill, xp
            )
            k = self.kernel
            kernels.conv_fused_lut_float32(
                xp,
                self.weights_f32,
                chunk,
                self.stride,
                k,
                k,
                epilogue.lut_index_params,
                epilogue.lut_table,
                out,
            )
            return out.view(epilogue.dtype)
        if xp_shape is None:
            kernels.conv1x1_fused_float32(
                x.reshape(-1, self.in_channels),
                self.shifts,
                self.buffer_bits,
                self.weights_f32,
                chunk,
                plan,
                epilogue.low,
                epilogue.high,
                out.reshape(-1, self.filters),
            )
        else:
            xp = np.empty(xp_shape, np.float32)
            kernels.shift_and_pad(
                x, self.shifts, self.buffer_bits, pad_top, pad_left, self.fill, xp
            )
            k = self.kernel
            kernels.conv_fused_float32(
                xp,
                self.weights_f32,
                chunk,
                self.stride,
                k,
                k,
                plan,
                epilogue.low,
                epilogue.high,
                out,
            )
        return _pooled(out, pool).view(epilogue.dtype)

    def run(self, inputs: list[np.ndarray]) -> np.ndarray:
        x = inputs[0]
        if type(x) is np.ndarray and x.flags.c_contiguous:
            # an input shape and 8-bit dtype seen before: the checks passed and the geometry
            # and float32 chunk are known (they depend on nothing else)
            known = self._known.get((x.shape, x.dtype))
            if known is not None:
                return known[0](x, *known[1])
        return self._run_checked(x)

    def _run_checked(self, x: np.ndarray, vnni: bool = True) -> np.ndarray:
        """`run` with every check, choosing the kernels and remembering the choice for an input
        shape whose dtype decided it: VNNI on bytes (unless `vnni` is False: a shifted value
        did not fit a byte), else VNNI on int16 pairs when the shifted input fits int16, else
        float32 or int32."""
        record = self.record
        x = _kernel_input(record, x)
        _check_input_shape(record, x, self.in_channels)
        n_batch, height, width, _ = x.shape
        k, s = self.kernel, self.stride
        pads_h, pads_w, out_h, out_w = _window_geometry(record, height, width, k, s, self.padding)
        out_w4 = -(-out_w // kernels.TILE_PIXELS) * kernels.TILE_PIXELS
        padded_h = height + sum(pads_h)
        padded_w = max(width + sum(pads_w), (out_w4 - 1) * s + k)
        limit = (1 << (self.buffer_bits - 1)) - 1
        input_bound = max(min(_magnitude_bound(x) << self.max_shift, limit + 1), 0)
        input_bound = max(input_bound, self.max_fill)
        chunk = self._chunk_for(input_bound)
        offset = self._vnni_offset(x) if vnni else None
        words = offset is None and self._words_fit(x)
        if offset is not None or words:
            tile = kernels.vnni_tile_pixels(out_w, self.weights_f32.shape[1])
            tiled_w = max(width + sum(pads_w), (-(-out_w // tile) * tile - 1) * s + k)
            out_shape = (n_batch, out_h, out_w, self.filters)
            pooled = _max_pool(record, self.epilogue, out_shape)
            window = pooled[1] if pooled is not None else kernels.PoolWindow(0, 1, 1, 0, 0)
            plan = (
                self.buffer_bits,
                0 if offset is None else offset,
                int(words),
                pads_h[0],
                pads_w[0],
                padded_h,
                tiled_w,
                s,
                k,
                tile,
                self.epilogue.low,
                self.epilogue.high,
                out_h,
                out_w,
                *window,
            )
            if offset is None:
                weights, init = self.weights_words, self._words_init
            else:
                weights, init = self.weights_vnni, self._vnni_init[offset]
            assert weights is not None  # `_vnni_offset` and `_words_fit` checked
            vnni_args = (out_shape if pooled is None else pooled[0], weights, init, plan)
            if x.dtype.itemsize <= 2 and len(self._known) < _KNOWN_SHAPES:
                # remembered first: a refusal of bytes (a shifted value beyond a byte) replaces
                # it; for int16 pairs the dtype proved the fit
                self._known[(x.shape, x.dtype)] = (self._run_vnni, vnni_args)
            return _check_output_dims(record, self._run_vnni(x, *vnni_args))
        if chunk > 0 and (self.fused_plan is not None or self.epilogue.lut_table is not None):
            one_by_one = k == 1 and s == 1 and self.fused_plan is not None
            xp_shape = None if one_by_one else (n_batch, padded_h, padded_w, x.shape[3])
            out_shape = (n_batch, out_h, out_w, self.filters)
            pool = _max_pool(record, self.epilogue, out_shape)
            args = (out_shape, xp_shape, pads_h[0], pads_w[0], chunk, pool)
            result = _check_output_dims(record, self._run_fused(x, *args))
            if x.dtype.itemsize == 1 and len(self._known) < _KNOWN_SHAPES:
                # 8-bit: the bound is the dtype's (and after a VNNI refusal this shape keeps
                # the float32 kernels)
                self._known[(x.shape, x.dtype)] = (self._run_fused, args)
            return result
        if chunk > 0 and k == 1 and s == 1:
            # a GEMM over all the pixels of the batch: (N·H·W, C) × (C, F)
            pixels = n_batch * height * width
            pixels4 = -(-pixels // kernels.TILE_PIXELS) * kernels.TILE_PIXELS
            filters = self.weights_f32.shape[1]
            xp = np.empty((1, 1, pixels4, self.in_channels), np.float32)
            flat = x.reshape(1, 1, pixels, self.in_channels)
            kernels.shift_and_pad(flat, self.shifts, self.buffer_bits, 0, 0, self.fill, xp)
            acc = np.empty((1, 1, pixels4, filters), np.int32)
            kernels.conv_float32(xp, self.weights_f32, chunk, 1, 1, 1, acc)
            acc = acc[0, 0, :pixels].reshape(n_batch, out_h, out_w, filters)
        elif chunk > 0:
            xp = np.empty((n_batch, padded_h, padded_w, x.shape[3]), np.float32)
            kernels.shift_and_pad(
                x, self.shifts, self.buffer_bits, pads_h[0], pads_w[0], self.fill, xp
            )
            acc = np.empty((n_batch, out_h, out_w4, self.weights_f32.shape[1]), np.int32)
            kernels.conv_float32(xp, self.weights_f32, chunk, s, k, k, acc)
        else:
            acc = np.empty((n_batch, out_h, out_w4, self.weights_i32.shape[0]), np.int32)
            xp = np.empty((n_batch, padded_h, padded_w, x.shape[3]), np.int32)
            kernels.shift_and_pad(
                x, self.shifts, self.buffer_bits, pads_h[0], pads_w[0], self.fill, xp
            )
            kernels.conv_int32(xp, self.weights_i32, s, k, k, acc)
        result = self.epilogue.run(record, acc, out_h, out_w)
        return _check_output_dims(record, result)


class _DepthwiseExecutor(_LayerExecutor):
    """DepthwiseConv2D: flipped kernel; float32 sums when provably exact, else int32."""

    def __init__(self, record: LayerRecord) -> None:
        super().__init__(record)
        weights = record.variables["weights"].astype(np.int64)[::-1, ::-1, :, 0]
        self.weights = np.ascontiguousarray(weights.astype(np.int32))
        #: the largest Σ|w| of one channel's window: the float32 bound of the fused kernel.
        self.max_abs_window = int(np.abs(weights).sum(axis=(0, 1)).max())
        self.kernel = weights.shape[0]
        self.channels = weights.shape[2]
        self.stride = int(record.params["kernel_stride"])
        self.padding = str(record.params["padding"])
        self.buffer_bits = int(record.params["buffer_bits"])
        self.shifts = record.variables["input_shift"].astype(np.int64)
        self.fill = np.zeros(self.channels, np.int64)
        self.epilogue = _Epilogue.from_record(record, self.channels)
        self.max_shift = int(self.shifts.max())
        plan = self.epilogue.int32_params
        #: the plan the fused 3×3 kernels apply per pixel (a clamp activation, no pooling or
        #: max pooling: then their outputs are pooled, see `kernels.max_pool`)
        self.fused_plan = plan
        #: per (input shape, 8-bit dtype) that ran the fused kernel: its arguments
        self._known: dict[tuple, tuple] = {}
        self.float32_weights = self.float32_params = None
        if self.kernel == 3 and plan is not None:
            # the fused float32 kernel's operands, channels padded to whole vectors
            lanes = kernels.VECTOR_LANES
            padded = -(-self.channels // lanes) * lanes
            self.float32_weights = np.zeros((3, 3, padded), np.float32)
            self.float32_weights[:, :, : self.channels] = weights
            self.float32_params = np.zeros((plan.shape[0], padded), np.int32)
            self.float32_params[:, : self.channels] = plan

    def _run_fused(
        self,
        x: np.ndarray,
        out_shape: tuple[int, ...],
        pad_top: int,
        pad_left: int,
        exact: bool,
        pool: tuple[tuple[int, ...], kernels.PoolWindow] | None,
    ) -> np.ndarray:
        """The common layer: one fused kernel, rows shifted, convolved and requantized in cache;
        float32 sums when `exact` (|xs| · Σ|w| < 2^24 for every channel), any stride, else
        int32 sums, stride 1; then max pooled when `pool` is given."""
        epilogue = self.epilogue
        out = np.empty(out_shape, epilogue.kernel_dtype)
        if exact:
            kernels.depthwise3_fused_float32(
                x,
                self.shifts,
                self.buffer_bits,
                pad_top,
                pad_left,
                self.stride,
                self.float32_weights,
                self.float32_params,
                epilogue.low,
                epilogue.high,
                out,
            )
        else:
            kernels.depthwise3_fused(
                x,
                self.shifts,
                self.buffer_bits,
                pad_top,
                pad_left,
                self.weights,
                self.fused_plan,
                epilogue.low,
                epilogue.high,
                out,
            )
        return _pooled(out, pool).view(epilogue.dtype)

    def run(self, inputs: list[np.ndarray]) -> np.ndarray:
        x = inputs[0]
        if type(x) is np.ndarray and x.flags.c_contiguous:
            # an input shape and 8-bit dtype seen before (see `_ConvExecutor.run`)
            known = self._known.get((x.shape, x.dtype))
            if known is not None:
                return self._run_fused(x, *known)
        record = self.record
        x = _kernel_input(record, x)
        _check_input_shape(record, x, self.channels)
        n_batch, height, width, channels = x.shape
        k, s = self.kernel, self.stride
        pads_h, pads_w, out_h, out_w = _window_geometry(record, height, width, k, s, self.padding)
        if k == 3 and self.fused_plan is not None:
            limit = (1 << (self.buffer_bits - 1)) - 1
            input_bound = min(_magnitude_bound(x) << self.max_shift, limit + 1)
            exact = input_bound * self.max_abs_window < kernels.FLOAT32_EXACT_LIMIT
            if exact or s == 1:
                out_shape = (n_batch, out_h, out_w, channels)
                pool = _max_pool(record, self.epilogue, out_shape)
                args = (out_shape, pads_h[0], pads_w[0], exact, pool)
                result = _check_output_dims(record, self._run_fused(x, *args))
                if x.dtype.itemsize == 1 and len(self._known) < _KNOWN_SHAPES:
                    self._known[(x.shape, x.dtype)] = args  # 8-bit: the bound is the dtype's
                return result
        out_w4 = -(-out_w // 4) * 4  # `depthwise_int32` computes 4 pixels at a time
        padded_w = max(width + sum(pads_w), (out_w4 - 1) * s + k)
        xp = np.empty((n_batch, height + sum(pads_h), padded_w, channels), np.int32)
        kernels.shift_and_pad(x, self.shifts, self.buffer_bits, pads_h[0], pads_w[0], self.fill, xp)
        acc = np.empty((n_batch, out_h, out_w4, channels), np.int32)
        kernels.depthwise_int32(xp, self.weights, s, acc)
        return _check_output_dims(record, self.epilogue.run(record, acc, out_h, out_w))


class _TransposeExecutor(_LayerExecutor):
    """Conv2DTranspose and DepthwiseConv2DTranspose: stride 2, not flipped, exact int32."""

    def __init__(self, record: LayerRecord) -> None:
        super().__init__(record)
        weights = record.variables["weights"]
        self.weights = np.ascontiguousarray(weights.astype(np.int32))
        self.depthwise = record.layer_type == "DepthwiseConv2DTranspose"
        self.channels = weights.shape[2]
        self.filters = self.channels if self.depthwise else weights.shape[3]
        self.buffer_bits = int(record.params["buffer_bits"])
        self.shifts = record.variables["input_shift"].astype(np.int64)
        self.fill = np.zeros(self.channels, np.int64)
        self.epilogue = _Epilogue.from_record(record, self.filters)

    def run(self, inputs: list[np.ndarray]) -> np.ndarray:
        record = self.record
        x = _kernel_input(record, inputs[0])
        _check_input_shape(record, x, self.channels)
        n_batch, height, width, channels = x.shape
        xs = np.empty((n_batch, height, width, channels), np.int32)
        kernels.shift_and_pad(x, self.shifts, self.buffer_bits, 0, 0, self.fill, xs)
        acc = np.empty((n_batch, 2 * height, 2 * width, self.filters), np.int32)
        kernels.transpose_int32(xs, self.weights, self.depthwise, acc)
        result = self.epilogue.run(record, acc, 2 * height, 2 * width)
        return _check_output_dims(record, result)


class _DenseExecutor(_LayerExecutor):
    """Dense1D: input flattened in (H, W, C) order, per-element shifts, exact int32 GEMV."""

    def __init__(self, record: LayerRecord) -> None:
        super().__init__(record)
        self.weights = np.ascontiguousarray(record.variables["weights"])
        self.length, self.units = self.weights.shape
        self.buffer_bits = int(record.params["buffer_bits"])
        self.shifts = record.variables["input_shift"].astype(np.int64)
        self.epilogue = _Epilogue.from_record(record, self.units)
        #: (input shape, kernel dtype) pairs that passed the checks, with the int32 plan: the
        #: whole layer is then one call of `kernels.dense_fused`
        self._known: set[tuple] = set()

    def _run_fused(self, x: np.ndarray) -> np.ndarray:
        epilogue = self.epilogue
        out = np.empty((x.shape[0], 1, 1, self.units), epilogue.kernel_dtype)
        kernels.dense_fused(
            x,
            self.shifts,
            self.buffer_bits,
            self.weights,
            epilogue.int32_params,
            epilogue.low,
            epilogue.high,
            out,
        )
        return out if epilogue.same_dtype else out.view(epilogue.dtype)

    def run(self, inputs: list[np.ndarray]) -> np.ndarray:
        x = inputs[0]
        if type(x) is np.ndarray and (x.shape, x.dtype) in self._known and x.flags.c_contiguous:
            return self._run_fused(x)
        record = self.record
        x = _kernel_input(record, x)
        _check_input_shape(record, x, None)
        n_batch = x.shape[0]
        flat = x.reshape(n_batch, -1)
        if flat.shape[1] != self.length:
            raise _fail(
                record, f"input has {flat.shape[1]} elements, the weights expect {self.length}"
            )
        if self.epilogue.int32_params is not None:
            result = _check_output_dims(record, self._run_fused(x))
            if len(self._known) < _KNOWN_SHAPES:
                self._known.add((x.shape, x.dtype))
            return result
        xs = np.empty(flat.shape, np.int32)
        kernels.shift_flat(flat, self.shifts, self.buffer_bits, xs)
        acc = np.empty((n_batch, self.units), np.int32)
        kernels.dense_int32(xs, self.weights, acc)
        result = self.epilogue.run(record, acc.reshape(n_batch, 1, 1, self.units), 1, 1)
        return _check_output_dims(record, result)


class _AddExecutor(_LayerExecutor):
    """Add: shifted operands, saturated sum, rounding shift; always a signed output."""

    def __init__(self, record: LayerRecord) -> None:
        super().__init__(record)
        self.a_shift = record.variables["a_shift"].astype(np.int64)
        self.b_shift = record.variables["b_shift"].astype(np.int64)
        self.shifts = _split_shifts(record.variables["output_shift"])
        self.buffer_bits = int(record.params["buffer_bits"])
        bits = int(record.params["output_bits"])
        self.low, self.high = output_limits(bits, always_signed=True)
        self.dtype = output_dtype(bits, always_signed=True)
        #: (shape, dtype of a, dtype of b) of kernel inputs that passed the checks
        self._known: set[tuple] = set()

    def _add(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """The kernel on contiguous int8, uint8 or int32 operands of one shape, written
        straight in the output dtype (every result lies within its range)."""
        channels = a.shape[3]
        out = np.empty(a.shape, self.dtype)
        kernels.add_layer(
            a.reshape(-1, channels),
            b.reshape(-1, channels),
            self.a_shift,
            self.b_shift,
            self.buffer_bits,
            *self.shifts,
            self.low,
            self.high,
            out.reshape(-1, channels),
        )
        return out

    def run(self, inputs: list[np.ndarray]) -> np.ndarray:
        a, b = inputs[0], inputs[1]
        if (
            type(a) is np.ndarray
            and type(b) is np.ndarray
            and a.shape == b.shape
            and (a.shape, a.dtype, b.dtype) in self._known
            and a.flags.c_contiguous
            and b.flags.c_contiguous
        ):
            return self._add(a, b)
        record = self.record
        a = _kernel_input(record, a, "input a")
        b = _kernel_input(record, b, "input b")
        channels = self.a_shift.shape[0]
        _check_input_shape(record, a, channels, "input a")
        if b.shape != a.shape:
            raise _fail(record, f"inputs have different shapes {a.shape} and {b.shape}")
        result = _check_output_dims(record, self._add(a, b))
        if len(self._known) < _KNOWN_SHAPES:
            self._known.add((a.shape, a.dtype, b.dtype))
        return result


class _ConcatenateExecutor(_LayerExecutor):
    def __init__(self, record: LayerRecord) -> None:
        super().__init__(record)
        #: the (shape, dtype) of both inputs, when of one dtype and they passed the checks:
        #: their output's shape and the widest word that copies whole pixels of every input
        self._known: dict[tuple, tuple[tuple[int, ...], np.dtype, np.dtype]] = {}

    @staticmethod
    def _concatenate(
        inputs: list[np.ndarray], shape: tuple[int, ...], dtype: np.dtype, word: np.dtype
    ) -> np.ndarray:
        """`np.concatenate(inputs, axis=-1)` of two inputs of one dtype, by words of up to 8
        bytes: numpy copies a few channels per pixel slowly (2.8 µs for two 16×16×8 int8
        inputs)."""
        out = np.empty(shape, dtype)
        flat = out.reshape(-1, shape[3]).view(word)
        pixels = flat.shape[0]
        a, b = inputs
        kernels.concatenate2(
            a.reshape(pixels, -1).view(word), b.reshape(pixels, -1).view(word), flat
        )
        return out

    def _plan(self, inputs: list[np.ndarray], result: np.ndarray) -> None:
        """Remember the shapes and dtype of inputs that passed the checks."""
        dtype = result.dtype
        if (
            len(self._known) >= _KNOWN_SHAPES
            or len(inputs) != 2
            or any(type(a) is not np.ndarray or a.dtype != dtype for a in inputs)
        ):
            return
        sizes = [a.shape[3] * dtype.itemsize for a in inputs]
        width = max(w for w in (8, 4, 2, 1) if all(size % w == 0 for size in sizes))
        word = np.dtype(f"i{width}")
        self._known[tuple((a.shape, a.dtype) for a in inputs)] = (result.shape, dtype, word)

    def run(self, inputs: list[np.ndarray]) -> np.ndarray:
        if all(type(array) is np.ndarray and array.flags.c_contiguous for array in inputs):
            known = self._known.get(tuple((array.shape, array.dtype) for array in inputs))
            if known is not None:
                return self._concatenate(inputs, *known)
        record = self.record
        for index, array in enumerate(inputs):
            if not isinstance(array, np.ndarray) or array.dtype.kind not in "iu":
                raise _fail(record, f"input {index} must be an integer array")
            _check_input_shape(record, array, None, f"input {index}")
        if len({array.shape[:3] for array in inputs}) != 1:
            shapes = ", ".join(str(array.shape) for array in inputs)
            raise _fail(record, f"inputs differ in batch or spatial size: {shapes}")
        result = _check_output_dims(record, np.concatenate(inputs, axis=-1))
        self._plan(inputs, result)
        return result


_EXECUTORS: dict[str, type[_LayerExecutor]] = {
    "InputData": _InputDataExecutor,
    "InputConv2D": _ConvExecutor,
    "Conv2D": _ConvExecutor,
    "DepthwiseConv2D": _DepthwiseExecutor,
    "Conv2DTranspose": _TransposeExecutor,
    "DepthwiseConv2DTranspose": _TransposeExecutor,
    "Dense1D": _DenseExecutor,
    "Add": _AddExecutor,
    "Concatenate": _ConcatenateExecutor,
}


class HardwareModel:
    """A validated, prepared program of layer records that runs on the CPU bit-exactly.

    Construction validates every record (`ProgramError` on the first problem) and prepares the
    weights, requantization plans, clips and LUTs of every layer once; `run_layers(x)` returns
    every layer's output by name, `run(x)` the last one and `run_to(x, index)` one layer's.
    Running does only arithmetic: keep the model and call it again rather than rebuilding it
    (a hybrid session builds one per AkidaOp when it loads). Every executor takes a whole
    batch (N, H, W, C) at once, and a sample's result does not depend on the others in its
    batch (the float32/int32 path choice can, but both are exact).
    """

    #: how many HardwareModels this process has built (tests check that running builds none).
    constructions = 0

    def __init__(self, records: Sequence[LayerRecord]) -> None:
        records = list(records)
        validate_records(records)
        HardwareModel.constructions += 1
        self.records = records
        self._executors = [_EXECUTORS[record.layer_type](record) for record in records]
        index = {record.name: i for i, record in enumerate(records)}
        #: per layer, the indices of its inbound layers (empty: it reads the program input).
        self._sources = [tuple(index[name] for name in record.inbounds) for record in records]
        self.index = index
        #: per layer, its bound `run` and inbound indices: what `_run_all` reads per layer
        self._steps = [
            (executor.run, sources)
            for executor, sources in zip(self._executors, self._sources, strict=True)
        ]

    def _run_all(self, x: np.ndarray) -> list[np.ndarray]:
        outputs: list[np.ndarray] = []
        append = outputs.append
        for run, sources in self._steps:
            append(run([outputs[i] for i in sources] if sources else [x]))
        return outputs

    def run_layers(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Run every layer on the program input `x` (NHWC); outputs by layer name."""
        return {r.name: y for r, y in zip(self.records, self._run_all(x), strict=True)}

    def run_to(self, x: np.ndarray, index: int) -> np.ndarray:
        """Run every layer on `x` (NHWC) and return the output of layer number `index`."""
        return self._run_all(x)[index]

    def run(self, x: np.ndarray) -> np.ndarray:
        """The output of the last layer."""
        return self._run_all(x)[-1]


def run_layers(records: Sequence[LayerRecord], x: np.ndarray) -> dict[str, np.ndarray]:
    """Validate and run `records` on `x`; every layer's output by name (as the reference)."""
    return HardwareModel(records).run_layers(x)


def run_layer(record: LayerRecord, inputs: Sequence[np.ndarray]) -> np.ndarray:
    """Validate and run one record on its inputs (two for Add, two or more for Concatenate)."""
    validate_record(record)
    expected = {"Add": 2, "Concatenate": max(2, len(record.inbounds))}.get(record.layer_type, 1)
    if len(inputs) != expected:
        raise _fail(record, f"takes {expected} input(s), got {len(inputs)}")
    return _EXECUTORS[record.layer_type](record).run(list(inputs))


kernels_are_cached = kernels.kernels_are_cached
