"""A hybrid model runs without importing the compiler (DESIGN.md, imports)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import onnx
from models import conv_net

from akidac.api import compile_model
from akidac.passes import CompileOptions

SCRIPT = """
import json, sys
import numpy as np
from akidac.runtime.session import HybridSession
session = HybridSession(sys.argv[1])
(y,) = session.run(None, {"input": np.zeros((1, 3, 32, 32), np.float32)})
compiler = sorted(m for m in sys.modules
                  if m.startswith(("akidac.passes", "akidac.frontend", "akidac.api",
                                   "akidac.report", "akidac.ir", "onnx_ir")))
print(json.dumps({"shape": list(y.shape), "compiler_modules": compiler}))
"""


def test_a_hybrid_model_runs_in_a_process_that_never_imports_the_compiler(tmp_path: Path) -> None:
    hybrid = tmp_path / "hybrid.onnx"
    onnx.save(conv_net(), tmp_path / "float.onnx")
    compile_model(tmp_path / "float.onnx", hybrid, options=CompileOptions(num_samples=2))
    root = Path(__file__).parents[2]
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(hybrid)],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert data["shape"] == [1, 10]
    assert data["compiler_modules"] == []
