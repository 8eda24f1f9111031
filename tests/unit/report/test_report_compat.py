"""The report's numbers: where nodes run, MACs, border nodes, transfer bytes, reasons."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from conftest import mixed_model, small_model
from onnx import helper

from akidac.api import CompileResult, analyze, compile_model
from akidac.errors import UsageError
from akidac.ir.graph import Graph, Op
from akidac.ir.types import TensorType
from akidac.models import chain_net, conv_net
from akidac.passes import CompileOptions
from akidac.report.compat import onnx_op_macs
from akidac.target.devices import parse_device
from akidac.target.reason_codes import REASON_CODES

#: conv_net by hand: conv H·W·Cout·Cin·k·k (same padding, pooling after), dense in·out.
CONV_NET_MACS = {
    "conv1": 32 * 32 * 16 * 3 * 3 * 3,
    "conv2": 16 * 16 * 32 * 16 * 3 * 3,
    "conv3": 8 * 8 * 32 * 32 * 3 * 3,
    "conv4": 4 * 4 * 32 * 32 * 3 * 3,
    "fc1": 4 * 4 * 32 * 64,
    "fc2": 64 * 10,
}
#: conv_net's region reads the int8 image and returns the last dense layer's raw int32 sums.
CONV_NET_TRANSFER = 32 * 32 * 3 * 1 + 10 * 4


def both_reports(
    conv_net_analysis: dict[str, Any], conv_net_compiled: CompileResult
) -> list[dict[str, Any]]:
    return [conv_net_analysis, conv_net_compiled.report]


def test_conv_net_macs_per_node_match_the_hand_computation(
    conv_net_analysis: dict[str, Any], conv_net_compiled: CompileResult
) -> None:
    for report in both_reports(conv_net_analysis, conv_net_compiled):
        macs = {node["name"]: node["macs"] for node in report["nodes"] if node["macs"]}
        assert macs == CONV_NET_MACS
        assert report["summary"]["macs_total"] == sum(CONV_NET_MACS.values()) == 2_392_704
        assert report["summary"]["macs_on_akida"] == report["summary"]["macs_total"]
        assert report["regions"][0]["macs"] == sum(CONV_NET_MACS.values())


def test_conv_net_transfers_the_uint8_image_in_and_ten_int32_sums_out(
    conv_net_analysis: dict[str, Any], conv_net_compiled: CompileResult
) -> None:
    for report in both_reports(conv_net_analysis, conv_net_compiled):
        (region,) = report["regions"]
        assert (region["input"]["dtype"], region["input"]["bytes"]) == ("uint8", 3072)
        assert (region["output"]["dtype"], region["output"]["bytes"]) == ("int32", 40)
        assert report["summary"]["transfer_bytes"] == CONV_NET_TRANSFER
    assert conv_net_analysis["regions"][0]["input"]["predicted"]
    assert not conv_net_compiled.report["regions"][0]["input"]["predicted"]


def test_conv_net_border_transpose_and_q_dq_are_counted_as_cpu_work(
    conv_net_analysis: dict[str, Any], conv_net_compiled: CompileResult
) -> None:
    for report in both_reports(conv_net_analysis, conv_net_compiled):
        border = report["border_nodes"]
        assert sorted(b["op_type"] for b in border) == [
            "DequantizeLinear",
            "QuantizeLinear",
            "Transpose",
        ]
        assert all(b["region"] == 0 for b in border)
        assert report["summary"]["border_nodes_added"] == 3
        summary = report["summary"]
        executed = summary["nodes_on_akida"] + summary["nodes_on_cpu"] + 3
        assert report["shares"]["nodes"]["akida"] == round(15 / executed, 4)
    compiled = conv_net_compiled.report["border_nodes"]
    assert not any(b["predicted"] for b in compiled)
    hybrid_types = [n.op_type for n in conv_net_compiled.model.graph.node]
    for op_type in ("Transpose", "QuantizeLinear", "DequantizeLinear"):
        assert hybrid_types.count(op_type) == 1


def test_the_report_predicts_the_border_nodes_and_bytes_the_compile_produces(
    conv_net_analysis: dict[str, Any], conv_net_compiled: CompileResult
) -> None:
    compiled = conv_net_compiled.report
    assert conv_net_analysis["summary"] == compiled["summary"]
    assert conv_net_analysis["shares"] == compiled["shares"]
    assert conv_net_analysis["op_types"] == compiled["op_types"]
    assert [n["target"] for n in conv_net_analysis["nodes"]] == [
        n["target"] for n in compiled["nodes"]
    ]


@pytest.mark.parametrize(
    "build", [mixed_model, conv_net, lambda: chain_net(3)], ids=["mixed", "conv_net", "chain_net"]
)
def test_shares_add_up_and_node_counts_cover_every_node(build: Callable[[], Any]) -> None:
    model = build()
    for report in (analyze(model), compile_model(model).report):
        summary, shares = report["summary"], report["shares"]
        assert summary["nodes_total"] == (
            summary["nodes_on_akida"] + summary["nodes_on_cpu"] + summary["nodes_removed"]
        )
        assert summary["macs_total"] == summary["macs_on_akida"] + summary["macs_on_cpu"]
        assert summary["macs_total"] == sum(node["macs"] for node in report["nodes"])
        for kind in ("nodes", "macs"):
            assert shares[kind]["akida"] + shares[kind]["cpu"] == pytest.approx(1.0)
        assert (
            sum(row["akida"] + row["cpu"] + row["removed"] for row in report["op_types"])
            == summary["nodes_total"]
        )
        assert sum(row["border_added"] for row in report["op_types"]) == len(report["border_nodes"])


def test_a_mixed_model_reports_cpu_macs_removed_nodes_and_transfers() -> None:
    report = analyze(mixed_model())
    nodes = {node["name"]: node for node in report["nodes"]}
    assert nodes["ident"]["target"] == "removed"
    assert [r["code"] for r in nodes["ident"]["reasons"]] == ["AK-FOLDED"]
    assert nodes["odd_conv"]["target"] == "cpu"
    assert nodes["odd_conv"]["macs"] == 4 * 4 * 8 * 3 * 3 * 3  # valid, stride 3, dilation 2
    assert nodes["mm"]["target"] == "akida"
    assert nodes["mm"]["macs"] == 8 * 4 * 4 * 5
    assert report["summary"]["macs_on_cpu"] == nodes["odd_conv"]["macs"]
    assert report["summary"]["transfer_bytes"] == 8 * 4 * 4 + 5 * 4


def test_every_reason_of_a_rejected_node_is_listed_not_only_the_first() -> None:
    nodes = {node["name"]: node for node in analyze(mixed_model())["nodes"]}
    codes = [reason["code"] for reason in nodes["odd_conv"]["reasons"]]
    assert {"AK-STRIDE", "AK-DILATION"} <= set(codes)
    assert all(reason["message"] and reason["hint"] for reason in nodes["odd_conv"]["reasons"])


@pytest.mark.parametrize("stage", ["analyze", "compile"])
def test_every_cpu_node_carries_a_registered_reason_and_akida_nodes_none(
    stage: str, conv_net_model
) -> None:
    for model in (mixed_model(), conv_net_model):
        report = analyze(model) if stage == "analyze" else compile_model(model).report
        assert report["stage"] == stage
        for node in report["nodes"]:
            if node["target"] == "akida":
                assert node["reasons"] == [] and node["region"] is not None
            else:
                assert node["reasons"], node["name"]
                assert node["region"] is None
                assert all(reason["code"] in REASON_CODES for reason in node["reasons"])


def test_a_max_pooling_moved_off_the_end_of_a_region_is_a_cpu_node_with_its_reason() -> None:
    rng = np.random.default_rng(1)
    model = small_model(
        [
            helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["c"], ["r"], name="relu"),
            helper.make_node(
                "MaxPool", ["r"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]
            ),
            helper.make_node("Softmax", ["p"], ["y"], name="softmax", axis=1),
        ],
        {"x": [1, 3, 8, 8]},
        {"y": [1, 8, 4, 4]},
        {"w": rng.standard_normal((8, 3, 3, 3))},
    )
    for report in (analyze(model), compile_model(model).report):
        nodes = {node["name"]: node for node in report["nodes"]}
        assert nodes["conv"]["target"] == nodes["relu"]["target"] == "akida"
        assert nodes["pool"]["target"] == "cpu"
        assert [r["code"] for r in nodes["pool"]["reasons"]] == ["AK-REGION-MAXPOOL-LAST"]
        assert report["regions"][0]["notes"]
        # the unpooled 8×8×8 int8 map leaves the region
        assert report["summary"]["transfer_bytes"] == 8 * 8 * 3 + 8 * 8 * 8


def test_the_report_names_the_device_it_assumed() -> None:
    options = CompileOptions(device="akida2-4n", sram_kib=32)
    report = analyze(mixed_model(), options=options)
    device = parse_device("akida2-4n", 32)
    assert report["device"] == {"name": device.name, "description": device.describe()}
    compiled = compile_model(mixed_model(), options=options).report
    assert compiled["device"] == report["device"]


def test_an_unknown_device_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown device"):
        analyze(mixed_model(), options=CompileOptions(device="akida9"))


def test_compile_diagnostics_reach_the_report(conv_net_compiled: CompileResult) -> None:
    codes = [d["code"] for d in conv_net_compiled.report["diagnostics"]]
    assert codes == [d.code for d in conv_net_compiled.diagnostics.items]
    assert "AK-CALIBRATION-RANDOM" in codes


def test_compile_reports_the_nps_allocate_assigned(conv_net_compiled: CompileResult) -> None:
    (region,) = conv_net_compiled.report["regions"]
    assigned = conv_net_compiled.analyses["np_assignment"]
    assert {layer["name"]: layer["nps"] for layer in region["layers"]} == assigned
    assert region["nps"] == sum(len(nps) for nps in assigned.values())


def _ir_op(kind: str, shapes: list[tuple[int, ...]], out: tuple[int, ...], **attrs: object) -> Op:
    graph = Graph()
    x = graph.add_input("x", TensorType("f32", shapes[0]))
    operands = [x] + [
        graph.add_constant(f"w{i}", np.zeros(shape, np.float32))
        for i, shape in enumerate(shapes[1:])
    ]
    return graph.make_op(kind, operands, [TensorType("f32", out)], attrs=dict(attrs))


@pytest.mark.parametrize(
    ("kind", "shapes", "out", "attrs", "macs"),
    [
        (
            "onnx.Conv",
            [(2, 8, 5, 5), (16, 4, 3, 3)],
            (2, 16, 5, 5),
            {"group": 2},
            2 * 5 * 5 * 16 * 4 * 3 * 3,
        ),
        (
            "onnx.ConvTranspose",
            [(1, 4, 3, 3), (4, 2, 3, 3)],
            (1, 2, 5, 5),
            {},
            1 * 3 * 3 * 4 * 2 * 3 * 3,
        ),
        ("onnx.Gemm", [(6, 3), (6, 4)], (3, 4), {"transA": 1}, 3 * 4 * 6),
        ("onnx.Gemm", [(3, 6), (4, 6)], (3, 4), {"transB": 1}, 3 * 4 * 6),
        ("onnx.MatMul", [(2, 3, 6), (6, 4)], (2, 3, 4), {}, 2 * 3 * 4 * 6),
        ("onnx.Add", [(2, 3), (2, 3)], (2, 3), {}, 0),
    ],
)
def test_onnx_op_macs_follow_the_documented_formulas(
    kind: str, shapes: list[tuple[int, ...]], out: tuple[int, ...], attrs: dict, macs: int
) -> None:
    assert onnx_op_macs(_ir_op(kind, shapes, out, **attrs)) == macs


def test_onnx_op_macs_are_zero_when_a_shape_is_unknown() -> None:
    assert onnx_op_macs(_ir_op("onnx.MatMul", [(None, 6), (6, 4)], (None, 4))) == 0  # type: ignore[list-item]


def test_border_nodes_between_adjacent_regions_belong_to_the_right_side() -> None:
    """conv1's output feeds conv2 and a CPU Softmax: two regions back to back; region 0's
    DequantizeLinear and Transpose to NCHW are its output side; region 1 reads region 0's NHWC
    value, so only a QuantizeLinear (no Transpose round trip) is its input side."""
    rng = np.random.default_rng(2)
    model = small_model(
        [
            helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["c1"], ["a"], name="relu1"),
            helper.make_node("Conv", ["a", "w2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["c2"], ["b"], name="relu2"),
            helper.make_node("Softmax", ["a"], ["s"], name="softmax", axis=1),
            helper.make_node("Sub", ["b", "s"], ["y"], name="sub"),
        ],
        {"x": [1, 3, 8, 8]},
        {"y": [1, 8, 8, 8]},
        {"w1": rng.standard_normal((8, 3, 3, 3)), "w2": rng.standard_normal((8, 8, 3, 3))},
    )
    expected = {
        (0, "input"): ["QuantizeLinear", "Transpose"],
        (0, "output"): ["DequantizeLinear", "Transpose"],
        (1, "input"): ["QuantizeLinear"],
        (1, "output"): ["DequantizeLinear", "Transpose"],
    }
    for report in (analyze(model), compile_model(model).report):
        assert report["summary"]["regions"] == 2
        sides: dict[tuple[int, str], list[str]] = {}
        for node in report["border_nodes"]:
            sides.setdefault((node["region"], node["side"]), []).append(node["op_type"])
        assert {key: sorted(types) for key, types in sides.items()} == expected
        # each region reads 8×8×(3 or 8) int8 and returns 8×8×8 int8 (ReLU-activated)
        assert report["summary"]["transfer_bytes"] == 8 * 8 * 3 + 3 * 8 * 8 * 8


def test_the_report_predicts_the_scaling_mul_after_a_4d_int32_region_output() -> None:
    """A region that ends in a convolution without activation hands its int32 sums back; for a
    4-D output the compile scales them with DequantizeLinear and a per-channel Mul (onnxruntime
    rejects an int32 per-axis DequantizeLinear before the border Transpose), and the report
    must predict that Mul too (it predicted it only below opset 13)."""
    from onnx import TensorProto, numpy_helper

    rng = np.random.default_rng(0)
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "w0"], ["a"], pads=[1] * 4),
            helper.make_node("Relu", ["a"], ["r"]),
            helper.make_node("Conv", ["r", "w1"], ["y"], pads=[1] * 4),
        ],
        "int32_out",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])],
        [
            numpy_helper.from_array(rng.normal(0, 0.3, (8, 3, 3, 3)).astype(np.float32), "w0"),
            numpy_helper.from_array(rng.normal(0, 0.3, (4, 8, 3, 3)).astype(np.float32), "w1"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    options = CompileOptions(min_region_sqnr=None, min_output_sqnr=None)
    predicted = analyze(model, options=options)
    compiled = compile_model(model, options=options).report
    kinds = sorted(b["op_type"] for b in compiled["border_nodes"])
    assert "Mul" in kinds
    assert sorted(b["op_type"] for b in predicted["border_nodes"]) == kinds
    assert predicted["summary"] == compiled["summary"]
