"""`allocate`: give every Akida layer its neural processors, in as many hardware passes as needed.

Each region is one program; programs run one at a time. A program whose layers do not all fit
the device at once runs in several **hardware passes** (AKIDA.md, "Mapping modes": partial
reconfiguration, the weights of the next layers loaded between passes): consecutive layers are
packed greedily into a pass while their NPs (minimal mapping, split by
`akidac.target.footprint`) and input convolutions fit the device; NP indices start from 0 in
every pass. The arithmetic does not depend on the split, so the hardware model runs a multi-pass
program exactly as a single-pass one; the cost is the weights reloaded every inference, which the
report shows.

A layer that fits no NP of the device even alone, or needs more NPs than the device has, runs
on the CPU (AK-DEVICE-TOO-SMALL, through `FallbackToCpu`: the driver partitions again). With
`--strict-device` (`CompileOptions.strict_device`) both are an `AllocationError` (exit 5)
instead, as is a program that needs more than one pass.

After it: `ctx.analyses["np_assignment"]` (layer → NPs within its pass), `["passes"]` (region
index → list of passes, each a list of layer names), `["footprints"]` (by layer name),
`["op_footprints"]` (by `id(op)`: a merge and the identity layer after it share a name),
`["minimal_device"]` (the smallest preset that holds every program in one pass, or None), and
every akida op annotated with `np` and `pass`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from akidac.errors import AllocationError, FallbackToCpu, UsageError
from akidac.ir.akida_candidates import describe_akida_op
from akidac.ir.analyses import Region
from akidac.ir.graph import Graph
from akidac.passes.base import PassContext, PassResult, register_pass
from akidac.target.devices import Device, parse_device
from akidac.target.footprint import (
    LayerFootprint,
    layer_footprint,
    minimal_device,
    split_into_passes,
)


@register_pass
@dataclass(frozen=True)
class Allocate:
    """Assign NPs to every Akida layer, splitting programs into hardware passes as needed."""

    name: ClassVar[str] = "allocate"

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        try:
            device = parse_device(ctx.options.device, ctx.options.sram_kib)
        except ValueError as error:
            raise UsageError(str(error)) from None
        strict = bool(getattr(ctx.options, "strict_device", False))
        regions: list[Region] = ctx.analyses.get("regions", [])
        assignment: dict[str, list[int]] = {}
        footprints: dict[str, LayerFootprint] = {}
        passes_of: dict[int, list[list[str]]] = {}
        smallest = []
        too_big: dict[str, tuple[str, str]] = {}
        by_op: dict[int, LayerFootprint] = {}  # display names repeat (a merge and its identity)
        for region in regions:
            candidates = [describe_akida_op(op) for op in region.ops]
            prints = [layer_footprint(c, device) for c in candidates]
            for op, footprint in zip(region.ops, prints, strict=True):
                footprints[op.display_name] = footprint
                by_op[id(op)] = footprint
                why = footprint.unmappable or (
                    f"it needs {footprint.nps} NPs and {device.name} has {device.nps}"
                    if footprint.nps > device.nps
                    else None
                )
                if why is None:
                    continue
                sentence = f"layer '{op.display_name}' fits no pass of {device.name}: {why}"
                if strict:
                    raise AllocationError(
                        sentence, code="AK-DEVICE-TOO-SMALL", node=op.display_name
                    )
                for name in op.origin or (op.display_name,):
                    too_big[name] = ("AK-DEVICE-TOO-SMALL", f"{sentence}, so it runs on the CPU")
            if any(name in too_big for op in region.ops for name in op.origin):
                continue
            fitting = minimal_device(candidates, ctx.options.sram_kib)
            smallest.append(fitting)
            groups = split_into_passes(prints, device)
            if strict and len(groups) > 1:
                raise self._strict_error(region, prints, device, fitting)
            passes_of[region.index] = []
            for pass_index, group in enumerate(groups):
                next_np = 0
                names = []
                for index in group:
                    op, footprint = region.ops[index], prints[index]
                    assignment[op.display_name] = list(range(next_np, next_np + footprint.nps))
                    next_np += footprint.nps
                    op.annotations["np"] = assignment[op.display_name]
                    op.annotations["pass"] = pass_index
                    names.append(op.display_name)
                passes_of[region.index].append(names)
        if too_big:
            raise FallbackToCpu(too_big)
        ctx.analyses["device"] = device
        ctx.analyses["np_assignment"] = assignment
        ctx.analyses["footprints"] = footprints
        ctx.analyses["op_footprints"] = by_op
        ctx.analyses["passes"] = passes_of
        known = [d for d in smallest if d is not None]
        ctx.analyses["minimal_device"] = (
            max(known, key=lambda d: d.nps) if known and len(known) == len(smallest) else None
        )
        return PassResult(graph, bool(regions))

    @staticmethod
    def _strict_error(
        region: Region, prints: list[LayerFootprint], device: Device, fitting: Device | None
    ) -> AllocationError:
        total = sum(f.nps for f in prints)
        ranked = sorted(zip(region.ops, prints, strict=True), key=lambda pair: -pair[1].nps)
        layers = ", ".join(f"'{op.display_name}' {f.nps}" for op, f in ranked[:3])
        hint = (
            f"; {fitting.name} holds it (choose it with --device)"
            if fitting
            else "; no preset holds it in one pass (drop --strict-device to run it in passes)"
        )
        return AllocationError(
            f"Akida region {region.index} needs {total} NPs in one pass but {device.name} has "
            f"{device.nps} (largest layers, NPs: {layers}){hint}",
            code="AK-DEVICE-TOO-SMALL",
            node=ranked[0][0].display_name,
        )
