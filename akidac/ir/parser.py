"""Parser of the IR text form written by `akidac.ir.printer`.

Serves pass dumps and golden tests, never the compile path. Elided weights (`#hash`) parse only
when the caller passes the arrays they stand for (`weights={hash: array}`); otherwise the parser
says which constant is missing. Errors name the line and column.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass

import numpy as np

from akidac.ir.attributes import AttrValue, DenseAttr, GraphAttr, TypedList
from akidac.ir.graph import Graph, Op, Value
from akidac.ir.types import Quantization, TensorType, dtype_to_numpy

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<value>%(?:"(?:[^"\\]|\\.)*"|[A-Za-z0-9_.\-/]+))
  | (?P<b64>b64"[A-Za-z0-9+/=]*")
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<number>[-+]?(?:\d+\.\d*(?:[eE][-+]?\d+)?|\d+[eE][-+]?\d+|\d+|inf\b|nan\b))
  | (?P<hash>\#[0-9a-f]+)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<punct>[()\[\]{}<>,=:?*])
    """,
    re.VERBOSE,
)


class ParseError(ValueError):
    """The text is not valid IR; the message gives line and column."""


@dataclass
class _Token:
    kind: str
    text: str
    pos: int


def _tokenize(text: str) -> list[_Token]:
    tokens = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise ParseError(f"{_where(text, pos)}: unexpected character {text[pos]!r}")
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append(_Token(kind, match.group(), pos))
        pos = match.end()
    tokens.append(_Token("eof", "", len(text)))
    return tokens


def _where(text: str, pos: int) -> str:
    line = text.count("\n", 0, pos) + 1
    column = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return f"line {line}, column {column}"


class _Parser:
    def __init__(self, text: str, weights: dict[str, np.ndarray] | None) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.index = 0
        self.weights = weights or {}
        self.graph = Graph()
        self.scope: dict[str, Value] = {}

    # -------------------------------------------------------------- primitives
    @property
    def peek(self) -> _Token:
        return self.tokens[self.index]

    def error(self, message: str, token: _Token | None = None) -> ParseError:
        token = token or self.peek
        return ParseError(f"{_where(self.text, token.pos)}: {message}")

    def take(self, kind: str | None = None, text: str | None = None) -> _Token:
        token = self.peek
        if (kind and token.kind != kind) or (text is not None and token.text != text):
            wanted = text or kind
            raise self.error(f"expected {wanted!r}, found {token.text or 'end of text'!r}")
        self.index += 1
        return token

    def accept(self, text: str) -> bool:
        if self.peek.text == text and self.peek.kind in ("punct", "ident"):
            self.index += 1
            return True
        return False

    def string(self) -> str:
        text = json.loads(self.take("string").text)
        if not isinstance(text, str):
            raise self.error("expected a string")
        return text

    def name(self) -> str:
        raw = self.take("value").text[1:]
        return json.loads(raw) if raw.startswith('"') else raw

    def integer(self) -> int:
        token = self.take("number")
        try:
            return int(token.text)
        except ValueError:
            raise self.error("expected an integer", token) from None

    # ------------------------------------------------------------------ types
    def tensor_type(self) -> TensorType:
        dtype = self.take("ident").text
        self.take(text="[")
        shape: tuple[int | None, ...] | None
        if self.accept("*"):
            shape = None
        else:
            dims: list[int | None] = []
            while not self.accept("]"):
                if dims:
                    self.take(text=",")
                dims.append(None if self.accept("?") else self.integer())
            shape = tuple(dims)
            self.index -= 1
        self.take(text="]")
        layout, quant = None, None
        if self.accept("<"):
            while not self.accept(">"):
                self.accept(",")
                word = self.take("ident").text
                if word == "q":
                    self.take(text="(")
                    scale = float(self.take("number").text)
                    self.take(text=",")
                    zero_point = self.integer()
                    self.take(text=",")
                    bits = self.integer()
                    self.take(text=",")
                    signed = self.take("ident").text == "signed"
                    shifts: list[int] = []
                    if self.accept(","):
                        self.take(text="shifts")
                        self.take(text="=")
                        self.take(text="[")
                        while not self.accept("]"):
                            if shifts:
                                self.take(text=",")
                            shifts.append(self.integer())
                    self.take(text=")")
                    quant = Quantization(scale, zero_point, bits, signed, tuple(shifts))
                else:
                    layout = word
        return TensorType(dtype, shape, layout, quant)

    # ------------------------------------------------------------- attributes
    def dense(self) -> np.ndarray:
        self.take(text="<")
        type_ = self.tensor_type()
        if not type_.is_static:
            raise self.error("a dense value needs a static shape")
        shape = type_.dims
        token = self.peek
        if token.kind == "hash":
            self.index += 1
            key = token.text[1:]
            if key not in self.weights:
                raise self.error(f"elided weights #{key} were not supplied", token)
            array = np.asarray(self.weights[key])
        elif token.kind == "b64":
            self.index += 1
            raw = base64.b64decode(token.text[4:-1])
            np_dtype = dtype_to_numpy(type_.dtype).newbyteorder("<")
            array = np.frombuffer(raw, dtype=np_dtype).astype(np_dtype.newbyteorder("="))
            array = array.reshape(shape)
        else:
            items = self.attr_value()
            if not isinstance(items, list):
                raise self.error("expected a list of values")
            if type_.dtype == "str":
                array = np.array(items, dtype=object).reshape(shape)
            else:
                array = np.array(items, dtype=dtype_to_numpy(type_.dtype)).reshape(shape)
        self.take(text=">")
        return array

    def attr_value(self) -> AttrValue:
        token = self.peek
        if token.kind == "number":
            self.index += 1
            text = token.text
            if any(c in text for c in ".eEin"):
                return float(text)
            return int(text)
        if token.kind == "string":
            return self.string()
        if token.text == "[":
            self.index += 1
            items: list[AttrValue] = []
            while not self.accept("]"):
                if items:
                    self.take(text=",")
                items.append(self.attr_value())
            return items
        if token.kind == "ident":
            self.index += 1
            word = token.text
            if word in ("true", "false"):
                return word == "true"
            if word == "none":
                return None
            if word in ("ints", "floats", "strings"):
                self.take(text="[")
                self.take(text="]")
                return TypedList(word)
            if word == "dense":
                return DenseAttr(self.dense())
            if word == "graph":
                self.take(text="<")
                blob = self.take("b64").text
                self.take(text=">")
                return GraphAttr(base64.b64decode(blob[4:-1]))
        raise self.error(f"expected an attribute value, found {token.text!r}")

    def attr_dict(self) -> dict[str, AttrValue]:
        self.take(text="{")
        items: dict[str, AttrValue] = {}
        while not self.accept("}"):
            if items:
                self.take(text=",")
            token = self.peek
            key = self.string() if token.kind == "string" else self.take("ident").text
            self.take(text="=")
            items[key] = self.attr_value()
        return items

    # ------------------------------------------------------------------ graph
    def lookup(self, token: _Token, name: str) -> Value:
        if name not in self.scope:
            raise self.error(f"value %{name} is used before it is defined", token)
        return self.scope[name]

    def define(self, token: _Token, value: Value) -> None:
        if value.name in self.scope:
            raise self.error(f"value %{value.name} is defined twice", token)
        self.scope[value.name] = value

    def parse(self) -> Graph:
        graph = self.graph
        self.take("ident", "graph")
        graph.name = self.string()
        self.take(text="{")
        while not self.accept("}"):
            token = self.peek
            if token.kind == "ident" and token.text == "opset":
                self.index += 1
                domain = self.string()
                self.take(text="=")
                graph.opset_imports[domain] = self.integer()
            elif token.kind == "ident" and token.text == "meta":
                self.index += 1
                key = self.string()
                self.take(text="=")
                graph.metadata[key] = self.string()
            elif token.kind == "ident" and token.text == "input":
                self.index += 1
                name = self.name()
                self.take(text=":")
                self.define(token, graph.add_input(name, self.tensor_type()))
            elif token.kind == "ident" and token.text == "const":
                self.index += 1
                name = self.name()
                self.take(text="=")
                self.take("ident", "dense")
                self.define(token, graph.add_constant(name, self.dense()))
            elif token.kind == "ident" and token.text == "output":
                self.index += 1
                graph.outputs.append(self.lookup(token, self.name()))
                while self.accept(","):
                    graph.outputs.append(self.lookup(token, self.name()))
            elif token.kind == "value":
                self.op()
            else:
                raise self.error(f"expected a graph item, found {token.text!r}")
        self.take("eof")
        return graph

    def op(self) -> None:
        start = self.peek
        names = [self.name()]
        while self.accept(","):
            names.append(self.name())
        self.take(text="=")
        kind = self.take("ident").text
        if "." not in kind:
            raise self.error(f"op kind {kind!r} has no dialect prefix", start)
        self.take(text="(")
        operands: list[Value | None] = []
        while not self.accept(")"):
            if operands:
                self.take(text=",")
            token = self.peek
            if token.kind == "ident" and token.text == "_":
                self.index += 1
                operands.append(None)
            else:
                operands.append(self.lookup(token, self.name()))
        attrs = self.attr_dict() if self.peek.text == "{" else {}
        self.take(text=":")
        types = [self.tensor_type()]
        while self.accept(","):
            types.append(self.tensor_type())
        if len(types) != len(names):
            raise self.error(f"{len(names)} results but {len(types)} types", start)
        loc: dict[str, AttrValue] = {}
        annotations: dict[str, AttrValue] = {}
        if self.accept("loc"):
            loc = self.attr_dict()
        if self.accept("ann"):
            annotations = self.attr_dict()
        origin = loc.get("origin", [])
        outputs = [Value(n, t) for n, t in zip(names, types, strict=True)]
        for value in outputs:
            self.define(start, value)
            self.graph._claim(value.name)
        op = Op(
            kind=kind,
            inputs=operands,
            outputs=outputs,
            attrs=attrs,
            origin=tuple(str(name) for name in origin) if isinstance(origin, list) else (),
            created_by=str(loc.get("by", "frontend")),
            domain=str(loc.get("domain", "")),
            annotations=annotations,
        )
        self.graph.insert_op(op)


def parse_graph(text: str, *, weights: dict[str, np.ndarray] | None = None) -> Graph:
    """Parse IR text back into a `Graph`; raises `ParseError` naming line and column."""
    return _Parser(text, weights).parse()
