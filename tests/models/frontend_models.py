"""Models as exporters write them, shared by the frontend and calibration tests."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def multi_input_model() -> onnx.ModelProto:
    """An image branch (Conv → Relu → GAP) plus a recurrent state [2, 1, 128] (Add/Mul), an
    int64 scalar sample rate (Cast) and an int64 index into a table (Gather), as in Silero VAD."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype(np.float32), "w")
    table = numpy_helper.from_array(rng.standard_normal((4, 8)).astype(np.float32), "table")
    scale = numpy_helper.from_array(np.array(1e-4, np.float32), "scale")
    nodes = [
        helper.make_node("Conv", ["image", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("ReduceMean", ["r"], ["m"], name="mean", axes=[2, 3], keepdims=0),
        helper.make_node("Gather", ["table", "index"], ["e"], name="embed", axis=0),
        helper.make_node("Add", ["m", "e"], ["me"], name="add_embed"),
        helper.make_node("Cast", ["sr"], ["srf"], name="cast_sr", to=TensorProto.FLOAT),
        helper.make_node("Mul", ["srf", "scale"], ["srs"], name="scale_sr"),
        helper.make_node("Mul", ["state", "srs"], ["s1"], name="mul_state"),
        helper.make_node("Add", ["s1", "state"], ["new_state"], name="add_state"),
        helper.make_node("Cast", ["flag"], ["flagf"], name="cast_flag", to=TensorProto.FLOAT),
        helper.make_node("Mul", ["me", "flagf"], ["out"], name="gate"),
    ]
    graph = helper.make_graph(
        nodes,
        "multi",
        [
            helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 16, 16]),
            helper.make_tensor_value_info("state", TensorProto.FLOAT, [2, 1, 128]),
            helper.make_tensor_value_info("sr", TensorProto.INT64, []),
            helper.make_tensor_value_info("index", TensorProto.INT64, [1]),
            helper.make_tensor_value_info("flag", TensorProto.BOOL, [1]),
        ],
        [
            helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 8]),
            helper.make_tensor_value_info("new_state", TensorProto.FLOAT, [2, 1, 128]),
        ],
        [w, table, scale],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
