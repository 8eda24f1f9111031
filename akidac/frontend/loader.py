"""Reading and validating an ONNX model: the gate every bad input is stopped at.

Each failure becomes one `ModelError` (exit 3) or `UnsupportedModelError` (exit 4) sentence that
names the file and says what to do: missing file, not a protobuf, truncated file, checker
failure, cyclic graph, opset outside 11–21, NaN weights.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import numpy_helper

from akidac.errors import ModelError, UnsupportedModelError
from akidac.frontend.onnx_ir_bridge import topologically_sorted

MIN_OPSET = 11
MAX_OPSET = 21


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def read_model(source: str | os.PathLike[str] | onnx.ModelProto | bytes) -> onnx.ModelProto:
    """Parse a path, bytes or `ModelProto` into a `ModelProto` with external data loaded."""
    if isinstance(source, onnx.ModelProto):
        return source
    if isinstance(source, bytes):
        return _parse(source, "<bytes>")
    path = Path(source)
    if not path.exists():
        raise ModelError(f"model file '{path}' does not exist", code="AK-MODEL-MISSING")
    if path.is_dir():
        raise ModelError(
            f"'{path}' is a directory, not an ONNX model file", code="AK-MODEL-NOT-ONNX"
        )
    data = path.read_bytes()
    proto = _parse(data, str(path))
    try:
        onnx.external_data_helper.load_external_data_for_model(proto, str(path.parent))
    except (OSError, ValueError, onnx.checker.ValidationError) as error:
        raise ModelError(
            f"'{path}': cannot load external weight data: {_first_line(error)}",
            code="AK-MODEL-EXTERNAL-DATA",
        ) from None
    return proto


def _parse(data: bytes, where: str) -> onnx.ModelProto:
    if not data:
        raise ModelError(f"'{where}' is empty, not an ONNX model", code="AK-MODEL-NOT-ONNX")
    proto = onnx.ModelProto()
    try:
        proto.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as error:
        raise ModelError(
            f"'{where}' is not a valid ONNX protobuf (truncated or another format): "
            f"{_first_line(error)}",
            code="AK-MODEL-NOT-ONNX",
        ) from None
    if not proto.HasField("graph") or (not proto.graph.node and not proto.graph.output):
        raise ModelError(
            f"'{where}' holds no ONNX graph (is it an ONNX model?)", code="AK-MODEL-NOT-ONNX"
        )
    return proto


def check_opset(proto: onnx.ModelProto, where: str) -> int:
    """The default-domain opset, or `UnsupportedModelError` if it is outside 11–21."""
    versions = {imp.domain: imp.version for imp in proto.opset_import}
    version = versions.get("", versions.get("ai.onnx"))
    if version is None:
        raise ModelError(f"'{where}' imports no default ONNX opset", code="AK-MODEL-OPSET")
    if not MIN_OPSET <= version <= MAX_OPSET:
        raise UnsupportedModelError(
            f"'{where}' uses ONNX opset {version}; akidac supports opsets {MIN_OPSET} to "
            f"{MAX_OPSET} (convert it with onnx.version_converter)",
            code="AK-OPSET",
        )
    return version


def check_graph(proto: onnx.ModelProto, where: str) -> onnx.ModelProto:
    """Run the ONNX checker; sort an unsorted but acyclic graph; reject cyclic ones."""
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as error:
        message = _first_line(error)
        if "topologically sorted" not in message:
            raise ModelError(
                f"'{where}' is not a valid ONNX model: {message}", code="AK-MODEL-INVALID"
            ) from None
        check_inputs_defined(proto, where)
        proto = topologically_sorted(proto, where)
        try:
            onnx.checker.check_model(proto)
        except onnx.checker.ValidationError as again:
            raise ModelError(
                f"'{where}' is not a valid ONNX model: {_first_line(again)}",
                code="AK-MODEL-INVALID",
            ) from None
    return proto


def check_inputs_defined(proto: onnx.ModelProto, where: str) -> None:
    """Every node input must be a graph input, an initializer or some node's output."""
    graph = proto.graph
    defined = {v.name for v in graph.input} | {t.name for t in graph.initializer}
    defined |= {name for node in graph.node for name in node.output}
    for index, node in enumerate(graph.node):
        for name in node.input:
            if name and name not in defined:
                label = node.name or f"{node.op_type}_{index}"
                raise ModelError(
                    f"'{where}': node '{label}' reads '{name}', which no node, "
                    "graph input or initializer defines",
                    code="AK-MODEL-INVALID",
                )


#: operator domains onnxruntime runs: a node of any other domain cannot run on the CPU.
RUNNABLE_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml", "com.microsoft"})


def check_interface(proto: onnx.ModelProto, where: str) -> None:
    """Graph outputs exist; inputs and outputs are tensors; every node's domain is one that
    onnxruntime can run (the CPU fallback)."""
    graph = proto.graph
    if not graph.output:
        raise ModelError(f"'{where}' has no graph outputs", code="AK-MODEL-INVALID")
    for value in [*graph.input, *graph.output]:
        if not value.type.HasField("tensor_type"):
            kind = value.type.WhichOneof("value") or "untyped"
            raise UnsupportedModelError(
                f"'{where}': input/output '{value.name}' is a {kind.replace('_type', '')}, not "
                "a tensor; akidac compiles tensor models only",
                code="AK-UNSUPPORTED",
            )
    for index, node in enumerate(graph.node):
        if node.domain not in RUNNABLE_DOMAINS:
            label = node.name or f"{node.op_type}_{index}"
            raise UnsupportedModelError(
                f"'{where}': node '{label}' is {node.domain}:{node.op_type}, an operator "
                "onnxruntime cannot run (custom domain); akidac needs every node that stays on "
                "the CPU to run in onnxruntime",
                code="AK-UNSUPPORTED",
                node=label,
            )


def check_weights(proto: onnx.ModelProto, where: str) -> None:
    """Reject float initializers holding NaN: no quantization or comparison is possible."""
    constants = [
        attr.t
        for node in proto.graph.node
        if node.op_type == "Constant"
        for attr in node.attribute
        if attr.name == "value"
    ]
    for tensor in [*proto.graph.initializer, *constants]:
        if tensor.data_type not in (
            onnx.TensorProto.FLOAT,
            onnx.TensorProto.DOUBLE,
            onnx.TensorProto.FLOAT16,
        ):
            continue
        array = numpy_helper.to_array(tensor)
        if np.isnan(array).any():
            count = int(np.isnan(array).sum())
            raise ModelError(
                f"'{where}': initializer '{tensor.name}' holds {count} NaN value(s); "
                "fix the model's weights",
                code="AK-MODEL-NAN",
            )


def _nonpositive_dims(proto: onnx.ModelProto) -> list[onnx.TensorShapeProto.Dimension]:
    dims: list[onnx.TensorShapeProto.Dimension] = []
    initializers = {t.name for t in proto.graph.initializer}  # an empty weight may be [0]
    for value_info in [*proto.graph.input, *proto.graph.output]:
        if value_info.name in initializers:
            continue
        tensor_type = value_info.type.tensor_type
        if value_info.type.HasField("tensor_type") and tensor_type.HasField("shape"):
            dims.extend(
                d for d in tensor_type.shape.dim if d.HasField("dim_value") and d.dim_value <= 0
            )
    return dims


def mark_dynamic_dims(proto: onnx.ModelProto, copy: bool) -> onnx.ModelProto:
    """Graph input/output dims written as -1 or 0 (how Paddle and some other exporters write
    "dynamic") become unknown dims, as onnxruntime treats -1 (it would take 0 literally, as an
    empty batch). A copy when `copy` and anything changes; else `proto` itself."""
    if not _nonpositive_dims(proto):
        return proto
    if copy:
        original, proto = proto, onnx.ModelProto()
        proto.CopyFrom(original)
    for dim in _nonpositive_dims(proto):
        dim.Clear()
    return proto


def load_model(source: str | os.PathLike[str] | onnx.ModelProto | bytes) -> onnx.ModelProto:
    """Read and validate a model; every failure is a one-sentence `AkidacError`. Input and
    output dims of -1 or 0 come back as dynamic (unknown) dims."""
    where = "<ModelProto>" if isinstance(source, onnx.ModelProto) else str(source)
    if isinstance(source, bytes):
        where = "<bytes>"
    proto = read_model(source)
    check_opset(proto, where)
    proto = check_graph(proto, where)
    check_interface(proto, where)
    check_weights(proto, where)
    return mark_dynamic_dims(proto, copy=proto is source)
