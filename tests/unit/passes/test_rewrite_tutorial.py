"""The rewrite tutorial of docs/passes.md ("Writing a rewrite") runs as written and does what
the text says: Sub of a constant becomes Add of its negation, a Sub of a computed value is a
near miss, and the model computes what it computed."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from akidac.frontend import import_model
from akidac.ir.onnx_export import graph_to_model
from akidac.passes import PassContext, PassManager, VerifyInstrument
from akidac.passes import registry as registry_module
from akidac.passes.rewrites import RewriteMiss

DOC = Path(__file__).parents[3] / "docs" / "passes.md"


@pytest.fixture
def tutorial() -> Iterator[dict[str, object]]:
    """Execute the tutorial's code block; unregister its pass afterwards."""
    section = DOC.read_text().split("## Writing a rewrite", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match is not None, "docs/passes.md lost the rewrite tutorial"
    saved = dict(registry_module._REGISTRY)
    namespace: dict[str, object] = {}
    exec(compile(match.group(1), str(DOC), "exec"), namespace)
    yield namespace
    registry_module._REGISTRY.clear()
    registry_module._REGISTRY.update(saved)


def _model() -> onnx.ModelProto:
    """y = Relu(x − c) − x: one Sub of a constant, one Sub of a computed value ('diff')."""
    c = np.array([0.5, -1.0, 2.0, 0.25], dtype=np.float32)
    nodes = [
        helper.make_node("Sub", ["x", "c"], ["shifted"], name="shift"),
        helper.make_node("Relu", ["shifted"], ["r"], name="relu"),
        helper.make_node("Sub", ["r", "x"], ["y"], name="diff"),
    ]
    graph = helper.make_graph(
        nodes,
        "tutorial",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])],
        [numpy_helper.from_array(c, "c")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {"x": x})[0])


def test_the_rewrite_tutorial_rewrites_reports_its_near_miss_and_keeps_the_numbers(
    tutorial: dict[str, object],
) -> None:
    model = _model()
    graph = import_model(model)
    ctx = PassContext()
    PassManager(["import-cleanup", "sub-to-add"], [VerifyInstrument()]).run(graph, ctx)

    assert [op.kind for op in graph.ops] == ["onnx.Add", "onnx.Relu", "onnx.Sub"]
    add = graph.ops[0]
    assert add.origin == ("shift",) and add.created_by == "sub-to-add"
    assert [v.name for v in graph.outputs] == ["y"]

    assert ctx.analyses["rewrite_misses"] == [
        RewriteMiss("sub-to-add", "diff", "Sub 'diff' subtracts a computed value, not a constant")
    ]
    notes = [d for d in ctx.sink.items if d.code == "AK-REWRITE-NEAR-MISS"]
    assert [str(n) for n in notes] == [
        "note: AK-REWRITE-NEAR-MISS: sub-to-add 'diff': Sub 'diff' subtracts a computed value, "
        "not a constant"
    ]

    x = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
    np.testing.assert_array_equal(_run(graph_to_model(graph), x), _run(model, x))
