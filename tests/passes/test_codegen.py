"""Codegen: Akida's kernel layouts and flips, and valid records with the right inbounds per kind."""

from __future__ import annotations

import numpy as np
import pytest
from test_quantize import KINDS, compile_kind

from akidac.backends.akida import hwmodel
from akidac.backends.akida.codegen import akida_weights
from akidac.backends.akida.program import decode_program, encode_program
from akidac.ir.graph import Graph
from akidac.ir.types import TensorType


def _weights_of(
    kind: str, weight: np.ndarray, x_shape: tuple[int, ...] = (1, 4, 4, 2)
) -> np.ndarray:
    graph = Graph()
    x = graph.add_input("x", TensorType("i8", x_shape, "NHWC" if len(x_shape) == 4 else None))
    w = graph.add_constant("w", weight.astype(np.int8))
    op = graph.make_op(kind, [x, w], [TensorType("i8", (1, 1, 1, 1))], result_names=["y"])
    return akida_weights(op)


def test_conv2d_kernels_become_khkwcf_and_are_flipped_for_the_chips_true_convolution() -> None:
    w = np.arange(3 * 2 * 3 * 3).reshape(3, 2, 3, 3) % 100  # (F, Cin, KH, KW)
    kernel = _weights_of("akida.conv2d", w)
    assert kernel.shape == (3, 3, 2, 3)
    assert kernel[0, 0, 1, 2] == w[2, 1, 2, 2] and kernel[2, 1, 0, 1] == w[1, 0, 0, 1]


def test_the_input_conv_is_a_cross_correlation_and_is_not_flipped() -> None:
    w = np.arange(4 * 3 * 3 * 3).reshape(4, 3, 3, 3) % 100
    kernel = _weights_of("akida.input_conv2d", w, (1, 8, 8, 3))
    np.testing.assert_array_equal(kernel, w.transpose(2, 3, 1, 0))


def test_depthwise_kernels_are_kkc1_and_flipped() -> None:
    w = np.arange(2 * 9).reshape(2, 1, 3, 3)  # (C, 1, KH, KW)
    kernel = _weights_of("akida.depthwise_conv2d", w)
    assert kernel.shape == (3, 3, 2, 1)
    assert kernel[0, 0, 1, 0] == w[1, 0, 2, 2] and kernel[2, 0, 0, 0] == w[0, 0, 0, 2]


def test_transposed_kernels_come_from_convtranspose_layout_and_are_not_flipped() -> None:
    w = np.arange(2 * 3 * 16).reshape(2, 3, 4, 4) % 100  # ConvTranspose (Cin, F, KH, KW)
    np.testing.assert_array_equal(_weights_of("akida.conv2d_transpose", w), w.transpose(2, 3, 0, 1))
    dw = np.arange(2 * 9).reshape(2, 1, 3, 3)
    np.testing.assert_array_equal(
        _weights_of("akida.depthwise_conv2d_transpose", dw), dw.transpose(2, 3, 0, 1)
    )


def test_dense_rows_are_permuted_from_onnx_chw_to_akida_hwc_order() -> None:
    c, h, w, units = 2, 3, 2, 5
    weight = np.arange(c * h * w * units).reshape(c * h * w, units) % 120
    rows = _weights_of("akida.dense", weight, (1, h, w, c))
    for hi in range(h):
        for wi in range(w):
            for ci in range(c):
                np.testing.assert_array_equal(
                    rows[(hi * w + wi) * c + ci], weight[(ci * h + hi) * w + wi]
                )


@pytest.fixture(scope="module")
def programs() -> dict[str, object]:
    return {
        kind: compile_kind(kind)[0].programs[0]
        for kind in ("add", "concat", "input_conv", "lut_gelu", "gap", "depthwise_transposed")
    }


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_gives_records_the_hardware_model_accepts_and_that_round_trip(kind: str) -> None:
    (program,) = compile_kind(kind)[0].programs
    hwmodel.validate_records(program.layers)
    assert decode_program(encode_program(program)) == program


def test_an_add_names_its_two_internal_branches_as_inbounds_in_order(programs) -> None:  # type: ignore[no-untyped-def]
    program = programs["add"]
    names = [r.name for r in program.layers]
    (add,) = [r for r in program.layers if r.layer_type == "Add"]
    assert add.inbounds == ["conv2d2", "conv2d3"]
    assert names.index("conv2d2") < names.index(add.name)
    assert add.params["buffer_bits"] == 32
    assert {k: v.dtype.name for k, v in add.variables.items()} == {
        "a_shift": "uint8", "b_shift": "uint8", "output_shift": "int8",
    }  # fmt: skip
    consumer = program.layers[-1]
    assert consumer.inbounds == [add.name]


def test_a_concatenate_keeps_its_first_inbounds_channels_first(programs) -> None:  # type: ignore[no-untyped-def]
    (concat,) = [r for r in programs["concat"].layers if r.layer_type == "Concatenate"]
    assert concat.inbounds == ["conv2d2", "conv2d3"]
    assert concat.output_dims == (12, 12, 16)


def test_an_input_conv_program_reads_the_uint8_image_without_an_input_data_layer(programs) -> None:  # type: ignore[no-untyped-def]
    program = programs["input_conv"]
    first = program.layers[0]
    assert first.layer_type == "InputConv2D" and first.inbounds == []
    assert first.params["buffer_bits"] == 32 and "input_shift" not in first.variables
    assert first.variables["padding_value"].dtype == np.uint8
    assert program.passes == [[r.name for r in program.layers]]


def test_a_lut_layer_carries_its_table_and_index_rescale(programs) -> None:  # type: ignore[no-untyped-def]
    (lut,) = [r for r in programs["lut_gelu"].layers if r.params.get("activation") == "LUT"]
    assert (
        lut.variables["lut_values"].shape == (2048,)
        and lut.variables["lut_values"].dtype == np.int32
    )
    assert lut.variables["activation_scales"].dtype == np.uint8
    assert lut.variables["activation_shift"].dtype == np.int8
    assert "max_value" not in lut.variables


def test_gap_and_transposed_layers_carry_their_pooling_and_geometry(programs) -> None:  # type: ignore[no-untyped-def]
    (gap,) = [r for r in programs["gap"].layers if r.params.get("pool_type") == "Average"]
    assert gap.output_dims == (1, 1, 16)
    (up,) = [
        r
        for r in programs["depthwise_transposed"].layers
        if r.layer_type == "DepthwiseConv2DTranspose"
    ]
    assert up.variables["weights"].shape == (4, 4, 8, 1) and up.output_dims == (24, 24, 8)
