"""Quantized Akida region (IR ops) → `Program` of `LayerRecord`s, the vendor's vocabulary.

This is the only place that knows how Akida stores kernels: ONNX OIHW cross-correlation
weights become `(KH, KW, Cin, F)` and, for Conv2D and DepthwiseConv2D, which the chip applies
as a true convolution, are flipped in H and W. A Dense1D fed by a 4-D map reads it flattened in
(H, W, C) order, so the rows of an ONNX (C, H, W)-flattened weight are permuted here.
"""

from __future__ import annotations

import numpy as np

from akidac.backends.akida.program import Program, ProgramTensor
from akidac.ir.akida_dialect import akida_attr
from akidac.ir.attributes import DenseAttr
from akidac.ir.graph import Op, Value
from akidac.target.layer_record import LayerRecord

_TYPE_NAMES = {
    "akida.conv2d": "Conv2D",
    "akida.depthwise_conv2d": "DepthwiseConv2D",
    "akida.input_conv2d": "InputConv2D",
    "akida.conv2d_transpose": "Conv2DTranspose",
    "akida.depthwise_conv2d_transpose": "DepthwiseConv2DTranspose",
    "akida.dense": "Dense1D",
}
_NP_DTYPES = {"i8": "int8", "u8": "uint8", "i16": "int16", "i32": "int32"}
_PADDING = {"same": "Same", "same_upper": "SameUpper", "valid": "Valid"}
_VARIABLES = (
    "input_shift",
    "bias",
    "bias_shift",
    "max_value",
    "max_value_shift",
    "output_scales",
    "output_shift",
)


def hwc(value: Value) -> tuple[int, int, int]:
    """(H, W, C) of a region value: NHWC 4-D, or (1, 1, F) for a 2-D value."""
    shape = [int(d) for d in value.type.shape or ()]  # type: ignore[arg-type]
    if len(shape) == 4:
        return shape[1], shape[2], shape[3]
    if len(shape) == 2:
        return 1, 1, shape[1]
    raise ValueError(f"region value {value.name!r} has rank {len(shape)}; expected 2 or 4")


def akida_weights(op: Op) -> np.ndarray:
    """The op's int8 weights in Akida's layout (flipped where the chip convolves)."""
    weights = np.asarray(op.inputs[1].const)  # type: ignore[union-attr]
    if op.kind == "akida.dense":
        x = op.inputs[0]
        assert x is not None
        if x.type.rank == 4:
            h, w, c = hwc(x)
            units = weights.shape[1]
            # ONNX flattened (C, H, W); Akida reads (H, W, C)
            weights = weights.reshape(c, h, w, units).transpose(1, 2, 0, 3).reshape(-1, units)
        return np.ascontiguousarray(weights.astype(np.int8))
    kernel = weights.transpose(2, 3, 1, 0)  # (F, Cin, KH, KW) → (KH, KW, Cin, F)
    if op.kind in ("akida.conv2d", "akida.depthwise_conv2d"):
        kernel = kernel[::-1, ::-1]
    if op.kind == "akida.depthwise_conv2d":
        kernel = kernel.transpose(0, 1, 3, 2)  # (KH, KW, 1, C) → (KH, KW, C, 1)
    return np.ascontiguousarray(kernel.astype(np.int8))


def layer_record(op: Op, inbound: str) -> LayerRecord:
    """The `LayerRecord` of one quantized akida op."""
    if not op.attrs.get("quantized"):
        raise ValueError(f"{op.kind} {op.display_name!r} is not quantized")
    layer_type = _TYPE_NAMES[op.kind]
    output = op.outputs[0]
    params: dict[str, int | str] = {
        "output_bits": int(op.attrs["output_bits"]),  # type: ignore[arg-type]
        "buffer_bits": 28,
        "post_op_buffer_bits": 32,
        "weights_bits": int(akida_attr(op, "wbits")),  # type: ignore[arg-type]
        "activation": "ReLU" if akida_attr(op, "act") == "relu" else "NoActivation",
    }
    weights = akida_weights(op)
    if layer_type == "Dense1D":
        params["units"] = int(weights.shape[1])
    else:
        kernel = akida_attr(op, "kernel")
        params["kernel_size"] = int(kernel[0])  # type: ignore[index]
        params["kernel_stride"] = int(akida_attr(op, "stride")[0])  # type: ignore[index]
        params["padding"] = _PADDING[str(akida_attr(op, "pad"))]
        params["filters"] = int(
            weights.shape[3] if layer_type != "DepthwiseConv2D" else weights.shape[2]
        )
        pool = akida_attr(op, "pool")
        if pool == "max":
            params["pool_type"] = "Max"
            params["pool_size"] = int(op.attrs["pool_size"][0])  # type: ignore[index]
            params["pool_stride"] = int(op.attrs["pool_stride"][0])  # type: ignore[index]
        else:
            params["pool_type"] = "Average" if akida_attr(op, "gap") else "NoPooling"
            params["pool_size"] = -1
            params["pool_stride"] = -1
    variables = {"weights": weights}
    for name in _VARIABLES:
        value = op.attrs.get(name)
        if isinstance(value, DenseAttr):
            variables[name] = np.ascontiguousarray(value.array)
    return LayerRecord(
        name=op.display_name,
        layer_type=layer_type,
        inbounds=[inbound],
        params=params,
        variables=variables,
        output_dims=hwc(output),
    )


def region_program(
    ops: list[Op],
    region_input: Value,
    device: str,
    np_assignment: dict[str, list[int]] | None = None,
) -> Program:
    """The `Program` of one region: an InputData record, then one record per layer."""
    in_dims = hwc(region_input)
    in_dtype = _NP_DTYPES[region_input.type.dtype]
    input_bits = region_input.type.quant.bits if region_input.type.quant else 8
    records = [
        LayerRecord(
            name="input",
            layer_type="InputData",
            params={
                "input_bits": input_bits,
                "input_signed": int(in_dtype.startswith("int")),
                "input_height": in_dims[0],
                "input_width": in_dims[1],
                "input_channels": in_dims[2],
            },
            output_dims=in_dims,
        )
    ]
    names: dict[int, str] = {id(region_input): "input"}
    origins: dict[str, list[str]] = {}
    for op in ops:
        x = op.inputs[0]
        record = layer_record(op, names[id(x)])
        if any(r.name == record.name for r in records):
            record.name = f"{record.name}#{len(records)}"
        names[id(op.outputs[0])] = record.name
        records.append(record)
        origins[record.name] = list(op.origin)
    last = records[-1]
    output = ops[-1].outputs[0]
    return Program(
        device=device,
        layers=records,
        input=ProgramTensor(in_dims, in_dtype),
        output_layer=last.name,
        output=ProgramTensor(hwc(output), _NP_DTYPES[output.type.dtype]),
        np_assignment=dict(np_assignment or {}),
        passes=[[r.name for r in records[1:]]],
        origins=origins,
    )
