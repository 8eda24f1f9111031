"""The program attribute of an AkidaOp as hostile models write it (issue "Hostile and edge
inputs", items 7 and 8): a STRING tensor, another dtype, external data."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import onnx
import pytest
from models import realistic
from onnx import TensorProto, helper

from akidac.api import compile_model
from akidac.backends.akida.akida_node import PROGRAM_ATTR, is_akida_node
from akidac.errors import ProgramError
from akidac.passes import CompileOptions
from akidac.runtime.session import HybridSession

REPO_ROOT = Path(__file__).resolve().parents[2]


def _hybrid() -> onnx.ModelProto:
    options = CompileOptions(num_samples=4, fidelity_samples=0)
    return compile_model(realistic.conv_stack(), options=options).model


def _replace_program(model: onnx.ModelProto, tensor: onnx.TensorProto) -> onnx.ModelProto:
    node = next(n for n in model.graph.node if is_akida_node(n))
    for attr in node.attribute:
        if attr.name == PROGRAM_ATTR:
            attr.t.CopyFrom(tensor)
    return model


def test_a_string_program_tensor_is_a_corrupt_model_with_exit_6(tmp_path: Path) -> None:
    model = _replace_program(
        _hybrid(), helper.make_tensor("p", TensorProto.STRING, [2], [b"\xff\xfe", b"AKDA"])
    )
    path = tmp_path / "string.onnx"
    onnx.save(model, path)
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), NO_COLOR="1")
    proc = subprocess.run(
        [sys.executable, "-m", "akidac.cli", "inspect", str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 6, proc.stderr
    assert "STRING tensor, not uint8" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_hybrid_given_as_bytes_never_reads_external_program_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"TOP-SECRET-CONTENT" * 8)
    tensor = onnx.TensorProto(name="p", data_type=TensorProto.UINT8, dims=[144])
    tensor.data_location = onnx.TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", "secret.bin"
    model = _replace_program(_hybrid(), tensor)
    monkeypatch.chdir(tmp_path)  # the file is right there, relative to the working directory
    with pytest.raises(ProgramError) as caught:
        HybridSession(model.SerializeToString())
    assert caught.value.exit_code == 6
    assert "external data" in str(caught.value) and "TOP-SECRET" not in str(caught.value)
