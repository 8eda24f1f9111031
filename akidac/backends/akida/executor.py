"""Running a decoded `Program` on the hardware model: shape checks around `hwmodel`.

The runtime calls `run_program` for each `AkidaOp`; it checks the input against the program's
declared input tensor and returns the output layer's result, batch first, NHWC.
"""

from __future__ import annotations

import numpy as np

from akidac.backends.akida import hwmodel
from akidac.backends.akida.program import Program
from akidac.errors import ProgramError


def run_program(program: Program, x: np.ndarray) -> np.ndarray:
    """Execute `program` on `x` (N, H, W, C) in the program's input dtype."""
    expected = tuple(program.input.dims)
    if x.ndim != 4 or tuple(x.shape[1:]) != expected:
        raise ProgramError(
            f"program input must be (N, {', '.join(map(str, expected))}), got {tuple(x.shape)}"
        )
    if x.dtype != np.dtype(program.input.dtype):
        raise ProgramError(f"program input must be {program.input.dtype}, got {x.dtype}")
    outputs = hwmodel.run_layers(program.layers, x)
    return outputs[program.output_layer]
