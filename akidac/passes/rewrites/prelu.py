"""PRelu whose slope is one value for every element → LeakyRelu with that slope.

`PRelu(x, a) = x` for x ≥ 0 and `a · x` below, with `a` broadcast against x; when every element
of the constant `a` is the same number α, that is `LeakyRelu(x, alpha = α)` exactly, which a
layer fuses as a lookup-table activation. tf2onnx writes Keras' PReLU with a slope per channel
(MediaPipe's models); when the slopes differ, the PRelu is left alone: Akida's lookup table is
one function for the whole layer (`legalize` says so with AK-ACTIVATION).
"""

from __future__ import annotations

import numpy as np

from akidac.ir.graph import Graph, Op
from akidac.passes.rewrites.rule import Outcome, RewriteRule, const_of, replace_ops


def prelu_to_leaky_relu(graph: Graph, op: Op, by: str) -> Outcome:
    """PRelu(x, a) with a constant `a` whose elements are all equal to α → LeakyRelu(x, α)."""
    x = op.inputs[0]
    slope = const_of(op.inputs[1]) if len(op.inputs) > 1 else None
    if x is None or slope is None or slope.size == 0:
        return False
    values = np.unique(slope.astype(np.float64))
    if values.size != 1:
        return False
    replace_ops(graph, [op], "onnx.LeakyRelu", [x], by, attrs={"alpha": float(values[0])})
    return True


RULE = RewriteRule("prelu-to-leaky-relu", frozenset({"PRelu"}), prelu_to_leaky_relu)
