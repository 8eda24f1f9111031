"""Opset normalization: an attribute that a later opset made an input (Squeeze/Unsqueeze/
ReduceSum axes and Split's split before 13, ReduceMean axes before 18) is an input in the IR
whatever the model's opset, goes back to an attribute when the model is written, and the
passes see one form (a ReduceMean over H, W becomes a GAP at every opset)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from akidac.api import compile_model
from akidac.frontend import import_model
from akidac.ir.onnx_export import graph_to_model
from akidac.ir.opset_forms import MOVED_ATTRIBUTES
from akidac.passes import CompileOptions
from akidac.runtime.session import HybridSession


def _shape_ops_model(opset: int) -> onnx.ModelProto:
    """Unsqueeze → Squeeze → Split → ReduceSum → ReduceMean, with each op's axes/split in the
    form `opset` defines."""
    legacy = opset < 13
    legacy_mean = opset < 18
    inits = []

    def axes(name: str, values: list[int], as_attribute: bool) -> tuple[list[str], dict]:
        if as_attribute:
            return [], {name: values}
        inits.append(numpy_helper.from_array(np.array(values, np.int64), f"{name}_{len(inits)}"))
        return [inits[-1].name], {}

    extra, attrs = axes("axes", [0], legacy)
    nodes = [helper.make_node("Unsqueeze", ["x", *extra], ["u"], "unsqueeze", **attrs)]
    extra, attrs = axes("axes", [0], legacy)
    nodes.append(helper.make_node("Squeeze", ["u", *extra], ["s"], "squeeze", **attrs))
    extra, attrs = axes("split", [2, 4], legacy)
    nodes.append(helper.make_node("Split", ["s", *extra], ["a", "b"], "split", axis=1, **attrs))
    extra, attrs = axes("axes", [1], legacy)
    nodes.append(helper.make_node("ReduceSum", ["b", *extra], ["r"], "sum", keepdims=1, **attrs))
    extra, attrs = axes("axes", [2, 3], legacy_mean)
    nodes.append(helper.make_node("ReduceMean", ["a", *extra], ["m"], "mean", keepdims=0, **attrs))
    graph = helper.make_graph(
        nodes,
        "forms",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6, 4, 4])],
        [
            helper.make_tensor_value_info("r", TensorProto.FLOAT, [1, 1, 4, 4]),
            helper.make_tensor_value_info("m", TensorProto.FLOAT, [1, 2]),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def _run(model: onnx.ModelProto, x: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return [np.asarray(out) for out in session.run(None, {"x": x})]


@pytest.mark.parametrize("opset", [11, 12, 13, 17, 18])
def test_the_ir_holds_one_form_and_the_written_model_the_opsets_form(opset: int) -> None:
    model = _shape_ops_model(opset)
    graph = import_model(model)
    for op in graph.ops:
        moved = MOVED_ATTRIBUTES[op.op_type]
        assert moved.attribute not in op.attrs, op
        assert op.inputs[moved.index] is not None and op.inputs[moved.index].is_constant
    written = graph_to_model(graph)
    onnx.checker.check_model(written, full_check=True)
    # every node is written back exactly as the model had it: same inputs, same attributes
    assert list(written.graph.node) == list(model.graph.node)
    x = np.random.default_rng(0).standard_normal((1, 6, 4, 4)).astype(np.float32)
    for want, got in zip(_run(model, x), _run(written, x), strict=True):
        np.testing.assert_array_equal(got, want)


def _conv_then_mean(opset: int) -> onnx.ModelProto:
    """Conv + Relu → ReduceMean over H, W (keepdims) with axes in the opset's form."""
    w = (np.random.default_rng(0).standard_normal((8, 3, 3, 3)) * 0.2).astype(np.float32)
    inits = [numpy_helper.from_array(w, "w")]
    if opset < 18:
        mean = helper.make_node("ReduceMean", ["r"], ["y"], "mean", axes=[2, 3], keepdims=1)
    else:
        inits.append(numpy_helper.from_array(np.array([2, 3], np.int64), "axes"))
        mean = helper.make_node("ReduceMean", ["r", "axes"], ["y"], "mean", keepdims=1)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], "conv", pads=[1] * 4),
        helper.make_node("Relu", ["c"], ["r"], "relu"),
        mean,
    ]
    graph = helper.make_graph(
        nodes,
        "mean",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 1, 1])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


@pytest.mark.parametrize("opset", [13, 17, 18])
def test_a_reduce_mean_over_hw_runs_on_akida_at_every_opset(opset: int) -> None:
    model = _conv_then_mean(opset)
    result = compile_model(model, options=CompileOptions(num_samples=8, fidelity_samples=0))
    decisions = result.analyses["decisions"]
    assert decisions["mean"].target == "akida", decisions["mean"]
    session = HybridSession(result.model)
    x = np.random.default_rng(1).standard_normal((1, 3, 8, 8)).astype(np.float32)
    (want,) = _run(model, x)
    (got,) = session.run(None, {"x": x})
    assert got.shape == want.shape
    assert np.corrcoef(got.reshape(-1), want.reshape(-1))[0, 1] > 0.99
