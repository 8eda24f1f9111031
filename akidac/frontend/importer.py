"""ONNX `ModelProto` → IR `Graph`: one `onnx.<OpType>` op per node, verbatim.

Attributes, domains and opset imports are kept so a CPU fragment re-emits exactly the original
node (an attribute a later opset made an input is normalized to that input, and written back
by the exporter: `akidac.frontend.opset_forms`); every op remembers its ONNX node name
(`origin`). Nodes without a name get a stable one
(`OpType_index`) so reports can always name them. Subgraph attributes stay opaque.
"""

from __future__ import annotations

import os

import numpy as np
import onnx
from onnx import AttributeProto, numpy_helper

from akidac.errors import ModelError, UnsupportedModelError
from akidac.frontend.loader import load_model
from akidac.frontend.opset_forms import normalize_opset_forms
from akidac.frontend.shapes import clear_dynamic_output_dims, fix_input_shapes, infer_shapes
from akidac.frontend.validate import check_inferred, check_memory
from akidac.ir.attributes import AttrValue, DenseAttr, GraphAttr, TypedList
from akidac.ir.diagnostics import DiagnosticSink
from akidac.ir.graph import Graph, Value
from akidac.ir.types import TensorType, dtype_from_onnx

_LIST_KINDS = {
    AttributeProto.INTS: "ints",
    AttributeProto.FLOATS: "floats",
    AttributeProto.STRINGS: "strings",
}


def _tensor_type(type_proto: onnx.TypeProto) -> TensorType:
    if not type_proto.HasField("tensor_type"):
        return TensorType("unknown", None)
    tensor_type = type_proto.tensor_type
    dtype = dtype_from_onnx(tensor_type.elem_type)
    if not tensor_type.HasField("shape"):
        return TensorType(dtype, None)
    dims = tuple(d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim)
    return TensorType(dtype, dims)


def convert_attribute(attr: AttributeProto) -> AttrValue:
    """One ONNX attribute as an IR attribute value."""
    kind = attr.type
    if kind == AttributeProto.INT:
        return int(attr.i)
    if kind == AttributeProto.FLOAT:
        return float(attr.f)
    if kind == AttributeProto.STRING:
        return attr.s.decode("utf-8", errors="replace")
    if kind == AttributeProto.TENSOR:
        return DenseAttr(numpy_helper.to_array(attr.t))
    if kind == AttributeProto.GRAPH:
        return GraphAttr(attr.g.SerializeToString(deterministic=True))
    if kind in _LIST_KINDS:
        items: list[AttrValue]
        if kind == AttributeProto.INTS:
            items = [int(v) for v in attr.ints]
        elif kind == AttributeProto.FLOATS:
            items = [float(v) for v in attr.floats]
        else:
            items = [s.decode("utf-8", errors="replace") for s in attr.strings]
        return items if items else TypedList(_LIST_KINDS[kind])
    if kind == AttributeProto.GRAPHS:
        return [GraphAttr(g.SerializeToString(deterministic=True)) for g in attr.graphs]
    if kind == AttributeProto.TENSORS:
        return [DenseAttr(numpy_helper.to_array(t)) for t in attr.tensors]
    raise UnsupportedModelError(
        f"attribute '{attr.name}' has ONNX type {AttributeProto.AttributeType.Name(kind)}, "
        "which akidac cannot carry",
        code="AK-ATTRIBUTE",
    )


def proto_to_graph(proto: onnx.ModelProto) -> Graph:
    """Convert a shape-inferred, checked `ModelProto` into an IR graph."""
    onnx_graph = proto.graph
    graph = Graph(onnx_graph.name or "main")
    graph.opset_imports = {imp.domain: imp.version for imp in proto.opset_import}
    graph.metadata = {p.key: p.value for p in proto.metadata_props}
    types: dict[str, TensorType] = {}
    for value_info in [*onnx_graph.value_info, *onnx_graph.output]:
        types[value_info.name] = _tensor_type(value_info.type)
    scope: dict[str, Value] = {}
    initializer_names = {t.name for t in onnx_graph.initializer}
    for value_info in onnx_graph.input:
        if value_info.name in initializer_names:
            continue
        scope[value_info.name] = graph.add_input(value_info.name, _tensor_type(value_info.type))
    for tensor in onnx_graph.initializer:
        scope[tensor.name] = graph.add_constant(tensor.name, numpy_helper.to_array(tensor))
    for index, node in enumerate(onnx_graph.node):
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx") and len(node.output) == 1:
            array = _constant_node_value(node)
            if array is not None:
                scope[node.output[0]] = graph.add_constant(node.output[0], array)
                continue
        name = node.name or f"{node.op_type}_{index}"
        inputs: list[Value | None] = []
        for input_name in node.input:
            if not input_name:
                inputs.append(None)
            elif input_name in scope:
                inputs.append(scope[input_name])
            else:
                raise ModelError(
                    f"node '{name}' reads '{input_name}', which no node defines",
                    code="AK-MODEL-INVALID",
                )
        attrs = {attr.name: convert_attribute(attr) for attr in node.attribute}
        result_types = [types.get(out, TensorType("unknown", None)) for out in node.output]
        op = graph.make_op(
            f"onnx.{node.op_type}",
            inputs,
            result_types,
            result_names=[out or graph.fresh_name(f"{name}_unused") for out in node.output],
            attrs=attrs,
            origin=(name,),
            domain="" if node.domain == "ai.onnx" else node.domain,
        )
        for value in op.outputs:
            scope[value.name] = value
    for value_info in onnx_graph.output:
        if value_info.name not in scope:
            raise ModelError(
                f"graph output '{value_info.name}' is not produced by any node",
                code="AK-MODEL-INVALID",
            )
        graph.outputs.append(scope[value_info.name])
    normalize_opset_forms(graph)
    return graph


def _constant_node_value(node: onnx.NodeProto) -> np.ndarray | None:
    """The value of a Constant node, or None for the forms we keep as ops."""
    for attr in node.attribute:
        if attr.name == "value" and attr.type == AttributeProto.TENSOR:
            return numpy_helper.to_array(attr.t)
        if attr.name == "value_float":
            return np.array(attr.f, dtype=np.float32)
        if attr.name == "value_floats":
            return np.array(list(attr.floats), dtype=np.float32)
        if attr.name == "value_int":
            return np.array(attr.i, dtype=np.int64)
        if attr.name == "value_ints":
            return np.array(list(attr.ints), dtype=np.int64)
    return None


def import_model(
    source: str | os.PathLike[str] | onnx.ModelProto | bytes,
    input_shapes: dict[str, tuple[int, ...]] | None = None,
    sink: DiagnosticSink | None = None,
    where: str | None = None,
) -> Graph:
    """Load, validate, make static, infer shapes and import a model into the IR. `where`
    names the model in messages (default: its path, or '<model>')."""
    if where is None:
        where = str(source) if isinstance(source, str | os.PathLike) else "<model>"
    return import_validated(load_model(source), input_shapes, sink, where)


def import_validated(
    proto: onnx.ModelProto,
    input_shapes: dict[str, tuple[int, ...]] | None = None,
    sink: DiagnosticSink | None = None,
    where: str = "<model>",
) -> Graph:
    """Make static, infer shapes and import a model that `load_model` already validated (so
    callers that keep the validated proto do not run the ONNX checker twice)."""
    sink = sink if sink is not None else DiagnosticSink()
    proto_copy = onnx.ModelProto()
    proto_copy.CopyFrom(proto)
    fix_input_shapes(proto_copy, dict(input_shapes or {}), sink)
    check_memory(proto_copy, where)  # the static inputs, before inference derives anything
    clear_dynamic_output_dims(proto_copy)
    del proto_copy.graph.value_info[:]
    inferred = infer_shapes(proto_copy, where)
    check_inferred(inferred, where)
    check_memory(inferred, where)
    return proto_to_graph(inferred)
