"""Attribute values that are not plain Python scalars or lists.

`DenseAttr` wraps a NumPy array (ONNX TENSOR attributes, the quantizer's per-channel integer
variables, lookup tables); `GraphAttr` keeps an ONNX subgraph opaque, as its serialized
`GraphProto`, so `If`/`Loop`/`Scan` nodes re-emit exactly; `TypedList` keeps the element kind
of an empty ONNX list attribute, which Python cannot infer from `[]`.

An attribute is stored as the `AttrValue` union; the typed readers (`as_int`, `as_float`,
`as_str`, `as_ints`, `as_dense`, and the `Op.*_attr` methods built on them) narrow it to the
Python type a pass expects, and raise `AttributeTypeError` (an internal error naming the
attribute) when the IR holds something else, instead of computing with a wrong type.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from akidac.errors import InternalError


@dataclass(frozen=True, eq=False)
class DenseAttr:
    """An array-valued attribute; equality compares dtype, shape and contents."""

    array: np.ndarray

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, DenseAttr)
            and self.array.dtype == other.array.dtype
            and self.array.shape == other.array.shape
            and np.array_equal(self.array, other.array, equal_nan=self.array.dtype.kind == "f")
        )

    def __hash__(self) -> int:
        return hash(content_hash(self.array))


@dataclass(frozen=True)
class GraphAttr:
    """An ONNX subgraph kept opaque as serialized `GraphProto` bytes."""

    proto_bytes: bytes


@dataclass(frozen=True)
class TypedList:
    """An empty ONNX list attribute with its element kind: 'ints', 'floats' or 'strings'."""

    kind: str


#: an attribute's value. The homogeneous lists are spelled out beside the general one so that
#: a `list[int]` (kernel, strides, pads) is an `AttrValue` as it is, without a cast.
AttrValue = (
    int
    | float
    | str
    | bool
    | None
    | DenseAttr
    | GraphAttr
    | TypedList
    | list[int]
    | list[float]
    | list[str]
    | list[DenseAttr]
    | list[GraphAttr]
    | list["AttrValue"]
)


class AttributeTypeError(InternalError):
    """An attribute holds a value of another type than its reader expects (a pass bug)."""

    code_prefix = "AK-VERIFY"


def _wrong(value: AttrValue, expected: str, what: str) -> AttributeTypeError:
    return AttributeTypeError(f"{what} is {value!r}, not {expected}")


def as_int(value: AttrValue, what: str = "attribute") -> int:
    """An int attribute (or an integral float) as a Python int."""
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise _wrong(value, "an integer", what)


def as_float(value: AttrValue, what: str = "attribute") -> float:
    """A float (or int) attribute as a Python float."""
    if isinstance(value, int | float):
        return float(value)
    raise _wrong(value, "a number", what)


def as_str(value: AttrValue, what: str = "attribute") -> str:
    """A string attribute."""
    if isinstance(value, str):
        return value
    raise _wrong(value, "a string", what)


def _as_list(value: AttrValue, expected: str, what: str) -> Sequence[AttrValue]:
    """A list attribute's items (none for an empty typed list)."""
    if isinstance(value, TypedList):
        return []
    if not isinstance(value, list):
        raise _wrong(value, expected, what)
    return value


def as_ints(value: AttrValue, what: str = "attribute") -> list[int]:
    """An ints attribute (a list of integers, or an empty typed list) as Python ints."""
    return [as_int(item, what) for item in _as_list(value, "a list of integers", what)]


def as_floats(value: AttrValue, what: str = "attribute") -> list[float]:
    """A floats attribute (a list of numbers, or an empty typed list) as Python floats."""
    return [as_float(item, what) for item in _as_list(value, "a list of numbers", what)]


def as_graph(value: AttrValue, what: str = "attribute") -> GraphAttr:
    """A graph attribute (an If/Loop/Scan body)."""
    if isinstance(value, GraphAttr):
        return value
    raise _wrong(value, "a graph", what)


def as_dense(value: AttrValue, what: str = "attribute") -> np.ndarray:
    """A tensor attribute's array."""
    if isinstance(value, DenseAttr):
        return value.array
    raise _wrong(value, "a tensor", what)


def pair(values: Sequence[int], what: str = "attribute") -> tuple[int, int]:
    """Two ints (a kernel, a stride, an H × W) as a tuple."""
    if len(values) != 2:
        raise AttributeTypeError(f"{what} is {list(values)!r}, not two integers")
    return int(values[0]), int(values[1])


def quad(values: Sequence[int], what: str = "attribute") -> tuple[int, int, int, int]:
    """Four ints (pads [top, left, bottom, right], a pooling window and stride) as a tuple."""
    if len(values) != 4:
        raise AttributeTypeError(f"{what} is {list(values)!r}, not four integers")
    return int(values[0]), int(values[1]), int(values[2]), int(values[3])


def content_hash(array: np.ndarray) -> str:
    """Short stable hash of an array's dtype, shape and bytes (used in elided printing)."""
    digest = hashlib.blake2b(digest_size=8)
    digest.update(str(array.dtype).encode())
    digest.update(str(array.shape).encode())
    digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()
