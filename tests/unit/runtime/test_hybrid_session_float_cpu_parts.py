"""A CPU node between an Akida region's DequantizeLinear and the next region's QuantizeLinear
computes in float, exactly as the user's model does: onnxruntime's QDQ rewrites, which would
fuse that sandwich into an int8 QLinearConv with weights it quantizes per tensor itself, are off
at every opset; and its transpose optimizer, which would round a float value the part gives
to the next AkidaOp's 8-bit range, is off in parts with a QuantizeLinear."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from akidac.api import compile_model
from akidac.passes import CompileOptions
from akidac.runtime.session import HybridSession

CHANNELS = 8


def _conv_depthwise_conv(opset: int) -> onnx.ModelProto:
    """Conv+ReLU6 (Akida) → depthwise 3×3 with per-channel weight magnitudes from 0.2 to 40, as
    a trained depthwise with folded BatchNorm has them (kept on the CPU) → ReLU6 → 1×1 conv."""
    rng = np.random.default_rng(3)
    gains = np.geomspace(0.2, 40.0, CHANNELS)
    depthwise = rng.standard_normal((CHANNELS, 1, 3, 3)) * gains[:, None, None, None]
    inits = [
        numpy_helper.from_array(rng.standard_normal((CHANNELS, 3, 3, 3)).astype(np.float32), "w0"),
        numpy_helper.from_array(depthwise.astype(np.float32), "w1"),
        numpy_helper.from_array(rng.standard_normal((4, CHANNELS, 1, 1)).astype(np.float32), "w2"),
        numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
        numpy_helper.from_array(np.array(6.0, np.float32), "six"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w0"], ["c0"], "conv", pads=[1] * 4),
        helper.make_node("Clip", ["c0", "zero", "six"], ["r0"], "relu6_0"),
        helper.make_node("Conv", ["r0", "w1"], ["c1"], "depthwise", group=CHANNELS, pads=[1] * 4),
        helper.make_node("Clip", ["c1", "zero", "six"], ["r1"], "relu6_1"),
        helper.make_node("Conv", ["r1", "w2"], ["y"], "project"),
    ]
    graph = helper.make_graph(
        nodes,
        "conv_depthwise_conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 16, 16])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _float_depthwise(model: onnx.ModelProto, r0: np.ndarray) -> np.ndarray:
    """The depthwise node alone, run by onnxruntime on `r0` with no optimization at all."""
    weights = next(t for t in model.graph.initializer if t.name == "w1")
    node = next(n for n in model.graph.node if n.name == "depthwise")
    graph = helper.make_graph(
        [node],
        "depthwise",
        [helper.make_tensor_value_info("r0", TensorProto.FLOAT, list(r0.shape))],
        [helper.make_tensor_value_info("c1", TensorProto.FLOAT, None)],
        [weights],
    )
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(
        helper.make_model(graph, opset_imports=model.opset_import).SerializeToString(), options
    )
    return session.run(None, {"r0": r0})[0]


@pytest.mark.parametrize("opset", [13, 17, 21])
def test_a_cpu_conv_between_two_regions_computes_in_float_from_the_dequantized_codes(
    opset: int,
) -> None:
    model = _conv_depthwise_conv(opset)
    options = CompileOptions(num_samples=8, fidelity_samples=0, keep_on_cpu=("depthwise",))
    result = compile_model(model, options=options)
    assert result.report["summary"]["regions"] == 2
    hybrid = result.model
    reader = next(n for n in hybrid.graph.node if n.name == "depthwise")
    # the depthwise's input and output as graph outputs, so the CPU part returns them
    for name in (reader.input[0], "c1"):
        shape = [1, CHANNELS, 16, 16]
        hybrid.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))
    x = np.random.default_rng(5).standard_normal((1, 3, 16, 16)).astype(np.float32)
    values = HybridSession(hybrid).run_all({"x": x})  # default options: ORT_ENABLE_ALL
    want = _float_depthwise(model, values[reader.input[0]])
    np.testing.assert_allclose(values["c1"], want, rtol=1e-5, atol=1e-4)


def test_a_float_value_a_part_gives_is_not_rounded_by_onnxruntime() -> None:
    """onnxruntime's transpose optimizer would recompute `act` (also read by a later part) as
    QuantizeLinear → Transpose → DequantizeLinear of the AkidaOp input's 8-bit range: 131.6
    came back as 6.99 on MediaPipe iris. The session holds it back; `act` keeps its value."""
    c = 8
    nodes = [
        helper.make_node("DequantizeLinear", ["acc", "s32", "z32"], ["a"]),
        helper.make_node("Mul", ["a", "channel_scale"], ["a2"]),
        helper.make_node("Transpose", ["a2"], ["a_nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("PRelu", ["a_nchw", "slope"], ["act"]),
        helper.make_node("Transpose", ["act"], ["act_nhwc"], perm=[0, 2, 3, 1]),
        helper.make_node("QuantizeLinear", ["act_nhwc", "sq", "zq"], ["q"]),
    ]
    inits = [
        numpy_helper.from_array(np.asarray(np.float32(0.01)), "s32"),
        numpy_helper.from_array(np.asarray(np.int32(0)), "z32"),
        numpy_helper.from_array(np.ones(c, np.float32), "channel_scale"),
        numpy_helper.from_array(np.asarray(np.full((c, 1, 1), 0.25, np.float32)), "slope"),
        numpy_helper.from_array(np.asarray(np.float32(0.05)), "sq"),
        numpy_helper.from_array(np.asarray(np.int8(0)), "zq"),
    ]
    graph = helper.make_graph(
        nodes,
        "residual_source",
        [helper.make_tensor_value_info("acc", TensorProto.INT32, [1, 4, 4, c])],
        [
            helper.make_tensor_value_info("act", TensorProto.FLOAT, [1, c, 4, 4]),
            helper.make_tensor_value_info("q", TensorProto.INT8, [1, 4, 4, c]),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    acc = np.full((1, 4, 4, c), 13_160, np.int32)  # 131.6, far outside q's range of ±6.4
    for fuse in (False, True):
        act, q = HybridSession(model, fuse_borders=fuse).run(None, {"acc": acc})
        assert np.all(act == np.float32(13_160) * np.float32(0.01)), fuse
        assert np.all(q == 127)
