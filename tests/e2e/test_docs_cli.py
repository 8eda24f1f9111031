"""Every example of docs/cli.md (its `sh` blocks) runs as written, in order, on models this test
builds, and exits 0; every command of the CLI has at least one example."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
from models import realistic

from akidac.cli import app
from akidac.models import chain_net

REPO_ROOT = Path(__file__).resolve().parents[2]
DOC = REPO_ROOT / "docs" / "cli.md"


def documented_commands() -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", DOC.read_text(), re.S)
    return [line for block in blocks for line in block.splitlines() if line.startswith("akidac ")]


def _model_with_input_named_input() -> onnx.ModelProto:
    """conv_stack with a dynamic batch, its input renamed `input` as in the examples."""
    model = realistic.conv_stack(batch="N")
    old = model.graph.input[0].name
    model.graph.input[0].name = "input"
    for node in model.graph.node:
        node.input[:] = ["input" if name == old else name for name in node.input]
    onnx.checker.check_model(model)
    return model


def _files(folder: Path) -> None:
    rng = np.random.default_rng(0)
    onnx.save(_model_with_input_named_input(), folder / "model.onnx")
    np.savez(folder / "calib.npz", input=rng.standard_normal((40, 3, 16, 16)).astype("f4"))
    np.save(folder / "x.npy", rng.standard_normal((3, 3, 16, 16)).astype("f4"))
    (folder / "models").mkdir()
    onnx.save(realistic.conv_stack(), folder / "models" / "stack.onnx")
    onnx.save(chain_net(2), folder / "models" / "chain.onnx")


def test_every_command_has_an_example() -> None:
    commands = {cmd.name or cmd.callback.__name__ for cmd in app.registered_commands}  # type: ignore[union-attr]
    shown = {shlex.split(line)[1] for line in documented_commands()}
    assert commands <= shown, sorted(commands - shown)


def test_the_examples_of_docs_cli_md_run_as_written(tmp_path: Path) -> None:
    _files(tmp_path)
    env = dict(os.environ, NO_COLOR="1", COLUMNS="200")
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    commands = documented_commands()
    assert len(commands) >= 15
    for line in commands:
        proc = subprocess.run(
            [sys.executable, "-m", "akidac.cli", *shlex.split(line)[1:]],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=600,
        )
        assert proc.returncode == 0, f"{line}\n{proc.stderr}"
        assert "Traceback" not in proc.stderr, line
    # what the examples claim to write is there
    for name in ("hybrid.onnx", "report.json", "analysis.json", "tagged.onnx", "outputs.npz"):
        assert (tmp_path / name).is_file(), name
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "chain.hybrid.onnx",
        "chain.report.json",
        "stack.hybrid.onnx",
        "stack.report.json",
        "summary.json",
    ]
    assert sorted(p.name for p in (tmp_path / "dump").iterdir())[0] == "01-import-cleanup.air"
