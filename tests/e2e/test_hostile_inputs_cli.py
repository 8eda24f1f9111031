"""The sub-cases of issue "Hostile and edge inputs" that only the command line shows: each runs
the real `akidac` CLI on a hybrid of a Conv+Relu compiled at opset 21 (or a copy whose program
was rewritten, with a valid CRC) and checks the documented exit code, a one-line error without
a traceback, and that a failed command leaves no output behind (items 1, 5, 6, 9, 10, 12)."""

from __future__ import annotations

import dataclasses
import os
import stat
import subprocess
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from models.cli import akidac, assert_no_output, assert_one_line_error, cli_env, compile_cli
from models.files import lying_npy
from onnx import TensorProto, helper, numpy_helper

from akidac.backends.akida.akida_node import PROGRAM_ATTR, is_akida_node
from akidac.backends.akida.program import Program, ProgramTensor, decode_program, encode_program
from akidac.errors import ProgramError
from akidac.metrics import compare_outputs
from akidac.runtime.session import HybridSession
from akidac.target.layer_record import LayerRecord

# How far a refused input may raise the peak memory above the same command on a valid input:
# the imports (numba, onnxruntime) alone differ by tens of MB between machines, so the bound is
# relative to a run measured beside it, not absolute.
RSS_MARGIN_BYTES = 64 << 20


@dataclasses.dataclass(frozen=True)
class Compiled:
    folder: Path
    float_model: Path
    hybrid: Path
    samples: Path  # four samples of the model's input "x", an npz


def _conv_relu(opset: int) -> onnx.ModelProto:
    """Conv(3×3, 8 filters) → Relu on 1×3×16×16: one InputConv2D program, and an int8
    DequantizeLinear → Transpose border before the graph output."""
    w = (np.random.default_rng(0).standard_normal((8, 3, 3, 3)) * 0.3).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "w"], ["c"], "conv", pads=[1] * 4),
            helper.make_node("Relu", ["c"], ["y"], "relu"),
        ],
        "conv_relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 16, 16])],
        [numpy_helper.from_array(w, "w")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Compiled:
    """The opset-21 Conv+Relu compiled through the CLI, as issue item 1 reproduced it."""
    folder = tmp_path_factory.mktemp("opset21")
    float_model, hybrid, samples = folder / "float.onnx", folder / "hybrid.onnx", folder / "x.npz"
    onnx.save(_conv_relu(21), float_model)
    np.savez(samples, x=np.random.default_rng(1).standard_normal((4, 3, 16, 16)).astype("f4"))
    compiled = Compiled(folder, float_model, hybrid, samples)
    result = _compile(compiled, hybrid)
    assert result.returncode == 0, result.stderr
    return compiled


def _compile(compiled: Compiled, out: Path) -> subprocess.CompletedProcess[str]:
    """`akidac compile` of the float model with its samples, skipping the fidelity check."""
    return compile_cli(
        compiled.float_model, out, "--samples", compiled.samples, "--fidelity-samples", "0"
    )


def _with_program(compiled: Compiled, path: Path, change: Callable[[Program], None]) -> Path:
    """A copy of the hybrid whose AkidaOp program is `change`d and re-encoded (fresh CRC)."""
    model = onnx.load(str(compiled.hybrid))
    node = next(n for n in model.graph.node if is_akida_node(n))
    tensor = next(a for a in node.attribute if a.name == PROGRAM_ATTR).t
    program = decode_program(tensor.raw_data)
    change(program)
    tensor.raw_data = encode_program(program)
    del tensor.dims[:]
    tensor.dims.append(len(tensor.raw_data))
    onnx.save(model, path)
    return path


# ------------------------------------------------------------------------------------------
# item 1: every opset akidac accepts gives a hybrid that runs


def test_run_and_inspect_of_an_opset_21_hybrid_exit_0_with_the_float_models_outputs(
    compiled: Compiled,
) -> None:
    saved = compiled.folder / "out.npz"
    run = akidac(
        "run", compiled.hybrid, "--input", compiled.samples, "--save", saved, cwd=compiled.folder
    )
    assert run.returncode == 0, run.stderr
    x = np.load(compiled.samples)["x"]
    reference = ort.InferenceSession(str(compiled.float_model))
    want = [reference.run(None, {"x": x[i : i + 1]})[0][0] for i in range(len(x))]
    (got,) = np.load(saved).values()
    figures = compare_outputs(want, list(got))
    assert figures["sqnr_db"] >= figures["constant_sqnr_db"] + 10.0, figures
    inspect = akidac("inspect", compiled.hybrid, cwd=compiled.folder)
    assert inspect.returncode == 0, inspect.stderr
    assert "akidac program" in inspect.stdout and "InputConv2D" in inspect.stdout


# ------------------------------------------------------------------------------------------
# item 6: programs whose parts disagree, or break the target's limits, exit 6


def _output_layer_one_channel_wider(program: Program) -> None:
    layer = program.layers[-1]
    h, w, c = layer.output_dims
    program.layers[-1] = dataclasses.replace(layer, output_dims=(h, w, c + 1))


def _declared_output_int32(program: Program) -> None:
    assert program.output.dtype == "int8"
    program.output = ProgramTensor(program.output.dims, "int32")


def _kernel_size_2(program: Program) -> None:
    """InputConv2D takes kernels 3, 4, 5 and 7 (the target's table): 2 is none of them."""
    layer = program.layers[0]
    program.layers[0] = dataclasses.replace(layer, params={**layer.params, "kernel_size": 2})


@pytest.mark.parametrize(
    ("command", "change", "words"),
    [
        ("run", _output_layer_one_channel_wider, "declares an output of (16, 16, 8)"),
        ("run", _declared_output_int32, "int32"),
        ("inspect", _kernel_size_2, "kernel_size 2 is not one of"),
    ],
    ids=["run-output-size", "run-output-dtype", "inspect-kernel-size"],
)
def test_a_program_that_disagrees_with_itself_or_the_target_exits_6(
    compiled: Compiled, tmp_path: Path, command: str, change: Callable[[Program], None], words: str
) -> None:
    hybrid = _with_program(compiled, tmp_path / "bad.onnx", change)
    inputs = ["--input", str(compiled.samples)] if command == "run" else []
    result = akidac(command, hybrid, *inputs, cwd=tmp_path)
    assert_one_line_error(result, 6, "akida_region_0", words)


# ------------------------------------------------------------------------------------------
# item 5: a tiny program that declares gigabytes is refused at load


def _sixty_four_inbounds(program: Program) -> None:
    """A Concatenate of the output layer with itself 64 times (not the program's output, so
    only the load checks of the program graph can see it)."""
    h, w, c = program.layers[-1].output_dims
    program.layers.append(
        LayerRecord(
            name="cat",
            layer_type="Concatenate",
            params={},
            variables={},
            inbounds=[program.output_layer] * 64,
            output_dims=(h, w, 64 * c),
        )
    )


def test_a_concatenate_of_64_identical_inbounds_is_refused_at_load_with_bounded_memory(
    compiled: Compiled, tmp_path: Path
) -> None:
    hybrid = _with_program(compiled, tmp_path / "cat64.onnx", _sixty_four_inbounds)
    tracemalloc.start()
    try:
        with pytest.raises(ProgramError, match="64 inbounds") as caught:
            HybridSession(str(hybrid))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert caught.value.exit_code == 6
    assert peak < 16 << 20, peak
    result = akidac("run", hybrid, "--input", compiled.samples, cwd=tmp_path)
    assert_one_line_error(result, 6, "akida_region_0", "'cat'", "64 inbounds")


# ------------------------------------------------------------------------------------------
# item 9: outputs akidac cannot or must not write are usage errors (exit 2)


def test_an_output_onto_a_character_device_exits_2_and_the_device_stays(
    compiled: Compiled,
) -> None:
    result = compile_cli(compiled.float_model, Path("/dev/null"), "--samples", compiled.samples)
    assert_one_line_error(result, 2, "/dev/null", "not a regular file")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_an_output_under_proc_exits_2(compiled: Compiled) -> None:
    out = Path("/proc/akidac-test.onnx")
    assert_one_line_error(_compile(compiled, out), 2, str(out))
    assert not out.exists()


@pytest.mark.skipif(
    os.geteuid() == 0,
    reason="root writes into a 0o555 folder, and no read-only mount is set aside for tests",
)
def test_an_output_into_a_read_only_folder_exits_2_and_leaves_nothing(
    compiled: Compiled, tmp_path: Path
) -> None:
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    out = folder / "hybrid.onnx"
    try:
        assert_one_line_error(_compile(compiled, out), 2, str(out))
        assert_no_output(out)
        assert not list(folder.iterdir())
    finally:
        folder.chmod(0o755)


# ------------------------------------------------------------------------------------------
# item 10: an .npy whose header lies about its size is refused before anything is allocated


def _run_measuring_rss(*args: str | Path, cwd: Path) -> tuple[subprocess.CompletedProcess, int]:
    """Run the CLI and return its result and the peak resident memory of that process alone
    (`os.wait4`'s rusage; `RUSAGE_CHILDREN` would mix in every earlier child of the suite)."""
    out, err = cwd / "stdout.txt", cwd / "stderr.txt"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "akidac.cli", *map(str, args)],
            cwd=cwd,
            env=cli_env(),
            stdout=stdout,
            stderr=stderr,
        )
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    result = subprocess.CompletedProcess(
        proc.args, proc.returncode, out.read_text(), err.read_text()
    )
    return result, usage.ru_maxrss * 1024  # Linux reports kilobytes


@pytest.mark.parametrize("option", ["--samples", "--input"])
def test_an_npy_declaring_120_gb_exits_2_naming_the_bytes_without_allocating(
    compiled: Compiled, tmp_path: Path, option: str
) -> None:
    bomb = tmp_path / "bomb.npy"
    bomb.write_bytes(lying_npy((1, 3, 100000, 100000)))
    assert bomb.stat().st_size < 1024
    out = tmp_path / "hybrid.onnx"
    if option == "--samples":
        args: tuple[str | Path, ...] = ("compile", compiled.float_model, "-o", out)
    else:
        args = ("run", compiled.hybrid)
    valid_out = tmp_path / "valid"
    valid_out.mkdir()
    valid_args = tuple(valid_out / "hybrid.onnx" if a == out else a for a in args)
    valid, valid_rss = _run_measuring_rss(*valid_args, option, compiled.samples, cwd=valid_out)
    assert valid.returncode == 0, valid.stderr
    result, rss = _run_measuring_rss(*args, option, bomb, cwd=tmp_path)
    assert_one_line_error(result, 2, "bomb.npy", "120,000,000,000 bytes")
    assert rss < valid_rss + RSS_MARGIN_BYTES, (rss, valid_rss)
    assert_no_output(out)


# ------------------------------------------------------------------------------------------
# item 12: infinities in an input are said once, by akidac


def test_infinite_inputs_get_one_warning_and_no_python_warning(
    compiled: Compiled, tmp_path: Path
) -> None:
    x = np.random.default_rng(2).standard_normal((2, 3, 16, 16)).astype(np.float32)
    x[0, 0, 0, 0], x[1, 2, 5, 7] = np.inf, -np.inf
    data = tmp_path / "inf.npz"
    np.savez(data, x=x)
    result = akidac(
        "run", compiled.hybrid, "--input", data, "--compare", compiled.float_model, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("AK-INPUT-NONFINITE") == 1, result.stderr
    assert "RuntimeWarning" not in result.stderr and "Traceback" not in result.stderr
