"""Attribute values that are not plain Python scalars or lists.

`DenseAttr` wraps a NumPy array (ONNX TENSOR attributes, the quantizer's per-channel integer
variables, lookup tables); `GraphAttr` keeps an ONNX subgraph opaque, as its serialized
`GraphProto`, so `If`/`Loop`/`Scan` nodes re-emit exactly; `TypedList` keeps the element kind
of an empty ONNX list attribute, which Python cannot infer from `[]`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np


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


AttrValue = int | float | str | bool | None | DenseAttr | GraphAttr | TypedList | list["AttrValue"]


def content_hash(array: np.ndarray) -> str:
    """Short stable hash of an array's dtype, shape and bytes (used in elided printing)."""
    digest = hashlib.blake2b(digest_size=8)
    digest.update(str(array.dtype).encode())
    digest.update(str(array.shape).encode())
    digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()
