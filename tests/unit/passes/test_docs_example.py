"""The pass example in docs/passes.md runs as written."""

from __future__ import annotations

import re
from pathlib import Path

from models import conv_net

from akidac.frontend import import_model
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
