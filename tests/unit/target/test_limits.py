"""The limits table agrees with itself and with the memory figures it derives from."""

from __future__ import annotations

from akidac.target import limits as lim
from akidac.target.footprint import slot_bits


def test_the_weight_memory_of_an_np_is_51200_bytes() -> None:
    assert lim.WEIGHT_BYTES_PER_NP == 51_200


def test_the_empirical_channel_limits_are_the_channels_where_8_filters_fill_one_np() -> None:
    for kernel, limit in lim.EMPIRICAL_MAX_IN_CHANNELS_BY_KERNEL.items():
        per_channel = lim.WEIGHT_FILTER_GROUP * kernel * slot_bits(kernel)
        assert limit == lim.WEIGHT_BITS_PER_NP // per_channel


def test_2048_one_by_one_channels_fill_one_np_exactly() -> None:
    per_channel = lim.WEIGHT_FILTER_GROUP * 1 * slot_bits(1)
    assert lim.MAX_IN_CHANNELS * per_channel == lim.WEIGHT_BITS_PER_NP


def test_input_conv_strides_go_up_to_the_kernel_capped_at_6() -> None:
    assert lim.INPUT_CONV_STRIDES_BY_KERNEL[3] == (1, 2, 3)
    assert lim.INPUT_CONV_STRIDES_BY_KERNEL[7] == (1, 2, 3, 4, 5, 6)


def test_cnp_max_pooling_strides_never_exceed_the_size() -> None:
    assert lim.CNP_MAX_POOLS == ((1, 1), (2, 1), (2, 2))


def test_every_kind_has_limits_and_a_known_vocabulary() -> None:
    assert tuple(lim.LAYER_LIMITS) == lim.KINDS
    for kind, limits in lim.LAYER_LIMITS.items():
        assert limits.kind == kind
        assert set(limits.paddings) <= set(lim.PADDINGS)
        assert set(limits.activations) <= set(lim.ACTIVATIONS)
        assert limits.max_filters <= lim.MAX_FILTERS
