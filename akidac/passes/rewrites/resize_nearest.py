"""Nearest-neighbour 2× `Resize` → a depthwise `ConvTranspose` with constant weights.

Nearest 2× upsampling repeats every pixel twice along H and W: `out[i] = in[⌊i / 2⌋]`. A
stride-2 transposed convolution with kernel `k = [0, 1, 1, 0]` and pads 1 computes, per axis,

    out[o] = Σ_i in[i] · k[o + 1 − 2i]

For o = 2j only i = j hits a 1 (k[1]); for o = 2j + 1 only i = j (k[2]); every other tap is 0,
so `out[o] = in[⌊o / 2⌋]`, and the output size is (H − 1)·2 + 4 − 2 = 2H. In 2-D the kernel is
the outer product `[0,1,1,0]ᵀ · [0,1,1,0]`, one per channel (group = C, weights [C, 1, 4, 4]).

Whether a Resize repeats pixels depends on its coordinate transformation and nearest mode;
rather than listing the combinations, the rule evaluates ONNX's formula for every output index
(`index_map`) and fires only when it gives ⌊i / 2⌋ on both axes: e.g. asymmetric with floor or
round_prefer_floor, half_pixel / pytorch_half_pixel / align_corners with either round_prefer mode,
tf_half_pixel_for_nn with floor.
"""

from __future__ import annotations

import math

import numpy as np

from akidac.ir.attributes import AttrValue
from akidac.ir.graph import Graph, Op
from akidac.ir.types import dtype_to_numpy
from akidac.passes.rewrites.rule import (
    Miss,
    Outcome,
    RewriteRule,
    const_of,
    derived_constant,
    int_list,
    replace_ops,
    static_hw,
)

#: one axis of the 4×4 kernel; its outer product with itself is the 2-D kernel.
TAPS = np.array([0.0, 1.0, 1.0, 0.0])


def source_coordinate(mode: str, i: int, scale: float, n_in: int, n_out: int) -> float | None:
    """ONNX Resize's input coordinate of output index `i` (None for an unknown mode)."""
    if mode == "asymmetric":
        return i / scale
    if mode in ("half_pixel", "half_pixel_symmetric"):
        if mode == "half_pixel_symmetric":
            adjustment = n_out / (scale * n_in)
            offset = n_in / 2 * (1 - adjustment)
            return offset + (i + 0.5) / scale - 0.5
        return (i + 0.5) / scale - 0.5
    if mode == "pytorch_half_pixel":
        return (i + 0.5) / scale - 0.5 if n_out > 1 else 0.0
    if mode == "align_corners":
        return 0.0 if n_out == 1 else i * (n_in - 1) / (n_out - 1)
    if mode == "tf_half_pixel_for_nn":
        return (i + 0.5) / scale
    return None


def nearest_index(x: float, mode: str) -> int | None:
    """ONNX's nearest_mode rounding of a source coordinate (None for an unknown mode)."""
    if mode == "floor":
        return math.floor(x)
    if mode == "ceil":
        return math.ceil(x)
    if mode in ("round_prefer_floor", "round_prefer_ceil"):
        if x - math.floor(x) == 0.5:
            return math.floor(x) if mode == "round_prefer_floor" else math.ceil(x)
        return math.floor(x + 0.5)
    return None


def index_map(coordinate_mode: str, nearest_mode: str, n_in: int, scale: float) -> list[int]:
    """The input index each output index reads, clamped to the input as ONNX does."""
    n_out = math.floor(n_in * scale)
    indices = []
    for i in range(n_out):
        x = source_coordinate(coordinate_mode, i, scale, n_in, n_out)
        j = None if x is None else nearest_index(x, nearest_mode)
        if j is None:
            return []
        indices.append(min(max(j, 0), n_in - 1))
    return indices


def _scales(op: Op, in_shape: list[int], out_shape: list[int]) -> list[float] | str:
    """Per-axis scales of a Resize (from `scales`, or `sizes` / input size), or why unknown."""
    axes = int_list(op.attrs.get("axes"), list(range(4)))
    axes = [a % 4 for a in axes]
    scales_value = op.inputs[2] if len(op.inputs) > 2 else None
    sizes_value = op.inputs[3] if len(op.inputs) > 3 else None
    scales, sizes = const_of(scales_value), const_of(sizes_value)
    full = [1.0, 1.0, 1.0, 1.0]
    if scales is not None and scales.size:
        if scales.size != len(axes):
            return "its scales do not match its axes"
        for axis, scale in zip(axes, scales.reshape(-1).tolist(), strict=True):
            full[axis] = float(scale)
        return full
    if sizes is not None and sizes.size:
        if sizes.size != len(axes):
            return "its sizes do not match its axes"
        if [int(out_shape[a]) for a in axes] != [int(s) for s in sizes.reshape(-1)]:
            return "its output shape is not the requested size"
        return [out_shape[a] / in_shape[a] for a in range(4)]
    return "its scales and sizes are not constant"


def resize_nearest(graph: Graph, op: Op, by: str) -> Outcome:
    """Nearest 2× Resize (any coordinate mode that repeats each pixel twice) → depthwise
    ConvTranspose with weights `outer([0,1,1,0], [0,1,1,0])` per channel, stride 2, pads 1."""
    x, result = op.inputs[0], op.outputs[0]
    in_hw, out_hw = static_hw(x), static_hw(result)
    if x is None or in_hw is None or out_hw is None:
        return False
    name = f"Resize '{op.display_name}'"
    mode = op.attrs.get("mode", "nearest")
    if mode != "nearest":
        return Miss(f"{name} has mode '{mode}'; only nearest 2× upsampling is rewritten")
    if x.type.dtype not in ("f32", "f16", "f64"):
        return Miss(f"{name} resizes a {x.type.dtype} tensor")
    in_shape = list(x.type.dims)
    out_shape = list(result.type.dims)
    scales = _scales(op, in_shape, out_shape)
    if isinstance(scales, str):
        return Miss(f"{name}: {scales}")
    wanted = [in_shape[0], in_shape[1], 2 * in_shape[2], 2 * in_shape[3]]
    if scales != [1.0, 1.0, 2.0, 2.0] or out_shape != wanted:
        shown = ", ".join(f"{s:g}" for s in scales)
        return Miss(f"{name} scales by [{shown}]; only [1, 1, 2, 2] is rewritten")
    coordinate_mode = str(op.attrs.get("coordinate_transformation_mode", "half_pixel"))
    nearest_mode = str(op.attrs.get("nearest_mode", "round_prefer_floor"))
    for n in in_hw:
        if index_map(coordinate_mode, nearest_mode, n, 2.0) != [i // 2 for i in range(2 * n)]:
            return Miss(
                f"{name} with coordinate_transformation_mode '{coordinate_mode}' and "
                f"nearest_mode '{nearest_mode}' does not repeat each pixel twice"
            )
    channels = in_shape[1]
    kernel = np.outer(TAPS, TAPS).astype(dtype_to_numpy(x.type.dtype))
    weights = np.broadcast_to(kernel, (channels, 1, 4, 4))
    weight = derived_constant(graph, op.display_name, "upsample", weights)
    attrs: dict[str, AttrValue] = {
        "group": channels,
        "kernel_shape": [4, 4],
        "strides": [2, 2],
        "pads": [1, 1, 1, 1],
    }
    replace_ops(graph, [op], "onnx.ConvTranspose", [x, weight], by, attrs=attrs)
    return True


RULE = RewriteRule("resize-nearest-to-transposed-conv", frozenset({"Resize"}), resize_nearest)
