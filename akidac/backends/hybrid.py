"""Compiled IR → hybrid ONNX model: CPU ops verbatim, each Akida region one `AkidaOp` node.

The Q/DQ and Transpose nodes the passes placed at region borders are ordinary ONNX nodes, so
onnxruntime runs them. Every region's program is encoded and embedded in its node; a node
attribute and the model metadata say which original nodes each `AkidaOp` replaced.
"""

from __future__ import annotations

import json

import onnx
from onnx import helper, numpy_helper

from akidac.backends.akida.akida_node import (
    AKIDA_DOMAIN,
    AKIDA_OPSET,
    DYNAMIC_BATCH_KEY,
    make_akida_node,
)
from akidac.backends.akida.codegen import region_program
from akidac.backends.akida.program import Program, encode_program
from akidac.ir.analyses import Region
from akidac.ir.graph import Graph, Value
from akidac.ir.onnx_export import NodeEmitter, emit_op, type_value_info, value_info


def build_programs(
    regions: list[Region], device: str, np_assignment: dict[str, list[int]] | None = None
) -> list[Program]:
    """One program per region, in region order, each with its own layers' NPs only."""
    assignment = np_assignment or {}
    programs = []
    for region in regions:
        own = {
            op.display_name: assignment[op.display_name]
            for op in region.ops
            if op.display_name in assignment
        }
        programs.append(region_program(region.ops, region.input, device, own))  # type: ignore[arg-type]
    return programs


def build_hybrid_model(
    graph: Graph,
    regions: list[Region],
    programs: list[Program],
    source: onnx.ModelProto | None = None,
) -> onnx.ModelProto:
    """The hybrid model of a compiled graph (regions quantized, programs built).

    With `source` (the float model as the user gave it), inputs whose batch was dynamic there
    keep a symbolic batch (`mark_dynamic_batch`), so that `HybridSession` runs any batch."""
    region_of = {id(op): region for region in regions for op in region.ops}
    emitted: set[int] = set()
    emitter = NodeEmitter(opset=graph.opset_imports.get(""))
    typed: list[Value] = []  # every value a node emits: its type goes into value_info
    for op in graph.ops:
        region = region_of.get(id(op))
        if region is None:
            emit_op(op, emitter)
            typed.extend(op.outputs)
            continue
        if region.index in emitted:
            continue
        emitted.add(region.index)
        program = programs[region.index]
        replaced = [name for member in region.ops for name in member.origin]
        out = region.output
        assert region.input is not None and out is not None
        emitter.nodes.append(
            make_akida_node(
                f"akida_region_{region.index}",
                region.input.name,
                out.name,
                encode_program(program),
                replaced,
            )
        )
        typed.append(out)
    outputs = {v.name for v in graph.outputs}
    value_infos = [
        value_info(v) for v in typed if v.name not in outputs and v.type.dtype != "unknown"
    ]
    used = {name for node in emitter.nodes for name in node.input}
    initializers = [
        numpy_helper.from_array(v.const, v.name)  # type: ignore[arg-type]
        for v in graph.constants.values()
        if v.name in used
    ]
    onnx_graph = helper.make_graph(
        emitter.nodes,
        graph.name,
        [value_info(v) for v in graph.inputs],
        [type_value_info(v.name, v.type) for v in graph.outputs],
        initializers + emitter.initializers,
        value_info=value_infos,
    )
    opsets = dict(graph.opset_imports)
    opsets[AKIDA_DOMAIN] = AKIDA_OPSET
    model = helper.make_model(
        onnx_graph,
        opset_imports=[helper.make_opsetid(d, v) for d, v in sorted(opsets.items())],
        producer_name="akidac",
    )
    from akidac import __version__

    model.producer_version = __version__
    model.ir_version = min(model.ir_version, 10)
    metadata = dict(graph.metadata)
    metadata["akidac.regions"] = json.dumps(
        [
            {"node": f"akida_region_{r.index}", "replaced": [n for op in r.ops for n in op.origin]}
            for r in regions
        ],
        sort_keys=True,
    )
    for key, text in sorted(metadata.items()):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, text
    if source is not None:
        mark_dynamic_batch(model, source)
    return model


def _batch_is_dynamic(value: onnx.ValueInfoProto) -> bool:
    """Dim 0 of a tensor of rank ≥ 2 is symbolic, unknown, -1 or 0 (exporters' "dynamic")."""
    tensor = value.type.tensor_type
    if not value.type.HasField("tensor_type") or not tensor.HasField("shape"):
        return False
    dims = tensor.shape.dim
    return len(dims) >= 2 and not (dims[0].HasField("dim_value") and dims[0].dim_value > 0)


def _static_batch(value: onnx.ValueInfoProto) -> int | None:
    tensor = value.type.tensor_type
    if not value.type.HasField("tensor_type") or not tensor.HasField("shape"):
        return None
    dims = tensor.shape.dim
    if len(dims) < 2 or not dims[0].HasField("dim_value") or dims[0].dim_value <= 0:
        return None
    return int(dims[0].dim_value)


def _make_symbolic_batch(value: onnx.ValueInfoProto) -> None:
    dim = value.type.tensor_type.shape.dim[0]
    dim.Clear()
    dim.dim_param = "N"


def mark_dynamic_batch(hybrid: onnx.ModelProto, source: onnx.ModelProto) -> onnx.ModelProto:
    """Give the hybrid model back the dynamic batch of the float model `source` (in place).

    The compiler fixes a dynamic batch to 1 (Akida programs are compiled for one sample), so
    the hybrid model's values are typed for batch 1. For every graph input whose batch was
    dynamic in `source`, this writes dim 0 as the symbol 'N', records the compiled batch in
    the metadata (`DYNAMIC_BATCH_KEY`) and makes dim 0 of the graph outputs symbolic where the
    float model's was not a fixed size; inner values (value_info) keep the compiled batch, as
    the programs do. `HybridSession` then runs any batch: whole, when every CPU part is made
    of per-sample operators, else one compiled batch at a time, outputs concatenated.
    """
    initializers = {t.name for t in source.graph.initializer}
    original = {v.name: v for v in source.graph.input if v.name not in initializers}
    compiled: dict[str, int] = {}
    for value in hybrid.graph.input:
        before = original.get(value.name)
        batch = _static_batch(value)
        if before is not None and batch is not None and _batch_is_dynamic(before):
            compiled[value.name] = batch
            _make_symbolic_batch(value)
    if not compiled or len(set(compiled.values())) != 1:
        return hybrid
    batch = next(iter(compiled.values()))
    outputs = {v.name: v for v in source.graph.output}
    for value in hybrid.graph.output:
        before = outputs.get(value.name)
        fixed = before is not None and _static_batch(before) is not None
        if not fixed and _static_batch(value) == batch:
            _make_symbolic_batch(value)
    entry = hybrid.metadata_props.add()
    entry.key, entry.value = DYNAMIC_BATCH_KEY, json.dumps(compiled, sort_keys=True)
    return hybrid
