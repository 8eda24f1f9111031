"""The one place akidac calls onnx-ir's passes, so an upstream change fails here, loudly.

onnx-ir is pinned to a compatible range in pyproject.toml. Its passes work on `onnx_ir.Model`;
this wrapper converts from and to `onnx.ModelProto` and turns its exceptions into ours.
"""

from __future__ import annotations

import logging

import onnx
import onnx_ir
import onnx_ir.passes.common as onnx_ir_common

from akidac.errors import ModelError


def topologically_sorted(proto: onnx.ModelProto, where: str) -> onnx.ModelProto:
    """The model with its nodes sorted topologically; `ModelError` if the graph has a cycle."""
    ir_logger = logging.getLogger("onnx_ir")
    level = ir_logger.level
    ir_logger.setLevel(logging.CRITICAL)  # diagnostics go through our errors, not its log
    try:
        model = onnx_ir.serde.deserialize_model(proto)
        onnx_ir_common.TopologicalSortPass()(model)
        return onnx_ir.serde.serialize_model(model)
    except ValueError:
        raise ModelError(
            f"'{where}': the model graph has a cycle; an ONNX graph must be acyclic",
            code="AK-MODEL-CYCLE",
        ) from None
    finally:
        ir_logger.setLevel(level)
