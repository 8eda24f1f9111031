"""Even Conv kernels (2, 4, 6) → odd ones (3, 5, 7) by a zero tap, with the pads shifted.

Along one axis, ONNX Conv computes `y[o] = Σ_{t<k} w[t] · x[o·s − p_b + t]` for
`o < ⌊(n + p_b + p_e − k) / s⌋ + 1`. A zero tap on either side leaves both unchanged:
- appended, `w'[k] = 0`: the new tap reads one pixel past the window, times 0; pads (p_b, p_e + 1)
  keep the output size;
- prepended, `w'[0] = 0, w'[t + 1] = w[t]`: `y[o] = Σ_t w[t] · x[o·s − p'_b + t + 1]`, the same
  sum when p'_b = p_b + 1; pads (p_b + 1, p_e).
Both are exact, so the rule picks, per axis, the side whose pads Akida can express: first the
one that lets a stride-2 5×5/7×7 depthwise conv be split (`split-strided-depthwise` needs a
begin pad of k // 2), then "same", then "same_upper", then "valid"; when neither side gives
pads Akida runs, the Conv keeps its kernel (a near miss), so a report shows the model's own
kernel, pads and MACs.
"""

from __future__ import annotations

import numpy as np

from akidac.ir.graph import Graph, Op
from akidac.passes.rewrites.rule import (
    Miss,
    Outcome,
    RewriteRule,
    const_of,
    conv_geometry,
    derived_constant,
    explicit_conv_pads,
    replace_ops,
    static_hw,
    with_pads,
)
from akidac.passes.rewrites.strided_depthwise import SPLIT_KERNELS, is_depthwise
from akidac.target.constraints import classify_padding

#: even kernel sizes that become an odd size Akida has (its largest kernel is 7).
EVEN_KERNELS = (2, 4, 6)
_MODE_RANK = {"same": 0, "same_upper": 1, "valid": 2, "explicit": 3}


def _rank(n: int, kernel: int, stride: int, pads: tuple[int, int], split: bool) -> tuple[int, int]:
    """Sort key of one axis's padding choice: split-ready first, then by Akida padding mode."""
    before, after = pads
    mode = classify_padding(
        "conv2d", (kernel, kernel), (stride, stride), (n, n), (before, before, after, after)
    )
    split_ready = split and before == kernel // 2
    return (0 if split_ready else 1, _MODE_RANK[mode])


def even_kernel_to_odd(graph: Graph, op: Op, by: str) -> Outcome:
    """Conv with an even kernel (2, 4 or 6 on an axis) → the same Conv with a zero row/column
    appended or prepended and the pads on that side grown by one."""
    x, weight = op.inputs[0], op.inputs[1]
    in_hw = static_hw(x)
    if in_hw is None or weight is None or weight.type.rank != 4:
        return False
    kernel, strides, dilations = conv_geometry(op)
    even = [axis for axis in (0, 1) if kernel[axis] % 2 == 0]
    if not even:
        return False
    name = f"Conv '{op.display_name}'"
    size = "×".join(str(k) for k in kernel)
    if any(kernel[axis] not in EVEN_KERNELS for axis in even):
        return Miss(f"{name} has kernel {size}; only even sizes up to 6 become odd ones")
    if any(dilations[axis] != 1 for axis in even):
        return Miss(f"{name} has kernel {size} with dilation {dilations}")
    w = const_of(weight)
    if w is None:
        return Miss(f"the weights of {name} are not constant")
    pads = explicit_conv_pads(op, in_hw)
    if pads is None:
        return Miss(f"{name} has an unknown auto_pad")
    new_kernel = list(kernel)
    new_pads = list(pads)
    taps = [(0, 0), (0, 0)]
    for axis in even:
        k, s = kernel[axis] + 1, strides[axis]
        before, after = pads[axis], pads[axis + 2]
        split = is_depthwise(op) and k in SPLIT_KERNELS and s == 2
        options = [((before, after + 1), (0, 1)), ((before + 1, after), (1, 0))]
        best = min(options, key=lambda o: _rank(in_hw[axis], k, s, o[0], split))
        if _rank(in_hw[axis], k, s, best[0], split) == (1, _MODE_RANK["explicit"]):
            return Miss(
                f"{name} has kernel {size} and pads {pads}; no zero tap gives pads Akida runs, "
                "so it keeps its own kernel"
            )
        (new_pads[axis], new_pads[axis + 2]), taps[axis] = best
        new_kernel[axis] = k
    new_w = np.pad(w, [(0, 0), (0, 0), taps[0], taps[1]])
    attrs = with_pads(op.attrs, new_pads)
    if "kernel_shape" in attrs:
        attrs["kernel_shape"] = new_kernel
    new_weight = derived_constant(graph, weight.name, "odd", new_w)
    replace_ops(graph, [op], "onnx.Conv", [x, new_weight, *op.inputs[2:]], by, attrs=attrs)
    return True


RULE = RewriteRule("even-kernel-to-odd", frozenset({"Conv"}), even_kernel_to_odd)
