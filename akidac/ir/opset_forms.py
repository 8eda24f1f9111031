"""ONNX operators whose form changed between the opsets akidac accepts (11–21), in one table.

Some operators moved an attribute into an input in a later opset: `axes` of Squeeze, Unsqueeze
and ReduceSum became an input in opset 13, `split` of Split in 13, `axes` of the other Reduce*
operators in 18. The frontend moves such an attribute into a constant int64 input at import
(`akidac.frontend.opset_forms`), so every pass sees the newer form only; the exporter moves it
back when the model's opset predates the input (`to_legacy_attribute`), so a CPU node is
re-emitted in the form its opset defines. (Clip's bounds and Pad's pads became inputs in opset
11, the oldest accepted, so they always arrive as inputs.)
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MovedAttribute:
    """`attribute` of `op_type` is input number `index` from opset `since` on."""

    op_type: str
    attribute: str
    index: int
    since: int


_REDUCE_18 = (
    "ReduceMean",
    "ReduceMax",
    "ReduceMin",
    "ReduceProd",
    "ReduceL1",
    "ReduceL2",
    "ReduceLogSum",
    "ReduceLogSumExp",
    "ReduceSumSquare",
)

MOVED_ATTRIBUTES: dict[str, MovedAttribute] = {
    moved.op_type: moved
    for moved in (
        MovedAttribute("Squeeze", "axes", 1, 13),
        MovedAttribute("Unsqueeze", "axes", 1, 13),
        MovedAttribute("ReduceSum", "axes", 1, 13),
        MovedAttribute("Split", "split", 1, 13),
        *(MovedAttribute(op_type, "axes", 1, 18) for op_type in _REDUCE_18),
    )
}


def moved_attribute(op_type: str, domain: str, opset: int | None) -> MovedAttribute | None:
    """The attribute of a default-domain `op_type` that is an input only after `opset`, if any
    (None for an unknown opset: the newest form)."""
    if domain or opset is None:
        return None
    moved = MOVED_ATTRIBUTES.get(op_type)
    return moved if moved is not None and opset < moved.since else None
