"""Static shapes: fixing dynamic input dimensions and running ONNX shape inference.

Akida programs have fixed shapes, so every graph input must be static before import. A
dynamic leading batch dimension alone defaults to 1 (with a note); any other dynamic dimension
needs `--input-shape NAME=1x3x224x224` and is an `UnsupportedModelError` (exit 4) without it.
"""

from __future__ import annotations

import onnx

from akidac.errors import ModelError, UnsupportedModelError, UsageError
from akidac.ir.diagnostics import DiagnosticSink


def parse_input_shapes(specs: list[str] | None) -> dict[str, tuple[int, ...]]:
    """Parse `NAME=1x3x224x224` (or a bare `1x3x224x224` for a single input, keyed '')."""
    shapes: dict[str, tuple[int, ...]] = {}
    for spec in specs or []:
        name, _, dims_text = spec.rpartition("=")
        try:
            dims = tuple(int(d) for d in dims_text.replace(",", "x").split("x"))
        except ValueError:
            raise UsageError(
                f"--input-shape '{spec}' is not NAME=D1xD2x...; e.g. input=1x3x224x224"
            ) from None
        if not dims or any(d <= 0 for d in dims):
            raise UsageError(f"--input-shape '{spec}' has a non-positive dimension")
        if name in shapes:
            raise UsageError(f"--input-shape gives input '{name}' twice")
        shapes[name] = dims
    return shapes


def _graph_inputs(proto: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    initializers = {t.name for t in proto.graph.initializer}
    return [vi for vi in proto.graph.input if vi.name not in initializers]


def fix_input_shapes(
    proto: onnx.ModelProto, shapes: dict[str, tuple[int, ...]], sink: DiagnosticSink
) -> None:
    """Write static dims into the model's graph inputs, in place."""
    inputs = _graph_inputs(proto)
    by_name = {vi.name: vi for vi in inputs}
    if "" in shapes:
        if len(inputs) != 1:
            names = ", ".join(by_name)
            raise UsageError(
                f"the model has {len(inputs)} inputs ({names}); "
                "name the input in --input-shape NAME=..."
            )
        shapes = {inputs[0].name: shapes[""], **{k: v for k, v in shapes.items() if k}}
    for name in shapes:
        if name not in by_name:
            raise UsageError(
                f"--input-shape names '{name}', which is not a model input "
                f"(inputs: {', '.join(by_name)})"
            )
    for value_info in inputs:
        tensor_type = value_info.type.tensor_type
        if not value_info.type.HasField("tensor_type"):
            continue
        dims = tensor_type.shape.dim
        if value_info.name in shapes:
            wanted = shapes[value_info.name]
            if tensor_type.HasField("shape") and len(dims) != len(wanted):
                raise UsageError(
                    f"--input-shape gives {len(wanted)} dims for '{value_info.name}'"
                    f", which has rank {len(dims)}"
                )
            for index, dim in enumerate(dims):
                if dim.HasField("dim_value") and dim.dim_value != wanted[index]:
                    raise UsageError(
                        f"--input-shape gives {wanted[index]} for dim {index} of "
                        f"'{value_info.name}', which the model fixes at {dim.dim_value}"
                    )
            tensor_type.ClearField("shape")
            for size in wanted:
                tensor_type.shape.dim.add().dim_value = size
            continue
        if not tensor_type.HasField("shape"):
            raise UnsupportedModelError(
                f"input '{value_info.name}' has no shape; give --input-shape "
                f"{value_info.name}=D1xD2x...",
                code="AK-DYNAMIC-SHAPE",
            )
        dynamic = [i for i, d in enumerate(dims) if not d.HasField("dim_value") or d.dim_value <= 0]
        if dynamic == [0] and len(dims) > 1:
            dims[0].Clear()
            dims[0].dim_value = 1
            sink.note(
                "AK-DYNAMIC-BATCH",
                f"input '{value_info.name}' has a dynamic batch dimension; using 1",
                node=value_info.name,
            )
        elif dynamic:
            labels = ", ".join(
                f"{i} ('{dims[i].dim_param}')" if dims[i].dim_param else str(i) for i in dynamic
            )
            example = "x".join(str(d.dim_value) if d.dim_value > 0 else "N" for d in dims)
            raise UnsupportedModelError(
                f"input '{value_info.name}' has dynamic dimension(s) {labels}; give "
                f"--input-shape {value_info.name}={example} with N replaced by sizes",
                code="AK-DYNAMIC-SHAPE",
            )


def infer_shapes(proto: onnx.ModelProto, where: str) -> onnx.ModelProto:
    """ONNX shape inference with data propagation (so Reshape targets resolve)."""
    try:
        return onnx.shape_inference.infer_shapes(
            proto, check_type=True, strict_mode=True, data_prop=True
        )
    except (onnx.shape_inference.InferenceError, onnx.checker.ValidationError) as error:
        first = str(error).strip().splitlines()[0]
        raise ModelError(
            f"'{where}': shape inference failed: {first}", code="AK-MODEL-SHAPES"
        ) from None
