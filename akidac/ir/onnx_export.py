"""IR → ONNX: `onnx.*` ops re-emitted verbatim, float `akida.*` ops lowered to ONNX nodes.

Two users: the CPU backend (CPU fragments, and Akida layers a late pass sent back to the CPU)
and calibration, which runs the float IR in onnxruntime to observe activation ranges. An akida
op on NHWC values is wrapped in Transposes, so the exported float model always computes what
the IR means.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
from onnx import AttributeProto, helper, numpy_helper

from akidac.errors import InternalError
from akidac.ir.akida_dialect import akida_int, akida_ints, akida_optional_float, akida_str
from akidac.ir.attributes import AttrValue, DenseAttr, GraphAttr, TypedList, as_dense, as_graph
from akidac.ir.graph import Graph, Op, Value
from akidac.ir.opset_forms import moved_attribute
from akidac.ir.types import TensorType, dtype_to_onnx

_TYPED_LIST = {
    "ints": AttributeProto.INTS,
    "floats": AttributeProto.FLOATS,
    "strings": AttributeProto.STRINGS,
}


def to_attribute(name: str, value: AttrValue) -> AttributeProto:
    """An IR attribute value as an ONNX `AttributeProto`."""
    if isinstance(value, TypedList):
        return helper.make_attribute(name, [], attr_type=_TYPED_LIST[value.kind])
    if isinstance(value, DenseAttr):
        return helper.make_attribute(name, numpy_helper.from_array(value.array))
    if isinstance(value, GraphAttr):
        return helper.make_attribute(name, onnx.GraphProto.FromString(value.proto_bytes))
    if isinstance(value, list) and value and isinstance(value[0], GraphAttr):
        graphs = [onnx.GraphProto.FromString(as_graph(g, name).proto_bytes) for g in value]
        return helper.make_attribute(name, graphs)
    if isinstance(value, list) and value and isinstance(value[0], DenseAttr):
        tensors = [numpy_helper.from_array(as_dense(t, name)) for t in value]
        return helper.make_attribute(name, tensors)
    if isinstance(value, bool):
        return helper.make_attribute(name, int(value))
    return helper.make_attribute(name, value)


def value_info(value: Value) -> onnx.ValueInfoProto:
    return type_value_info(value.name, value.type)


def type_value_info(name: str, type_: TensorType) -> onnx.ValueInfoProto:
    shape = None if type_.shape is None else list(type_.shape)
    return helper.make_tensor_value_info(name, dtype_to_onnx(type_.dtype), shape)


class NodeEmitter:
    """Collects ONNX nodes and initializers; makes fresh names with a fixed prefix.

    `opset` is the default-domain opset of the model being written: an `onnx.*` op whose
    attribute that opset still holds as an attribute (`akidac.ir.opset_forms`) is re-emitted
    with it; None writes the newest form."""

    def __init__(self, prefix: str = "akidac", opset: int | None = None) -> None:
        self.opset = opset
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.prefix = prefix
        self.count = 0
        self.node_names: set[str] = set()

    def fresh(self, base: str) -> str:
        self.count += 1
        return f"{self.prefix}/{base}_{self.count}"

    def constant(self, base: str, array: np.ndarray) -> str:
        name = self.fresh(base)
        self.initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def unique_node_name(self, name: str) -> str:
        """`name`, or `name_N` when an earlier node already took it (ONNX names are unique)."""
        candidate, count = name, 0
        while candidate in self.node_names:
            count += 1
            candidate = f"{name}_{count}"
        self.node_names.add(candidate)
        return candidate

    def node(
        self,
        op_type: str,
        inputs: list[str],
        output: str | None = None,
        name: str | None = None,
        **attrs: Any,
    ) -> str:
        output = output or self.fresh(op_type.lower())
        self.nodes.append(
            helper.make_node(op_type, inputs, [output], name=name or self.fresh(op_type), **attrs)
        )
        return output


def emit_onnx_op(op: Op, emitter: NodeEmitter) -> None:
    """Re-emit an `onnx.*` op exactly as it was imported, in the form of the emitter's opset."""
    inputs, attrs = _opset_form(op, emitter.opset)
    node = helper.make_node(
        op.op_type,
        ["" if v is None else v.name for v in inputs],
        [v.name for v in op.outputs],
        name=emitter.unique_node_name(
            op.origin[0] if op.origin else f"{op.created_by or 'akidac'}/{op.outputs[0].name}"
        ),
        domain=op.domain or None,
    )
    node.attribute.extend(to_attribute(k, v) for k, v in attrs.items())
    emitter.nodes.append(node)


def _opset_form(op: Op, opset: int | None) -> tuple[list[Value | None], dict[str, AttrValue]]:
    """The op's operands and attributes in `opset`'s form: an input that `opset` still holds
    as an attribute (normalized at import, `akidac.frontend.opset_forms`) goes back into the
    attribute, and the attributes are then written in name order, as `helper.make_node` does."""
    moved = moved_attribute(op.op_type, op.domain, opset)
    value = op.inputs[moved.index] if moved and len(op.inputs) > moved.index else None
    if moved is None or value is None:
        return list(op.inputs), op.attrs
    if value.const is None:
        raise InternalError(
            f"{op.op_type} '{op.display_name}' reads its {moved.attribute} from a computed "
            f"value, which opset {opset} can only hold as a constant attribute"
        )
    attrs = {**op.attrs, moved.attribute: [int(v) for v in value.const.reshape(-1)]}
    inputs = [v for i, v in enumerate(op.inputs) if i != moved.index]
    return inputs, dict(sorted(attrs.items()))


def same_pads(size: int, kernel: int, stride: int, upper: bool) -> tuple[int, int]:
    """TF-style 'same' pads (before, after); `upper` puts the odd pixel first."""
    if size % stride == 0:
        total = max(kernel - stride, 0)
    else:
        total = max(kernel - size % stride, 0)
    small = total // 2
    return (total - small, small) if upper else (small, total - small)


def conv_pads(op: Op, in_hw: tuple[int, int]) -> list[int]:
    """ONNX `pads` [top, left, bottom, right] of an akida conv's padding mode."""
    kernel = akida_ints(op, "kernel")
    stride = akida_ints(op, "stride")
    mode = akida_str(op, "pad")
    if mode == "valid":
        return [0, 0, 0, 0]
    upper = mode == "same_upper"
    top, bottom = same_pads(in_hw[0], kernel[0], stride[0], upper)
    left, right = same_pads(in_hw[1], kernel[1], stride[1], upper)
    return [top, left, bottom, right]


def _nchw_input(op: Op, emitter: NodeEmitter) -> str:
    x = op.inputs[0]
    assert x is not None
    if x.type.layout == "NHWC":
        return emitter.node("Transpose", [x.name], perm=[0, 3, 1, 2])
    return x.name


def _finish(op: Op, emitter: NodeEmitter, y: str) -> None:
    """Apply the fused activation; write the op's result (NHWC results transposed back)."""
    act = akida_str(op, "act")
    if act == "relu":
        act_max = akida_optional_float(op, "act_max")
        if act_max is None:
            y = emitter.node("Relu", [y])
        else:
            lo = emitter.constant("zero", np.array(0.0, np.float32))
            hi = emitter.constant("act_max", np.array(act_max, np.float32))
            y = emitter.node("Clip", [y, lo, hi])
    elif act == "lut":
        y = emitter.node("Identity", [y], output=preactivation_name(op))
        alpha = akida_optional_float(op, "lut_alpha")
        y = emit_lut_function(akida_str(op, "lut"), alpha, y, emitter)
        scale = akida_optional_float(op, "lut_scale")
        offset = akida_optional_float(op, "lut_offset")
        if scale is not None:
            y = emitter.node("Mul", [y, emitter.constant("lut_scale", np.array(scale, np.float32))])
        if offset is not None:
            y = emitter.node(
                "Add", [y, emitter.constant("lut_offset", np.array(offset, np.float32))]
            )
    if op.attrs.get("gap"):
        y = emitter.node("GlobalAveragePool", [y])
    out = op.outputs[0]
    if out.type.layout == "NHWC":
        emitter.node("Transpose", [y], output=out.name, perm=[0, 2, 3, 1])
    else:
        emitter.node("Identity", [y], output=out.name)


def preactivation_name(op: Op) -> str:
    """Name of the exported tensor holding a LUT layer's input (calibration observes it)."""
    return f"{op.outputs[0].name}__akidac_preactivation"


def emit_lut_function(function: str, alpha: float | None, x: str, emitter: NodeEmitter) -> str:
    """The float function a LUT activation stands for, as ONNX nodes."""
    if function == "sigmoid":
        return emitter.node("Sigmoid", [x])
    if function == "tanh":
        return emitter.node("Tanh", [x])
    if function == "swish":
        return emitter.node("Mul", [x, emitter.node("Sigmoid", [x])])
    if function == "hardswish":  # x · HardSigmoid(x): HardSwish itself needs opset 14
        gate = emitter.node("HardSigmoid", [x], alpha=1.0 / 6.0, beta=0.5)
        return emitter.node("Mul", [x, gate])
    if function == "leaky_relu":
        return emitter.node("LeakyRelu", [x], alpha=alpha if alpha is not None else 0.01)
    if function == "elu":
        return emitter.node("Elu", [x], alpha=alpha if alpha is not None else 1.0)
    if function == "gelu":
        half = emitter.constant("half", np.array(0.5, np.float32))
        one = emitter.constant("one", np.array(1.0, np.float32))
        inv_sqrt2 = emitter.constant("inv_sqrt2", np.array(1 / np.sqrt(2), np.float32))
        erf = emitter.node("Erf", [emitter.node("Mul", [x, inv_sqrt2])])
        return emitter.node(
            "Mul", [emitter.node("Mul", [x, half]), emitter.node("Add", [erf, one])]
        )
    if function == "identity":
        return x
    raise ValueError(f"no ONNX lowering for LUT function {function!r}")


def _emit_conv(op: Op, emitter: NodeEmitter) -> None:
    x_type = op.operand(0).type
    shape = x_type.dims
    in_hw = (shape[1], shape[2]) if x_type.layout == "NHWC" else (shape[2], shape[3])
    x = _nchw_input(op, emitter)
    weight = op.operand(1)
    inputs = [x, weight.name]
    if len(op.inputs) > 2 and op.inputs[2] is not None:
        inputs.append(op.inputs[2].name)
    kernel = akida_ints(op, "kernel")
    stride = akida_ints(op, "stride")
    attrs: dict[str, Any] = {"kernel_shape": kernel, "strides": stride}
    if op.kind in ("akida.conv2d_transpose", "akida.depthwise_conv2d_transpose"):
        pad = (kernel[0] - 2) // 2
        pads = [pad, pad, kernel[0] - 2 - pad, kernel[1] - 2 - pad]
        attrs["pads"] = pads
        attrs["output_padding"] = [0, 0]
        if op.kind == "akida.depthwise_conv2d_transpose":
            attrs["group"] = weight.type.dims[0]
        y = emitter.node("ConvTranspose", inputs, **attrs)
    else:
        pads = conv_pads(op, in_hw)
        attrs["pads"] = pads
        if op.kind == "akida.depthwise_conv2d":
            attrs["group"] = weight.type.dims[0]
        y = emitter.node("Conv", inputs, **attrs)
    if akida_str(op, "pool") == "max":
        size = akida_ints(op, "pool_size")
        pstride = akida_ints(op, "pool_stride")
        conv_h = (in_hw[0] + pads[0] + pads[2] - kernel[0]) // stride[0] + 1
        conv_w = (in_hw[1] + pads[1] + pads[3] - kernel[1]) // stride[1] + 1
        if akida_str(op, "pad") == "valid":
            pool_pads = [0, 0, 0, 0]
        else:
            top, bottom = same_pads(conv_h, size[0], pstride[0], upper=False)
            left, right = same_pads(conv_w, size[1], pstride[1], upper=False)
            pool_pads = [top, left, bottom, right]
        y = emitter.node("MaxPool", [y], kernel_shape=size, strides=pstride, pads=pool_pads)
    _finish(op, emitter, y)


def _emit_dense(op: Op, emitter: NodeEmitter) -> None:
    x_value = op.inputs[0]
    assert x_value is not None
    x = _nchw_input(op, emitter)
    if (x_value.type.rank or 0) > 2:
        x = emitter.node("Flatten", [x], axis=1)
    y = emitter.node("MatMul", [x, op.operand(1).name])
    if len(op.inputs) > 2 and op.inputs[2] is not None:
        y = emitter.node("Add", [y, op.inputs[2].name])
    _finish(op, emitter, y)


def _emit_merge(op: Op, emitter: NodeEmitter) -> None:
    names = [v.name for v in op.inputs if v is not None]
    out = op.outputs[0]
    if op.kind == "akida.add":
        emitter.node("Add", names, output=out.name)
    else:
        axis = 3 if out.type.layout == "NHWC" else akida_int(op, "axis")
        emitter.node("Concat", names, output=out.name, axis=axis)


_AKIDA_EMITTERS: dict[str, Callable[[Op, NodeEmitter], None]] = {
    "akida.input_conv2d": _emit_conv,
    "akida.conv2d": _emit_conv,
    "akida.depthwise_conv2d": _emit_conv,
    "akida.conv2d_transpose": _emit_conv,
    "akida.depthwise_conv2d_transpose": _emit_conv,
    "akida.dense": _emit_dense,
    "akida.add": _emit_merge,
    "akida.concat": _emit_merge,
}


def emit_op(op: Op, emitter: NodeEmitter) -> None:
    """Emit one op as ONNX nodes (akida ops in float)."""
    if op.dialect == "onnx":
        emit_onnx_op(op, emitter)
    elif op.kind in _AKIDA_EMITTERS:
        _AKIDA_EMITTERS[op.kind](op, emitter)
    else:
        raise ValueError(f"no ONNX lowering for {op.kind}")


def graph_to_model(
    graph: Graph,
    *,
    extra_outputs: list[Value] | None = None,
    ops: list[Op] | None = None,
) -> onnx.ModelProto:
    """Export the (float) graph, or a subset of its ops, as one ONNX model."""
    emitter = NodeEmitter(opset=graph.opset_imports.get(""))
    for op in graph.ops if ops is None else ops:
        emit_op(op, emitter)
    used = {name for node in emitter.nodes for name in node.input}
    initializers = [
        numpy_helper.from_array(v.array, v.name) for v in graph.constants.values() if v.name in used
    ]
    outputs = [value_info(v) for v in graph.outputs]
    names = {v.name for v in graph.outputs}
    for value in extra_outputs or []:
        if value.name not in names:
            outputs.append(value_info(value))
            names.add(value.name)
    onnx_graph = helper.make_graph(
        emitter.nodes,
        graph.name,
        [value_info(v) for v in graph.inputs],
        outputs,
        initializers + emitter.initializers,
    )
    opsets = [helper.make_opsetid(d, v) for d, v in graph.opset_imports.items()]
    model = helper.make_model(onnx_graph, opset_imports=opsets, producer_name="akidac")
    model.ir_version = min(model.ir_version, 10)
    return model
