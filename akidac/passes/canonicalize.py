"""`canonicalize`: rewrite ONNX idioms into the one form later passes look for.

After it, within the `onnx` dialect:
- `MatMul(x, W)` with a constant `W` and a 2-D `x`, followed by `Add(·, b)` with a constant
  `b` broadcast over the last axis, is one `Gemm(x, W, b)` (alpha = beta = 1, no transpose);
- a `Reshape` of a 4-D value to `[N, C·H·W]` is `Flatten(axis=1)`;
- `ReduceMean` over axes {2, 3} and an `AveragePool` whose window is the whole map are
  `GlobalAveragePool` (followed by `Flatten` when the reduction dropped the axes).
The math is unchanged; each rewrite keeps the origins of the ops it replaces.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from akidac.ir.graph import Graph, Op, Value
from akidac.passes.base import PassContext, PassResult, register_pass


def _const(value: Value | None) -> np.ndarray | None:
    return value.const if value is not None and value.is_constant else None


def _reduce_axes(op: Op) -> list[int] | None:
    axes = op.attrs.get("axes")
    if axes is None and len(op.inputs) > 1:
        array = _const(op.inputs[1])
        axes = None if array is None else [int(a) for a in array.reshape(-1)]
    if not isinstance(axes, list):
        return None
    return sorted(a % 4 for a in axes)


@register_pass
@dataclass(frozen=True)
class Canonicalize:
    """Normalize MatMul+Add→Gemm, Reshape→Flatten, ReduceMean/AveragePool→GlobalAveragePool."""

    name: ClassVar[str] = "canonicalize"

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        changed = False
        for op in list(graph.ops):
            if op.domain or op not in graph.ops:
                continue
            rewrite = {
                "MatMul": self._matmul_add,
                "Reshape": self._reshape_flatten,
                "ReduceMean": self._reduce_mean,
                "AveragePool": self._average_pool,
            }.get(op.op_type)
            if rewrite is not None and rewrite(graph, op):
                changed = True
        return PassResult(graph, changed)

    @staticmethod
    def _matmul_add(graph: Graph, op: Op) -> bool:
        x, weight = op.inputs[0], op.inputs[1]
        w = _const(weight)
        if x is None or w is None or w.ndim != 2 or x.type.rank != 2:
            return False
        result = op.outputs[0]
        inputs: list[Value | None] = [x, weight]
        replaced = [op]
        users = result.users
        if len(users) == 1 and users[0].kind == "onnx.Add" and result not in graph.outputs:
            add = users[0]
            other = add.inputs[1] if add.inputs[0] is result else add.inputs[0]
            b = _const(other)
            if b is not None and b.size == w.shape[1]:
                bias = graph.add_constant(f"{op.display_name}_bias", b.reshape(-1), fresh=True)
                inputs.append(bias)
                replaced.append(add)
        final = replaced[-1].outputs[0]
        gemm = graph.make_op(
            "onnx.Gemm",
            inputs,
            [final.type],
            result_names=[f"{final.name}_gemm"],
            origin=tuple(n for r in replaced for n in r.origin),
            created_by="canonicalize",
            fresh_names=True,
            index=graph.ops.index(replaced[-1]),
        )
        _replace(graph, replaced, final, gemm.outputs[0])
        return True

    @staticmethod
    def _reshape_flatten(graph: Graph, op: Op) -> bool:
        x, shape_value = op.inputs[0], op.inputs[1]
        target = _const(shape_value)
        out = op.outputs[0]
        if x is None or target is None or x.type.rank != 4 or not out.type.is_static:
            return False
        if out.type.rank != 2 or out.type.shape[0] != x.type.shape[0]:  # type: ignore[index]
            return False
        flatten = graph.make_op(
            "onnx.Flatten",
            [x],
            [out.type],
            result_names=[f"{out.name}_flat"],
            attrs={"axis": 1},
            origin=op.origin,
            created_by="canonicalize",
            fresh_names=True,
            index=graph.ops.index(op),
        )
        _replace(graph, [op], out, flatten.outputs[0])
        return True

    @staticmethod
    def _reduce_mean(graph: Graph, op: Op) -> bool:
        x = op.inputs[0]
        if x is None or x.type.rank != 4 or _reduce_axes(op) != [2, 3]:
            return False
        return _to_gap(graph, op, keepdims=bool(op.attrs.get("keepdims", 1)))

    @staticmethod
    def _average_pool(graph: Graph, op: Op) -> bool:
        x = op.inputs[0]
        if x is None or x.type.rank != 4 or not x.type.is_static:
            return False
        kernel = op.attrs.get("kernel_shape")
        pads = op.attrs.get("pads", [0, 0, 0, 0])
        if kernel != list(x.type.shape[2:]) or any(pads):  # type: ignore[index,arg-type]
            return False
        return _to_gap(graph, op, keepdims=True)


def _to_gap(graph: Graph, op: Op, keepdims: bool) -> bool:
    x = op.inputs[0]
    out = op.outputs[0]
    n, c = x.type.shape[0], x.type.shape[1]  # type: ignore[union-attr,index]
    gap_type = out.type.with_shape((n, c, 1, 1))
    index = graph.ops.index(op)
    gap = graph.make_op(
        "onnx.GlobalAveragePool",
        [x],
        [gap_type],
        result_names=[f"{out.name}_gap"],
        origin=op.origin,
        created_by="canonicalize",
        fresh_names=True,
        index=index,
    )
    result = gap.outputs[0]
    if not keepdims:
        flatten = graph.make_op(
            "onnx.Flatten",
            [result],
            [out.type],
            result_names=[f"{out.name}_flat"],
            attrs={"axis": 1},
            origin=op.origin,
            created_by="canonicalize",
            fresh_names=True,
            index=index + 1,
        )
        result = flatten.outputs[0]
    _replace(graph, [op], out, result)
    return True


def _replace(graph: Graph, old_ops: list[Op], old: Value, new: Value) -> None:
    """Route users of `old` to `new`, keep a graph output's name, and drop `old_ops`."""
    if old in graph.outputs:
        new.name, old.name = old.name, new.name
    graph.replace_all_uses(old, new)
    for dead in reversed(old_ops):
        graph.remove_op(dead)
