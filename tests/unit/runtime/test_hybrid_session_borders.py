"""Every AkidaOp border has exactly the program's NHWC dims (or (C,) for a 1×1×C tensor), at
load and at run time: the same number of elements in another layout is a ProgramError (exit 6)
naming the node and both shapes, never a silent reshape."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from akidac.errors import ProgramError
from akidac.runtime.session import HybridSession, _AkidaStep, _run_akida


def _set_dims(model: onnx.ModelProto, name: str, dims: list[int]) -> None:
    value = next(v for v in model.graph.value_info if v.name == name)
    shape = value.type.tensor_type.shape
    del shape.dim[:]
    for size in dims:
        shape.dim.add().dim_value = size


def test_an_nchw_input_border_with_the_right_size_is_refused_at_load(
    hybrid: onnx.ModelProto,
) -> None:
    _set_dims(hybrid, "input_nhwc_q", [1, 3, 32, 32])
    with pytest.raises(ProgramError) as caught:
        HybridSession(hybrid)
    error = caught.value
    assert error.exit_code == 6 and error.node == "akida_region_0"
    assert "input 'input_nhwc_q' has shape [1, 3, 32, 32]" in error.message
    assert "the program takes [32, 32, 3] (NHWC) per batch item" in error.message


def test_a_flattened_output_border_of_a_spatial_tensor_is_refused_at_load(
    hybrid: onnx.ModelProto,
) -> None:
    _set_dims(hybrid, "fc2_akida", [1, 1, 10, 1])
    with pytest.raises(ProgramError, match=r"output 'fc2_akida' has shape \[1, 1, 10, 1\]"):
        HybridSession(hybrid)


def test_a_dense_output_may_be_written_flat_or_nhwc(hybrid: onnx.ModelProto) -> None:
    x = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3)).astype(np.uint8)
    session = HybridSession(hybrid)
    flat = _run_akida(next(s for s in session.steps if isinstance(s, _AkidaStep)), x)
    assert flat.shape == (2, 10)
    _set_dims(hybrid, "fc2_akida", [1, 1, 1, 10])
    session = HybridSession(hybrid)
    step = next(s for s in session.steps if isinstance(s, _AkidaStep))
    np.testing.assert_array_equal(_run_akida(step, x), flat.reshape(2, 1, 1, 10))


def test_a_wrong_layout_at_run_time_is_a_program_error_naming_both_shapes(
    hybrid: onnx.ModelProto,
) -> None:
    session = HybridSession(hybrid)
    step = next(s for s in session.steps if isinstance(s, _AkidaStep))
    with pytest.raises(ProgramError) as caught:
        _run_akida(step, np.zeros((1, 3, 32, 32), np.uint8))
    assert caught.value.node == "akida_region_0"
    assert caught.value.message == (
        "AkidaOp 'akida_region_0' input 'input_nhwc_q' is uint8 [1, 3, 32, 32], the program "
        "takes uint8 [32, 32, 3] per batch item"
    )
    with pytest.raises(ProgramError, match="is int8"):
        _run_akida(step, np.zeros((1, 32, 32, 3), np.int8))
