"""A channel Concat of k > 2 maps → a chain of k − 1 two-input Concats.

Concatenation on the channel axis is associative: `cat(a, b, c) = cat(cat(a, b), c)`, element
for element. Akida's Concatenate layer merges two inputs (through the consuming layer's skip
DMA), so a k-input Concat — YOLOv8's C2f writes `cat(a, b, m1(b), …)`, Inception blocks and
DenseNet layers concatenate more — is `AK-MERGE-INPUT-COUNT` as one op and legal as a chain.
`fuse` then puts an identity layer after every inner Concat (a merge must feed a CNP layer),
which costs NPs but no CPU round trip. A chain rather than a balanced tree: every inner Concat
has one reader, and the first inputs (usually the earliest, widest maps) meet first.

The rule fires on axis 1 of rank-4 values with static shapes, none of them constant.
"""

from __future__ import annotations

from akidac.ir.graph import Graph, Op, Value
from akidac.passes.rewrites.rule import Outcome, RewriteRule, replace_ops

#: the inputs one Akida merge takes.
MERGE_INPUTS = 2


def concat_to_pairs(graph: Graph, op: Op, by: str) -> Outcome:
    """Concat(x1, …, xk) on axis 1, k > 2 → Concat(…Concat(Concat(x1, x2), x3)…, xk)."""
    inputs = list(op.inputs)
    result = op.outputs[0]
    if len(inputs) <= MERGE_INPUTS or op.domain or result.type.rank != 4:
        return False
    if op.int_attr("axis", 0) % 4 != 1:
        return False
    operands = [v for v in inputs if v is not None and not v.is_constant and v.type.is_static]
    if len(operands) != len(inputs):
        return False
    index = graph.ops.index(op)
    shape = result.type.shape
    assert shape is not None  # rank 4
    merged: Value = operands[0]
    channels = merged.type.dims[1]
    for step, value in enumerate(operands[1:-1], start=1):
        channels += value.type.dims[1]
        inner = graph.make_op(
            "onnx.Concat",
            [merged, value],
            [result.type.with_shape((shape[0], channels, *shape[2:]))],
            result_names=[f"{result.name}_pair{step}"],
            attrs={"axis": 1},
            origin=op.origin,
            created_by=by,
            fresh_names=True,
            index=index,
        )
        index += 1
        merged = inner.outputs[0]
    replace_ops(graph, [op], "onnx.Concat", [merged, inputs[-1]], by, attrs={"axis": 1})
    return True


RULE = RewriteRule("concat-to-pairs", frozenset({"Concat"}), concat_to_pairs)
