"""Models as exporters write them, through the real CLI: -1 dims (PP-OCR cls), several inputs
(recurrent state, int64 scalar sample rate, indices, bool), pools with ceil_mode, and invalid or
oversized models refused with one line and the documented exit code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from models.frontend_models import multi_input_model
from onnx import TensorProto, helper, numpy_helper

from akidac.runtime.session import HybridSession

REPO_ROOT = Path(__file__).resolve().parents[2]


def akidac(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run `python -m akidac.cli ARGS` and capture its output (colours off, wide lines)."""
    env = dict(os.environ, COLUMNS="200", NO_COLOR="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "akidac.cli", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], code: int, *names: str) -> None:
    stderr = result.stderr.strip()
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in stderr and len(stderr.splitlines()) == 1, stderr
    for name in names:
        assert name in stderr, (name, stderr)


def _save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def _ppocr_cls_like() -> onnx.ModelProto:
    """x [-1, 3, -1, -1] → Conv → Relu → MaxPool(ceil_mode) → Conv, output dims -1 too."""
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.standard_normal((8, 8, 3, 3)).astype(np.float32), "w2")
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu1"),
        helper.make_node(
            "MaxPool",
            ["r"],
            ["p"],
            name="pool1",
            kernel_shape=[2, 2],
            strides=[2, 2],
            pads=[0, 0, 1, 1],
            ceil_mode=1,
        ),
        helper.make_node("Conv", ["p", "w2"], ["y"], name="conv2", pads=[1, 1, 1, 1]),
    ]
    graph = helper.make_graph(
        nodes,
        "cls",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [-1, 3, -1, -1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [-1, 8, -1, -1])],
        [w1, w2],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_a_minus_one_dim_model_compiles_with_input_shape_and_runs(tmp_path: Path) -> None:
    model = _save(_ppocr_cls_like(), tmp_path / "cls.onnx")
    refused = akidac("report", model, cwd=tmp_path)
    assert_one_line_error(refused, 4, "'x'", "--input-shape")
    report = akidac("report", model, "--input-shape", "x=1x3x12x24", cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    out = tmp_path / "cls_hybrid.onnx"
    compiled = akidac(
        "compile", model, "-o", out, "--input-shape", "x=1x3x12x24", "--fidelity-samples", "0",
        cwd=tmp_path,
    )  # fmt: skip
    assert compiled.returncode == 0, compiled.stderr
    x = np.random.default_rng(1).standard_normal((1, 3, 12, 24)).astype(np.float32)
    (y,) = HybridSession(str(out)).run(None, {"x": x})
    assert y.shape == (1, 8, 6, 12)  # onnxruntime's ceil_mode size (ONNX inference says 7×13)


def test_a_model_with_state_scalar_index_and_bool_inputs_reports_and_compiles(
    tmp_path: Path,
) -> None:
    model = _save(multi_input_model(), tmp_path / "multi.onnx")
    report = akidac("report", model, cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    out = tmp_path / "multi_hybrid.onnx"
    compiled = akidac("compile", model, "-o", out, cwd=tmp_path)
    assert compiled.returncode == 0, compiled.stderr
    assert "\x1b[" not in compiled.stderr
    feeds = {
        "image": np.random.default_rng(2).standard_normal((1, 3, 16, 16)).astype(np.float32),
        "state": np.ones((2, 1, 128), np.float32),
        "sr": np.array(16000, np.int64),
        "index": np.array([3], np.int64),
        "flag": np.array([True]),
    }
    out_value, new_state = HybridSession(str(out)).run(None, feeds)
    assert out_value.shape == (1, 8)
    np.testing.assert_allclose(new_state, np.full((2, 1, 128), 2.6), rtol=1e-5)


def _invalid(kind: str) -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    x_shape, w_shape, attrs = {
        "group": ([1, 3, 8, 8], (4, 1, 3, 3), {"group": 2}),
        "kernel": ([1, 3, 4, 4], (4, 3, 7, 7), {}),
        "channels": ([1, 3, 8, 8], (4, 5, 3, 3), {}),
    }[kind]
    w = numpy_helper.from_array(rng.standard_normal(w_shape).astype(np.float32), "w")
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "w"], ["c"], name="bad_conv", **attrs),
            helper.make_node("Relu", ["c"], ["y"], name="relu"),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None] * 4)],
        [w],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


@pytest.mark.parametrize("kind", ["group", "kernel", "channels"])
@pytest.mark.parametrize("command", ["compile", "report"])
def test_an_invalid_conv_exits_3_naming_the_node(tmp_path: Path, kind: str, command: str) -> None:
    model = _save(_invalid(kind), tmp_path / f"{kind}.onnx")
    out = tmp_path / "out.onnx"
    args = ("-o", out) if command == "compile" else ()
    result = akidac(command, model, *args, cwd=tmp_path)
    assert_one_line_error(result, 3, "'bad_conv'")
    assert "\x1b[" not in result.stderr
    assert not out.exists()


def test_a_huge_declared_input_exits_4_at_once_naming_it(tmp_path: Path) -> None:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"], name="relu")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 100000, 100000])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None] * 4)],
    )
    model = _save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), tmp_path / "h.onnx"
    )
    result = akidac("compile", model, "-o", tmp_path / "o.onnx", cwd=tmp_path)
    assert_one_line_error(result, 4, "memory budget", "'x'", "120,000,000,000 bytes")


def test_an_empty_samples_npz_is_a_usage_error(tmp_path: Path) -> None:
    model = _save(_ppocr_cls_like(), tmp_path / "cls.onnx")
    empty = tmp_path / "empty.npz"
    np.savez(empty)
    out = tmp_path / "o.onnx"
    args = ("--input-shape", "x=1x3x12x24", "--samples", empty)
    result = akidac("compile", model, "-o", out, *args, cwd=tmp_path)
    assert_one_line_error(result, 2, "holds no arrays")
    assert not out.exists()
