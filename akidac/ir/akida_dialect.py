"""The `akida` dialect: hardware layers as ops with typed attributes, declared once.

Each `OpDef` lists its operands and its attributes (name, Python type, default, meaning); the
generic verifier checks every `akida.*` op against its definition, and the definition's
`verify` adds what the declaration cannot say. Float weights stay in ONNX layout
(cross-correlation, OIHW) until the program encoder turns them into Akida's (KH, KW, Cin, F)
and flips them where the chip convolves: only the encoder knows about the flip.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from akidac.ir.attributes import AttrValue, DenseAttr, as_float, as_int, as_ints, as_str
from akidac.ir.graph import Op
from akidac.target.layer_record import ADD_VARIABLES, LAYER_VARIABLES


@dataclass(frozen=True)
class AttrSpec:
    """One declared attribute: `kind` is 'int', 'float', 'str', 'bool', 'ints', 'dense'."""

    name: str
    kind: str
    default: AttrValue = None
    doc: str = ""
    choices: tuple[str, ...] = ()
    optional: bool = False


@dataclass(frozen=True)
class OpDef:
    """Declaration of one `akida.*` op."""

    kind: str
    doc: str
    operands: tuple[str, ...]
    optional_operands: tuple[str, ...] = ()
    attrs: tuple[AttrSpec, ...] = ()
    verify: Callable[[Op], list[str]] | None = field(default=None, compare=False)

    def attr(self, name: str) -> AttrSpec:
        for spec in self.attrs:
            if spec.name == name:
                return spec
        raise KeyError(name)


ACTIVATIONS = ("none", "relu", "lut")
PADDINGS = ("same", "same_upper", "valid")
POOLS = ("none", "max")
#: float activation functions a lookup table can stand for (see passes/canonicalize).
LUT_FUNCTIONS = ("gelu", "swish", "hardswish", "leaky_relu", "sigmoid", "tanh", "elu", "identity")

_ACTIVATION_ATTRS = (
    AttrSpec("act", "str", "none", "fused activation", ACTIVATIONS),
    AttrSpec("act_max", "float", None, "ReLU ceiling in real units (ReLU6: 6.0)", optional=True),
    AttrSpec("lut", "str", None, "float function of a LUT activation", LUT_FUNCTIONS, True),
    AttrSpec("lut_alpha", "float", None, "parameter of the LUT function", optional=True),
    AttrSpec(
        "lut_scale", "float", None, "the table holds lut_scale · f(x) + lut_offset", optional=True
    ),
    AttrSpec("lut_offset", "float", None, "see lut_scale", optional=True),
)
_BITS_ATTRS = (
    AttrSpec("wbits", "int", 8, "weight bits (4 or 8)"),
    AttrSpec("abits", "int", 8, "activation (output) bits (4 or 8)"),
)
_CONV_ATTRS = (
    AttrSpec("kernel", "ints", None, "kernel [KH, KW]"),
    AttrSpec("stride", "ints", [1, 1], "stride [SH, SW]"),
    AttrSpec("pad", "str", "same", "padding mode", PADDINGS),
    *_ACTIVATION_ATTRS,
    AttrSpec("pool", "str", "none", "fused pooling before the activation", POOLS),
    AttrSpec("pool_size", "ints", None, "max pooling window", optional=True),
    AttrSpec("pool_stride", "ints", None, "max pooling stride", optional=True),
    AttrSpec("gap", "bool", False, "global average pooling after the activation"),
    *_BITS_ATTRS,
)


def _verify_conv(op: Op) -> list[str]:
    problems = []
    for key in ("kernel", "stride"):
        value = op.attrs.get(key)
        if not (
            isinstance(value, list)
            and len(value) == 2
            and all(isinstance(v, int) and v > 0 for v in value)
        ):
            problems.append(f"{key} must be two positive integers, got {value!r}")
    if op.attrs.get("pool", "none") == "max":
        for key in ("pool_size", "pool_stride"):
            value = op.attrs.get(key)
            if not (isinstance(value, list) and len(value) == 2):
                problems.append(f"max pooling needs {key} as two integers, got {value!r}")
    if op.attrs.get("act") == "lut" and op.attrs.get("lut") is None:
        problems.append("a LUT activation needs the 'lut' function name")
    x = op.inputs[0]
    if x is not None and x.type.rank not in (4, None):
        problems.append(f"input must be 4-D, got {x.type.shape}")
    return problems


def _verify_dense(op: Op) -> list[str]:
    weight = op.inputs[1]
    if weight is not None and weight.type.rank != 2:
        return [f"weight must be 2-D (inputs, units), got {weight.type.shape}"]
    return []


#: the convolution ops: all read `x` and `weight` (and an optional `bias`) and fuse alike.
_CONV_OP_DOCS = {
    "akida.input_conv2d": "Input convolution on the HRC (uint8 image input, first layer only).",
    "akida.conv2d": "Convolution on a CNP with fused bias, max pooling, activation and GAP.",
    "akida.depthwise_conv2d": "Depthwise convolution on a CNP.",
    "akida.conv2d_transpose": "Stride-2 transposed convolution on a CNP (kernel 3 or 4).",
    "akida.depthwise_conv2d_transpose": "Stride-2 depthwise transposed convolution on a CNP.",
}

OP_DEFS: dict[str, OpDef] = {
    op_def.kind: op_def
    for op_def in (
        *(
            OpDef(kind, doc, ("x", "weight"), ("bias",), _CONV_ATTRS, _verify_conv)
            for kind, doc in _CONV_OP_DOCS.items()
        ),
        OpDef(
            "akida.dense",
            "Fully connected layer on an FNP (Dense1D); a 4-D input is "
            "flattened in the IR's NCHW order.",
            ("x", "weight"),
            ("bias",),
            (*_ACTIVATION_ATTRS, *_BITS_ATTRS),
            _verify_dense,
        ),
        OpDef(
            "akida.add",
            "Elementwise sum of two layers, done by the consuming CNP through its skip DMA.",
            ("a", "b"),
            (),
            (AttrSpec("abits", "int", 8, "output bits"),),
        ),
        OpDef(
            "akida.concat",
            "Channel concatenation of two layers.",
            ("a", "b"),
            (),
            (AttrSpec("axis", "int", 1, "concatenation axis (channels)"),),
        ),
    )
}

_KIND_CHECKS: dict[str, Callable[[AttrValue], bool]] = {
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "str": lambda v: isinstance(v, str),
    "bool": lambda v: isinstance(v, bool),
    "ints": lambda v: isinstance(v, list) and all(isinstance(i, int) for i in v),
    "dense": lambda v: isinstance(v, DenseAttr),
}

#: attributes the `quantize` pass adds to quantized akida ops (integer variables in the
#: vendor's names, see akidac.target.layer_record), so the verifier accepts them.
QUANT_ATTRS = frozenset(
    {
        *LAYER_VARIABLES,
        *ADD_VARIABLES,
        "quantized",
        "output_bits",
        "input_bits",
        "input_signed",
        "acc_scale",
    }
)


def verify_akida_op(op: Op) -> list[str]:
    """Problems of an `akida.*` op against its declaration (empty when it is well formed)."""
    op_def = OP_DEFS.get(op.kind)
    if op_def is None:
        return [f"unknown akida op {op.kind!r}"]
    problems = []
    low = len(op_def.operands)
    high = low + len(op_def.optional_operands)
    if not low <= len(op.inputs) <= high:
        problems.append(f"takes {low}..{high} operands, got {len(op.inputs)}")
    declared = {spec.name for spec in op_def.attrs}
    for key in op.attrs:
        if key not in declared and key not in QUANT_ATTRS:
            problems.append(f"has undeclared attribute {key!r}")
    for spec in op_def.attrs:
        value = op.attrs.get(spec.name, spec.default)
        if value is None:
            if not spec.optional and spec.default is None and spec.name in op.attrs:
                problems.append(f"attribute {spec.name!r} must be set")
            continue
        if not _KIND_CHECKS[spec.kind](value):
            problems.append(f"attribute {spec.name!r} must be {spec.kind}, got {value!r}")
        elif spec.choices and value not in spec.choices:
            problems.append(f"attribute {spec.name!r} is {value!r}; allowed: {spec.choices}")
    if op_def.verify is not None and not problems:
        problems.extend(op_def.verify(op))
    return problems


def akida_attr(op: Op, name: str) -> AttrValue:
    """An attribute of an akida op, or its declared default."""
    if name in op.attrs:
        return op.attrs[name]
    return OP_DEFS[op.kind].attr(name).default


# Typed reads of akida attributes (declared default when absent): the attribute's declared kind
# as a Python type, or `AttributeTypeError` naming the attribute when the IR holds another.


def _what(op: Op, name: str) -> str:
    return f"attribute {name!r} of {op.kind} '{op.display_name}'"


def akida_int(op: Op, name: str) -> int:
    return as_int(akida_attr(op, name), _what(op, name))


def akida_str(op: Op, name: str) -> str:
    return as_str(akida_attr(op, name), _what(op, name))


def akida_bool(op: Op, name: str) -> bool:
    return bool(akida_attr(op, name))


def akida_ints(op: Op, name: str) -> list[int]:
    return as_ints(akida_attr(op, name), _what(op, name))


def akida_optional_ints(op: Op, name: str) -> list[int] | None:
    value = akida_attr(op, name)
    return None if value is None else as_ints(value, _what(op, name))


def akida_optional_float(op: Op, name: str) -> float | None:
    value = akida_attr(op, name)
    return None if value is None else as_float(value, _what(op, name))


def akida_optional_str(op: Op, name: str) -> str | None:
    value = akida_attr(op, name)
    return None if value is None else as_str(value, _what(op, name))
