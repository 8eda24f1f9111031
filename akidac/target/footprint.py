"""Per-layer resource estimates (weight memory, NP count, input SRAM, MACs) and the minimal device.

The formulas are AKIDA.md's ("The machine"); where AKIDA.md leaves a gap, the reading akidac
takes is written beside the code. Reading of the weight formula: one kernel row of one filter
and one input channel takes one slot, the smallest of 25, 50 or 100 bits that holds the row's
8-bit weights (3-wide rows 25 bits, 5-wide 50, 7-wide 100, as AKIDA.md says; 1-wide 25 and
4-wide 50 by the same rule), and filters count in groups of 8:
`bits = ceil8(filters) × kernel_h × in_channels × slot(kernel_w)`. This reading reproduces the
empirical input-channel limits exactly (682, 204, 73 are the channels at which 8 filters fill
one NP's 409,600 weight bits) and 2048 1×1 channels fill it exactly too.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from akidac.target import limits as lim
from akidac.target.constraints import LayerCandidate, output_hw
from akidac.target.devices import DEFAULT_DEVICE, Device, NpType, parse_device, preset_devices

_CNP_KINDS = ("conv2d", "depthwise_conv2d", "conv2d_transpose", "depthwise_conv2d_transpose")
_TRANSPOSED_KINDS = ("conv2d_transpose", "depthwise_conv2d_transpose")
_MERGE_KINDS = ("add", "concatenate")


def ceil8(n: int) -> int:
    """`n` rounded up to a multiple of 8 (filters are stored in groups of 8)."""
    group = lim.WEIGHT_FILTER_GROUP
    return -(-n // group) * group


def slot_bits(kernel_width: int) -> int:
    """Bits of the weight slot one kernel row takes: the smallest of 25/50/100 that holds
    `kernel_width` 8-bit weights. A row wider than 12 weights has no slot (`ValueError`)."""
    for bits in lim.WEIGHT_SLOT_BITS:
        if kernel_width * 8 <= bits:
            return bits
    raise ValueError(f"a kernel row of {kernel_width} weights fits no weight slot")


def conv_weight_bits(kernel: tuple[int, int], in_channels: int, filters: int) -> int:
    """Weight memory of a full convolution: `ceil8(filters) × kh × in_channels × slot(kw)`.

    4-bit weights are counted like 8-bit ones: AKIDA.md's formula does not depend on the width,
    so the estimate is an upper bound for 4-bit layers.
    """
    return ceil8(filters) * kernel[0] * in_channels * slot_bits(kernel[1])


def depthwise_weight_bits(kernel: tuple[int, int], channels: int) -> int:
    """Weight memory of a depthwise convolution. Assumption (AKIDA.md gives no depthwise
    formula): each channel is a filter with one input channel, `ceil8(C) × kh × slot(kw)`."""
    return conv_weight_bits(kernel, 1, channels)


def dense_weight_bytes(inputs: int, units: int) -> int:
    """Weight memory of a dense layer: `units × (inputs + 8)` bytes (AKIDA.md)."""
    return units * (inputs + lim.DENSE_BYTES_PER_UNIT_OVERHEAD)


def layer_weight_bits(c: LayerCandidate) -> int:
    """Weight memory of the candidate layer in bits (0 for Add and Concatenate)."""
    if c.kind in ("depthwise_conv2d", "depthwise_conv2d_transpose"):
        return depthwise_weight_bits(c.kernel, c.filters)
    if c.kind in ("input_conv2d", "conv2d", "conv2d_transpose"):
        return conv_weight_bits(c.kernel, c.in_channels, c.filters)
    if c.kind == "dense1d":
        return dense_weight_bytes(c.input_features, c.filters) * 8
    return 0


def layer_macs(c: LayerCandidate) -> int:
    """Multiply-accumulates of one inference of the layer (0 for Add and Concatenate).

    Transposed layers scatter every input pixel through the whole kernel, so they count input
    pixels; convolutions count output pixels; a dense layer counts inputs × units.
    """
    kh, kw = c.kernel
    if c.kind in _TRANSPOSED_KINDS:
        pixels = c.input_hw[0] * c.input_hw[1]
    else:
        out_h, out_w = output_hw(c)
        pixels = out_h * out_w
    if c.kind in ("input_conv2d", "conv2d", "conv2d_transpose"):
        return pixels * kh * kw * c.in_channels * c.filters
    if c.kind in ("depthwise_conv2d", "depthwise_conv2d_transpose"):
        return pixels * kh * kw * c.filters
    if c.kind == "dense1d":
        return c.input_features * c.filters
    return 0


@dataclass(frozen=True)
class LayerFootprint:
    """The resources one layer takes on a device.

    `np_type` is where it runs ("none" for Add/Concatenate, performed by the consuming CNP).
    The layer is split into `filter_groups` × `column_strips` × `row_strips` parts, one per NP
    (`nps`); `input_bytes_per_np` is the input SRAM the largest part needs. `unmappable` says why
    the layer fits no NP of the device at all (then `nps` is 0 and the split fields are 0).
    """

    node_name: str
    kind: str
    np_type: str
    weight_bits: int
    filters_per_np: int
    filter_groups: int
    column_strips: int
    row_strips: int
    rows_per_strip: int
    nps: int
    input_bytes_per_np: int
    macs: int
    unmappable: str | None = None

    @property
    def weight_bytes(self) -> int:
        """Weight memory in bytes, rounded up."""
        return -(-self.weight_bits // 8)


def layer_footprint(c: LayerCandidate, device: Device | None = None) -> LayerFootprint:
    """Resources of `c` on `device` (default: the default preset).

    CNP layers are split as AKIDA.md says: at most 512 filters per NP (fewer when 512 filters'
    weights do not fit one NP's weight memory), the input in column strips of at most 64 columns
    and row strips of at most 256 rows, each plus the kernel halo (kernel − 1) when split. Then
    akidac's reading of the SRAM: an NP holds its whole strip (all input channels of a full
    convolution, its own channels of a depthwise one) in its input SRAM, so row strips get shorter
    until the strip fits, and when even one row of a 64-column strip does not fit (many input
    channels, a tall kernel), column strips get narrower until one row does.
    Dense layers take one FNP3, or one FNP2 when their weights exceed an FNP3's; InputConv2D runs
    on the HRC; Add and Concatenate take no NP of their own.
    """
    device = device or parse_device(DEFAULT_DEVICE)
    base: dict[str, Any] = {
        "node_name": c.node_name,
        "kind": c.kind,
        "weight_bits": layer_weight_bits(c),
        "macs": layer_macs(c),
    }
    if c.kind in _MERGE_KINDS:
        return LayerFootprint(np_type="none", **base, **_no_split())
    if c.kind == "input_conv2d":
        return LayerFootprint(np_type=NpType.HRC.value, **base, **_no_split())
    if c.kind == "dense1d":
        return _dense_footprint(c, device, base)
    return _cnp_footprint(c, device, base)


def _no_split() -> dict[str, Any]:
    return {
        "filters_per_np": 0,
        "filter_groups": 0,
        "column_strips": 0,
        "row_strips": 0,
        "rows_per_strip": 0,
        "nps": 0,
        "input_bytes_per_np": 0,
    }


def _dense_footprint(c: LayerCandidate, device: Device, base: dict[str, Any]) -> LayerFootprint:
    weight_bytes = dense_weight_bytes(c.input_features, c.filters)
    np_type = NpType.FNP3 if weight_bytes <= device.fnp3_weight_bytes else NpType.FNP2
    input_bytes = math.ceil(c.input_features * c.input_bits / 8)
    split: dict[str, Any] = {
        "filters_per_np": c.filters,
        "filter_groups": 1,
        "column_strips": 1,
        "row_strips": 1,
        "rows_per_strip": 1,
        "nps": 1,
        "input_bytes_per_np": input_bytes,
    }
    if input_bytes > device.sram_per_np_bytes:
        reason = (
            f"its {input_bytes} B of flattened input exceed the {device.sram_per_np_bytes} B "
            "input SRAM of one NP"
        )
        return LayerFootprint(np_type=np_type.value, **base, **_no_split(), unmappable=reason)
    return LayerFootprint(np_type=np_type.value, **base, **split)


def _cnp_footprint(c: LayerCandidate, device: Device, base: dict[str, Any]) -> LayerFootprint:
    kh, kw = c.kernel
    depthwise = c.limits.depthwise
    weight_channels = 1 if depthwise else c.in_channels
    bits_per_filter_group = lim.WEIGHT_FILTER_GROUP * kh * weight_channels * slot_bits(kw)
    groups_per_np = device.weight_bits_per_np // bits_per_filter_group
    if groups_per_np == 0:
        reason = (
            f"the weights of {lim.WEIGHT_FILTER_GROUP} filters ({bits_per_filter_group} bits) "
            f"exceed one NP's {device.weight_bits_per_np} weight bits"
        )
        return LayerFootprint(np_type=NpType.CNP.value, **base, **_no_split(), unmappable=reason)
    filters_per_np = min(lim.MAX_FILTERS_PER_NP, groups_per_np * lim.WEIGHT_FILTER_GROUP, c.filters)
    filter_groups = math.ceil(c.filters / filters_per_np)
    sram_channels = filters_per_np if depthwise else c.in_channels

    height, width = c.input_hw
    # strips are at most 64 columns wide (AKIDA.md); when one row of that strip (all the input
    # channels, plus the kernel halo) does not fit the input SRAM, narrower strips do: the
    # widest that fits with one output row (akidac's reading: "at most" allows any width)
    useful = min(width, lim.MAX_STRIP_COLUMNS)
    per_column_bytes = kh * sram_channels * c.input_bits / 8  # one column, one row + halo
    if useful < width or kh * useful * sram_channels * c.input_bits / 8 > device.sram_per_np_bytes:
        fitting = int(device.sram_per_np_bytes // per_column_bytes) - (kw - 1)
        useful = max(1, min(useful, fitting))
    column_strips = math.ceil(width / useful)
    strip_columns = useful + (kw - 1 if column_strips > 1 else 0)
    bits_per_strip_row = strip_columns * sram_channels * c.input_bits

    def strip_bytes(rows: int) -> int:
        halo = kh - 1 if rows < height else 0
        return math.ceil((rows + halo) * bits_per_strip_row / 8)

    rows_per_strip = min(height, lim.MAX_STRIP_ROWS)
    if strip_bytes(rows_per_strip) > device.sram_per_np_bytes:
        rows_per_strip = device.sram_per_np_bytes * 8 // bits_per_strip_row - (kh - 1)
    if rows_per_strip < 1:
        reason = (
            f"one input row of a {strip_columns}-column strip with its {kh - 1}-row halo "
            f"({strip_bytes(1)} B) exceeds the {device.sram_per_np_bytes} B input SRAM of one NP"
        )
        return LayerFootprint(np_type=NpType.CNP.value, **base, **_no_split(), unmappable=reason)
    row_strips = math.ceil(height / rows_per_strip)
    return LayerFootprint(
        np_type=NpType.CNP.value,
        **base,
        filters_per_np=filters_per_np,
        filter_groups=filter_groups,
        column_strips=column_strips,
        row_strips=row_strips,
        rows_per_strip=rows_per_strip,
        nps=filter_groups * column_strips * row_strips,
        input_bytes_per_np=strip_bytes(rows_per_strip),
    )


def nps_needed(
    footprints: Sequence[LayerFootprint], *, partial_reconfiguration: bool = False
) -> int:
    """NPs a list of layers (in program order) needs at once: all of them in minimal mapping, or
    with HW partial reconfiguration the largest consecutive pair (AKIDA.md, mapping modes)."""
    counts = [f.nps for f in footprints]
    if not partial_reconfiguration or len(counts) < 2:
        return sum(counts)
    return max(a + b for a, b in itertools.pairwise(counts))


def split_into_passes(footprints: Sequence[LayerFootprint], device: Device) -> list[list[int]]:
    """Indices of consecutive layers (given by their footprints, in program order) grouped into
    hardware passes that each fit `device` (NPs and input convolution units). Every footprint
    must fit the device on its own."""
    passes: list[list[int]] = []
    current: list[int] = []
    nps = hrc = 0
    for index, footprint in enumerate(footprints):
        is_hrc = footprint.np_type == NpType.HRC
        if current and (nps + footprint.nps > device.nps or hrc + is_hrc > device.hrc_units):
            passes.append(current)
            current, nps, hrc = [], 0, 0
        current.append(index)
        nps += footprint.nps
        hrc += is_hrc
    if current:
        passes.append(current)
    return passes


def minimal_device(
    layers: Sequence[LayerCandidate],
    sram_kib: int | None = None,
    *,
    partial_reconfiguration: bool = False,
) -> Device | None:
    """The smallest preset that holds `layers` (in program order) at once, in minimal mapping
    mode, or `None` when no preset does: a layer fits no NP, the input convolutions outnumber
    the HRC units, or the NPs needed exceed the largest preset's."""
    for device in preset_devices(sram_kib):
        footprints = [layer_footprint(c, device) for c in layers]
        if any(f.unmappable for f in footprints):
            continue
        if sum(f.np_type == NpType.HRC for f in footprints) > device.hrc_units:
            continue
        if nps_needed(footprints, partial_reconfiguration=partial_reconfiguration) <= device.nps:
            return device
    return None
