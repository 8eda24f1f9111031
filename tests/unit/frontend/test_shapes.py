"""Shapes as exporters write them (-1/0 dims are dynamic), pooling output sizes as onnxruntime
computes them, and models with several (non-image, scalar, integer) inputs."""

from __future__ import annotations

import itertools

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from models.frontend_models import multi_input_model
from onnx import TensorProto, helper, numpy_helper

from akidac.errors import ModelError, UnsupportedModelError, UsageError
from akidac.frontend import import_model
from akidac.frontend.shapes import ort_pool_output_size
from akidac.ir.diagnostics import DiagnosticSink


def _conv_model(in_dims: list, out_dims: list | None = None) -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype(np.float32), "w")
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["y"], name="relu"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_dims)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_dims or [None] * 4)],
        [w],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def _input_shape(graph) -> tuple:
    return tuple(graph.inputs[0].type.shape)


# ------------------------------------------------------------------------- -1 and 0 dims
def test_a_paddle_style_minus_one_dim_is_filled_by_input_shape() -> None:
    model = _conv_model([-1, 3, -1, -1], [-1, 8, -1, -1])
    graph = import_model(model, {"x": (1, 3, 48, 192)})
    assert _input_shape(graph) == (1, 3, 48, 192)
    assert tuple(graph.outputs[0].type.shape) == (1, 8, 48, 192)


@pytest.mark.parametrize("marker", [-1, 0, "N", None])
def test_dynamic_spatial_dims_without_input_shape_are_refused_alike(marker: object) -> None:
    with pytest.raises(UnsupportedModelError, match="--input-shape x=") as caught:
        import_model(_conv_model([marker, 3, marker, marker]))
    assert caught.value.code == "AK-DYNAMIC-SHAPE"
    assert caught.value.exit_code == 4
    assert caught.value.message.startswith("input 'x' has dynamic dimension(s) 0")
    assert "x=Nx3xNxN" in caught.value.message


@pytest.mark.parametrize("marker", [-1, 0, "batch"])
def test_a_minus_one_or_zero_batch_alone_becomes_1_like_a_symbolic_batch(marker: object) -> None:
    sink = DiagnosticSink()
    graph = import_model(_conv_model([marker, 3, 16, 16], [marker, 8, 16, 16]), sink=sink)
    assert _input_shape(graph) == (1, 3, 16, 16)
    assert tuple(graph.outputs[0].type.shape) == (1, 8, 16, 16)
    assert any("dynamic batch" in d.message for d in sink.items)


def test_input_shape_still_refuses_a_dim_the_model_fixes() -> None:
    with pytest.raises(UsageError, match="fixes at 3"):
        import_model(_conv_model([-1, 3, -1, -1]), {"x": (1, 4, 48, 192)})


def test_load_model_leaves_a_given_model_proto_untouched() -> None:
    from akidac.frontend import load_model

    model = _conv_model([-1, 3, 16, 16])
    loaded = load_model(model)
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_value == -1
    assert not loaded.graph.input[0].type.tensor_type.shape.dim[0].HasField("dim_value")


# ------------------------------------------------------------------------- pooling vs onnxruntime
def _ort_shape(model: onnx.ModelProto, shape: tuple[int, ...]) -> tuple[int, ...]:
    options = ort.SessionOptions()
    options.log_severity_level = 4
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    return tuple(session.run(None, {"x": np.zeros(shape, np.float32)})[0].shape)


def _pool_model(op: str, attrs: dict, rank: int = 4, opset: int = 19) -> onnx.ModelProto:
    node = helper.make_node(op, ["x"], ["y"], name="pool", **attrs)
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, "H", "W"][:rank])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None] * rank)],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


_POOL_CASES = [
    # (kernel, strides, dilations, pads, ceil_mode, auto_pad)
    ([1, 1], [2, 2], None, None, 1, None),  # issue 10: 6×6 → 3×3 (ONNX inference says 4×4)
    ([2, 2], [2, 2], None, [0, 0, 1, 1], 1, None),
    ([3, 3], [2, 2], None, [1, 1, 1, 1], 1, None),
    ([3, 3], [2, 2], None, None, 1, None),
    ([3, 3], [3, 3], None, [1, 1, 1, 1], 1, None),
    ([2, 3], [2, 1], None, [1, 0, 0, 2], 1, None),
    ([3, 3], [2, 2], [2, 2], [1, 1, 1, 1], 1, None),
    ([3, 3], [2, 2], [2, 2], [1, 1, 1, 1], 0, None),
    ([2, 2], [1, 1], [2, 2], None, 0, "SAME_UPPER"),
    ([2, 2], [1, 1], [2, 2], None, 1, "SAME_LOWER"),
    ([3, 3], [2, 2], None, None, 0, "SAME_UPPER"),
    ([3, 3], [2, 2], None, None, 1, "SAME_UPPER"),
    ([2, 2], [2, 2], None, None, 1, "SAME_LOWER"),
    ([3, 3], [2, 2], None, None, 1, "VALID"),
    ([2, 2], [3, 3], [2, 2], None, 1, "VALID"),
    ([3, 3], [1, 1], None, None, 0, "VALID"),
]


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
@pytest.mark.parametrize("size", [(6, 6), (7, 5)])
@pytest.mark.parametrize(
    ("kernel", "strides", "dilations", "pads", "ceil", "auto_pad"), _POOL_CASES
)
def test_pool_output_shapes_follow_onnxruntime(
    op: str,
    size: tuple[int, int],
    kernel: list[int],
    strides: list[int],
    dilations: list[int] | None,
    pads: list[int] | None,
    ceil: int,
    auto_pad: str | None,
) -> None:
    attrs: dict = {"kernel_shape": kernel, "strides": strides, "ceil_mode": ceil}
    if dilations:
        attrs["dilations"] = dilations
    if pads:
        attrs["pads"] = pads
    if auto_pad:
        attrs["auto_pad"] = auto_pad
    model = _pool_model(op, attrs)
    shape = (1, 2, *size)
    expected = _ort_shape(model, shape)
    graph = import_model(model, {"x": shape})
    assert tuple(graph.outputs[0].type.shape) == expected


def test_a_corrected_pool_shape_propagates_to_the_nodes_after_it() -> None:
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((4, 2, 3, 3)).astype(np.float32), "w")
    nodes = [
        helper.make_node(
            "MaxPool", ["x"], ["p"], name="pool", kernel_shape=[1, 1], strides=[2, 2], ceil_mode=1
        ),
        helper.make_node("Conv", ["p", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node(
            "MaxPool",
            ["c"],
            ["q"],
            name="pool2",
            kernel_shape=[2, 2],
            strides=[2, 2],
            pads=[0, 0, 1, 1],
            ceil_mode=1,
        ),
        helper.make_node("Flatten", ["q"], ["y"], name="flat"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 12, 12])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, None])],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    expected = _ort_shape(model, (1, 2, 12, 12))
    ir = import_model(model)
    assert tuple(ir.outputs[0].type.shape) == expected == (1, 36)
    by_name = {op.origin[0]: op for op in ir.ops}
    assert tuple(by_name["pool"].outputs[0].type.shape) == (1, 2, 6, 6)
    assert by_name["pool"].attrs["ceil_mode"] == 1  # the model's own attributes are kept
    assert tuple(by_name["pool2"].outputs[0].type.shape) == (1, 4, 3, 3)


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "dilation", "pads", "ceil", "auto_pad"),
    [
        case
        for case in itertools.product(
            [5, 6, 7, 8],
            [1, 2, 3],
            [1, 2, 3],
            [1, 2],
            [(0, 0), (1, 0), (1, 2)],
            [0, 1],
            ["NOTSET", "VALID", "SAME_UPPER"],
        )
        if (case[6] == "NOTSET" or case[4] == (0, 0))
        and max(case[4]) < case[1]
        and not (case[6] == "SAME_UPPER" and case[1] < case[2])
    ][::7],
)
def test_the_pool_size_formula_matches_onnxruntime_on_a_grid(
    size: int,
    kernel: int,
    stride: int,
    dilation: int,
    pads: tuple[int, int],
    ceil: int,
    auto_pad: str,
) -> None:
    attrs: dict = {
        "kernel_shape": [kernel],
        "strides": [stride],
        "ceil_mode": ceil,
        "dilations": [dilation],
    }
    if auto_pad == "NOTSET":
        attrs["pads"] = list(pads)
    else:
        attrs["auto_pad"] = auto_pad
    model = _pool_model("MaxPool", attrs, rank=3)
    expected = _ort_shape(model, (1, 2, size))[2]
    assert ort_pool_output_size(size, kernel, stride, dilation, pads, ceil, auto_pad)[0] == expected


@pytest.mark.parametrize(
    ("kernel", "strides", "dilations", "pads", "auto_pad"),
    [
        ([3, 3], [2, 2], None, [1, 1, 1, 1], None),
        ([3, 3], [2, 2], [2, 2], [2, 2, 2, 2], None),
        ([2, 2], [2, 2], None, None, "SAME_LOWER"),
        ([4, 4], [3, 3], None, None, "SAME_UPPER"),
        ([3, 3], [2, 2], None, None, "VALID"),
        ([1, 1], [3, 3], None, None, "SAME_UPPER"),
    ],
)
def test_conv_output_shapes_follow_onnxruntime(
    kernel: list[int],
    strides: list[int],
    dilations: list[int] | None,
    pads: list[int] | None,
    auto_pad: str | None,
) -> None:
    w = numpy_helper.from_array(np.ones((4, 2, *kernel), np.float32), "w")
    attrs: dict = {"kernel_shape": kernel, "strides": strides}
    if dilations:
        attrs["dilations"] = dilations
    if pads:
        attrs["pads"] = pads
    if auto_pad:
        attrs["auto_pad"] = auto_pad
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], name="conv", **attrs)],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 11, 9])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None] * 4)],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    assert tuple(import_model(model).outputs[0].type.shape) == _ort_shape(model, (1, 2, 11, 9))


def test_a_dilated_same_conv_is_refused_as_onnxruntime_cannot_run_it() -> None:
    w = numpy_helper.from_array(np.ones((4, 2, 3, 3), np.float32), "w")
    attrs = {"dilations": [2, 2], "auto_pad": "SAME_UPPER"}
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], name="conv", **attrs)],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 11, 9])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None] * 4)],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    with pytest.raises(
        UnsupportedModelError, match="'conv' has auto_pad SAME_UPPER with dilations"
    ):
        import_model(model)


def test_same_pooling_with_a_kernel_below_its_stride_is_refused_as_onnxruntime_cannot_run_it() -> (
    None
):
    model = _pool_model(
        "MaxPool", {"kernel_shape": [1, 1], "strides": [3, 3], "auto_pad": "SAME_UPPER"}
    )
    with pytest.raises(ModelError, match=r"'pool'.*negative padding") as raised:
        import_model(model, {"x": (1, 2, 5, 5)})
    assert raised.value.code == "AK-MODEL-SHAPES" and raised.value.exit_code == 3


# ------------------------------------------------------------------------- several inputs
def test_a_model_with_state_scalar_integer_and_bool_inputs_imports_with_their_shapes() -> None:
    graph = import_model(multi_input_model())
    shapes = {v.name: (v.type.dtype, tuple(v.type.shape)) for v in graph.inputs}
    assert shapes["state"] == ("f32", (2, 1, 128))
    assert shapes["sr"][1] == ()
    assert shapes["index"][1] == (1,)
