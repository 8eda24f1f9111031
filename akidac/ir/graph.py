"""The IR's graph: SSA values, ops in topological order, constants by reference.

A `Value` is defined once, by an op, a graph input, or a constant, and knows its producer and
its users. An `Op` is `dialect.name` (`onnx.Conv`, `akida.conv2d`) with operands, results,
attributes, the ONNX node names it came from (`origin`) and the pass that created it
(`created_by`). Passes edit graphs only through the methods here, which keep use lists right.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import onnx

from akidac.errors import InternalError
from akidac.ir.attributes import (
    AttributeTypeError,
    AttrValue,
    GraphAttr,
    as_dense,
    as_float,
    as_floats,
    as_int,
    as_ints,
    as_str,
)
from akidac.ir.types import TensorType, dtype_from_numpy


class Value:
    """An SSA value: a graph input, a constant, or the result of exactly one op."""

    __slots__ = ("const", "name", "producer", "type", "users")

    def __init__(self, name: str, type: TensorType, const: np.ndarray | None = None) -> None:
        self.name = name
        self.type = type
        self.const = const
        self.producer: Op | None = None
        self.users: list[Op] = []

    @property
    def is_constant(self) -> bool:
        return self.const is not None

    @property
    def array(self) -> np.ndarray:
        """The constant's data; a value that is not a constant raises `AttributeTypeError`."""
        if self.const is None:
            raise AttributeTypeError(f"value {self.name!r} is not a constant")
        return self.const

    def __repr__(self) -> str:
        return f"Value({self.name!r}, {self.type})"


#: what `Graph.redirect_uses` does with names (see there).
Naming = Literal["pinned-keep-name", "new-takes-name"]


@dataclass(eq=False)
class Op:
    """One operation. `inputs` may hold `None` for an omitted optional ONNX input."""

    kind: str
    inputs: list[Value | None]
    outputs: list[Value]
    attrs: dict[str, AttrValue] = field(default_factory=dict)
    origin: tuple[str, ...] = ()
    created_by: str = "frontend"
    domain: str = ""
    annotations: dict[str, AttrValue] = field(default_factory=dict)
    #: transient analysis data of the running pass; never printed, never saved.
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def dialect(self) -> str:
        return self.kind.split(".", 1)[0]

    @property
    def op_type(self) -> str:
        """The name after the dialect: the ONNX op type for `onnx.*` ops."""
        return self.kind.split(".", 1)[1]

    @property
    def display_name(self) -> str:
        """The user's name for this op: its first ONNX origin, or its first result."""
        return self.origin[0] if self.origin else self.outputs[0].name

    def __repr__(self) -> str:
        return f"Op({self.kind}, origin={list(self.origin)})"

    # ------------------------------------------------------------ typed reads
    def operand(self, index: int) -> Value:
        """Operand `index`, which must be present (not an omitted optional input)."""
        value = self.inputs[index] if index < len(self.inputs) else None
        if value is None:
            raise AttributeTypeError(f"{self.kind} '{self.display_name}' has no operand {index}")
        return value

    def _attr(self, name: str, default: AttrValue) -> AttrValue:
        value = self.attrs.get(name)
        if value is None:
            if default is None:
                raise AttributeTypeError(f"{self._what(name)} is missing")
            return default
        return value

    def _what(self, name: str) -> str:
        return f"attribute {name!r} of {self.kind} '{self.display_name}'"

    def int_attr(self, name: str, default: int | None = None) -> int:
        """Attribute `name` as an int; `default` when it is absent (absent without one raises
        `AttributeTypeError`, as does a value of another type)."""
        return as_int(self._attr(name, default), self._what(name))

    def float_attr(self, name: str, default: float | None = None) -> float:
        """Attribute `name` as a float (see `int_attr`)."""
        return as_float(self._attr(name, default), self._what(name))

    def optional_float_attr(self, name: str) -> float | None:
        """Attribute `name` as a float, or None when it is absent."""
        value = self.attrs.get(name)
        return None if value is None else as_float(value, self._what(name))

    def str_attr(self, name: str, default: str | None = None) -> str:
        """Attribute `name` as a string (see `int_attr`)."""
        return as_str(self._attr(name, default), self._what(name))

    def ints_attr(self, name: str, default: list[int] | None = None) -> list[int]:
        """Attribute `name` as a list of ints (see `int_attr`)."""
        fallback: AttrValue = None if default is None else [*default]
        return as_ints(self._attr(name, fallback), self._what(name))

    def floats_attr(self, name: str, default: list[float] | None = None) -> list[float]:
        """Attribute `name` as a list of floats (see `int_attr`)."""
        fallback: AttrValue = None if default is None else [*default]
        return as_floats(self._attr(name, fallback), self._what(name))

    def dense_attr(self, name: str) -> np.ndarray:
        """Tensor attribute `name`'s array (it must be present)."""
        return as_dense(self._attr(name, None), self._what(name))


class Graph:
    """Ops in topological order, graph inputs/outputs, constants, and model-level data."""

    def __init__(self, name: str = "main") -> None:
        self.name = name
        self.inputs: list[Value] = []
        self.outputs: list[Value] = []
        self.ops: list[Op] = []
        self.constants: dict[str, Value] = {}
        #: ONNX opset imports of the model, domain → version ("" is the default domain).
        self.opset_imports: dict[str, int] = {}
        #: model-level key/value data saved into the output model.
        self.metadata: dict[str, str] = {}
        self._names: set[str] = set()
        self._counters: dict[str, int] = {}
        self._captured: frozenset[str] | None = None

    # ----------------------------------------------------------------- naming
    def fresh_name(self, base: str) -> str:
        """A value name not yet used in this graph, derived deterministically from `base`."""
        if base not in self._names:
            self._names.add(base)
            return base
        stem = base
        count = self._counters.get(stem, 0)
        while True:
            count += 1
            candidate = f"{stem}_{count}"
            if candidate not in self._names:
                self._counters[stem] = count
                self._names.add(candidate)
                return candidate

    def _claim(self, name: str) -> None:
        if name in self._names:
            raise ValueError(f"value name {name!r} is defined twice")
        self._names.add(name)

    # ------------------------------------------------------------ construction
    def add_input(self, name: str, type: TensorType) -> Value:
        self._claim(name)
        value = Value(name, type)
        self.inputs.append(value)
        return value

    def add_constant(self, name: str, array: np.ndarray, *, fresh: bool = False) -> Value:
        """Register a constant (weight). With `fresh`, `name` is a base for a new name."""
        name = self.fresh_name(name) if fresh else name
        if not fresh:
            self._claim(name)
        array = np.asarray(array)
        value = Value(name, TensorType(dtype_from_numpy(array.dtype), tuple(array.shape)), array)
        self.constants[name] = value
        return value

    def make_op(
        self,
        kind: str,
        inputs: Iterable[Value | None],
        result_types: Iterable[TensorType],
        *,
        result_names: Iterable[str] | None = None,
        attrs: dict[str, AttrValue] | None = None,
        origin: Iterable[str] = (),
        created_by: str = "frontend",
        domain: str = "",
        fresh_names: bool = False,
        index: int | None = None,
    ) -> Op:
        """Create an op with new result values and insert it (at the end, or at `index`)."""
        types = list(result_types)
        names = (
            list(result_names) if result_names is not None else [kind.split(".")[-1]] * len(types)
        )
        outputs = []
        for name, type_ in zip(names, types, strict=True):
            if fresh_names:
                name = self.fresh_name(name)
            else:
                self._claim(name)
            outputs.append(Value(name, type_))
        op = Op(
            kind=kind,
            inputs=list(inputs),
            outputs=outputs,
            attrs=dict(attrs or {}),
            origin=tuple(origin),
            created_by=created_by,
            domain=domain,
        )
        self.insert_op(op, index)
        return op

    def insert_op(self, op: Op, index: int | None = None) -> None:
        """Insert an existing op and wire its use lists."""
        for result in op.outputs:
            result.producer = op
        for operand in op.inputs:
            if operand is not None:
                operand.users.append(op)
        if index is None:
            self.ops.append(op)
        else:
            self.ops.insert(index, op)

    def remove_op(self, op: Op) -> None:
        """Remove an op whose results are no longer used (it is marked `meta["removed"]`, so
        a pass iterating over a copy of `ops` can skip it in O(1))."""
        for result in op.outputs:
            if result.users or result in self.outputs:
                raise ValueError(f"cannot remove {op!r}: result {result.name!r} is still used")
        for operand in op.inputs:
            if operand is not None:
                operand.users.remove(op)
        self.ops.remove(op)
        op.meta["removed"] = True

    def set_input(self, op: Op, index: int, value: Value | None) -> None:
        """Replace operand `index` of `op`, keeping use lists right."""
        old = op.inputs[index]
        if old is not None:
            old.users.remove(op)
        op.inputs[index] = value
        if value is not None:
            value.users.append(op)

    def replace_with_constant(self, op: Op, array: np.ndarray) -> Value:
        """Replace a single-result op by a constant that keeps the result's name."""
        (result,) = op.outputs
        constant = Value(result.name, result.type.with_shape(tuple(array.shape)), np.asarray(array))
        constant.type = TensorType(dtype_from_numpy(constant.array.dtype), tuple(array.shape))
        self.redirect_uses(result, constant)  # the constant already has the result's name
        for value in op.inputs:
            if value is not None:
                value.users.remove(op)
        self.ops.remove(op)
        op.meta["removed"] = True
        self.constants[result.name] = constant
        return constant

    def captured_names(self) -> frozenset[str]:
        """Names the ops' subgraphs (If/Loop/Scan bodies) read from this graph. Passes never
        add subgraph ops, so this is computed once."""
        if self._captured is None:
            from akidac.ir.subgraphs import free_names

            names: set[str] = set()
            for op in self.ops:
                for value in op.attrs.values():
                    for item in value if isinstance(value, list) else [value]:
                        if isinstance(item, GraphAttr):
                            names |= free_names(onnx.GraphProto.FromString(item.proto_bytes))
            self._captured = frozenset(names)
        return self._captured

    def is_pinned(self, value: Value) -> bool:
        """A graph output, or a value a subgraph reads by name: it must keep its name and its
        producer's result, and is used outside any region."""
        return value in self.outputs or value.name in self.captured_names()

    def redirect_uses(
        self,
        old: Value,
        new: Value,
        *,
        skip: Op | None = None,
        naming: Naming = "pinned-keep-name",
    ) -> None:
        """Make every user of `old` except `skip` read `new`, graph outputs included.

        The one way to move uses, so one rule holds for names: a pinned value's name (a graph
        output's, or one a subgraph reads) never changes. `naming` chooses what else happens:

        - `"pinned-keep-name"`: when `old` is pinned, `new` takes its name and `old` gets
          `new`'s (they swap); otherwise no name changes.
        - `"new-takes-name"`: `new` always takes `old`'s name (they swap), so every consumer
          keeps reading the name it had; what a rewrite wants, for IR text that stays stable.

        A swap that would rename a pinned `new` (a graph input, say) raises `InternalError`:
        the caller must keep such an op instead, since a model's names are never changed
        silently.
        """
        if naming not in ("pinned-keep-name", "new-takes-name"):
            raise InternalError(f"redirect_uses: unknown naming {naming!r}")
        swap = naming == "new-takes-name" or self.is_pinned(old)
        if swap and new.name != old.name:
            if new in self.inputs or self.is_pinned(new):
                raise InternalError(
                    f"redirecting {old.name!r} to {new.name!r} would rename the pinned "
                    f"value {new.name!r}"
                )
            new.name, old.name = old.name, new.name
        for user in list(dict.fromkeys(old.users)):
            if user is skip:
                continue
            for index, operand in enumerate(user.inputs):
                if operand is old:
                    self.set_input(user, index, new)
        self.outputs = [new if v is old else v for v in self.outputs]

    def remove_unused_constants(self) -> None:
        for name in [n for n, v in self.constants.items() if not v.users]:
            if self.constants[name] not in self.outputs:
                del self.constants[name]

    def remove_dead_ops(self) -> bool:
        """Remove ops none of whose results reach an output (or a subgraph that reads them by
        name). Returns whether any went."""
        live: set[int] = set()
        captured = self.captured_names()
        roots = [*self.outputs, *(v for op in self.ops for v in op.outputs if v.name in captured)]
        work = [v.producer for v in roots if v.producer is not None]
        while work:
            op = work.pop()
            if id(op) in live:
                continue
            live.add(id(op))
            work.extend(v.producer for v in op.inputs if v is not None and v.producer)
        dead = [op for op in self.ops if id(op) not in live]
        for op in reversed(dead):
            op.meta["removed"] = True
            for value in op.inputs:
                if value is not None:
                    value.users.remove(op)
        self.ops = [op for op in self.ops if id(op) in live]
        self.remove_unused_constants()
        return bool(dead)

    # ------------------------------------------------------------------ queries
    def values(self) -> Iterator[Value]:
        """Every value: inputs, constants, then op results in order."""
        yield from self.inputs
        yield from self.constants.values()
        for op in self.ops:
            yield from op.outputs

    def ops_of(self, kind: str) -> list[Op]:
        return [op for op in self.ops if op.kind == kind]

    def topological_sort(self) -> None:
        """Re-sort ops topologically, stable with respect to the current order."""
        position = {id(op): i for i, op in enumerate(self.ops)}
        indegree = {id(op): 0 for op in self.ops}
        for op in self.ops:
            for value in op.inputs:
                if value is not None and value.producer is not None:
                    indegree[id(op)] += 1
        ready = [(position[id(op)], op) for op in self.ops if indegree[id(op)] == 0]
        heapq.heapify(ready)
        ordered: list[Op] = []
        while ready:
            _, op = heapq.heappop(ready)
            ordered.append(op)
            for value in op.outputs:
                for user in dict.fromkeys(value.users):
                    for operand in user.inputs:
                        if operand is value:
                            indegree[id(user)] -= 1
                    if indegree[id(user)] == 0:
                        heapq.heappush(ready, (position[id(user)], user))
        if len(ordered) != len(self.ops):
            raise ValueError("the graph has a cycle")
        self.ops = ordered
