"""The compatibility report: per ONNX node where it runs and why, with shares, MACs and transfers.

Built from the IR graph the passes left and their analyses. An op inside an Akida region runs on
Akida; every other op runs on the CPU. Each ONNX node of the input model takes the target of the
ops that carry its name in their `origin`: any CPU work makes it a CPU node, a node no op carries
was removed by a rewrite. The ops the compiler adds at region borders (Transpose,
QuantizeLinear, DequantizeLinear) carry no origin: they are listed as `border_nodes` and counted
as CPU work, never hidden. Before `quantize` has run (the `report` command), the border ops and
the integer types it will add are predicted by the same rules and marked `predicted`.
The result is plain data; `akidac.report.schema` documents every field of its JSON form.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from akidac.errors import UsageError
from akidac.ir.akida_candidates import describe_akida_op
from akidac.ir.analyses import Decision, Region
from akidac.ir.attributes import as_ints
from akidac.ir.diagnostics import Diagnostic
from akidac.ir.graph import Graph, Op, Value
from akidac.ir.types import dtype_to_numpy
from akidac.target.devices import Device, parse_device
from akidac.target.estimate import (
    DEFAULT_HOST,
    CpuWork,
    HostRate,
    RegionCost,
    estimate,
)
from akidac.target.footprint import layer_macs

#: version of the report's JSON form; the policy for changing it is in docs/report-schema.md.
REPORT_SCHEMA_VERSION = 3
#: the integer element types of values crossing CPU↔Akida after quantization.
QUANTIZED_DTYPES = frozenset({"i8", "u8", "i32"})
#: opset from which DequantizeLinear takes per-axis scales (else quantize adds a Mul).
PER_AXIS_DEQUANTIZE_OPSET = 13
#: decimals of the shares in the report (diff-friendly, exact enough for percentages).
SHARE_DECIMALS = 4


def onnx_op_macs(op: Op) -> int:
    """Multiply-accumulates of one run of an `onnx.Conv`, `ConvTranspose`, `Gemm` or `MatMul`
    op, from the shapes of its values; 0 for any other op or when a shape is unknown.

    Conv: `N · Ho · Wo · Cout · (Cin / group) · kh · kw`, output pixels × weight elements.
    ConvTranspose: `N · Hi · Wi · Cin · (Cout / group) · kh · kw`, every input pixel through the
    kernel. Gemm and MatMul: output elements × the reduced dimension K.
    """
    if op.dialect != "onnx" or len(op.inputs) < 2:
        return 0
    x, weight = op.inputs[0], op.inputs[1]
    out = op.outputs[0].type.shape
    if x is None or weight is None or not _static(x.type.shape) or not _static(out):
        return 0
    if op.op_type in ("Conv", "ConvTranspose"):
        if not _static(weight.type.shape) or len(out) < 3:  # type: ignore[arg-type]
            return 0
        pixels = out if op.op_type == "Conv" else x.type.shape
        batch_and_space = pixels[0] * math.prod(pixels[2:])  # type: ignore[index,operator,arg-type]
        return int(batch_and_space * math.prod(weight.type.shape))  # type: ignore[arg-type]
    if op.op_type == "Gemm":
        reduced = x.type.shape[0 if op.attrs.get("transA", 0) else -1]  # type: ignore[index]
        return int(math.prod(out) * reduced)  # type: ignore[arg-type,operator]
    if op.op_type == "MatMul":
        return int(math.prod(out) * x.type.shape[-1])  # type: ignore[arg-type,operator,index]
    return 0


def op_macs(op: Op) -> int:
    """MACs of one run of `op`: an `akida.*` layer's (`layer_macs` × batch), wherever it runs,
    or `onnx_op_macs` for an `onnx.*` op."""
    if op.dialect != "akida":
        return onnx_op_macs(op)
    x = op.inputs[0]
    batch = int(x.type.shape[0]) if x is not None and _static(x.type.shape) else 1  # type: ignore[index,arg-type]
    return layer_macs(describe_akida_op(op)) * batch


def assumed_device(spec: str, sram_kib: int | None = None) -> Device:
    """The device a report assumes when no pass resolved one (`UsageError` if `spec` names none)."""
    try:
        return parse_device(spec, sram_kib)
    except ValueError as error:
        raise UsageError(str(error)) from None


@dataclass
class _Placement:
    """Where the compiled graph runs each original node: its Akida region, or the CPU with the
    reasons, and the MACs of every node (by the first name of each op's origin)."""

    akida_region: dict[str, int] = field(default_factory=dict)
    on_cpu: set[str] = field(default_factory=set)
    reasons: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    macs: Counter[str] = field(default_factory=Counter)
    macs_on_akida: int = 0


def _placement(
    graph: Graph, regions: Sequence[Region], decisions: dict[str, Decision]
) -> _Placement:
    region_of_op = {id(op): region.index for region in regions for op in region.ops}
    placement = _Placement()
    for op in graph.ops:
        if not op.origin:
            continue
        layer_macs_ = op_macs(op)
        placement.macs[op.origin[0]] += layer_macs_
        if id(op) in region_of_op:
            placement.macs_on_akida += layer_macs_
            for name in op.origin:
                placement.akida_region.setdefault(name, region_of_op[id(op)])
            continue
        op_reasons = _cpu_reasons(op, decisions)
        for name in op.origin:
            placement.on_cpu.add(name)
            known = placement.reasons.setdefault(name, [])
            known += [reason for reason in op_reasons if reason not in known]
    return placement


def _node_rows(
    original_nodes: Sequence[tuple[str, str]], placement: _Placement
) -> list[dict[str, Any]]:
    """One row per node of the input model: akida (with its region), cpu (with its reasons)
    or removed (with why)."""
    nodes = []
    for name, op_type in original_nodes:
        if name in placement.on_cpu:
            target, region, why = "cpu", None, placement.reasons[name]
        elif name in placement.akida_region:
            target, region, why = "akida", placement.akida_region[name], []
        else:
            target, region, why = "removed", None, [_removed_reason(name, op_type)]
        nodes.append(
            {
                "name": name,
                "op_type": op_type,
                "target": target,
                "region": region,
                "macs": placement.macs[name] if target != "removed" else 0,
                "reasons": why,
            }
        )
    return nodes


def _summary(
    nodes: list[dict[str, Any]],
    border: list[dict[str, Any]],
    region_records: list[dict[str, Any]],
    macs_on_akida: int,
) -> dict[str, int]:
    counts = Counter(node["target"] for node in nodes)
    macs_total = sum(node["macs"] for node in nodes)
    return {
        "nodes_total": len(nodes),
        "nodes_on_akida": counts["akida"],
        "nodes_on_cpu": counts["cpu"],
        "nodes_removed": counts["removed"],
        "border_nodes_added": len(border),
        "macs_total": macs_total,
        "macs_on_akida": macs_on_akida,
        "macs_on_cpu": macs_total - macs_on_akida,
        "regions": len(region_records),
        "hardware_passes": sum(r["passes"] or 0 for r in region_records),
        "transfer_bytes": sum(r["input"]["bytes"] + r["output"]["bytes"] for r in region_records),
    }


def _diagnostic_rows(diagnostics: Iterable[Diagnostic]) -> list[dict[str, Any]]:
    return [
        {
            "severity": d.severity,
            "code": d.code,
            "message": d.message,
            "node": d.node,
            "hint": d.hint,
        }
        for d in diagnostics
    ]


def build_report(
    graph: Graph,
    analyses: dict[str, Any],
    original_nodes: Sequence[tuple[str, str]],
    device: Device,
    *,
    stage: str,
    diagnostics: Iterable[Diagnostic] = (),
    regions: Sequence[Region] | None = None,
    host: HostRate | None = None,
) -> dict[str, Any]:
    """The report as plain data (JSON-ready, deterministic).

    `original_nodes` is [(name, op_type)] of the input model's nodes in order; `device` the
    configuration assumed; `stage` "analyze" (legality and partition only) or "compile";
    `regions` the Akida regions the hybrid model runs (default: `analyses["regions"]`).
    Shares count the Transpose and Q/DQ nodes added at region borders as CPU work.
    """
    regions = list(analyses.get("regions", []) if regions is None else regions)
    placement = _placement(graph, regions, analyses.get("decisions", {}))
    nodes = _node_rows(original_nodes, placement)
    border = _border_nodes(graph, regions)
    region_records = [_region_record(region) for region in regions]
    summary = _summary(nodes, border, region_records, placement.macs_on_akida)
    executed = summary["nodes_on_akida"] + summary["nodes_on_cpu"] + len(border)
    report: dict[str, Any] = {
        "schema_version": REPORT_SCHEMA_VERSION,
        "stage": stage,
        "device": {"name": device.name, "description": device.describe()},
        "summary": summary,
        "shares": {
            "nodes": _shares(summary["nodes_on_akida"], executed),
            "macs": _shares(placement.macs_on_akida, summary["macs_total"]),
        },
        "op_types": _op_type_rows(nodes, border),
        "regions": region_records,
        "border_nodes": border,
        "nodes": nodes,
        "diagnostics": _diagnostic_rows(diagnostics),
    }
    if "fidelity" in analyses:
        report["fidelity"] = analyses["fidelity"]
    report["estimate"] = model_estimate(
        analyses, device, regions, region_records, cpu=cpu_work(graph, regions), host=host
    )
    return report


def cpu_work(graph: Graph, regions: Sequence[Region]) -> CpuWork:
    """What the model's own ops outside every region compute per inference: their MACs, the
    elements they write other than by MACs, and how many they are. Border nodes (Transpose,
    Q/DQ: no ONNX origin) are left out: their cost is the transfer's, and `quantize` adds
    some of them only at compile time, where the report and `device` must agree with it."""
    placed = {id(op) for region in regions for op in region.ops}
    macs = elements = nodes = 0
    for op in graph.ops:
        if id(op) in placed or not op.origin:
            continue
        nodes += 1
        op_mac_count = op_macs(op)
        macs += op_mac_count
        if op_mac_count:
            continue
        for value in op.outputs:
            dims = [d if isinstance(d, int) and d > 0 else 1 for d in value.type.shape or ()]
            elements += math.prod(dims)
    return CpuWork(macs, elements, nodes)


def estimate_inputs(
    analyses: dict[str, Any], regions: Sequence[Region], region_records: Sequence[dict[str, Any]]
) -> list[RegionCost] | None:
    """The estimator's view of the regions (layers with their footprints, transfer bytes), or
    None when no allocation ran (a custom pipeline without `allocate`)."""
    footprints = analyses.get("op_footprints")
    if footprints is None or any(id(op) not in footprints for r in regions for op in r.ops):
        return None
    return [
        RegionCost(
            region.index,
            [(op.display_name, footprints[id(op)]) for op in region.ops],
            record["input"]["bytes"],
            record["output"]["bytes"],
        )
        for region, record in zip(regions, region_records, strict=True)
    ]


def model_estimate(
    analyses: dict[str, Any],
    device: Device,
    regions: Sequence[Region],
    region_records: Sequence[dict[str, Any]],
    *,
    cpu: CpuWork,
    host: HostRate | None = None,
) -> dict[str, Any] | None:
    """The `estimate` object of the report (None without an allocation)."""
    inputs = estimate_inputs(analyses, regions, region_records)
    if inputs is None:
        return None
    return estimate(inputs, cpu, device, host or DEFAULT_HOST)


# ------------------------------------------------------------------------------------- nodes
def _cpu_reasons(op: Op, decisions: dict[str, Decision]) -> list[dict[str, str]]:
    """Every recorded reason why `op` runs on the CPU (legalize, fuse and partition record them
    per ONNX name); a fallback sentence when no pass recorded one."""
    decision = decisions.get(op.origin[0])
    if decision is not None and decision.target == "cpu" and decision.violations:
        return [{"code": v.code, "message": v.message, "hint": v.hint} for v in decision.violations]
    kind = op.op_type if op.dialect == "onnx" else op.kind
    return [
        {
            "code": "AK-NOT-MAPPED",
            "message": f"{kind} '{op.display_name}' is outside every Akida region of this "
            "compile (the pipeline placed or quantized no region for it)",
            "hint": "run the default pipeline, which legalizes, fuses, partitions and quantizes",
        }
    ]


def _removed_reason(name: str, op_type: str) -> dict[str, str]:
    return {
        "code": "AK-FOLDED",
        "message": f"{op_type} '{name}' was removed: folded away or merged by an earlier rewrite "
        "(identity, dropout, constant folding)",
        "hint": "nothing to do: it costs nothing at run time",
    }


def _shares(on_akida: int, total: int) -> dict[str, float]:
    """{akida, cpu} fractions of `total` that add up to exactly 1 (both 0 when `total` is 0)."""
    if total == 0:
        return {"akida": 0.0, "cpu": 0.0}
    akida = round(on_akida / total, SHARE_DECIMALS)
    return {"akida": akida, "cpu": round(1.0 - akida, SHARE_DECIMALS)}


def _op_type_rows(
    nodes: list[dict[str, Any]], border: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    per_type: dict[str, Counter[str]] = {}
    for node in nodes:
        per_type.setdefault(node["op_type"], Counter())[node["target"]] += 1
    for node in border:
        per_type.setdefault(node["op_type"], Counter())["added"] += 1
    return [
        {
            "op_type": op_type,
            "akida": count["akida"],
            "cpu": count["cpu"],
            "removed": count["removed"],
            "border_added": count["added"],
        }
        for op_type, count in sorted(per_type.items())
    ]


# ----------------------------------------------------------------------------------- regions
def _static(shape: Sequence[int | None] | None) -> bool:
    return shape is not None and all(isinstance(d, int) for d in shape)


def _itemsize(dtype: str) -> int:
    try:
        return dtype_to_numpy(dtype).itemsize
    except (KeyError, ValueError):
        return 0


def _region_input_dtype(region: Any) -> str:
    """The dtype `quantize` gives a region input: uint8 images for an input convolution, int8
    otherwise."""
    return "u8" if region.ops and region.ops[0].kind == "akida.input_conv2d" else "i8"


def _region_output_dtype(value: Value) -> str:
    """The dtype `quantize` gives a region output: raw int32 sums unless the last layer is
    activated (then int8, or uint8 for activations of 4 bits or fewer)."""
    producer = value.producer
    if producer is None or producer.attrs.get("act") != "relu":
        return "i32"
    return "u8" if int(producer.attrs.get("abits", 8)) <= 4 else "i8"  # type: ignore[arg-type]


def _transfer(value: Value | None, predicted_dtype: str) -> dict[str, Any]:
    """A value crossing CPU↔Akida: its shape and integer dtype (predicted before quantize)."""
    if value is None:
        return {
            "value": None,
            "shape": [],
            "layout": None,
            "dtype": None,
            "bytes": 0,
            "predicted": False,
        }
    predicted = value.type.dtype not in QUANTIZED_DTYPES
    dtype = predicted_dtype if predicted else value.type.dtype
    shape = [int(d) for d in value.type.shape or ()]  # type: ignore[arg-type]
    return {
        "value": value.name,
        "shape": shape,
        "layout": value.type.layout,
        "dtype": dtype_to_numpy(dtype).name,
        "bytes": math.prod(shape) * _itemsize(dtype),
        "predicted": predicted,
    }


def _region_record(region: Region) -> dict[str, Any]:
    layers: list[dict[str, Any]] = []
    for op in region.ops:
        nps = op.annotations.get("np")
        layers.append(
            {
                "name": op.display_name,
                "kind": op.op_type,
                "nodes": list(op.origin),
                "macs": op_macs(op),
                "nps": as_ints(nps) if isinstance(nps, list) else None,
            }
        )
    allocated = all(layer["nps"] is not None for layer in layers)
    output_dtype = _region_output_dtype(region.output) if region.output is not None else "i32"
    return {
        "index": region.index,
        "layers": layers,
        "starts_because": region.starts_because,
        "ends_because": region.ends_because,
        "notes": list(region.notes),
        "input": _transfer(region.input, _region_input_dtype(region)),
        "output": _transfer(region.output, output_dtype),
        "macs": sum(layer["macs"] for layer in layers),
        "nps": sum(len(layer["nps"]) for layer in layers) if allocated else None,
        "passes": len({op.annotations.get("pass", 0) for op in region.ops}) if allocated else None,
        "weight_bytes_reloaded": _reloaded_bytes(region) if allocated else None,
    }


def _reloaded_bytes(region: Region) -> int:
    """Weight bytes loaded every inference: all of the program's when it runs in more than one
    hardware pass (each pass overwrites the previous one's weights), none for a single pass."""
    if len({op.annotations.get("pass", 0) for op in region.ops}) < 2:
        return 0
    return sum(_weight_bytes(op) for op in region.ops)


def _weight_bytes(op: Op) -> int:
    from akidac.ir.akida_candidates import describe_akida_op
    from akidac.target.footprint import layer_weight_bits

    return -(-layer_weight_bits(describe_akida_op(op)) // 8)


def _border_nodes(graph: Graph, regions: Sequence[Region]) -> list[dict[str, Any]]:
    """The ops without an ONNX origin (compiler-added, CPU work), each with the region whose
    input or output it converts; then, for regions not yet quantized, the QuantizeLinear and
    DequantizeLinear (and per-channel Mul) that `quantize` will add."""
    side_of: dict[int, tuple[int, str]] = {}
    for region in regions:
        value = region.input
        while value is not None and value.producer is not None:
            op = value.producer
            if op.origin or op.dialect != "onnx" or not _converts_input(op):
                break
            side_of[id(op)] = (region.index, "input")
            value = op.inputs[0] if op.inputs else None
        pending = list(region.output.users) if region.output is not None else []
        while pending:
            op = pending.pop()
            if op.origin or op.dialect != "onnx" or _converts_input(op) or id(op) in side_of:
                continue
            side_of[id(op)] = (region.index, "output")
            pending.extend(user for out in op.outputs for user in out.users)
    border = []
    for op in graph.ops:
        if op.origin or op.dialect != "onnx":
            continue
        region_index, side = side_of.get(id(op), (None, None))
        border.append(_border_record(op.outputs[0].name, op.op_type, region_index, side, False))
    per_axis = graph.opset_imports.get("", 0) >= PER_AXIS_DEQUANTIZE_OPSET
    for region in regions:
        x, out = region.input, region.output
        if x is not None and x.type.dtype not in QUANTIZED_DTYPES:
            border.append(_border_record(f"{x.name}_q", "QuantizeLinear", region.index, "input"))
        if out is not None and out.type.dtype not in QUANTIZED_DTYPES:
            border.append(
                _border_record(f"{out.name}_dq", "DequantizeLinear", region.index, "output")
            )
            # int32 sums are scaled per channel: by a per-axis DequantizeLinear for outputs of
            # rank 2 or less from opset 13, else by a Mul after it (as `quantize` does)
            if _region_output_dtype(out) == "i32" and not (per_axis and (out.type.rank or 0) <= 2):
                border.append(_border_record(f"{out.name}_scaled", "Mul", region.index, "output"))
    return border


def _converts_input(op: Op) -> bool:
    """Whether a compiler-added op prepares a region input (QuantizeLinear, Transpose to NHWC)
    rather than converting a region output back (DequantizeLinear, Mul, Transpose to NCHW)."""
    if op.op_type == "QuantizeLinear":
        return True
    return op.op_type == "Transpose" and op.outputs[0].type.layout == "NHWC"


def _border_record(
    name: str, op_type: str, region: int | None, side: str | None, predicted: bool = True
) -> dict[str, Any]:
    return {
        "name": name,
        "op_type": op_type,
        "region": region,
        "side": side,
        "predicted": predicted,
    }
