"""`import-cleanup`: drop no-op nodes, fold constants, fold BatchNormalization into layers.

After it: no Identity or Dropout op remains (except one that copies a graph input, a constant or
another graph output into a graph output), nor any other op whose result is its input element
for element (a same-shape Reshape, Cast, Slice with steps 1, identity Transpose: `_is_noop`),
every op
whose inputs are all constants (and whose result is small) has become a constant — including
`Shape` of a static value, so exporter-made shape arithmetic disappears — and every
BatchNormalization, and every Mul/Div/Add/Sub by a per-channel constant, that follows a Conv,
ConvTranspose, Gemm or MatMul with constant weights and no other reader is folded into it
(`rewrites.fold_affine`); ops whose results reach no graph output (nor a subgraph that reads
them by name) are removed:

    y = γ · (W∗x + b − μ) / √(σ² + ε) + β  =  (W · k) ∗ x + (b − μ) · k + β,   k = γ / √(σ² + ε)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import onnx
from onnx.reference import ReferenceEvaluator

from akidac.ir.graph import Graph, Op
from akidac.ir.onnx_export import NodeEmitter, emit_onnx_op, value_info
from akidac.passes.base import PassContext, PassResult, register_pass
from akidac.passes.rewrites import IMPORT_CLEANUP_RULES, run_rules
from akidac.passes.rewrites.rule import const_of

#: results larger than this stay ops: folding them would only bloat the model.
FOLD_LIMIT_ELEMENTS = 1 << 20
_NONDETERMINISTIC = {
    "RandomNormal",
    "RandomUniform",
    "RandomNormalLike",
    "RandomUniformLike",
    "Multinomial",
    "Bernoulli",
}


def _fold_op(graph: Graph, op: Op) -> np.ndarray | None:
    """Evaluate an all-constant op with ONNX's reference evaluator (small inputs only)."""
    emitter = NodeEmitter(opset=graph.opset_imports.get(""))
    emit_onnx_op(op, emitter)
    inputs = [v for v in op.inputs if v is not None]
    feeds = {v.name: v.const for v in inputs}
    model = onnx.helper.make_model(
        onnx.helper.make_graph(
            emitter.nodes, "fold", [value_info(v) for v in inputs], [value_info(op.outputs[0])]
        ),
        opset_imports=[onnx.helper.make_opsetid(d, v) for d, v in graph.opset_imports.items()],
    )
    try:
        (result,) = ReferenceEvaluator(model).run(None, feeds)
    except Exception:  # an op the reference evaluator lacks: leave it to onnxruntime
        return None
    return np.asarray(result)


#: ops that change nothing when their result has the type of their first input.
_SHAPE_OPS = frozenset({"Reshape", "Squeeze", "Unsqueeze", "Flatten", "Cast", "Expand"})


def _is_noop(op: Op) -> bool:
    """The result is the input, element for element: a Reshape/Squeeze/Unsqueeze/Flatten/Expand
    whose static result shape equals its input's, a Cast to the input's own type, a Slice that
    keeps every element in order (same shape, every step 1: timm's GhostNet slices each module's
    output to the channels it already has), a Transpose by the identity permutation, a Concat
    or Split of one piece."""
    if len(op.outputs) != 1 or not op.inputs:
        return False
    source, result = op.inputs[0], op.outputs[0]
    if source is None or not source.type.is_static or not result.type.is_static:
        return False
    if source.type.shape != result.type.shape or source.type.dtype != result.type.dtype:
        return False
    if op.op_type in _SHAPE_OPS:
        return True
    if op.op_type == "Slice":
        steps = const_of(op.inputs[4]) if len(op.inputs) > 4 else None
        return (
            len(op.inputs) <= 4
            or op.inputs[4] is None
            or (steps is not None and bool(np.all(steps == 1)))
        )
    if op.op_type == "Transpose":
        perm = op.attrs.get("perm")
        return (perm is None and source.type.rank == 1) or perm == list(
            range(source.type.rank or 0)
        )
    return op.op_type == "Split" or (op.op_type == "Concat" and len(op.inputs) == 1)


@register_pass
@dataclass(frozen=True)
class ImportCleanup:
    """Remove Identity/Dropout, fold constants and Shape, fold BatchNorm/Mul/Add into layers."""

    name: ClassVar[str] = "import-cleanup"

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        changed = False
        for op in list(graph.ops):
            if op.domain:
                continue
            if op.op_type in ("Identity", "Dropout") or _is_noop(op):
                changed = self._bypass(graph, op) or changed
            elif op.op_type == "Shape" and self._fold_shape(graph, op):
                changed = True
            elif self._foldable(op):
                result = _fold_op(graph, op)
                if result is not None:
                    graph.replace_with_constant(op, result)
                    changed = True
        if run_rules(graph, ctx, IMPORT_CLEANUP_RULES, self.name):
            changed = True
        if graph.remove_dead_ops():
            changed = True
        if changed:
            graph.remove_unused_constants()
        return PassResult(graph, changed)

    @staticmethod
    def _bypass(graph: Graph, op: Op) -> bool:
        source, result = op.inputs[0], op.outputs[0]
        if source is None:
            return False
        if op.op_type == "Dropout" and len(op.outputs) > 1 and op.outputs[1].users:
            return False
        if graph.is_pinned(result):
            # an Identity before a graph output (common in exports): the value it copies takes
            # the output's name, when that value is an op's result that nothing else pins
            if source.producer is None or source.is_constant or graph.is_pinned(source):
                return False
            graph.redirect_uses(result, source, skip=op)
            graph.remove_op(op)
            return True
        graph.redirect_uses(result, source)  # neither is pinned: no name changes
        graph.remove_op(op)
        return True

    @staticmethod
    def _fold_shape(graph: Graph, op: Op) -> bool:
        source = op.inputs[0]
        if source is None or not source.type.is_static:
            return False
        shape = np.array(source.type.dims, dtype=np.int64)
        start = op.int_attr("start", 0)
        end = None if op.attrs.get("end") is None else op.int_attr("end")
        shape = shape[start:] if end is None else shape[start:end]
        graph.replace_with_constant(op, shape)
        return True

    @staticmethod
    def _foldable(op: Op) -> bool:
        if op.op_type in _NONDETERMINISTIC or len(op.outputs) != 1:
            return False
        if not op.inputs or any(v is None or not v.is_constant for v in op.inputs):
            return False
        out = op.outputs[0].type
        return not (out.is_static and out.num_elements() > FOLD_LIMIT_ELEMENTS)
