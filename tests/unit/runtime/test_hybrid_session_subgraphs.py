"""Nodes with subgraphs (If, Loop, Scan) read outer-scope values: a CPU step declares them as
inputs, and earlier steps keep them as outputs."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from akidac.runtime.session import HybridSession, _CpuStep, free_names


def scalar_branch(name: str, op: str, reads: str) -> onnx.GraphProto:
    return helper.make_graph(
        [helper.make_node(op, [reads], [f"{name}_out"], keepdims=0)],
        name,
        [],
        [helper.make_tensor_value_info(f"{name}_out", TensorProto.FLOAT, [])],
    )


def with_if_after_the_akida_op(model: onnx.ModelProto) -> onnx.ModelProto:
    """Adds input `flag` and output `picked` = max(input_nhwc) if flag else min(input) +
    min(the model's first output): an If whose branches read a graph input, a value the first
    CPU step computed and one computed after the AkidaOp, so it runs after the AkidaOp."""
    then_branch = scalar_branch("then", "ReduceMax", "input_nhwc")
    else_branch = helper.make_graph(
        [
            helper.make_node("ReduceMin", ["input"], ["else_input_min"], keepdims=0),
            helper.make_node(
                "ReduceMin", [model.graph.output[0].name], ["else_output_min"], keepdims=0
            ),
            helper.make_node("Add", ["else_input_min", "else_output_min"], ["else_out"]),
        ],
        "else",
        [],
        [helper.make_tensor_value_info("else_out", TensorProto.FLOAT, [])],
    )
    model.graph.input.append(helper.make_tensor_value_info("flag", TensorProto.BOOL, []))
    model.graph.node.append(
        helper.make_node(
            "If",
            ["flag"],
            ["picked"],
            name="pick",
            then_branch=then_branch,
            else_branch=else_branch,
        )
    )
    model.graph.output.append(helper.make_tensor_value_info("picked", TensorProto.FLOAT, []))
    return model


def test_free_names_are_the_outer_values_a_subgraph_reads_at_any_depth() -> None:
    inner = helper.make_graph(
        [
            helper.make_node("Add", ["a", "local"], ["inner_sum"]),
            helper.make_node("Identity", ["inner_sum"], ["inner_out"]),
        ],
        "inner",
        [],
        [helper.make_tensor_value_info("inner_out", TensorProto.FLOAT, None)],
    )
    outer = helper.make_graph(
        [
            helper.make_node("Neg", ["b"], ["local"]),
            helper.make_node("If", ["c"], ["outer_out"], then_branch=inner, else_branch=inner),
        ],
        "outer",
        [helper.make_tensor_value_info("own_input", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("outer_out", TensorProto.FLOAT, None)],
    )
    assert free_names(inner) == {"a", "local"}
    assert free_names(outer) == {"a", "b", "c"}


def test_a_cpu_step_declares_the_outer_values_its_if_branches_read(
    hybrid: onnx.ModelProto,
) -> None:
    session = HybridSession(with_if_after_the_akida_op(hybrid))
    first, last = (s for s in session.steps if isinstance(s, _CpuStep))
    assert "input_nhwc" in first.outputs  # kept for the If after the AkidaOp
    assert {"flag", "input", "input_nhwc"} <= set(last.inputs)


def test_an_if_after_the_akida_op_reads_a_graph_input_and_earlier_and_later_cpu_values(
    hybrid: onnx.ModelProto,
) -> None:
    session = HybridSession(with_if_after_the_akida_op(hybrid))
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    for flag in (True, False):
        softmax, picked = session.run(None, {"input": x, "flag": np.array(flag)})
        assert softmax.shape == (1, 10)
        expected = x.max() if flag else np.float32(x.min()) + np.float32(softmax.min())
        assert picked == expected
