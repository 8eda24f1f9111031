"""Resource estimates on hand-computed examples, and the choice of the minimal device."""

from __future__ import annotations

import pytest

from akidac.target import limits as lim
from akidac.target.constraints import LayerCandidate
from akidac.target.devices import parse_device
from akidac.target.footprint import (
    ceil8,
    conv_weight_bits,
    dense_weight_bytes,
    depthwise_weight_bits,
    layer_footprint,
    layer_macs,
    minimal_device,
    nps_needed,
    slot_bits,
)


def conv(name: str, cin: int, filters: int, hw: tuple[int, int], **kw: object) -> LayerCandidate:
    fields: dict = {"kernel": (3, 3), "activation": "relu", **kw}
    return LayerCandidate(
        name, "Conv", "conv2d", in_channels=cin, filters=filters, input_hw=hw, **fields
    )


def test_ceil8_rounds_filters_up_to_groups_of_eight() -> None:
    assert [ceil8(n) for n in (1, 8, 9, 16, 17)] == [8, 8, 16, 16, 24]


@pytest.mark.parametrize(("width", "bits"), [(1, 25), (3, 25), (4, 50), (5, 50), (7, 100)])
def test_a_kernel_row_takes_the_smallest_slot_holding_its_weights(width: int, bits: int) -> None:
    assert slot_bits(width) == bits


def test_a_kernel_row_wider_than_the_largest_slot_is_refused() -> None:
    with pytest.raises(ValueError, match="13 weights"):
        slot_bits(13)


def test_weight_footprints_follow_the_akida_formulas() -> None:
    # 3×3: ceil8(20) × 3 × 10 × 25 = 24 × 750
    assert conv_weight_bits((3, 3), 10, 20) == 18_000
    # 5×5: 24 × 5 × 10 × 50; 7×7: 8 × 7 × 2 × 100
    assert conv_weight_bits((5, 5), 10, 20) == 60_000
    assert conv_weight_bits((7, 7), 2, 1) == 11_200
    # depthwise 3×3 over 32 channels: 32 × 3 × 1 × 25
    assert depthwise_weight_bits((3, 3), 32) == 2_400
    # dense: 10 units × (1024 + 8) bytes
    assert dense_weight_bytes(1024, 10) == 10_320


def test_a_layer_larger_than_one_np_is_split_by_filters_and_rows() -> None:
    # 3×3, 64 → 128 on 56×56, 8-bit: weights 128 × 3 × 64 × 25 = 614,400 bits. 8 filters take
    # 38,400 bits, so an NP holds 10 groups = 80 filters: 2 filter groups. One input row is
    # 56 × 64 = 3,584 B; 64 KiB hold 18 rows, 16 plus the 2-row halo: 4 row strips of 16 rows.
    footprint = layer_footprint(conv("c", 64, 128, (56, 56)))
    assert footprint.weight_bits == 614_400
    assert footprint.weight_bytes == 76_800
    assert (footprint.filters_per_np, footprint.filter_groups) == (80, 2)
    assert (footprint.column_strips, footprint.row_strips, footprint.rows_per_strip) == (1, 4, 16)
    assert footprint.nps == 8
    assert footprint.input_bytes_per_np == 18 * 3_584
    assert footprint.macs == 56 * 56 * 9 * 64 * 128


def test_a_small_layer_takes_one_np() -> None:
    # 3×3, 16 → 32 on 16×16 with 4-bit inputs: 16 × 16 × 16 × 4 bits = 2,048 B of input.
    footprint = layer_footprint(conv("c", 16, 32, (16, 16), input_bits=4, weight_bits=4))
    assert (footprint.np_type, footprint.nps, footprint.filters_per_np) == ("CNP", 1, 32)
    assert footprint.input_bytes_per_np == 2_048


def test_a_wide_input_is_split_in_column_strips_of_64_plus_the_halo() -> None:
    # 200 columns → 4 strips of 64 + 2 columns; 32 rows × 66 × 8 channels = 16,896 B.
    footprint = layer_footprint(conv("c", 8, 16, (32, 200)))
    assert (footprint.column_strips, footprint.row_strips, footprint.nps) == (4, 1, 4)
    assert footprint.input_bytes_per_np == 16_896


def test_filters_per_np_never_exceed_512() -> None:
    footprint = layer_footprint(conv("c", 8, 2048, (8, 8), kernel=(1, 1)))
    assert (footprint.filters_per_np, footprint.filter_groups) == (lim.MAX_FILTERS_PER_NP, 4)


def test_a_depthwise_np_holds_only_its_own_channels() -> None:
    dw = LayerCandidate(
        "dw", "Conv", "depthwise_conv2d", in_channels=1024, filters=1024, groups=1024,
        kernel=(3, 3), input_hw=(7, 7), activation="relu",
    )  # fmt: skip
    footprint = layer_footprint(dw)
    assert (footprint.filters_per_np, footprint.filter_groups, footprint.nps) == (512, 2, 2)
    assert footprint.input_bytes_per_np == 7 * 7 * 512
    assert footprint.macs == 7 * 7 * 9 * 1024


def test_dense_layers_take_an_fnp3_or_stream_their_weights_on_an_fnp2() -> None:
    small = LayerCandidate("fc", "Gemm", "dense1d", 1024, 10, input_features=1024)
    large = LayerCandidate("fc", "Gemm", "dense1d", 2048, 100, input_features=2048)
    assert (layer_footprint(small).np_type, layer_footprint(small).nps) == ("FNP3", 1)
    assert (layer_footprint(large).np_type, layer_footprint(large).nps) == ("FNP2", 1)
    assert layer_footprint(large).weight_bytes == 100 * 2056
    assert layer_macs(large) == 2048 * 100


def test_the_input_conv_runs_on_the_hrc_and_merges_take_no_np() -> None:
    stem = LayerCandidate(
        "stem", "Conv", "input_conv2d", 3, 16, kernel=(3, 3), stride=(2, 2), input_hw=(224, 224)
    )
    add = LayerCandidate("add", "Add", "add", 16, 16, input_hw=(112, 112), num_inputs=2)
    assert (layer_footprint(stem).np_type, layer_footprint(stem).nps) == ("HRC", 0)
    assert layer_footprint(stem).macs == 112 * 112 * 9 * 3 * 16
    assert (layer_footprint(add).np_type, layer_footprint(add).nps) == ("none", 0)


def test_weights_of_eight_filters_beyond_one_np_make_the_layer_unmappable() -> None:
    footprint = layer_footprint(conv("c", 683, 8, (14, 14)))
    assert footprint.nps == 0
    assert footprint.unmappable is not None and "409600 weight bits" in footprint.unmappable


def test_an_input_column_beyond_the_sram_makes_the_layer_unmappable() -> None:
    device = parse_device("akida2-12n", sram_kib=1)
    footprint = layer_footprint(conv("c", 2048, 8, (8, 64), kernel=(1, 1)), device)
    assert footprint.unmappable is not None and "1024 B input SRAM" in footprint.unmappable


def test_column_strips_narrow_until_one_input_row_fits_the_sram() -> None:
    """512 channels × 64 columns = 32 KiB per row: with 1 KiB of SRAM, strips of 2 columns."""
    device = parse_device("akida2-12n", sram_kib=1)
    footprint = layer_footprint(conv("c", 512, 8, (8, 64), kernel=(1, 1)), device)
    assert footprint.unmappable is None
    assert footprint.column_strips == 32
    assert footprint.input_bytes_per_np <= 1024
    # a 5×5 depthwise layer on 480 channels (PP-OCRv4's recogniser): 4-column and 4-row halo
    depthwise = LayerCandidate(
        "w",
        "Conv",
        "depthwise_conv2d",
        in_channels=480,
        filters=480,
        input_hw=(3, 80),
        kernel=(5, 5),
        activation="relu",
    )
    wide = layer_footprint(depthwise)
    assert wide.unmappable is None and wide.input_bytes_per_np <= 65536
    assert wide.column_strips == 4


def test_hw_partial_reconfiguration_needs_the_largest_consecutive_pair() -> None:
    footprints = [layer_footprint(conv(f"c{i}", 8, 8, (8, 8 + 64 * i))) for i in range(4)]
    assert [f.nps for f in footprints] == [1, 2, 3, 4]
    assert nps_needed(footprints) == 10
    assert nps_needed(footprints, partial_reconfiguration=True) == 7


def test_minimal_device_picks_the_smallest_preset_that_holds_the_layers() -> None:
    one_np = conv("small", 16, 32, (16, 16))
    eight_nps = conv("big", 64, 128, (56, 56))
    assert minimal_device([one_np]).name == "akida2-2n"
    assert minimal_device([eight_nps]).name == "akida2-2n"
    assert minimal_device([eight_nps, one_np]).name == "akida2-4n"
    assert minimal_device([eight_nps] * 3).name == "akida2-6n"
    assert minimal_device([eight_nps] * 6).name == "akida2-12n"


def test_minimal_device_returns_none_when_no_preset_holds_the_layers() -> None:
    assert minimal_device([conv(f"c{i}", 64, 128, (56, 56)) for i in range(7)]) is None
    assert minimal_device([conv("c", 683, 8, (14, 14))]) is None
    stem = LayerCandidate("stem", "Conv", "input_conv2d", 3, 16, kernel=(3, 3), input_hw=(32, 32))
    assert minimal_device([stem, stem]) is None


def test_more_sram_or_partial_reconfiguration_fit_a_smaller_device() -> None:
    layers = [conv(f"c{i}", 64, 128, (56, 56)) for i in range(7)]
    # with 256 KiB an NP holds all 56 rows: 2 NPs per layer, 14 in all
    assert minimal_device(layers, sram_kib=256).name == "akida2-4n"
    assert minimal_device(layers, partial_reconfiguration=True).name == "akida2-4n"
