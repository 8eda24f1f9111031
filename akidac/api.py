"""The Python entry points: `compile_model`, `analyze`, and re-exports of the runtime.

`compile_model` runs frontend → pass pipeline → backends → hybrid model and returns a
`CompileResult`; it writes the output file atomically (temporary file, then rename) so a
failure never leaves half a file behind.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnx

from akidac.backends.akida.program import Program
from akidac.errors import UsageError
from akidac.frontend.importer import import_validated
from akidac.frontend.loader import load_model
from akidac.ir.diagnostics import DiagnosticSink
from akidac.ir.graph import Graph
from akidac.passes import (
    DEFAULT_PIPELINE,
    CompileOptions,
    Pass,
    PassContext,
    PassManager,
    VerifyInstrument,
)
from akidac.passes.calibration import validate_sample_options
from akidac.passes.manager import Instrument
from akidac.report.compat import assumed_device, build_report
from akidac.report.tagged import tag_model
from akidac.runtime.builder import build_hybrid_model, build_programs

UNBOUNDED_NODES = 1 << 20
ANALYZE_PIPELINE = ("import-cleanup", "canonicalize", "legalize", "fuse", "partition")


@dataclass
class CompileResult:
    """Everything one compile produced."""

    model: onnx.ModelProto
    graph: Graph
    programs: list[Program]
    report: dict[str, Any]
    diagnostics: DiagnosticSink
    analyses: dict[str, Any] = field(default_factory=dict)


def _where(model: object) -> str:
    """How messages name the model: its path, or '<model>' for an in-memory one."""
    return str(model) if isinstance(model, str | os.PathLike) else "<model>"


def _original_nodes(proto: onnx.ModelProto) -> list[tuple[str, str]]:
    return [
        (node.name or f"{node.op_type}_{i}", node.op_type)
        for i, node in enumerate(proto.graph.node)
        if node.op_type != "Constant"
    ]


def compile_model(
    model: str | os.PathLike[str] | onnx.ModelProto,
    output: str | os.PathLike[str] | None = None,
    *,
    options: CompileOptions | None = None,
    input_shapes: dict[str, tuple[int, ...]] | None = None,
    passes: Sequence[Pass | str] | None = None,
    instruments: Sequence[Instrument] = (),
    verify_each: bool = True,
) -> CompileResult:
    """Compile an ONNX model into a hybrid model (and write it to `output` if given).

    The IR verifier runs after every pass unless `verify_each=False` (it costs about 9% of
    the compile time)."""
    options = options or CompileOptions()
    validate_sample_options(options)
    ctx = PassContext(options=options)
    proto = load_model(model)
    graph = import_validated(proto, input_shapes, ctx.sink, _where(model))
    instruments = list(instruments)
    if verify_each and not any(isinstance(i, VerifyInstrument) for i in instruments):
        # measured: +9% compile time on an 800-node model (bench/compile_time.py), so on
        instruments.append(VerifyInstrument())
    manager = PassManager(list(passes or DEFAULT_PIPELINE), instruments)
    graph = manager.run(graph, ctx).graph
    regions = ctx.analyses.get("regions", [])
    if regions and not all(op.attrs.get("quantized") for r in regions for op in r.ops):
        regions = []  # a custom pipeline without quantize: everything runs on the CPU
    programs = build_programs(regions, options.device, ctx.analyses.get("np_assignment"))
    hybrid = build_hybrid_model(graph, regions, programs)
    if regions and options.fidelity_samples > 0:
        ctx.analyses["fidelity"] = _measure_fidelity(proto, hybrid, graph, options)
    report = build_report(
        graph,
        ctx.analyses,
        _original_nodes(proto),
        ctx.analyses.get("device") or assumed_device(options.device, options.sram_kib),
        stage="compile",
        diagnostics=ctx.sink.items,
        regions=regions,
    )
    if output is not None:
        write_model_atomically(hybrid, output)
    return CompileResult(hybrid, graph, programs, report, ctx.sink, ctx.analyses)


def _measure_fidelity(
    proto: onnx.ModelProto, hybrid: onnx.ModelProto, graph: Graph, options: CompileOptions
) -> dict[str, Any]:
    """The fidelity figures of every output of the hybrid model against the float model
    (`akidac.runtime.compare`): SQNR, Pearson, top-1 agreement, max |error|, cosine."""
    from akidac.passes.calibration import fidelity_feeds
    from akidac.runtime.compare import measure_fidelity
    from akidac.runtime.session import HybridSession

    feeds, note = fidelity_feeds(graph, options, options.fidelity_samples)
    figures = measure_fidelity(proto, HybridSession(hybrid), feeds)
    keys = (
        "sqnr_db",
        "pearson",
        "top1_agreement",
        "max_abs_error",
        "cosine",
        "constant_sqnr_db",
    )
    outputs = [{"name": name, **{k: f[k] for k in keys}} for name, f in figures.items()]
    return {"samples": len(feeds), "note": note, "outputs": outputs}


def analyze(
    model: str | os.PathLike[str] | onnx.ModelProto,
    *,
    options: CompileOptions | None = None,
    input_shapes: dict[str, tuple[int, ...]] | None = None,
    tagged: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """The compatibility report without quantization (legality and partition only). With
    `tagged`, also write there a copy of the input model whose nodes carry the report's
    target, region and reasons as metadata (for Netron)."""
    options = options or CompileOptions()
    ctx = PassContext(options=options)
    device = assumed_device(options.device, options.sram_kib)
    proto = load_model(model)
    graph = import_validated(proto, input_shapes, ctx.sink, _where(model))
    graph = PassManager(list(ANALYZE_PIPELINE)).run(graph, ctx).graph
    report = build_report(
        graph,
        ctx.analyses,
        _original_nodes(proto),
        device,
        stage="analyze",
        diagnostics=ctx.sink.items,
    )
    if tagged is not None:
        write_model_atomically(tag_model(proto, report), tagged)
    return report


def estimate_device(
    model: str | os.PathLike[str] | onnx.ModelProto,
    *,
    input_shapes: dict[str, tuple[int, ...]] | None = None,
    sram_kib: int | None = None,
) -> dict[str, Any]:
    """The smallest device preset that holds every Akida program of the model, and the NPs
    each layer takes (legality, partition and allocation; no quantization)."""
    # allocate on a device too large to fail, so every layer's footprint is reported even
    # when no preset holds the model
    options = CompileOptions(device=f"custom:{UNBOUNDED_NODES}", sram_kib=sram_kib)
    ctx = PassContext(options=options)
    graph = import_validated(load_model(model), input_shapes, ctx.sink, _where(model))
    PassManager([*ANALYZE_PIPELINE, "allocate"]).run(graph, ctx)
    minimal = ctx.analyses.get("minimal_device")
    return {
        "minimal_device": minimal.describe() if minimal else None,
        "layers": {name: f.nps for name, f in sorted(ctx.analyses["footprints"].items())},
        "regions": len(ctx.analyses.get("regions", [])),
    }


def write_model_atomically(model: onnx.ModelProto, path: str | os.PathLike[str]) -> None:
    """Serialize to a temporary file beside `path`, then rename it into place."""
    write_bytes_atomically(model.SerializeToString(deterministic=True), path)


def write_json_atomically(data: Any, path: str | os.PathLike[str]) -> None:
    """Write JSON (sorted keys, deterministic) through a temporary file and a rename."""
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    write_bytes_atomically(text.encode(), path)


def write_bytes_atomically(data: bytes, path: str | os.PathLike[str]) -> None:
    """Write `data` to a temporary file beside `path` (mode from the umask, like a plain
    write), then rename it into place: a failure never leaves half a file behind."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise UsageError(f"output '{target}' is a folder; give a file name")
    if not folder.is_dir():
        raise UsageError(f"output '{target}': folder '{folder}' does not exist")
    handle, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp_name, 0o666 & ~umask)
        os.replace(temp_name, target)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
