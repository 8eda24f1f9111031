"""`HybridSession.run` checks its feeds and requested outputs like onnxruntime, as usage errors."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument

from akidac.errors import ProgramError, UsageError
from akidac.runtime.session import HybridSession, _CpuStep


def good_feed() -> dict[str, np.ndarray]:
    return {"input": np.zeros((1, 3, 32, 32), np.float32)}


def cpu_model(batch: int | str = "N") -> onnx.ModelProto:
    """y = x + c with c of shape [3]: a runtime broadcast error when x has another length."""
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "c"], ["y"], name="add")],
        "add",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch])],
        [numpy_helper.from_array(np.ones(3, np.float32), "c")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    return model


def test_a_correct_feed_runs(hybrid: onnx.ModelProto) -> None:
    (y,) = HybridSession(hybrid).run(None, good_feed())
    assert y.shape == (1, 10)


def test_an_unknown_feed_name_is_a_usage_error_naming_it(hybrid: onnx.ModelProto) -> None:
    with pytest.raises(UsageError, match="unknown input 'extra': the model's inputs are input"):
        HybridSession(hybrid).run(None, {**good_feed(), "extra": np.zeros(1)})


def test_a_missing_feed_is_a_usage_error(hybrid: onnx.ModelProto) -> None:
    with pytest.raises(UsageError, match="missing input 'input'"):
        HybridSession(hybrid).run(None, {})


def test_a_float64_feed_for_a_float32_input_is_a_usage_error_not_a_silent_cast(
    hybrid: onnx.ModelProto,
) -> None:
    with pytest.raises(UsageError) as caught:
        HybridSession(hybrid).run(None, {"input": np.zeros((1, 3, 32, 32))})
    assert caught.value.message == (
        "input 'input' must be float32 [1, 3, 32, 32], got float64 [1, 3, 32, 32]"
    )
    assert caught.value.exit_code == 2


def test_a_feed_of_the_wrong_rank_is_a_usage_error(hybrid: onnx.ModelProto) -> None:
    expected = r"must be float32 \[1, 3, 32, 32\], got float32 \[3, 32, 32\]"
    with pytest.raises(UsageError, match=expected):
        HybridSession(hybrid).run(None, {"input": np.zeros((3, 32, 32), np.float32)})


def test_a_feed_with_a_wrong_static_dim_is_a_usage_error(hybrid: onnx.ModelProto) -> None:
    with pytest.raises(UsageError, match=r"got float32 \[1, 3, 32, 31\]"):
        HybridSession(hybrid).run(None, {"input": np.zeros((1, 3, 32, 31), np.float32)})
    with pytest.raises(UsageError, match=r"got float32 \[2, 3, 32, 32\]"):
        HybridSession(hybrid).run_all({"input": np.zeros((2, 3, 32, 32), np.float32)})


def test_a_symbolic_dim_accepts_any_size() -> None:
    session = HybridSession(cpu_model())
    (y,) = session.run(None, {"x": np.zeros(3, np.float32)})
    np.testing.assert_array_equal(y, np.ones(3, np.float32))
    with pytest.raises(UsageError, match=r"input 'x' must be float32 \[N\], got float32 \[1, 3\]"):
        session.run(None, {"x": np.zeros((1, 3), np.float32)})


def test_an_unknown_output_name_is_a_usage_error_listing_the_outputs(
    hybrid: onnx.ModelProto,
) -> None:
    expected = "unknown output 'logits': the model's outputs are softmax"
    with pytest.raises(UsageError, match=expected):
        HybridSession(hybrid).run(["logits"], good_feed())


def test_an_onnxruntime_failure_during_a_cpu_step_is_a_one_line_program_error() -> None:
    session = HybridSession(cpu_model())
    with pytest.raises(ProgramError) as caught:
        session.run(None, {"x": np.zeros(4, np.float32)})
    assert "failed in onnxruntime" in caught.value.message
    assert "'add'" in caught.value.message
    assert "\n" not in str(caught.value)
    assert caught.value.exit_code == 6


def test_an_onnxruntime_invalid_argument_during_a_cpu_step_is_a_usage_error(
    hybrid: onnx.ModelProto,
) -> None:
    session = HybridSession(hybrid)

    class Rejecting:
        def run(self, *args: object) -> list[np.ndarray]:
            raise InvalidArgument("[ONNXRuntimeError] : 2 : INVALID_ARGUMENT : bad\ninput")

    # the first CPU part (Transpose → QuantizeLinear) runs fused: the last one, with Softmax
    step = next(s for s in session.run_steps if isinstance(s, _CpuStep))
    step.session = Rejecting()  # type: ignore[assignment]
    with pytest.raises(UsageError) as caught:
        session.run(None, good_feed())
    assert "INVALID_ARGUMENT : bad input" in caught.value.message
    assert "\n" not in str(caught.value)
