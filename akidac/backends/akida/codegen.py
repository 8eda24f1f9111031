"""Quantized Akida region (IR ops) → `Program` of `LayerRecord`s, the vendor's vocabulary.

This is the only place that knows how Akida stores kernels: ONNX cross-correlation weights
become `(KH, KW, Cin, F)` — from OIHW for Conv2D/InputConv2D, from ConvTranspose's
(Cin, F, KH, KW) for Conv2DTranspose — and depthwise ones `(KH, KW, C, 1)` from (C, 1, KH, KW).
Conv2D and DepthwiseConv2D, which the chip applies as a true convolution, are flipped in H and
W; InputConv2D and both transposed layers are not. A Dense1D fed by a 4-D map reads it flattened
in (H, W, C) order, so the rows of an ONNX (C, H, W)-flattened weight are permuted here.
A region is one program with one input: its first layer reads the program input (an InputData
record, or the InputConv2D itself), and every other layer names its producers as `inbounds`, so
internal branches that meet in an Add or Concatenate keep their order (a first, then b).
"""

from __future__ import annotations

import numpy as np

from akidac.backends.akida.program import Program, ProgramTensor
from akidac.ir.akida_dialect import akida_attr, akida_int, akida_ints
from akidac.ir.attributes import DenseAttr
from akidac.ir.graph import Op, Value
from akidac.target import limits as lim
from akidac.target.layer_record import ADD_VARIABLES, LAYER_VARIABLES, LayerRecord

_TYPE_NAMES = {
    "akida.conv2d": "Conv2D",
    "akida.depthwise_conv2d": "DepthwiseConv2D",
    "akida.input_conv2d": "InputConv2D",
    "akida.conv2d_transpose": "Conv2DTranspose",
    "akida.depthwise_conv2d_transpose": "DepthwiseConv2DTranspose",
    "akida.dense": "Dense1D",
    "akida.add": "Add",
    "akida.concat": "Concatenate",
}
_NP_DTYPES = {"i8": "int8", "u8": "uint8", "i16": "int16", "i32": "int32"}
_PADDING = {"same": "Same", "same_upper": "SameUpper", "valid": "Valid"}
_ACTIVATIONS = {"none": "NoActivation", "relu": "ReLU", "lut": "LUT"}
#: accumulator width B: 28 bits on CNPs/FNPs, 32 on the HRC (InputConv2D) and for Add.
BUFFER_BITS = {"InputConv2D": lim.INPUT_CONV_ACCUMULATOR_BITS, "Add": lim.ADD_ACCUMULATOR_BITS}
DEFAULT_BUFFER_BITS = lim.ACCUMULATOR_BITS
POST_OP_BUFFER_BITS = lim.POST_OP_BITS


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
    if op.kind in ("akida.conv2d_transpose", "akida.depthwise_conv2d_transpose"):
        # ConvTranspose (Cin, F, KH, KW) and depthwise (C, 1, KH, KW) → (KH, KW, Cin, F)
        kernel = weights.transpose(2, 3, 0, 1)
    else:
        kernel = weights.transpose(2, 3, 1, 0)  # (F, Cin, KH, KW) → (KH, KW, Cin, F)
        if op.kind == "akida.depthwise_conv2d":
            kernel = kernel.transpose(0, 1, 3, 2)  # (KH, KW, 1, C) → (KH, KW, C, 1)
    if op.kind in ("akida.conv2d", "akida.depthwise_conv2d"):
        kernel = kernel[::-1, ::-1]
    return np.ascontiguousarray(kernel.astype(np.int8))


def _variables(op: Op, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    variables = {}
    for name in names:
        value = op.attrs.get(name)
        if isinstance(value, DenseAttr):
            variables[name] = np.ascontiguousarray(value.array)
    return variables


def layer_record(op: Op, inbounds: list[str]) -> LayerRecord:
    """The `LayerRecord` of one quantized akida op; `inbounds` name its producers."""
    if not op.attrs.get("quantized"):
        raise ValueError(f"{op.kind} {op.display_name!r} is not quantized")
    layer_type = _TYPE_NAMES[op.kind]
    output = op.outputs[0]
    if layer_type == "Concatenate":
        return LayerRecord(op.display_name, layer_type, inbounds, {}, {}, hwc(output))
    params: dict[str, int | str] = {
        "output_bits": int(op.attrs["output_bits"]),  # type: ignore[arg-type]
        "buffer_bits": BUFFER_BITS.get(layer_type, DEFAULT_BUFFER_BITS),
        "post_op_buffer_bits": POST_OP_BUFFER_BITS,
    }
    if layer_type == "Add":
        return LayerRecord(
            op.display_name,
            layer_type,
            inbounds,
            params,
            _variables(op, ADD_VARIABLES),
            hwc(output),
        )
    params["weights_bits"] = akida_int(op, "wbits")
    params["activation"] = _ACTIVATIONS[str(akida_attr(op, "act"))]
    weights = akida_weights(op)
    if layer_type == "Dense1D":
        params["units"] = int(weights.shape[1])
    else:
        params["kernel_size"] = akida_ints(op, "kernel")[0]
        params["kernel_stride"] = akida_ints(op, "stride")[0]
        params["padding"] = _PADDING[str(akida_attr(op, "pad"))]
        depthwise = layer_type in ("DepthwiseConv2D", "DepthwiseConv2DTranspose")
        params["filters"] = int(weights.shape[2] if depthwise else weights.shape[3])
        if akida_attr(op, "pool") == "max":
            params["pool_type"] = "Max"
            params["pool_size"] = op.ints_attr("pool_size")[0]
            params["pool_stride"] = op.ints_attr("pool_stride")[0]
        else:
            params["pool_type"] = "Average" if akida_attr(op, "gap") else "NoPooling"
            params["pool_size"] = -1
            params["pool_stride"] = -1
    variables = {"weights": weights, **_variables(op, LAYER_VARIABLES)}
    return LayerRecord(
        name=op.display_name,
        layer_type=layer_type,
        inbounds=inbounds,
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
    """The `Program` of one region: an InputData record (unless the first layer is an
    InputConv2D, which reads the uint8 image itself), then one record per layer."""
    in_dims = hwc(region_input)
    in_dtype = _NP_DTYPES[region_input.type.dtype]
    input_bits = region_input.type.quant.bits if region_input.type.quant else 8
    records: list[LayerRecord] = []
    # an InputConv2D reads the program input itself: its inbounds are empty
    names: dict[int, str | None] = {id(region_input): None}
    if ops[0].kind != "akida.input_conv2d":
        records.append(
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
        )
        names[id(region_input)] = "input"
    origins: dict[str, list[str]] = {}
    pass_of: dict[str, int] = {}  # layer → hardware pass (`allocate`; 0 before allocation)
    used: set[str] = {r.name for r in records}
    for op in ops:
        operands = [v for v in op.inputs[: 2 if op.kind in ("akida.add", "akida.concat") else 1]]
        if any(v is None for v in operands):
            raise ValueError(f"{op.kind} {op.display_name!r} has a missing operand")
        if any(id(v) not in names for v in operands):
            raise ValueError(f"{op.kind} {op.display_name!r} reads a value outside its program")
        producers = [names[id(v)] for v in operands]
        if None in producers and op.kind != "akida.input_conv2d":
            raise ValueError(f"{op.kind} {op.display_name!r} cannot read the uint8 image input")
        inbounds = [name for name in producers if name is not None]
        record = layer_record(op, inbounds)
        if record.name in used:
            record.name = f"{record.name}#{len(records)}"
        used.add(record.name)
        names[id(op.outputs[0])] = record.name
        records.append(record)
        origins[record.name] = list(op.origin)
        pass_of[record.name] = int(op.annotations.get("pass", 0))  # type: ignore[arg-type]
    output = ops[-1].outputs[0]
    output_layer = names[id(output)]
    assert output_layer is not None
    return Program(
        device=device,
        layers=records,
        input=ProgramTensor(in_dims, in_dtype),
        output_layer=output_layer,
        output=ProgramTensor(hwc(output), _NP_DTYPES[output.type.dtype]),
        np_assignment=dict(np_assignment or {}),
        passes=[
            [r.name for r in records if pass_of.get(r.name) == index]
            for index in sorted(set(pass_of.values()))
        ],
        origins=origins,
    )
