"""`allocate`: give every Akida layer its neural processors and check the device holds them.

Each region is one program; programs run one at a time, so each must fit the device on its own
(minimal mapping: one NP set per layer, split by `akidac.target.footprint`). NP indices are
assigned in layer order from 0. A program that needs more NPs than the device has, or a layer
that fits no NP, is an `AllocationError` (exit 5) that names the layer and the smallest preset
that would hold it. After it: `ctx.analyses["np_assignment"]` (layer → NPs),
`ctx.analyses["footprints"]` and `ctx.analyses["minimal_device"]`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from akidac.errors import AllocationError, UsageError
from akidac.ir.akida_candidates import describe_akida_op
from akidac.ir.graph import Graph
from akidac.passes.base import PassContext, PassResult, register_pass
from akidac.passes.partition import Region
from akidac.target.devices import parse_device
from akidac.target.footprint import layer_footprint, minimal_device


@register_pass
@dataclass(frozen=True)
class Allocate:
    """Assign NPs to every Akida layer; fail with exit 5 when a program exceeds the device."""

    name: ClassVar[str] = "allocate"

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        try:
            device = parse_device(ctx.options.device, ctx.options.sram_kib)
        except ValueError as error:
            raise UsageError(str(error)) from None
        regions: list[Region] = ctx.analyses.get("regions", [])
        assignment: dict[str, list[int]] = {}
        footprints = {}
        smallest = []
        for region in regions:
            candidates = [describe_akida_op(op) for op in region.ops]
            next_np = 0
            for op, candidate in zip(region.ops, candidates, strict=True):
                footprint = layer_footprint(candidate, device)
                if footprint.unmappable:
                    raise AllocationError(
                        f"layer '{op.display_name}' fits no NP of "
                        f"{device.name}: {footprint.unmappable}",
                        code="AK-DEVICE-TOO-SMALL",
                        node=op.display_name,
                    )
                footprints[op.display_name] = footprint
                assignment[op.display_name] = list(range(next_np, next_np + footprint.nps))
                next_np += footprint.nps
                op.annotations["np"] = assignment[op.display_name]
            fitting = minimal_device(candidates, ctx.options.sram_kib)
            smallest.append(fitting)
            if next_np > device.nps:
                largest = sorted(region.ops, key=lambda op: -len(assignment[op.display_name]))
                layers = ", ".join(
                    f"'{op.display_name}' {len(assignment[op.display_name])}" for op in largest[:3]
                )
                hint = (
                    f"; {fitting.name} holds it (choose it with --device)"
                    if fitting
                    else "; no preset holds it (try custom:NODES, or keep layers on the CPU)"
                )
                raise AllocationError(
                    f"Akida region {region.index} needs {next_np} NPs but {device.name} has "
                    f"{device.nps} (largest layers, NPs: {layers}){hint}",
                    code="AK-DEVICE-TOO-SMALL",
                    node=largest[0].display_name,
                )
        ctx.analyses["device"] = device
        ctx.analyses["np_assignment"] = assignment
        ctx.analyses["footprints"] = footprints
        known = [d for d in smallest if d is not None]
        ctx.analyses["minimal_device"] = max(known, key=lambda d: d.nps) if known else None
        return PassResult(graph, bool(regions))
