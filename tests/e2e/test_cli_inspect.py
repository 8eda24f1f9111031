"""`akidac inspect` describes every program of a hybrid model."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from models import conv_net

from akidac.api import compile_model
from akidac.passes import CompileOptions

ROOT = Path(__file__).parents[2]


def test_inspect_lists_the_layers_of_the_embedded_program(tmp_path: Path) -> None:
    hybrid = tmp_path / "hybrid.onnx"
    compile_model(conv_net(), hybrid, options=CompileOptions(num_samples=2, fidelity_samples=0))
    result = subprocess.run(
        [sys.executable, "-m", "akidac.cli", "inspect", str(hybrid)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"},
    )
    assert result.returncode == 0, result.stderr
    assert "akida_region_0" in result.stdout
    for layer in ("InputConv2D", "Conv2D", "Dense1D"):
        assert layer in result.stdout
    assert "from ONNX: conv1, relu1, pool1" in result.stdout


def test_inspect_of_a_file_that_is_not_a_hybrid_model_exits_6(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.onnx"
    bogus.write_bytes(b"not a model at all")
    result = subprocess.run(
        [sys.executable, "-m", "akidac.cli", "inspect", str(bogus)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"},
    )
    assert result.returncode == 6
    assert len(result.stderr.strip().splitlines()) == 1


def test_inspect_json_gives_the_same_programs_as_data(tmp_path: Path) -> None:
    import json

    from akidac.api import open_hybrid

    hybrid = tmp_path / "hybrid.onnx"
    compile_model(conv_net(), hybrid, options=CompileOptions(num_samples=2, fidelity_samples=0))
    result = subprocess.run(
        [sys.executable, "-m", "akidac.cli", "inspect", str(hybrid), "--json"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    steps = open_hybrid(hybrid).akida_steps()
    assert data["schema_version"] == 1
    assert [p["node"] for p in data["programs"]] == [name for name, _, _ in steps]
    for record, (_, program, reads) in zip(data["programs"], steps, strict=True):
        assert record["reads"] == reads and record["device"] == program.device
        assert [layer["name"] for layer in record["layers"]] == [r.name for r in program.layers]
        assert record["passes"] == [list(names) for names in program.passes]
    first = data["programs"][0]["layers"][0]
    assert first["type"] == "InputConv2D" and first["origin"][:1] == ["conv1"]
    assert all(v["dtype"] and v["shape"] for v in first["variables"].values())
