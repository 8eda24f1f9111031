"""Running a decoded `Program` on the hardware model: shape checks around `hwmodel`.

`PreparedProgram` validates a program and prepares its layers (weights in kernel layout,
requantization plans, clips, LUTs) once; its `run` then does only the arithmetic, so a runtime
that runs a program many times (the hybrid session, one per `AkidaOp`) prepares it when it loads.
`run_program` prepares and runs in one call, for callers that run a program once.
"""

from __future__ import annotations

import math

import numpy as np

from akidac.backends.akida import hwmodel
from akidac.backends.akida.program import Program
from akidac.errors import ProgramError


class PreparedProgram:
    """A program validated and prepared for the hardware model, run as often as needed.

    `run(x)` takes the program input batch first, NHWC, `(N, H, W, C)` with `(H, W, C)` exactly
    the program's input dims and the program's input dtype, and returns the output layer's
    result `(N, H', W', C')`. Every layer takes the whole batch at once.
    """

    def __init__(self, program: Program) -> None:
        self.program = program
        self.model = hwmodel.HardwareModel(program.layers)
        self.input_dims = tuple(int(d) for d in program.input.dims)
        self.input_dtype = np.dtype(program.input.dtype)
        self.output_dims = tuple(int(d) for d in program.output.dims)
        if program.output_layer not in self.model.index:
            raise ProgramError(f"the program's output layer {program.output_layer!r} is no layer")
        self.output_index = self.model.index[program.output_layer]
        check_program(program)

    def run(self, x: np.ndarray) -> np.ndarray:
        """Execute the program on `x` (N, H, W, C) in the program's input dtype."""
        if x.ndim != 4 or x.shape[1:] != self.input_dims:
            raise ProgramError(
                f"program input must be (N, {', '.join(map(str, self.input_dims))}), "
                f"got {tuple(x.shape)}"
            )
        if x.dtype != self.input_dtype:
            raise ProgramError(f"program input must be {self.input_dtype}, got {x.dtype}")
        return self.model.run_to(x, self.output_index)


def _layer_dtype(program: Program, name: str, seen: frozenset[str] = frozenset()) -> np.dtype:
    """The dtype a layer yields, from its record (what its executor will produce)."""
    record = next(r for r in program.layers if r.name == name)
    kind = record.layer_type
    if kind == "InputData":
        return np.dtype(program.input.dtype)
    if kind == "Concatenate":
        inbound = record.inbounds[0]
        if inbound in seen:
            raise ProgramError(f"layer {name!r} reads itself")
        return _layer_dtype(program, inbound, seen | {name})
    bits = int(record.params["output_bits"])
    return hwmodel.output_dtype(bits, always_signed=kind == "Add")


def check_program(program: Program) -> None:
    """What decoding cannot see and running would find too late: the declared input and output
    against the layers, and the memory the layers' outputs take (`ProgramError`, exit 6).

    Every layer's output (int32 at most: 4 bytes a value) and all of them together per sample
    must stay within akidac's tensor budget (`akidac.limits.max_tensor_bytes`), checked before
    anything is allocated: a few bytes of program may declare gigabytes of activations."""
    from akidac.limits import max_tensor_bytes

    budget = max_tensor_bytes()
    total = 0
    for record in program.layers:
        # exact integers: np.prod in int64 wraps on hostile dims (3 × u32) to a small size
        size = 4 * math.prod(int(d) for d in record.output_dims)
        if size > budget:
            raise ProgramError(
                f"layer {record.name!r} declares an output of {size:,} bytes, beyond the "
                f"{budget:,}-byte budget (AKIDAC_MAX_TENSOR_BYTES)"
            )
        total += size
    if total > budget:
        raise ProgramError(
            f"the program's layer outputs take {total:,} bytes per sample, beyond the "
            f"{budget:,}-byte budget (AKIDAC_MAX_TENSOR_BYTES)"
        )
    first = program.layers[0]
    if first.layer_type == "InputData" and tuple(first.output_dims) != tuple(program.input.dims):
        raise ProgramError(
            f"the program declares an input of {tuple(program.input.dims)}, its InputData layer "
            f"{first.name!r} gives {tuple(first.output_dims)}"
        )
    last = next(r for r in program.layers if r.name == program.output_layer)
    if tuple(last.output_dims) != tuple(program.output.dims):
        raise ProgramError(
            f"the program declares an output of {tuple(program.output.dims)}, its output layer "
            f"{last.name!r} gives {tuple(last.output_dims)}"
        )
    produced = _layer_dtype(program, last.name)
    if produced != np.dtype(program.output.dtype):
        raise ProgramError(
            f"the program declares a {program.output.dtype} output, its output layer "
            f"{last.name!r} yields {produced.name}"
        )


def run_program(program: Program, x: np.ndarray) -> np.ndarray:
    """Execute `program` on `x` (N, H, W, C) in the program's input dtype (prepares it first:
    to run a program more than once, keep a `PreparedProgram`)."""
    return PreparedProgram(program).run(x)
