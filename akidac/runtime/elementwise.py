"""CPU parts of elementwise arithmetic between AkidaOps, run in one numba pass per part.

Between two Akida regions a hybrid model often keeps a short CPU part: the SE block of an
EfficientNet (`DequantizeLinear → Transpose → GlobalAveragePool → Transpose → QuantizeLinear`,
then `… → Mul(x, se) → …`), or a PReLU and a residual `Add` that Akida cannot run (MediaPipe's
iris and face models). onnxruntime runs such a part op by op, transposing full maps to NCHW and
back, at 1.5–3 ns per element; on keras EfficientNet-B0 these parts took a third of the run.

`plan` turns such a part into a small register program over *rows*: every value is kept in one
storage order, the frame (the memory order of the part's largest input, NHWC for an AkidaOp
output, or else the order of its quantized output),
so the transposes vanish into the strides of the input views and the output views, and each
row (the frame's last axis, the channels) goes through all the part's operations while it is
in cache. The arithmetic is onnxruntime's, operation for operation, in float32:

- `DequantizeLinear`: `float32(int32(x) - zero) * scale`;
- `Add`, `Sub`, `Mul`, `Div`: one IEEE float32 operation (constants per channel, inputs
  broadcast along the frame);
- `PRelu`: `x if x > 0 else x * slope` (onnxruntime's select);
- `Relu`, `Clip`: Eigen's `max` and `min` (`0 if 0 > x else x`: a NaN and -0.0 pass through);
  `HardSigmoid`: `alpha · x`, then `+ beta`, then bounded to [0, 1];
- `QuantizeLinear`: MLAS's `x / scale`, clamped, rounded half to even, plus the zero point;
- `GlobalAveragePool` of an NCHW value (a global mean over the frame's two middle axes): MLAS
  sums each channel's pixels in four float32 lanes (pixel p into lane p mod 4), adds the lanes
  as `(l0 + l2) + (l1 + l3)`, then the pixels left over one by one, and divides by the pixel
  count (x86; `MLAS_FLOAT32X4` is four lanes on every x86 build).

onnxruntime does not promise its summation order, and other builds (ARM) order the lanes
differently; so `HybridSession` runs the part both ways on a probe input at load and keeps the
fused program only when every output is bit for bit the same (`session._matches_onnxruntime`).
Anything else (another operator, a rank above 4, a symbolic dim after the batch, a constant
that varies along more than the row, two full-size values in different orders) is not planned
and the part stays in onnxruntime.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from numba import njit
from onnx import numpy_helper

import akidac.backends.akida.kernels  # noqa: F401  (points numba's cache at a writable folder)
from akidac.runtime.pieces import attribute, inverse_perm, piece_interfaces

#: the largest rank a part may have (the kernel indexes 4-D frames).
MAX_RANK = 4
#: at most this many input views and outputs per stage (the kernel's fixed arguments).
MAX_VIEWS = 4
MAX_OUTPUTS = 3
#: the element types of the kernel's arrays (it takes their bytes and a code for each)
DTYPE_INT8 = 0
DTYPE_UINT8 = 1
DTYPE_INT32 = 2
DTYPE_FLOAT32 = 3
DTYPE_CODES = {
    np.dtype(np.int8): DTYPE_INT8,
    np.dtype(np.uint8): DTYPE_UINT8,
    np.dtype(np.int32): DTYPE_INT32,
    np.dtype(np.float32): DTYPE_FLOAT32,
}
#: merged rows stay this short, so that a row's registers stay in cache between operations
LONGEST_ROW = 4096
#: at most this many float registers (one per computed value of a stage).
MAX_REGISTERS = 24

# Instruction opcodes: a program is an int64 array of rows [op, dst, a, b, p1, p2, p3]; the
# operands a and b are registers (constants are registers filled once, OP_CONST).
OP_LOAD = 1  # regs[dst] = float32(view a)
OP_DEQUANTIZE = 2  # regs[dst] = float32(int32(view a) - int32(const row p1)) * const row p2
OP_ADD = 3  # regs[dst] = a + b
OP_SUB = 4
OP_MUL = 5
OP_DIV = 6
OP_PRELU = 7  # regs[dst] = a if a > 0 else a * b
OP_QUANTIZE = 8  # output dst = quantize(reg a, scale row p1, zero row b), clamped to [p2, p3]
OP_STORE = 9  # output dst = reg a
OP_MEAN = 10  # mean slot dst accumulates reg a (MLAS's order)
OP_CONST = 11  # regs[dst] = constant row a on every row of the tile (once, before the tiles)
OP_RELU = 12  # regs[dst] = 0 if 0 > a else a (Eigen's max: NaN and -0.0 pass through)
OP_CLIP = 13  # regs[dst] = min(max(a, const row p1), const row p2), as Eigen's max and min
CODE_COLUMNS = 7

_BINARY = {"Add": OP_ADD, "Sub": OP_SUB, "Mul": OP_MUL, "Div": OP_DIV, "PRelu": OP_PRELU}


# The kernel works tile by tile: a tile is the B rows (n, i, 0..B-1) of the frame, and each
# instruction runs over the whole tile before the next one, so that its loops are tight and
# the dispatch is paid once per tile (a row-by-row interpreter cost six times the arithmetic
# of a 32-channel row). It indexes its arrays with unsigned offsets and never slices them in
# the loops: a slice is a new array whose reference count numba updates atomically, and a
# signed index keeps a negative-index check that stops vectorization.


@njit(cache=True, inline="always", error_model="numpy")
def _offset(rows, n, i, j):
    """Where row (n, i, j) of an array starts in its flat memory (`rows`: its [base, sn, si, sj,
    sm])."""
    return np.uint64(rows[0] + n * rows[1] + i * rows[2] + j * rows[3])


@njit(cache=True, inline="always", error_model="numpy")
def _binary(op, x, y, out):
    """out = x op y over a tile (registers of (B, C)), one loop nest per operator."""
    tile, width = out.shape
    if op == OP_ADD:
        for j in range(tile):
            for m in range(width):
                out[j, m] = x[j, m] + y[j, m]
    elif op == OP_SUB:
        for j in range(tile):
            for m in range(width):
                out[j, m] = x[j, m] - y[j, m]
    elif op == OP_MUL:
        for j in range(tile):
            for m in range(width):
                out[j, m] = x[j, m] * y[j, m]
    elif op == OP_DIV:
        for j in range(tile):
            for m in range(width):
                out[j, m] = x[j, m] / y[j, m]
    else:
        for j in range(tile):
            for m in range(width):
                value = x[j, m]
                out[j, m] = value if value > 0 else value * y[j, m]


@njit(cache=True, inline="always", error_model="numpy")
def _relu(x, out):
    """onnxruntime's Relu (Eigen `cwiseMax(0)`, i.e. `maxps(0, x)`): 0 if 0 > x else x, so a
    NaN and -0.0 pass through."""
    tile, width = out.shape
    zero = np.float32(0)
    for j in range(tile):
        for m in range(width):
            value = x[j, m]
            out[j, m] = zero if zero > value else value


@njit(cache=True, inline="always", error_model="numpy")
def _clip(x, low, high, out):
    """onnxruntime's Clip (Eigen `cwiseMax(low).cwiseMin(high)`): low if low > x else x, then
    high if high < that else that; a NaN passes through."""
    tile, width = out.shape
    for j in range(tile):
        for m in range(width):
            value = x[j, m]
            value = low[m] if low[m] > value else value
            out[j, m] = high[m] if high[m] < value else value


@njit(cache=True, inline="always", error_model="numpy")
def _load(src, rows, n, i, out):
    """A tile of an input (`src` flat, `rows` its row table) into register tile `out`."""
    tile, width = out.shape
    step = np.uint64(rows[4])
    for j in range(tile):
        base = _offset(rows, n, i, j)
        if step == 1:
            for m in range(width):
                out[j, m] = np.float32(src[base + np.uint64(m)])
        else:  # a value laid out otherwise (an NCHW tensor onnxruntime wrote), read across
            for m in range(width):
                out[j, m] = np.float32(src[base + np.uint64(m) * step])


@njit(cache=True, inline="always", error_model="numpy")
def _dequantize(src, rows, n, i, zero, scale, out):
    """A tile of DequantizeLinear: float32(int32(x) - zero) * scale, one rounding each."""
    tile, width = out.shape
    step = np.uint64(rows[4])
    for j in range(tile):
        base = _offset(rows, n, i, j)
        if step == 1:
            for m in range(width):
                centred = np.int32(np.int32(src[base + np.uint64(m)]) - zero[m])
                out[j, m] = np.float32(centred) * scale[m]
        else:
            for m in range(width):
                centred = np.int32(np.int32(src[base + np.uint64(m) * step]) - zero[m])
                out[j, m] = np.float32(centred) * scale[m]


@njit(cache=True, inline="always", error_model="numpy")
def _quantize(x, scale, zero, low, high, dst, rows, n, i):
    """A tile of MLAS's QuantizeLinear of register tile `x` into `dst` (`zero`, `low`, `high`:
    the zero points and clamp bounds, prepared once per instruction)."""
    tile, width = x.shape
    step = np.uint64(rows[4])
    for j in range(tile):
        base = _offset(rows, n, i, j)
        for m in range(width):
            q = np.float32(x[j, m] / scale[m])
            q = q if q > low[m] else low[m]  # maxps: the second operand when q is NaN
            q = q if q < high[m] else high[m]
            dst[base + np.uint64(m) * step] = np.int32(np.rint(q)) + zero[m]


@njit(cache=True, inline="always", error_model="numpy")
def _store(x, dst, rows, n, i):
    """A register tile into a float output, which always lies in the frame's order."""
    tile, width = x.shape
    for j in range(tile):
        base = _offset(rows, n, i, j)
        for m in range(width):
            dst[base + np.uint64(m)] = x[j, m]


@njit(cache=True, error_model="numpy")
def run_rows(
    code: np.ndarray,
    consts: np.ndarray,
    views: tuple[np.ndarray, ...],
    view_types: np.ndarray,
    view_rows: np.ndarray,
    outputs: tuple[np.ndarray, ...],
    output_types: np.ndarray,
    output_rows: np.ndarray,
    frame: np.ndarray,
    registers: int,
    means: np.ndarray,
) -> None:
    """Run `code` on every row of a frame (N, A, B, C), a tile of B rows at a time.

    Every input and output is the bytes of a flat C-contiguous array, of the element type its
    `*_types` entry names (`DTYPE_CODES`: one compiled kernel for every combination), whose
    row (n, i, j) is the C values at `base + n·sn + i·si + j·sj + m·sm` (`view_rows` /
    `output_rows`: one [base, sn, si, sj, sm] per array, in elements, a stride 0 where it is
    broadcast; sm is 1 for an array in the frame's order, whose loops vectorize, and the
    stride across for one in another order). `means` (N, M, C) receives the global means of
    the MEAN instructions (MLAS's order: pixel p = i·B + j into lane p mod 4)."""
    n0, n1, tile, width = frame[0], frame[1], frame[2], frame[3]
    steps = code.shape[0]
    regs = np.empty((registers, tile, width), np.float32)
    # the integer zero points of each Q/DQ instruction, and a Q's float clamp bounds, once
    zeros = np.zeros((steps, width), np.int32)
    lows = np.zeros((steps, width), np.float32)
    highs = np.zeros((steps, width), np.float32)
    for t in range(steps):
        if code[t, 0] == OP_DEQUANTIZE:
            for m in range(width):
                zeros[t, m] = np.int32(consts[code[t, 4], m])
        elif code[t, 0] == OP_QUANTIZE:
            for m in range(width):
                zeros[t, m] = np.int32(consts[code[t, 3], m])
                lows[t, m] = np.float32(code[t, 5] - zeros[t, m])
                highs[t, m] = np.float32(code[t, 6] - zeros[t, m])
        elif code[t, 0] == OP_CONST:
            for j in range(tile):
                for m in range(width):
                    regs[code[t, 1], j, m] = consts[code[t, 2], m]
    slots = means.shape[1]
    lanes = np.zeros((max(slots, 1) * 4, width), np.float32)
    totals = np.zeros((max(slots, 1), width), np.float32)
    pixels = n1 * tile
    vector_end = pixels - pixels % 4
    for n in range(n0):
        if slots:
            lanes[:] = 0
        for i in range(n1):
            for t in range(steps):
                op = code[t, 0]
                dst = code[t, 1]
                a = code[t, 2]
                # per tile and instruction, a few array views (numba counts their references
                # atomically: once per tile is cheap, once per row was not)
                if op in (OP_LOAD, OP_DEQUANTIZE):
                    src = views[a]
                    kind = view_types[a]
                    rows = view_rows[a]
                    out = regs[dst]
                    if op == OP_LOAD:
                        if kind == DTYPE_FLOAT32:
                            _load(src.view(np.float32), rows, n, i, out)
                        elif kind == DTYPE_INT8:
                            _load(src.view(np.int8), rows, n, i, out)
                        elif kind == DTYPE_UINT8:
                            _load(src, rows, n, i, out)
                        else:
                            _load(src.view(np.int32), rows, n, i, out)
                    else:
                        zero = zeros[t]
                        scale = consts[code[t, 5]]
                        if kind == DTYPE_INT8:
                            _dequantize(src.view(np.int8), rows, n, i, zero, scale, out)
                        elif kind == DTYPE_UINT8:
                            _dequantize(src, rows, n, i, zero, scale, out)
                        else:
                            _dequantize(src.view(np.int32), rows, n, i, zero, scale, out)
                elif op == OP_QUANTIZE:
                    scale = consts[code[t, 4]]
                    x = regs[a]
                    rows = output_rows[dst]
                    zero, low, high = zeros[t], lows[t], highs[t]
                    if output_types[dst] == DTYPE_INT8:
                        _quantize(x, scale, zero, low, high, outputs[dst].view(np.int8), rows, n, i)
                    else:
                        _quantize(x, scale, zero, low, high, outputs[dst], rows, n, i)
                elif op == OP_STORE:
                    _store(regs[a], outputs[dst].view(np.float32), output_rows[dst], n, i)
                elif op == OP_MEAN:
                    for j in range(tile):
                        p = i * tile + j
                        if p < vector_end:
                            lane = dst * 4 + p % 4
                            for m in range(width):
                                lanes[lane, m] = lanes[lane, m] + regs[a, j, m]
                        else:
                            if p == vector_end:
                                _reduce_lanes(lanes, dst, totals, width)
                            for m in range(width):
                                totals[dst, m] = totals[dst, m] + regs[a, j, m]
                elif op == OP_RELU:
                    _relu(regs[a], regs[dst])
                elif op == OP_CLIP:
                    _clip(regs[a], consts[code[t, 4]], consts[code[t, 5]], regs[dst])
                elif op != OP_CONST:
                    _binary(op, regs[a], regs[code[t, 3]], regs[dst])
        divisor = np.float32(pixels)
        for s in range(slots):
            if vector_end == pixels:
                _reduce_lanes(lanes, s, totals, width)
            for m in range(width):
                means[n, s, m] = totals[s, m] / divisor


@njit(cache=True, inline="always", error_model="numpy")
def _reduce_lanes(lanes, slot, totals, width):
    """MLAS's horizontal add of a slot's four lanes on x86: (l0 + l2) + (l1 + l3)."""
    base = slot * 4
    for m in range(width):
        low = np.float32(lanes[base, m] + lanes[base + 2, m])
        high = np.float32(lanes[base + 1, m] + lanes[base + 3, m])
        totals[slot, m] = low + high


@dataclass
class _View:
    """How one input is read in a stage's frame: the part input, reshaped to rank 4 (size-1
    axes after the batch), transposed by `axes` and broadcast to the frame."""

    input: str
    padded: tuple[int, ...]  # the input's dims after the batch, as rank 4 minus the batch
    axes: tuple[int, ...]


@dataclass
class _Output:
    name: str
    dtype: np.dtype
    item: tuple[int, ...]  # its dims after the batch (unpadded)
    #: its order: frame axis f holds its padded axis axes[f]
    axes: tuple[int, ...]


@dataclass
class _Stage:
    code: np.ndarray
    registers: int
    views: list[_View]
    outputs: list[_Output]
    means: int  # MEAN slots written (full stage) or read (pooled stage)
    pooled: bool
    #: per view and per output, [base, sn, si, sj, sm] of its rows in the kernel's frame (in
    #: elements of its flat memory; sn is per sample), set by `ElementwisePart`
    view_rows: np.ndarray = field(default_factory=lambda: np.zeros((MAX_VIEWS, 5), np.int64))
    output_rows: np.ndarray = field(default_factory=lambda: np.zeros((MAX_OUTPUTS, 5), np.int64))
    #: per view and per output, its element type (`DTYPE_CODES`)
    view_types: np.ndarray = field(default_factory=lambda: np.full(MAX_VIEWS, DTYPE_FLOAT32))
    output_types: np.ndarray = field(default_factory=lambda: np.full(MAX_OUTPUTS, DTYPE_FLOAT32))


class NotInFrame(Exception):
    """A view or an output that the kernel's frame cannot address by strides (the frame's
    merged rows over axes whose strides do not merge): that kernel frame is not used."""


@dataclass
class ElementwisePart:
    """A CPU part planned as one or two row programs (the full-size rows, then the rows of the
    global means) over a frame; `run(env)` computes its outputs from its inputs in `env`."""

    inputs: list[str]
    input_dtypes: dict[str, np.dtype]
    input_items: dict[str, tuple[int, ...]]
    frame_item: tuple[int, int, int]  # the frame's dims after the batch
    consts: np.ndarray
    stages: list[_Stage] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    #: the memory order (as in `plan`) of inputs written by an earlier fused part
    input_orders: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        #: float outputs lie in memory in the frame's order, each exposed as a (transposed)
        #: view with its own shape: the value an NCHW residual branch carries from one part to
        #: the next stays NHWC, written and read row by row (a real transpose costs more than
        #: the part's arithmetic); QuantizeLinear outputs (an AkidaOp's input) are contiguous
        self.memory_orders = {
            out.name: out.axes
            for stage in self.stages
            for out in stage.outputs
            if out.dtype == np.float32
        }
        #: per input, the transpose that makes it C-contiguous (its memory order)
        self._to_memory = {name: self.input_orders.get(name, (0, 1, 2, 3)) for name in self.inputs}
        #: per input: its name, its padded shape (batch -1) and that transpose, None for none
        self._memory_views = [
            (
                name,
                (-1, *_pad_item(self.input_items[name])),
                None if self._to_memory[name] == (0, 1, 2, 3) else self._to_memory[name],
            )
            for name in self.inputs
        ]
        #: `_prepare`'s result per batch size
        self._prepared: dict[int, list[tuple[_Stage, np.ndarray, list[tuple[Any, ...]]]]] = {}
        #: the frame as the kernel walks it: a part of one full-size stage whose views and
        #: outputs all step through the frame's last two (three) axes as through one runs
        #: along rows of their product (the 3-channel input normalisation of an image model:
        #: rows of 672 values, not of 3), its constant rows tiled to match
        self.kernel_item = self.frame_item
        self.kernel_consts = self.consts
        a, b, c = self.frame_item
        if len(self.stages) == 1 and not self.stages[0].pooled and not self.stages[0].means:
            for item in ((1, 1, a * b * c), (a, 1, b * c)):
                if item[2] > LONGEST_ROW:
                    continue
                try:
                    self._set_rows(self.stages[0], item)
                except NotInFrame:
                    continue
                self.kernel_item = item
                self.kernel_consts = np.ascontiguousarray(np.tile(self.consts, (1, item[2] // c)))
                return
        for stage in self.stages:
            self._set_rows(stage, (1, 1, c) if stage.pooled else self.frame_item)

    def _set_rows(self, stage: _Stage, item: tuple[int, int, int]) -> None:
        """Fill `stage`'s row table for the kernel frame `item` from batch-2 stand-ins laid out
        as the inputs will be; NotInFrame when an array cannot be seen in that frame."""
        frame = (1, *self.frame_item)
        kernel = (2, *item)
        view_rows = np.zeros((MAX_VIEWS, 5), np.int64)
        output_rows = np.zeros((MAX_OUTPUTS, 5), np.int64)
        if stage.pooled:
            for s in range(stage.means):  # means (N, M, C) flat: slot s of sample n
                view_rows[s] = (s * item[2], stage.means * item[2], 0, 0, 1)
        else:
            for k, view in enumerate(stage.views):
                padded = (2, *view.padded)
                order = self._to_memory[view.input]
                memory = np.empty(tuple(padded[axis] for axis in order), np.uint8)
                logical = memory.transpose(inverse_perm(order))
                seen = np.broadcast_to(logical.transpose(view.axes), (2, *frame[1:]))
                view_rows[k] = _rows_of(seen, kernel)
        frame_item = (1, 1, item[2]) if stage.pooled else self.frame_item
        for k, out in enumerate(stage.outputs):
            shape, seen_of, _ = self._output_layout(out, 2, frame_item)
            output_rows[k] = _rows_of(seen_of(np.empty(shape, np.uint8)), kernel)
        stage.view_rows = view_rows
        stage.output_rows = output_rows
        stage.view_types = np.full(MAX_VIEWS, DTYPE_FLOAT32, np.int64)
        stage.output_types = np.full(MAX_OUTPUTS, DTYPE_FLOAT32, np.int64)
        if not stage.pooled:
            for k, view in enumerate(stage.views):
                stage.view_types[k] = DTYPE_CODES[self.input_dtypes[view.input]]
        for k, out in enumerate(stage.outputs):
            stage.output_types[k] = DTYPE_CODES[out.dtype]

    @staticmethod
    def _output_layout(
        out: _Output, batch: int, frame_item: tuple[int, int, int]
    ) -> tuple[tuple[int, ...], Any, Any]:
        """Where an output lies: (the shape of its memory, how its memory is seen in the
        frame's order, how its value — the array `env` gets — is seen from its memory). A float
        output lies in the frame's order, a quantized one (an AkidaOp's input) in its own."""
        value_shape = (batch, *out.item)
        if out.dtype == np.float32:
            inverse = inverse_perm(out.axes)

            def value_of(memory: np.ndarray) -> np.ndarray:
                return memory.transpose(inverse).reshape(value_shape)

            return (batch, *frame_item), _same_array, value_of
        padded = (batch, *_pad_item(out.item))

        def seen_of(memory: np.ndarray) -> np.ndarray:
            return memory.reshape(padded).transpose(out.axes)

        return value_shape, seen_of, _same_array

    def accepts(self, env: dict[str, np.ndarray]) -> bool:
        """Whether the inputs in `env` are what the part was planned for (same dtypes, dims
        after the batch, one batch size, the memory order planned), else onnxruntime runs it."""
        batch = None
        for name in self.inputs:
            x = env[name]
            if type(x) is not np.ndarray or x.dtype != self.input_dtypes[name]:
                return False
            if x.shape[1:] != self.input_items[name]:
                return False
            if batch is None:
                batch = x.shape[0]
            elif x.shape[0] != batch:
                return False
            order = self._to_memory[name]
            if order != (0, 1, 2, 3):
                padded = x.reshape((x.shape[0], *_pad_item(self.input_items[name])))
                if not padded.transpose(order).flags.c_contiguous:
                    return False
            elif not x.flags.c_contiguous:
                return False
        return True

    def run(self, env: dict[str, np.ndarray]) -> None:
        """Compute the part's outputs from its inputs in `env` (which `accepts`) into `env`.

        Everything that does not depend on the batch is prepared at load (`_prepare`): a call
        costs a few µs of Python and one numba call per stage."""
        batch = env[self.inputs[0]].shape[0]
        prepared = self._prepared.get(batch) or self._prepare(batch)
        flat = {}
        for name, padded, order in self._memory_views:
            x = env[name]
            if order is not None:
                x = x.reshape(padded).transpose(order)
            flat[name] = x.reshape(-1).view(np.uint8)
        means = _NO_MEANS
        for stage, frame, outputs in prepared:
            if stage.pooled:
                views = (means.reshape(-1).view(np.uint8),) * stage.means + _NO_VIEWS[stage.means :]
                slots = _NO_MEANS
                consts = self.consts
            else:
                views = tuple(flat[v.input] for v in stage.views) + _NO_VIEWS[len(stage.views) :]
                means = slots = np.empty((batch, stage.means, self.frame_item[2]), np.float32)
                consts = self.kernel_consts
            targets = []
            for name, dtype, shape, value_of in outputs:
                memory = np.empty(shape, dtype)
                env[name] = value_of(memory)
                targets.append(memory.reshape(-1).view(np.uint8))
            run_rows(
                stage.code,
                consts,
                views,
                stage.view_types,
                stage.view_rows,
                (*targets, *_NO_VIEWS[: MAX_OUTPUTS - len(targets)]),
                stage.output_types,
                stage.output_rows,
                frame,
                max(stage.registers, 1),
                slots,
            )

    def _prepare(self, batch: int) -> list[tuple[_Stage, np.ndarray, list[tuple[Any, ...]]]]:
        """Per stage, for this batch size: the kernel frame, and per output its name, dtype,
        the shape of its memory and how its value (the array `env` gets) is seen from it (a
        float output lies in the frame's order, a quantized one in its own)."""
        prepared = []
        for stage in self.stages:
            frame_item = (1, 1, self.frame_item[2]) if stage.pooled else self.frame_item
            outputs: list[tuple[Any, ...]] = []
            for out in stage.outputs:
                shape, _, value_of = self._output_layout(out, batch, frame_item)
                outputs.append((out.name, out.dtype, shape, value_of))
            item = frame_item if stage.pooled else self.kernel_item
            prepared.append((stage, np.array((batch, *item), np.int64), outputs))
        self._prepared[batch] = prepared
        return prepared


def _rows_of(seen: np.ndarray, kernel: tuple[int, ...]) -> tuple[int, int, int, int, int]:
    """[0, sn, si, sj, sm] (elements) of an array seen in the frame, reshaped to the kernel
    frame; NotInFrame when it does not reshape without a copy."""
    view = _reshaped(seen, kernel)
    if view is None:
        raise NotInFrame
    n, i, j, m = (s // view.itemsize for s in view.strides)
    if kernel[3] > 1 and m == 0:
        raise NotInFrame  # broadcast along the row: not a case the planner makes
    return (0, n, i if kernel[1] > 1 else 0, j if kernel[2] > 1 else 0, m if kernel[3] > 1 else 1)


#: the kernel's unused view and output slots, and a stage's means when it has none
_NO_VIEWS = (np.zeros(4, np.uint8),) * MAX_VIEWS
_NO_MEANS = np.zeros((1, 0, 1), np.float32)


def _same_array(memory: np.ndarray) -> np.ndarray:
    return memory


def _reshaped(array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
    """A view of `array` with `shape` (same memory, no copy), or None when its strides do not
    allow one (numpy's no-copy reshape, which setting `shape` on a view attempts)."""
    view = array.view()
    try:
        view.shape = shape
    except AttributeError:
        return None
    return view


def _pad_item(item: Sequence[int]) -> tuple[int, ...]:
    """Dims after the batch of a rank-r value as rank 4: size-1 axes in front."""
    return (1,) * (MAX_RANK - 1 - len(item)) + tuple(item)


def _pad_perm(perm: Sequence[int]) -> tuple[int, ...]:
    """A rank-r permutation (batch kept first) acting on the rank-4 padded value."""
    missing = MAX_RANK - len(perm)
    return (0, *range(1, missing + 1), *(p + missing for p in perm[1:]))


def _activation_steps(
    node: onnx.NodeProto, constants: dict[str, onnx.TensorProto]
) -> list[tuple[int, np.ndarray, tuple[np.ndarray, np.ndarray]]]:
    """A Relu, Clip or HardSigmoid as instructions (opcode, constant operand, clip bounds), in
    onnxruntime's order: HardSigmoid is `alpha · x`, then `+ beta` (two roundings, no fused
    multiply-add), then bounded to [0, 1]; a Clip's bounds are scalar float constants (or
    attributes before opset 11), a missing one unbounded."""
    nothing = np.zeros((), np.float32)
    if node.op_type == "Relu":
        if node.attribute:
            raise _Unplannable
        return [(OP_RELU, nothing, (nothing, nothing))]
    attrs = {a.name: a for a in node.attribute}
    if node.op_type == "HardSigmoid":
        if set(attrs) - {"alpha", "beta"}:
            raise _Unplannable
        alpha = np.float32(attrs["alpha"].f if "alpha" in attrs else 0.2)
        beta = np.float32(attrs["beta"].f if "beta" in attrs else 0.5)
        return [
            (OP_MUL, np.asarray(alpha), (nothing, nothing)),
            (OP_ADD, np.asarray(beta), (nothing, nothing)),
            (OP_CLIP, nothing, (np.asarray(np.float32(0)), np.asarray(np.float32(1)))),
        ]
    bounds = [np.asarray(np.float32(-np.inf)), np.asarray(np.float32(np.inf))]
    if set(attrs) - {"min", "max"}:
        raise _Unplannable
    for k, name in enumerate(("min", "max")):
        if name in attrs:
            bounds[k] = np.asarray(np.float32(attrs[name].f))
        if len(node.input) > k + 1 and node.input[k + 1]:
            tensor = constants.get(node.input[k + 1])
            if tensor is None or tensor.data_type != onnx.TensorProto.FLOAT:
                raise _Unplannable
            value = numpy_helper.to_array(tensor)
            if value.size != 1:
                raise _Unplannable
            bounds[k] = value.reshape(()).astype(np.float32)
    return [(OP_CLIP, nothing, (bounds[0], bounds[1]))]


class _Unplannable(Exception):
    """The part is not a row program (it stays in onnxruntime)."""


def plan(
    nodes: Sequence[onnx.NodeProto],
    inputs: Sequence[str],
    outputs: Sequence[str],
    shapes: dict[str, tuple[int | None, ...]],
    types: dict[str, int],
    constants: dict[str, onnx.TensorProto],
    memory_orders: dict[str, tuple[int, ...]] | None = None,
) -> ElementwisePart | None:
    """The row program of a CPU part (its nodes in topological order, the values it reads, the
    values it must give), or None when the part is not one.

    `memory_orders` gives, for inputs that an earlier fused part writes, the order their
    values lie in memory (`ElementwisePart.memory_orders`): the frame follows it, so that the
    part reads them row by row."""
    try:
        return _Planner(nodes, inputs, outputs, shapes, types, constants, memory_orders).plan()
    except _Unplannable:
        return None


def plan_part(
    nodes: Sequence[onnx.NodeProto],
    inputs: Sequence[str],
    outputs: Sequence[str],
    shapes: dict[str, tuple[int | None, ...]],
    types: dict[str, int],
    constants: dict[str, onnx.TensorProto],
    memory_orders: dict[str, tuple[int, ...]] | None = None,
) -> list[ElementwisePart] | None:
    """The row programs of a whole CPU part, one per connected piece (each has its own frame:
    two heads' dequantizations, two branches of a block), or None when any piece is not one."""
    pieces = piece_interfaces(nodes, inputs, outputs, constants)
    if pieces is None:
        return None
    parts = []
    for piece, reads, gives in pieces:
        part = plan(piece, reads, gives, shapes, types, constants, memory_orders)
        if part is None:
            return None
        parts.append(part)
    covered = {name for part in parts for name in part.outputs}
    return parts if parts and covered == set(outputs) else None


class _Planner:
    """Turns a part's nodes into stages: first ties every value to one frame (`_layout`),
    then emits each node as instructions (`_plan`)."""

    def __init__(
        self,
        nodes: Sequence[onnx.NodeProto],
        inputs: Sequence[str],
        outputs: Sequence[str],
        shapes: dict[str, tuple[int | None, ...]],
        types: dict[str, int],
        constants: dict[str, onnx.TensorProto],
        memory_orders: dict[str, tuple[int, ...]] | None = None,
    ) -> None:
        self.memory_orders = memory_orders or {}
        self.nodes = list(nodes)
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self.types = types
        self.constants = constants
        self.rank = 0
        #: every runtime value's dims after the batch, padded to rank 4 (3 dims)
        self.items: dict[str, tuple[int, ...]] = {}
        self.raw_items: dict[str, tuple[int, ...]] = {}
        for name in {*inputs, *(o for n in nodes for o in n.output)}:
            shape = shapes.get(name)
            if shape is None or not 1 <= len(shape) <= MAX_RANK or None in shape[1:]:
                raise _Unplannable
            if self.rank and len(shape) != self.rank:
                raise _Unplannable  # one rank for every runtime value
            self.rank = len(shape)
            item = tuple(int(d) for d in shape[1:])  # type: ignore[arg-type]
            self.raw_items[name] = item
            self.items[name] = _pad_item(item)
        #: frame axis f of a value holds its padded axis q[f]
        self.order: dict[str, tuple[int, ...]] = {}
        self.alias: dict[str, tuple[str, tuple[int, ...]]] = {}

    # -- layout -------------------------------------------------------------------------

    def _runtime(self, name: str) -> bool:
        return bool(name) and name not in self.constants

    def _link(self, a: str, b: str, map_ab: Sequence[int] | None = None) -> bool:
        """Propagate a known order between a and b (b's padded axis k is a's axis map_ab[k]).
        Returns whether anything changed; raises on a contradiction."""
        changed = False
        if a in self.order:
            qa = self.order[a]
            qb = qa if map_ab is None else tuple(inverse_perm(map_ab)[axis] for axis in qa)
            if b in self.order:
                if self.order[b] != qb:
                    raise _Unplannable
            else:
                self.order[b] = qb
                changed = True
        elif b in self.order:
            qb = self.order[b]
            self.order[a] = qb if map_ab is None else tuple(map_ab[axis] for axis in qb)
            changed = True
        return changed

    def _seeds(self) -> list[tuple[str, tuple[int, ...]]]:
        """The frames to try, best first: the memory order of the largest input (an integer
        one, an AkidaOp's NHWC output, on a tie), whose reads are then contiguous; then the
        order of each quantized output (an NCHW value onnxruntime wrote, read across, with
        its per-channel constants along the rows and the AkidaOp's input written in place)."""
        integer = (onnx.TensorProto.INT8, onnx.TensorProto.UINT8, onnx.TensorProto.INT32)
        anchor = max(
            self.inputs,
            key=lambda name: (
                int(np.prod(self.items[name])),
                self.types.get(name) in integer,
                -self.inputs.index(name),
            ),
        )
        seeds = [(anchor, self.memory_orders.get(anchor, (0, 1, 2, 3)))]
        for node in self.nodes:
            if node.op_type == "QuantizeLinear" and node.output[0] in self.outputs:
                seeds.append((node.output[0], (0, 1, 2, 3)))
        return seeds

    def _layout(self, seed: str, order: tuple[int, ...]) -> None:
        self.order[seed] = order
        for _ in range(len(self.nodes) + 2):
            changed = False
            for node in self.nodes:
                out = node.output[0]
                if node.op_type == "Transpose":
                    perm_attr = attribute(node, "perm")
                    if (
                        perm_attr is None
                        or len(perm_attr.ints) != self.rank
                        or perm_attr.ints[0] != 0
                    ):
                        raise _Unplannable
                    perm = _pad_perm([int(p) for p in perm_attr.ints])
                    changed |= self._link(node.input[0], out, perm)
                elif node.op_type == "GlobalAveragePool":
                    changed |= self._link(node.input[0], out)
                else:
                    # every runtime operand (one rank: broadcasting aligns axis by axis)
                    for name in node.input:
                        if self._runtime(name):
                            changed |= self._link(name, out)
            if not changed:
                break
        for node in self.nodes:
            if node.output[0] not in self.order:
                raise _Unplannable  # a value not tied to the frame
        frame = self._frame_item(seed)
        for name in self.order:
            # a value is the frame's size or broadcast along it (an SE block's scales; a
            # global mean is (1, 1, C))
            if any(d not in (1, f) for d, f in zip(self._frame_item(name), frame, strict=True)):
                raise _Unplannable
        self.frame = frame

    def _frame_item(self, name: str) -> tuple[int, int, int]:
        q = self.order[name]
        padded = (1, *self.items[name])
        return (padded[q[1]], padded[q[2]], padded[q[3]])

    # -- code ---------------------------------------------------------------------------

    def plan(self) -> ElementwisePart:
        if not self.nodes or not self.outputs:
            raise _Unplannable
        for node in self.nodes:
            if node.domain not in ("", "ai.onnx") or len(node.output) != 1:
                raise _Unplannable
        for seed, order in self._seeds():
            self.order = {}
            self.alias = {}
            try:
                return self._plan(seed, order)
            except _Unplannable:
                continue
        raise _Unplannable

    def _plan(self, seed: str, order: tuple[int, ...]) -> ElementwisePart:
        self._layout(seed, order)
        consts: list[np.ndarray] = []
        const_index: dict[bytes, int] = {}
        width = self.frame[2]

        def const_row(values: np.ndarray) -> int:
            row = np.ascontiguousarray(np.broadcast_to(values.astype(np.float32), (width,)))
            key = row.tobytes()
            if key not in const_index:
                const_index[key] = len(consts)
                consts.append(row)
            return const_index[key]

        stages = [_StageBuilder(pooled=False), _StageBuilder(pooled=True)]
        stage_frame = [self.frame, (1, 1, width)]
        where: dict[str, tuple[int, int]] = {}  # a computed float value -> (stage, register)
        quantized: set[str] = set()  # the QuantizeLinear outputs (written, never read)
        #: a Transpose output -> (the value it re-orders, its permutation padded to rank 4)
        alias = self.alias
        mean_of: dict[str, int] = {}  # a GlobalAveragePool output -> its slot

        def source(name: str) -> str:
            while name in alias:
                name = alias[name][0]
            return name

        def stage_of(name: str) -> int | None:
            name = source(name)
            if name in where:
                return where[name][0]
            if name in mean_of:
                return 1
            return None  # a part input: readable in stage 0

        def constant_row(name: str, out: str) -> int:
            """A constant operand of `out`'s op, as a row of the frame (it may vary only along
            the frame's last axis)."""
            tensor = self.constants[name]
            if tensor.data_type != onnx.TensorProto.FLOAT:
                raise _Unplannable
            value = numpy_helper.to_array(tensor)
            if value.ndim > self.rank:
                raise _Unplannable
            value = value.reshape((1,) * (MAX_RANK - value.ndim) + value.shape)
            full = (1, *self.items[out])
            try:
                if np.broadcast_shapes(value.shape, full) != full:
                    raise _Unplannable
            except ValueError:
                raise _Unplannable from None
            in_frame = value.transpose(self.order[out])
            if any(d != 1 for d in in_frame.shape[:3]):
                raise _Unplannable
            return const_row(in_frame.reshape(-1))

        def operand(name: str, out: str, stage: _StageBuilder) -> int:
            """The register of an operand of `out`'s op in `stage`."""
            if not self._runtime(name):
                return stage.constant(constant_row(name, out))
            origin = source(name)
            if origin in where:
                return where[origin][1]
            if origin in mean_of:
                if not stage.pooled:
                    raise _Unplannable
                register = stage.register()
                stage.emit(OP_LOAD, register, mean_of[origin])  # a pooled stage's views: the means
                where[origin] = (1, register)
                return register
            if origin not in self.inputs or self.types.get(origin) != onnx.TensorProto.FLOAT:
                raise _Unplannable
            if stage.pooled:
                raise _Unplannable
            register = stage.register()
            stage.emit(OP_LOAD, register, stage.view(self._view(name, out)))
            return register

        for node in self.nodes:
            op = node.op_type
            out = node.output[0]
            data = [name for name in node.input if self._runtime(name)]
            if op == "Transpose":
                if len(data) != 1:
                    raise _Unplannable
                perm_attr = attribute(node, "perm")
                assert perm_attr is not None  # checked by _layout
                alias[out] = (data[0], _pad_perm([int(p) for p in perm_attr.ints]))
                continue
            if op == "GlobalAveragePool":
                inner = source(node.input[0])
                q = self.order[node.input[0]]
                if (
                    self.rank != 4
                    or q != (0, 2, 3, 1)
                    or stage_of(inner) != 0
                    or inner not in where
                ):
                    raise _Unplannable
                if self.items[node.input[0]][1:] != (self.frame[0], self.frame[1]):
                    raise _Unplannable
                slot = stages[0].means
                stages[0].means += 1
                stages[0].emit(OP_MEAN, slot, where[inner][1])
                mean_of[out] = slot
                continue
            if op == "DequantizeLinear":
                origin = source(node.input[0])
                if origin not in self.inputs or len(node.input) < 3 or not node.input[2]:
                    raise _Unplannable
                if any(a.name != "axis" for a in node.attribute):
                    raise _Unplannable
                scale_t = self.constants.get(node.input[1])
                zero_t = self.constants.get(node.input[2])
                if scale_t is None or zero_t is None:
                    raise _Unplannable
                scale_v = numpy_helper.to_array(scale_t)
                zero_v = numpy_helper.to_array(zero_t)
                in_type = self.types.get(origin)
                if scale_v.dtype != np.float32 or zero_v.dtype not in (np.int8, np.uint8, np.int32):
                    raise _Unplannable
                if in_type != onnx.helper.np_dtype_to_tensor_dtype(zero_v.dtype):
                    raise _Unplannable
                if zero_v.dtype == np.int32 and np.any(zero_v != 0):
                    raise _Unplannable
                zero_row = self._axis_row(node, zero_v.astype(np.float32), out, const_row)
                scale_row = self._axis_row(node, scale_v, out, const_row)
                stage = stages[0]
                register = stage.register()
                view = stage.view(self._view(node.input[0], out))
                stage.emit(OP_DEQUANTIZE, register, view, p1=zero_row, p2=scale_row)
                where[out] = (0, register)
                continue
            if op == "QuantizeLinear":
                if out not in self.outputs or len(node.input) < 3 or not node.input[2]:
                    raise _Unplannable
                if any(a.name not in ("axis", "saturate") for a in node.attribute):
                    raise _Unplannable
                scale_t = self.constants.get(node.input[1])
                zero_t = self.constants.get(node.input[2])
                if scale_t is None or zero_t is None:
                    raise _Unplannable
                scale_v = numpy_helper.to_array(scale_t)
                zero_v = numpy_helper.to_array(zero_t)
                if scale_v.dtype != np.float32 or zero_v.dtype not in (np.int8, np.uint8):
                    raise _Unplannable
                level = stage_of(node.input[0])
                stage = stages[level or 0]
                register = operand(node.input[0], out, stage)
                info = np.iinfo(zero_v.dtype)
                if self._frame_item(out) != stage_frame[level or 0]:
                    raise _Unplannable  # an output broadcast along the rows it is computed in
                slot = stage.output(out, zero_v.dtype, self.raw_items[out], self.order[out])
                stage.emit(
                    OP_QUANTIZE,
                    slot,
                    register,
                    b=self._axis_row(node, zero_v.astype(np.float32), out, const_row),
                    p1=self._axis_row(node, scale_v, out, const_row),
                    p2=int(info.min),
                    p3=int(info.max),
                )
                quantized.add(out)
                continue
            if op in ("Relu", "Clip", "HardSigmoid"):
                if not self._runtime(node.input[0]):
                    raise _Unplannable
                if any(self._runtime(name) for name in node.input[1:]):
                    raise _Unplannable  # a Clip bound computed at run time
                level = stage_of(node.input[0]) or 0
                stage = stages[level]
                register = operand(node.input[0], out, stage)
                for kind, value, bounds in _activation_steps(node, self.constants):
                    result = stage.register()
                    if kind == OP_CLIP:
                        low, high = bounds
                        stage.emit(OP_CLIP, result, register, p1=const_row(low), p2=const_row(high))
                    elif kind == OP_RELU:
                        stage.emit(OP_RELU, result, register)
                    else:
                        stage.emit(kind, result, register, b=stage.constant(const_row(value)))
                    register = result
                where[out] = (level, register)
                continue
            if op not in _BINARY or len(node.input) != 2 or node.attribute:
                raise _Unplannable
            levels = {stage_of(name) for name in node.input if self._runtime(name)}
            known = {level for level in levels if level is not None}
            if len(known) > 1:
                raise _Unplannable  # a full-size value with a mean: two passes
            level = known.pop() if known else 0
            stage = stages[level]
            a = operand(node.input[0], out, stage)
            b = operand(node.input[1], out, stage)
            if all(not self._runtime(name) for name in node.input):
                raise _Unplannable
            register = stage.register()
            stage.emit(_BINARY[op], register, a, b=b)
            where[out] = (level, register)
        # float outputs are stored from their registers
        for name in self.outputs:
            if name in quantized:
                continue
            origin = source(name)
            if origin not in where or self.types.get(name) != onnx.TensorProto.FLOAT:
                raise _Unplannable
            level, register = where[origin]
            if self._frame_item(name) != stage_frame[level]:
                raise _Unplannable
            stages[level].output(name, np.dtype(np.float32), self.raw_items[name], self.order[name])
            stages[level].emit(OP_STORE, stages[level].outputs[-1][0], register)
        if any(
            n.output[0] not in self.outputs and n.op_type == "QuantizeLinear" for n in self.nodes
        ):
            raise _Unplannable
        built = [s.build() for s in stages if s.code]
        if stages[1].code:
            built[-1].means = stages[0].means
        if not built or any(
            len(s.views) > MAX_VIEWS or len(s.outputs) > MAX_OUTPUTS for s in built
        ):
            raise _Unplannable
        if any(s.registers > MAX_REGISTERS for s in built):
            raise _Unplannable
        reads = {v.input for s in built for v in s.views}
        if not reads <= set(self.inputs):
            raise _Unplannable
        try:
            return self._part(built, reads, consts, width)
        except NotInFrame:
            raise _Unplannable from None

    def _part(
        self, built: list[_Stage], reads: set[str], consts: list[np.ndarray], width: int
    ) -> ElementwisePart:
        return ElementwisePart(
            inputs=sorted(reads),
            input_dtypes={
                name: np.dtype(onnx.helper.tensor_dtype_to_np_dtype(self.types[name]))
                for name in reads
            },
            input_items={name: self.raw_items[name] for name in reads},
            input_orders={n: o for n, o in self.memory_orders.items() if n in reads},
            frame_item=self.frame,
            consts=np.stack(consts) if consts else np.zeros((1, width), np.float32),
            stages=built,
            outputs=list(self.outputs),
        )

    def _axis_row(self, node: onnx.NodeProto, value: np.ndarray, out: str, const_row) -> int:
        """A Q/DQ parameter (a scalar, or a vector along `axis`) as a row of the frame."""
        if value.size == 1:
            return const_row(value.reshape(()))
        axis_attr = attribute(node, "axis")
        axis = int(axis_attr.i) if axis_attr is not None else 1
        axis = axis + self.rank if axis < 0 else axis
        if value.ndim != 1 or not 0 < axis < self.rank:
            raise _Unplannable
        padded_axis = axis + (MAX_RANK - self.rank)
        if self.order[out][3] != padded_axis or value.shape[0] != self.frame[2]:
            raise _Unplannable
        return const_row(value)

    def _view(self, name: str, out: str) -> _View:
        """How the part input behind `name` (through its transposes) is read in the frame of
        `out`'s op: frame axis f is `out`'s padded axis order[out][f], the same axis of `name`
        (broadcasting aligns them), which is the input's axis t[...] through the transposes."""
        t: tuple[int, ...] = (0, 1, 2, 3)  # name's axis k is axis t[k] of the value reached
        origin = name
        while origin in self.alias:
            origin, perm = self.alias[origin]
            t = tuple(perm[axis] for axis in t)
        if origin not in self.inputs:
            raise _Unplannable
        axes = tuple(t[axis] for axis in self.order[out])
        dims = (1, *self.items[origin])
        frame = (1, *self.frame)
        if any(dims[axes[f]] not in (1, frame[f]) for f in range(1, MAX_RANK)):
            raise _Unplannable
        return _View(origin, self.items[origin], axes)


class _StageBuilder:
    """The code, registers, input views and outputs of one stage while the planner walks the
    part (the full-size rows, or the rows of the global means)."""

    def __init__(self, pooled: bool) -> None:
        self.pooled = pooled
        self.code: list[list[int]] = []
        self.registers = 0
        self.views: list[_View] = []
        self.outputs: list[tuple[int, _Output]] = []
        self.means = 0
        #: the constant rows held in registers (filled once before the tiles), by row
        self._constants: dict[int, int] = {}
        self.prologue: list[list[int]] = []

    def constant(self, row: int) -> int:
        """The register holding constant row `row` on every row of the tile."""
        if row not in self._constants:
            self._constants[row] = self.register()
            self.prologue.append([OP_CONST, self._constants[row], row, 0, 0, 0, 0])
        return self._constants[row]

    def register(self) -> int:
        self.registers += 1
        return self.registers - 1

    def view(self, view: _View) -> int:
        for index, known in enumerate(self.views):
            if known == view:
                return index
        self.views.append(view)
        return len(self.views) - 1

    def output(
        self, name: str, dtype: np.dtype, item: tuple[int, ...], order: tuple[int, ...]
    ) -> int:
        self.outputs.append((len(self.outputs), _Output(name, np.dtype(dtype), item, order)))
        return len(self.outputs) - 1

    def emit(
        self, op: int, dst: int, a: int, *, b: int = 0, p1: int = 0, p2: int = 0, p3: int = 0
    ) -> None:
        self.code.append([op, dst, a, b, p1, p2, p3])

    def build(self) -> _Stage:
        return _Stage(
            code=np.array(self.prologue + self.code, np.int64).reshape((-1, CODE_COLUMNS)),
            registers=self.registers,
            views=list(self.views),
            outputs=[out for _, out in self.outputs],
            means=self.means,
            pooled=self.pooled,
        )
