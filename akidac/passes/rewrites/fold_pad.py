"""An explicit zero `Pad` of H and W before a Conv → the Conv's own pads.

A Conv pads its input with zeros before it slides the kernel, so padding first with zeros and
then convolving with pads p is the same as convolving with pads p + q:

    Conv(Pad(x, q, value 0), pads = p)  =  Conv(x, pads = p + q)

(per side, pads [top, left, bottom, right]; an `auto_pad` of the Conv is resolved on the padded
size first). Only constant-mode padding with value 0, non-negative and on H/W alone, folds; the
Pad must feed nothing but Convs (as their data input), and then it folds into each of them.
"""

from __future__ import annotations

import numpy as np

from akidac.ir.graph import Graph, Op
from akidac.passes.rewrites.rule import (
    Miss,
    Outcome,
    RewriteRule,
    const_of,
    explicit_conv_pads,
    replace_ops,
    static_hw,
    with_pads,
)


def _spatial_pads(op: Op) -> list[int] | str:
    """[top, left, bottom, right] of a rank-4 Pad, or why it is not a zero H/W padding."""
    name = f"Pad '{op.display_name}'"
    mode = op.attrs.get("mode", "constant")
    if mode != "constant":
        return f"{name} has mode '{mode}'; a Conv pads only with zeros"
    value = const_of(op.inputs[2]) if len(op.inputs) > 2 and op.inputs[2] is not None else None
    if len(op.inputs) > 2 and op.inputs[2] is not None and value is None:
        return f"the padding value of {name} is not constant"
    if value is not None and value.size and float(value.reshape(-1)[0]) != 0.0:
        return f"{name} pads with {float(value.reshape(-1)[0]):g}; a Conv pads only with zeros"
    pads = const_of(op.inputs[1]) if len(op.inputs) > 1 else None
    if pads is None:
        return f"the pads of {name} are not constant"
    axes_value = op.inputs[3] if len(op.inputs) > 3 else None
    axes = [0, 1, 2, 3]
    if axes_value is not None:
        axes_array = const_of(axes_value)
        if axes_array is None:
            return f"the axes of {name} are not constant"
        axes = [int(a) % 4 for a in axes_array.reshape(-1)]
    flat = [int(p) for p in np.asarray(pads).reshape(-1)]
    if len(flat) != 2 * len(axes):
        return f"{name} has {len(flat)} pads for {len(axes)} axes"
    full = [0] * 8
    for i, axis in enumerate(axes):
        full[axis], full[axis + 4] = flat[i], flat[i + len(axes)]
    if any(full[a] or full[a + 4] for a in (0, 1)):
        return f"{name} pads the batch or channel axis"
    if any(p < 0 for p in full):
        return f"{name} crops (negative pads)"
    return [full[2], full[3], full[6], full[7]]


def fold_pad(graph: Graph, op: Op, by: str) -> Outcome:
    """Pad (constant 0, H/W only) whose every reader is a Conv → each Conv with pads p + q."""
    padded = op.outputs[0]
    x = op.inputs[0]
    if x is None or x.type.rank != 4 or not padded.users:
        return False
    convs = [
        u for u in padded.users if u.kind == "onnx.Conv" and not u.domain and u.inputs[0] is padded
    ]
    if not convs:
        return False
    name = f"Pad '{op.display_name}'"
    if len(convs) != len(padded.users) or graph.is_pinned(padded):
        return Miss(f"{name} is also read by ops other than a Conv's data input")
    extra = _spatial_pads(op)
    if isinstance(extra, str):
        return Miss(extra)
    in_hw = static_hw(padded)
    found = [explicit_conv_pads(conv, in_hw) if in_hw else None for conv in convs]
    conv_pads = [p for p in found if p is not None]
    if len(conv_pads) != len(convs):
        return Miss(f"{name} feeds a Conv whose auto_pad cannot be resolved")
    for conv, pads in zip(convs, conv_pads, strict=True):
        summed = [a + b for a, b in zip(pads, extra, strict=True)]
        replace_ops(
            graph,
            [conv],
            "onnx.Conv",
            [x, *conv.inputs[1:]],
            by,
            attrs=with_pads(conv.attrs, summed),
            origin=(*conv.origin, *op.origin),
        )
    graph.remove_op(op)
    return True


RULE = RewriteRule("fold-pad-into-conv", frozenset({"Pad"}), fold_pad)
