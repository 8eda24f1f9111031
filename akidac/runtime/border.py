"""Border fragments of a hybrid model run in one pass, bit for bit as onnxruntime runs them.

A hybrid model's `AkidaOp` is fed by `Transpose` (NCHW → NHWC) and `QuantizeLinear`, and its
output goes through `DequantizeLinear` (and, for some outputs, a `Mul` by a constant and a
`Transpose` back to NCHW). When such a chain is a whole CPU part of its own, an onnxruntime
session runs a few microseconds of arithmetic for a call costing several times that. `plan`
recognises such a CPU part and gives a `BorderFragment` that does the same in one numba call:
the transposes become strided views (read through on the way in, written through on the way
out) and the arithmetic is onnxruntime's own, operation for operation:

- `QuantizeLinear` (MLAS, every x86 and ARM kernel): `q = x / scale` in float32, clamped to
  `[qmin - zero, qmax - zero]` as `max` then `min` do it (a NaN becomes the lower bound),
  rounded half to even, plus `zero`;
- `DequantizeLinear`: `float32(int32(x) - zero) * scale`, one float32 rounding each;
- `Mul` by a float32 constant: one IEEE float32 product.

The hybrid ONNX model is not changed (other consumers see its standard nodes); the session
keeps the onnxruntime session of the part for `run_all` and for anything the fragment does not
take. Anything outside these patterns (another operator, a rank above 4, a symbolic dim after
the batch, a per-axis parameter along the batch, a transpose that moves the batch) is not a
fragment and stays in onnxruntime.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnx
from numba import njit
from onnx import numpy_helper

import akidac.backends.akida.kernels  # noqa: F401  (points numba's cache at a writable folder)
from akidac.runtime.pieces import attribute, inverse_perm, piece_interfaces

#: the largest rank a fragment handles (its kernels index 4-D arrays).
MAX_RANK = 4
#: rows shorter than this are written directly, not through a row buffer.
SHORT_ROW = 16


@njit(cache=True)
def quantize4(
    x: np.ndarray,
    scale: np.ndarray,
    zero: np.ndarray,
    qmin: int,
    qmax: int,
    out: np.ndarray,
) -> None:
    """out = QuantizeLinear(x) as MLAS computes it. `x` is C-contiguous (N, d1, d2, d3), `out`
    a view of the same shape with any strides (a transposed output), `scale` (float32) and
    `zero` (int32) are C-contiguous (1, d1, d2, d3), broadcast over the batch.

    Each row is computed into a contiguous buffer, then copied to `out`: a store of unknown
    stride would keep the arithmetic from vectorizing (3× slower on a 3×32×32 input)."""
    n0, n1, n2, n3 = x.shape
    row = np.empty(n3, np.int32)
    for i in range(n0):
        for j in range(n1):
            for k in range(n2):
                src = x[i, j, k]
                divisors = scale[0, j, k]
                zeros = zero[0, j, k]
                for m in range(n3):
                    z = zeros[m]
                    low = np.float32(qmin - z)
                    high = np.float32(qmax - z)
                    q = np.float32(src[m] / divisors[m])
                    q = q if q > low else low  # maxps: the second operand when q is NaN
                    q = q if q < high else high
                    row[m] = np.int32(np.rint(q)) + z
                dst = out[i, j, k]
                for m in range(n3):
                    dst[m] = row[m]


@njit(cache=True)
def quantize_tensor4(
    x: np.ndarray, scale: float, zero: int, qmin: int, qmax: int, out: np.ndarray
) -> None:
    """`quantize4` with one scale and zero point (the common per-tensor input)."""
    n0, n1, n2, n3 = x.shape
    low = np.float32(qmin - zero)
    high = np.float32(qmax - zero)
    divisor = np.float32(scale)
    row = np.empty(n3, np.int32)
    for i in range(n0):
        for j in range(n1):
            for k in range(n2):
                src = x[i, j, k]
                for m in range(n3):
                    q = np.float32(src[m] / divisor)
                    q = q if q > low else low
                    q = q if q < high else high
                    row[m] = np.int32(np.rint(q)) + zero
                dst = out[i, j, k]
                for m in range(n3):
                    dst[m] = row[m]


@njit(cache=True)
def dequantize4(
    x: np.ndarray,
    zero: np.ndarray,
    scale: np.ndarray,
    factor: np.ndarray,
    multiply: bool,
    out: np.ndarray,
) -> None:
    """out = DequantizeLinear(x) [* factor] as onnxruntime computes it. `x` is C-contiguous
    (N, d1, d2, d3), `out` a view of the same shape with any strides, `zero` (int32), `scale`
    and `factor` (float32) are C-contiguous (1, d1, d2, d3); rows go through a buffer as in
    `quantize4`."""
    n0, n1, n2, n3 = x.shape
    if n3 < SHORT_ROW:  # (a few channels last): no buffer, whose per-row cost would dominate
        for i in range(n0):
            for j in range(n1):
                for k in range(n2):
                    for m in range(n3):
                        centred = np.int32(np.int32(x[i, j, k, m]) - zero[0, j, k, m])
                        y = np.float32(np.float32(centred) * scale[0, j, k, m])
                        if multiply:
                            y = np.float32(y * factor[0, j, k, m])
                        out[i, j, k, m] = y
        return
    row = np.empty(n3, np.float32)
    for i in range(n0):
        for j in range(n1):
            for k in range(n2):
                src = x[i, j, k]
                zeros = zero[0, j, k]
                scales = scale[0, j, k]
                for m in range(n3):
                    centred = np.int32(np.int32(src[m]) - zeros[m])
                    row[m] = np.float32(np.float32(centred) * scales[m])
                if multiply:
                    factors = factor[0, j, k]
                    for m in range(n3):
                        row[m] = np.float32(row[m] * factors[m])
                dst = out[i, j, k]
                for m in range(n3):
                    dst[m] = row[m]


def _compose(first: Sequence[int], second: Sequence[int]) -> tuple[int, ...]:
    """The permutation of Transpose(first) followed by Transpose(second)."""
    return tuple(first[axis] for axis in second)


def _pad4(array: np.ndarray) -> np.ndarray:
    """A view of `array` (rank 1 to 4, batch first) as rank 4, axes of size 1 after the batch
    (the last axis, the one the kernels run along, stays the array's last)."""
    missing = MAX_RANK - array.ndim
    return array[(slice(None),) + (None,) * missing] if missing else array


@dataclass
class BorderFragment:
    """A CPU part `Transpose* → QuantizeLinear → Transpose*` or `Transpose* → DequantizeLinear
    → Transpose* [→ Mul by a constant → Transpose*]`, as one numba call.

    The elementwise arithmetic commutes with the transposes, so it runs in the input's own
    order (contiguous reads) and the transposes become the strides of the output view it
    writes through. `run(x)` takes the part's input (any batch) and returns its output, a new
    C-contiguous array.
    """

    input: str
    output: str
    quantize: bool
    #: the permutation from the input to the output (all the part's transposes)
    perm: tuple[int, ...]
    input_dtype: np.dtype
    output_dtype: np.dtype
    #: the input's dims after the batch
    item: tuple[int, ...]
    #: per-element parameters in the input's order, C-contiguous (1, d1, d2, d3)
    scale: np.ndarray
    zero: np.ndarray
    factor: np.ndarray
    multiply: bool = False
    qmin: int = 0
    qmax: int = 0

    def __post_init__(self) -> None:
        identity = self.perm == tuple(range(len(self.perm)))
        self._write_perm: tuple[int, ...] | None = None if identity else inverse_perm(self.perm)
        #: the one scale and zero point of a per-tensor QuantizeLinear (its fast kernel)
        self._tensor_params: tuple[float, int] | None = None
        if self.quantize and np.all(self.scale == self.scale.flat[0]):
            if np.all(self.zero == self.zero.flat[0]):
                self._tensor_params = (float(self.scale.flat[0]), int(self.zero.flat[0]))

    def accepts(self, x: np.ndarray) -> bool:
        """Whether `x` is what the fragment was planned for (else onnxruntime runs the part)."""
        dtype = x.dtype if type(x) is np.ndarray else None
        return (dtype is self.input_dtype or dtype == self.input_dtype) and x.shape[1:] == self.item

    def run(self, x: np.ndarray) -> np.ndarray:
        if not x.flags.c_contiguous:
            x = np.ascontiguousarray(x)
        if self._write_perm is None:
            out = target = np.empty(x.shape, self.output_dtype)
        else:
            shape = x.shape
            out = np.empty(tuple(shape[axis] for axis in self.perm), self.output_dtype)
            target = out.transpose(self._write_perm)
        if x.ndim < MAX_RANK:
            x, target = _pad4(x), _pad4(target)
        if self._tensor_params is not None:
            scale, zero = self._tensor_params
            quantize_tensor4(x, scale, zero, self.qmin, self.qmax, target)
        elif self.quantize:
            quantize4(x, self.scale, self.zero, self.qmin, self.qmax, target)
        else:
            dequantize4(x, self.zero, self.scale, self.factor, self.multiply, target)
        return out


def _per_element(
    value: np.ndarray, axis: int | None, frame: tuple[int, ...], dtype: type
) -> np.ndarray | None:
    """A Q/DQ parameter (a scalar, or a vector along `axis` of `frame`) as a (1, *frame[1:])
    array; None when it cannot be one (a vector along the batch, or of the wrong length)."""
    rank = len(frame)
    if value.size == 1:
        return np.full((1, *frame[1:]), value.reshape(()), dtype)
    if value.ndim == 1 and axis is not None and 0 < axis < rank and value.shape[0] == frame[axis]:
        shape = [1] * rank
        shape[axis] = frame[axis]
        return np.broadcast_to(value.astype(dtype).reshape(shape), (1, *frame[1:]))
    return None


def _in_input_order(param: np.ndarray, perm_in: tuple[int, ...]) -> np.ndarray:
    """A parameter of the arithmetic frame (the input transposed by `perm_in`) in the input's
    order, C-contiguous, rank 4."""
    return np.ascontiguousarray(_pad4(param.transpose(inverse_perm(perm_in))))


def plan(
    nodes: Sequence[onnx.NodeProto],
    inputs: Sequence[str],
    outputs: Sequence[str],
    shapes: dict[str, tuple[int | None, ...]],
    types: dict[str, int],
    constants: dict[str, onnx.TensorProto],
) -> BorderFragment | None:
    """The fragment that computes a CPU part (its nodes in order, the values it reads and those
    it must give), or None when the part is not one.

    `shapes` and `types` give the values' dims (None: not static) and ONNX element types.
    """
    if len(inputs) != 1 or len(outputs) != 1 or not nodes:
        return None
    source = inputs[0]
    shape = shapes.get(source)
    if shape is None or not 1 <= len(shape) <= MAX_RANK or None in shape[1:]:
        return None
    rank = len(shape)
    item = tuple(int(d) for d in shape[1:])  # type: ignore[arg-type]
    current = source
    perm_in: tuple[int, ...] = tuple(range(rank))  # input → frame (before the core op)
    perm_out: tuple[int, ...] = tuple(range(rank))  # frame → current value
    core: str | None = None
    scale = zero = factor = None
    multiply = False
    qmin = qmax = 0
    out_dtype: np.dtype | None = None

    def frame() -> tuple[int, ...]:
        dims = (1, *item)
        return tuple(dims[axis] for axis in perm_in)

    for node in nodes:
        if node.domain not in ("", "ai.onnx") or len(node.output) != 1:
            return None
        data = [name for name in node.input if name and name not in constants]
        if data != [current] or (node.input[0] != current and node.op_type != "Mul"):
            return None
        op = node.op_type
        if op == "Transpose":
            perm_attr = attribute(node, "perm")
            if perm_attr is None or len(perm_attr.ints) != rank or perm_attr.ints[0] != 0:
                return None
            perm = tuple(int(p) for p in perm_attr.ints)
            if sorted(perm) != list(range(rank)):
                return None
            if core is None:
                perm_in = _compose(perm_in, perm)
            else:
                perm_out = _compose(perm_out, perm)
        elif op in ("QuantizeLinear", "DequantizeLinear"):
            if core is not None or len(node.input) < 2:
                return None
            quantizing = op == "QuantizeLinear"
            if any(a.name not in ("axis", "saturate") for a in node.attribute):
                return None  # block_size, output_dtype, ...: not the two forms planned here
            scale_t = constants.get(node.input[1])
            zero_t = constants.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
            if scale_t is None or zero_t is None:
                return None
            scale_v = numpy_helper.to_array(scale_t)
            zero_v = numpy_helper.to_array(zero_t)
            in_type = types.get(source)
            if scale_v.dtype != np.float32:
                return None
            if quantizing:
                if in_type != onnx.TensorProto.FLOAT or zero_v.dtype not in (np.int8, np.uint8):
                    return None
                info = np.iinfo(zero_v.dtype)
                qmin, qmax = int(info.min), int(info.max)
                out_dtype = zero_v.dtype
            else:
                if zero_v.dtype not in (np.int8, np.uint8, np.int32):
                    return None
                if in_type != onnx.helper.np_dtype_to_tensor_dtype(zero_v.dtype):
                    return None
                if zero_v.dtype == np.int32 and np.any(zero_v != 0):
                    return None  # int32(x) - zero could wrap
                out_dtype = np.dtype(np.float32)
            axis_attr = attribute(node, "axis")
            axis = int(axis_attr.i) if axis_attr is not None else 1
            axis = axis + rank if axis < 0 else axis
            dims = frame()
            scale = _per_element(scale_v, axis, dims, np.float32)
            zero = _per_element(zero_v.astype(np.int32), axis, dims, np.int32)
            if scale is None or zero is None:
                return None
            core = "quantize" if quantizing else "dequantize"
        elif op == "Mul" and core == "dequantize" and not multiply and len(node.input) == 2:
            other = node.input[1] if node.input[0] == current else node.input[0]
            constant = constants.get(other)
            if constant is None or constant.data_type != onnx.TensorProto.FLOAT:
                return None
            value = numpy_helper.to_array(constant)
            dims = frame()
            here = (1, *(dims[axis] for axis in perm_out[1:]))  # the Mul's input, batch 1
            if value.ndim > rank:
                return None
            try:
                if np.broadcast_shapes(value.shape, here) != here:
                    return None
            except ValueError:
                return None
            factor = np.broadcast_to(value, here).transpose(inverse_perm(perm_out))
            multiply = True
        else:
            return None
        current = node.output[0]
    if current != outputs[0] or core is None or scale is None or zero is None:
        return None
    assert out_dtype is not None
    input_dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(types[source]))
    return BorderFragment(
        input=source,
        output=current,
        quantize=core == "quantize",
        perm=_compose(perm_in, perm_out),
        input_dtype=input_dtype,
        output_dtype=np.dtype(out_dtype),
        item=item,
        scale=_in_input_order(scale.astype(np.float32), perm_in),
        zero=_in_input_order(zero.astype(np.int32), perm_in),
        factor=(
            _in_input_order(factor.astype(np.float32), perm_in)
            if factor is not None
            else np.zeros((1, 1, 1, 1), np.float32)
        ),
        multiply=multiply,
        qmin=qmin,
        qmax=qmax,
    )


def plan_part(
    nodes: Sequence[onnx.NodeProto],
    inputs: Sequence[str],
    outputs: Sequence[str],
    shapes: dict[str, tuple[int | None, ...]],
    types: dict[str, int],
    constants: dict[str, onnx.TensorProto],
) -> list[BorderFragment] | None:
    """The fragments that compute a whole CPU part, or None when any of it is not one.

    A part may hold several independent chains (the schedule puts the border work of parallel
    branches in one part: the `Transpose → QuantizeLinear` of each branch of an Inception
    block); each connected piece of it must be a fragment (`plan`), with its one input and its
    one output among those the part gives."""
    pieces = piece_interfaces(nodes, inputs, outputs, constants)
    if pieces is None:
        return None
    fragments = []
    for chain, reads, gives in pieces:
        fragment = plan(chain, reads, gives, shapes, types, constants)
        if fragment is None:
            return None
        fragments.append(fragment)
    covered = {f.output for f in fragments}
    return fragments if fragments and covered == set(outputs) else None
