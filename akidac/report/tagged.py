"""The tagged model: a copy of the input model whose nodes carry the report's verdicts.

Each node the report lists gets three `metadata_props` that Netron shows in its node panel:
`akidac.target` (akida, cpu or removed), `akidac.region` (the Akida region's index, empty when
the node runs on no region) and `akidac.reasons` (one `CODE: message` line per reason, empty on
Akida). Constant nodes, which the report does not list, are left as they are. Node metadata is
an IR-version-10 field, so an older model's IR version is raised to 10; nothing else changes.
"""

from __future__ import annotations

from typing import Any

import onnx

TARGET_KEY = "akidac.target"
REGION_KEY = "akidac.region"
REASONS_KEY = "akidac.reasons"
#: the first ONNX IR version with `NodeProto.metadata_props`.
NODE_METADATA_IR_VERSION = 10


def reasons_text(reasons: list[dict[str, str]]) -> str:
    """One `CODE: message` line per reason."""
    return "\n".join(f"{reason['code']}: {reason['message']}" for reason in reasons)


def tag_model(model: onnx.ModelProto, report: dict[str, Any]) -> onnx.ModelProto:
    """A copy of `model` with each reported node's target, region and reasons as node metadata.

    `report` must be the report of `model`: its `nodes` list the model's non-Constant nodes in
    graph order (`ValueError` otherwise).
    """
    tagged = onnx.ModelProto()
    tagged.CopyFrom(model)
    graph_nodes = [node for node in tagged.graph.node if node.op_type != "Constant"]
    entries = report["nodes"]
    if len(graph_nodes) != len(entries) or any(
        node.op_type != entry["op_type"] for node, entry in zip(graph_nodes, entries, strict=True)
    ):
        raise ValueError("the report does not describe this model's nodes")
    for node, entry in zip(graph_nodes, entries, strict=True):
        kept = [p for p in node.metadata_props if not p.key.startswith("akidac.")]
        del node.metadata_props[:]
        node.metadata_props.extend(kept)
        region = entry["region"]
        for key, value in (
            (TARGET_KEY, entry["target"]),
            (REGION_KEY, "" if region is None else str(region)),
            (REASONS_KEY, reasons_text(entry["reasons"])),
        ):
            node.metadata_props.add(key=key, value=value)
    tagged.ir_version = max(tagged.ir_version, NODE_METADATA_IR_VERSION)
    return tagged
