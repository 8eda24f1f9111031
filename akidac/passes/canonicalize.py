"""`canonicalize`: rewrite ONNX idioms into the one form later passes look for.

After it, within the `onnx` dialect:
- `MatMul(x, W)` with a constant `W` and a 2-D `x`, followed by `Add(·, b)` with a constant
  `b` broadcast over the last axis, is one `Gemm(x, W, b)` (alpha = beta = 1, no transpose);
- a `Reshape` or `Squeeze` of a 4-D value to `[N, C·H·W]` is `Flatten(axis=1)`;
- `ReduceMean` over axes {2, 3} and an `AveragePool` whose window is the whole map are
  `GlobalAveragePool` (followed by `Flatten` when the reduction dropped the axes);
- a zero `Pad` of H/W before Convs is part of their pads (`rewrites.fold_pad`), and a zero
  `Pad` of the channels before an Add is a 1×1 Conv (`rewrites.channel_pad`);
- a nearest 2× `Resize` is a depthwise 4×4 `ConvTranspose` (`rewrites.resize_nearest`);
- no Conv has an even kernel of 2, 4 or 6 (`rewrites.even_kernel`);
- no depthwise 5×5/7×7 Conv has stride 2 with PyTorch, TF "same" or no padding: it is a
  stride-1 Conv and a stride-2 identity Conv (`rewrites.strided_depthwise`).
- no BatchNormalization is left on an NCHW map: one that `import-cleanup` could not fold is a
  3×3 depthwise Conv with only its centre tap (`rewrites.affine_depthwise`).
The math is unchanged (each rule's module states why); each rewrite keeps the origins of the
ops it replaces, and the rules run to a fixed point. Near misses are listed in
`ctx.analyses["rewrite_misses"]`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from akidac.ir.graph import Graph, Op, Value
from akidac.passes.base import PassContext, PassResult, register_pass
from akidac.passes.rewrites import CANONICALIZE_RULES
from akidac.passes.rewrites.rule import (
    Outcome,
    RewriteRule,
    const_of,
    explicit_pool_pads,
    per_channel,
    replace_ops,
    replace_value,
    run_rules,
    single_consumer,
)


def _reduce_axes(op: Op) -> list[int] | None:
    """The sorted axes a 4-D reduction reads from its constant `axes` input (the frontend
    moved an opset-13/17 `axes` attribute there), or None when they are not constant or absent."""
    array = const_of(op.inputs[1]) if len(op.inputs) > 1 else None
    if array is None:
        return None
    return sorted(int(a) % 4 for a in array.reshape(-1))


def matmul_add_to_gemm(graph: Graph, op: Op, by: str) -> Outcome:
    """MatMul(x, W) with a constant 2-D W and a 2-D x, and an `Add(·, b)` of a constant b
    broadcast over the last axis after it → `Gemm(x, W, b)` (alpha = beta = 1)."""
    x, weight = op.inputs[0], op.inputs[1]
    w = const_of(weight)
    if x is None or w is None or w.ndim != 2 or x.type.rank != 2:
        return False
    result = op.outputs[0]
    inputs: list[Value | None] = [x, weight]
    replaced = [op]
    add = single_consumer(graph, result)
    if add is not None and add.kind == "onnx.Add":
        other = add.inputs[1] if add.inputs[0] is result else add.inputs[0]
        b = const_of(other)
        vector = None if b is None else per_channel(b, 2, 1, int(w.shape[1]))
        if b is not None and vector is not None and b.dtype == w.dtype:
            bias = graph.add_constant(f"{op.display_name}_bias", vector.astype(b.dtype), fresh=True)
            inputs.append(bias)
            replaced.append(add)
    final = replaced[-1].outputs[0]
    replace_ops(graph, replaced, "onnx.Gemm", inputs, by, result_name=f"{final.name}_gemm")
    return True


def reshape_to_flatten(graph: Graph, op: Op, by: str) -> Outcome:
    """Reshape (constant shape) or Squeeze of a 4-D value to [N, C·H·W] → `Flatten(axis = 1)`:
    tf2onnx writes a Keras classifier head as `GlobalAveragePool → Squeeze(axes [2, 3])`."""
    x = op.inputs[0]
    out = op.outputs[0]
    if op.op_type == "Reshape" and const_of(op.inputs[1]) is None:
        return False
    if x is None or x.type.rank != 4 or not out.type.is_static:
        return False
    x_shape = x.type.shape
    if out.type.rank != 2 or x_shape is None or out.type.dims[0] != x_shape[0]:
        return False
    return _flatten(graph, op, x, by)


def reduce_mean_to_gap(graph: Graph, op: Op, by: str) -> Outcome:
    """ReduceMean over axes {2, 3} of a 4-D value → GlobalAveragePool (+ Flatten when the
    reduction drops the axes)."""
    x = op.inputs[0]
    if x is None or x.type.rank != 4 or _reduce_axes(op) != [2, 3]:
        return False
    return _to_gap(graph, op, keepdims=bool(op.attrs.get("keepdims", 1)), by=by)


def average_pool_to_gap(graph: Graph, op: Op, by: str) -> Outcome:
    """AveragePool whose window is the whole unpadded map → GlobalAveragePool (its pads
    explicit or from `auto_pad`: a SAME AveragePool pads, and keeps the map's size)."""
    x = op.inputs[0]
    if x is None or x.type.rank != 4 or not x.type.is_static:
        return False
    kernel = op.attrs.get("kernel_shape")
    dims = x.type.dims
    if kernel != list(dims[2:]) or op.ints_attr("dilations", [1, 1]) != [1, 1]:
        return False
    pads = explicit_pool_pads(op, (dims[2], dims[3]))
    if pads is None or any(pads):
        return False
    return _to_gap(graph, op, keepdims=True, by=by)


def _to_gap(graph: Graph, op: Op, keepdims: bool, by: str) -> bool:
    x = op.operand(0)
    out = op.outputs[0]
    shape = x.type.shape
    assert shape is not None  # the callers checked that x is 4-D
    n, c = shape[0], shape[1]
    gap = graph.make_op(
        "onnx.GlobalAveragePool",
        [x],
        [out.type.with_shape((n, c, 1, 1))],
        result_names=[f"{out.name}_gap"],
        origin=op.origin,
        created_by=by,
        fresh_names=True,
        index=graph.ops.index(op),
    )
    if not keepdims:
        return _flatten(graph, op, gap.outputs[0], by)
    replace_value(graph, [op], out, gap.outputs[0])
    return True


def _flatten(graph: Graph, op: Op, x: Value, by: str) -> bool:
    """Replace `op` by `Flatten(x, axis = 1)`."""
    replace_ops(
        graph,
        [op],
        "onnx.Flatten",
        [x],
        by,
        attrs={"axis": 1},
        result_name=f"{op.outputs[0].name}_flat",
    )
    return True


#: the rules of this pass, in the order they are tried on an op.
RULES: tuple[RewriteRule, ...] = (
    RewriteRule("matmul-add-to-gemm", frozenset({"MatMul"}), matmul_add_to_gemm),
    RewriteRule("reshape-to-flatten", frozenset({"Reshape", "Squeeze"}), reshape_to_flatten),
    RewriteRule("reduce-mean-to-gap", frozenset({"ReduceMean"}), reduce_mean_to_gap),
    RewriteRule("average-pool-to-gap", frozenset({"AveragePool"}), average_pool_to_gap),
    *CANONICALIZE_RULES,
)


@register_pass
@dataclass(frozen=True)
class Canonicalize:
    """Normalize ONNX idioms (Gemm, Flatten, GAP) and rewrite them into Akida-runnable forms."""

    name: ClassVar[str] = "canonicalize"

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        changed = run_rules(graph, ctx, RULES, self.name)
        if changed:
            graph.remove_unused_constants()
        return PassResult(graph, changed)
