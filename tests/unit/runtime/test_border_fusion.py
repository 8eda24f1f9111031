"""Border fragments (Transpose / QuantizeLinear / DequantizeLinear / a constant Mul between the
graph and an AkidaOp) run fused in numba give bit for bit what their onnxruntime sessions give:
on zoo models (a dynamic-batch one with a batch of 4), and on the values where a different
division, rounding or clamping order would show (halfway points one ulp either side, NaN,
infinities, huge and subnormal values)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from models.samples import smooth_samples
from models.zoo import ZOO
from onnx import TensorProto, helper, numpy_helper

from akidac.api import compile_model
from akidac.passes import CompileOptions
from akidac.runtime import border
from akidac.runtime.session import HybridSession, _BorderStep, _CpuStep

ZOO_MODELS = ["mlp", "conv_net", "activations_net", "concat_branches", "resnet_like"]


def _identical(left: list[np.ndarray], right: list[np.ndarray]) -> bool:
    return len(left) == len(right) and all(
        a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
        for a, b in zip(left, right, strict=True)
    )


def _hard_values(scale: float, count: int, seed: int) -> np.ndarray:
    """Values that tell roundings apart at `scale`: k·scale and (k ± ½)·scale one ulp either
    side, for k over the int8/uint8 range and beyond, plus NaN, ±inf, ±0, huge, subnormal."""
    k = np.arange(-300, 300, dtype=np.float32)
    halves = np.concatenate([(k + 0.5) * np.float32(scale), k * np.float32(scale)])
    near = np.concatenate(
        [halves, np.nextafter(halves, np.float32(np.inf)), np.nextafter(halves, -np.inf)]
    )
    special = np.array(
        [np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, 1e30, -1e30, 1e-40, -1e-40, 3.4e38],
        np.float32,
    )
    pool = np.concatenate([near, special]).astype(np.float32)
    return np.random.default_rng(seed).choice(pool, count)


def _input_scale(model: onnx.ModelProto) -> float:
    constants = {t.name: t for t in model.graph.initializer}
    node = next(n for n in model.graph.node if n.op_type == "QuantizeLinear")
    return float(numpy_helper.to_array(constants[node.input[1]]).reshape(-1)[0])


@pytest.fixture(scope="module")
def zoo_hybrids() -> dict[str, tuple[onnx.ModelProto, dict[str, np.ndarray]]]:
    compiled = {}
    for name in [*ZOO_MODELS, "dynamic_batch"]:
        model = ZOO[name][0]()
        samples = smooth_samples(model, 12, seed=3)
        options = CompileOptions(samples=samples, num_samples=8, fidelity_samples=0)
        compiled[name] = (compile_model(model, options=options).model, samples)
    return compiled


@pytest.mark.parametrize("name", ZOO_MODELS)
def test_fused_borders_match_onnxruntime_bit_for_bit_on_zoo_models(zoo_hybrids, name) -> None:
    hybrid, samples = zoo_hybrids[name]
    fused = HybridSession(hybrid)
    plain = HybridSession(hybrid, fuse_borders=False)
    assert any(isinstance(s, _BorderStep) for s in fused.run_steps)
    assert not any(isinstance(s, _BorderStep) for s in plain.run_steps)
    (input_name,) = samples
    scale = _input_scale(hybrid)
    for index in range(4):
        feed = {input_name: samples[input_name][index : index + 1]}
        assert _identical(fused.run(None, feed), plain.run(None, feed))
        hard = _hard_values(scale, feed[input_name].size, seed=index)
        feed = {input_name: hard.reshape(feed[input_name].shape)}
        assert _identical(fused.run(None, feed), plain.run(None, feed))
    # the traced values of run_all are those of the unfused steps, and the same outputs
    outputs = [o.name for o in fused.get_outputs()]
    env = fused.run_all(feed)
    assert _identical([env[n] for n in outputs], fused.run(None, feed))


def test_a_dynamic_batch_of_4_runs_fused_bit_for_bit(zoo_hybrids) -> None:
    hybrid, samples = zoo_hybrids["dynamic_batch"]
    fused = HybridSession(hybrid)
    plain = HybridSession(hybrid, fuse_borders=False)
    assert fused.batched and any(isinstance(s, _BorderStep) for s in fused.run_steps)
    batch = {"input": samples["input"][:4]}
    result = fused.run(None, batch)
    assert result[0].shape[0] == 4
    assert _identical(result, plain.run(None, batch))
    hard = {"input": _hard_values(_input_scale(hybrid), batch["input"].size, 9).reshape(4, -1)}
    hard["input"] = hard["input"].reshape(batch["input"].shape)
    assert _identical(fused.run(None, hard), plain.run(None, hard))
    # each sample alone gives its row of the batch
    for i in range(4):
        alone = fused.run(None, {"input": batch["input"][i : i + 1]})
        assert alone[0].tobytes() == result[0][i : i + 1].tobytes()


# ------------------------------------------------------------------------ synthetic fragments
def _model(
    nodes: list[onnx.NodeProto],
    x: tuple[str, int, list[int | str]],
    y: tuple[str, int, list[int | str]],
    constants: dict[str, np.ndarray],
) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "fragment",
        [helper.make_tensor_value_info(*x)],
        [helper.make_tensor_value_info(*y)],
        [numpy_helper.from_array(v, k) for k, v in constants.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return onnx.shape_inference.infer_shapes(model)


def _ort(model: onnx.ModelProto, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.add_session_config_entry("session.disable_quant_qdq", "1")
    session = ort.InferenceSession(model.SerializeToString(), options)
    return session.run(None, feed)


def _check_fused(model: onnx.ModelProto, feed: dict[str, np.ndarray]) -> None:
    fused = HybridSession(model)
    assert [type(s) for s in fused.run_steps] == [_BorderStep]
    result = fused.run(None, feed)
    assert _identical(result, HybridSession(model, fuse_borders=False).run(None, feed))
    assert _identical(result, _ort(model, feed))


@pytest.mark.parametrize("zero", [np.uint8(133), np.int8(-128), np.int8(5), np.uint8(0)])
@pytest.mark.parametrize("scale", [0.013788697, 0.1, 3.0, 1e-6])
def test_transpose_quantize_per_tensor_is_onnxruntime_bit_for_bit(zero, scale) -> None:
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], perm=[0, 2, 3, 1]),
        helper.make_node("QuantizeLinear", ["t", "s", "z"], ["y"]),
    ]
    out_type = helper.np_dtype_to_tensor_dtype(np.asarray(zero).dtype)
    constants = {"s": np.array(scale, np.float32), "z": np.array(zero)}
    model = _model(
        nodes, ("x", TensorProto.FLOAT, [2, 3, 20, 21]), ("y", out_type, [2, 20, 21, 3]), constants
    )
    values = _hard_values(scale, 2 * 3 * 20 * 21, seed=1).reshape(2, 3, 20, 21)
    _check_fused(model, {"x": values})


def test_quantize_per_axis_is_onnxruntime_bit_for_bit() -> None:
    scales = np.array([0.02, 0.5, 0.0137], np.float32)
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"], axis=1)]
    constants = {"s": scales, "z": np.array([0, 10, 250], np.uint8)}
    model = _model(
        nodes, ("x", TensorProto.FLOAT, [4, 3, 7]), ("y", TensorProto.UINT8, [4, 3, 7]), constants
    )
    values = np.concatenate([_hard_values(s, 28, seed=2) for s in scales]).reshape(3, 4, 7)
    _check_fused(model, {"x": np.ascontiguousarray(values.transpose(1, 0, 2))})


@pytest.mark.parametrize("dtype", [np.int8, np.uint8])
def test_dequantize_per_axis_then_transpose_is_onnxruntime_bit_for_bit(dtype) -> None:
    channels = 16
    rng = np.random.default_rng(4)
    info = np.iinfo(dtype)
    scales = (rng.random(channels) * 0.1 + 1e-3).astype(np.float32)
    zeros = rng.integers(info.min, info.max, channels).astype(dtype)
    nodes = [
        helper.make_node("DequantizeLinear", ["x", "s", "z"], ["d"], axis=3),
        helper.make_node("Transpose", ["d"], ["y"], perm=[0, 3, 1, 2]),
    ]
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    model = _model(
        nodes,
        ("x", elem, [1, 9, 11, channels]),
        ("y", TensorProto.FLOAT, [1, channels, 9, 11]),
        {"s": scales, "z": zeros},
    )
    x = rng.integers(info.min, info.max + 1, (1, 9, 11, channels)).astype(dtype)
    _check_fused(model, {"x": x})


def test_int32_dequantize_mul_transpose_is_onnxruntime_bit_for_bit() -> None:
    rng = np.random.default_rng(5)
    factor = (rng.random((4,)) * 1e-4).astype(np.float32)
    nodes = [
        helper.make_node("DequantizeLinear", ["x", "s", "z"], ["d"]),
        helper.make_node("Mul", ["d", "f"], ["m"]),
        helper.make_node("Transpose", ["m"], ["y"], perm=[0, 3, 1, 2]),
    ]
    model = _model(
        nodes,
        ("x", TensorProto.INT32, [3, 8, 8, 4]),
        ("y", TensorProto.FLOAT, [3, 4, 8, 8]),
        {"s": np.array(0.37, np.float32), "z": np.array(0, np.int32), "f": factor},
    )
    # beyond 2^24 the int32 → float32 conversion rounds: both must round alike
    x = rng.integers(-(2**31), 2**31 - 1, (3, 8, 8, 4), dtype=np.int64).astype(np.int32)
    _check_fused(model, {"x": x})


@pytest.mark.parametrize("channels", [5, 17])  # rows written directly, through a buffer
def test_a_transposed_mul_constant_is_taken_in_its_own_layout(channels: int) -> None:
    rng = np.random.default_rng(6)
    factor = (rng.random((1, channels, 1, 1)) + 0.5).astype(np.float32)  # per NCHW channel
    nodes = [
        helper.make_node("DequantizeLinear", ["x", "s", "z"], ["d"], axis=3),
        helper.make_node("Transpose", ["d"], ["t"], perm=[0, 3, 1, 2]),
        helper.make_node("Mul", ["f", "t"], ["y"]),
    ]
    model = _model(
        nodes,
        ("x", TensorProto.INT8, [2, 3, 4, channels]),
        ("y", TensorProto.FLOAT, [2, channels, 3, 4]),
        {
            "s": (rng.random(channels) * 0.1).astype(np.float32),
            "z": np.arange(channels, dtype=np.int8),
            "f": factor,
        },
    )
    x = rng.integers(-128, 128, (2, 3, 4, channels)).astype(np.int8)
    _check_fused(model, {"x": x})


def test_parts_that_are_not_border_fragments_stay_in_onnxruntime() -> None:
    def steps(nodes, x, y, constants):  # type: ignore[no-untyped-def]
        return [type(s) for s in HybridSession(_model(nodes, x, y, constants)).run_steps]

    scale, zero = np.array(0.1, np.float32), np.array(0, np.int8)
    dq_softmax = [
        helper.make_node("DequantizeLinear", ["x", "s", "z"], ["d"]),
        helper.make_node("Softmax", ["d"], ["y"], axis=1),
    ]
    shapes = ("x", TensorProto.INT8, [1, 10]), ("y", TensorProto.FLOAT, [1, 10])
    assert steps(dq_softmax, *shapes, {"s": scale, "z": zero}) == [_CpuStep]
    batch_move = [
        helper.make_node("Transpose", ["x"], ["t"], perm=[1, 0]),
        helper.make_node("QuantizeLinear", ["t", "s", "z"], ["y"]),
    ]
    shapes = ("x", TensorProto.FLOAT, [2, 10]), ("y", TensorProto.INT8, [10, 2])
    assert steps(batch_move, *shapes, {"s": scale, "z": zero}) == [_CpuStep]
    along_batch = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"], axis=0)]
    shapes = ("x", TensorProto.FLOAT, [2, 10]), ("y", TensorProto.INT8, [2, 10])
    constants = {"s": np.array([0.1, 0.2], np.float32), "z": np.zeros(2, np.int8)}
    assert steps(along_batch, *shapes, constants) == [_CpuStep]


def test_an_input_the_fragment_was_not_planned_for_runs_in_onnxruntime() -> None:
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"])]
    constants = {"s": np.array(0.1, np.float32), "z": np.array(3, np.uint8)}
    model = _model(
        nodes, ("x", TensorProto.FLOAT, ["N", 6]), ("y", TensorProto.UINT8, ["N", 6]), constants
    )
    session = HybridSession(model)
    (step,) = session.run_steps
    assert isinstance(step, _BorderStep)
    (fragment,) = step.fragments
    assert fragment.accepts(np.zeros((5, 6), np.float32))
    assert not fragment.accepts(np.zeros((5, 6), np.float64))
    assert not fragment.accepts(np.zeros((5, 7), np.float32))
    x = np.asfortranarray(_hard_values(0.1, 30, seed=7).reshape(5, 6))  # not C-contiguous
    assert _identical([fragment.run(x)], _ort(model, {"x": x}))


def test_plan_needs_one_input_and_one_output() -> None:
    node = helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"])
    assert border.plan([node], ["x", "w"], ["y"], {"x": (1, 4)}, {}, {}) is None
    assert border.plan([node], ["x"], [], {"x": (1, 4)}, {}, {}) is None


def test_a_part_of_parallel_border_chains_runs_as_one_fragment_each() -> None:
    """The schedule puts the border work of parallel branches in one CPU part."""
    rng = np.random.default_rng(8)
    nodes = [
        helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 2, 3, 1]),
        helper.make_node("QuantizeLinear", ["xt", "s1", "z1"], ["q1"]),
        helper.make_node("QuantizeLinear", ["x", "s2", "z2"], ["q2"]),
        helper.make_node("DequantizeLinear", ["a", "s3", "z3"], ["d"], axis=3),
        helper.make_node("Transpose", ["d"], ["dt"], perm=[0, 3, 1, 2]),
    ]
    graph = helper.make_graph(
        nodes,
        "branches",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 8, 8]),
            helper.make_tensor_value_info("a", TensorProto.INT8, [2, 8, 8, 16]),
        ],
        [
            helper.make_tensor_value_info("q1", TensorProto.UINT8, [2, 8, 8, 3]),
            helper.make_tensor_value_info("q2", TensorProto.INT8, [2, 3, 8, 8]),
            helper.make_tensor_value_info("dt", TensorProto.FLOAT, [2, 16, 8, 8]),
        ],
        [
            numpy_helper.from_array(np.array(0.05, np.float32), "s1"),
            numpy_helper.from_array(np.array(128, np.uint8), "z1"),
            numpy_helper.from_array(np.array(0.02, np.float32), "s2"),
            numpy_helper.from_array(np.array(-3, np.int8), "z2"),
            numpy_helper.from_array((rng.random(16) * 0.1).astype(np.float32), "s3"),
            numpy_helper.from_array(rng.integers(-9, 9, 16).astype(np.int8), "z3"),
        ],
    )
    model = onnx.shape_inference.infer_shapes(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    )
    session = HybridSession(model)
    (step,) = session.run_steps
    assert isinstance(step, _BorderStep) and len(step.fragments) == 3
    feed = {
        "x": _hard_values(0.05, 2 * 3 * 8 * 8, seed=8).reshape(2, 3, 8, 8),
        "a": rng.integers(-128, 128, (2, 8, 8, 16)).astype(np.int8),
    }
    result = session.run(None, feed)
    assert _identical(result, _ort(model, feed))
    assert _identical(result, HybridSession(model, fuse_borders=False).run(None, feed))


def test_a_part_with_one_chain_that_is_not_a_fragment_stays_whole() -> None:
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
        # neither a border fragment nor an elementwise program (MLAS's Sigmoid approximation)
        helper.make_node("Sigmoid", ["x"], ["r"]),
    ]
    graph = helper.make_graph(
        nodes,
        "mixed",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6])],
        [
            helper.make_tensor_value_info("q", TensorProto.INT8, [1, 6]),
            helper.make_tensor_value_info("r", TensorProto.FLOAT, [1, 6]),
        ],
        [
            numpy_helper.from_array(np.array(0.1, np.float32), "s"),
            numpy_helper.from_array(np.array(0, np.int8), "z"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    assert [type(s) for s in HybridSession(model).run_steps] == [_CpuStep]
