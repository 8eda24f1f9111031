"""A pipeline that forms Akida regions but never quantizes them warns (AK-UNQUANTIZED)."""

from __future__ import annotations

from models import conv_net

from akidac.api import ANALYZE_PIPELINE, compile_model
from akidac.passes import DEFAULT_PIPELINE, CompileOptions

OPTIONS = CompileOptions(num_samples=2, fidelity_samples=0)


def test_a_pipeline_without_quantize_warns_and_runs_everything_on_the_cpu() -> None:
    result = compile_model(conv_net(), options=OPTIONS, passes=list(ANALYZE_PIPELINE))
    warnings = [d for d in result.diagnostics.items if d.code == "AK-UNQUANTIZED"]
    assert len(warnings) == 1
    assert warnings[0].severity == "warning"
    assert "left 1 Akida region(s)" in warnings[0].message
    assert "'quantize' after 'partition'" in warnings[0].message
    assert result.programs == []
    assert not [n for n in result.model.graph.node if n.op_type == "AkidaOp"]


def test_the_default_pipeline_does_not_warn() -> None:
    result = compile_model(conv_net(), options=OPTIONS, passes=list(DEFAULT_PIPELINE))
    assert not [d for d in result.diagnostics.items if d.code == "AK-UNQUANTIZED"]
    assert len(result.programs) == 1
