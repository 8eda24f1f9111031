"""Values an If subgraph reads from the outer graph keep their names and reach the subgraph,
whether they come from the model input or from an Akida layer."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from akidac.api import compile_model
from akidac.metrics import cosine
from akidac.passes import CompileOptions
from akidac.runtime.session import HybridSession

RNG = np.random.default_rng(5)


def _io(name: str, shape: list[int], elem: int = TensorProto.FLOAT) -> object:
    return helper.make_tensor_value_info(name, elem, shape)


def _weight(name: str, shape: tuple[int, ...]) -> object:
    array = (RNG.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))).astype(np.float32)
    return numpy_helper.from_array(array, name)


def _if_model(captured: str, channels: int) -> object:
    then_graph = helper.make_graph(
        [helper.make_node("Relu", [captured], ["t"])], "then", [], [_io("t", [1, channels, 8, 8])]
    )
    else_graph = helper.make_graph(
        [helper.make_node("Neg", [captured], ["e"])], "else", [], [_io("e", [1, channels, 8, 8])]
    )
    nodes = [
        helper.make_node("Conv", ["x", "w0"], ["c0"], name="conv0", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c0"], ["r0"], name="relu0"),
        helper.make_node(
            "If", ["cond"], ["branch"], name="if", then_branch=then_graph, else_branch=else_graph
        ),
        helper.make_node("Conv", ["branch", "w1"], ["y"], name="conv1", pads=[1, 1, 1, 1]),
    ]
    graph = helper.make_graph(
        nodes,
        "if_capture",
        [_io("x", [1, 3, 8, 8]), _io("cond", [], TensorProto.BOOL)],
        [_io("y", [1, 8, 8, 8])],
        [_weight("w0", (8, 3, 3, 3)), _weight("w1", (8, channels, 3, 3))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    return model


@pytest.mark.parametrize(("captured", "channels"), [("x", 3), ("r0", 8)])
@pytest.mark.parametrize("condition", [True, False])
def test_an_if_reading_an_outer_value_runs_like_the_float_model(
    captured: str, channels: int, condition: bool
) -> None:
    model = _if_model(captured, channels)
    result = compile_model(model, options=CompileOptions(num_samples=8, fidelity_samples=0))
    assert result.report["summary"]["nodes_on_akida"] >= 1
    feed = {"x": RNG.standard_normal((1, 3, 8, 8)).astype(np.float32), "cond": np.array(condition)}
    (hybrid,) = HybridSession(result.model).run(None, feed)
    (expected,) = ort.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]
    ).run(None, feed)
    assert cosine(hybrid, expected) >= 0.98


@pytest.mark.parametrize("level", ["ORT_ENABLE_ALL", "ORT_ENABLE_EXTENDED"])
def test_a_subgraph_reading_an_akida_output_loads_with_the_callers_session_options(
    level: str,
) -> None:
    """Silero VAD's case: the If-part runs unoptimized with the caller's options too (a copy
    keeps their threads), where onnxruntime's optimizers fail on the Akida border inside it."""
    model = _if_model("r0", 8)
    result = compile_model(model, options=CompileOptions(num_samples=8, fidelity_samples=0))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
    session = HybridSession(result.model, sess_options=options)
    assert options.graph_optimization_level == getattr(ort.GraphOptimizationLevel, level)
    feed = {"x": RNG.standard_normal((1, 3, 8, 8)).astype(np.float32), "cond": np.array(True)}
    (hybrid,) = session.run(None, feed)
    (expected,) = ort.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]
    ).run(None, feed)
    assert cosine(hybrid, expected) >= 0.98
