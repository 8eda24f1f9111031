"""Performance and energy estimate of a partitioned model on an Akida 2 device.

What a model costs per inference: every Akida layer's cycles (its MACs spread over its NPs at
`MACS_PER_NP_PER_CYCLE`; an FNP2 layer at least as long as streaming its weights over the NP
DMA), every region's hardware passes (the weights of a multi-pass program reloaded over the host
link every inference) and CPU↔Akida transfers, the CPU parts at a host MAC rate, and the energy
from per-MAC and per-byte figures. Every constant comes from `akidac.target.devices`, where its
source is named or it is marked as an assumption; the result lists the ones it used.

Model of time, deliberately simple and stated: one inference runs the regions and CPU parts one
after another; inside a region the layers of one frame run one after another (no overlap
between layers is counted, so the figure is an upper bound for a pipelined device); a region
costs its layers' cycles at `CLOCK_HZ`, its reloaded weights, its input and output bytes over
the host link and one region switch. The partition is fixed: estimating on another device
re-packs the same layers into that device's passes (`split_into_passes`), so more NPs can only
remove passes, never add time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from akidac.target import devices as dev
from akidac.target.devices import Device, NpType
from akidac.target.footprint import LayerFootprint, split_into_passes

#: version of the `estimate` object (in `report --json`, `compile --report-json` and `device`).
ESTIMATE_SCHEMA_VERSION = 2


#: devices of `akidac device --sweep`, fewest NPs first: the presets and custom sizes between
#: and around them.
SWEEP_DEVICES = (
    "custom:1",
    "akida2-2n",
    "custom:3",
    "akida2-4n",
    "akida2-6n",
    "custom:8",
    "akida2-12n",
    "custom:16",
    "custom:24",
)


@dataclass(frozen=True)
class RegionCost:
    """What the estimator needs of one Akida region: its layers in order and its transfers."""

    index: int
    layers: Sequence[tuple[str, LayerFootprint]]
    input_bytes: int
    output_bytes: int


@dataclass(frozen=True)
class CpuWork:
    """What the CPU parts compute per inference: MACs (convolutions and matrix products left on
    the CPU), elements written by their other nodes (activations, Q/DQ, Transposes, merges)
    and the number of nodes, each with a dispatch cost."""

    macs: int
    elements: int = 0
    nodes: int = 0


@dataclass(frozen=True)
class HostRate:
    """The host CPU parts run on: a name, MACs per second and whether it was measured."""

    name: str
    macs_per_s: float
    measured: bool = False


DEFAULT_HOST = HostRate(dev.HOST_CLASS, float(dev.HOST_MACS_PER_S))


def layer_cycles(footprint: LayerFootprint, device: Device) -> int:
    """Cycles of one layer: MACs over (NPs × MACs/NP/cycle), at least the weight stream of an
    FNP2; the input convolution runs on the HRC units; merges (done by the next CNP's skip DMA)
    cost their output pass through the NP DMA, counted as zero MACs and zero cycles here."""
    if footprint.np_type == "none":
        return 0
    units = device.hrc_units if footprint.np_type == NpType.HRC else max(footprint.nps, 1)
    rate = units * device.macs_per_np_per_cycle
    cycles = -(-footprint.macs // rate)
    if footprint.np_type == NpType.FNP2:
        cycles = max(cycles, -(-footprint.weight_bytes // dev.NP_DMA_BYTES_PER_CYCLE))
    return cycles


def split_passes(layers: Sequence[LayerFootprint], device: Device) -> list[list[int]] | None:
    """The layers packed into `device`'s passes, or None when one layer alone exceeds it."""
    if any(f.nps > device.nps or f.unmappable for f in layers):
        return None
    return split_into_passes(layers, device)


@dataclass(frozen=True)
class _RegionTime:
    """One region's share of an estimate: its layer rows and region row, its compute and
    transfer seconds, its MACs and the bytes it moves over the host link."""

    layer_rows: list[dict[str, Any]]
    row: dict[str, Any]
    compute_s: float
    transfer_s: float
    macs: int
    link_bytes: int


def _region_time(region: RegionCost, groups: list[list[int]], device: Device) -> _RegionTime:
    """The layers of `region` timed on `device` in their hardware passes `groups`: the layers one
    after another, plus its input and output bytes (and, with several passes, all its weights
    reloaded) over the host link, plus one region switch."""
    prints = [f for _, f in region.layers]
    pass_of = {i: p for p, group in enumerate(groups) for i in group}
    layer_rows = []
    cycles = macs = 0
    for i, (name, f) in enumerate(region.layers):
        c = layer_cycles(f, device)
        cycles += c
        macs += f.macs
        layer_rows.append(
            {
                "name": name,
                "region": region.index,
                "pass": pass_of[i],
                "np_type": f.np_type,
                "nps": f.nps,
                "macs": f.macs,
                "cycles": c,
                "time_ms": _ms(c / device.clock_hz),
                "weight_bytes": f.weight_bytes,
                "input_sram_bytes": f.input_bytes_per_np,
            }
        )
    reloaded = sum(f.weight_bytes for f in prints) if len(groups) > 1 else 0
    io_bytes = region.input_bytes + region.output_bytes
    compute_s = cycles / device.clock_hz
    transfer_s = (reloaded + io_bytes) / dev.HOST_LINK_BYTES_PER_S
    transfer_s += dev.REGION_SWITCH_SECONDS
    row = {
        "region": region.index,
        "passes": len(groups),
        "nps_per_pass": [sum(prints[i].nps for i in g) for g in groups],
        "weight_bytes_reloaded": reloaded,
        "dma_bytes_in": region.input_bytes,
        "dma_bytes_out": region.output_bytes,
        "cycles": cycles,
        "time_ms": _ms(compute_s + transfer_s),
    }
    return _RegionTime(layer_rows, row, compute_s, transfer_s, macs, reloaded + io_bytes)


def estimate(
    regions: Sequence[RegionCost],
    cpu: CpuWork | int,
    device: Device,
    host: HostRate = DEFAULT_HOST,
) -> dict[str, Any]:
    """The `estimate` object: per layer, per region and whole-model time and energy on `device`
    (JSON-ready, deterministic; times in ms, energy in µJ). `fits` is False (and the figures
    null) when a layer needs more NPs than the device has."""
    work = cpu if isinstance(cpu, CpuWork) else CpuWork(cpu)
    cpu_macs = work.macs
    layers: list[dict[str, Any]] = []
    region_rows: list[dict[str, Any]] = []
    akida_s = transfer_s = 0.0
    akida_macs = link_bytes = 0
    for region in regions:
        groups = split_passes([f for _, f in region.layers], device)
        if groups is None:
            return _not_fitting(region, device, host, work)
        timed = _region_time(region, groups, device)
        layers += timed.layer_rows
        region_rows.append(timed.row)
        akida_s += timed.compute_s
        transfer_s += timed.transfer_s
        akida_macs += timed.macs
        link_bytes += timed.link_bytes
    cpu_s = cpu_seconds(work, host)
    total_s = akida_s + cpu_s + transfer_s
    energy_pj = (
        akida_macs * dev.AKIDA_PJ_PER_MAC
        + link_bytes * dev.LINK_PJ_PER_BYTE
        + (cpu_macs + work.elements) * dev.HOST_PJ_PER_MAC
    )
    return {
        "schema_version": ESTIMATE_SCHEMA_VERSION,
        "device": {"name": device.name, "nps": device.nps},
        "fits": True,
        "latency_ms": _ms(total_s),
        "inferences_per_s": round(1 / total_s, 3) if total_s > 0 else None,
        "energy_uj": round(energy_pj / 1e6, 6),
        "akida_ms": _ms(akida_s),
        "cpu_ms": _ms(cpu_s),
        "transfer_ms": _ms(transfer_s),
        "shares": _shares(akida_s, cpu_s, transfer_s),
        "passes": sum(r["passes"] for r in region_rows),
        "nps_used": max((max(r["nps_per_pass"]) for r in region_rows), default=0),
        "macs_on_akida": akida_macs,
        "macs_on_cpu": cpu_macs,
        "cpu_elements": work.elements,
        "cpu_nodes": work.nodes,
        "layers": layers,
        "regions": region_rows,
        "assumptions": assumptions(device, host),
    }


def assumptions(device: Device, host: HostRate) -> dict[str, Any]:
    """The constants an estimate rests on, by name (sources in `COST_CONSTANTS`)."""
    return {
        "clock_hz": device.clock_hz,
        "macs_per_np_per_cycle": device.macs_per_np_per_cycle,
        "np_dma_bytes_per_cycle": dev.NP_DMA_BYTES_PER_CYCLE,
        "host_link_bytes_per_s": dev.HOST_LINK_BYTES_PER_S,
        "region_switch_s": dev.REGION_SWITCH_SECONDS,
        "akida_pj_per_mac": dev.AKIDA_PJ_PER_MAC,
        "link_pj_per_byte": dev.LINK_PJ_PER_BYTE,
        "host": host.name,
        "host_macs_per_s": host.macs_per_s,
        "host_measured": host.measured,
        "host_pj_per_mac": dev.HOST_PJ_PER_MAC,
        "host_elements_per_s": dev.HOST_ELEMENTS_PER_S,
        "host_seconds_per_node": dev.HOST_SECONDS_PER_NODE,
        "layers_overlap": False,
    }


def summary_line(est: dict[str, Any] | None) -> str:
    """One line for human output: latency, inferences/s, energy, and where the time goes."""
    if not est:
        return "estimate: none (no allocation)"
    if not est["fits"]:
        return f"estimate on {est['device']['name']}: does not fit ({est['reason']})"
    shares = est["shares"]
    rate = est["inferences_per_s"] or 0
    return (
        f"estimate on {est['device']['name']}: {est['latency_ms']:.3f} ms, "
        f"{rate:,.0f} inferences/s, {est['energy_uj']:.1f} µJ per inference "
        f"(Akida {shares['akida']:.0%}, CPU {shares['cpu']:.0%}, "
        f"transfers {shares['transfer']:.0%}; assumptions: docs/devices.md)"
    )


def cpu_seconds(work: CpuWork, host: HostRate) -> float:
    """Time of the CPU parts: MACs at the host's MAC rate, other elements at
    `HOST_ELEMENTS_PER_S`, and `HOST_SECONDS_PER_NODE` per node."""
    return (
        work.macs / host.macs_per_s
        + work.elements / dev.HOST_ELEMENTS_PER_S
        + work.nodes * dev.HOST_SECONDS_PER_NODE
    )


def _not_fitting(
    region: RegionCost, device: Device, host: HostRate, work: CpuWork
) -> dict[str, Any]:
    worst = max(region.layers, key=lambda item: item[1].nps)
    reason = (
        f"layer '{worst[0]}' needs {worst[1].nps} NPs and {device.name} has {device.nps}"
        if not worst[1].unmappable
        else f"layer '{worst[0]}' fits no NP: {worst[1].unmappable}"
    )
    return {
        "schema_version": ESTIMATE_SCHEMA_VERSION,
        "device": {"name": device.name, "nps": device.nps},
        "fits": False,
        "reason": reason,
        "latency_ms": None,
        "inferences_per_s": None,
        "energy_uj": None,
        "akida_ms": None,
        "cpu_ms": _ms(cpu_seconds(work, host)),
        "transfer_ms": None,
        "shares": None,
        "passes": None,
        "nps_used": None,
        "macs_on_akida": None,
        "macs_on_cpu": work.macs,
        "cpu_elements": work.elements,
        "cpu_nodes": work.nodes,
        "layers": [],
        "regions": [],
        "assumptions": assumptions(device, host),
    }


def _shares(akida: float, cpu: float, transfer: float) -> dict[str, float]:
    total = akida + cpu + transfer
    if total <= 0:
        return {"akida": 0.0, "cpu": 0.0, "transfer": 0.0}
    return {
        "akida": round(akida / total, 4),
        "cpu": round(cpu / total, 4),
        "transfer": round(transfer / total, 4),
    }


def _ms(seconds: float) -> float:
    """Milliseconds rounded to the nanosecond, so JSON is stable across platforms."""
    return round(seconds * 1000, 6)
