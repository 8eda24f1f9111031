"""The Python entry points: `compile_model`, `analyze`, and re-exports of the runtime.

`compile_model` runs frontend → pass pipeline → backends → hybrid model and returns a
`CompileResult`; it writes the output file atomically (temporary file, then rename) so a
failure never leaves half a file behind.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import onnx

from akidac.backends.akida.program import Program
from akidac.backends.hybrid import build_hybrid_model, build_programs
from akidac.errors import FallbackToCpu, UsageError
from akidac.frontend.importer import import_validated
from akidac.frontend.loader import load_model
from akidac.frontend.samples import SampleSet, sample_set, validate_sample_options
from akidac.ir.diagnostics import DiagnosticSink
from akidac.ir.graph import Graph
from akidac.output_files import write_bytes_atomically
from akidac.output_guard import Compiled, guard_outputs, guards_outputs, region_span
from akidac.passes import (
    DEFAULT_PIPELINE,
    CompileOptions,
    Pass,
    PassContext,
    PassManager,
    VerifyInstrument,
)
from akidac.passes.manager import Instrument
from akidac.report.compat import (
    assumed_device,
    build_report,
    cpu_work,
    estimate_inputs,
    op_macs,
)
from akidac.report.tagged import tag_model
from akidac.runtime.host_rate import MEASURED_HOST, measure_host_rate
from akidac.target.estimate import DEFAULT_HOST, HostRate
from akidac.target.estimate import estimate as estimate_cost

#: `report` and `device` allocate exactly as `compile` does (same NPs, same passes), without
#: quantizing.
#: version of `akidac device --json` (documented in docs/cli.md).
DEVICE_SCHEMA_VERSION = 1

ANALYZE_PIPELINE = (
    "import-cleanup",
    "canonicalize",
    "legalize",
    "fuse",
    "partition",
    "allocate",
)


@dataclass
class CompileResult:
    """Everything one compile produced. `steps`: seconds spent outside the passes' own timing
    (calibration within quantize, the fidelity guard, building the hybrid, measuring fidelity),
    summed over the compile rounds, for `--time-passes`."""

    model: onnx.ModelProto
    graph: Graph
    programs: list[Program]
    report: dict[str, Any]
    diagnostics: DiagnosticSink
    analyses: dict[str, Any] = field(default_factory=dict)
    steps: dict[str, float] = field(default_factory=dict)


class ProgressListener(Protocol):
    """What a compile tells about its long steps, for a progress display: a `phase` starts
    (with its number of steps, or None for a spinner), its text changes, or it advances."""

    def phase(self, description: str, total: int | None = None) -> None: ...

    def describe(self, description: str) -> None: ...

    def advance(self) -> None: ...


class _Silent:
    """The listener when nobody watches."""

    def phase(self, description: str, total: int | None = None) -> None:
        pass

    def describe(self, description: str) -> None:
        pass

    def advance(self) -> None:
        pass


@dataclass
class _PassProgress:
    """An instrument: after each pass, advance the round's phase and name the next pass."""

    listener: ProgressListener
    label: str
    names: list[str]

    def after_pass(self, index: int, pass_: Pass, result: Any, seconds: float) -> None:
        self.listener.advance()
        if index + 1 < len(self.names):
            self.listener.describe(f"{self.label}: {_activity(self.names[index + 1])}")


def _activity(name: str) -> str:
    return "quantize (calibrating)" if name == "quantize" else name


#: the steps of a compile outside the passes' own timing, in the order they run.
COMPILE_STEPS = (
    "calibration (in quantize)",
    "programs and fidelity guard",
    "hybrid model",
    "output guard",
    "fidelity measurement",
)


def _add_seconds(steps: dict[str, float], name: str, seconds: float) -> None:
    steps[name] = steps.get(name, 0.0) + seconds


def _where(model: object) -> str:
    """How messages name the model: its path, or '<model>' for an in-memory one."""
    return str(model) if isinstance(model, str | os.PathLike) else "<model>"


def _original_nodes(proto: onnx.ModelProto) -> list[tuple[str, str]]:
    return [
        (node.name or f"{node.op_type}_{i}", node.op_type)
        for i, node in enumerate(proto.graph.node)
        if node.op_type != "Constant"
    ]


#: compile rounds before giving up on moving nodes to the CPU: each round moves at least one
#: more node, and real models settle in two or three.
MAX_COMPILE_ROUNDS = 12
#: the last rounds of the fidelity guard send failing regions to the CPU whole (`_guard_regions`)
GUARD_WHOLE_REGION_ROUNDS = 3


def compile_model(
    model: str | os.PathLike[str] | onnx.ModelProto,
    output: str | os.PathLike[str] | None = None,
    *,
    options: CompileOptions | None = None,
    input_shapes: dict[str, tuple[int, ...]] | None = None,
    passes: Sequence[Pass | str] | None = None,
    instruments: Sequence[Instrument] = (),
    verify_each: bool = True,
    progress: ProgressListener | None = None,
) -> CompileResult:
    """Compile an ONNX model into a hybrid model (and write it to `output` if given).

    A compile never refuses a model for one layer: when quantization cannot express a layer, or
    the fidelity guard finds an Akida region too far from the float model
    (`options.min_region_sqnr`), those nodes are sent to the CPU with a reason code and the
    model is compiled again (`MAX_COMPILE_ROUNDS` at most). The IR verifier runs after every
    pass unless `verify_each=False` (it costs about 9% of the compile time). `progress` hears
    of every compile round, pass, guarded region and fidelity step (`ProgressListener`)."""
    options = options or CompileOptions()
    listener = progress or _Silent()
    steps: dict[str, float] = {}
    validate_sample_options(options)
    proto = load_model(model)
    instruments = list(instruments)
    if verify_each and not any(isinstance(i, VerifyInstrument) for i in instruments):
        # measured: +9% compile time on an 800-node model (bench/compile_time.py), so on
        instruments.append(VerifyInstrument())

    def compile_with(step_options: CompileOptions, timed: bool = True) -> Compiled:
        return _compile_rounds(
            proto,
            step_options,
            input_shapes,
            list(passes or DEFAULT_PIPELINE),
            _where(model),
            instruments,
            listener,
            steps if timed else {},  # the output guard's trial compiles count as its own time
        )

    compiled = compile_with(options)
    if guards_outputs(compiled, options):
        started = time.perf_counter()
        compiled = guard_outputs(
            proto, compiled, options, lambda trial: compile_with(trial, False), listener
        )
        _add_seconds(steps, "output guard", time.perf_counter() - started)
    graph, ctx, regions, programs, hybrid = compiled
    if regions and options.fidelity_samples > 0:
        started = time.perf_counter()
        ctx.analyses["fidelity"] = _measure_fidelity(proto, hybrid, graph, options, listener)
        _add_seconds(steps, "fidelity measurement", time.perf_counter() - started)
        _warn_low_output_fidelity(ctx, regions, options)
    report = build_report(
        graph,
        ctx.analyses,
        _original_nodes(proto),
        ctx.analyses.get("device") or assumed_device(options.device, options.sram_kib),
        stage="compile",
        diagnostics=ctx.sink.items,
        regions=regions,
    )
    report["provenance"] = provenance(proto, graph, options)
    if output is not None:
        write_model_atomically(hybrid, output)
    ordered = {name: steps[name] for name in COMPILE_STEPS if name in steps}
    return CompileResult(hybrid, graph, programs, report, ctx.sink, ctx.analyses, ordered)


def _compile_rounds(
    proto: onnx.ModelProto,
    options: CompileOptions,
    input_shapes: dict[str, tuple[int, ...]] | None,
    pipeline: list[Pass | str],
    where: str,
    instruments: Sequence[Instrument],
    listener: ProgressListener,
    steps: dict[str, float],
) -> Compiled:
    """One compile of `proto` with `options`: the rounds of passes and the region fidelity guard
    (`run_rounds`), the programs and the hybrid model; no output fidelity figures yet."""

    def emit_and_guard(graph: Graph, ctx: PassContext) -> dict[str, tuple[str, str]]:
        started = time.perf_counter()
        regions = _quantized_regions(ctx.analyses.get("regions", []), ctx)
        programs = build_programs(regions, options.device, ctx.analyses.get("np_assignment"))
        ctx.analyses["emitted"] = (regions, programs)
        # the guard splits failing regions layer by layer while rounds remain; in the last
        # rounds it sends failing regions whole, so the rounds always end
        split = ctx.analyses["compile_round"] < MAX_COMPILE_ROUNDS - GUARD_WHOLE_REGION_ROUNDS
        listener.phase(f"fidelity guard: {len(regions)} Akida region(s)", len(regions))
        moved = _guard_regions(
            ctx, regions, programs, options, split=split, on_region=listener.advance
        )
        _add_seconds(steps, "programs and fidelity guard", time.perf_counter() - started)
        return moved

    graph, ctx = run_rounds(
        proto,
        input_shapes,
        options,
        pipeline,
        where,
        instruments=instruments,
        check=emit_and_guard,
        progress=listener,
        steps=steps,
    )
    regions, programs = ctx.analyses.pop("emitted")
    # the float session of the last calibration: only the guard replays it
    ctx.analyses.pop("observation", None)
    started = time.perf_counter()
    listener.phase("building the hybrid model")
    hybrid = build_hybrid_model(graph, regions, programs, source=proto)
    _add_seconds(steps, "hybrid model", time.perf_counter() - started)
    return Compiled(graph, ctx, regions, programs, hybrid)


def _quantized_regions(regions: list[Any], ctx: PassContext) -> list[Any]:
    """The Akida regions to emit: all of them once every layer in them is quantized, else none.

    A pipeline without `quantize` after `partition` leaves Akida candidates in float, which no
    program can hold: they run on the CPU, and the warning AK-UNQUANTIZED says so (the regions
    used to vanish without a word)."""
    if all(op.attrs.get("quantized") for region in regions for op in region.ops):
        return regions
    layers = sum(len(region.ops) for region in regions)
    ctx.sink.warning(
        "AK-UNQUANTIZED",
        f"the pass pipeline left {len(regions)} Akida region(s) ({layers} layer(s)) "
        "unquantized, so they run on the CPU (add 'quantize' after 'partition' to the "
        "pipeline to run them on Akida)",
    )
    return []


#: CompileOptions fields a report's provenance records (the samples themselves are not).
PROVENANCE_OPTIONS = (
    "device",
    "sram_kib",
    "wbits",
    "abits",
    "num_samples",
    "seed",
    "calibration",
    "percentile",
    "weight_observer",
    "samples_dir",
    "quant_config",
    "fidelity_samples",
    "keep_on_cpu",
    "min_region_sqnr",
    "min_output_sqnr",
    "strict_device",
)


def provenance(proto: onnx.ModelProto, graph: Graph, options: CompileOptions) -> dict[str, Any]:
    """What a report was made from, so two reports can be compared safely: akidac's version,
    the model's sha256 (of its deterministic serialization), the static input shapes used, and
    the options (whether samples were given, not their content)."""
    import hashlib

    from akidac import __version__

    digest = hashlib.sha256(proto.SerializeToString(deterministic=True)).hexdigest()
    values = {name: getattr(options, name) for name in PROVENANCE_OPTIONS}
    values["samples_given"] = options.samples is not None
    return {
        "akidac_version": __version__,
        "model_sha256": digest,
        "input_shapes": [{"name": v.name, "shape": list(v.type.dims)} for v in graph.inputs],
        "options": [
            {
                "name": name,
                "value": json.dumps(value if not isinstance(value, tuple) else list(value)),
            }
            for name, value in sorted(values.items())
        ],
    }


def pass_context(options: CompileOptions | None = None) -> PassContext:
    """A `PassContext` as `compile_model` builds it: `options` (their sample options checked,
    a `UsageError` otherwise) and the calibration samples for `quantize` — `options.samples`,
    `options.samples_dir` or seeded random inputs (`akidac.frontend.samples.sample_set`), loaded
    when quantize asks, from the graph's inputs as quantize sees them."""
    options = options or CompileOptions()
    validate_sample_options(options)

    def load_samples(graph: Graph) -> SampleSet:
        return sample_set(graph, options)

    return PassContext(options=options, calibration=load_samples)


def run_rounds(
    proto: onnx.ModelProto,
    input_shapes: dict[str, tuple[int, ...]] | None,
    options: CompileOptions,
    pipeline: Sequence[Pass | str],
    where: str,
    *,
    instruments: Sequence[Instrument] = (),
    check: Any = None,
    progress: ProgressListener | None = None,
    steps: dict[str, float] | None = None,
) -> tuple[Graph, PassContext]:
    """Import and run `pipeline` until no node has to move to the CPU.

    A pass that raises `FallbackToCpu` (quantization cannot express a layer, a layer fits no
    NP) and a `check(graph, ctx)` that returns nodes (the fidelity guard) name ONNX nodes that
    must run on the CPU: they become `cpu_overrides` (with their reason code and sentence) and
    the model is imported and compiled again, at most `MAX_COMPILE_ROUNDS` times. Every round
    moves at least one more node, so the loop ends. `ctx.analyses["cpu_fallback"]` lists them.
    `progress` hears of each round and pass; `steps` gathers the calibration seconds.
    """
    listener = progress or _Silent()
    names = [p if isinstance(p, str) else p.name for p in pipeline]
    overrides: dict[str, tuple[str, str]] = dict(options.cpu_overrides)
    for round_index in range(MAX_COMPILE_ROUNDS):
        ctx = pass_context(replace(options, cpu_overrides=dict(overrides)))
        ctx.analyses["compile_round"] = round_index
        label = f"compile round {round_index + 1}"
        listener.phase(f"{label}: import", len(names))
        graph = import_validated(proto, input_shapes, ctx.sink, where)
        if names:
            listener.describe(f"{label}: {_activity(names[0])}")
        watch = _PassProgress(listener, label, names)
        try:
            graph = PassManager(list(pipeline), [*instruments, watch]).run(graph, ctx).graph
            moved = check(graph, ctx) if check is not None else {}
        except FallbackToCpu as fallback:
            moved = fallback.nodes
            if not set(moved) - set(overrides):
                raise  # nothing new to move: a hand-made pipeline, or a bug
        finally:
            if steps is not None and "calibration_seconds" in ctx.analyses:
                _add_seconds(
                    steps, "calibration (in quantize)", ctx.analyses["calibration_seconds"]
                )
        if not moved:
            ctx.analyses["cpu_fallback"] = {
                name: {"code": code, "message": sentence}
                for name, (code, sentence) in sorted(overrides.items())
            }
            return graph, ctx
        overrides.update(moved)
        # the next round imports afresh: drop this round's graph, programs and float session
        # first, so two rounds never hold memory at once
        del graph, ctx
    raise FallbackToCpu({k: v for k, v in overrides.items() if k not in options.cpu_overrides})


def _guard_threshold(region: Any, options: CompileOptions) -> float | None:
    """`min_region_sqnr`, or for a region with a 4-bit layer `min_region_sqnr_4bit` (capped)."""
    threshold = options.min_region_sqnr
    if threshold is None:
        return None
    if any(op.int_attr(key, 8) <= 4 for op in region.ops for key in ("abits", "wbits")):
        return min(threshold, options.min_region_sqnr_4bit)
    return threshold


def _guard_regions(
    ctx: PassContext,
    regions: list[Any],
    programs: list[Program],
    options: CompileOptions,
    *,
    split: bool = True,
    on_region: Any = None,
) -> dict[str, tuple[str, str]]:
    """The fidelity guard: ONNX nodes to send to the CPU because an Akida region's own quantized
    output scores below its threshold (`_guard_threshold`) against the float model on the
    calibration samples, with the AK-REGION-FIDELITY sentence naming the figure.

    With `split`, a failing region of several layers gives up only the layer where it first
    drifts below the threshold (`first_divergent_layer`): the layers before it hold, and those
    after it start a new region, with a fresh border, that the next round measures again. A
    region of one layer, or (without `split`, in the last rounds) any failing region, goes to
    the CPU whole. Measured figures go to `ctx.analyses["region_sqnr"]` (region index → dB)."""
    from akidac.backends.akida.region_fidelity import first_divergent_layer

    figures = _region_figures(ctx, regions, programs)
    layer_figures: dict[int, dict[int, float]] = {}
    if split:
        failing = [
            (region, program)
            for region, program in zip(regions, programs, strict=True)
            if len(region.ops) > 1
            and region.index in figures
            and (threshold := _guard_threshold(region, options)) is not None
            and figures[region.index] < threshold
        ]
        layer_figures = _layer_figures(ctx, failing)
    rejected: dict[str, tuple[str, str]] = {}
    for region in regions:
        if on_region is not None:
            on_region()
        if region.index not in figures:
            continue
        sqnr = figures[region.index]
        threshold = _guard_threshold(region, options)
        if threshold is None or sqnr >= threshold:
            continue
        region_words = (
            f"Akida region {region.index} ({region_span(region)}) scores "
            f"{sqnr:.1f} dB SQNR against the float model on the calibration samples, below "
            f"the {threshold:g} dB of --min-region-sqnr"
        )
        divergent = None
        if region.index in layer_figures:
            divergent = first_divergent_layer(region.ops, layer_figures[region.index], threshold)
        if divergent is not None:
            op, figure = divergent
            sentence = (
                f"{region_words}; layer '{op.display_name}' is where it first drifts "
                f"({figure:.1f} dB at its output), so that layer runs on the CPU"
            )
            culprits = [op]
        else:
            sentence = f"{region_words}, so it runs on the CPU"
            culprits = list(region.ops)
        for op in culprits:
            for name in op.origin or (op.display_name,):
                rejected[name] = ("AK-REGION-FIDELITY", sentence)
    ctx.analyses["region_sqnr"] = figures
    return rejected


def _region_figures(
    ctx: PassContext, regions: list[Any], programs: list[Program]
) -> dict[int, float]:
    """Region index → its own SQNR (dB): the minimum over the first `GUARD_SAMPLES`
    calibration samples, replayed one at a time (`Observation.replay`) so that the guard holds
    one sample of the region borders at once, not every sample."""
    from akidac.backends.akida.region_fidelity import GUARD_SAMPLES, region_sample_sqnr

    observation = ctx.analyses.get("observation")
    borders = ctx.analyses.get("region_float_io", {})
    guarded = [(r, p) for r, p in zip(regions, programs, strict=True) if r.index in borders]
    figures = {region.index: float("inf") for region, _ in guarded}
    if observation is None or not guarded:
        return figures
    names = [name for region, _ in guarded for name in borders[region.index]]
    for sample in observation.replay(names, GUARD_SAMPLES):
        for region, program in guarded:
            float_in, float_out = (sample[name] for name in borders[region.index])
            figure = region_sample_sqnr(program, region.input, region.output, float_in, float_out)
            figures[region.index] = min(figures[region.index], figure)
    return figures


def _layer_figures(
    ctx: PassContext, failing: list[tuple[Any, Program]]
) -> dict[int, dict[int, float]]:
    """Region index → (`id(op)` → the layer's SQNR, minimum over `LAYER_GUARD_SAMPLES`
    replayed samples) for the failing regions of several layers."""
    from akidac.backends.akida.region_fidelity import LAYER_GUARD_SAMPLES, layer_sample_sqnrs

    observation = ctx.analyses.get("observation")
    borders = ctx.analyses.get("region_float_io", {})
    layers = ctx.analyses.get("region_float_layers", {})
    failing = [(r, p) for r, p in failing if r.index in layers and r.index in borders]
    if observation is None or not failing:
        return {}
    names = [borders[r.index][0] for r, _ in failing]
    names += [name for r, _ in failing for name in layers[r.index].values()]
    result: dict[int, dict[int, float]] = {r.index: {} for r, _ in failing}
    for sample in observation.replay(names, LAYER_GUARD_SAMPLES):
        for region, program in failing:
            float_layers = {key: sample[name] for key, name in layers[region.index].items()}
            float_in = sample[borders[region.index][0]]
            figures = layer_sample_sqnrs(program, region.ops, region.input, float_in, float_layers)
            merged = result[region.index]
            for key, figure in figures.items():
                merged[key] = min(merged.get(key, float("inf")), figure)
    return result


def _measure_fidelity(
    proto: onnx.ModelProto,
    hybrid: onnx.ModelProto,
    graph: Graph,
    options: CompileOptions,
    listener: ProgressListener,
) -> dict[str, Any]:
    """The fidelity figures of every output of the hybrid model against the float model
    (`akidac.runtime.compare`): SQNR, Pearson, top-1 agreement, max |error|, cosine."""
    from akidac.frontend.samples import fidelity_feeds
    from akidac.runtime.compare import measure_fidelity
    from akidac.runtime.session import HybridSession

    feeds, note = fidelity_feeds(graph, options, options.fidelity_samples)
    listener.phase(f"fidelity: {len(feeds)} sample(s) through the float and the hybrid model")

    def load_hybrid() -> HybridSession:
        listener.describe("fidelity: loading the hybrid model")
        session = HybridSession(hybrid)
        listener.describe(f"fidelity: {len(feeds)} sample(s) through the hybrid model")
        return session

    figures = measure_fidelity(proto, load_hybrid, feeds)
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


def _warn_low_output_fidelity(
    ctx: PassContext, regions: list[Any], options: CompileOptions
) -> None:
    """AK-OUTPUT-FIDELITY for every model output whose SQNR against the float model is below
    the fidelity guard's threshold: the guard measures each region on its own, from float
    inputs, so errors that add up over regions (or that later CPU layers amplify) show only
    here, and a compile must not hand back a drifting model without a word."""
    thresholds = [_guard_threshold(region, options) for region in regions]
    known = [t for t in thresholds if t is not None]
    threshold = min(known) if known else CompileOptions().min_region_sqnr
    fidelity = ctx.analyses["fidelity"]
    for output in fidelity["outputs"]:
        sqnr = output["sqnr_db"]
        if threshold is None or sqnr is None or not sqnr < threshold:
            continue
        ctx.sink.warning(
            "AK-OUTPUT-FIDELITY",
            f"output '{output['name']}' scores {sqnr:.1f} dB SQNR (Pearson "
            f"{output['pearson']:.3f}) against the float model over {fidelity['samples']} "
            f"sample(s), below {threshold:g} dB; 'akidac bisect' names the layer where it "
            "drifts",
            node=output["name"],
        )


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
    device = assumed_device(options.device, options.sram_kib)
    proto = load_model(model)
    graph, ctx = run_rounds(proto, input_shapes, options, ANALYZE_PIPELINE, _where(model))
    report = build_report(
        graph,
        ctx.analyses,
        _original_nodes(proto),
        device,
        stage="analyze",
        diagnostics=ctx.sink.items,
    )
    report["provenance"] = provenance(proto, graph, options)
    if tagged is not None:
        write_model_atomically(tag_model(proto, report), tagged)
    return report


def compile_to_target(
    model: str | os.PathLike[str] | onnx.ModelProto,
    output: str | os.PathLike[str] | None = None,
    *,
    target_sqnr: float,
    options: CompileOptions | None = None,
    input_shapes: dict[str, tuple[int, ...]] | None = None,
) -> tuple[CompileResult, Any]:
    """Compile with automatic mixed precision (`akidac.precision`): layers that lose most go to
    8 bits until every output reaches `target_sqnr` dB against the float model, or every layer
    is at 8 bits. Returns the last compile and the `QuantChoice` (per-layer bits, steps); writes
    `output` once, at the end."""
    from akidac.precision import search_precision

    options = options or CompileOptions()
    validate_sample_options(options)
    proto = load_model(model)

    def compile_once(step_options: CompileOptions) -> CompileResult:
        return compile_model(proto, options=step_options, input_shapes=input_shapes)

    choice = search_precision(proto, options, float(target_sqnr), compile_once)
    if output is not None:
        write_model_atomically(choice.result.model, output)
    return choice.result, choice


def bisect_model(
    model: str | os.PathLike[str] | onnx.ModelProto,
    *,
    options: CompileOptions | None = None,
    input_shapes: dict[str, tuple[int, ...]] | None = None,
    threshold_db: float | None = None,
    count: int = 4,
    passes: Sequence[Pass | str] | None = None,
) -> Any:
    """Compile as `compile_model` does, then compare the hybrid and the float model at every
    value both compute (`akidac.bisect`): per layer the accumulated and the own SQNR,
    bits, scale and clipped share, the first layer below `threshold_db` and what to try.

    `passes` replaces the default pipeline, as for `compile_model`. It measures on `count`
    samples: held-out ones when `options.samples` holds more than
    `num_samples`, else the last calibration samples (random ones without samples)."""
    from akidac.bisect import DEFAULT_THRESHOLD_DB, bisect_hybrid
    from akidac.frontend.samples import fidelity_feeds

    options = replace(options or CompileOptions(), fidelity_samples=0)
    if count < 1:
        raise UsageError(f"bisect needs at least one sample, not {count}")
    proto = load_model(model)
    result = compile_model(proto, options=options, input_shapes=input_shapes, passes=passes)
    feeds, note = fidelity_feeds(result.graph, options, count)
    regions = result.analyses.get("regions", [])
    figures = bisect_hybrid(
        proto,
        result.model,
        regions,
        list(result.programs),
        feeds,
        DEFAULT_THRESHOLD_DB if threshold_db is None else float(threshold_db),
    )
    figures.note = note
    return figures


def estimate_device(
    model: str | os.PathLike[str] | onnx.ModelProto,
    *,
    input_shapes: dict[str, tuple[int, ...]] | None = None,
    sram_kib: int | None = None,
    options: CompileOptions | None = None,
    sweep: Sequence[str] = (),
    measure_cpu: bool = False,
) -> dict[str, Any]:
    """The smallest device preset that holds every Akida program of the model in one pass, and
    how the model maps on `options.device` (default akida2-12n): every layer's NPs, region and
    hardware pass in network order, the passes of every program and the weight bytes reloaded
    per inference, and the `estimate` (latency, energy; the report's own). With `sweep` (device
    names), the same estimate on each of them for the same partition. With `measure_cpu`, CPU
    parts are priced at this machine's measured onnxruntime MAC rate. The allocation is
    `compile`'s own (legality, partition, allocation; no quantization), so the figures agree with
    `compile` and `report`."""
    options = options or CompileOptions()
    if sram_kib is not None:
        options = replace(options, sram_kib=sram_kib)
    proto = load_model(model)
    graph, ctx = run_rounds(proto, input_shapes, options, ANALYZE_PIPELINE, _where(model))
    minimal = ctx.analyses.get("minimal_device")
    footprints = ctx.analyses.get("op_footprints", {})
    regions = ctx.analyses.get("regions", [])
    layers = []
    for region in regions:
        for op in region.ops:
            footprint = footprints[id(op)]
            layers.append(
                {
                    "name": op.display_name,
                    "np_type": footprint.np_type,
                    "nps": footprint.nps,
                    "macs": footprint.macs,
                    "weight_bytes": footprint.weight_bytes,
                    "region": region.index,
                    "pass": int(op.annotations.get("pass", 0)),
                }
            )
    device = ctx.analyses.get("device") or assumed_device(options.device, options.sram_kib)
    host = None
    if measure_cpu:
        macs_total = sum(op_macs(op) for op in graph.ops if op.origin)
        rate = measure_host_rate(proto, macs_total, input_shapes)
        host = HostRate(MEASURED_HOST, rate, True) if rate is not None else None
    report = build_report(
        graph, ctx.analyses, _original_nodes(proto), device, stage="analyze", host=host
    )
    estimate = report["estimate"]
    cycles = {(row["region"], row["name"]): row for row in (estimate or {}).get("layers", [])}
    for layer in layers:
        row = cycles.get((layer["region"], layer["name"]))
        layer["cycles"] = row["cycles"] if row else None
    data: dict[str, Any] = {
        "schema_version": DEVICE_SCHEMA_VERSION,
        "device": {"name": device.name, "nps": device.nps},
        "minimal_device": (
            {"name": minimal.name, "nps": minimal.nps, "description": minimal.describe()}
            if minimal
            else None
        ),
        "layers": layers,
        "regions": len(regions),
        "passes": program_passes(regions, footprints),
        "cpu_fallback": ctx.analyses.get("cpu_fallback", {}),
        "estimate": estimate,
    }
    if sweep:
        inputs = estimate_inputs(ctx.analyses, regions, report["regions"])
        cpu = cpu_work(graph, regions)
        data["sweep"] = [
            estimate_cost(
                inputs or [], cpu, assumed_device(name, options.sram_kib), host or DEFAULT_HOST
            )
            for name in sweep
        ]
    return data


def program_passes(regions: Sequence[Any], footprints: dict[int, Any]) -> list[dict[str, Any]]:
    """Per region: its hardware passes (NPs and weight bytes of each) and the weight bytes
    reloaded every inference (all of them when the program has more than one pass, since each
    pass overwrites the previous one's weights; none for a single pass, loaded once)."""
    records = []
    for region in regions:
        by_pass: dict[int, list[Any]] = {}
        for op in region.ops:
            by_pass.setdefault(int(op.annotations.get("pass", 0)), []).append(op)
        passes = [
            {
                "layers": [op.display_name for op in ops],
                "nps": sum(footprints[id(op)].nps for op in ops),
                "weight_bytes": sum(footprints[id(op)].weight_bytes for op in ops),
            }
            for _, ops in sorted(by_pass.items())
        ]
        reloaded = sum(p["weight_bytes"] for p in passes) if len(passes) > 1 else 0
        records.append(
            {"region": region.index, "passes": passes, "weight_bytes_reloaded": reloaded}
        )
    return records


def write_model_atomically(model: onnx.ModelProto, path: str | os.PathLike[str]) -> None:
    """Serialize to a temporary file beside `path`, then rename it into place."""
    write_bytes_atomically(model.SerializeToString(deterministic=True), path)


def write_json_atomically(data: Any, path: str | os.PathLike[str]) -> None:
    """Write JSON (sorted keys, deterministic) through a temporary file and a rename."""
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    write_bytes_atomically(text.encode(), path)


# --------------------------------------------------------------------------------------------
# Entry points of the command line. `akidac.cli` reaches the compiler through this module only
# (the package map of docs/architecture.md: cli → api), so every piece of work a command does
# has a name here, usable from Python as well: reading arrays, checking and building options,
# running a hybrid model over a dataset against the float model, describing the programs of a
# hybrid model.


def parse_input_shapes(specs: Sequence[str] | None) -> dict[str, tuple[int, ...]]:
    """`NAME=1x3x224x224` texts (a bare `1x3x224x224` for a single input) → shapes by name."""
    from akidac.frontend.shapes import parse_input_shapes as parse

    return parse(list(specs or []))


def load_arrays(path: str | os.PathLike[str], what: str) -> dict[str, Any]:
    """The arrays of an `.npz` (by name) or an `.npy` (keyed '' for a model's single input),
    with the checks of `frontend.sample_files.load_sample_file` (a missing, unreadable or empty
    file, pickled arrays, a declared size above the tensor budget: a one-line `UsageError`
    naming `what`, the option) before any array is read."""
    from akidac.frontend.sample_files import load_sample_file

    return dict(load_sample_file(path, what))


def check_bits(**bits: int) -> None:
    """Each of `wbits=`, `abits=` is 4 or 8; else a `UsageError` naming its option."""
    for name, value in bits.items():
        if value not in (4, 8):
            raise UsageError(f"--{name} must be 4 or 8, not {value}")


def make_options(
    *,
    samples: str | os.PathLike[str] | None = None,
    **fields: Any,
) -> CompileOptions:
    """`CompileOptions` from command-line values, checked: bits 4 or 8, known observers,
    sample counts in range. `samples` is a folder of images (`samples_dir`) or an `.npz`/`.npy`
    file, read here (`load_arrays`); every other keyword is a `CompileOptions` field."""
    from akidac.passes.calibration import ACTIVATION_OBSERVERS, WEIGHT_OBSERVERS

    check_bits(**{k: fields[k] for k in ("wbits", "abits") if k in fields})
    if fields.get("num_samples", 1) < 1:
        raise UsageError(f"--num-samples must be at least 1, not {fields['num_samples']}")
    if fields.get("fidelity_samples", 0) < 0:
        raise UsageError(f"--fidelity-samples must be 0 or more, not {fields['fidelity_samples']}")
    if fields.get("calibration", "auto") not in ACTIVATION_OBSERVERS:
        raise UsageError(
            f"--calibration must be auto, percentile, minmax or mse, not {fields['calibration']!r}"
        )
    if fields.get("weight_observer", "auto") not in WEIGHT_OBSERVERS:
        raise UsageError(
            f"--weight-observer must be auto, minmax or mse, not {fields['weight_observer']!r}"
        )
    options = CompileOptions(**fields)
    if samples is not None and Path(samples).is_dir():
        options.samples_dir = str(samples)
    elif samples is not None:
        options.samples = load_arrays(samples, "--samples")
    return options


def pass_instruments(
    pipeline: Sequence[str] | None,
    *,
    dump_after: str | None = None,
    dump_dir: str | os.PathLike[str] = "akidac-dump",
    elide_weights: bool = True,
    time_passes: bool = False,
) -> tuple[list[Instrument], Any]:
    """The instruments of `--dump-after PASS[,PASS]|all` and `--time-passes`, and the timing
    instrument (whose `rows` the pass-time table prints; it is returned even when unused). A
    dumped pass the pipeline does not run is a `UsageError`."""
    from akidac.passes import DumpInstrument, TimingInstrument

    instruments: list[Instrument] = []
    timing = TimingInstrument()
    if time_passes:
        instruments.append(timing)
    if dump_after:
        names = None if dump_after == "all" else frozenset(dump_after.split(","))
        known = list(pipeline or DEFAULT_PIPELINE)
        unknown = sorted((names or set()) - set(known))
        if unknown:
            raise UsageError(
                f"--dump-after names {', '.join(unknown)}, which the pipeline "
                f"does not run ({', '.join(known)})"
            )
        instruments.append(DumpInstrument(Path(dump_dir), names, elide_weights=elide_weights))
    return instruments, timing


def write_compile_outputs(
    result: CompileResult,
    output: str | os.PathLike[str] | None,
    report_json: str | os.PathLike[str] | None,
) -> None:
    """The report, then the hybrid model, each atomically; when the second write fails the
    first one is taken back, so a failed compile leaves no output behind (a report that was
    there before is not restored: it described an earlier compile)."""
    if report_json is not None:
        write_json_atomically(result.report, report_json)
    if output is None:
        return
    try:
        write_model_atomically(result.model, output)
    except BaseException:
        if report_json is not None:
            Path(report_json).unlink(missing_ok=True)
        raise


def make_gates(
    min_akida_share: str | None = None,
    min_sqnr: float | None = None,
    max_regions: int | None = None,
    max_transfer: int | None = None,
) -> Any:
    """The CI gates (`akidac.report.gates.Gates`) of the `--min-akida-share`, `--min-sqnr`,
    `--max-regions` and `--max-transfer` values; a malformed share is a `UsageError`."""
    from akidac.report.gates import Gates, parse_share

    return Gates(parse_share(min_akida_share), min_sqnr, max_regions, max_transfer)


def check_gates(report: dict[str, Any], gates: Any) -> None:
    """Raise `GateFailed` (exit 7) naming every gate `report` misses, with its figure."""
    from akidac.report.gates import check_gates as check

    check(report, gates)


def kernels_compiled() -> int:
    """Hardware-model kernel specialisations this process compiled so far (numba cache misses):
    non-zero after a first run on a machine, which the CLI says so the wait is explained."""
    from akidac.backends.akida.kernels import kernels_compiled_in_this_process

    return kernels_compiled_in_this_process()


@dataclass
class RunResult:
    """A hybrid model's outputs over a dataset (`run_hybrid`), by output name in the model's
    order, with each output's figures against the float model when one was given."""

    outputs: dict[str, Any]
    samples: int
    non_finite_inputs: list[str]
    figures: dict[str, dict[str, Any]] | None = None


def read_feeds(session: Any, paths: Sequence[str | os.PathLike[str]]) -> dict[str, Any]:
    """The `--input` files of a run joined (later files add to or override earlier ones); a
    bare `.npy` is the model's single input."""
    feeds: dict[str, Any] = {}
    for path in paths:
        feeds.update(load_arrays(path, "--input"))
    if "" in feeds:
        if len(session.get_inputs()) != 1:
            raise UsageError("the model has several inputs: pass an .npz keyed by name")
        feeds = {session.get_inputs()[0].name: feeds.pop("")}
    return feeds


def run_hybrid(
    session: Any,
    feeds: dict[str, Any],
    *,
    reference: str | os.PathLike[str] | None = None,
    on_chunk: Any = None,
) -> RunResult:
    """Run a `HybridSession` over every sample of `feeds` (the first axis counts samples, run
    in chunks of the model's batch), and with `reference` (a float ONNX model) compare every
    output over the whole set (`akidac.metrics.compare_outputs`); `on_chunk()` is called after
    each chunk (`chunk_count` of them: a progress bar)."""
    import numpy as np

    from akidac.float_session import float_session
    from akidac.metrics import compare_outputs
    from akidac.runtime.dataset import (
        chunk_size,
        iter_chunks,
        non_finite_inputs,
        run_chunks,
        sample_count,
    )

    size = chunk_size(session)
    total = sample_count(session, feeds)
    float_model = float_session(load_model(reference)) if reference is not None else None
    results, expected = run_chunks(
        session, iter_chunks(session, feeds, size), float_model, on_chunk=on_chunk
    )
    names = [info.name for info in session.get_outputs()]
    outputs = {
        name: np.concatenate(part, axis=0) for name, part in zip(names, results, strict=True)
    }
    figures = None
    if expected is not None:
        with np.errstate(all="ignore"):
            figures = {
                name: compare_outputs(want, got)
                for name, want, got in zip(names, expected, results, strict=True)
            }
    return RunResult(outputs, total, non_finite_inputs(feeds), figures)


def chunk_count(session: Any, feeds: dict[str, Any]) -> int:
    """How many chunks `run_hybrid` runs `feeds` in (samples / the model's batch)."""
    from akidac.runtime.dataset import chunk_size, sample_count

    size = chunk_size(session)
    total = sample_count(session, feeds)
    return total // size if total % size == 0 else total


def run_gate_failures(
    figures: dict[str, dict[str, Any]], min_sqnr: float | None, atol: float | None
) -> list[str]:
    """`run --compare`'s gates: one sentence per output below `min_sqnr` dB or above `atol`."""
    failures = []
    for name, figure in figures.items():
        if min_sqnr is not None and figure["sqnr_db"] < min_sqnr:
            failures.append(
                f"output '{name}' SQNR {figure['sqnr_db']:.1f} dB is below "
                f"--min-sqnr {min_sqnr:g} dB"
            )
        if atol is not None and figure["max_abs_error"] > atol:
            failures.append(
                f"output '{name}' max abs error {figure['max_abs_error']:.6g} "
                f"exceeds --atol {atol:g}"
            )
    return failures


def save_outputs(outputs: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Write arrays by name to an `.npz`, atomically."""
    import io

    import numpy as np

    buffer = io.BytesIO()
    np.savez(buffer, **outputs)
    write_bytes_atomically(buffer.getvalue(), path)


def open_hybrid(model: str | os.PathLike[str]) -> Any:
    """A `HybridSession` of a hybrid model (every program decoded and checked at load)."""
    from akidac.runtime.session import HybridSession

    return HybridSession(model)


def describe_programs(model: str | os.PathLike[str]) -> list[tuple[str, str, str]]:
    """(AkidaOp node name, the value it reads, a description of its program) for every Akida
    program embedded in a hybrid model, in execution order."""
    from akidac.backends.akida.program import program_summary

    return [
        (name, input_name, program_summary(program))
        for name, program, input_name in open_hybrid(model).akida_steps()
    ]


def pass_list() -> list[tuple[str, int | None, str]]:
    """(name, 1-based position in the default pipeline or None, one-line description) of every
    registered pass: the default pipeline in order first, then the others by name."""
    from akidac.passes import registered_passes
    from akidac.passes.base import one_line_doc

    passes = registered_passes()
    order = [n for n in DEFAULT_PIPELINE if n in passes]
    order += sorted(n for n in passes if n not in DEFAULT_PIPELINE)
    return [
        (
            name,
            DEFAULT_PIPELINE.index(name) + 1 if name in DEFAULT_PIPELINE else None,
            one_line_doc(passes[name]),
        )
        for name in order
    ]


def batch_models(source: str | os.PathLike[str]) -> list[Path]:
    """The models of `compile --batch`: a folder's `*.onnx` files by name, or the paths a list
    file names (relative to its folder; `#` comments and blank lines skipped)."""
    from akidac.batch import batch_names, find_models

    models = find_models(source)
    batch_names(models)
    return models


def compile_batch(
    models: Sequence[str | os.PathLike[str]],
    outdir: str | os.PathLike[str],
    *,
    options: CompileOptions | None = None,
    input_shapes: dict[str, tuple[int, ...]] | None = None,
    gates: Any = None,
    jobs: int = 1,
    verify_each: bool = True,
    on_done: Any = None,
) -> dict[str, Any]:
    """Compile every model into `outdir` (`NAME.hybrid.onnx`, `NAME.report.json`), `jobs` at a
    time, each with the same options and gates; one failure does not stop the others. Writes
    and returns `summary.json` (`akidac.batch.batch_summary`: each model's exit code, reason
    and figures, in the models' order, the same whatever `jobs` is). `on_done(entry)` is
    called as each model finishes."""
    from akidac.batch import BatchJob, batch_names, batch_summary, run_batch
    from akidac.report.gates import Gates

    if jobs < 1:
        raise UsageError(f"--jobs must be at least 1, not {jobs}")
    paths = [Path(m) for m in models]
    folder = Path(outdir)
    if folder.exists() and not folder.is_dir():
        raise UsageError(
            f"--output '{folder}' exists and is not a folder (a batch writes a folder)"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"cannot create --output folder '{folder}': {error.strerror}") from None
    options = options or CompileOptions()
    validate_sample_options(options)
    batch = [
        BatchJob(
            str(path),
            name,
            str(folder),
            options,
            dict(input_shapes or {}),
            gates or Gates(),
            verify_each,
        )
        for path, name in zip(paths, batch_names(paths), strict=True)
    ]
    summary = batch_summary(run_batch(batch, jobs, compile_batch_job, on_done))
    write_json_atomically(summary, folder / "summary.json")
    return summary


def load_plugins(modules: Sequence[str]) -> None:
    """Import each `--plugin`: a module name (found on `sys.path`, the current folder
    included) or a `.py` file, whose import registers passes with `register_pass`. A module
    that is missing or fails to import is a one-line `UsageError` naming it."""
    import importlib
    import importlib.util
    import sys

    if modules and "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    for module in modules:
        try:
            if module.endswith(".py"):
                path = Path(module)
                if not path.is_file():
                    raise UsageError(f"--plugin '{module}': no such file")
                spec = importlib.util.spec_from_file_location(path.stem, path)
                if spec is None or spec.loader is None:
                    raise UsageError(f"--plugin '{module}' cannot be loaded as a Python module")
                loaded = importlib.util.module_from_spec(spec)
                sys.modules[path.stem] = loaded
                spec.loader.exec_module(loaded)
            else:
                importlib.import_module(module)
        except UsageError:
            raise
        except ModuleNotFoundError as error:
            raise UsageError(
                f"--plugin '{module}': no module named '{error.name}' (give a module on "
                "PYTHONPATH or in the current folder, or a .py file)"
            ) from None
        except Exception as error:  # the plugin's own code failed: say which and how
            raise UsageError(
                f"--plugin '{module}' failed to import: {type(error).__name__}: "
                f"{' '.join(str(error).split())}"
            ) from None


def _pass_parameter(text: str) -> Any:
    """`3` → 3, `0.5` → 0.5, `true`/`false` → bool, anything else the string itself."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def _split_top_level(text: str) -> list[str]:
    """Split at commas outside brackets: `a,b[x=1,y=2]` → ['a', 'b[x=1,y=2]']."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += {"[": 1, "]": -1}.get(char, 0)
        if depth < 0:
            raise UsageError(f"--passes '{text}': a ']' without its '['")
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    if depth:
        raise UsageError(f"--passes '{text}': a '[' without its ']'")
    return [part.strip() for part in [*parts, current] if part.strip()]


def parse_pipeline(text: str | None) -> list[Pass] | None:
    """`--passes name,name[key=value,...]` → pass instances (None: the default pipeline). Each
    name must be registered (`load_plugins` first for a plugin's passes); the bracketed values
    go to the pass's constructor as keywords (`_pass_parameter` reads numbers and booleans). An
    unknown pass or parameter, or a value the pass refuses, is a one-line `UsageError`."""
    from akidac.passes import create_pass

    if not text:
        return None
    pipeline = []
    for spec in _split_top_level(text):
        name, bracket, rest = spec.partition("[")
        name = name.strip()
        params: dict[str, Any] = {}
        if bracket:
            if not rest.endswith("]"):
                raise UsageError(f"--passes '{spec}': parameters go last, as name[key=value,...]")
            for item in _split_top_level(rest[:-1]):
                key, equals, value = item.partition("=")
                if not equals or not key.strip():
                    raise UsageError(f"--passes '{spec}': '{item}' is not key=value")
                params[key.strip().replace("-", "_")] = _pass_parameter(value.strip())
        try:
            pipeline.append(create_pass(name, **params))
        except TypeError as error:  # an unknown or missing parameter
            raise UsageError(
                f"--passes: pass '{name}' {str(error).split('__init__() ', 1)[-1]}"
                + f" (it takes: {', '.join(_pass_parameters(name)) or 'no parameters'})"
            ) from None
        except ValueError as error:
            raise UsageError(f"--passes: pass '{name}' refuses {params}: {error}") from None
    return pipeline


def _pass_parameters(name: str) -> list[str]:
    """The constructor parameters of a registered pass (its dataclass fields)."""
    import dataclasses

    from akidac.passes import registered_passes

    cls = registered_passes()[name]
    if dataclasses.is_dataclass(cls):
        return [f.name for f in dataclasses.fields(cls) if f.init]
    import inspect

    return [p for p in inspect.signature(cls).parameters if p not in ("self", "args", "kwargs")]


def program_records(model: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """`inspect --json`: every Akida program of a hybrid model as data, in execution order:
    the node, the value it reads, device, format version, input/output tensors, passes, and per
    layer its type, inbounds, output dims, NPs, integer parameters, variables (dtype, shape)
    and ONNX origin."""
    records = []
    for name, program, input_name in open_hybrid(model).akida_steps():
        records.append(
            {
                "node": name,
                "reads": input_name,
                "device": program.device,
                "format_version": program.format_version,
                "input": {"dims": list(program.input.dims), "dtype": program.input.dtype},
                "output": {
                    "dims": list(program.output.dims),
                    "dtype": program.output.dtype,
                    "layer": program.output_layer,
                },
                "passes": [list(names) for names in program.passes],
                "layers": [
                    {
                        "name": record.name,
                        "type": record.layer_type,
                        "inbounds": list(record.inbounds),
                        "output_dims": [int(d) for d in record.output_dims],
                        "nps": list(program.np_assignment.get(record.name, [])),
                        "params": {k: record.params[k] for k in sorted(record.params)},
                        "variables": {
                            k: {"dtype": v.dtype.name, "shape": list(v.shape)}
                            for k, v in sorted(record.variables.items())
                        },
                        "origin": list(program.origins.get(record.name, [])),
                    }
                    for record in program.layers
                ],
            }
        )
    return records


def compile_batch_job(job: Any) -> Any:
    """Compile one model of a batch (`akidac.batch.BatchJob`): write its hybrid and report,
    check its gates. Never raises: the `BatchEntry` holds the exit code and reason of a
    failure, and a model that failed leaves no output of an earlier batch behind."""
    from akidac.batch import HYBRID_SUFFIX, REPORT_SUFFIX, batch_entry

    hybrid = Path(job.outdir) / f"{job.name}{HYBRID_SUFFIX}"
    report_file = Path(job.outdir) / f"{job.name}{REPORT_SUFFIX}"
    written, report, failure = False, None, None
    try:
        result = compile_model(
            job.model,
            options=job.options,
            input_shapes=job.input_shapes,
            verify_each=job.verify_each,
        )
        write_compile_outputs(result, hybrid, report_file)
        written, report = True, result.report
        check_gates(result.report, job.gates)
    except Exception as error:  # recorded in the entry; the batch goes on
        failure = error
    if not written:
        hybrid.unlink(missing_ok=True)
        report_file.unlink(missing_ok=True)
    return batch_entry(job, written, report, failure)


def read_report(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A JSON report written by `--report-json` or `report --json`; a missing file or one
    that is not JSON is a one-line `UsageError`."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"report '{path}' does not exist or is not a file")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise UsageError(f"report '{path}' is not readable JSON ({first})") from None
    if not isinstance(data, dict):
        raise UsageError(f"report '{path}' is not an akidac JSON report")
    return data


def diff_reports(
    old: str | os.PathLike[str],
    new: str | os.PathLike[str],
    *,
    max_share_drop: float = 0.0,
    max_sqnr_drop: float = 1.0,
    max_latency_rise: float = 5.0,
) -> Any:
    """What changed between two JSON reports (`akidac.report.diff.ReportDiff`): coverage,
    regions, transfers, fidelity per output, the estimate, moved nodes, provenance; its
    `regressions` name the changes beyond the thresholds (share in percentage points, SQNR in
    dB, latency in percent). Reports of different schema versions are a `UsageError`."""
    from akidac.report.diff import DiffThresholds
    from akidac.report.diff import diff_reports as diff

    for name, value in (
        ("--max-share-drop", max_share_drop),
        ("--max-sqnr-drop", max_sqnr_drop),
        ("--max-latency-rise", max_latency_rise),
    ):
        if not value >= 0:
            raise UsageError(f"{name} must be 0 or more, not {value:g}")
    thresholds = DiffThresholds(max_share_drop, max_sqnr_drop, max_latency_rise / 100.0)
    return diff(read_report(old), read_report(new), thresholds, (str(old), str(new)))


# Presentation, re-exported so that the command line reaches the report's renderers and plots
# through this module too (they print or draw data the functions above return).
def print_report(console: Any, report: dict[str, Any]) -> None:
    """The human form of a report (`akidac report`) on a rich console."""
    from akidac.report.render import print_report as render

    render(console, report)


def compile_summary_table(report: dict[str, Any], output: Any, seconds: float) -> Any:
    """The end-of-compile rich table: device, where nodes and MACs run, regions, file, time."""
    from akidac.report.render import compile_summary_table as table

    return table(report, output, seconds)


def estimate_summary(estimate: dict[str, Any] | None) -> str:
    """One line of a report's latency/energy estimate (or why there is none)."""
    from akidac.target.estimate import summary_line

    return summary_line(estimate)


def sweep_devices() -> tuple[str, ...]:
    """The devices `device --sweep` estimates on."""
    from akidac.target.estimate import SWEEP_DEVICES

    return tuple(SWEEP_DEVICES)


def require_matplotlib() -> None:
    """A `UsageError` naming the `[plot]` extra when matplotlib is not installed."""
    from akidac.report.estimate_plot import require_matplotlib as require

    require()


def plot_estimate(data: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Draw `estimate_device`'s per-layer time and MACs (and its sweep) to a PNG."""
    from akidac.report.estimate_plot import plot_estimate as plot

    plot(data, path)


def plot_bisect(data: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Draw `bisect_model`'s SQNR per layer to a PNG."""
    from akidac.report.bisect_plot import plot_bisect as plot

    plot(data, path)
