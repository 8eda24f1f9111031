"""Corrupt or inconsistent programs make the hardware model raise ProgramError, never crash.

Each test breaks one thing in an otherwise valid program taken from the vendor vectors (a
missing or misshapen variable, a wrong dtype, an out-of-range shift, a bad enum name, an unknown
inbound, an input that does not fit) and checks the one-line error names the layer and the fault.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import pytest

from akidac.backends.akida import hwmodel
from akidac.backends.akida.hwmodel import HardwareModel, validate_record, validate_records
from akidac.errors import ProgramError
from akidac.target.layer_record import LayerRecord
from tests.unit.integer.vector_cases import load_case


def program(case: str = "conv2d_k3s1_relu_maxval") -> tuple[list[LayerRecord], np.ndarray]:
    """A fresh copy of a valid vector program and its input."""
    loaded = load_case(case)
    return copy.deepcopy(loaded.records), loaded.input


def corrupted(
    change: Callable[[LayerRecord], object], case: str = "conv2d_k3s1_relu_maxval"
) -> tuple[list[LayerRecord], np.ndarray]:
    """The program with `change` applied to its last layer."""
    records, x = program(case)
    change(records[-1])
    return records, x


def last_layer_alone(records: list[LayerRecord]) -> list[LayerRecord]:
    """The last layer as a one-layer program reading the program input."""
    record = records[-1]
    record.inbounds = []
    return [record]


def test_the_uncorrupted_programs_are_valid() -> None:
    for case in ("conv2d_k3s1_relu_maxval", "add", "dense1d_relu", "inputconv2d_k3s2"):
        records, _ = program(case)
        validate_records(records)


CORRUPTIONS: dict[str, tuple[Callable[[LayerRecord], object], str]] = {
    "missing variable": (lambda r: r.variables.pop("bias"), "missing variable 'bias'"),
    "misshapen variable": (
        lambda r: r.variables.__setitem__("output_scales", np.ones(3, np.uint8)),
        "'output_scales' has shape",
    ),
    "wrong dtype": (
        lambda r: r.variables.__setitem__("weights", r.variables["weights"].astype(np.int16)),
        "dtype int16",
    ),
    "output_shift -32": (
        lambda r: r.variables["output_shift"].__setitem__(0, -32),
        "shift outside",
    ),
    "input_shift above 31": (
        lambda r: r.variables["input_shift"].__setitem__(0, 40),
        "shift above 31",
    ),
    "bad activation name": (
        lambda r: r.params.__setitem__("activation", "Sigmoid"),
        "'activation' = 'Sigmoid'",
    ),
    "bad padding name": (lambda r: r.params.__setitem__("padding", "Full"), "'padding' = 'Full'"),
    "missing parameter": (lambda r: r.params.pop("buffer_bits"), "missing parameter"),
    "kernel size not supported": (
        lambda r: r.params.__setitem__("kernel_size", 2),
        "kernel_size 2",
    ),
    "stride out of range": (lambda r: r.params.__setitem__("kernel_stride", 3), "kernel_stride"),
    "bits out of range": (lambda r: r.params.__setitem__("output_bits", 40), "'output_bits'"),
    "weights beyond weights_bits": (
        lambda r: r.params.__setitem__("weights_bits", 4),
        "weights exceed weights_bits",
    ),
    "parameter of the wrong type": (
        lambda r: r.params.__setitem__("kernel_stride", "1"),
        "must be an integer",
    ),
    "unknown layer type": (lambda r: setattr(r, "layer_type", "Conv3D"), "unknown layer type"),
    "unknown inbound": (lambda r: setattr(r, "inbounds", ["nowhere"]), "inbound 'nowhere'"),
    "max pooling stride above its size": (
        lambda r: r.params.update(pool_type="Max", pool_size=2, pool_stride=3),
        "'pool_stride'",
    ),
    "filters disagreeing with the weights": (
        lambda r: r.params.__setitem__("filters", 99),
        "'filters' = 99",
    ),
}


@pytest.mark.parametrize("fault", sorted(CORRUPTIONS))
def test_a_corrupt_record_raises_a_program_error_naming_the_layer(fault: str) -> None:
    change, message = CORRUPTIONS[fault]
    records, x = corrupted(change)
    with pytest.raises(ProgramError, match=message) as raised:
        hwmodel.run_layers(records, x)
    assert "'conv'" in str(raised.value)
    assert "\n" not in str(raised.value)


def test_a_lut_layer_without_its_table_is_rejected() -> None:
    records, _ = corrupted(lambda r: r.variables.pop("lut_values"), "conv2d_lut_gelu")
    with pytest.raises(ProgramError, match="lut_values"):
        HardwareModel(records)


def test_a_lut_table_of_the_wrong_length_is_rejected() -> None:
    def shorten(record: LayerRecord) -> None:
        record.variables["lut_values"] = record.variables["lut_values"][:1024]

    records, _ = corrupted(shorten, "conv2d_lut_gelu")
    with pytest.raises(ProgramError, match="lut_values"):
        HardwareModel(records)


def test_an_add_with_one_inbound_is_rejected() -> None:
    records, _ = corrupted(lambda r: setattr(r, "inbounds", r.inbounds[:1]), "add")
    with pytest.raises(ProgramError, match="1 inbounds"):
        HardwareModel(records)


def test_add_shift_vectors_of_different_lengths_are_rejected() -> None:
    records, _ = corrupted(
        lambda r: r.variables.__setitem__("a_shift", np.zeros(3, np.uint8)), "add"
    )
    with pytest.raises(ProgramError, match="equal-length"):
        HardwareModel(records)


def test_duplicate_layer_names_are_rejected() -> None:
    records, _ = program("add")
    records[2].name = "branch_a"
    with pytest.raises(ProgramError, match="duplicate"):
        HardwareModel(records)


def test_an_empty_program_is_rejected() -> None:
    with pytest.raises(ProgramError, match="no layers"):
        HardwareModel([])


def test_an_input_with_the_wrong_channel_count_is_rejected_at_run_time() -> None:
    records, x = program()
    model = HardwareModel(last_layer_alone(records))
    with pytest.raises(ProgramError, match="channels"):
        model.run(x[..., :3])


def test_an_input_that_contradicts_output_dims_is_rejected() -> None:
    records, x = program()
    with pytest.raises(ProgramError, match="output_dims"):
        HardwareModel(records).run(x[:, :5])


def test_a_float_input_is_rejected() -> None:
    records, x = program()
    with pytest.raises(ProgramError, match="integer array"):
        HardwareModel(records).run(x.astype(np.float32))


def test_an_input_beyond_32_bits_is_rejected() -> None:
    records, x = program()
    huge = x.astype(np.int64) << 40
    with pytest.raises(ProgramError, match="32 bits"):
        HardwareModel(last_layer_alone(records)).run(huge)


def test_add_inputs_of_different_shapes_are_rejected() -> None:
    records, _ = program("add")
    a = np.zeros((1, 6, 6, 8), np.int8)
    with pytest.raises(ProgramError, match="different shapes"):
        hwmodel.run_layer(records[-1], [a, a[:, :5]])


def test_a_kernel_larger_than_a_valid_input_is_rejected() -> None:
    records, x = program("conv2d_valid_maxpool2")
    with pytest.raises(ProgramError, match="does not fit"):
        HardwareModel(last_layer_alone(records)).run(x[:, :2, :2])


def test_validate_record_accepts_every_vector_layer() -> None:
    for case in ("add", "concatenate", "dense1d_relu", "conv2d_lut_gap", "dwconv_transpose_k4s2"):
        records, _ = program(case)
        for record in records:
            validate_record(record)


def test_a_record_that_is_not_a_layer_record_is_rejected() -> None:
    with pytest.raises(ProgramError, match="not a layer record"):
        validate_record({"name": "conv"})  # type: ignore[arg-type]


def input_layer(dims: tuple[int, ...]) -> LayerRecord:
    return LayerRecord(
        name="in", layer_type="InputData", params={}, variables={}, inbounds=[], output_dims=dims
    )


def concatenate(inbounds: list[str], dims: tuple[int, ...]) -> LayerRecord:
    return LayerRecord(
        name="cat",
        layer_type="Concatenate",
        params={},
        variables={},
        inbounds=inbounds,
        output_dims=dims,
    )


def test_a_concatenate_with_more_inbounds_than_the_target_merges_is_rejected_at_load() -> None:
    # issue 10 item 5: 64 identical inbounds (and chains of them) forced gigabytes at run time
    records = [input_layer((2, 2, 4)), concatenate(["in"] * 64, (2, 2, 256))]
    with pytest.raises(ProgramError, match="64 inbounds, expected 2 to 2"):
        HardwareModel(records)


def test_a_merge_whose_output_dims_do_not_follow_from_its_inbounds_is_rejected_at_load() -> None:
    records = [input_layer((2, 2, 4)), concatenate(["in", "in"], (2, 2, 9))]
    with pytest.raises(ProgramError, match="do not give output_dims"):
        HardwareModel(records)
    assert HardwareModel([input_layer((2, 2, 4)), concatenate(["in", "in"], (2, 2, 8))])
