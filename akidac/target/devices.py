"""Akida 2 devices: the presets, `custom:NODES`, the SRAM knob, NP types and the cost constants.

A `Device` is what the allocator maps onto and what every report prints as the device it
assumed. The presets are the published IP v2 configurations (AKIDA.md, "The machine"). The cost
constants of performance estimates are named here, each with its source or marked as an
assumption (`COST_CONSTANTS`), so an estimate always says what it rests on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from akidac.target import limits as lim


class NpType(StrEnum):
    """The kinds of processing unit of an Akida 2 device (AKIDA.md, "The machine")."""

    CNP = "CNP"
    FNP2 = "FNP2"
    FNP3 = "FNP3"
    HRC = "HRC"
    TNP_B = "TNP_B"


NP_TYPE_DESCRIPTIONS: Final = MappingProxyType(
    {
        NpType.CNP: "convolutions (Conv2D, depthwise and transposed convolutions; performs the "
        "Add/Concatenate that feeds it through its skip DMA)",
        NpType.FNP2: "fully connected, weights streamed from external memory",
        NpType.FNP3: "fully connected, weights kept on chip (about 48 KB)",
        NpType.HRC: "the input convolution reading raw uint8 images (InputConv2D)",
        NpType.TNP_B: "temporal buffer convolutions (out of scope for akidac)",
    }
)

# ---------------------------------------------------------------------------------------------
# Presets
# ---------------------------------------------------------------------------------------------

#: preset name → number of nodes, smallest first (AKIDA.md: 2, 4, 6 or 12 nodes).
PRESETS: Final = MappingProxyType(
    {"akida2-2n": 2, "akida2-4n": 4, "akida2-6n": 6, "akida2-12n": 12}
)
DEFAULT_DEVICE: Final = "akida2-12n"
CUSTOM_PREFIX: Final = "custom:"
#: input-convolution units per device. Assumption: AKIDA.md names the HRC as an NP type but not
#: how many a device has; akidac assumes one (the input convolution is the first layer only).
HRC_UNITS: Final = 1

# ---------------------------------------------------------------------------------------------
# Cost constants of performance estimates
# ---------------------------------------------------------------------------------------------

#: core clock. Assumption: AKIDA.md gives no clock for the IP; 400 MHz is our round figure.
CLOCK_HZ: Final = 400_000_000
#: peak of an Akida-E: up to 4 nodes, about 200 GOPS (AKIDA.md, "Scale of the real parts").
AKIDA_E_PEAK_OPS_PER_S: Final = 200_000_000_000
AKIDA_E_NODES: Final = 4
#: operations per multiply-accumulate in vendor GOPS figures. Assumption: the usual convention.
OPS_PER_MAC: Final = 2
#: MACs per NP per cycle, derived: 200e9 / 2 / (4 nodes × 4 NPs) / CLOCK_HZ = 15.6, rounded to
#: 16. It follows CLOCK_HZ, so it is as good as that assumption.
MACS_PER_NP_PER_CYCLE: Final = 16
#: on-chip DMA between NPs, bytes per cycle. Assumption: a 64-bit data path.
NP_DMA_BYTES_PER_CYCLE: Final = 8
#: host ↔ device link. Assumption: about 1 GB/s, the order of a 2-lane PCIe 2 link.
HOST_LINK_BYTES_PER_S: Final = 1_000_000_000
#: fixed cost of one switch between a CPU region and an Akida region on the host: one
#: onnxruntime `run` call, measured at ~7.5 µs (docs/runtime.md).
REGION_SWITCH_SECONDS: Final = 7.5e-6

#: energy of one MAC on an Akida NP, memory and control included. Measured, on the only board
#: figure published with a model's layers attached: AkidaNet α=0.5 at 224×224 on an AKD1000
#: (Akida 1) draws about 109 mW above the board's floor at 43.5 frames/s, 2.5 mJ per frame for
#: its 350 M MACs (bench/estimate_crosscheck.py). Akida 2's own figure is not published.
AKIDA_PJ_PER_MAC: Final = 7.0
#: energy of one byte over the host link or from external memory (weights reloaded per pass,
#: region inputs and outputs). Assumption: the order of LPDDR/PCIe transfers, ~100 pJ/B.
LINK_PJ_PER_BYTE: Final = 100.0
#: the host class CPU parts are estimated on. Assumption: one core of a desktop/server x86-64
#: running onnxruntime's float kernels at ~10 GMAC/s sustained (AVX2, one thread).
HOST_CLASS: Final = "x86-64 core, onnxruntime fp32 (assumed ~10 GMAC/s, ~50 pJ/MAC)"
HOST_MACS_PER_S: Final = 10_000_000_000
#: energy of one MAC on the host core. Assumption: ~0.5 W of a busy core's share of package
#: power at 10 GMAC/s, i.e. 50 pJ/MAC.
HOST_PJ_PER_MAC: Final = 50.0
#: the host's rate on element-wise work (activations, Q/DQ, Transpose, Add, pooling) of CPU
#: parts, which has no MACs. Assumption: onnxruntime's fp32 element-wise kernels on one core,
#: memory traffic included, ~1 G elements/s; each element is counted at `HOST_PJ_PER_MAC`.
HOST_ELEMENTS_PER_S: Final = 1_000_000_000
#: fixed cost of one CPU node per inference: onnxruntime's per-node dispatch (a graph of tiny
#: nodes is bound by it, not by its arithmetic). Measured order: onnxruntime runs the test zoo's
#: 15-node transformer block, a few hundred elements per node, in about 11 µs on one core.
HOST_SECONDS_PER_NODE: Final = 1e-6

#: every cost constant of this module: name → (unit, source). The docs table is generated from
#: it, and a test checks each name exists here.
COST_CONSTANTS: Final = MappingProxyType(
    {
        "CLOCK_HZ": ("Hz", "assumption: no clock is published for the IP; a round figure"),
        "MACS_PER_NP_PER_CYCLE": (
            "MAC/cycle",
            "derived from Akida-E's published ~200 GOPS on up to 4 nodes "
            "at CLOCK_HZ and OPS_PER_MAC: 15.6, rounded",
        ),
        "OPS_PER_MAC": ("op", "assumption: the usual convention of vendor GOPS/TOPS figures"),
        "AKIDA_E_PEAK_OPS_PER_S": ("op/s", "BrainChip's published Akida-E peak"),
        "AKIDA_E_NODES": ("nodes", "BrainChip's published Akida-E size (up to 4 nodes)"),
        "NP_DMA_BYTES_PER_CYCLE": ("B/cycle", "assumption: a 64-bit on-chip data path"),
        "HOST_LINK_BYTES_PER_S": ("B/s", "assumption: the order of a 2-lane PCIe 2 link"),
        "REGION_SWITCH_SECONDS": (
            "s",
            "measured: one onnxruntime run call (bench/e2e_runtime.py's per-step overhead)",
        ),
        "HRC_UNITS": ("units", "assumption: one input-convolution unit per device"),
        "AKIDA_PJ_PER_MAC": (
            "pJ/MAC",
            "measured on one published board figure: AkidaNet 0.5 at 224 on an AKD1000 (Akida 1), "
            "~109 mW above floor at 43.5 frames/s for 350 M MACs; no Akida 2 figure is published",
        ),
        "LINK_PJ_PER_BYTE": ("pJ/B", "assumption: the order of LPDDR/PCIe transfer energy"),
        "HOST_MACS_PER_S": (
            "MAC/s",
            "assumption: one x86-64 core running onnxruntime fp32 kernels; replaced by a "
            "measurement with --measure-cpu",
        ),
        "HOST_PJ_PER_MAC": ("pJ/MAC", "assumption: one busy x86-64 core's share of package power"),
        "HOST_ELEMENTS_PER_S": (
            "element/s",
            "assumption: onnxruntime's fp32 element-wise kernels on one x86-64 core",
        ),
        "HOST_SECONDS_PER_NODE": (
            "s",
            "measured order: onnxruntime's per-node dispatch (a 15-node block of tiny nodes "
            "runs in ~11 µs on one core, bench/e2e_runtime.py)",
        ),
    }
)


@dataclass(frozen=True)
class Device:
    """One Akida 2 configuration: `nodes` of 4 NPs each, with per-NP memories and cost figures.

    `sram_per_np_bytes` is the input/activation SRAM of one NP (the `--sram-kib` knob),
    `weight_bytes_per_np` its weight memory, `fnp3_weight_bytes` the on-chip weights of an FNP3.
    """

    name: str
    nodes: int
    sram_per_np_bytes: int = lim.INPUT_SRAM_PER_NP_BYTES
    weight_bytes_per_np: int = lim.WEIGHT_BYTES_PER_NP
    fnp3_weight_bytes: int = lim.FNP3_WEIGHT_BYTES
    hrc_units: int = HRC_UNITS
    clock_hz: int = CLOCK_HZ
    macs_per_np_per_cycle: int = MACS_PER_NP_PER_CYCLE

    def __post_init__(self) -> None:
        if self.nodes < 1:
            raise ValueError(f"device {self.name!r} needs at least one node, not {self.nodes}")
        if self.sram_per_np_bytes < 1:
            raise ValueError(f"device {self.name!r} needs a positive SRAM size per NP")

    @property
    def nps(self) -> int:
        """Neural processors: 4 per node."""
        return self.nodes * lim.NPS_PER_NODE

    @property
    def weight_bits_per_np(self) -> int:
        """Weight memory of one NP in bits."""
        return self.weight_bytes_per_np * 8

    @property
    def peak_macs_per_s(self) -> int:
        """Multiply-accumulates per second with every NP busy (an estimate: see CLOCK_HZ)."""
        return self.nps * self.macs_per_np_per_cycle * self.clock_hz

    def describe(self) -> str:
        """One line for reports: `akida2-12n: 12 nodes, 48 NPs, 64 KiB input SRAM per NP`."""
        sram = self.sram_per_np_bytes / 1024
        sram_text = f"{sram:g} KiB" if sram == math.floor(sram) else f"{self.sram_per_np_bytes} B"
        return (
            f"{self.name}: {self.nodes} nodes, {self.nps} NPs, {sram_text} input SRAM and "
            f"{self.weight_bytes_per_np:,} B weights per NP"
        )


def parse_device(spec: str, sram_kib: int | None = None) -> Device:
    """The device named by `spec` (a preset name or `custom:NODES`), with `sram_kib` KiB of input
    SRAM per NP instead of the default 64 when given. Raises `ValueError` with a sentence saying
    what is accepted."""
    name = spec.strip().lower()
    if name in PRESETS:
        nodes = PRESETS[name]
    elif name.startswith(CUSTOM_PREFIX):
        count = name[len(CUSTOM_PREFIX) :]
        if not count.isdecimal() or int(count) < 1:
            raise ValueError(
                f"device {spec!r}: the node count of custom:NODES must be a positive whole "
                "number, e.g. custom:8"
            )
        nodes = int(count)
        name = f"{CUSTOM_PREFIX}{nodes}"
    else:
        raise ValueError(
            f"unknown device {spec!r}: expected one of {', '.join(PRESETS)} or custom:NODES "
            "(e.g. custom:8)"
        )
    if sram_kib is None:
        return Device(name, nodes)
    if isinstance(sram_kib, bool) or not isinstance(sram_kib, int) or sram_kib < 1:
        raise ValueError(f"--sram-kib must be a positive whole number of KiB, not {sram_kib!r}")
    return Device(name, nodes, sram_per_np_bytes=sram_kib * 1024)


def preset_devices(sram_kib: int | None = None) -> tuple[Device, ...]:
    """Every preset, smallest first, with the SRAM knob applied."""
    return tuple(parse_device(name, sram_kib) for name in PRESETS)
