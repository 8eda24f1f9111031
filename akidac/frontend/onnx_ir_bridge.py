"""The one place akidac calls onnx-ir's passes, so an upstream change fails here, loudly.

onnx-ir is pinned to a compatible range in pyproject.toml. Its passes work on `onnx_ir.Model`;
this wrapper converts from and to `onnx.ModelProto` and turns its exceptions into ours.
"""

from __future__ import annotations

import onnx
import onnx_ir
import onnx_ir.passes.common as onnx_ir_common

from akidac.errors import ModelError


def topologically_sorted(proto: onnx.ModelProto) -> onnx.ModelProto:
    """The model with its nodes sorted topologically; `ModelError` if the graph has a cycle."""
    model = onnx_ir.serde.deserialize_model(proto)
    try:
        onnx_ir_common.TopologicalSortPass()(model)
    except ValueError as error:
        raise ModelError(
            f"the model graph has a cycle ({error}); an ONNX graph must be acyclic",
            code="AK-MODEL-CYCLE",
        ) from None
    return onnx_ir.serde.serialize_model(model)
