"""akidac: an ONNX compiler for BrainChip Akida 2, with CPU fallback and a bit-exact hardware model.

import akidac
result = akidac.compile_model("model.onnx", "hybrid.onnx")
outputs = akidac.HybridSession("hybrid.onnx").run(None, {"input": x})
"""

from akidac.api import CompileResult, analyze, compile_model
from akidac.passes import CompileOptions, Pass, PassManager, PassResult, register_pass
from akidac.runtime.session import HybridSession

__version__ = "0.1.0"

__all__ = [
    "CompileOptions",
    "CompileResult",
    "HybridSession",
    "Pass",
    "PassManager",
    "PassResult",
    "analyze",
    "compile_model",
    "register_pass",
]
