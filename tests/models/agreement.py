"""The integer back ends agree: the hardware model equals the reference interpreter."""

from __future__ import annotations

import os

import numpy as np
import onnx

from akidac.backends.akida import hwmodel
from akidac.ir import reference
from akidac.runtime.session import HybridSession


def assert_hardware_model_equals_reference(
    hybrid: str | os.PathLike[str] | onnx.ModelProto, feeds: dict[str, np.ndarray]
) -> int:
    """Run the hybrid model on `feeds`; on the input each Akida program receives, the numba
    hardware model and the NumPy reference interpreter must give every layer the same output
    (dtype and values). Returns how many programs were checked."""
    session = HybridSession(hybrid)
    env = session.run_all(feeds)
    steps = session.akida_steps()
    for _, program, input_name in steps:
        x = env[input_name].reshape(1, *program.input.dims)
        hw = hwmodel.run_layers(program.layers, x)
        ref = reference.run_layers(program.layers, x)
        assert set(hw) == set(ref)
        for name in ref:
            assert hw[name].dtype == ref[name].dtype
            np.testing.assert_array_equal(hw[name], ref[name])
    return len(steps)
