"""The `AkidaOp` node of a hybrid model: its domain, attributes and how to read them."""

from __future__ import annotations

import json

import numpy as np
import onnx
from onnx import numpy_helper

AKIDA_DOMAIN = "ai.akidac"
AKIDA_OP_TYPE = "AkidaOp"
AKIDA_OPSET = 1
#: node attribute holding the program binary (a uint8 TENSOR).
PROGRAM_ATTR = "program"
#: node attribute holding the JSON list of the ONNX nodes the AkidaOp replaced.
REPLACED_ATTR = "replaced_nodes"


def is_akida_node(node: onnx.NodeProto) -> bool:
    return node.domain == AKIDA_DOMAIN and node.op_type == AKIDA_OP_TYPE


def make_akida_node(
    name: str, x: str, y: str, program: bytes, replaced: list[str]
) -> onnx.NodeProto:
    """An AkidaOp node with its program embedded as a uint8 tensor attribute."""
    node = onnx.helper.make_node(AKIDA_OP_TYPE, [x], [y], name=name, domain=AKIDA_DOMAIN)
    blob = numpy_helper.from_array(np.frombuffer(program, dtype=np.uint8), f"{name}_program")
    node.attribute.append(onnx.helper.make_attribute(PROGRAM_ATTR, blob))
    node.attribute.append(onnx.helper.make_attribute(REPLACED_ATTR, json.dumps(replaced)))
    return node


def program_bytes(node: onnx.NodeProto) -> bytes | None:
    """The embedded program of an AkidaOp node, or None when it has none."""
    for attr in node.attribute:
        if attr.name == PROGRAM_ATTR and attr.type == onnx.AttributeProto.TENSOR:
            return numpy_helper.to_array(attr.t).astype(np.uint8).tobytes()
    return None
