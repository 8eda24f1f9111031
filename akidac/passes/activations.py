"""Recognising the activation that follows a layer, as Akida can fuse it.

ReLU and `Clip(0, a)` are the hardware ReLU (with ceiling `a`); everything else Akida runs as a
2048-entry lookup table, so we recognise the float function and let `quantize` tabulate it:
LeakyRelu, Elu, Sigmoid, Tanh, HardSwish, Gelu, and the patterns exporters write for them —
Swish `x · Sigmoid(x)`, HardSwish `x · HardSigmoid(x)` (alpha 1/6, beta 1/2) or written out
as `x · Clip(x + 3, 0, 6) / 6` (TensorFlow, Paddle; the division also as `· 1/6`, before or
after the product), and PyTorch's erf GELU `(x · (1 + Erf(x / √2))) · 0.5`. A scalar affine
`· a + b` right after a table activation (Paddle's "learnable affine blocks", Keras scale
layers) is part of the table: `lut_scale`, `lut_offset`. A pattern matches only when its inner
values have no other user, so fusing never changes what the rest of the graph sees.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from akidac.ir.attributes import AttrValue
from akidac.ir.graph import Graph, Op, Value


@dataclass
class ActivationMatch:
    """A fusable activation: IR attributes, the `LayerCandidate.activation` family, the ops it
    consumes (in order) and the value it produces."""

    attrs: dict[str, AttrValue]
    family: str
    ops: list[Op]
    tail: Value


def _scalar(value: Value | None) -> float | None:
    if value is None or value.const is None or value.const.size != 1:
        return None
    return float(np.asarray(value.const).reshape(-1)[0])


def _only_user(graph: Graph, value: Value) -> Op | None:
    users = list(dict.fromkeys(value.users))
    if len(users) != 1 or graph.is_pinned(value):
        return None
    return users[0]


def _other(op: Op, value: Value) -> Value | None:
    """The operand of a binary op that is not `value`."""
    a, b = op.inputs[0], op.inputs[1]
    return b if a is value else a if b is value else None


def relu_bound(op: Op) -> tuple[bool, float | None]:
    """(is a ReLU-like op, its ceiling) for Relu and Clip(0, a)."""
    if op.kind == "onnx.Relu":
        return True, None
    if op.kind != "onnx.Clip":
        return False, None
    # the bounds are inputs from opset 11, the oldest the loader accepts (ir/opset_forms)
    low = _scalar(op.inputs[1]) if len(op.inputs) > 1 else None
    if low is None or low != 0.0:
        return False, None
    if len(op.inputs) > 2 and op.inputs[2] is not None:
        high = _scalar(op.inputs[2])
        return (True, high) if high is not None else (False, None)
    return True, None


def _lut(name: str, ops: list[Op], tail: Value, alpha: float | None = None) -> ActivationMatch:
    attrs: dict[str, AttrValue] = {"act": "lut", "lut": name}
    if alpha is not None:
        attrs["lut_alpha"] = alpha
    return ActivationMatch(attrs, f"lut:{name}", ops, tail)


def match_activation(graph: Graph, value: Value) -> ActivationMatch | None:
    """The activation applied to `value`, if its users form one Akida can fuse; a table
    activation takes a scalar affine that follows it along (`_absorb_affine`)."""
    match = _match_function(graph, value)
    if match is not None and match.attrs.get("act") == "lut":
        _absorb_affine(graph, match)
    return match


def _absorb_affine(graph: Graph, match: ActivationMatch) -> None:
    """Fold `Mul(·, a)` then `Add(·, b)` (either or both, scalar constants) after a table
    activation into it: the table holds a · f(x) + b at no cost in precision."""
    scale, offset = 1.0, 0.0
    for kind in ("onnx.Mul", "onnx.Add"):
        user = _only_user(graph, match.tail)
        if user is None or user.kind != kind:
            continue
        constant = _scalar(_other(user, match.tail))
        if constant is None or not math.isfinite(constant) or (kind == "onnx.Mul" and not constant):
            continue
        if user.outputs[0].type.shape != match.tail.type.shape:
            continue  # a broadcast that changes the shape is not a per-element affine
        if kind == "onnx.Mul":
            scale *= constant
        else:
            offset += constant
        match.ops.append(user)
        match.tail = user.outputs[0]
    if scale != 1.0:
        match.attrs["lut_scale"] = scale
    if offset != 0.0:
        match.attrs["lut_offset"] = offset


def _match_function(graph: Graph, value: Value) -> ActivationMatch | None:
    if graph.is_pinned(value):
        return None
    users = list(dict.fromkeys(value.users))
    if len(users) == 2:
        gated = _match_gated(graph, value, users) or _match_written_hardswish(graph, value, users)
        if gated is not None:
            return gated
        scales = [u for u in users if u.kind in ("onnx.Div", "onnx.Mul")]
        for scale in scales:
            gelu = _match_erf_gelu(graph, value, scale)
            if gelu is not None and set(map(id, users)) == {id(scale), id(gelu.ops[3])}:
                return gelu
        return None
    if len(users) != 1:
        return None
    op = users[0]
    out = op.outputs[0]
    is_relu, ceiling = relu_bound(op)
    if is_relu:
        attrs: dict[str, AttrValue] = {"act": "relu"}
        if ceiling is not None:
            attrs["act_max"] = ceiling
        return ActivationMatch(attrs, "relu" if ceiling is None else "relu_max", [op], out)
    simple = {"onnx.Sigmoid": "sigmoid", "onnx.Tanh": "tanh", "onnx.HardSwish": "hardswish"}
    if op.kind in simple:
        return _lut(simple[op.kind], [op], out)
    if op.kind == "onnx.LeakyRelu":
        return _lut("leaky_relu", [op], out, op.float_attr("alpha", 0.01))
    if op.kind == "onnx.Elu":
        return _lut("elu", [op], out, op.float_attr("alpha", 1.0))
    if op.kind == "onnx.Gelu" and op.attrs.get("approximate", "none") == "none":
        return _lut("gelu", [op], out)
    return None


def _match_gated(graph: Graph, value: Value, users: list[Op]) -> ActivationMatch | None:
    """x · Sigmoid(x) (Swish) and x · HardSigmoid(x) (HardSwish)."""
    gates = [u for u in users if u.kind in ("onnx.Sigmoid", "onnx.HardSigmoid")]
    muls = [u for u in users if u.kind == "onnx.Mul"]
    if len(gates) != 1 or len(muls) != 1:
        return None
    gate, mul = gates[0], muls[0]
    if _only_user(graph, gate.outputs[0]) is not mul or _other(mul, value) is not gate.outputs[0]:
        return None
    if gate.kind == "onnx.Sigmoid":
        return _lut("swish", [gate, mul], mul.outputs[0])
    alpha = gate.float_attr("alpha", 0.2)
    beta = gate.float_attr("beta", 0.5)
    if math.isclose(alpha, 1 / 6, rel_tol=1e-4) and math.isclose(beta, 0.5, rel_tol=1e-6):
        return _lut("hardswish", [gate, mul], mul.outputs[0])
    return None


def _is_sixth(op: Op, value: Value) -> bool:
    """`op` is `value / 6` or `value · (1/6)`."""
    if op.kind not in ("onnx.Div", "onnx.Mul") or op.inputs[0] is not value:
        if not (op.kind == "onnx.Mul" and op.inputs[1] is value):
            return False
    factor = _scalar(_other(op, value))
    if factor is None:
        return False
    expected = 6.0 if op.kind == "onnx.Div" else 1 / 6
    return math.isclose(factor, expected, rel_tol=1e-4)


def _match_written_hardswish(graph: Graph, value: Value, users: list[Op]) -> ActivationMatch | None:
    """`x · Clip(x + 3, 0, 6) / 6`, the division before or after the product."""
    adds = [u for u in users if u.kind == "onnx.Add"]
    muls = [u for u in users if u.kind == "onnx.Mul"]
    if len(adds) != 1 or len(muls) != 1:
        return None
    add, mul = adds[0], muls[0]
    three = _scalar(_other(add, value))
    if three is None or not math.isclose(three, 3.0, rel_tol=1e-6):
        return None
    clip = _only_user(graph, add.outputs[0])
    if clip is None or relu_bound(clip) != (True, 6.0):
        return None
    gate = _only_user(graph, clip.outputs[0])
    if gate is None:
        return None
    if gate is mul and _other(mul, value) is clip.outputs[0]:  # (x · clip) / 6
        sixth = _only_user(graph, mul.outputs[0])
        if sixth is None or not _is_sixth(sixth, mul.outputs[0]):
            return None
        return _lut("hardswish", [add, clip, mul, sixth], sixth.outputs[0])
    if _is_sixth(gate, clip.outputs[0]):  # x · (clip / 6)
        if (
            _only_user(graph, gate.outputs[0]) is not mul
            or _other(mul, value) is not gate.outputs[0]
        ):
            return None
        return _lut("hardswish", [add, clip, gate, mul], mul.outputs[0])
    return None


def _match_erf_gelu(graph: Graph, value: Value, scale: Op) -> ActivationMatch | None:
    """PyTorch's GELU: Div(x, √2) → Erf → Add(1) → Mul(x, ·) → Mul(·, 0.5)."""
    factor = _scalar(_other(scale, value))
    if factor is None:
        return None
    expected = math.sqrt(2) if scale.kind == "onnx.Div" else 1 / math.sqrt(2)
    if not math.isclose(factor, expected, rel_tol=1e-3):
        return None
    erf = _only_user(graph, scale.outputs[0])
    if erf is None or erf.kind != "onnx.Erf":
        return None
    add = _only_user(graph, erf.outputs[0])
    if add is None or add.kind != "onnx.Add" or _scalar(_other(add, erf.outputs[0])) != 1.0:
        return None
    mul = _only_user(graph, add.outputs[0])
    if mul is None or mul.kind != "onnx.Mul" or _other(mul, add.outputs[0]) is not value:
        return None
    half = _only_user(graph, mul.outputs[0])
    if half is None or half.kind != "onnx.Mul" or _scalar(_other(half, mul.outputs[0])) != 0.5:
        return None
    return _lut("gelu", [scale, erf, add, mul, half], half.outputs[0])
