"""A model whose batch is fixed above 1 compiles and runs: every part of the compile that
handles calibration samples (each one a whole batch of the model) takes the batch rows along."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from akidac.api import compile_model
from akidac.metrics import compare_outputs
from akidac.passes import CompileOptions
from akidac.runtime.session import HybridSession


def _conv_flatten_gemm(batch: int) -> onnx.ModelProto:
    """Conv → Flatten → Gemm at a static batch: the Gemm's region starts after a CPU border."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array((rng.standard_normal((6, 3, 2, 2)) * 0.3).astype(np.float32), "w"),
        numpy_helper.from_array(
            (rng.standard_normal((6 * 5 * 7, 4)) * 0.1).astype(np.float32), "v"
        ),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], "conv"),
        helper.make_node("Flatten", ["c"], ["f"], "flatten", axis=1),
        helper.make_node("Gemm", ["f", "v"], ["y"], "gemm"),
    ]
    graph = helper.make_graph(
        nodes,
        "static_batch",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, 6, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 4])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_a_static_batch_of_two_compiles_and_its_hybrid_matches_the_float_model() -> None:
    model = _conv_flatten_gemm(2)
    result = compile_model(model, options=CompileOptions(num_samples=8, fidelity_samples=0))
    assert result.report["summary"]["nodes_on_akida"] >= 1
    assert result.analyses["region_sqnr"]  # the guard measured the regions
    rng = np.random.default_rng(3)
    feeds = [{"x": rng.standard_normal((2, 3, 6, 8)).astype(np.float32)} for _ in range(3)]
    reference = ort.InferenceSession(model.SerializeToString())
    session = HybridSession(result.model)
    want = [row for feed in feeds for row in reference.run(None, feed)[0]]
    got = [row for feed in feeds for row in session.run(None, feed)[0]]
    figures = compare_outputs(want, got)
    assert figures["sqnr_db"] >= 15.0
    assert figures["pearson"] >= 0.95
