"""A stride-2 5×5/7×7 depthwise Conv → a stride-1 depthwise Conv, then a 1×1 stride-2 identity.

Akida's depthwise layers stride 2 only with a 3×3 kernel. Along one axis a stride-s Conv reads
`y[o] = Σ_t w[t] · x[o·s − p_b + t]`; the stride-1 Conv with the same begin pad computes
`z[j] = Σ_t w[t] · x[j − p_b + t]`, so `y[o] = z[2o]`: keeping every second row and column of z,
which a 1×1 Conv with stride 2 and identity weights (C → C, no bias) does. The bias commutes
with the subsampling and stays on the first Conv.

The identity holds for any pads, but the split helps only when the stride-1 layer is one Akida
can run, i.e. its pads are "same" (k // 2 on both sides) or "valid" (0); the end pad of the
stride-1 layer only adds rows past the last one sampled. So the rule fires when, on both axes,
either p_b = k // 2 and the output has ⌈n / 2⌉ rows (PyTorch's symmetric `padding = k // 2`,
whatever the end pad), or p_b = 0 and the output has ⌊(n − k) / 2⌋ + 1 rows (no padding). Other
pads are left alone.

TensorFlow's "same" on an even input puts p_b = k // 2 − 1 before (pads [1, 1, 2, 2] for 5×5):
then, with the stride-1 layer padded k // 2 ("same"), `y[o] = z[2o + 1]`, the odd rows and
columns. A 1×1 stride-2 Conv cannot select those, but a 3×3 stride-2 depthwise Conv whose only
non-zero tap is its centre (1), with TF "same" pads [0, 0, 1, 1], computes
`u[o] = Σ_a v[a] · z[2o + a] = z[2o + 1]` (the padded row meets a zero tap), and gives ⌊n / 2⌋
rows, TF's ⌈n / 2⌉ for an even n. Both axes must sample alike (both even or both odd rows).
"""

from __future__ import annotations

import numpy as np

from akidac.ir.attributes import AttrValue
from akidac.ir.graph import Graph, Op
from akidac.ir.types import dtype_to_numpy
from akidac.passes.rewrites.rule import (
    Miss,
    Outcome,
    RewriteRule,
    conv_geometry,
    derived_constant,
    explicit_conv_pads,
    replace_ops,
    static_hw,
    with_pads,
)

#: depthwise kernel sizes Akida runs only at stride 1.
SPLIT_KERNELS = (5, 7)


def is_depthwise(op: Op) -> bool:
    """A Conv with one filter per input channel (group = Cin = Cout, Cin > 1)."""
    x, weight = op.inputs[0], op.inputs[1]
    if x is None or weight is None or x.type.rank != 4 or weight.type.rank != 4:
        return False
    x_shape, weight_shape = x.type.shape, weight.type.shape
    assert x_shape is not None and weight_shape is not None  # both are 4-D
    channels = x_shape[1]
    group = op.int_attr("group", 1)
    return group > 1 and group == channels and weight_shape[0] == channels


def _stride1_pad(n: int, k: int, out: int, before: int) -> tuple[int, int] | None:
    """(the symmetric pad of the stride-1 layer, the offset 0 or 1 of the rows the stride-2 one
    samples from it), or None."""
    if before == k // 2 and out == -(-n // 2):
        return k // 2, 0
    if before == k // 2 - 1 and out == n // 2:
        return k // 2, 1
    if before == 0 and out == (n - k) // 2 + 1:
        return 0, 0
    return None


def split_strided_depthwise(graph: Graph, op: Op, by: str) -> Outcome:
    """Depthwise Conv 5×5/7×7 with stride 2 and pads k // 2 (or 0) before → the same Conv at
    stride 1 with pads k // 2 (or 0) on both sides, then a 1×1 stride-2 Conv with identity
    weights; with TF "same" pads on an even input (k // 2 − 1 before), a centre-tap 3×3
    stride-2 depthwise Conv with pads [0, 0, 1, 1] instead."""
    x, weight, result = op.inputs[0], op.inputs[1], op.outputs[0]
    in_hw, out_hw = static_hw(x), static_hw(result)
    if x is None or weight is None or in_hw is None or out_hw is None or not is_depthwise(op):
        return False
    kernel, strides, dilations = conv_geometry(op)
    if strides != [2, 2] or any(k not in SPLIT_KERNELS for k in kernel):
        return False
    name = f"depthwise Conv '{op.display_name}'"
    if dilations != [1, 1]:
        return Miss(f"{name} has dilation {dilations}")
    pads = explicit_conv_pads(op, in_hw)
    if pads is None:
        return Miss(f"{name} has an unknown auto_pad")
    found = [_stride1_pad(in_hw[a], kernel[a], out_hw[a], pads[a]) for a in (0, 1)]
    forms = [f for f in found if f is not None]
    if len(forms) != 2 or len({(pad == 0, offset) for pad, offset in forms}) != 1:
        return Miss(
            f"{name} has pads {pads}; the split needs k // 2 before (PyTorch padding), "
            "k // 2 − 1 before on an even input (TensorFlow 'same') or no padding, alike on "
            "both axes, so that the stride-1 layer has Akida 'same' or 'valid' pads"
        )
    (pad_h, offset), (pad_w, _) = forms
    mid_hw = [in_hw[a] + 2 * (pad_h, pad_w)[a] - kernel[a] + 1 for a in (0, 1)]
    n, channels = result.type.dims[0], result.type.dims[1]
    attrs = with_pads(op.attrs, [pad_h, pad_w, pad_h, pad_w])
    attrs["strides"] = [1, 1]
    first = graph.make_op(
        "onnx.Conv",
        op.inputs,
        [result.type.with_shape((n, channels, *mid_hw))],
        result_names=[f"{result.name}_stride1"],
        attrs=attrs,
        origin=op.origin,
        created_by=by,
        fresh_names=True,
        index=graph.ops.index(op),
    )
    dtype = dtype_to_numpy(weight.type.dtype)
    second_attrs: dict[str, AttrValue] = {"strides": [2, 2]}
    if offset == 0:
        taps = np.eye(channels, dtype=dtype).reshape(channels, channels, 1, 1)
        second_attrs["kernel_shape"] = [1, 1]
    else:  # the odd rows and columns: a centre-tap 3×3 depthwise Conv with TF "same" pads
        taps = np.zeros((channels, 1, 3, 3), dtype)
        taps[:, 0, 1, 1] = 1
        second_attrs.update(kernel_shape=[3, 3], pads=[0, 0, 1, 1], group=channels)
    identity = derived_constant(graph, op.display_name, "identity", taps)
    replace_ops(graph, [op], "onnx.Conv", [first.outputs[0], identity], by, attrs=second_attrs)
    return True


RULE = RewriteRule("split-strided-depthwise", frozenset({"Conv"}), split_strided_depthwise)
