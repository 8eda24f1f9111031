"""The IR's text form, for people (pass dumps, `--dump-after`) and for tests (golden files).

One op per line: `%y = onnx.Conv(%x, %w) {group = 1} : f32[1,8,4,4] loc{origin = ["c1"]}`.
Every op, of any dialect, prints in this one generic form, so any ONNX node round-trips through
`akidac.ir.parser`. Large weights print elided as `dense<f32[...] #hash>` unless
`elide_weights=False`; arrays of at most `LITERAL_LIMIT` elements always print their values.
"""

from __future__ import annotations

import base64
import json
import math
import re

import numpy as np

from akidac.ir.attributes import AttrValue, DenseAttr, GraphAttr, TypedList, content_hash
from akidac.ir.graph import Graph, Op, Value
from akidac.ir.types import TensorType, dtype_from_numpy

LITERAL_LIMIT = 16
_BARE_NAME = re.compile(r"^[A-Za-z0-9_.\-/]+$")


def format_name(name: str) -> str:
    """`%name`, quoted when the name holds characters outside the bare-name set."""
    return f"%{name}" if _BARE_NAME.fullmatch(name) else f"%{json.dumps(name)}"


def format_type(type_: TensorType) -> str:
    if type_.shape is None:
        dims = "*"
    else:
        dims = ",".join("?" if d is None else str(d) for d in type_.shape)
    extras = []
    if type_.layout:
        extras.append(type_.layout)
    if type_.quant is not None:
        q = type_.quant
        sign = "signed" if q.signed else "unsigned"
        shifts = f", shifts=[{','.join(map(str, q.channel_shift))}]" if q.channel_shift else ""
        extras.append(f"q({format_float(q.scale)}, {q.zero_point}, {q.bits}, {sign}{shifts})")
    suffix = f"<{', '.join(extras)}>" if extras else ""
    return f"{type_.dtype}[{dims}]{suffix}"


def format_float(value: float) -> str:
    """A float literal that parses back to the same float and never looks like an int."""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(float(value))


def format_dense(array: np.ndarray, elide: bool) -> str:
    dtype = dtype_from_numpy(array.dtype)
    shape = ",".join(str(d) for d in array.shape)
    head = f"{dtype}[{shape}]"
    if array.size <= LITERAL_LIMIT and dtype != "str":
        flat = array.reshape(-1).tolist()
        if array.dtype.kind == "f":
            items = ", ".join(format_float(v) for v in flat)
        elif array.dtype.kind == "b":
            items = ", ".join("true" if v else "false" for v in flat)
        else:
            items = ", ".join(str(int(v)) for v in flat)
        return f"dense<{head} [{items}]>"
    if dtype == "str":
        items = ", ".join(json.dumps(str(v)) for v in array.reshape(-1).tolist())
        return f"dense<{head} [{items}]>"
    if elide:
        return f"dense<{head} #{content_hash(array)}>"
    raw = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
    return f'dense<{head} b64"{base64.b64encode(raw).decode()}">'


def format_attr(value: AttrValue, elide: bool = True) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_float(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, DenseAttr):
        return format_dense(value.array, elide)
    if isinstance(value, GraphAttr):
        return f'graph<b64"{base64.b64encode(value.proto_bytes).decode()}">'
    if isinstance(value, TypedList):
        return f"{value.kind}[]"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(format_attr(v, elide) for v in value) + "]"
    raise TypeError(f"cannot print attribute value of type {type(value).__name__}")


def format_dict(items: dict[str, AttrValue], elide: bool) -> str:
    return ", ".join(f"{_key(k)} = {format_attr(v, elide)}" for k, v in items.items())


def _key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key) else json.dumps(key)


def format_op(op: Op, elide: bool = True) -> str:
    results = ", ".join(format_name(v.name) for v in op.outputs)
    operands = ", ".join("_" if v is None else format_name(v.name) for v in op.inputs)
    text = f"{results} = {op.kind}({operands})"
    if op.attrs:
        text += " {" + format_dict(op.attrs, elide) + "}"
    text += " : " + ", ".join(format_type(v.type) for v in op.outputs)
    loc: dict[str, AttrValue] = {}
    if op.origin:
        loc["origin"] = list(op.origin)
    if op.created_by != "frontend":
        loc["by"] = op.created_by
    if op.domain:
        loc["domain"] = op.domain
    if loc:
        text += " loc{" + format_dict(loc, elide) + "}"
    if op.annotations:
        text += " ann{" + format_dict(op.annotations, elide) + "}"
    return text


def print_graph(graph: Graph, *, elide_weights: bool = True) -> str:
    """The whole graph as text; `parse_graph(print_graph(g, elide_weights=False))` equals g."""
    lines = [f"graph {json.dumps(graph.name)} {{"]
    for domain, version in graph.opset_imports.items():
        lines.append(f"  opset {json.dumps(domain)} = {version}")
    for key, text in graph.metadata.items():
        lines.append(f"  meta {json.dumps(key)} = {json.dumps(text)}")
    for value in graph.inputs:
        lines.append(f"  input {format_name(value.name)} : {format_type(value.type)}")
    for value in graph.constants.values():
        assert_const(value)
        dense = format_dense(value.array, elide_weights)
        lines.append(f"  const {format_name(value.name)} = {dense}")
    for op in graph.ops:
        lines.append("  " + format_op(op, elide_weights))
    if graph.outputs:
        lines.append("  output " + ", ".join(format_name(v.name) for v in graph.outputs))
    lines.append("}")
    return "\n".join(lines) + "\n"


def assert_const(value: Value) -> None:
    if value.const is None:
        raise ValueError(f"constant {value.name!r} holds no data")
