"""Opset normalization at import: every pass sees one form of each ONNX operator.

An attribute that a later opset turned into an input (`akidac.ir.opset_forms`: Squeeze,
Unsqueeze and ReduceSum `axes` and Split `split` before opset 13, the other Reduce* `axes`
before 18) becomes a constant int64 input here, once; the exporter turns it back into the
attribute for the model's opset. So a pass reads `axes` from input 1 whatever the model's opset,
and no pass handles two forms.
"""

from __future__ import annotations

import numpy as np

from akidac.ir.attributes import as_ints
from akidac.ir.graph import Graph
from akidac.ir.opset_forms import moved_attribute


def normalize_opset_forms(graph: Graph) -> None:
    """Move every attribute that is an input in newer opsets into that input (a constant)."""
    opset = graph.opset_imports.get("")
    for op in graph.ops:
        moved = moved_attribute(op.op_type, op.domain, opset)
        if moved is None or moved.attribute not in op.attrs:
            continue
        what = f"attribute {moved.attribute!r} of {op.op_type} '{op.display_name}'"
        values = as_ints(op.attrs.pop(moved.attribute), what)
        constant = graph.add_constant(
            f"{op.display_name}_{moved.attribute}", np.array(values, np.int64), fresh=True
        )
        while len(op.inputs) <= moved.index:
            op.inputs.append(None)
        graph.set_input(op, moved.index, constant)
