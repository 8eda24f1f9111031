"""`Graph.redirect_uses`: the one way to move uses; a model output is never renamed silently."""

from __future__ import annotations

import pytest

from akidac.errors import InternalError
from akidac.ir.graph import Graph
from akidac.ir.types import TensorType

F32 = TensorType("f32", (1, 4))


def _chain() -> Graph:
    """x → Relu → a → Neg → y (graph output); a is also read by Abs → b (graph output)."""
    graph = Graph()
    x = graph.add_input("x", F32)
    a = graph.make_op("onnx.Relu", [x], [F32], result_names=["a"]).outputs[0]
    y = graph.make_op("onnx.Neg", [a], [F32], result_names=["y"]).outputs[0]
    b = graph.make_op("onnx.Abs", [a], [F32], result_names=["b"]).outputs[0]
    graph.outputs = [y, b]
    return graph


def test_an_unpinned_value_moves_its_users_and_no_name_changes() -> None:
    graph = _chain()
    a = graph.ops[0].outputs[0]
    sigmoid = graph.make_op("onnx.Sigmoid", [graph.inputs[0]], [F32], result_names=["s"])
    new = sigmoid.outputs[0]
    graph.redirect_uses(a, new)
    assert (a.name, new.name) == ("a", "s")
    assert a.users == [] and [op.op_type for op in new.users] == ["Neg", "Abs"]


def test_skip_keeps_one_user_on_the_old_value() -> None:
    graph = _chain()
    a = graph.ops[0].outputs[0]
    neg, abs_ = graph.ops[1], graph.ops[2]
    new = graph.make_op("onnx.Sigmoid", [a], [F32], result_names=["s"]).outputs[0]
    graph.redirect_uses(a, new, skip=abs_)
    assert neg.inputs[0] is new and abs_.inputs[0] is a


def test_a_graph_output_keeps_its_name_by_default() -> None:
    graph = _chain()
    y = graph.ops[1].outputs[0]
    tail = graph.make_op("onnx.Sigmoid", [y], [F32], result_names=["s"]).outputs[0]
    graph.redirect_uses(y, tail, skip=graph.ops[-1])
    assert [v.name for v in graph.outputs] == ["y", "b"]
    assert graph.outputs[0] is tail and y.name == "s"


def test_new_takes_name_swaps_names_of_unpinned_values_too() -> None:
    graph = _chain()
    a = graph.ops[0].outputs[0]
    new = graph.make_op("onnx.Sigmoid", [graph.inputs[0]], [F32], result_names=["s"]).outputs[0]
    graph.redirect_uses(a, new, naming="new-takes-name")
    assert (new.name, a.name) == ("a", "s")


def test_renaming_a_graph_input_to_keep_an_output_name_is_refused() -> None:
    graph = Graph()
    x = graph.add_input("x", F32)
    y = graph.make_op("onnx.Identity", [x], [F32], result_names=["y"]).outputs[0]
    graph.outputs = [y]
    with pytest.raises(InternalError, match="would rename the pinned value 'x'"):
        graph.redirect_uses(y, x)
    assert (x.name, y.name) == ("x", "y") and graph.outputs == [y]


def test_an_unknown_naming_choice_is_refused() -> None:
    graph = _chain()
    a, y = graph.ops[0].outputs[0], graph.ops[1].outputs[0]
    with pytest.raises(InternalError, match="unknown naming"):
        graph.redirect_uses(a, y, naming="rename")  # type: ignore[arg-type]
