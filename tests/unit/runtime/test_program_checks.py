"""Programs whose parts disagree are refused at load, before anything runs or is allocated
(issue "Hostile and edge inputs", items 5 and 6)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from models import realistic

from akidac.api import compile_model
from akidac.backends.akida.executor import PreparedProgram
from akidac.backends.akida.program import Program, ProgramTensor, decode_program, encode_program
from akidac.errors import ProgramError
from akidac.passes import CompileOptions


def _program(index: int = 0) -> Program:
    """Program 0 of the conv stack starts with an InputConv2D, program 1 (the head) with an
    InputData layer."""
    options = CompileOptions(num_samples=4, fidelity_samples=0)
    result = compile_model(realistic.conv_stack(), options=options)
    return decode_program(encode_program(result.programs[index]))


def test_a_compiled_program_passes_the_load_checks() -> None:
    PreparedProgram(_program())


def test_an_output_whose_size_differs_from_the_output_layer_is_refused_at_load() -> None:
    program = _program()
    h, w, c = program.output.dims
    program.output = ProgramTensor((h, w, c + 1), program.output.dtype)
    with pytest.raises(ProgramError, match="declares an output of") as caught:
        PreparedProgram(program)
    assert caught.value.exit_code == 6


def test_an_output_dtype_the_layer_does_not_yield_is_refused_at_load() -> None:
    program = _program()
    wrong = "int32" if program.output.dtype != "int32" else "int8"
    program.output = ProgramTensor(program.output.dims, wrong)
    with pytest.raises(ProgramError, match=f"declares a {wrong} output"):
        PreparedProgram(program)


def test_an_input_the_input_layer_does_not_give_is_refused_at_load() -> None:
    program = _program(-1)
    assert program.layers[0].layer_type == "InputData"
    h, w, c = program.input.dims
    program.input = ProgramTensor((h + 1, w, c), program.input.dtype)
    with pytest.raises(ProgramError, match="declares an input of"):
        PreparedProgram(program)


def test_declared_activations_beyond_the_budget_are_refused_before_any_allocation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The last layer declares an output 4096 times wider than the one it computes (what a
    merge of many identical inbounds would declare): a few bytes of program changed, far
    beyond a 1 MB budget, refused before anything is allocated."""
    program = _program()
    layer = program.layers[-1]
    program.layers[-1] = dataclasses.replace(
        layer, output_dims=(*layer.output_dims[:2], layer.output_dims[2] * 4096)
    )
    monkeypatch.setenv("AKIDAC_MAX_TENSOR_BYTES", "1M")
    with pytest.raises(ProgramError, match="budget"):
        PreparedProgram(program)
    assert np.prod(program.layers[-1].output_dims) * 4 > 1 << 20


def test_declared_dims_whose_product_overflows_int64_are_refused_by_the_budget() -> None:
    """(2^31, 2^31, 2^2) × 4 bytes is 2^66: an int64 product wraps to 0 and passed the budget."""
    program = _program()
    layer = program.layers[-1]
    program.layers[-1] = dataclasses.replace(layer, output_dims=(1 << 31, 1 << 31, 4))
    with pytest.raises(ProgramError, match="budget"):
        PreparedProgram(program)
