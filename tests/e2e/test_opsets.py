"""Every opset akidac accepts gives a hybrid that loads and runs in HybridSession at
onnxruntime's default optimization level (issue "Hostile and edge inputs", item 1)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from akidac.api import compile_model
from akidac.metrics import compare_outputs
from akidac.passes import CompileOptions
from akidac.runtime.session import HybridSession


def _two_regions(opset: int) -> onnx.ModelProto:
    """Conv+Relu → Sin (CPU) → Conv+Relu: an int8 DequantizeLinear → Transpose border before
    the CPU node and before the graph output."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array((rng.standard_normal((8, 3, 3, 3)) * 0.2).astype(np.float32), "w"),
        numpy_helper.from_array((rng.standard_normal((8, 8, 3, 3)) * 0.2).astype(np.float32), "v"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], "conv", pads=[1] * 4),
        helper.make_node("Relu", ["c"], ["r"], "relu"),
        helper.make_node("Sin", ["r"], ["s"], "sin"),
        helper.make_node("Conv", ["s", "v"], ["c2"], "conv2", pads=[1] * 4),
        helper.make_node("Relu", ["c2"], ["y"], "relu2"),
    ]
    graph = helper.make_graph(
        nodes,
        "two_regions",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 8, 8])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


@pytest.mark.parametrize("opset", [13, 15, 17, 19, 20, 21])
def test_the_hybrid_of_every_accepted_opset_runs_at_the_default_optimization_level(
    opset: int,
) -> None:
    model = _two_regions(opset)
    result = compile_model(model, options=CompileOptions(num_samples=8, fidelity_samples=0))
    assert result.report["summary"]["regions"] == 2
    session = HybridSession(result.model)  # default options: ORT_ENABLE_ALL
    rng = np.random.default_rng(1)
    feeds = [{"x": rng.standard_normal((1, 3, 8, 8)).astype(np.float32)} for _ in range(4)]
    reference = ort.InferenceSession(model.SerializeToString())
    want = [reference.run(None, feed)[0] for feed in feeds]
    got = [session.run(None, feed)[0] for feed in feeds]
    figures = compare_outputs(want, got)
    assert figures["sqnr_db"] >= figures["constant_sqnr_db"] + 10.0
    options = ort.SessionOptions()  # the caller's options: honoured, not changed
    options.intra_op_num_threads = 1
    HybridSession(result.model, sess_options=options).run(None, feeds[0])
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
