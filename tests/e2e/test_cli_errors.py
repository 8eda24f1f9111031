"""Every bad input, run through the real `akidac` CLI in a subprocess.

Each case checks the documented exit code (docs/cli.md, `akidac.errors.EXIT_CODES`), that
stderr is a single line without a traceback, that the message names the file or node, and that
a failed compile leaves neither the output file nor a `.tmp` leftover behind.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from models.cli import akidac, assert_no_output, assert_one_line_error, compile_cli
from onnx import TensorProto, helper, numpy_helper

from akidac.backends.akida.akida_node import PROGRAM_ATTR, is_akida_node
from akidac.models import conv_net
from akidac.passes import DEFAULT_PIPELINE

# ------------------------------------------------------------------------------------------
# helpers


def small_model(
    *,
    opset: int = 17,
    input_shape: list[int | str] | None = None,
    weight: np.ndarray | None = None,
) -> onnx.ModelProto:
    """Conv → Relu → Softmax on a (1, 3, 8, 8) input, built with onnx.helper."""
    rng = np.random.default_rng(0)
    w = weight if weight is not None else rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    x_shape = input_shape or [1, 3, 8, 8]
    y_shape = [x_shape[0], 4, *x_shape[2:]]
    b = np.zeros(4, np.float32)
    nodes = [
        helper.make_node(
            "Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1], kernel_shape=[3, 3]
        ),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("Softmax", ["r"], ["y"], name="softmax", axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "small",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def save(model: onnx.ModelProto, path: Path) -> Path:
    path.write_bytes(model.SerializeToString())
    return path


# ------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def valid_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save(conv_net(), tmp_path_factory.mktemp("valid") / "conv_net.onnx")


@pytest.fixture(scope="module")
def hybrid_model(tmp_path_factory: pytest.TempPathFactory, valid_model: Path) -> Path:
    """One compiled hybrid model, shared by the `akidac run` cases."""
    folder = tmp_path_factory.mktemp("hybrid")
    out = folder / "hybrid.onnx"
    result = compile_cli(valid_model, out, "--num-samples", "4")
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def input_npy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("input") / "x.npy"
    np.save(path, np.random.default_rng(1).standard_normal((1, 3, 32, 32)).astype(np.float32))
    return path


# ------------------------------------------------------------------------------------------
# unreadable files: exit 3


def test_a_missing_model_file_exits_3_and_names_the_file(tmp_path: Path) -> None:
    out = tmp_path / "out.onnx"
    result = compile_cli(tmp_path / "nowhere.onnx", out)
    assert_one_line_error(result, 3, "nowhere.onnx")
    assert_no_output(out)


def test_a_text_file_that_is_not_onnx_exits_3_and_names_the_file(tmp_path: Path) -> None:
    model = tmp_path / "notes.onnx"
    model.write_text("this is not an ONNX model\nbut a note to myself\n")
    out = tmp_path / "out.onnx"
    assert_one_line_error(compile_cli(model, out), 3, "notes.onnx")
    assert_no_output(out)


def test_a_truncated_protobuf_exits_3_and_names_the_file(tmp_path: Path, valid_model: Path) -> None:
    data = valid_model.read_bytes()
    model = tmp_path / "half.onnx"
    model.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out.onnx"
    assert_one_line_error(compile_cli(model, out), 3, "half.onnx")
    assert_no_output(out)


def test_an_empty_file_exits_3_and_names_the_file(tmp_path: Path) -> None:
    model = tmp_path / "empty.onnx"
    model.write_bytes(b"")
    out = tmp_path / "out.onnx"
    assert_one_line_error(compile_cli(model, out), 3, "empty.onnx")
    assert_no_output(out)


# ------------------------------------------------------------------------------------------
# invalid graphs: exit 3


def test_a_cyclic_graph_exits_3_and_names_the_file(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Add", ["x", "b"], ["a"], name="first"),
        helper.make_node("Relu", ["a"], ["b"], name="second"),
    ]
    graph = helper.make_graph(
        nodes,
        "cycle",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, 4])],
    )
    model = save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]),
        tmp_path / "cycle.onnx",
    )
    out = tmp_path / "out.onnx"
    assert_one_line_error(compile_cli(model, out), 3, "cycle.onnx")
    assert_no_output(out)


def test_a_node_reading_an_undefined_value_exits_3_and_names_the_file_and_value(
    tmp_path: Path,
) -> None:
    proto = small_model()
    proto.graph.node[1].input[0] = "ghost"
    model = save(proto, tmp_path / "malformed.onnx")
    out = tmp_path / "out.onnx"
    assert_one_line_error(compile_cli(model, out), 3, "malformed.onnx", "ghost")
    assert_no_output(out)


def test_nan_weights_exit_3_and_name_the_initializer(tmp_path: Path) -> None:
    weight = np.ones((4, 3, 3, 3), np.float32)
    weight[0, 0, 0, 0] = np.nan
    model = save(small_model(weight=weight), tmp_path / "nan.onnx")
    out = tmp_path / "out.onnx"
    assert_one_line_error(compile_cli(model, out), 3, "nan.onnx", "'w'")
    assert_no_output(out)


# ------------------------------------------------------------------------------------------
# shapes and opsets


def test_a_dynamic_non_batch_dimension_without_input_shape_exits_4_and_names_the_input(
    tmp_path: Path,
) -> None:
    model = save(small_model(input_shape=[1, 3, "height", 8]), tmp_path / "dynamic.onnx")
    out = tmp_path / "out.onnx"
    assert_one_line_error(compile_cli(model, out), 4, "'x'", "height", "--input-shape")
    assert_no_output(out)


def test_the_same_dynamic_model_compiles_with_input_shape(tmp_path: Path) -> None:
    model = save(small_model(input_shape=[1, 3, "height", 8]), tmp_path / "dynamic.onnx")
    out = tmp_path / "out.onnx"
    result = compile_cli(model, out, "--input-shape", "x=1x3x8x8", "--num-samples", "2")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    onnx.checker.check_model(onnx.load(str(out)))


def test_a_dynamic_leading_batch_alone_compiles_with_a_note_about_batch_1(
    tmp_path: Path,
) -> None:
    model = save(small_model(input_shape=["N", 3, 8, 8]), tmp_path / "batch.onnx")
    out = tmp_path / "out.onnx"
    result = compile_cli(model, out, "--num-samples", "2")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "batch" in result.stderr and "1" in result.stderr, result.stderr
    assert out.exists()


@pytest.mark.parametrize("opset", [8, 22])
def test_an_unsupported_opset_exits_4_and_names_the_opset(tmp_path: Path, opset: int) -> None:
    model = save(small_model(opset=opset), tmp_path / f"opset{opset}.onnx")
    out = tmp_path / "out.onnx"
    assert_one_line_error(compile_cli(model, out), 4, f"opset{opset}.onnx", f"opset {opset}")
    assert_no_output(out)


# ------------------------------------------------------------------------------------------
# usage errors: exit 2


def test_an_unknown_pass_name_in_passes_exits_2_and_names_the_pass(
    tmp_path: Path, valid_model: Path
) -> None:
    out = tmp_path / "out.onnx"
    result = compile_cli(valid_model, out, "--passes", "import-cleanup,no-such-pass")
    assert_one_line_error(result, 2, "no-such-pass")
    assert_no_output(out)


def test_an_unknown_device_exits_2_and_names_the_device(tmp_path: Path, valid_model: Path) -> None:
    out = tmp_path / "out.onnx"
    result = compile_cli(valid_model, out, "--device", "bogus")
    assert_one_line_error(result, 2, "bogus")
    assert_no_output(out)


def test_dump_after_refuses_a_dump_dir_holding_other_files_with_exit_2(
    tmp_path: Path,
    valid_model: Path,
) -> None:
    dump = tmp_path / "dump"
    dump.mkdir()
    (dump / "precious.txt").write_text("keep me")
    out = tmp_path / "out.onnx"
    result = compile_cli(valid_model, out, "--dump-after", "all", "--dump-dir", dump)
    assert_one_line_error(result, 2, "dump", "precious.txt")
    assert (dump / "precious.txt").read_text() == "keep me"
    assert_no_output(out)


# ------------------------------------------------------------------------------------------
# akidac run on bad hybrid models: exit 6


def test_run_on_a_hybrid_model_with_a_corrupt_program_exits_6_and_names_the_akida_op(
    tmp_path: Path,
    hybrid_model: Path,
    input_npy: Path,
) -> None:
    proto = onnx.load(str(hybrid_model))
    akida_nodes = [node for node in proto.graph.node if is_akida_node(node)]
    assert akida_nodes, "the compiled conv_net must hold an AkidaOp"
    node = akida_nodes[0]
    attr = next(a for a in node.attribute if a.name == PROGRAM_ATTR)
    raw = bytearray(attr.t.raw_data)
    assert len(raw) > 64
    raw[len(raw) // 2] ^= 0xFF  # inside the program body: the CRC32 no longer matches
    attr.t.raw_data = bytes(raw)
    corrupt = save(proto, tmp_path / "corrupt.onnx")
    result = akidac("run", corrupt, "--input", input_npy, cwd=tmp_path)
    assert_one_line_error(result, 6, node.name)


def test_run_on_a_hybrid_model_file_that_is_not_onnx_exits_6_and_names_the_file(
    tmp_path: Path,
    input_npy: Path,
) -> None:
    model = tmp_path / "garbage.onnx"
    model.write_bytes(b"\x08\x07 definitely not a hybrid model \xff\xfe\x00\x01")
    result = akidac("run", model, "--input", input_npy, cwd=tmp_path)
    assert_one_line_error(result, 6, "garbage.onnx")


# ------------------------------------------------------------------------------------------
# passes and IR dumps


def test_passes_exits_0_and_lists_legalize(tmp_path: Path) -> None:
    result = akidac("passes", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "legalize" in result.stdout
    for name in DEFAULT_PIPELINE:
        assert name in result.stdout, name


def test_dump_after_all_writes_one_air_file_per_default_pass(
    tmp_path: Path, valid_model: Path
) -> None:
    dump = tmp_path / "dump"
    out = tmp_path / "out.onnx"
    result = compile_cli(
        valid_model, out, "--num-samples", "4", "--dump-after", "all", "--dump-dir", dump
    )
    assert result.returncode == 0, result.stderr
    expected = [f"{i + 1:02d}-{name}.air" for i, name in enumerate(DEFAULT_PIPELINE)]
    assert sorted(p.name for p in dump.iterdir()) == expected
    for name in expected:
        text = (dump / name).read_text()
        assert text.startswith('graph "'), (name, text[:80])
        assert "\x00" not in text, name
    assert out.exists()
