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
from akidac.ir.graph import Graph, Op
from akidac.ir.types import dtype_to_numpy
from akidac.passes.rewrites.rule import (
    Miss,
    Outcome,
    RewriteRule,
    const_of,
    derived_constant,
    replace_ops,
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
    weights = np.zeros((channels, 1, KERNEL, KERNEL), dtype)
    weights[:, 0, CENTRE, CENTRE] = scale
    bias = (beta - mean * scale).astype(dtype)
    attrs: dict[str, AttrValue] = {
        "kernel_shape": [KERNEL, KERNEL],
        "pads": [CENTRE] * 4,
        "strides": [1, 1],
        "group": channels,
    }
    inputs = [
        x,
        derived_constant(graph, op.display_name, "depthwise", weights),
        derived_constant(graph, op.display_name, "depthwise_bias", bias),
    ]
    replace_ops(graph, [op], "onnx.Conv", inputs, by, attrs=attrs)
    return True


RULE = RewriteRule(
    "batchnorm-to-depthwise", frozenset({"BatchNormalization"}), batchnorm_to_depthwise
)
