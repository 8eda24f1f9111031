"""The estimate: its figures follow from the constants, it agrees across report/compile/device,
and `akidac device --json/--sweep/--plot` behave."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import onnx
import pytest
from typer.testing import CliRunner

from akidac.api import CompileResult, estimate_device
from akidac.cli import app
from akidac.report.schema import ESTIMATE_SCHEMA, validate
from akidac.target import devices as dev
from akidac.target.devices import parse_device
from akidac.target.estimate import (
    SWEEP_DEVICES,
    RegionCost,
    estimate,
    layer_cycles,
    summary_line,
)
from akidac.target.footprint import LayerFootprint


def footprint(name: str, np_type: str, nps: int, macs: int, weight_bits: int = 8000) -> Any:
    return LayerFootprint(
        node_name=name,
        kind="conv2d",
        np_type=np_type,
        weight_bits=weight_bits,
        filters_per_np=1,
        filter_groups=nps,
        column_strips=1,
        row_strips=1,
        rows_per_strip=1,
        nps=nps,
        input_bytes_per_np=100,
        macs=macs,
    )


def test_layer_cycles_spread_macs_over_nps_and_stream_fnp2_weights() -> None:
    device = parse_device("akida2-12n")
    assert layer_cycles(footprint("c", "CNP", 4, 64_000), device) == 64_000 // (4 * 16)
    assert layer_cycles(footprint("add", "none", 0, 0), device) == 0
    # an FNP2 with little compute is bound by streaming its weights over the NP DMA
    fnp2 = footprint("fc", "FNP2", 1, 16, weight_bits=8 * 80_000)
    assert layer_cycles(fnp2, device) == 80_000 // dev.NP_DMA_BYTES_PER_CYCLE


def test_whole_model_figures_follow_from_the_named_constants() -> None:
    device = parse_device("akida2-12n")
    region = RegionCost(0, [("c", footprint("c", "CNP", 2, 3_200_000))], 1000, 10)
    est = estimate([region], 1_000_000, device)
    akida_s = 3_200_000 / (2 * 16) / dev.CLOCK_HZ
    cpu_s = 1_000_000 / dev.HOST_MACS_PER_S
    transfer_s = 1010 / dev.HOST_LINK_BYTES_PER_S + dev.REGION_SWITCH_SECONDS
    assert est["akida_ms"] == pytest.approx(akida_s * 1000)
    assert est["cpu_ms"] == pytest.approx(cpu_s * 1000)
    assert est["transfer_ms"] == pytest.approx(transfer_s * 1000)
    assert est["latency_ms"] == pytest.approx((akida_s + cpu_s + transfer_s) * 1000)
    energy_pj = (
        3_200_000 * dev.AKIDA_PJ_PER_MAC
        + 1010 * dev.LINK_PJ_PER_BYTE
        + 1_000_000 * dev.HOST_PJ_PER_MAC
    )
    assert est["energy_uj"] == pytest.approx(energy_pj / 1e6)
    assert sum(est["shares"].values()) == pytest.approx(1, abs=1e-3)
    assert est["assumptions"]["clock_hz"] == dev.CLOCK_HZ
    assert validate(est, ESTIMATE_SCHEMA) == []


def test_a_device_too_small_for_a_layer_says_so() -> None:
    region = RegionCost(0, [("big", footprint("big", "CNP", 9, 100))], 0, 0)
    est = estimate([region], 0, parse_device("akida2-2n"))
    assert not est["fits"] and est["latency_ms"] is None
    assert "needs 9 NPs" in est["reason"] and "does not fit" in summary_line(est)
    assert validate(est, ESTIMATE_SCHEMA) == []


def test_report_compile_and_device_carry_the_same_estimate(
    conv_net_model: onnx.ModelProto,
    conv_net_analysis: dict[str, Any],
    conv_net_compiled: CompileResult,
) -> None:
    assert conv_net_analysis["estimate"] is not None
    assert conv_net_analysis["estimate"] == conv_net_compiled.report["estimate"]
    assert estimate_device(conv_net_model)["estimate"] == conv_net_analysis["estimate"]


def test_device_json_is_versioned_deterministic_and_sweeps(
    conv_net_model: onnx.ModelProto, tmp_path: Path
) -> None:
    path = tmp_path / "m.onnx"
    onnx.save(conv_net_model, path)
    runs = [CliRunner().invoke(app, ["device", str(path), "--sweep", "--json"]) for _ in range(2)]
    assert all(r.exit_code == 0 for r in runs), runs[0].output
    assert runs[0].stdout == runs[1].stdout
    data = json.loads(runs[0].stdout)
    assert data["schema_version"] == 1
    assert data["device"] == {"name": "akida2-12n", "nps": 48}
    assert data["minimal_device"]["name"] == "akida2-2n"
    assert data["layers"][0]["name"] == "conv1"
    assert all(layer["cycles"] is not None for layer in data["layers"])
    assert [s["device"]["name"] for s in data["sweep"]] == list(SWEEP_DEVICES)
    for row in data["sweep"]:
        assert validate(row, ESTIMATE_SCHEMA) == []
    twelve = data["sweep"][list(SWEEP_DEVICES).index("akida2-12n")]
    assert twelve == data["estimate"]


def test_device_prints_the_estimate_line_and_the_sweep_table(
    conv_net_model: onnx.ModelProto, tmp_path: Path
) -> None:
    path = tmp_path / "m.onnx"
    onnx.save(conv_net_model, path)
    result = CliRunner().invoke(app, ["device", str(path), "--sweep"])
    assert result.exit_code == 0, result.output
    assert "estimate on akida2-12n:" in result.stdout and "inferences/s" in result.stdout
    assert "custom:24" in result.stdout


def test_plot_without_matplotlib_is_a_one_line_usage_error(
    conv_net_model: onnx.ModelProto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "m.onnx"
    onnx.save(conv_net_model, path)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    result = CliRunner().invoke(app, ["device", str(path), "--plot", str(tmp_path / "p.png")])
    assert result.exit_code == 2
    assert "matplotlib" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "p.png").exists()


def test_plot_writes_a_png(conv_net_model: onnx.ModelProto, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    path = tmp_path / "m.onnx"
    onnx.save(conv_net_model, path)
    result = CliRunner().invoke(app, ["device", str(path), "--plot", str(tmp_path / "p.png")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_measure_cpu_marks_the_host_as_measured(conv_net_model: onnx.ModelProto) -> None:
    data = estimate_device(conv_net_model, measure_cpu=True)
    assumptions = data["estimate"]["assumptions"]
    assert assumptions["host_measured"] is True and assumptions["host_macs_per_s"] > 0
