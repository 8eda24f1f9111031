"""Two reshapes in a row → one, or none when the second gives back the first one's input shape.

Reshape, Flatten, Squeeze and Unsqueeze keep every element in row-major order and change only
the shape, so a chain of them is the one Reshape of its source to the last shape:

    Reshape(Reshape(x, s₁), s₂) = Reshape(x, s₂),   and = x when s₂ is the shape of x.

tf2onnx writes a Keras squeeze-excite block as `GlobalAveragePool → Squeeze(axes [2, 3]) →
Reshape([-1, C, 1, 1]) → Conv`: the pair ends where it started, so it goes, and the pooled map
feeds the 1×1 Conv directly (same region). Shapes must be static; the first reshape stays while
something else reads it.
"""

from __future__ import annotations

import numpy as np

from akidac.ir.graph import Graph, Op
from akidac.passes.rewrites.rule import Outcome, RewriteRule, bypass_op, replace_ops

#: ops that only change the shape of their first input.
RESHAPES = frozenset({"Reshape", "Flatten", "Squeeze", "Unsqueeze"})


def collapse_reshape_chain(graph: Graph, op: Op, by: str) -> Outcome:
    """A Reshape/Flatten/Squeeze/Unsqueeze of a Reshape/Flatten/Squeeze/Unsqueeze → the input
    of the first when the shapes match, else one Reshape of it to the static result shape."""
    first = op.inputs[0] if op.inputs else None
    inner = None if first is None else first.producer
    if inner is None or inner.domain or inner.dialect != "onnx" or inner.op_type not in RESHAPES:
        return False
    assert first is not None  # it has a producer
    source, result = inner.inputs[0], op.outputs[0]
    if source is None or not source.type.is_static or not result.type.is_static:
        return False
    if source.type.dtype != result.type.dtype:
        return False
    if source.type.shape == result.type.shape:
        if not bypass_op(graph, op, source):
            return False
    else:
        target = graph.add_constant(
            f"{op.display_name}_shape", np.array(result.type.dims, np.int64), fresh=True
        )
        replace_ops(graph, [op], "onnx.Reshape", [source, target], by, attrs={})
    if not first.users and not graph.is_pinned(first):
        graph.remove_op(inner)
    return True


RULE = RewriteRule("collapse-reshape-chain", RESHAPES, collapse_reshape_chain)
