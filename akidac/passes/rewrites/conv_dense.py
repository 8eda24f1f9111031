"""A Conv whose kernel covers its whole unpadded input, flattened after → Flatten + Gemm.

Without padding, a Conv with an H × W kernel on an H × W map has one output pixel per filter,
`y[n, f] = Σ_{c,i,j} W[f, c, i, j] · x[n, c, i, j] + b[f]`, which is the dense layer
`Gemm(Flatten(x), W.reshape(F, C·H·W), b, transB = 1)`: Flatten keeps NCHW's row-major order
(c, i, j), the order of W's trailing axes. MediaPipe's iris landmark heads (tf2onnx) write a
dense layer this way, a "valid" 2×2 Conv on a 2×2 map followed by Reshape([1, -1]); Akida's
Conv2D has no "valid" padding, but its dense layer runs the same sum. The rule fires when the
Conv's only reader turns its [N, F, 1, 1] result into [N, F] (a Reshape, Flatten or Squeeze),
which it replaces: the Gemm gives that result directly.
"""

from __future__ import annotations

from akidac.ir.graph import Graph, Op
from akidac.passes.rewrites.rule import (
    Miss,
    Outcome,
    RewriteRule,
    const_of,
    conv_geometry,
    derived_constant,
    explicit_conv_pads,
    replace_ops,
    single_consumer,
    static_hw,
)

#: ops that turn [N, F, 1, 1] into [N, F] without moving an element.
FLATTENING = frozenset({"Reshape", "Flatten", "Squeeze"})


def whole_map_conv_to_dense(graph: Graph, op: Op, by: str) -> Outcome:
    """Conv (group 1, constant weights, no padding, dilation 1) whose kernel is the whole H × W
    input, read only by a Reshape/Flatten/Squeeze to [N, F] → Flatten + Gemm(transB = 1)."""
    x, weight, result = op.inputs[0], op.inputs[1], op.outputs[0]
    in_hw = static_hw(x)
    if x is None or in_hw is None or weight is None or op.domain:
        return False
    kernel, _, dilations = conv_geometry(op)
    if list(kernel) != list(in_hw) or in_hw == (1, 1):
        return False
    name = f"Conv '{op.display_name}'"
    pads = explicit_conv_pads(op, in_hw)
    if pads is None or any(pads) or dilations != [1, 1] or op.int_attr("group", 1) != 1:
        return False
    w = const_of(weight)
    bias = op.inputs[2] if len(op.inputs) > 2 else None
    if w is None or (bias is not None and const_of(bias) is None):
        return False
    reader = single_consumer(graph, result)
    final = None if reader is None else reader.outputs[0]
    n, filters = result.type.dims[0], result.type.dims[1]
    if reader is None or reader.op_type not in FLATTENING or reader.domain:
        return Miss(f"{name} is a dense layer, but its [N, F, 1, 1] result is not flattened after")
    if final is None or not final.type.is_static or final.type.dims != (n, filters):
        return Miss(f"{name} is a dense layer, but its [N, F, 1, 1] result is not flattened after")
    channels = x.type.dims[1]
    features = channels * in_hw[0] * in_hw[1]
    flat = graph.make_op(
        "onnx.Flatten",
        [x],
        [x.type.with_shape((n, features))],
        result_names=[f"{op.display_name}_flat"],
        attrs={"axis": 1},
        origin=op.origin,
        created_by=by,
        fresh_names=True,
        index=graph.ops.index(op),
    )
    dense = derived_constant(graph, weight.name, "dense", w.reshape(filters, features))
    replace_ops(
        graph,
        [op, reader],
        "onnx.Gemm",
        [flat.outputs[0], dense, *([bias] if bias is not None else [])],
        by,
        attrs={"transB": 1},
    )
    return True


RULE = RewriteRule("whole-map-conv-to-dense", frozenset({"Conv"}), whole_map_conv_to_dense)
