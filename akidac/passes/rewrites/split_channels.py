"""A channel Split (or Slice) of a Conv's output → one Conv per piece, each with its filters.

A Conv computes each output channel from its own filter: `y_c = W_c ∗ x + b_c`. Channels
`[o, o + n)` of `y` are therefore the Conv with filters `W[o:o+n]` and bias `b[o:o+n]`, reading
the same `x`. Pointwise operations between the Conv and the Split (an activation, `y · σ(y)`,
a Clip, a scalar Mul/Add) act on each channel alone, so they commute with taking channels:
`f(y)[o:o+n] = f(y[o:o+n])`. The rewrite clones that pointwise chain once per piece on the
sliced Conv and removes the Split: the same values, no extra work, and no Split (which Akida
cannot run, `AK-OP-UNSUPPORTED`) to cut the Akida region in two.

YOLOv8's C2f block (`cv1(x).split(2, dim=1)`, e.g. NudeNet) and CSP-style blocks write exactly
this. The rule fires when the Split is on axis 1 of a static NCHW map, its input comes from a
Conv with constant weights through ops that are all pointwise (unary activations; Mul, Add,
Sub, Div whose other operand is in the chain or a scalar constant), and nothing outside the
chain reads the Conv or any value of the chain (else the whole map is needed anyway). A Slice
on axis 1 with step 1 is a Split with one piece.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from akidac.ir.graph import Graph, Op, Value
from akidac.ir.types import TensorType
from akidac.passes.rewrites.rule import (
    Miss,
    Outcome,
    RewriteRule,
    const_of,
    derived_constant,
)

#: ops that act on each element alone (with their attributes), so on each channel alone.
UNARY = frozenset(
    {
        "Relu",
        "Sigmoid",
        "Tanh",
        "HardSigmoid",
        "HardSwish",
        "LeakyRelu",
        "Elu",
        "Selu",
        "Softplus",
        "Clip",
        "Neg",
        "Abs",
        "Exp",
        "Erf",
        "Gelu",
        "Mish",
    }
)
BINARY = frozenset({"Mul", "Add", "Sub", "Div"})
#: Clip's min/max and other non-data operands of a unary op must be scalar constants.
MAX_CHAIN = 16


def _scalar(value: Value | None) -> bool:
    array = const_of(value)
    return array is not None and array.size == 1


def _chain(graph: Graph, start: Value) -> tuple[Op, list[Op]] | str:
    """(the Conv, the pointwise ops between it and `start` in graph order), or why not."""
    chain: list[Op] = []
    conv: Op | None = None
    stack, seen = [start], set()
    while stack:
        value = stack.pop()
        if id(value) in seen or value.is_constant:
            continue
        seen.add(id(value))
        op = value.producer
        if op is None or op.domain:
            return f"'{start.name}' is computed from a graph input, not only from one Conv"
        if op.op_type == "Conv":
            if conv is not None and conv is not op:
                return f"'{start.name}' is computed from two Convs"
            conv = op
            continue
        if op.op_type in UNARY:
            if not all(v is None or _scalar(v) for v in op.inputs[1:]):
                return f"{op.op_type} '{op.display_name}' has a non-scalar bound"
        elif op.op_type in BINARY:
            if any(v is not None and v.is_constant and not _scalar(v) for v in op.inputs):
                return f"{op.op_type} '{op.display_name}' has a per-channel or per-pixel constant"
        else:
            return f"{op.op_type} '{op.display_name}' before the split is not pointwise"
        if op not in chain:
            chain.append(op)
        if len(chain) > MAX_CHAIN:
            return f"more than {MAX_CHAIN} ops between the Conv and the split"
        stack.extend(v for v in op.inputs if v is not None)
    if conv is None:
        return f"'{start.name}' is not computed from a Conv"
    return conv, sorted(chain, key=graph.ops.index)


def _with_channels(value: Value, count: int) -> TensorType:
    shape = value.type.shape
    assert shape is not None  # a 4-D map
    return value.type.with_shape((shape[0], count, *shape[2:]))


def _only_read_inside(graph: Graph, ops: Sequence[Op], split: Op) -> bool:
    inside = {id(op) for op in ops} | {id(split)}
    for op in ops:
        for value in op.outputs:
            if graph.is_pinned(value) or any(id(user) not in inside for user in value.users):
                return False
    return True


def _pieces(op: Op) -> list[tuple[int, int]] | None:
    """(first channel, channel count) of every result of a Split/Slice on axis 1, or None."""
    x = op.inputs[0]
    if x is None or x.type.rank != 4 or not x.type.is_static:
        return None
    if op.op_type == "Split":
        if op.int_attr("axis", 0) % 4 != 1:
            return None
        sizes = [v.type.shape[1] for v in op.outputs if v.type.rank == 4 and v.type.shape]
        counts = [s for s in sizes if isinstance(s, int)]
        if len(counts) != len(op.outputs) or sum(counts) != x.type.dims[1]:
            return None
        offsets = np.cumsum([0, *counts[:-1]])
        return [(int(s), int(n)) for s, n in zip(offsets, counts, strict=True)]
    starts, ends, axes = (const_of(v) for v in (op.inputs[1:4] + [None] * 3)[:3])
    steps = const_of(op.inputs[4]) if len(op.inputs) > 4 else None
    if starts is None or ends is None or axes is None or starts.size != 1 or axes.size != 1:
        return None
    if int(axes.reshape(-1)[0]) % 4 != 1 or (steps is not None and int(steps.reshape(-1)[0]) != 1):
        return None
    channels = x.type.dims[1]
    first, last, _ = slice(int(starts.reshape(-1)[0]), int(ends.reshape(-1)[0])).indices(channels)
    return [(first, last - first)] if last > first else None


def split_to_convs(graph: Graph, op: Op, by: str) -> Outcome:
    """Split/Slice on axis 1 of a Conv's (pointwise-activated) output → per piece, the Conv
    with that piece's filters and a copy of the pointwise ops."""
    pieces = _pieces(op)
    if pieces is None or op.domain:
        return False
    name = f"{op.op_type} '{op.display_name}'"
    found = _chain(graph, op.operand(0))
    if isinstance(found, str):
        return Miss(f"{name}: {found}")
    conv, chain = found
    weight = const_of(conv.inputs[1])
    bias = conv.inputs[2] if len(conv.inputs) > 2 else None
    if weight is None or (bias is not None and const_of(bias) is None):
        return Miss(f"{name}: the weights of Conv '{conv.display_name}' are not constant")
    if conv.int_attr("group", 1) != 1:
        return Miss(f"{name}: Conv '{conv.display_name}' is grouped; its filters share inputs")
    if not _only_read_inside(graph, [conv, *chain], op):
        return Miss(f"{name}: the Conv's output or a value after it has other readers")
    index = graph.ops.index(op)
    weight_name = conv.operand(1).name
    bias_array = const_of(bias)
    for piece, (first, count) in enumerate(pieces):
        taken = slice(first, first + count)
        inputs: list[Value | None] = [
            conv.inputs[0],
            derived_constant(graph, weight_name, f"part{piece}", weight[taken]),
        ]
        if bias is not None:
            assert bias_array is not None  # checked with the weights
            inputs.append(derived_constant(graph, bias.name, f"part{piece}", bias_array[taken]))
        clones: dict[int, Value] = {}
        template = [conv, *chain]
        for original in template:
            operands = [clones.get(id(v), v) if v is not None else None for v in original.inputs]
            if original is conv:
                operands = inputs
            types = [_with_channels(v, count) for v in original.outputs]
            clone = graph.make_op(
                original.kind,
                operands,
                types,
                result_names=[f"{v.name}_part{piece}" for v in original.outputs],
                attrs=dict(original.attrs),
                origin=original.origin,
                created_by=by,
                domain=original.domain,
                fresh_names=True,
                index=index,
            )
            index += 1
            for old, new in zip(original.outputs, clone.outputs, strict=True):
                clones[id(old)] = new
        graph.redirect_uses(op.outputs[piece], clones[id(op.inputs[0])])
    graph.remove_op(op)
    for dead in reversed([conv, *chain]):
        graph.remove_op(dead)
    return True


RULE = RewriteRule("split-to-convs", frozenset({"Split", "Slice"}), split_to_convs)
