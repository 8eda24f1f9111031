"""The `LayerCandidate` of an `akida.*` op: what allocation, reports and estimates need.

It lives in `ir` (which may read `target`) so that `passes`, `report` and `backends` can all use
it without importing one another.
"""

from __future__ import annotations

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
    shape = [int(d) for d in x.type.shape or ()]  # type: ignore[arg-type]
    if len(shape) == 4:
        c, h, w = (shape[3], shape[1], shape[2]) if x.type.layout == "NHWC" else shape[1:]
    else:
        c, h, w = (shape[-1] if shape else 1), 1, 1
    kind = _AKIDA_KINDS[op.kind]
    out = op.outputs[0].type.shape or ()
    filters = int(out[-1] if op.outputs[0].type.layout == "NHWC" or len(out) == 2 else out[1])  # type: ignore[arg-type]
    attrs = op.attrs
    act = attrs.get("act", "none")
    activation = "none"
    if act == "relu":
        activation = "relu_max" if attrs.get("act_max") is not None else "relu"
    elif act == "lut":
        activation = f"lut:{attrs.get('lut')}"
    pool = None
    if attrs.get("pool") == "max":
        pool = (*attrs["pool_size"], *attrs["pool_stride"])  # type: ignore[misc]
    return LayerCandidate(
        node_name=op.display_name,
        op_type=op.op_type,
        kind=kind,
        in_channels=c,
        filters=filters,
        kernel=tuple(attrs.get("kernel", [1, 1])),  # type: ignore[arg-type]
        stride=tuple(attrs.get("stride", [1, 1])),  # type: ignore[arg-type]
        padding=str(attrs.get("pad", "same")),
        input_hw=(h, w),
        input_features=c * h * w,
        pool=pool,  # type: ignore[arg-type]
        activation=activation,
        gap=bool(attrs.get("gap", False)),
        weight_bits=int(attrs.get("wbits", 8)),  # type: ignore[arg-type]
        act_bits=int(attrs.get("abits", 8)),  # type: ignore[arg-type]
        groups=c if kind.startswith("depthwise") else 1,
        num_inputs=sum(v is not None for v in op.inputs) if kind in ("add", "concatenate") else 1,
    )
