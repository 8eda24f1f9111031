"""A compiled model whose output drifts from the float model says so (AK-OUTPUT-FIDELITY).

The fidelity guard measures each Akida region on its own, from float inputs, so an error that a
CPU layer after the region amplifies passes it: here a region whose outputs sit near 10 (with a
spread of a few hundredths) scores well, and the CPU's `Sub(10)` after it leaves only the
spread, which 8-bit codes over [0, 10] cannot hold. The output guard would move that region to
the CPU (tests/e2e/test_output_guard.py), so it is off here: the warning is what a user who turns
it off (or whose model the guard cannot mend) is told.
"""

from __future__ import annotations

import numpy as np
from onnx import ModelProto, TensorProto, helper, numpy_helper

from akidac import CompileOptions, compile_model


def offset_model(offset: float) -> ModelProto:
    rng = np.random.default_rng(0)
    initializers = [
        numpy_helper.from_array(rng.normal(0, 0.3, (8, 3, 3, 3)).astype(np.float32), "w0"),
        numpy_helper.from_array(rng.normal(0, 0.01, (8, 8, 3, 3)).astype(np.float32), "w"),
        numpy_helper.from_array(np.full(8, offset, np.float32), "b"),
        numpy_helper.from_array(np.array(offset, np.float32), "c"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w0"], ["a0"], pads=[1] * 4),
        helper.make_node("Relu", ["a0"], ["r0"]),
        helper.make_node("Conv", ["r0", "w", "b"], ["a"], pads=[1] * 4),
        helper.make_node("Relu", ["a"], ["r"]),
        helper.make_node("Sub", ["r", "c"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "offset",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 16, 16])],
        initializers,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _output_warnings(model: ModelProto) -> list[str]:
    result = compile_model(model, options=CompileOptions(min_output_sqnr=None))
    assert result.report["summary"]["macs_on_akida"] > 0  # the drift comes through Akida
    return [d.message for d in result.diagnostics.items if d.code == "AK-OUTPUT-FIDELITY"]


def test_an_output_below_the_guard_threshold_is_named_with_its_figures() -> None:
    (message,) = _output_warnings(offset_model(10.0))
    assert message.startswith("output 'y' scores ") and "below 20 dB" in message
    figure = float(message.split("scores ")[1].split(" dB")[0])
    assert figure < 20


def test_a_faithful_output_gets_no_warning() -> None:
    # the same layers without the offset: the output keeps its whole range in 8 bits
    assert _output_warnings(offset_model(0.0)) == []
