"""The vendor engine's 39 integer test vectors, reproduced bit for bit by both implementations.

Every layer's output and the final output of each case must equal the engine's, dtype and
shape included, in the NumPy reference interpreter and in the numba hardware model.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from akidac.backends.akida import hwmodel
from akidac.ir import reference
from akidac.target.layer_record import LayerRecord
from tests.unit.integer.vector_cases import VectorCase, case_names, load_case

Runner = Callable[[list[LayerRecord], np.ndarray], dict[str, np.ndarray]]
RUNNERS: dict[str, Runner] = {
    "reference": reference.run_layers,
    "hwmodel": hwmodel.run_layers,
}
CASES = case_names()


def assert_bit_exact(actual: np.ndarray, expected: np.ndarray, what: str) -> None:
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    mismatches = int(np.count_nonzero(actual != expected))
    assert mismatches == 0, f"{what}: {mismatches} values differ from the engine"


def test_the_vector_folder_holds_all_39_cases() -> None:
    assert len(CASES) == 39


@pytest.mark.parametrize("implementation", sorted(RUNNERS))
@pytest.mark.parametrize("case_name", CASES)
def test_every_layer_output_equals_the_engine_bit_for_bit(
    case_name: str, implementation: str
) -> None:
    case: VectorCase = load_case(case_name)
    outputs = RUNNERS[implementation](case.records, case.input)
    for layer, expected in case.layer_outputs.items():
        assert_bit_exact(outputs[layer], expected, f"{case_name}/{layer}")
    assert_bit_exact(outputs[case.records[-1].name], case.output, f"{case_name}/output")
