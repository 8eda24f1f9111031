"""What legalize and fuse know about an ONNX op as a would-be Akida layer.

`describe_anchor` reads an `onnx.Conv`/`Gemm`/`MatMul` op into the fields of
`akidac.target.constraints.LayerCandidate` (kind, kernel, stride, padding mode, channels ...);
the target package then judges it. Padding is matched to Akida's modes here: TF "same" puts
the odd pixel bottom/right (`same`), PyTorch-style symmetric pads on an even input with
stride 2 put it top/left (`same_upper`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from akidac.ir.attributes import pair, quad
from akidac.ir.graph import Op, Value
from akidac.ir.onnx_export import same_pads
from akidac.ir.types import dtype_to_numpy
from akidac.target.constraints import LayerCandidate, Violation, check_layer


def match_padding(size: int, kernel: int, stride: int, before: int, after: int) -> str:
    """Akida padding mode ('same', 'same_upper', 'valid') equal to ONNX pads, or 'explicit'."""
    if before == 0 and after == 0 and (kernel == 1 or size < kernel or kernel <= stride):
        # a 1×1 (or stride ≥ kernel) window never reaches padding when TF 'same' pads 0
        if same_pads(size, kernel, stride, upper=False) == (0, 0):
            return "same"
    if before == 0 and after == 0:
        return "valid"
    out = (size + before + after - kernel) // stride + 1
    if out != -(-size // stride):
        return "explicit"
    if before == same_pads(size, kernel, stride, upper=False)[0]:
        return "same"
    if before == same_pads(size, kernel, stride, upper=True)[0]:
        return "same_upper"
    return "explicit"


def conv_padding(op: Op, in_hw: tuple[int, int], kernel: list[int], stride: list[int]) -> str:
    """The Akida padding mode of an ONNX Conv (auto_pad or explicit pads)."""
    auto_pad = op.attrs.get("auto_pad", "NOTSET")
    if auto_pad == "SAME_UPPER":  # ONNX SAME_UPPER: extra pad at the end, i.e. TF 'same'
        return "same"
    if auto_pad == "SAME_LOWER":
        return "same_upper"
    if auto_pad == "VALID":
        return "valid"
    pads = op.ints_attr("pads", [0, 0, 0, 0])
    modes = {
        match_padding(in_hw[axis], kernel[axis], stride[axis], pads[axis], pads[axis + 2])
        for axis in (0, 1)
    }
    return modes.pop() if len(modes) == 1 else "explicit"


def _numpy_name(dtype: str) -> str:
    try:
        return dtype_to_numpy(dtype).name
    except ValueError:
        return dtype


def _constant_operands(op: Op) -> bool:
    """Weights and bias (or Gemm's C) must be constants: Akida stores them in the program."""
    return all(v is None or v.is_constant for v in op.inputs[1:])


def _as_input_conv(candidate: LayerCandidate, x: Value) -> LayerCandidate:
    """The first conv of a model, reading a 1- or 3-channel graph input, runs on the HRC as an
    InputConv2D (uint8 input, zero point folded into bias and padding) when the input-conv
    rules allow; otherwise it stays a regular Conv2D."""
    if candidate.kind != "conv2d" or x.producer is not None or x.is_constant:
        return candidate
    if candidate.in_channels not in (1, 3):
        return candidate
    if len({id(user) for user in x.users}) != 1:
        return candidate  # the uint8 image feeds only its input convolution
    as_input = replace(candidate, kind="input_conv2d")
    return as_input if not check_layer(as_input) else candidate


def _describe_conv_transpose(op: Op, base: dict[str, Any]) -> LayerCandidate | None:
    """ConvTranspose: Akida's transposed layers compute exactly 2H × 2W with begin pad
    (k − 2) // 2; other pads or sizes are 'explicit' (rejected by AK-PADDING)."""
    x, weight = op.inputs[0], op.inputs[1]
    if weight is None or not weight.is_constant or weight.type.rank != 4:
        return None
    if x is None or x.type.rank != 4 or not x.type.is_static:
        return None
    in_channels, per_group, kh, kw = weight.type.dims
    groups = op.int_attr("group", 1)
    filters = per_group * groups
    stride = pair(op.ints_attr("strides", [1, 1]))
    pads = op.ints_attr("pads", [0, 0, 0, 0])
    in_hw = (x.type.dims[2], x.type.dims[3])
    out = op.outputs[0].type.shape
    exact = (
        out is not None
        and tuple(out[2:]) == (2 * in_hw[0], 2 * in_hw[1])
        and pads[0] == (kh - 2) // 2
        and pads[1] == (kw - 2) // 2
        and op.attrs.get("auto_pad", "NOTSET") in ("NOTSET", "SAME_UPPER")
    )
    depthwise = groups > 1 and groups == in_channels and filters == in_channels
    return LayerCandidate(
        **base,
        kind="depthwise_conv2d_transpose" if depthwise else "conv2d_transpose",
        kernel=(kh, kw),
        stride=stride,
        dilation=pair(op.ints_attr("dilations", [1, 1])),
        padding="same" if exact else "explicit",
        pads=quad(pads),
        groups=groups,
        in_channels=in_channels,
        filters=filters,
        input_hw=in_hw,
        input_features=in_channels * in_hw[0] * in_hw[1],
    )


def _describe_merge(op: Op, base: dict[str, Any]) -> LayerCandidate | None:
    """Add of two equal-shape maps, or Concat of two maps (Akida: on channels)."""
    operands = [v for v in op.inputs if v is not None]
    if any(v.is_constant for v in operands) or not operands:
        return None
    first = operands[0].type
    if first.rank != 4 or not all(v.type.is_static and v.type.rank == 4 for v in operands):
        return None
    if op.kind == "onnx.Add" and any(v.type.shape != first.shape for v in operands):
        return None
    axis = op.int_attr("axis", 1) % 4 if op.kind == "onnx.Concat" else 1
    channels = sum(v.type.dims[1] for v in operands)
    first_dims = first.dims
    in_hw = (first_dims[2], first_dims[3])
    return LayerCandidate(
        **base,
        kind="add" if op.kind == "onnx.Add" else "concatenate",
        in_channels=first_dims[1],
        filters=first_dims[1] if op.kind == "onnx.Add" else channels,
        input_hw=in_hw,
        input_features=first_dims[1] * in_hw[0] * in_hw[1],
        num_inputs=len(operands),
        axis=axis,
    )


def describe_anchor(op: Op) -> LayerCandidate | None:
    """A `LayerCandidate` for an op that can anchor an Akida layer, else None."""
    x = op.inputs[0] if op.inputs else None
    if x is None:
        return None
    base: dict[str, Any] = {
        "node_name": op.display_name,
        "op_type": op.op_type,
        "input_dtype": _numpy_name(x.type.dtype),
    }
    if op.kind in ("onnx.Conv", "onnx.ConvTranspose", "onnx.Gemm") and not _constant_operands(op):
        return None
    if op.kind == "onnx.Conv":
        weight = op.inputs[1]
        if weight is None or weight.type.rank != 4 or x.type.rank != 4 or not x.type.is_static:
            return None
        filters, _, kh, kw = weight.type.dims
        x_dims = x.type.dims
        in_channels = x_dims[1]
        groups = op.int_attr("group", 1)
        kernel = [kh, kw]
        stride = op.ints_attr("strides", [1, 1])
        dilation = op.ints_attr("dilations", [1, 1])
        in_hw = (x_dims[2], x_dims[3])
        depthwise = groups > 1 and groups == in_channels and filters == in_channels
        candidate = LayerCandidate(
            **base,
            kind="depthwise_conv2d" if depthwise else "conv2d",
            kernel=pair(kernel),
            stride=pair(stride),
            dilation=pair(dilation),
            padding=conv_padding(op, in_hw, kernel, stride),
            pads=quad(op.ints_attr("pads", [0, 0, 0, 0])),
            groups=groups,
            in_channels=in_channels,
            filters=filters,
            input_hw=in_hw,
            input_features=in_channels * in_hw[0] * in_hw[1],
        )
        return _as_input_conv(candidate, x)
    if op.kind == "onnx.ConvTranspose":
        return _describe_conv_transpose(op, base)
    if op.kind in ("onnx.Add", "onnx.Concat"):
        return _describe_merge(op, base)
    if op.kind in ("onnx.Gemm", "onnx.MatMul"):
        weight = op.inputs[1]
        if weight is None or not weight.is_constant or weight.type.rank != 2:
            return None
        if x.type.rank != 2 or not x.type.is_static:
            return None
        if op.kind == "onnx.Gemm" and op.attrs.get("transA", 0):
            return None
        trans_b = op.kind == "onnx.Gemm" and bool(op.attrs.get("transB", 0))
        rows, cols = weight.type.dims
        inputs, units = (cols, rows) if trans_b else (rows, cols)
        return LayerCandidate(
            **base,
            kind="dense1d",
            in_channels=inputs,
            filters=units,
            input_features=inputs,
        )
    return None


def judge(candidate: LayerCandidate, **changes: Any) -> list[Violation]:
    """Every violated constraint of `candidate` with `changes` applied."""
    return check_layer(replace(candidate, **changes) if changes else candidate)
