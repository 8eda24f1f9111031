"""A compiled hybrid model shared by the runtime tests (compiled once per session)."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from models import conv_net

from akidac.api import compile_model
from akidac.passes import CompileOptions


@pytest.fixture(scope="session")
def hybrid_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """conv_net compiled: Transpose → QuantizeLinear → AkidaOp → DequantizeLinear → Softmax."""
    folder = tmp_path_factory.mktemp("hybrid")
    onnx.save(conv_net(), folder / "float.onnx")
    options = CompileOptions(num_samples=2)
    compile_model(folder / "float.onnx", folder / "hybrid.onnx", options=options)
    return folder / "hybrid.onnx"


@pytest.fixture
def hybrid(hybrid_path: Path) -> onnx.ModelProto:
    """A fresh copy of the compiled hybrid model, free to modify."""
    return onnx.load(str(hybrid_path))
