"""A zero Pad of the channel axis read by an Add → a 1×1 Conv whose weights are [0; I; 0].

BlazeFace/BlazePalm residual blocks (MediaPipe, converted by tf2onnx) widen the shortcut to the
branch's channel count with a constant-zero Pad of axis 1 before the Add. A 1×1 Conv with C
input and b + C + e output channels, weights `W[b + c, c] = 1` and 0 elsewhere, no bias,
computes the same map: output channel b + c is input channel c, and the b channels before and
the e after are sums of zero products, i.e. 0. Akida has no Pad, but it runs this layer, so the
residual block stays in one region instead of ending it at the Pad. The rule fires only for a
Pad that an Add reads (where it cuts a region); padding with another value, another mode, or on
another axis is left alone.
"""

from __future__ import annotations

import numpy as np

from akidac.ir.graph import Graph, Op
from akidac.passes.rewrites.rule import (
    Miss,
    Outcome,
    RewriteRule,
    const_of,
    derived_constant,
    float_dtype,
    replace_value,
)


def _channel_pads(op: Op) -> tuple[int, int] | None:
    """(before, after) of a rank-4 Pad that pads axis 1 alone with zeros, else None."""
    if op.attrs.get("mode", "constant") != "constant":
        return None
    if len(op.inputs) > 3 and op.inputs[3] is not None:
        return None
    if len(op.inputs) > 2 and op.inputs[2] is not None:
        value = const_of(op.inputs[2])
        if value is None or (value.size and float(value.reshape(-1)[0]) != 0.0):
            return None
    pads = const_of(op.inputs[1]) if len(op.inputs) > 1 else None
    if pads is None or pads.size != 8:
        return None
    flat = [int(p) for p in pads.reshape(-1)]
    before, after = flat[1], flat[5]
    if any(flat[i] for i in (0, 2, 3, 4, 6, 7)) or before < 0 or after < 0:
        return None
    return before, after


def channel_pad_to_conv(graph: Graph, op: Op, by: str) -> Outcome:
    """Pad of zeros on axis 1 (b before, e after) of a static NCHW float map that an Add reads
    → 1×1 Conv with weights W[b + c, c, 0, 0] = 1, zeros elsewhere, no bias."""
    x, result = op.inputs[0], op.outputs[0]
    if x is None or x.type.rank != 4 or not x.type.is_static:
        return False
    if not any(u.op_type == "Add" and not u.domain for u in result.users):
        return False
    found = _channel_pads(op)
    if found is None:
        return Miss(
            f"Pad '{op.display_name}' before an Add is not a zero padding of the channel axis "
            "alone (constant mode, value 0, non-negative pads)"
        )
    before, after = found
    if before == after == 0:
        return False
    dtype = float_dtype(x)
    if dtype is None:
        return False
    channels = x.type.dims[1]
    weights = np.zeros((before + channels + after, channels, 1, 1), dtype)
    weights[before + np.arange(channels), np.arange(channels), 0, 0] = 1
    kernel = derived_constant(graph, op.display_name, "identity", weights)
    conv = graph.make_op(
        "onnx.Conv",
        [x, kernel],
        [result.type],
        result_names=[result.name],
        attrs={"kernel_shape": [1, 1]},
        origin=op.origin,
        created_by=by,
        fresh_names=True,
        index=graph.ops.index(op),
    )
    # it moves data and computes nothing of the model's own: `partition` never makes a region
    # of such layers and merges alone (AK-REGION-NO-MACS), where it would only add transfers
    conv.annotations["inserted"] = "channel_pad"
    conv.meta["channel_pads"] = (before, after)  # `partition` restores the Pad off Akida
    replace_value(graph, [op], result, conv.outputs[0])
    return True


RULE = RewriteRule("channel-pad-to-conv", frozenset({"Pad"}), channel_pad_to_conv)
