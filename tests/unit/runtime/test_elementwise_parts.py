"""CPU parts of elementwise arithmetic run as numba row programs (`runtime/elementwise.py`), bit
for bit as onnxruntime runs them: the SE-block global mean and scale, PReLU and residual Add
between regions, Div/Sub by constants, an input normalisation; edge values (NaN, infinities,
halfway rounding, subnormals, -0.0); batches; parts that are not row programs stay in
onnxruntime; and the onnxruntime transpose optimizer is held back where it would round a float
value that a part gives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from akidac.api import compile_model
from akidac.passes import CompileOptions
from akidac.runtime import elementwise
from akidac.runtime.session import (
    TRANSPOSE_OPTIMIZERS,
    HybridSession,
    _FusedStep,
    _matches_onnxruntime,
)

OPSET = 17


def _c(name: str, value: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value), name)


def _session(nodes, inputs, outputs, inits, opset=OPSET) -> ort.InferenceSession:  # type: ignore[no-untyped-def]
    """onnxruntime as `HybridSession` runs a border CPU part."""
    graph = helper.make_graph(nodes, "part", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    options = ort.SessionOptions()
    options.add_session_config_entry("session.disable_quant_qdq", "1")
    return ort.InferenceSession(
        model.SerializeToString(),
        options,
        providers=["CPUExecutionProvider"],
        disabled_optimizers=list(TRANSPOSE_OPTIMIZERS),
    )


def _plan(nodes, inputs, outputs, inits, orders=None, opset=OPSET):  # type: ignore[no-untyped-def]
    shapes = {
        v.name: tuple(d.dim_value for d in v.type.tensor_type.shape.dim) for v in inputs + outputs
    }
    types = {v.name: v.type.tensor_type.elem_type for v in inputs + outputs}
    graph = helper.make_graph(nodes, "part", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    for value in inferred.graph.value_info:
        shapes[value.name] = tuple(d.dim_value for d in value.type.tensor_type.shape.dim)
        types[value.name] = value.type.tensor_type.elem_type
    constants = {t.name: t for t in inits}
    return elementwise.plan_part(
        nodes, [v.name for v in inputs], [v.name for v in outputs], shapes, types, constants, orders
    )


def _same(parts, session, feeds) -> None:  # type: ignore[no-untyped-def]
    """The parts give onnxruntime's bytes, output by output."""
    names = [o.name for o in session.get_outputs()]
    expected = session.run(names, feeds)
    env = dict(feeds)
    for part in parts:
        assert part.accepts(env)
        part.run(env)
    for name, value in zip(names, expected, strict=True):
        got = np.ascontiguousarray(env[name])
        assert got.dtype == value.dtype and got.shape == value.shape, name
        assert got.tobytes() == value.tobytes(), name


def _edge_floats(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    values = (rng.standard_normal(shape) * 8).astype(np.float32)
    flat = values.reshape(-1)
    specials = np.array(
        [np.nan, np.inf, -np.inf, 0.5, 1.5, 2.5, -0.5, -2.5, -0.0, 0.0, 1e-40, -1e-40, 3e38],
        np.float32,
    )
    flat[: specials.size] = specials
    return values


@pytest.mark.parametrize("hw", [(7, 7), (8, 8), (1, 3), (5, 9)])
def test_se_global_mean_matches_onnxruntime_in_mlas_lane_order(hw: tuple[int, int]) -> None:
    """DequantizeLinear → Transpose → GlobalAveragePool → Transpose → QuantizeLinear: MLAS sums a
    channel's pixels in four lanes, then the pixels left over (7×7 = 49 leaves one, 1×3 has
    no full vector)."""
    h, w = hw
    c = 24
    nodes = [
        helper.make_node("DequantizeLinear", ["x", "s", "z"], ["d"]),
        helper.make_node("Transpose", ["d"], ["t"], perm=[0, 3, 1, 2]),
        helper.make_node("GlobalAveragePool", ["t"], ["g"]),
        helper.make_node("Transpose", ["g"], ["g2"], perm=[0, 2, 3, 1]),
        helper.make_node("QuantizeLinear", ["g2", "s2", "z2"], ["y"]),
    ]
    inits = [
        _c("s", np.float32(0.0371)),
        _c("z", np.int8(3)),
        _c("s2", np.float32(0.0123)),
        _c("z2", np.int8(-2)),
    ]
    inputs = [helper.make_tensor_value_info("x", TensorProto.INT8, [1, h, w, c])]
    outputs = [helper.make_tensor_value_info("y", TensorProto.INT8, [1, 1, 1, c])]
    parts = _plan(nodes, inputs, outputs, inits)
    assert parts is not None and len(parts[0].stages) == 2  # the pixels, then the means
    session = _session(nodes, inputs, outputs, inits)
    rng = np.random.default_rng(0)
    for _ in range(5):
        _same(parts, session, {"x": rng.integers(-128, 128, (1, h, w, c)).astype(np.int8)})


def test_se_scale_residual_prelu_and_float_output_match_onnxruntime() -> None:
    """An int32 region output scaled per channel, transposed to NCHW, plus a float residual,
    PReLU, an SE scale from an int8 (1,1,1,C) region output; both the float value (read by a
    later part) and the quantized NHWC value are outputs. Edge floats in the residual."""
    c, h, w = 16, 6, 5
    rng = np.random.default_rng(1)
    nodes = [
        helper.make_node("DequantizeLinear", ["acc", "s32", "z32"], ["a"]),
        helper.make_node("Mul", ["a", "channel_scale"], ["a2"]),
        helper.make_node("Transpose", ["a2"], ["a_nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Add", ["a_nchw", "skip"], ["sum"]),
        helper.make_node("PRelu", ["sum", "slope"], ["act"]),
        helper.make_node("DequantizeLinear", ["se", "s8", "z8"], ["se_f"]),
        helper.make_node("Transpose", ["se_f"], ["se_nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Mul", ["act", "se_nchw"], ["scaled"]),
        helper.make_node("Div", ["scaled", "divisor"], ["divided"]),
        helper.make_node("Sub", ["divided", "offset"], ["f"]),
        helper.make_node("Transpose", ["f"], ["f_nhwc"], perm=[0, 2, 3, 1]),
        helper.make_node("QuantizeLinear", ["f_nhwc", "sq", "zq"], ["q"]),
    ]
    inits = [
        _c("s32", np.float32(0.001)),
        _c("z32", np.int32(0)),
        _c("channel_scale", rng.uniform(0.5, 2, c).astype(np.float32)),
        _c("slope", rng.uniform(-0.5, 0.5, (c, 1, 1)).astype(np.float32)),
        _c("s8", np.float32(1 / 255)),
        _c("z8", np.uint8(0)),
        _c("divisor", np.float32(3.0)),
        _c("offset", rng.standard_normal((c, 1, 1)).astype(np.float32)),
        _c("sq", np.full(c, 0.05, np.float32)),
        _c("zq", np.zeros(c, np.int8)),
    ]
    inputs = [
        helper.make_tensor_value_info("acc", TensorProto.INT32, [1, h, w, c]),
        helper.make_tensor_value_info("skip", TensorProto.FLOAT, [1, c, h, w]),
        helper.make_tensor_value_info("se", TensorProto.UINT8, [1, 1, 1, c]),
    ]
    outputs = [
        helper.make_tensor_value_info("act", TensorProto.FLOAT, [1, c, h, w]),
        helper.make_tensor_value_info("q", TensorProto.INT8, [1, h, w, c]),
    ]
    nodes[-1].attribute.append(helper.make_attribute("axis", 3))
    parts = _plan(nodes, inputs, outputs, inits)
    assert parts is not None and len(parts) == 1
    session = _session(nodes, inputs, outputs, inits)
    for _ in range(4):
        feeds = {
            "acc": rng.integers(-(2**26), 2**26, (1, h, w, c)).astype(np.int32),
            "skip": _edge_floats(rng, (1, c, h, w)),
            "se": rng.integers(0, 256, (1, 1, 1, c)).astype(np.uint8),
        }
        _same(parts, session, feeds)
    # a float output lies in the frame's (NHWC) order, exposed with its own (NCHW) shape
    env = dict(feeds)
    parts[0].run(env)
    assert env["act"].shape == (1, c, h, w) and not env["act"].flags.c_contiguous
    assert parts[0].memory_orders == {"act": (0, 2, 3, 1)}


def test_a_batch_and_an_input_in_frame_order_give_the_same_bits() -> None:
    """A batch of 3 runs whole; an input that an earlier fused part left in NHWC memory
    (`memory_orders`) is read in place, with the same result as a contiguous one."""
    c, h, w = 8, 4, 4
    nodes = [
        helper.make_node("PRelu", ["x", "slope"], ["p"]),
        helper.make_node("Transpose", ["p"], ["p_nhwc"], perm=[0, 2, 3, 1]),
        helper.make_node("QuantizeLinear", ["p_nhwc", "s", "z"], ["q"]),
    ]
    inits = [
        _c("slope", np.linspace(-1, 1, c, dtype=np.float32).reshape(c, 1, 1)),
        _c("s", np.float32(0.1)),
        _c("z", np.uint8(128)),
    ]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, h, w])]
    outputs = [helper.make_tensor_value_info("q", TensorProto.UINT8, [1, h, w, c])]
    session = _session(nodes, inputs, outputs, inits)
    rng = np.random.default_rng(2)
    x = _edge_floats(rng, (3, c, h, w))
    in_place = _plan(nodes, inputs, outputs, inits, {"x": (0, 2, 3, 1)})
    contiguous = _plan(nodes, inputs, outputs, inits)
    assert in_place is not None and contiguous is not None
    expected = np.concatenate([session.run(["q"], {"x": x[k : k + 1]})[0] for k in range(3)])
    nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)  # same values
    for parts, value in ((in_place, nhwc), (contiguous, x)):
        env = {"x": value}
        assert parts[0].accepts(env)
        parts[0].run(env)
        assert env["q"].tobytes() == expected.tobytes()
    # laid out otherwise than planned: not accepted (onnxruntime runs the part)
    assert not in_place[0].accepts({"x": x})


def test_the_input_normalisation_runs_in_long_rows() -> None:
    """Mul / Add by per-channel constants of a 3-channel NHWC image, then QuantizeLinear: rows of
    3 values would cost more to walk than to compute, so the kernel merges them."""
    nodes = [
        helper.make_node("Mul", ["x", "k"], ["m"]),
        helper.make_node("Add", ["m", "b"], ["n"]),
        helper.make_node("QuantizeLinear", ["n", "s", "z"], ["q"]),
    ]
    inits = [
        _c("k", np.array([1 / 58.4, 1 / 57.1, 1 / 57.4], np.float32)),
        _c("b", np.array([-2.1, -2.0, -1.8], np.float32)),
        _c("s", np.float32(0.02)),
        _c("z", np.int8(0)),
    ]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 32, 32, 3])]
    outputs = [helper.make_tensor_value_info("q", TensorProto.INT8, [1, 32, 32, 3])]
    parts = _plan(nodes, inputs, outputs, inits)
    assert parts is not None and parts[0].kernel_item[2] > 3
    rng = np.random.default_rng(3)
    x = _edge_floats(rng, (1, 32, 32, 3))
    x[np.abs(x) < 1e3] *= 30  # a normalised image's range, the edge values kept
    _same(parts, _session(nodes, inputs, outputs, inits), {"x": x})


@pytest.mark.parametrize("opset", [11, 17])
def test_relu_clip_and_hardsigmoid_match_onnxruntime_at_edge_values(opset: int) -> None:
    """Eigen's max and min let a NaN and -0.0 through (Relu(-0.0) is -0.0); HardSigmoid is
    alpha·x then + beta, two roundings, then bounded to [0, 1]; Clip's bounds are inputs from
    opset 11 (one of them may be missing)."""
    c = 16
    nodes = [
        helper.make_node("DequantizeLinear", ["a", "s", "z"], ["d"]),
        helper.make_node("Transpose", ["d"], ["t"], perm=[0, 3, 1, 2]),
        helper.make_node("Add", ["t", "x"], ["sum"]),
        helper.make_node("Relu", ["sum"], ["r"]),
        helper.make_node("HardSigmoid", ["x"], ["h"], alpha=0.1666667, beta=0.5),
        helper.make_node("Mul", ["r", "h"], ["m"]),
        helper.make_node("Clip", ["m", "lo", ""], ["clipped"]),
        helper.make_node("Clip", ["sum", "lo", "hi"], ["both"]),
        helper.make_node("Sub", ["clipped", "both"], ["f"]),
        helper.make_node("Transpose", ["f"], ["f_nhwc"], perm=[0, 2, 3, 1]),
        helper.make_node("QuantizeLinear", ["f_nhwc", "sq", "zq"], ["q"]),
    ]
    inits = [
        _c("s", np.float32(0.25)),
        _c("z", np.int8(0)),
        _c("lo", np.float32(-1.5)),
        _c("hi", np.float32(6.0)),
        _c("sq", np.float32(0.1)),
        _c("zq", np.int8(0)),
    ]
    inputs = [
        helper.make_tensor_value_info("a", TensorProto.INT8, [1, 5, 6, c]),
        helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, 5, 6]),
    ]
    outputs = [
        helper.make_tensor_value_info("r", TensorProto.FLOAT, [1, c, 5, 6]),
        helper.make_tensor_value_info("h", TensorProto.FLOAT, [1, c, 5, 6]),
        helper.make_tensor_value_info("q", TensorProto.INT8, [1, 5, 6, c]),
    ]
    parts = _plan(nodes, inputs, outputs, inits, opset=opset)
    assert parts is not None
    session = _session(nodes, inputs, outputs, inits, opset=opset)
    rng = np.random.default_rng(7)
    for _ in range(4):
        feeds = {
            "a": rng.integers(-128, 128, (1, 5, 6, c)).astype(np.int8),
            "x": _edge_floats(rng, (1, c, 5, 6)),
        }
        _same(parts, session, feeds)


def test_clip_bounds_as_attributes_before_opset_11() -> None:
    steps = elementwise._activation_steps(
        helper.make_node("Clip", ["x"], ["y"], min=-1.0, max=2.0), {}
    )
    assert len(steps) == 1 and steps[0][0] == elementwise.OP_CLIP
    assert (float(steps[0][2][0]), float(steps[0][2][1])) == (-1.0, 2.0)


def test_independent_pieces_get_a_program_each() -> None:
    """Two heads' dequantizations in one CPU part, of different sizes."""
    nodes = [
        helper.make_node("DequantizeLinear", ["a", "s", "z"], ["fa"]),
        helper.make_node("DequantizeLinear", ["b", "s", "z"], ["fb"]),
    ]
    inits = [_c("s", np.float32(0.5)), _c("z", np.int32(0))]
    inputs = [
        helper.make_tensor_value_info("a", TensorProto.INT32, [1, 15]),
        helper.make_tensor_value_info("b", TensorProto.INT32, [1, 213]),
    ]
    outputs = [
        helper.make_tensor_value_info("fa", TensorProto.FLOAT, [1, 15]),
        helper.make_tensor_value_info("fb", TensorProto.FLOAT, [1, 213]),
    ]
    parts = _plan(nodes, inputs, outputs, inits)
    assert parts is not None and len(parts) == 2
    rng = np.random.default_rng(4)
    feeds = {
        name: rng.integers(-(2**30), 2**30, (1, n)).astype(np.int32)
        for name, n in (("a", 15), ("b", 213))
    }
    _same(parts, _session(nodes, inputs, outputs, inits), feeds)


def test_parts_that_are_not_row_programs_stay_in_onnxruntime() -> None:
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 6, 6])]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 6, 6])]
    conv = [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])]
    assert _plan(conv, inputs, outputs, [_c("w", np.ones((4, 4, 3, 3), np.float32))]) is None
    # a constant that varies along H: not a row of the frame
    along_h = [helper.make_node("Mul", ["x", "k"], ["y"])]
    assert _plan(along_h, inputs, outputs, [_c("k", np.ones((1, 1, 6, 1), np.float32))]) is None
    sigmoid = [helper.make_node("Sigmoid", ["x"], ["y"])]  # MLAS's approximation: not here
    assert _plan(sigmoid, inputs, outputs, []) is None


def test_a_program_that_differs_from_onnxruntime_is_not_used() -> None:
    """The load-time probe: a program whose constants were changed fails the comparison."""
    nodes = [
        helper.make_node("Mul", ["x", "k"], ["m"]),
        helper.make_node("QuantizeLinear", ["m", "s", "z"], ["q"]),
    ]
    inits = [_c("k", np.float32(1.5)), _c("s", np.float32(0.25)), _c("z", np.int8(0))]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 2, 16])]
    outputs = [helper.make_tensor_value_info("q", TensorProto.INT8, [1, 2, 2, 16])]
    parts = _plan(nodes, inputs, outputs, inits)
    session = _session(nodes, inputs, outputs, inits)

    class Step:
        inputs = ("x",)
        outputs = ("q",)
        run = session.run

    shapes = {"x": (1, 2, 2, 16)}
    types = {"x": TensorProto.FLOAT}
    assert parts is not None and _matches_onnxruntime(parts, Step, shapes, types)  # type: ignore[arg-type]
    parts[0].consts[0] *= 1.05  # the Mul's constant, not the scale (their ratio would stay)
    parts[0].kernel_consts[0] *= 1.05
    assert not _matches_onnxruntime(parts, Step, shapes, types)  # type: ignore[arg-type]


def _se_prelu_model() -> onnx.ModelProto:
    """conv → PReLU → conv, a squeeze-excitation scale (x · sigmoid(conv(GAP(x)))) and a
    residual Add: the CPU parts between the Akida regions are elementwise."""
    rng = np.random.default_rng(5)
    c = 16

    def w(name: str, shape: tuple[int, ...]) -> onnx.TensorProto:
        return _c(
            name, (rng.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))).astype(np.float32)
        )

    nodes = [
        helper.make_node("Conv", ["x", "w0"], ["c0"], pads=[1] * 4),
        helper.make_node("PRelu", ["c0", "slope"], ["p0"]),
        helper.make_node("Conv", ["p0", "w1"], ["c1"], pads=[1] * 4),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("GlobalAveragePool", ["r1"], ["g"]),
        helper.make_node("Conv", ["g", "w2"], ["e"]),
        helper.make_node("Sigmoid", ["e"], ["gate"]),
        helper.make_node("Mul", ["r1", "gate"], ["se"]),
        helper.make_node("Add", ["se", "p0"], ["res"]),
        helper.make_node("Conv", ["res", "w3"], ["y"], pads=[1] * 4),
    ]
    inits = [
        w("w0", (c, 3, 3, 3)),
        _c("slope", np.full((c, 1, 1), 0.2, np.float32)),
        w("w1", (c, c, 3, 3)),
        w("w2", (c, c, 1, 1)),
        w("w3", (8, c, 3, 3)),
    ]
    graph = helper.make_graph(
        nodes,
        "se_prelu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 16, 16])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])


def test_a_compiled_model_runs_its_elementwise_parts_fused_bit_for_bit(tmp_path: Path) -> None:
    onnx.save(_se_prelu_model(), tmp_path / "float.onnx")
    options = CompileOptions(num_samples=4, min_region_sqnr=None, min_output_sqnr=None)
    compile_model(tmp_path / "float.onnx", tmp_path / "hybrid.onnx", options=options)
    fused = HybridSession(tmp_path / "hybrid.onnx")
    plain = HybridSession(tmp_path / "hybrid.onnx", fuse_borders=False)
    assert any(isinstance(step, _FusedStep) for step in fused.run_steps)
    rng = np.random.default_rng(6)
    for _ in range(3):
        x = rng.standard_normal((1, 3, 16, 16)).astype(np.float32)
        for a, b in zip(fused.run(None, {"x": x}), plain.run(None, {"x": x}), strict=True):
            assert a.flags.c_contiguous and a.tobytes() == b.tobytes()
