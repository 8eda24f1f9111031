"""A hybrid session prepares every program once, when it loads: running prepares nothing.

Counted, not timed: decoding a program, building a hardware model (validation and executors),
preparing a layer's requantization (`_Epilogue.from_record`, which plans the int32 path).
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from akidac.backends.akida import hwmodel
from akidac.runtime import session as session_module
from akidac.runtime.session import HybridSession


@pytest.fixture
def counters(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    counts = {"decode": 0, "epilogue": 0, "plan": 0}

    def counting(key: str, function):  # type: ignore[no-untyped-def]
        def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
            counts[key] += 1
            return function(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(
        session_module, "decode_program", counting("decode", session_module.decode_program)
    )
    monkeypatch.setattr(
        hwmodel,
        "plan_int32_requantization",
        counting("plan", hwmodel.plan_int32_requantization),
    )
    from_record = hwmodel._Epilogue.from_record.__func__  # type: ignore[attr-defined]
    monkeypatch.setattr(
        hwmodel._Epilogue,
        "from_record",
        classmethod(counting("epilogue", from_record)),
    )
    return counts


def test_a_second_run_prepares_no_program(hybrid: onnx.ModelProto, counters) -> None:
    built = hwmodel.HardwareModel.constructions
    session = HybridSession(hybrid)
    assert counters["decode"] == 1
    assert hwmodel.HardwareModel.constructions == built + 1
    assert counters["epilogue"] > 0 and counters["plan"] > 0
    loaded = dict(counters)
    feed = {"input": np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)}
    first = session.run(None, feed)
    second = session.run(None, feed)
    assert counters == loaded
    assert hwmodel.HardwareModel.constructions == built + 1
    np.testing.assert_array_equal(first[0], second[0])


def test_the_prepared_program_equals_run_program(hybrid: onnx.ModelProto) -> None:
    from akidac.backends.akida.executor import PreparedProgram, run_program

    session = HybridSession(hybrid)
    ((_, program, _),) = session.akida_steps()
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (3, *program.input.dims)).astype(program.input.dtype)
    prepared = PreparedProgram(program)
    np.testing.assert_array_equal(prepared.run(x), run_program(program, x))
    np.testing.assert_array_equal(prepared.run(x), run_program(program, x))
