"""A standalone BatchNormalization → a 3×3 depthwise Conv whose only non-zero tap is the centre.

In inference mode BatchNormalization is a per-channel affine map, `z_c = m_c · x_c + a_c` with
`m = γ / √(σ² + ε)` and `a = β − μ · m`. A depthwise Conv (group = C) with a 3×3 kernel that is
`m_c` at its centre and 0 elsewhere, pads 1 on every side and bias `a_c`, computes at every
pixel `Σ_t w_c[t] · x_c[i + t − 1] + a_c = m_c · x_c[i] + a_c`: the same map, since the padded
border pixels only ever meet zero taps.

`import-cleanup` already folds a BatchNormalization into the layer before it (`fold_affine`);
one that is still there follows a merge (an Add or Concat: pre-activation ResNets, DenseNet's
BN-ReLU before every dense layer), a graph input, or a layer whose output has other readers.
Akida has no standalone normalization, but it runs this depthwise layer (the same form as the
identity layer `fuse` inserts after a merge) with the ReLU after it fused, so the normalization
joins the Akida region around it instead of cutting it in two on the CPU. A 3×3 kernel, not
1×1: Akida's depthwise layers take kernels 3, 5 and 7. The hardware does that work as 9 MACs
per value (8 of them on zero taps), which the reports count.

Only a rank-4 (NCHW) float input with static channels in inference mode whose running-stat
outputs nobody reads is rewritten; anything else is a near miss with its reason.
"""

from __future__ import annotations

import numpy as np

from akidac.ir.attributes import AttrValue
from akidac.ir.graph import Graph, Op, Value
from akidac.ir.types import dtype_to_numpy
from akidac.passes.rewrites.rule import (
    Miss,
    Outcome,
    RewriteRule,
    const_of,
    derived_constant,
    float_dtype,
    replace_ops,
    single_consumer,
)

#: the smallest depthwise kernel Akida runs, and its centre tap.
KERNEL = 3
CENTRE = KERNEL // 2


def batchnorm_to_depthwise(graph: Graph, op: Op, by: str) -> Outcome:
    """BatchNormalization (inference mode) on an NCHW value → a 3×3 depthwise Conv, centre tap
    `γ / √(σ² + ε)`, bias `β − μ · γ / √(σ² + ε)`, pads 1."""
    x = op.inputs[0] if op.inputs else None
    if x is None or op.domain:
        return False
    name = f"BatchNormalization '{op.display_name}'"
    if x.type.rank != 4:
        return Miss(f"{name} normalizes a rank-{x.type.rank} value; only NCHW maps become a layer")
    channels = x.type.shape[1] if x.type.shape is not None else None
    if not isinstance(channels, int) or channels < 1:
        return Miss(f"{name} has no static channel count")
    try:
        dtype = dtype_to_numpy(x.type.dtype)
    except (KeyError, ValueError):  # a type NumPy lacks (bf16)
        dtype = None
    if dtype is None or dtype.kind != "f":
        return Miss(f"{name} normalizes a {x.type.dtype} value; only float maps become a layer")
    if op.attrs.get("training_mode", 0):
        return Miss(f"{name} is in training mode")
    if any(v.users or graph.is_pinned(v) for v in op.outputs[1:]):
        return Miss(f"the running statistics of {name} are read")
    params = [p for p in (const_of(v) for v in op.inputs[1:5]) if p is not None]
    if len(params) != 4:
        return Miss(f"the statistics of {name} are not constant")
    gamma, beta, mean, var = (
        np.broadcast_to(p.astype(np.float64).reshape(-1), (channels,)) for p in params
    )
    epsilon = op.float_attr("epsilon", 1e-5)
    scale = gamma / np.sqrt(var + epsilon)
    _emit_depthwise(graph, [op], x, scale, beta - mean * scale, dtype, by)
    return True


def _emit_depthwise(
    graph: Graph,
    replaced: list[Op],
    x: Value,
    scale: np.ndarray,
    shift: np.ndarray,
    dtype: np.dtype,
    by: str,
) -> None:
    """Replace `replaced` (ending in the op whose result is `scale · x + shift` per channel)
    by the centre-tap 3×3 depthwise Conv that computes it."""
    channels = len(scale)
    weights = np.zeros((channels, 1, KERNEL, KERNEL), dtype)
    weights[:, 0, CENTRE, CENTRE] = scale
    attrs: dict[str, AttrValue] = {
        "kernel_shape": [KERNEL, KERNEL],
        "pads": [CENTRE] * 4,
        "strides": [1, 1],
        "group": channels,
    }
    base = replaced[0].display_name
    inputs: list[Value | None] = [
        x,
        derived_constant(graph, base, "depthwise", weights),
        derived_constant(graph, base, "depthwise_bias", shift.astype(dtype)),
    ]
    replace_ops(graph, replaced, "onnx.Conv", inputs, by, attrs=attrs)


def _channel_vector(op: Op, channels: int) -> tuple[Value, np.ndarray] | None:
    """(the variable operand, one value per channel) of a Mul/Add whose other operand is a
    constant of exactly `channels` > 1 values broadcast over axis 1 of an NCHW map; None for
    scalars (they belong to activation idioms such as `x · Clip(x + 3, 0, 6) / 6`)."""
    if len(op.inputs) != 2:
        return None
    first, second = op.inputs
    if first is None or second is None:
        return None
    for variable, constant in ((first, second), (second, first)):
        array = const_of(constant)
        if array is None or const_of(variable) is not None or array.size != channels:
            continue
        if channels < 2 or array.ndim != 4 or array.shape[:2] != (1, channels):
            continue
        if array.shape[2:] != (1, 1):
            continue
        return variable, array.astype(np.float64).reshape(-1)
    return None


def channel_affine_to_depthwise(graph: Graph, op: Op, by: str) -> Outcome:
    """`Mul(x, s)` (then `Add(·, t)`), or `Add(x, t)` alone, with [1, C, 1, 1] constants on an
    NCHW float map, that `import-cleanup` could not fold into a layer → the centre-tap 3×3
    depthwise Conv, tap s (1 for an Add alone), bias t (0 without an Add). tf2onnx writes a
    Keras BatchNormalization this way (DenseNet's after every Concat)."""
    result = op.outputs[0]
    if op.domain or result.type.rank != 4 or not result.type.is_static:
        return False
    channels = result.type.shape[1]  # type: ignore[index]
    if not isinstance(channels, int):
        return False
    found = _channel_vector(op, channels)
    if found is None:
        return False
    x, vector = found
    if x.type.shape != result.type.shape:
        return False
    dtype = float_dtype(x)
    if dtype is None:
        return False
    if op.op_type == "Add":
        _emit_depthwise(graph, [op], x, np.ones(channels), vector, dtype, by)
        return True
    replaced, shift = [op], np.zeros(channels)
    add = single_consumer(graph, result)
    if add is not None and add.op_type == "Add" and not add.domain:
        following = _channel_vector(add, channels)
        if following is not None and following[0] is result:
            replaced, shift = [op, add], following[1]
    _emit_depthwise(graph, replaced, x, vector, shift, dtype, by)
    return True


RULE = RewriteRule(
    "batchnorm-to-depthwise", frozenset({"BatchNormalization"}), batchnorm_to_depthwise
)
CHANNEL_AFFINE_RULE = RewriteRule(
    "channel-affine-to-depthwise", frozenset({"Mul", "Add"}), channel_affine_to_depthwise
)
