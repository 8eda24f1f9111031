"""`akidac report`: JSON on stdout, rich tables, and `--tagged`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import onnx
from typer.testing import CliRunner

from akidac.cli import app
from akidac.models import conv_net
from akidac.report.schema import validate

ROOT = Path(__file__).resolve().parents[3]


def saved_conv_net(folder: Path) -> Path:
    path = folder / "conv_net.onnx"
    onnx.save(conv_net(), path)
    return path


def test_report_json_in_a_subprocess_exits_0_and_prints_a_valid_report(tmp_path: Path) -> None:
    model = saved_conv_net(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "akidac.cli", "report", str(model), "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert validate(report) == []
    assert report["summary"]["transfer_bytes"] == 32 * 32 * 3 + 10 * 4


def test_report_prints_the_tables_and_writes_the_tagged_model(tmp_path: Path) -> None:
    model = saved_conv_net(tmp_path)
    tagged = tmp_path / "tagged.onnx"
    result = CliRunner().invoke(app, ["report", str(model), "--tagged", str(tagged)])
    assert result.exit_code == 0, result.output
    assert "share on Akida by MACs" in result.output
    assert "nodes not on Akida" in result.output
    onnx.checker.check_model(onnx.load(tagged))


def test_report_with_an_unknown_device_is_a_usage_error(tmp_path: Path) -> None:
    model = saved_conv_net(tmp_path)
    result = CliRunner().invoke(app, ["report", str(model), "--device", "akida9"])
    assert result.exit_code == 2
