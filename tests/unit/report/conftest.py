"""Models and reports shared by the report tests: `conv_net` analysed and compiled once."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from akidac.api import CompileResult, analyze, compile_model
from akidac.models import conv_net
from akidac.passes import CompileOptions


def small_model(
    nodes: list[onnx.NodeProto],
    inputs: dict[str, list[int]],
    outputs: dict[str, list[int]],
    weights: dict[str, np.ndarray],
    opset: int = 17,
) -> onnx.ModelProto:
    """A checked float model from helper-made nodes, named inputs/outputs and weights."""
    graph = helper.make_graph(
        nodes,
        "small",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs.items()],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs.items()],
        [numpy_helper.from_array(a.astype(np.float32), n) for n, a in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model


def mixed_model() -> onnx.ModelProto:
    """Identity (removed), a Conv Akida rejects twice (stride 3, dilation 2), a Relu, then
    Flatten + MatMul (a dense layer on Akida) and a Softmax on the CPU."""
    rng = np.random.default_rng(0)
    return small_model(
        [
            helper.make_node("Identity", ["x"], ["xi"], name="ident"),
            helper.make_node(
                "Conv", ["xi", "w"], ["c"], name="odd_conv", strides=[3, 3], dilations=[2, 2]
            ),
            helper.make_node("Relu", ["c"], ["r"], name="relu"),
            helper.make_node("Flatten", ["r"], ["f"], name="flat"),
            helper.make_node("MatMul", ["f", "wm"], ["m"], name="mm"),
            helper.make_node("Softmax", ["m"], ["y"], name="softmax", axis=1),
        ],
        {"x": [1, 3, 14, 14]},
        {"y": [1, 5]},
        {"w": rng.standard_normal((8, 3, 3, 3)), "wm": rng.standard_normal((8 * 4 * 4, 5))},
    )


@pytest.fixture(scope="session")
def conv_net_model() -> onnx.ModelProto:
    return conv_net()


@pytest.fixture(scope="session")
def conv_net_analysis(conv_net_model: onnx.ModelProto) -> dict[str, Any]:
    return analyze(conv_net_model)


@pytest.fixture(scope="session")
def conv_net_compiled(conv_net_model: onnx.ModelProto) -> CompileResult:
    return compile_model(conv_net_model, options=CompileOptions(num_samples=4))
