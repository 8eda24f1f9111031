"""The `AkidaOp` node of a hybrid model: its domain, attributes and how to read them.

The contract between the compiler, which writes hybrid models (`akidac.backends.hybrid`), and
the runtime, which reads them (`akidac.runtime.session`); it lives in the Akida backend, which
both may import.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
from onnx import numpy_helper

from akidac.errors import ProgramError

AKIDA_DOMAIN = "ai.akidac"
AKIDA_OP_TYPE = "AkidaOp"
AKIDA_OPSET = 1
#: node attribute holding the program binary (a uint8 TENSOR).
PROGRAM_ATTR = "program"
#: node attribute holding the JSON list of the ONNX nodes the AkidaOp replaced.
REPLACED_ATTR = "replaced_nodes"
#: metadata key of a hybrid model whose inputs accept any batch: a JSON object, input name →
#: the batch size the model was compiled for (the frontend uses 1 for a dynamic batch).
DYNAMIC_BATCH_KEY = "akidac.dynamic_batch"


#: the doc string of every AkidaOp node: what it is and what runs it.
AKIDA_OP_DOC = (
    "An Akida program compiled by akidac (attribute 'program': the program binary; "
    "'replaced_nodes': the ONNX nodes it stands for). Plain onnxruntime has no kernel for it: "
    "run the model with `akidac run` or `akidac.HybridSession`, which execute it on akidac's "
    "bit-exact Akida hardware model."
)


def is_akida_node(node: onnx.NodeProto) -> bool:
    return node.domain == AKIDA_DOMAIN and node.op_type == AKIDA_OP_TYPE


def make_akida_node(
    name: str, x: str, y: str, program: bytes, replaced: list[str]
) -> onnx.NodeProto:
    """An AkidaOp node with its program embedded as a uint8 tensor attribute."""
    node = onnx.helper.make_node(
        AKIDA_OP_TYPE, [x], [y], name=name, domain=AKIDA_DOMAIN, doc_string=AKIDA_OP_DOC
    )
    blob = numpy_helper.from_array(np.frombuffer(program, dtype=np.uint8), f"{name}_program")
    node.attribute.append(onnx.helper.make_attribute(PROGRAM_ATTR, blob))
    node.attribute.append(onnx.helper.make_attribute(REPLACED_ATTR, json.dumps(replaced)))
    return node


def program_bytes(node: onnx.NodeProto) -> bytes | None:
    """The embedded program of an AkidaOp node, or None when it has none.

    The attribute must be a uint8 tensor held in the model itself: any other type is a corrupt
    model (`ProgramError`, exit 6), and a tensor whose data is still external (a model given as
    bytes, whose files were never resolved) is refused without reading anything — resolving it
    would read a file named by the model, relative to the working directory."""
    for attr in node.attribute:
        if attr.name != PROGRAM_ATTR:
            continue
        if attr.type != onnx.AttributeProto.TENSOR:
            kind = onnx.AttributeProto.AttributeType.Name(attr.type)
            raise ProgramError(
                f"AkidaOp '{node.name}': its program attribute is a {kind}, not a uint8 tensor",
                code="AK-PROGRAM-MODEL",
                node=node.name,
            )
        tensor = attr.t
        if tensor.data_location == onnx.TensorProto.EXTERNAL or tensor.external_data:
            raise ProgramError(
                f"AkidaOp '{node.name}': its program is stored as external data, which akidac "
                "never writes and does not follow for a model given in memory",
                code="AK-PROGRAM-MODEL",
                node=node.name,
            )
        if tensor.data_type != onnx.TensorProto.UINT8:
            kind = onnx.TensorProto.DataType.Name(tensor.data_type)
            raise ProgramError(
                f"AkidaOp '{node.name}': its program is a {kind} tensor, not uint8",
                code="AK-PROGRAM-MODEL",
                node=node.name,
            )
        return numpy_helper.to_array(tensor).astype(np.uint8).tobytes()
    return None
