"""The compatibility report: per ONNX node where it runs and why, plus a summary.

Built from the legalize/fuse/partition decisions in the pass context. Border nodes that the
compiler adds (Transpose, QuantizeLinear, DequantizeLinear, CPU max pooling) count as CPU work.
The JSON form carries `schema_version`; every field is documented in docs/report-schema.md.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from akidac.ir.graph import Graph

REPORT_SCHEMA_VERSION = 1
BORDER_OPS = {"onnx.Transpose", "onnx.QuantizeLinear", "onnx.DequantizeLinear"}


def build_report(
    graph: Graph, analyses: dict[str, Any], original_nodes: list[tuple[str, str]], device_name: str
) -> dict[str, Any]:
    """The report as plain data. `original_nodes` is [(name, op_type)] of the input model."""
    decisions = analyses.get("decisions", {})
    region_of_node: dict[str, int] = {}
    for op in graph.ops:
        if op.dialect == "akida" and "region" in op.annotations:
            for name in op.origin:
                region_of_node[name] = int(op.annotations["region"])  # type: ignore[arg-type]
    nodes = []
    for name, op_type in original_nodes:
        decision = decisions.get(name)
        on_akida = name in region_of_node
        reasons = []
        if decision is not None and not on_akida:
            reasons = [
                {"code": v.code, "message": v.message, "hint": v.hint} for v in decision.violations
            ]
        if not on_akida and not reasons:
            reasons = (
                [
                    {
                        "code": "AK-FOLDED",
                        "message": f"{op_type} '{name}' was folded away "
                        "or merged by an earlier rewrite",
                        "hint": "",
                    }
                ]
                if decision is None
                else []
            )
        nodes.append(
            {
                "name": name,
                "op_type": op_type,
                "target": "akida" if on_akida else ("removed" if decision is None else "cpu"),
                "region": region_of_node.get(name),
                "reasons": reasons,
            }
        )
    added = [op for op in graph.ops if op.created_by != "frontend" and op.dialect == "onnx"]
    regions = analyses.get("regions", [])
    per_type: Counter[tuple[str, str]] = Counter((n["op_type"], n["target"]) for n in nodes)
    on_akida = sum(1 for n in nodes if n["target"] == "akida")
    removed = sum(1 for n in nodes if n["target"] == "removed")
    return {
        "schema_version": REPORT_SCHEMA_VERSION,
        "device": device_name,
        "summary": {
            "nodes_total": len(nodes),
            "nodes_on_akida": on_akida,
            "nodes_on_cpu": len(nodes) - on_akida - removed,
            "nodes_removed": removed,
            "border_nodes_added": len(added),
            "regions": len(regions),
        },
        "op_types": [
            {"op_type": t, "target": target, "count": c}
            for (t, target), c in sorted(per_type.items())
        ],
        "regions": [
            {
                "index": r.index,
                "layers": [op.display_name for op in r.ops],
                "starts_because": r.starts_because,
                "ends_because": r.ends_because,
                "notes": list(r.notes),
            }
            for r in regions
        ],
        "nodes": nodes,
    }
