"""Passes over the IR: the `Pass` protocol, `PassManager`, the registry, the default pipeline.

from akidac.passes import Pass, PassManager, PassResult, register_pass
"""

from akidac.passes.base import (
    PASS_API_VERSION,
    CompileOptions,
    Pass,
    PassContext,
    PassResult,
)
from akidac.passes.builtin import create_pass, registered_passes
from akidac.passes.manager import DumpInstrument, PassManager, TimingInstrument, VerifyInstrument
from akidac.passes.pipeline import DEFAULT_PIPELINE
from akidac.passes.registry import register_pass

__all__ = [
    "DEFAULT_PIPELINE",
    "PASS_API_VERSION",
    "CompileOptions",
    "DumpInstrument",
    "Pass",
    "PassContext",
    "PassManager",
    "PassResult",
    "TimingInstrument",
    "VerifyInstrument",
    "create_pass",
    "register_pass",
    "registered_passes",
]
