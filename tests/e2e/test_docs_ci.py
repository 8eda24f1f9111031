"""docs/ci.md's CI script runs end to end: green against a baseline of the same models, exit 7
naming the regression after a model gets worse."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import onnx
from models import realistic
from onnx import helper

from akidac.models import chain_net

REPO_ROOT = Path(__file__).resolve().parents[2]
DOC = REPO_ROOT / "docs" / "ci.md"


def _run_script(folder: Path) -> subprocess.CompletedProcess[str]:
    """Run the documented script with an `akidac` on PATH that is this checkout's CLI."""
    script = re.search(r"```sh\n(#!/bin/sh.*?)```", DOC.read_text(), re.S).group(1)  # type: ignore[union-attr]
    (folder / "ci-akidac.sh").write_text(script)
    shim = folder / "bin" / "akidac"
    shim.parent.mkdir(exist_ok=True)
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m akidac.cli "$@"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IEXEC)
    env = dict(os.environ, NO_COLOR="1", COLUMNS="200")
    env["PATH"] = f"{shim.parent}{os.pathsep}{env['PATH']}"
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(
        ["sh", "ci-akidac.sh"], capture_output=True, text=True, env=env, cwd=folder, timeout=900
    )


def test_the_ci_script_passes_on_its_baseline_and_fails_on_a_regression(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    onnx.save(realistic.conv_stack(), models / "stack.onnx")
    onnx.save(chain_net(2), models / "chain.onnx")

    first = _run_script(tmp_path)  # no baseline yet: it says what to commit
    assert first.returncode == 0, first.stderr
    assert "no baseline for stack.report.json" in first.stdout
    (tmp_path / "baseline").mkdir()
    for report in (tmp_path / "build").glob("*.report.json"):
        shutil.copy(report, tmp_path / "baseline" / report.name)

    green = _run_script(tmp_path)
    assert green.returncode == 0, green.stderr
    assert green.stdout.count("no regression beyond the thresholds") == 2

    # the same model with a Sigmoid after its first ReLU: every gate still passes (the Sigmoid
    # has no MACs, the regions stay under 8), but the Sigmoid runs on the CPU and splits an
    # Akida region, so the share of nodes on Akida falls, which the baseline diff catches
    worse = realistic.conv_stack()
    nodes = list(worse.graph.node)
    for node in nodes:
        node.input[:] = ["gated0" if name == "r0" else name for name in node.input]
    at = next(i for i, node in enumerate(nodes) if node.name == "relu0")
    nodes.insert(at + 1, helper.make_node("Sigmoid", ["r0"], ["gated0"], "gate0"))
    del worse.graph.node[:]
    worse.graph.node.extend(nodes)
    onnx.save(worse, models / "stack.onnx")
    red = _run_script(tmp_path)
    assert red.returncode == 7, red.stdout + red.stderr
    assert "error AK-GATE: Akida share of nodes fell" in red.stderr
    assert "provenance model_sha256" in red.stdout
    assert "node 'gate0'" not in red.stdout  # a new node, not one that moved
    assert "Akida regions" in red.stdout and "no regression beyond" in red.stdout  # chain: green
