"""The pass examples in docs/passes.md run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from models import conv_net

from akidac.frontend import import_model
from akidac.ir.graph import Graph
from akidac.passes import PassContext, PassManager

DOC = Path(__file__).parents[3] / "docs" / "passes.md"


def test_the_user_pass_of_docs_passes_md_runs_in_a_pass_manager() -> None:
    code = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S).group(1)  # type: ignore[union-attr]
    assert 12 <= len(code.strip().splitlines()) <= 25
    namespace: dict[str, object] = {}
    exec(compile(code, str(DOC), "exec"), namespace)
    ctx = PassContext()
    graph = import_model(conv_net())
    PassManager(["legalize", "count-cpu-relus"]).run(graph, ctx)
    assert ctx.analyses["cpu_relus"] == 5
    PassManager(["legalize", "fuse", "count-cpu-relus"]).run(import_model(conv_net()), ctx)
    assert ctx.analyses["cpu_relus"] == 0


def _block_after(heading: str) -> str:
    """The first python block of docs/passes.md after `heading`."""
    text = DOC.read_text().split(f"\n{heading}\n", 1)[1]
    return re.search(r"```python\n(.*?)```", text, re.S).group(1)  # type: ignore[union-attr]


def test_quantize_runs_from_a_researchers_own_pass_context_as_docs_passes_md_shows(
    capsys: pytest.CaptureFixture[str],
) -> None:
    namespace: dict[str, object] = {"model": conv_net()}
    exec(compile(_block_after("## Running passes from Python"), str(DOC), "exec"), namespace)
    # the first compile calibrated on the researcher's own 16 feeds
    printed = capsys.readouterr().out
    assert "'samples': 16, 'random': False, 'source': 'mine'" in printed
    ctx = namespace["ctx"]
    graph = namespace["graph"]
    assert isinstance(ctx, PassContext) and isinstance(graph, Graph)
    # the last compile: calibrated on the options' seeded random samples, every layer 4-bit
    assert ctx.analyses["calibration"]["samples"] == 8
    assert ctx.analyses["calibration"]["random"] is True
    layers = [op for op in graph.ops if op.dialect == "akida"]
    assert layers and all(op.attrs.get("quantized") is True for op in layers)
    assert {op.attrs.get("abits") for op in layers} == {4}
