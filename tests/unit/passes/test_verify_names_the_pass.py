"""`VerifyInstrument` blames the pass that broke the IR, not the one after it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import pytest
from models import tiny_conv_model

from akidac.frontend import import_model
from akidac.ir.graph import Graph
from akidac.ir.verifier import VerificationError
from akidac.passes import PassContext, PassManager, PassResult, VerifyInstrument


@dataclass(frozen=True)
class DropDialect:
    """Breaks an IR invariant on purpose: the first op loses its dialect prefix."""

    name: ClassVar[str] = "drop-dialect"

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        graph.ops[0].kind = graph.ops[0].op_type
        return PassResult(graph, True)


def test_a_verifier_error_names_the_pass_that_broke_the_ir() -> None:
    graph = import_model(tiny_conv_model())
    manager = PassManager(["import-cleanup", DropDialect(), "canonicalize"], [VerifyInstrument()])
    with pytest.raises(VerificationError) as caught:
        manager.run(graph, PassContext())
    assert caught.value.pass_name == "drop-dialect"
    assert "IR verification failed after pass 'drop-dialect' (a bug in that pass)" in str(
        caught.value
    )
    assert "has no dialect prefix" in str(caught.value)


def test_an_intact_pipeline_passes_the_verifier_after_every_pass() -> None:
    graph = import_model(tiny_conv_model())
    result = PassManager(["import-cleanup", "canonicalize"], [VerifyInstrument()]).run(
        graph, PassContext()
    )
    assert result.graph.ops
