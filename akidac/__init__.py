"""akidac: an ONNX compiler for BrainChip Akida 2, with CPU fallback and a bit-exact hardware model.

    import akidac
    result = akidac.compile_model("model.onnx", "hybrid.onnx")
    outputs = akidac.HybridSession("hybrid.onnx").run(None, {"input": x})

Names are imported lazily, so `from akidac import HybridSession` (or the runtime alone) does not
load the compiler: a hybrid model runs without it.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "CompileResult": "akidac.api",
    "analyze": "akidac.api",
    "bisect_model": "akidac.api",
    "compile_model": "akidac.api",
    "compile_to_target": "akidac.api",
    "estimate_device": "akidac.api",
    "CompileOptions": "akidac.passes",
    "Pass": "akidac.passes",
    "PassManager": "akidac.passes",
    "PassResult": "akidac.passes",
    "register_pass": "akidac.passes",
    "HybridSession": "akidac.runtime.session",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'akidac' has no attribute {name!r}")
