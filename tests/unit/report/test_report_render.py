"""The rich report: summary with shares and the device, op types, every reason with its hint."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from conftest import mixed_model
from rich.console import Console

from akidac.api import CompileResult, analyze
from akidac.report.render import compile_summary_table, print_report


def rendered(*items: Any) -> str:
    console = Console(width=200, record=True, file=io.StringIO())
    for item in items:
        console.print(item)
    return console.export_text()


def report_text(report: dict[str, Any], width: int = 200) -> str:
    console = Console(width=width, record=True, file=io.StringIO())
    print_report(console, report)
    return console.export_text()


def test_the_summary_shows_shares_by_nodes_and_macs_regions_bytes_and_the_device(
    conv_net_analysis: dict[str, Any],
) -> None:
    text = report_text(conv_net_analysis)
    assert conv_net_analysis["device"]["description"] in text
    assert "share on Akida by nodes" in text and "79.0%" in text
    assert "share on Akida by MACs" in text and "100.0% (2,392,704 of 2,392,704 MACs)" in text
    assert "CPU↔Akida per inference" in text and "3,112 B" in text
    assert "border nodes added (CPU)" in text


def test_the_report_lists_op_types_regions_and_border_nodes(
    conv_net_analysis: dict[str, Any],
) -> None:
    text = report_text(conv_net_analysis)
    assert "op types" in text and "Softmax" in text
    assert "conv1, conv2, conv3, conv4, fc1, fc2" in text
    assert "3,072 B uint8* 1×32×32×3" in text and "40 B int32* 1×10" in text
    assert "reads a graph input" in text
    for op_type in ("Transpose", "QuantizeLinear", "DequantizeLinear"):
        assert op_type in text


def test_every_reason_and_hint_of_a_rejected_node_is_printed() -> None:
    report = analyze(mixed_model())
    text = report_text(report, width=1000)  # wide enough that no cell wraps
    for node in report["nodes"]:
        for reason in node["reasons"]:
            assert reason["code"] in text
            assert reason["message"] in text
            assert reason["hint"] in text


def test_model_text_is_never_read_as_markup() -> None:
    report = analyze(mixed_model())
    report["nodes"][1]["reasons"][0]["message"] = "odd [bold]name[/bold] here"
    assert "odd [bold]name[/bold] here" in report_text(report)


def test_the_compile_summary_keeps_output_size_and_compile_time(
    conv_net_compiled: CompileResult, tmp_path: Path
) -> None:
    output = tmp_path / "hybrid.onnx"
    output.write_bytes(b"x" * 1234)
    text = rendered(compile_summary_table(conv_net_compiled.report, output, 0.25))
    assert "akidac compile" in text
    assert "1,234 bytes" in text and "0.25 s" in text
    assert "15 of 16 model nodes" in text
    assert conv_net_compiled.report["device"]["description"] in text


def test_a_measured_fidelity_is_printed(conv_net_analysis: dict[str, Any]) -> None:
    fidelity = {
        "samples": 8,
        "note": "8 held-out samples",
        "outputs": [
            {
                "name": "softmax",
                "sqnr_db": 31.25,
                "constant_sqnr_db": 3.5,
                "pearson": 0.9987,
                "top1_agreement": 1.0,
                "cosine": 0.9999,
                "max_abs_error": 0.0123,
            }
        ],
    }
    text = report_text({**conv_net_analysis, "fidelity": fidelity}, width=400)
    assert "fidelity of 'softmax'" in text and "8 held-out samples" in text
    assert "SQNR 31.2 dB" in text and "constant output: 3.5 dB" in text
    flat = " ".join(text.split())
    assert "Pearson 0.9987" in flat and "top-1 agreement 100" in flat
    assert "max abs error 0.0123" in text
