"""Tensor types of the IR: element type, static shape, layout and quantization.

Every `Value` carries a `TensorType`. Shapes are static after the frontend (a dimension may be
`None` only where ONNX shape inference could not tell, e.g. data-dependent outputs; such values
can never enter an Akida region). Quantization is attached by the `quantize` pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from onnx import TensorProto

#: short IR names of element types, their NumPy dtype and ONNX enum.
DTYPE_TABLE: dict[str, tuple[str, int]] = {
    "f32": ("float32", TensorProto.FLOAT),
    "f16": ("float16", TensorProto.FLOAT16),
    "bf16": ("", TensorProto.BFLOAT16),
    "f64": ("float64", TensorProto.DOUBLE),
    "i8": ("int8", TensorProto.INT8),
    "u8": ("uint8", TensorProto.UINT8),
    "i16": ("int16", TensorProto.INT16),
    "u16": ("uint16", TensorProto.UINT16),
    "i32": ("int32", TensorProto.INT32),
    "u32": ("uint32", TensorProto.UINT32),
    "i64": ("int64", TensorProto.INT64),
    "u64": ("uint64", TensorProto.UINT64),
    "bool": ("bool", TensorProto.BOOL),
    "str": ("object", TensorProto.STRING),
    "c64": ("complex64", TensorProto.COMPLEX64),
    "c128": ("complex128", TensorProto.COMPLEX128),
    "f8e4m3fn": ("", TensorProto.FLOAT8E4M3FN),
    "f8e4m3fnuz": ("", TensorProto.FLOAT8E4M3FNUZ),
    "f8e5m2": ("", TensorProto.FLOAT8E5M2),
    "f8e5m2fnuz": ("", TensorProto.FLOAT8E5M2FNUZ),
    "u4": ("", TensorProto.UINT4),
    "i4": ("", TensorProto.INT4),
    "unknown": ("", TensorProto.UNDEFINED),
}
_BY_ONNX = {onnx_enum: name for name, (_, onnx_enum) in DTYPE_TABLE.items()}
_BY_NUMPY = {np_name: name for name, (np_name, _) in DTYPE_TABLE.items() if np_name}

LAYOUTS = ("NCHW", "NHWC")


def dtype_from_onnx(elem_type: int) -> str:
    """IR dtype name of an ONNX `TensorProto.DataType` value."""
    return _BY_ONNX.get(elem_type, "unknown")


def dtype_to_onnx(dtype: str) -> int:
    """ONNX `TensorProto.DataType` value of an IR dtype name."""
    return DTYPE_TABLE[dtype][1]


def dtype_from_numpy(np_dtype: np.dtype) -> str:
    """IR dtype name of a NumPy dtype."""
    name = np.dtype(np_dtype).name
    if name not in _BY_NUMPY:
        raise ValueError(f"NumPy dtype {name} has no IR equivalent")
    return _BY_NUMPY[name]


def dtype_to_numpy(dtype: str) -> np.dtype:
    """NumPy dtype of an IR dtype name (raises for types NumPy lacks, such as bf16)."""
    np_name = DTYPE_TABLE[dtype][0]
    if not np_name:
        raise ValueError(f"IR dtype {dtype} has no NumPy equivalent")
    return np.dtype(np_name)


@dataclass(frozen=True)
class Quantization:
    """Affine quantization of an activation: real = scale × 2^−channel_shift[c] × (q − zero_point).

    `channel_shift` holds one power-of-two exponent per channel of the last axis (empty: one
    scale for the tensor): an Akida layer writes a channel whose calibrated range is far below
    the tensor's at a finer scale (`akidac.passes.channel_scales`)."""

    scale: float
    zero_point: int
    bits: int
    signed: bool
    channel_shift: tuple[int, ...] = ()

    def channel_scales(self) -> np.ndarray:
        """The real scale of every channel (last axis), or the tensor's scale as a 0-d array."""
        if not self.channel_shift:
            return np.asarray(self.scale, np.float64)
        return self.scale * np.exp2(-np.asarray(self.channel_shift, np.float64))


@dataclass(frozen=True)
class TensorType:
    """Element type, shape (None for an unknown dim), optional layout and quantization."""

    dtype: str
    shape: tuple[int | None, ...] | None = ()
    layout: str | None = None
    quant: Quantization | None = field(default=None)

    @property
    def rank(self) -> int | None:
        return None if self.shape is None else len(self.shape)

    @property
    def is_static(self) -> bool:
        return self.shape is not None and all(isinstance(d, int) for d in self.shape)

    @property
    def dims(self) -> tuple[int, ...]:
        """The static shape, every dimension an int (raises `ValueError` otherwise): what a
        pass reads once the value is known to be static (every Akida candidate is)."""
        shape = self.shape
        if shape is None or not all(isinstance(d, int) for d in shape):
            raise ValueError(f"shape {shape} is not static")
        return tuple(int(d) for d in shape if d is not None)

    def num_elements(self) -> int:
        """Element count of a static shape."""
        dims = self.dims
        return int(np.prod(dims, dtype=np.int64)) if dims else 1

    def with_shape(self, shape: tuple[int | None, ...]) -> TensorType:
        return TensorType(self.dtype, tuple(shape), self.layout, self.quant)
