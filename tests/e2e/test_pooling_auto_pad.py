"""Pooling with `auto_pad`: the pads it implies are the pads akidac uses. SAME_LOWER pads the
head, not the tail, so a MaxPool after a Conv+ReLU must not fuse as Akida's 'same' pooling;
a SAME AveragePool whose window is the whole map pads it and keeps its size, so it is no
GlobalAveragePool. Both were found by the graph fuzz (tests/fuzz)."""

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


def _conv_then(pool: onnx.NodeProto, out_shape: list[int]) -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    weight = (rng.standard_normal((4, 3, 3, 3)) * 0.3).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], "conv", pads=[1] * 4),
        helper.make_node("Relu", ["c"], ["r"], "relu"),
        pool,
    ]
    graph = helper.make_graph(
        nodes,
        "pool_auto_pad",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
        [numpy_helper.from_array(weight, "w")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _figures(model: onnx.ModelProto) -> dict:
    rng = np.random.default_rng(1)
    feeds = [{"x": rng.standard_normal((1, 3, 6, 6)).astype(np.float32)} for _ in range(8)]
    samples = {"x": np.concatenate([f["x"] for f in feeds])}
    options = CompileOptions(samples=samples, num_samples=8, fidelity_samples=0)
    hybrid = HybridSession(compile_model(model, options=options).model)
    reference = ort.InferenceSession(model.SerializeToString())
    want = [reference.run(None, f)[0] for f in feeds]
    got = [hybrid.run(None, f)[0] for f in feeds]
    assert [g.shape for g in got] == [w.shape for w in want]
    return compare_outputs(want, got)


@pytest.mark.parametrize("auto_pad", ["SAME_LOWER", "SAME_UPPER"])
def test_a_same_max_pool_after_a_conv_pads_where_its_auto_pad_says(auto_pad: str) -> None:
    pool = helper.make_node(
        "MaxPool", ["r"], ["y"], "pool", kernel_shape=[2, 2], strides=[1, 1], auto_pad=auto_pad
    )
    figures = _figures(_conv_then(pool, [1, 4, 6, 6]))
    assert figures["sqnr_db"] >= 25.0 and figures["pearson"] >= 0.99, figures


def test_a_same_average_pool_over_the_whole_map_keeps_the_map_size() -> None:
    pool = helper.make_node(
        "AveragePool", ["r"], ["y"], "pool", kernel_shape=[6, 6], auto_pad="SAME_UPPER"
    )
    figures = _figures(_conv_then(pool, [1, 4, 6, 6]))
    assert figures["sqnr_db"] >= 25.0 and figures["pearson"] >= 0.99, figures
