"""A layer whose channels span very different ranges keeps its small channels' resolution
(issue 8, MediaPipe hand landmark): conv + ReLU6 whose channels peak from about 0.3 to 6.0,
a depthwise whose BatchNorm-folded weights compensate the small channels, then a projection.
Under one activation scale per tensor the small channels keep a few of the 127 codes and the
depthwise amplifies their rounding; per-channel power-of-two scales give them their range back.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from models.agreement import assert_hardware_model_equals_reference
from onnx import TensorProto, helper, numpy_helper

import akidac.passes.quantize as quantize_module
from akidac.api import compile_model
from akidac.metrics import compare_outputs
from akidac.passes import CompileOptions
from akidac.runtime.session import HybridSession

CHANNELS = 16
SIDE = 24


def _images(count: int, seed: int) -> np.ndarray:
    """Smooth images in [0, 1]: coarse noise repeated 4×, plus a little fine noise."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((count, 3, SIDE // 4, SIDE // 4))
    image = coarse.repeat(4, axis=2).repeat(4, axis=3) + rng.normal(0, 0.02, (count, 3, SIDE, SIDE))
    return np.clip(image, 0, 1).astype(np.float32)


def spread_channels_model() -> onnx.ModelProto:
    """conv 3×3 + ReLU6 with per-filter gains 0.05..1.5 (channel peaks about 0.3..6), depthwise
    3×3 with weights ∝ 1/gain + ReLU6, 1×1 projection: every channel matters alike downstream."""
    rng = np.random.default_rng(11)
    gains = np.geomspace(0.05, 1.5, CHANNELS)
    rng.shuffle(gains)
    w0 = rng.standard_normal((CHANNELS, 3, 3, 3)) * gains[:, None, None, None]
    b0 = np.abs(rng.standard_normal(CHANNELS)) * gains
    w1 = rng.standard_normal((CHANNELS, 1, 3, 3)) * 0.3 / gains[:, None, None, None]
    b1 = rng.standard_normal(CHANNELS) * 0.5
    w2 = rng.standard_normal((8, CHANNELS, 1, 1)) / np.sqrt(CHANNELS)
    arrays = {"w0": w0, "b0": b0, "w1": w1, "b1": b1, "w2": w2}
    inits = [numpy_helper.from_array(a.astype(np.float32), k) for k, a in arrays.items()]
    inits += [
        numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
        numpy_helper.from_array(np.array(6.0, np.float32), "six"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w0", "b0"], ["c0"], "conv", pads=[1] * 4),
        helper.make_node("Clip", ["c0", "zero", "six"], ["r0"], "relu6_0"),
        helper.make_node(
            "Conv", ["r0", "w1", "b1"], ["c1"], "depthwise", group=CHANNELS, pads=[1] * 4
        ),
        helper.make_node("Clip", ["c1", "zero", "six"], ["r1"], "relu6_1"),
        helper.make_node("Conv", ["r1", "w2"], ["y"], "project"),
    ]
    graph = helper.make_graph(
        nodes,
        "spread_channels",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, SIDE, SIDE])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, SIDE, SIDE])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _fidelity(model: onnx.ModelProto, keep_on_cpu: tuple[str, ...] = ()) -> tuple[dict, object]:
    """Compile on 16 calibration images (guard off: the same partition every time) and compare
    with the float model on 8 held-out images."""
    options = CompileOptions(
        samples={"x": _images(16, seed=1)},
        fidelity_samples=0,
        min_region_sqnr=None,
        keep_on_cpu=keep_on_cpu,
    )
    result = compile_model(model, options=options)
    held_out = _images(8, seed=2)
    session = HybridSession(result.model)
    reference = ort.InferenceSession(model.SerializeToString())
    feeds = [{"x": held_out[k : k + 1]} for k in range(len(held_out))]
    want = [reference.run(None, feed)[0] for feed in feeds]
    got = [session.run(None, feed)[0] for feed in feeds]
    return compare_outputs(want, got), result


def test_the_float_model_really_has_channels_of_very_different_ranges() -> None:
    model = spread_channels_model()
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    probe.graph.output.append(helper.make_tensor_value_info("r0", TensorProto.FLOAT, None))
    session = ort.InferenceSession(probe.SerializeToString())
    r0 = session.run(["r0"], {"x": _images(16, seed=1)[:1]})[0]
    peaks = r0.max(axis=(0, 2, 3))
    assert peaks.max() >= 5.0 and np.sort(peaks)[2] <= 0.6


@pytest.mark.parametrize("keep_on_cpu", [(), ("project",)], ids=["one-region", "cpu-reader"])
def test_per_channel_scales_keep_small_channels_faithful(
    keep_on_cpu: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    model = spread_channels_model()
    figures, result = _fidelity(model, keep_on_cpu)
    assert figures["sqnr_db"] >= 28.0
    assert figures["sqnr_db"] >= figures["constant_sqnr_db"] + 20.0
    assert figures["pearson"] >= 0.999
    # the relu6 output carries channel scales; a region output with them dequantizes per axis
    shifted = [v for v in result.graph.values() if v.type.quant and v.type.quant.channel_shift]
    assert shifted
    if keep_on_cpu:
        axes = [
            a.i
            for n in result.model.graph.node
            if n.op_type == "DequantizeLinear"
            for a in n.attribute
            if a.name == "axis"
        ]
        assert axes == [3]  # NHWC channels, before the border Transpose
    x = _images(1, seed=3)
    assert assert_hardware_model_equals_reference(result.model, {"x": x}) >= 1
    # the same compile with one scale per tensor loses what the channel scales gained
    monkeypatch.setattr(
        quantize_module, "channel_shifts", lambda _, peaks: np.zeros(len(peaks), np.int64)
    )
    per_tensor, _ = _fidelity(model, keep_on_cpu)
    assert per_tensor["sqnr_db"] <= figures["sqnr_db"] - 6.0
