"""Invalid models are refused at import (exit 3, naming the node and the rule), and tensors
above the memory budget are refused before anything allocates them (exit 4)."""

from __future__ import annotations

import time

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from akidac.errors import ModelError, UnsupportedModelError, UsageError
from akidac.frontend import import_model
from akidac.frontend.validate import (
    DEFAULT_MAX_TENSOR_BYTES,
    MAX_TENSOR_BYTES_ENV,
    max_tensor_bytes,
)


def _conv(
    x_shape: list[int],
    w_shape: tuple[int, ...],
    *,
    op: str = "Conv",
    bias: tuple[int, ...] | None = None,
    **attrs: object,
) -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal(w_shape).astype(np.float32), "w")]
    inputs = ["x", "w"]
    if bias is not None:
        inits.append(numpy_helper.from_array(np.zeros(bias, np.float32), "b"))
        inputs.append("b")
    graph = helper.make_graph(
        [helper.make_node(op, inputs, ["y"], name="conv1", **attrs)],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None] * len(x_shape))],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


@pytest.mark.parametrize(
    ("model", "rule"),
    [
        (_conv([1, 3, 8, 8], (4, 1, 3, 3), group=2), "3 channels, which group=2 does not divide"),
        (_conv([1, 3, 4, 4], (4, 3, 7, 7)), "every dimension must be at least 1"),
        (_conv([1, 3, 4, 4], (4, 3, 5, 5)), "kernel is larger than its padded input"),
        # found by the graph fuzz: ONNX truncates (1 − 2) / 2 + 1 to an output of 1
        (_conv([1, 3, 1, 1], (4, 3, 1, 2), strides=[2, 2]), "kernel reaches 2 along spatial"),
        (_conv([1, 3, 5, 5], (4, 3, 3, 3), dilations=[3, 3], strides=[3, 3]), "reaches 7"),
        (_conv([1, 3, 8, 8], (4, 5, 3, 3)), "has 3 channels but its weight dim 1"),
        (_conv([1, 4, 8, 8], (6, 1, 3, 3), group=4), "6 output channels, which group=4"),
        (_conv([1, 3, 8, 8], (4, 3, 3, 3), kernel_shape=[5, 5]), "kernel_shape [5, 5] differs"),
        (_conv([1, 3, 8, 8], (4, 3, 3, 3), bias=(5,)), "its bias has shape [5]"),
        (_conv([1, 3, 8, 8], (4, 3, 3)), "spatial dimensions"),
        (_conv([1, 3, 8, 8], (5, 4, 3, 3), op="ConvTranspose"), "weight dim 0 is 5"),
    ],
    ids=[
        "group",
        "kernel-7-on-4",
        "kernel-5-on-4",
        "kernel-2-on-1-stride-2",
        "dilated-kernel-7-on-5-stride-3",
        "channels",
        "group-outputs",
        "kernel-shape",
        "bias",
        "rank",
        "convtranspose",
    ],
)
def test_an_invalid_conv_is_a_model_error_naming_the_node_and_the_rule(
    model: onnx.ModelProto, rule: str
) -> None:
    with pytest.raises(ModelError) as caught:
        import_model(model)
    assert caught.value.exit_code == 3
    assert "conv1" in caught.value.message
    assert rule in caught.value.message


def test_a_gemm_whose_inner_dims_differ_is_a_model_error() -> None:
    """(ONNX's strict shape inference catches this one; the message names the node.)"""
    w = numpy_helper.from_array(np.ones((5, 4), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w"], ["y"], name="fc", transB=1)],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, None])],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    with pytest.raises(ModelError, match="node name: fc") as caught:
        import_model(model)
    assert caught.value.exit_code == 3


def test_a_valid_grouped_and_depthwise_conv_still_imports() -> None:
    import_model(_conv([1, 4, 8, 8], (6, 2, 3, 3), group=2, bias=(6,)))
    import_model(_conv([1, 4, 8, 8], (4, 1, 3, 3), group=4, pads=[1, 1, 1, 1]))
    import_model(_conv([1, 4, 8, 8], (4, 3, 3, 3), op="ConvTranspose", group=2, bias=(6,)))


# ------------------------------------------------------------------------- memory budget
def _relu(shape: list) -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"], name="relu")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None] * len(shape))],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_a_huge_declared_input_is_refused_at_once_naming_it_and_its_bytes() -> None:
    start = time.perf_counter()
    with pytest.raises(UnsupportedModelError) as caught:
        import_model(_relu([1, 3, 100000, 100000]))
    assert time.perf_counter() - start < 5
    assert caught.value.code == "AK-UNSUPPORTED"
    assert caught.value.exit_code == 4
    assert "input 'x'" in caught.value.message
    assert "120,000,000,000 bytes" in caught.value.message
    assert MAX_TENSOR_BYTES_ENV in caught.value.message


def test_a_huge_input_shape_is_refused_and_a_huge_intermediate_names_its_node() -> None:
    with pytest.raises(UnsupportedModelError, match="input 'x'"):
        import_model(_relu(["N", 3, "H", "W"]), {"x": (1, 3, 20000, 20000)})
    # a 1×3×1000×1000 input is within budget, but a 1024-channel conv of it is not
    w = numpy_helper.from_array(np.zeros((1024, 3, 1, 1), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], name="wide")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 1000, 1000])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None] * 4)],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    with pytest.raises(UnsupportedModelError, match=r"node 'wide'.*4,096,000,000 bytes"):
        import_model(model)


def test_the_memory_budget_is_set_by_an_environment_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert max_tensor_bytes() == DEFAULT_MAX_TENSOR_BYTES == 2 << 30
    monkeypatch.setenv(MAX_TENSOR_BYTES_ENV, "1K")
    assert max_tensor_bytes() == 1024
    with pytest.raises(UnsupportedModelError, match="1,024 bytes per tensor"):
        import_model(_relu([1, 3, 16, 16]))
    monkeypatch.setenv(MAX_TENSOR_BYTES_ENV, "64M")
    import_model(_relu([1, 3, 16, 16]))
    monkeypatch.setenv(MAX_TENSOR_BYTES_ENV, "lots")
    with pytest.raises(UsageError, match=MAX_TENSOR_BYTES_ENV):
        max_tensor_bytes()
