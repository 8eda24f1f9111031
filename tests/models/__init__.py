"""Test models built in code (no downloads), shared by the test suite."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from akidac.models import chain_net, conv_net

__all__ = ["chain_net", "conv_net", "odd_attributes_model", "tiny_conv_model"]


def tiny_conv_model(opset: int = 17, batch: int | str = 1) -> onnx.ModelProto:
    """Conv(3×3) → Relu → Softmax on a 1×3×8×8 input."""
    rng = np.random.default_rng(1)
    w = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "b")
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("Softmax", ["r"], ["y"], name="softmax", axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 4, 8, 8])],
        [w, b],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 9
    return model


def odd_attributes_model() -> onnx.ModelProto:
    """Every attribute kind the IR must carry: strings, float lists, empty lists, tensors,
    a subgraph (If), a custom-domain node, and an omitted optional input."""
    then_graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["t"], name="then_id")],
        "then",
        [],
        [helper.make_tensor_value_info("t", TensorProto.FLOAT, [1, 2])],
    )
    else_graph = helper.make_graph(
        [helper.make_node("Neg", ["x"], ["e"], name="else_neg")],
        "else",
        [],
        [helper.make_tensor_value_info("e", TensorProto.FLOAT, [1, 2])],
    )
    nodes = [
        helper.make_node(
            "If", ["cond"], ["branch"], name="if", then_branch=then_graph, else_branch=else_graph
        ),
        helper.make_node("LeakyRelu", ["branch"], ["lr"], name="leaky", alpha=0.125),
        helper.make_node(
            "Resize",
            ["lr", "", "scales"],
            ["up"],
            name="resize",
            mode="nearest",
            coordinate_transformation_mode="asymmetric",
        ),
        helper.make_node(
            "Custom",
            ["up"],
            ["y"],
            name="custom",
            domain="com.example",
            note='héllo "quoted"',
            weights=[0.5, -1.25],
            table=numpy_helper.from_array(np.arange(20, dtype=np.int64), "t"),
        ),
    ]
    empty = helper.make_attribute("empty", [], attr_type=onnx.AttributeProto.INTS)
    nodes[3].attribute.append(empty)
    scales = numpy_helper.from_array(np.array([1.0, 2.0], np.float32), "scales")
    graph = helper.make_graph(
        nodes,
        "odd",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2]),
            helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [scales],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)]
    )
    model.ir_version = 9
    return model
