"""The command line as a shell script uses it: closed pipes, --version, -h, -o onto the input
(issue "The command line a CI pipeline and a person can rely on")."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import onnx
from models import realistic
from models.cli import cli_env

AKIDAC = [sys.executable, "-m", "akidac.cli"]


def _env() -> dict[str, str]:
    """The CLI environment, wide enough for the longest diagnostic line."""
    return dict(cli_env(), COLUMNS="400")


def _model(tmp_path: Path) -> Path:
    path = tmp_path / "m.onnx"
    onnx.save(realistic.conv_stack(), path)
    return path


def test_a_closed_stdout_is_not_an_error(tmp_path: Path) -> None:
    """`set -o pipefail; akidac report m.onnx | head -1` succeeds, with nothing on stderr."""
    model = _model(tmp_path)
    for extra in ([], ["--json"]):
        script = f"set -o pipefail; {' '.join(AKIDAC)} report {model} {' '.join(extra)} | head -c 1"
        proc = subprocess.run(
            ["bash", "-c", script], capture_output=True, text=True, env=_env(), timeout=300
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr == ""


def test_version_and_short_help() -> None:
    from akidac import __version__

    proc = subprocess.run([*AKIDAC, "--version"], capture_output=True, text=True, env=_env())
    assert proc.returncode == 0 and proc.stdout.strip() == f"akidac {__version__}"
    proc = subprocess.run([*AKIDAC, "compile", "-h"], capture_output=True, text=True, env=_env())
    assert proc.returncode == 0 and "Usage" in proc.stdout


def test_an_output_onto_the_input_model_is_a_usage_error(tmp_path: Path) -> None:
    model = _model(tmp_path)
    before = model.read_bytes()
    proc = subprocess.run(
        [*AKIDAC, "compile", str(model), "-o", str(model)],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
    )
    assert proc.returncode == 2
    assert "is the input model" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert model.read_bytes() == before


def test_a_report_that_cannot_be_written_leaves_no_hybrid_behind(tmp_path: Path) -> None:
    model, hybrid = _model(tmp_path), tmp_path / "hybrid.onnx"
    proc = subprocess.run(
        [*AKIDAC, "compile", str(model), "-o", str(hybrid), "--report-json", "/proc/r.json"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error AK-USAGE") and "r.json" in last
    assert "Traceback" not in proc.stderr
    assert not hybrid.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_an_output_onto_a_fifo_is_refused_and_the_fifo_stays(tmp_path: Path) -> None:
    model, fifo = _model(tmp_path), tmp_path / "pipe"
    os.mkfifo(fifo)
    proc = subprocess.run(
        [*AKIDAC, "compile", str(model), "-o", str(fifo)],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
    )
    assert proc.returncode == 2 and "not a regular file" in proc.stderr
    assert stat.S_ISFIFO(fifo.stat().st_mode)


def _many_adds() -> onnx.ModelProto:
    """Six residual Adds, each followed by another Add: six AK-MERGE-CONSUMER notes."""
    import numpy as np
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array((rng.standard_normal((8, 3, 3, 3)) * 0.3).astype("f4"), "w0")]
    nodes = [helper.make_node("Conv", ["x", "w0"], ["h0"], "stem", pads=[1] * 4)]
    x = "h0"
    for i in range(1, 7):
        w = (rng.standard_normal((8, 8, 3, 3)) * 0.1).astype("f4")
        inits.append(numpy_helper.from_array(w, f"w{i}"))
        nodes += [
            helper.make_node("Conv", [x, f"w{i}"], [f"c{i}"], f"conv{i}", pads=[1] * 4),
            helper.make_node("Relu", [f"c{i}"], [f"r{i}"], f"relu{i}"),
            helper.make_node("Add", [x, f"r{i}"], [f"h{i}"], f"add{i}"),
        ]
        x = f"h{i}"
    graph = helper.make_graph(
        nodes,
        "many_adds",
        [helper.make_tensor_value_info("x", 1, [1, 3, 16, 16])],
        [helper.make_tensor_value_info(x, 1, [1, 8, 16, 16])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_repeated_diagnostics_are_counted_unless_verbose(tmp_path: Path) -> None:
    model = tmp_path / "adds.onnx"
    onnx.save(_many_adds(), model)
    base = [*AKIDAC, "compile", str(model), "-o", str(tmp_path / "h.onnx")]
    quiet = subprocess.run(base, capture_output=True, text=True, env=_env(), timeout=300)
    assert quiet.returncode == 0, quiet.stderr
    lines = [line for line in quiet.stderr.splitlines() if "AK-MERGE-CONSUMER" in line]
    assert len(lines) == 4 and "AK-MERGE-CONSUMER ×6" in lines[-1]
    loud = subprocess.run(
        [*base, "--verbose"], capture_output=True, text=True, env=_env(), timeout=300
    )
    assert sum("AK-MERGE-CONSUMER" in line for line in loud.stderr.splitlines()) == 6


def test_gates_exit_7_after_writing_the_outputs_and_name_the_figure(tmp_path: Path) -> None:
    model, hybrid, report = _model(tmp_path), tmp_path / "h.onnx", tmp_path / "r.json"
    command = [*AKIDAC, "compile", str(model), "-o", str(hybrid), "--report-json", str(report)]
    failing = subprocess.run(
        [*command, "--max-regions", "0", "--min-akida-share", "nodes:100"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
    )
    assert failing.returncode == 7, failing.stderr
    last = failing.stderr.strip().splitlines()[-1]
    assert last.startswith("error AK-GATE") and "--max-regions 0 (by " in last
    assert "--min-akida-share 100.0%" in last
    assert hybrid.exists() and report.exists()
    passing = subprocess.run(
        [*command, "--max-regions", "5", "--min-sqnr", "10", "--min-akida-share", "macs:50"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
    )
    assert passing.returncode == 0, passing.stderr
    data = tmp_path / "x.npz"
    import numpy as np

    np.savez(data, image=np.random.default_rng(0).standard_normal((3, 3, 16, 16)).astype("f4"))
    run = subprocess.run(
        [
            *AKIDAC,
            "run",
            str(hybrid),
            "--input",
            str(data),
            "--compare",
            str(model),
            "--atol",
            "1e-9",
        ],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
    )
    assert run.returncode == 7 and "--atol" in run.stderr


def test_argument_parser_errors_are_one_line_with_a_code() -> None:
    for args in (["compile"], ["compile", "m.onnx", "--wbits"], ["report", "m.onnx", "--bogus"]):
        proc = subprocess.run([*AKIDAC, *args], capture_output=True, text=True, env=_env())
        assert proc.returncode == 2
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error AK-USAGE: "), proc.stderr
        assert "╭" not in proc.stderr


def test_output_options_naming_a_folder_or_each_other_are_usage_errors(tmp_path: Path) -> None:
    model = _model(tmp_path)
    cases = [
        (["compile", model, "-o", "out/dir/"], "--output 'out/dir/' ends with '/'"),
        (["compile", model, "-o", "h.onnx", "--report-json", "r/"], "--report-json 'r/' ends"),
        (["compile", model, "-o", "h.onnx", "--report-json", "./h.onnx"], "are the same file"),
        (["report", model, "--report-json", "r/"], "--report-json 'r/' ends with '/'"),
    ]
    for args, words in cases:
        proc = subprocess.run(
            [*AKIDAC, *map(str, args)],
            capture_output=True,
            text=True,
            env=_env(),
            cwd=tmp_path,
            timeout=300,
        )
        assert proc.returncode == 2, (args, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1 and words in proc.stderr, proc.stderr
    assert not (tmp_path / "h.onnx").exists()


def test_report_writes_its_json_with_report_json_as_compile_does(tmp_path: Path) -> None:
    import json

    model = _model(tmp_path)
    proc = subprocess.run(
        [*AKIDAC, "report", str(model), "--report-json", str(tmp_path / "r.json")],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    printed = subprocess.run(
        [*AKIDAC, "report", str(model), "--json"], capture_output=True, text=True, env=_env()
    )
    assert json.loads((tmp_path / "r.json").read_text()) == json.loads(printed.stdout)
