"""Names an ONNX subgraph (If/Loop/Scan body) reads from the enclosing graph.

Subgraphs stay opaque in the IR (`GraphAttr`), but the values they capture by name are real
uses: passes must keep those values and their names, and region borders must export them.
"""

from __future__ import annotations

import onnx


def free_names(graph: onnx.GraphProto) -> set[str]:
    """Names used inside `graph` (recursively) that it does not define itself."""
    defined = {v.name for v in graph.input} | {t.name for t in graph.initializer}
    defined |= {t.name for t in graph.sparse_initializer}
    used: set[str] = set()
    for node in graph.node:
        used.update(name for name in node.input if name)
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                used |= free_names(attr.g)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for sub in attr.graphs:
                    used |= free_names(sub)
        defined.update(node.output)
    used.update(v.name for v in graph.output)
    return used - defined
