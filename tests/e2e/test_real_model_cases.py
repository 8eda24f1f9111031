"""What real exported models do, reduced to small models built in code: every one compiles,
runs and stays faithful (issue "Real models: every valid ONNX model compiles…")."""

from __future__ import annotations

import itertools

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from models import realistic
from models.zoo import ZOO
from onnx import TensorProto, helper, numpy_helper

from akidac.api import analyze, compile_model, estimate_device
from akidac.errors import AllocationError
from akidac.metrics import compare_outputs
from akidac.passes import CompileOptions
from akidac.runtime.session import HybridSession


def _float(model: onnx.ModelProto, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), options).run(None, feed)


def _fidelity(model: onnx.ModelProto, hybrid: onnx.ModelProto, count: int = 6) -> dict:
    """Per-sample figures of the first output, on fresh standard-normal inputs."""
    rng = np.random.default_rng(42)
    session = HybridSession(hybrid)
    (info,) = session.get_inputs()
    shape = [d if isinstance(d, int) else 1 for d in info.shape]
    feeds = [{info.name: rng.standard_normal(shape).astype(np.float32)} for _ in range(count)]
    want = [_float(model, feed)[0] for feed in feeds]
    got = [session.run(None, feed)[0] for feed in feeds]
    return compare_outputs(want, got)


def _targets(report: dict) -> dict[str, tuple[str, list[str]]]:
    return {n["name"]: (n["target"], [r["code"] for r in n["reasons"]]) for n in report["nodes"]}


def test_a_pruned_channel_with_near_zero_weights_is_quantized_exactly() -> None:
    """PP-OCR: 'output scale ratio 5.14e-35 is below what an 8-bit multiplier … can express'."""
    model = realistic.conv_stack(dead_channel_scale=1e-30)
    result = compile_model(model, options=CompileOptions(num_samples=16))
    targets = _targets(result.report)
    assert all(targets[f"conv{i}"][0] == "akida" for i in range(3))
    figures = _fidelity(model, result.model)
    assert figures["sqnr_db"] >= 20 and figures["sqnr_db"] > figures["constant_sqnr_db"] + 3


def test_a_layer_quantization_cannot_express_runs_on_the_cpu_and_the_rest_compiles() -> None:
    """A conv whose float output overflows has no calibrated range: it (and the layers that
    read its inf output) go to the CPU with AK-QUANT; the first conv stays on Akida."""
    model = realistic.conv_stack(overflow_layer=True)
    result = compile_model(model, options=CompileOptions(num_samples=8, fidelity_samples=0))
    targets = _targets(result.report)
    assert targets["conv1"] == ("cpu", ["AK-QUANT"])
    assert targets["conv0"][0] == "akida"
    assert "conv1" in result.analyses["cpu_fallback"]


def test_a_log_mel_front_end_stays_as_accurate_as_the_float_model() -> None:
    """Conv STFT → x²+y² → MatMul → Log: quantizing the power spectrum before the Log destroyed
    the output (Pearson 0.30). A region that computes nothing of the model's own (an Add and an
    inserted identity layer) is never created, so the output is exact."""
    model = realistic.log_mel()
    result = compile_model(model, options=CompileOptions(num_samples=8))
    rng = np.random.default_rng(0)
    (info,) = HybridSession(result.model).get_inputs()
    feeds = [{"audio": rng.standard_normal(info.shape).astype(np.float32)} for _ in range(4)]
    session = HybridSession(result.model)
    figures = compare_outputs(
        [_float(model, f)[0] for f in feeds], [session.run(None, f)[0] for f in feeds]
    )
    assert figures["sqnr_db"] >= 40 and figures["pearson"] >= 0.999
    assert _targets(result.report)["power"][1] == ["AK-REGION-NO-MACS"]


def test_an_identity_before_the_graph_output_is_removed_not_cpu_work() -> None:
    report = analyze(realistic.conv_stack(identity_before_output=True))
    assert _targets(report)["output_identity"][0] == "removed"
    mlp = ZOO["mlp"][0]()
    graph = mlp.graph
    last = graph.output[0].name
    graph.node.append(helper.make_node("Identity", [last], ["final"], name="final_identity"))
    graph.output[0].name = "final"
    report = analyze(mlp)
    assert report["shares"]["nodes"]["akida"] > 0.5
    assert _targets(report)["final_identity"][0] == "removed"
    assert report["summary"]["nodes_on_cpu"] == 0


def test_keep_on_cpu_moves_a_node_with_its_own_reason_code() -> None:
    options = CompileOptions(num_samples=4, fidelity_samples=0, keep_on_cpu=("conv2",))
    result = compile_model(realistic.conv_stack(), options=options)
    assert _targets(result.report)["conv2"] == ("cpu", ["AK-USER-CPU"])
    assert _targets(result.report)["conv0"][0] == "akida"


def test_the_fidelity_guard_moves_a_region_below_its_threshold_to_the_cpu() -> None:
    model = realistic.conv_stack()
    strict = CompileOptions(num_samples=8, fidelity_samples=0, min_region_sqnr=90.0)
    result = compile_model(model, options=strict)
    assert result.report["summary"]["regions"] == 0
    assert _targets(result.report)["conv0"] == ("cpu", ["AK-REGION-FIDELITY"])
    reason = next(n for n in result.report["nodes"] if n["name"] == "conv0")["reasons"][0]
    assert "dB" in reason["message"] and "90" in reason["message"]
    loose = compile_model(model, options=CompileOptions(num_samples=8, fidelity_samples=0))
    assert loose.report["summary"]["regions"] >= 1
    assert all(sqnr >= 20 for sqnr in loose.analyses["region_sqnr"].values())


def test_the_fidelity_guard_splits_a_region_at_the_layer_where_it_drifts() -> None:
    """conv0 holds 35 dB on its own, the region conv0…conv2 does not: only the layers from
    where it drifts go to the CPU (a whole-region guard would move conv0 as well)."""
    options = CompileOptions(num_samples=8, fidelity_samples=0, min_region_sqnr=35.0)
    result = compile_model(realistic.conv_stack(), options=options)
    targets = _targets(result.report)
    assert targets["conv0"][0] == "akida"
    assert targets["conv1"] == ("cpu", ["AK-REGION-FIDELITY"])
    reason = next(n for n in result.report["nodes"] if n["name"] == "conv1")["reasons"][0]
    assert "first drifts" in reason["message"]
    assert all(sqnr >= 35.0 for sqnr in result.analyses["region_sqnr"].values())


def _wide_net(channels: int = 64, layers: int = 8) -> onnx.ModelProto:
    """A stack of wide 3×3 convs: more NPs than a one-node device has."""
    rng = np.random.default_rng(3)
    nodes, inits, x, cin = [], [], "x", 3
    for i in range(layers):
        w = rng.normal(scale=1 / np.sqrt(cin * 9), size=(channels, cin, 3, 3)).astype(np.float32)
        inits.append(numpy_helper.from_array(w, f"w{i}"))
        nodes.append(helper.make_node("Conv", [x, f"w{i}"], [f"c{i}"], f"conv{i}", pads=[1] * 4))
        nodes.append(helper.make_node("Relu", [f"c{i}"], [f"r{i}"], f"relu{i}"))
        x, cin = f"r{i}", channels
    graph = helper.make_graph(
        nodes,
        "wide",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, channels, 16, 16])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_a_model_larger_than_the_device_runs_in_several_passes_and_all_views_agree() -> None:
    model = _wide_net()
    options = CompileOptions(device="custom:1", num_samples=4, fidelity_samples=0)
    result = compile_model(model, options=options)
    (region,) = result.report["regions"]
    assert region["passes"] > 1 and region["weight_bytes_reloaded"] > 0
    assert result.report["summary"]["hardware_passes"] == region["passes"]
    (program,) = result.programs
    assert len(program.passes) == region["passes"]
    report = analyze(model, options=CompileOptions(device="custom:1"))
    device = estimate_device(model, options=CompileOptions(device="custom:1"))
    assert report["regions"][0]["passes"] == region["passes"]
    assert report["regions"][0]["nps"] == region["nps"]
    assert len(device["passes"][0]["passes"]) == region["passes"]
    assert sum(layer["nps"] for layer in device["layers"]) == region["nps"]
    figures = _fidelity(model, result.model, count=3)
    assert figures["sqnr_db"] >= 20


def test_strict_device_keeps_the_one_pass_rule() -> None:
    options = CompileOptions(
        device="custom:1", num_samples=4, fidelity_samples=0, strict_device=True
    )
    with pytest.raises(AllocationError) as caught:
        compile_model(_wide_net(), options=options)
    assert caught.value.exit_code == 5 and caught.value.code == "AK-DEVICE-TOO-SMALL"


def _one_sided_input_model(kernel: int) -> onnx.ModelProto:
    """x → Abs (CPU) → Conv k×k 'same' → Relu → Conv 1×1: the first conv reads a one-sided
    value from the CPU, like a conv after a hardswish that Akida cannot run."""
    rng = np.random.default_rng(7)
    w1 = (rng.standard_normal((16, 8, kernel, kernel)) * 0.3).astype(np.float32)
    w2 = (rng.standard_normal((4, 16, 1, 1)) * 0.3).astype(np.float32)
    pad = kernel // 2
    nodes = [
        helper.make_node("Abs", ["x"], ["a"], name="abs"),
        helper.make_node("Conv", ["a", "w1"], ["c1"], name="conv1", pads=[pad] * 4),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2"], ["y"], name="conv2"),
    ]
    graph = helper.make_graph(
        nodes,
        "one_sided",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 10, 10])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 10, 10])],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _border_zero_points(hybrid: onnx.ModelProto) -> list[int]:
    consts = {t.name: numpy_helper.to_array(t) for t in hybrid.graph.initializer}
    return [int(consts[n.input[2]]) for n in hybrid.graph.node if n.op_type == "QuantizeLinear"]


def test_a_one_sided_region_input_read_by_a_1x1_conv_gets_a_zero_point_and_one_more_bit() -> None:
    model = _one_sided_input_model(kernel=1)
    result = compile_model(model, options=CompileOptions(fidelity_samples=0))
    (zero_point,) = _border_zero_points(result.model)
    assert zero_point < -100  # [0, high] spread over all 256 int8 codes
    figures = _fidelity(model, result.model)
    assert figures["sqnr_db"] >= 30.0
    assert figures["sqnr_db"] >= figures["constant_sqnr_db"] + 20.0


def test_a_one_sided_region_input_read_by_a_padded_conv_stays_symmetric() -> None:
    """A padded pixel is code 0: with a zero point it would read as −z·s, not 0."""
    model = _one_sided_input_model(kernel=3)
    result = compile_model(model, options=CompileOptions(fidelity_samples=0))
    assert _border_zero_points(result.model) == [0]
    assert _fidelity(model, result.model)["sqnr_db"] >= 25.0


def _paddle_like_reshape_model() -> onnx.ModelProto:
    """PaddleOCR's classifier head at opset 11: the Reshape target is computed
    (Shape → Slice → Cast, a Constant → Cast, Concat), which ONNX shape inference does not
    resolve, and an Identity stands before the graph output."""
    rng = np.random.default_rng(0)
    w = (rng.standard_normal((8, 4, 3, 3)) * 0.3).astype(np.float32)
    ints = {
        "zero1": np.array([0], np.int64),
        "one1": np.array([1], np.int64),
    }
    fill = numpy_helper.from_array(np.array([-1], np.int32))
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1] * 4),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("GlobalAveragePool", ["r"], ["g"], name="gap"),
        helper.make_node("Shape", ["g"], ["s"], name="shape"),
        helper.make_node("Slice", ["s", "zero1", "one1"], ["n"], name="slice"),
        helper.make_node("Cast", ["n"], ["n64"], name="cast1", to=TensorProto.INT64),
        helper.make_node("Constant", [], ["fill"], name="fill", value=fill),
        helper.make_node("Cast", ["fill"], ["fill64"], name="cast2", to=TensorProto.INT64),
        helper.make_node("Concat", ["n64", "fill64"], ["target"], name="concat", axis=-1),
        helper.make_node("Reshape", ["g", "target"], ["flat"], name="reshape"),
        helper.make_node("Softmax", ["flat"], ["sm"], name="softmax"),
        helper.make_node("Identity", ["sm"], ["y"], name="identity"),
    ]
    graph = helper.make_graph(
        nodes,
        "paddle_like",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [-1, 8])],
        [numpy_helper.from_array(w, "w")]
        + [numpy_helper.from_array(v, k) for k, v in ints.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])


def test_a_shape_that_onnx_inference_leaves_unknown_is_read_off_onnxruntime() -> None:
    """Without it the hybrid's graph output had no shape: an invalid model (exit 6 at load)."""
    model = _paddle_like_reshape_model()
    result = compile_model(model, options=CompileOptions(fidelity_samples=0))
    onnx.checker.check_model(result.model)
    (output,) = result.model.graph.output
    assert [d.dim_value for d in output.type.tensor_type.shape.dim] == [1, 8]
    assert _fidelity(model, result.model)["sqnr_db"] >= 25.0


def _written_hardswish_model(division_first: bool, affine: bool, opset: int) -> onnx.ModelProto:
    """Conv → x · Clip(x + 3, 0, 6) / 6 (as TensorFlow and Paddle export HardSwish) → an
    optional scalar affine (Paddle's learnable affine block) → Conv 3×3."""
    rng = np.random.default_rng(3)
    inits = {
        "w1": (rng.standard_normal((8, 3, 3, 3)) * 0.4).astype(np.float32),
        "w2": (rng.standard_normal((8, 8, 3, 3)) * 0.2).astype(np.float32),
        "three": np.array(3.0, np.float32),
        "zero": np.array(0.0, np.float32),
        "six": np.array(6.0, np.float32),
        "a": np.array(1.3, np.float32),
        "b": np.array(-0.2, np.float32),
    }
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c"], name="conv1", pads=[1] * 4),
        helper.make_node("Add", ["c", "three"], ["p"], name="plus3"),
        helper.make_node("Clip", ["p", "zero", "six"], ["k"], name="relu6"),
    ]
    if division_first:
        nodes += [
            helper.make_node("Div", ["k", "six"], ["g"], name="div6"),
            helper.make_node("Mul", ["c", "g"], ["h"], name="mul"),
        ]
    else:
        nodes += [
            helper.make_node("Mul", ["c", "k"], ["m"], name="mul"),
            helper.make_node("Div", ["m", "six"], ["h"], name="div6"),
        ]
    last = "h"
    if affine:
        nodes += [
            helper.make_node("Mul", ["a", "h"], ["ha"], name="affine_mul"),
            helper.make_node("Add", ["ha", "b"], ["hb"], name="affine_add"),
        ]
        last = "hb"
    nodes.append(helper.make_node("Conv", [last, "w2"], ["y"], name="conv2", pads=[1] * 4))
    graph = helper.make_graph(
        nodes,
        "written_hardswish",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 16, 16])],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


@pytest.mark.parametrize(
    ("division_first", "affine", "opset"),
    [(False, False, 17), (True, False, 13), (False, True, 11), (True, True, 12)],
)
def test_a_written_out_hardswish_and_the_affine_after_it_fuse_into_one_lookup_table(
    division_first: bool, affine: bool, opset: int
) -> None:
    model = _written_hardswish_model(division_first, affine, opset)
    result = compile_model(model, options=CompileOptions(fidelity_samples=0))
    targets = _targets(result.report)
    cpu = sorted(name for name, (target, _) in targets.items() if target == "cpu")
    assert cpu == []  # the pattern, the affine and both convs run on Akida
    (region,) = result.analyses["regions"]
    (layer,) = [op for op in region.ops if op.attrs.get("act") == "lut"]
    assert layer.attrs["lut"] == "hardswish"
    if affine:
        assert layer.attrs["lut_scale"] == pytest.approx(1.3)
        assert layer.attrs["lut_offset"] == pytest.approx(-0.2)
    onnx.checker.check_model(result.model)  # no HardSwish node below opset 14
    figures = _fidelity(model, result.model)
    assert figures["sqnr_db"] >= 25.0
    assert figures["sqnr_db"] >= figures["constant_sqnr_db"] + 15.0


def test_a_model_with_a_dynamic_batch_compiles_to_a_hybrid_that_runs_any_batch() -> None:
    """compile keeps the float model's symbolic batch on the hybrid's inputs and outputs."""
    model = realistic.conv_stack(batch="N")
    result = compile_model(model, options=CompileOptions(num_samples=4, fidelity_samples=0))
    session = HybridSession(result.model)
    (info,) = session.get_inputs()
    x = np.random.default_rng(0).standard_normal((4, *info.shape[1:])).astype(np.float32)
    got = session.run(None, {info.name: x})[0]
    want = _float(model, {info.name: x})[0]
    assert got.shape == want.shape == (4, 5)
    for sample in range(4):  # each sample as faithful as a batch of one
        single = session.run(None, {info.name: x[sample : sample + 1]})[0]
        np.testing.assert_array_equal(got[sample : sample + 1], single)
    assert compare_outputs(list(want[:, None]), list(got[:, None]))["pearson"] >= 0.99


def test_reports_carry_their_provenance_and_validate() -> None:
    import hashlib

    from akidac import __version__
    from akidac.report.schema import validate as validate_report

    model = realistic.conv_stack()
    options = CompileOptions(num_samples=4, fidelity_samples=0, wbits=4)
    for report in (
        compile_model(model, options=options).report,
        analyze(model, options=options),
    ):
        found = report["provenance"]
        assert found["akidac_version"] == __version__
        expected = hashlib.sha256(model.SerializeToString(deterministic=True)).hexdigest()
        assert found["model_sha256"] == expected
        assert found["input_shapes"] == [{"name": "image", "shape": [1, 3, 16, 16]}]
        values = {o["name"]: o["value"] for o in found["options"]}
        assert values["wbits"] == "4" and values["samples_given"] == "false"
        assert validate_report(report) == []


def _dense_block_model(seed: int = 0) -> onnx.ModelProto:
    """DenseNet's layer (torchvision): Concat of earlier features → BN → ReLU → 1×1 Conv → BN →
    ReLU → 3×3 Conv. The first BN follows a merge, so nothing folds it."""
    rng = np.random.default_rng(seed)

    def tensor(name: str, *shape: int, scale: float = 1.0, offset: float = 0.0):
        data = rng.standard_normal(shape) * scale + offset
        return numpy_helper.from_array(data.astype(np.float32), name)

    inits = [
        tensor("w0", 8, 3, 3, 3, scale=0.3),
        tensor("w1", 8, 8, 3, 3, scale=0.2),
        tensor("w2", 16, 16, 1, 1, scale=0.3),
        tensor("w3", 4, 16, 3, 3, scale=0.2),
    ]
    for name, channels in (("bn_a", 16), ("bn_b", 16)):
        inits += [
            tensor(f"{name}_g", channels, scale=0.2, offset=1.0),
            tensor(f"{name}_b", channels, scale=0.2),
            tensor(f"{name}_m", channels, scale=0.3),
            numpy_helper.from_array(
                (np.abs(rng.standard_normal(channels)) + 0.5).astype(np.float32), f"{name}_v"
            ),
        ]

    def bn(x: str, y: str, name: str) -> onnx.NodeProto:
        ins = [x, f"{name}_g", f"{name}_b", f"{name}_m", f"{name}_v"]
        return helper.make_node("BatchNormalization", ins, [y], name=name)

    same = {"pads": [1, 1, 1, 1]}
    nodes = [
        helper.make_node("Conv", ["x", "w0"], ["c0"], name="conv0", **same),
        helper.make_node("Relu", ["c0"], ["r0"], name="relu0"),
        helper.make_node("Conv", ["r0", "w1"], ["c1"], name="conv1", **same),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Concat", ["r0", "r1"], ["cat"], name="cat", axis=1),
        bn("cat", "n_a", "bn_a"),
        helper.make_node("Relu", ["n_a"], ["r_a"], name="relu_a"),
        helper.make_node("Conv", ["r_a", "w2"], ["c2"], name="conv2"),
        bn("c2", "n_b", "bn_b"),
        helper.make_node("Relu", ["n_b"], ["r_b"], name="relu_b"),
        helper.make_node("Conv", ["r_b", "w3"], ["y"], name="conv3", **same),
    ]
    graph = helper.make_graph(
        nodes,
        "dense_block",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 16, 16])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_a_batchnorm_after_a_concat_runs_on_akida_as_a_depthwise_layer() -> None:
    """DenseNet-121 had 62 BatchNormalization and 62 ReLU nodes on the CPU (AK-OP-UNSUPPORTED):
    a BN after a Concat cannot fold into a layer. As a centre-tap depthwise layer it joins the
    region, with its ReLU, and the model stays faithful."""
    model = _dense_block_model()
    result = compile_model(model, options=CompileOptions(num_samples=16))
    targets = _targets(result.report)
    assert targets["bn_a"][0] == "akida" and targets["relu_a"][0] == "akida"
    assert result.report["summary"]["nodes_on_cpu"] == 0
    figures = _fidelity(model, result.model)
    assert figures["sqnr_db"] >= 20 and figures["sqnr_db"] > figures["constant_sqnr_db"] + 3


def _c2f_model(seed: int = 0) -> onnx.ModelProto:
    """YOLOv8's C2f block as torch exports it (NudeNet): cv1 (1×1 conv, SiLU) → Split(2) →
    bottleneck on the second half with a shortcut Add → Concat of three maps → cv2."""
    rng = np.random.default_rng(seed)
    inits: list[onnx.TensorProto] = []
    nodes: list[onnx.NodeProto] = []

    def conv(x: str, cin: int, cout: int, k: int, name: str) -> str:
        w = rng.standard_normal((cout, cin, k, k)) * np.sqrt(2 / (cin * k * k))
        inits.append(numpy_helper.from_array(w.astype(np.float32), f"{name}_w"))
        inits.append(
            numpy_helper.from_array(
                (rng.standard_normal(cout) * 0.1).astype(np.float32), f"{name}_b"
            )
        )
        nodes.append(
            helper.make_node(
                "Conv", [x, f"{name}_w", f"{name}_b"], [name], name=name, pads=[k // 2] * 4
            )
        )
        nodes.append(helper.make_node("Sigmoid", [name], [f"{name}_sig"], name=f"{name}_sig"))
        nodes.append(
            helper.make_node("Mul", [name, f"{name}_sig"], [f"{name}_silu"], name=f"{name}_act")
        )
        return f"{name}_silu"

    x = conv("x", 3, 16, 3, "stem")
    y = conv(x, 16, 32, 1, "cv1")
    inits.append(numpy_helper.from_array(np.array([16, 16], np.int64), "sizes"))
    nodes.append(helper.make_node("Split", [y, "sizes"], ["a", "b"], name="split", axis=1))
    m = conv(conv("b", 16, 16, 3, "m_cv1"), 16, 16, 3, "m_cv2")
    nodes.append(helper.make_node("Add", ["b", m], ["short"], name="shortcut"))
    nodes.append(helper.make_node("Concat", ["a", "b", "short"], ["cat"], name="cat", axis=1))
    out = conv("cat", 48, 32, 1, "cv2")
    graph = helper.make_graph(
        nodes,
        "c2f",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 24, 24])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, [1, 32, 24, 24])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_a_yolov8_c2f_block_is_one_akida_program() -> None:
    """NudeNet (YOLOv8n) had its Split (AK-OP-UNSUPPORTED), its 3-input Concat
    (AK-MERGE-INPUT-COUNT) and the map its bottleneck, shortcut and Concat all read (3 consumers)
    cut every C2f block into pieces with CPU round trips. Split into two Convs, the Concat into
    pairs and the third reader given an identity layer, the block is one program and stays
    faithful."""
    model = _c2f_model()
    result = compile_model(model, options=CompileOptions(num_samples=16))
    report = result.report
    assert report["summary"]["regions"] == 1
    assert report["summary"]["nodes_on_cpu"] == 0
    assert _targets(report)["split"][0] == "removed"
    assert {d["code"] for d in report["diagnostics"]} >= {"AK-FAN-OUT", "AK-MERGE-CONSUMER"}
    figures = _fidelity(model, result.model)
    assert figures["sqnr_db"] >= 20 and figures["sqnr_db"] > figures["constant_sqnr_db"] + 3


def _x_to_y_model(
    nodes: list[onnx.NodeProto],
    name: str,
    x_shape: list[int],
    y_shape: list[int],
    inits: list[onnx.TensorProto],
) -> onnx.ModelProto:
    """An opset-17 float model from input `x` to output `y`."""
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _nhwc_keras_model(seed: int = 0) -> onnx.ModelProto:
    """A Keras CNN as tf2onnx exports it: NHWC input, every Conv between a Transpose to NCHW and
    one back, the BatchNormalization as Mul/Add by [C] constants on the last axis, ReLU on the
    NHWC map, and a mean over NHWC axes [1, 2] at the end."""
    rng = np.random.default_rng(seed)
    channels = [3, 8, 8, 8]
    inits: list[onnx.TensorProto] = []
    nodes: list[onnx.NodeProto] = []
    x = "x"
    for i, (cin, cout) in enumerate(itertools.pairwise(channels)):
        group = cout if i == 1 else 1
        weights = rng.standard_normal((cout, cin // group, 3, 3)) * np.sqrt(2 / (9 * cin / group))
        scale = 1.0 + np.abs(rng.standard_normal(cout)) * 0.2
        inits += [
            numpy_helper.from_array(weights.astype(np.float32), f"w{i}"),
            numpy_helper.from_array(scale.astype(np.float32), f"s{i}"),
            numpy_helper.from_array((rng.standard_normal(cout) * 0.1).astype(np.float32), f"b{i}"),
        ]
        nodes += [
            helper.make_node("Transpose", [x], [f"in{i}"], name=f"conv{i}__in", perm=[0, 3, 1, 2]),
            helper.make_node(
                "Conv", [f"in{i}", f"w{i}"], [f"c{i}"], name=f"conv{i}", pads=[1] * 4, group=group
            ),
            helper.make_node(
                "Transpose", [f"c{i}"], [f"t{i}"], name=f"conv{i}__out", perm=[0, 2, 3, 1]
            ),
            helper.make_node("Mul", [f"t{i}", f"s{i}"], [f"m{i}"], name=f"bn{i}_mul"),
            helper.make_node("Add", [f"m{i}", f"b{i}"], [f"a{i}"], name=f"bn{i}_add"),
            helper.make_node("Relu", [f"a{i}"], [f"r{i}"], name=f"relu{i}"),
        ]
        x = f"r{i}"
    nodes.append(helper.make_node("ReduceMean", [x], ["y"], name="mean", axes=[1, 2], keepdims=0))
    return _x_to_y_model(nodes, "nhwc_keras", [1, 12, 12, 3], [1, 8], inits)


def test_a_tf2onnx_nhwc_model_is_one_akida_region_without_its_transposes() -> None:
    """Keras MobileNetV3Small (tf2onnx) had 108 Transposes on the CPU and 51 regions: every Conv
    sat between two Transposes with its BatchNormalization and ReLU in NHWC on the CPU. Pushed
    through and cancelled, the BN folds into the Convs and the NHWC mean becomes the last
    layer's GAP: one region, faithful per sample."""
    model = _nhwc_keras_model()
    result = compile_model(model, options=CompileOptions(num_samples=16))
    summary = result.report["summary"]
    targets = _targets(result.report)
    assert summary["regions"] == 1
    assert targets["conv1__in"][0] == "removed" and targets["conv2__out"][0] == "removed"
    # on the CPU: the model's input Transpose, and the Flatten of the axes the mean drops
    assert [n for n, (target, _) in targets.items() if target == "cpu"] == ["conv0__in", "mean"]
    figures = _fidelity(model, result.model)
    assert figures["sqnr_db"] >= 20 and figures["sqnr_db"] > figures["constant_sqnr_db"] + 3


def _keras_head_model(seed: int = 0) -> onnx.ModelProto:
    """Keras EfficientNet's squeeze-excite input and classifier head as tf2onnx writes them:
    GlobalAveragePool → Squeeze(axes [2, 3]) → Reshape([-1, C, 1, 1]) → 1×1 Conv → ReLU, then
    GlobalAveragePool → Squeeze → MatMul + Add."""
    rng = np.random.default_rng(seed)

    def tensor(name: str, array: np.ndarray) -> onnx.TensorProto:
        return numpy_helper.from_array(array, name)

    inits = [
        tensor("w0", (rng.standard_normal((16, 3, 3, 3)) * 0.4).astype(np.float32)),
        tensor("w1", (rng.standard_normal((16, 16, 1, 1)) * 0.3).astype(np.float32)),
        tensor("dense", (rng.standard_normal((16, 10)) * 0.3).astype(np.float32)),
        tensor("bias", (rng.standard_normal(10) * 0.1).astype(np.float32)),
        tensor("axes", np.array([2, 3], np.int64)),
        tensor("back", np.array([-1, 16, 1, 1], np.int64)),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w0"], ["c0"], name="conv0", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c0"], ["r0"], name="relu0"),
        helper.make_node("GlobalAveragePool", ["r0"], ["g"], name="se_pool"),
        helper.make_node("Squeeze", ["g", "axes"], ["s"], name="se_squeeze"),
        helper.make_node("Reshape", ["s", "back"], ["b"], name="se_reshape"),
        helper.make_node("Conv", ["b", "w1"], ["c1"], name="se_reduce"),
        helper.make_node("Relu", ["c1"], ["r1"], name="se_relu"),
        helper.make_node("Squeeze", ["r1", "axes"], ["flat"], name="head_squeeze"),
        helper.make_node("MatMul", ["flat", "dense"], ["mm"], name="head"),
        helper.make_node("Add", ["mm", "bias"], ["y"], name="head_bias"),
    ]
    return _x_to_y_model(nodes, "keras_head", [1, 3, 8, 8], [1, 10], inits)


def test_keras_squeezes_and_reshapes_back_cost_no_region_cut() -> None:
    """Keras EfficientNetB0 had 17 Squeeze and 16 Reshape on the CPU (AK-RESHAPE): a Squeeze
    reshaped straight back is nothing, and a Squeeze before a dense layer is its Flatten. The
    model is one region, faithful per sample."""
    model = _keras_head_model()
    result = compile_model(model, options=CompileOptions(num_samples=16))
    targets = _targets(result.report)
    assert result.report["summary"]["regions"] == 1
    assert result.report["summary"]["nodes_on_cpu"] == 0
    assert targets["se_reshape"][0] == "removed" and targets["head_squeeze"][0] == "akida"
    figures = _fidelity(model, result.model)
    assert figures["sqnr_db"] >= 20 and figures["sqnr_db"] > figures["constant_sqnr_db"] + 3


def _prelu_model(slopes: np.ndarray, seed: int = 0) -> onnx.ModelProto:
    """MediaPipe's conv → PReLU → conv, the slope a [1, C, 1, 1] constant."""
    rng = np.random.default_rng(seed)
    inits = [
        numpy_helper.from_array((rng.standard_normal((8, 3, 3, 3)) * 0.4).astype(np.float32), "w0"),
        numpy_helper.from_array((rng.standard_normal((8, 8, 3, 3)) * 0.2).astype(np.float32), "w1"),
        numpy_helper.from_array(slopes.astype(np.float32).reshape(1, -1, 1, 1), "slope"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w0"], ["c0"], name="conv0", pads=[1, 1, 1, 1]),
        helper.make_node("PRelu", ["c0", "slope"], ["p"], name="prelu"),
        helper.make_node("Conv", ["p", "w1"], ["y"], name="conv1", pads=[1, 1, 1, 1]),
    ]
    return _x_to_y_model(nodes, "prelu", [1, 3, 10, 10], [1, 8, 10, 10], inits)


def test_a_prelu_with_one_slope_maps_as_leaky_relu_and_one_per_channel_says_why_not() -> None:
    """MediaPipe's PReLU cut every layer into its own region (AK-OP-UNSUPPORTED 'has no Akida
    equivalent'). One slope for all channels is a LeakyRelu lookup table fused into the conv;
    per-channel slopes stay on the CPU with AK-ACTIVATION naming the slopes."""
    uniform = _prelu_model(np.full(8, 0.2))
    result = compile_model(uniform, options=CompileOptions(num_samples=16))
    assert result.report["summary"]["regions"] == 1
    assert _targets(result.report)["prelu"][0] == "akida"
    figures = _fidelity(uniform, result.model)
    assert figures["sqnr_db"] >= 20 and figures["sqnr_db"] > figures["constant_sqnr_db"] + 3
    per_channel = _prelu_model(np.linspace(-0.5, 0.5, 8))
    report = analyze(per_channel)
    assert _targets(report)["prelu"] == ("cpu", ["AK-ACTIVATION"])
    (node,) = [n for n in report["nodes"] if n["name"] == "prelu"]
    assert "8 slopes from -0.5 to 0.5" in node["reasons"][0]["message"]


def test_a_blazeface_block_with_a_channel_padded_shortcut_is_one_region() -> None:
    """MediaPipe face detection had 11 channel Pads on the CPU, each ending a region before its
    residual Add (17 regions, 2.4 MB CPU↔Akida). As a 1×1 Conv with weights [I; 0] the
    shortcut stays on Akida: one region, faithful per sample."""
    rng = np.random.default_rng(0)

    def tensor(name: str, *shape: int, scale: float = 0.3) -> onnx.TensorProto:
        return numpy_helper.from_array(
            (rng.standard_normal(shape) * scale).astype(np.float32), name
        )

    inits = [
        tensor("w0", 8, 3, 3, 3),
        tensor("wd", 8, 1, 3, 3),
        tensor("wp", 12, 8, 1, 1),
        tensor("wo", 16, 12, 1, 1),
        numpy_helper.from_array(np.array([0, 0, 0, 0, 0, 4, 0, 0], np.int64), "pads"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w0"], ["c0"], pads=[1, 1, 1, 1], name="conv0"),
        helper.make_node("Relu", ["c0"], ["r0"], name="relu0"),
        helper.make_node("Conv", ["r0", "wd"], ["d"], group=8, pads=[1, 1, 1, 1], name="dw"),
        helper.make_node("Conv", ["d", "wp"], ["p"], name="project"),
        helper.make_node("Pad", ["r0", "pads"], ["s"], name="channel_padding"),
        helper.make_node("Add", ["p", "s"], ["a"], name="add"),
        helper.make_node("Relu", ["a"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "wo"], ["y"], name="head"),
    ]
    model = _x_to_y_model(nodes, "blaze", [1, 3, 16, 16], [1, 16, 16, 16], inits)
    result = compile_model(model, options=CompileOptions(num_samples=16))
    assert result.report["summary"]["regions"] == 1
    assert _targets(result.report)["channel_padding"][0] == "akida"
    figures = _fidelity(model, result.model)
    assert figures["sqnr_db"] >= 20 and figures["sqnr_db"] > figures["constant_sqnr_db"] + 3


def test_a_channel_pad_that_joins_no_region_stays_a_pad_on_the_cpu() -> None:
    """A channel-padded shortcut whose Add has no layer of the model's own around it would be a
    program of a padding layer and a merge: it is not made (AK-REGION-NO-MACS), and the CPU runs
    the model's Pad again, not a 1×1 convolution, so the output is exact."""
    nodes = [
        helper.make_node("Sin", ["x"], ["s"], name="sin"),
        helper.make_node("Cos", ["x"], ["c"], name="cos"),
        helper.make_node("Concat", ["c", "c"], ["c4"], name="widen", axis=1),
        helper.make_node("Pad", ["s", "pads"], ["p"], name="channel_padding"),
        helper.make_node("Add", ["c4", "p"], ["y"], name="add"),
    ]
    pads = numpy_helper.from_array(np.array([0, 0, 0, 0, 0, 3, 0, 0], np.int64), "pads")
    model = _x_to_y_model(nodes, "lonely_pad", [1, 3, 6, 6], [1, 6, 6, 6], [pads])
    result = compile_model(model, options=CompileOptions(num_samples=8))
    assert _targets(result.report)["channel_padding"] == ("cpu", ["AK-REGION-NO-MACS"])
    assert [n.op_type for n in result.model.graph.node].count("Pad") == 1
    (node,) = [n for n in result.report["nodes"] if n["name"] == "channel_padding"]
    assert node["macs"] == 0
    figures = _fidelity(model, result.model)
    assert figures["max_abs_error"] < 1e-6
