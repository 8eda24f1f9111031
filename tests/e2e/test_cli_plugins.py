"""`--plugin MODULE` and `--passes name[key=value,...]`: docs/passes.md's plugin example runs
from the command line as written, and each mistake is a one-line usage error."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import onnx
import pytest
from models import realistic

from akidac.passes import DEFAULT_PIPELINE

REPO_ROOT = Path(__file__).resolve().parents[2]
DOC = REPO_ROOT / "docs" / "passes.md"


def _env() -> dict[str, str]:
    env = dict(os.environ, NO_COLOR="1", COLUMNS="200")
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _akidac(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "akidac.cli", *args],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=cwd,
        timeout=600,
    )


@pytest.fixture
def plugin_folder(tmp_path: Path) -> Path:
    """The documented plugin module, written to its file, beside a three-conv model."""
    text = DOC.read_text()
    module = next(
        b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "# count_ops.py" in b
    )
    (tmp_path / "count_ops.py").write_text(module)
    onnx.save(realistic.conv_stack(), tmp_path / "model.onnx")
    return tmp_path


def test_the_documented_plugin_runs_from_the_command_line(plugin_folder: Path) -> None:
    text = DOC.read_text()
    command = next(
        line
        for line in text.splitlines()
        if line.startswith("akidac compile") and "--plugin" in line
    )
    proc = _akidac(shlex.split(command)[1:], plugin_folder)
    assert proc.returncode == 0, proc.stderr
    assert "note USER-COUNT-OPS: 2 akida.conv2d op(s)" in proc.stderr
    onnx.checker.check_model(onnx.load(plugin_folder / "hybrid.onnx"))
    listed = _akidac(["passes", "--plugin", "count_ops"], plugin_folder)
    assert listed.returncode == 0, listed.stderr
    names = [
        line.split("│")[1].strip() for line in listed.stdout.splitlines() if line.count("│") >= 3
    ]
    assert names[: len(DEFAULT_PIPELINE)] == list(DEFAULT_PIPELINE)  # pipeline order first
    assert "count-ops" in names[len(DEFAULT_PIPELINE) :]
    # a .py path works as well as a module name, from another folder
    by_path = _akidac(
        [
            "compile",
            "model.onnx",
            "-o",
            "h2.onnx",
            "--plugin",
            str(plugin_folder / "count_ops.py"),
            "--passes",
            "legalize,count-ops",
        ],
        plugin_folder,
    )
    assert by_path.returncode == 0, by_path.stderr
    assert "USER-COUNT-OPS: 0 onnx.Relu" not in by_path.stderr  # the Relus are still there
    assert re.search(r"USER-COUNT-OPS: [1-9]\d* onnx.Relu", by_path.stderr)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (
            ["--plugin", "no_such_module", "--passes", "legalize"],
            "no module named 'no_such_module'",
        ),
        (["--plugin", "count_ops", "--passes", "count-op"], "unknown pass 'count-op'"),
        (
            ["--plugin", "count_ops", "--passes", "count-ops[knd=x]"],
            "unexpected keyword argument 'knd'",
        ),
        (["--plugin", "count_ops", "--passes", "count-ops[kind]"], "'kind' is not key=value"),
        (["--plugin", "count_ops", "--passes", "count-ops[kind=x"], "without its ']'"),
        (["--plugin", "broken.py"], "failed to import: ZeroDivisionError"),
    ],
)
def test_plugin_mistakes_are_one_line_usage_errors(
    plugin_folder: Path, args: list[str], words: str
) -> None:
    (plugin_folder / "broken.py").write_text("1 / 0\n")
    proc = _akidac(["compile", "model.onnx", "-o", "h.onnx", *args], plugin_folder)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith("error AK-USAGE") and words in proc.stderr
    if "knd" in words:
        assert "(it takes: kind)" in proc.stderr
