"""Running a decoded `Program` on the hardware model: shape checks around `hwmodel`.

`PreparedProgram` validates a program and prepares its layers (weights in kernel layout,
requantization plans, clips, LUTs) once; its `run` then does only the arithmetic, so a runtime
that runs a program many times (the hybrid session, one per `AkidaOp`) prepares it when it loads.
`run_program` prepares and runs in one call, for callers that run a program once.
"""

from __future__ import annotations

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


def run_program(program: Program, x: np.ndarray) -> np.ndarray:
    """Execute `program` on `x` (N, H, W, C) in the program's input dtype (prepares it first:
    to run a program more than once, keep a `PreparedProgram`)."""
    return PreparedProgram(program).run(x)
