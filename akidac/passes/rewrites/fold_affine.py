"""Fold a BatchNormalization or a constant per-channel Mul/Div/Add/Sub into the layer before it.

A Conv, ConvTranspose, Gemm or MatMul with constant weights computes, per output channel c,
`y_c = (W ∗ x)_c + b_c`. A per-channel affine map after it, `z_c = m_c · y_c + a_c`, is the same
layer with new parameters:

    W'_c = m_c · W_c        b'_c = m_c · b_c + a_c

BatchNormalization is that map with `m = γ / √(σ² + ε)` and `a = β − μ · m`; `Mul(y, m)` has
a = 0, `Div(y, d)` has m = 1 / d, `Add(y, a)` has m = 1 and `Sub(y, s)` has a = −s. Where the
weights of channel c live:
- Conv: `W[c, …]`;
- ConvTranspose with G groups, W of shape [Cin, Cout/G, …]: `W[g·Cin/G + i, j, …]` feeds channel
  `c = g·Cout/G + j`;
- Gemm (`alpha·A·B + beta·C`): column c of B (row c when transB = 1); alpha stays, the new
  C is `m · beta·C + a` and beta becomes 1;
- MatMul with a constant 2-D B: column c of B; a MatMul that gains a bias becomes a Gemm.
Only a scalar, or a constant whose axes other than the channel axis are all 1, folds; the
layer's result must have no other reader. A BatchNormalization, Mul or Add after anything else
(a standalone one) is left alone.
"""

from __future__ import annotations

import numpy as np

from akidac.ir.attributes import AttrValue
from akidac.ir.graph import Graph, Op, Value
from akidac.passes.rewrites.rule import (
    Miss,
    Outcome,
    RewriteRule,
    const_of,
    derived_constant,
    per_channel,
    replace_ops,
    single_consumer,
)

ANCHORS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul"})


def _operands(op: Op) -> tuple[Value, np.ndarray, bool] | None:
    """(the variable operand, the constant one, whether the variable one comes first) of a
    binary op with exactly one constant operand; None otherwise."""
    if len(op.inputs) != 2:
        return None
    first, second = op.inputs
    if first is None or second is None:
        return None
    first_const, second_const = const_of(first), const_of(second)
    if second_const is not None and first_const is None:
        return first, second_const, True
    if first_const is not None and second_const is None:
        return second, first_const, False
    return None


def _channels(anchor: Op) -> tuple[int, int] | str:
    """(output channel axis, channel count) of a foldable anchor, or why it is not foldable."""
    out_rank = anchor.outputs[0].type.rank
    weight = anchor.inputs[1] if len(anchor.inputs) > 1 else None
    w = const_of(weight)
    name = f"{anchor.op_type} '{anchor.display_name}'"
    if w is None:
        return f"the weights of {name} are not constant"
    if w.dtype.kind != "f":
        return f"the weights of {name} are {w.dtype}, not floating point"
    if out_rank is None:
        return f"the rank of the output of {name} is unknown"
    if anchor.op_type == "Conv":
        return 1, int(w.shape[0])
    if anchor.op_type == "ConvTranspose":
        return 1, int(w.shape[1]) * anchor.int_attr("group", 1)
    if w.ndim != 2:
        return f"the weights of {name} are not a matrix"
    if anchor.op_type == "Gemm":
        return 1, int(w.shape[0] if anchor.attrs.get("transB", 0) else w.shape[1])
    return out_rank - 1, int(w.shape[1])


def _affine_map(
    graph: Graph, op: Op, axis: int, channels: int, rank: int
) -> tuple[np.ndarray, np.ndarray | None] | str:
    """(m, a) of the follower `op` (a is None when it adds nothing), or why it does not fold."""
    name = f"{op.op_type} '{op.display_name}'"
    if op.op_type == "BatchNormalization":
        found_params = [const_of(v) for v in op.inputs[1:5]]
        params = [p for p in found_params if p is not None]
        if len(params) != 4:
            return f"the statistics of {name} are not constant"
        if op.attrs.get("training_mode", 0):
            return f"{name} is in training mode"
        if any(v.users or graph.is_pinned(v) for v in op.outputs[1:]):
            return f"the running statistics of {name} are read"
        if axis != 1:
            return f"{name} normalizes axis 1, but the layer's channels are on axis {axis}"
        gamma, beta, mean, var = (p.astype(np.float64).reshape(-1) for p in params)
        epsilon = op.float_attr("epsilon", 1e-5)
        m = gamma / np.sqrt(var + epsilon)
        return np.broadcast_to(m, (channels,)), np.broadcast_to(beta - mean * m, (channels,))
    found = _operands(op)
    if found is None:
        return f"{name} has no constant operand"
    constant = found[1]
    vector = per_channel(constant, rank, axis, channels)
    if vector is None:
        return (
            f"the constant of {name} has shape {list(constant.shape)}; only a scalar or one "
            f"value per channel ({channels} on axis {axis}) folds"
        )
    if op.op_type == "Mul":
        return vector, None
    if op.op_type == "Div":
        return 1.0 / vector, None
    if op.op_type == "Add":
        return np.ones(channels), vector
    return np.ones(channels), -vector


def fold_affine(graph: Graph, op: Op, by: str) -> Outcome:
    """BatchNormalization / Mul / Div / Add / Sub by a per-channel constant after a Conv,
    ConvTranspose, Gemm or MatMul with constant weights → that layer with `W' = W·m`,
    `b' = b·m + a` (a MatMul that gains a bias becomes a Gemm)."""
    if op.op_type == "BatchNormalization":
        y = op.inputs[0]
    else:
        found = _operands(op)
        if found is None or (op.op_type in ("Sub", "Div") and not found[2]):
            return False
        y = found[0]
    anchor = y.producer if y is not None else None
    if y is None or anchor is None or anchor.op_type not in ANCHORS or anchor.domain:
        return False
    layer = f"{anchor.op_type} '{anchor.display_name}'"
    if single_consumer(graph, y) is not op:
        return Miss(f"the output of {layer} has other readers")
    described = _channels(anchor)
    if isinstance(described, str):
        return Miss(described)
    axis, channels = described
    rank = int(y.type.rank or 0)
    mapped = _affine_map(graph, op, axis, channels, rank)
    if isinstance(mapped, str):
        return Miss(mapped)
    m, a = mapped
    bias_index = 2
    bias = anchor.inputs[bias_index] if len(anchor.inputs) > bias_index else None
    if bias is not None and const_of(bias) is None:
        return Miss(f"the bias of {layer} is not constant")
    if anchor.op_type == "MatMul" and a is not None and rank != 2:
        return Miss(f"{layer} has a rank-{rank} input; only a 2-D MatMul gains a bias (Gemm)")
    inputs, attrs, kind = _fold(graph, anchor, m, a)
    replace_ops(graph, [anchor, op], kind, inputs, by, attrs=attrs, result_name=y.name)
    return True


def _fold(
    graph: Graph, anchor: Op, m: np.ndarray, a: np.ndarray | None
) -> tuple[list[Value | None], dict[str, AttrValue], str]:
    """Operands, attributes and kind of the layer with `m` and `a` folded in."""
    weight = anchor.inputs[1]
    w = const_of(weight)
    if weight is None or w is None:
        raise ValueError(f"{anchor!r} has no constant weights")  # _channels checked this
    dtype = w.dtype
    w64 = w.astype(np.float64)
    attrs = dict(anchor.attrs)
    kind = anchor.kind
    old_bias = const_of(anchor.inputs[2]) if len(anchor.inputs) > 2 else None
    if anchor.op_type == "Conv":
        new_w = w64 * m.reshape(-1, *([1] * (w.ndim - 1)))
    elif anchor.op_type == "ConvTranspose":
        groups = anchor.int_attr("group", 1)
        cin, per_group = w.shape[0], w.shape[1]
        grouped = w64.reshape(groups, cin // groups, per_group, *w.shape[2:])
        factor = m.reshape(groups, 1, per_group, *([1] * (w.ndim - 2)))
        new_w = (grouped * factor).reshape(w.shape)
    elif anchor.op_type == "Gemm" and attrs.get("transB", 0):
        new_w = w64 * m.reshape(-1, 1)
    else:
        new_w = w64 * m.reshape(1, -1)
    new_bias: np.ndarray | None = None
    if anchor.op_type == "Gemm":
        if old_bias is not None:
            beta = anchor.float_attr("beta", 1.0)
            attrs.pop("beta", None)
            new_bias = beta * old_bias.astype(np.float64) * m
        if a is not None:
            attrs.pop("beta", None)
            new_bias = a if new_bias is None else new_bias + a
    else:
        if old_bias is not None:
            new_bias = old_bias.astype(np.float64).reshape(-1) * m
        if a is not None:
            new_bias = a if new_bias is None else new_bias + a
    if anchor.op_type == "MatMul" and new_bias is not None:
        kind = "onnx.Gemm"
    display = anchor.display_name
    unscaled = bool(np.all(m == 1.0))
    inputs: list[Value | None] = [
        anchor.inputs[0],
        weight if unscaled else derived_constant(graph, weight.name, "folded", new_w.astype(dtype)),
    ]
    if new_bias is not None:
        inputs.append(derived_constant(graph, f"{display}_bias", "folded", new_bias.astype(dtype)))
    return inputs, attrs, kind


RULE = RewriteRule(
    "fold-affine",
    frozenset({"BatchNormalization", "Mul", "Div", "Add", "Sub"}),
    fold_affine,
)
