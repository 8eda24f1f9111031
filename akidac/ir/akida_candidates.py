"""The `LayerCandidate` of an `akida.*` op: what allocation, reports and estimates need.

It lives in `ir` (which may read `target`) so that `passes`, `report` and `backends` can all use
it without importing one another.
"""

from __future__ import annotations

from akidac.ir.attributes import pair, quad
from akidac.ir.graph import Op
from akidac.target.constraints import LayerCandidate

_AKIDA_KINDS = {
    "akida.conv2d": "conv2d",
    "akida.depthwise_conv2d": "depthwise_conv2d",
    "akida.input_conv2d": "input_conv2d",
    "akida.conv2d_transpose": "conv2d_transpose",
    "akida.depthwise_conv2d_transpose": "depthwise_conv2d_transpose",
    "akida.dense": "dense1d",
    "akida.add": "add",
    "akida.concat": "concatenate",
}


def describe_akida_op(op: Op) -> LayerCandidate:
    """The `LayerCandidate` of an `akida.*` op (any layout), for allocation and reports."""
    x = op.inputs[0]
    assert x is not None
    shape = list(x.type.dims)
    if len(shape) == 4:
        c, h, w = (shape[3], shape[1], shape[2]) if x.type.layout == "NHWC" else shape[1:]
    else:
        c, h, w = (shape[-1] if shape else 1), 1, 1
    kind = _AKIDA_KINDS[op.kind]
    out = op.outputs[0].type.dims
    filters = out[-1] if op.outputs[0].type.layout == "NHWC" or len(out) == 2 else out[1]
    act = op.attrs.get("act", "none")
    activation = "none"
    if act == "relu":
        activation = "relu_max" if op.attrs.get("act_max") is not None else "relu"
    elif act == "lut":
        activation = f"lut:{op.attrs.get('lut')}"
    pool = None
    if op.attrs.get("pool") == "max":
        pool = quad([*op.ints_attr("pool_size"), *op.ints_attr("pool_stride")])
    return LayerCandidate(
        node_name=op.display_name,
        op_type=op.op_type,
        kind=kind,
        in_channels=c,
        filters=filters,
        kernel=pair(op.ints_attr("kernel", [1, 1])),
        stride=pair(op.ints_attr("stride", [1, 1])),
        padding=op.str_attr("pad", "same"),
        input_hw=(h, w),
        input_features=c * h * w,
        pool=pool,
        activation=activation,
        gap=bool(op.attrs.get("gap", False)),
        weight_bits=op.int_attr("wbits", 8),
        act_bits=op.int_attr("abits", 8),
        groups=c if kind.startswith("depthwise") else 1,
        num_inputs=sum(v is not None for v in op.inputs) if kind in ("add", "concatenate") else 1,
    )
