"""The output guard: Akida regions go back to the CPU while a model output drifts from the float
model.

The region guard (`akidac.api._guard_regions`) measures each Akida region alone, from the float
model's values at its input. Errors that add up over a chain of regions, or that CPU layers after
them amplify (a small-valued regression head reading shared int8 features, a detector's score
decoding), show only at the model's outputs: every region of a trained hand-landmark model passes
the region guard while its world-landmark output scores 4.5 dB. This guard compiles, measures
every floating-point output of the hybrid model against the float model on the calibration
samples (`GUARD_SAMPLES` at most), and while an output scores below `min_output_sqnr` (then
below it plus `GUARD_MARGIN_DB`, room for samples the guard has not seen) it tries one more
Akida region upstream of that output on the CPU (reason AK-OUTPUT-GUARD), the region that
loses most on its own first. A move is kept only when it lifts the failing outputs by at least
`MIN_GAIN_DB` in all or clears them (a region whose error does not reach the output stays on
Akida); at most `MAX_TRIALS` such compiles, and `MAX_REJECTED_IN_A_ROW` moves that gain nothing
end them.

When single moves do not mend the output, its error is spread over many regions (a deep network
whose every 8-bit region adds a little noise; on random-weight ResNet-50 or DenseNet-121 no single
region is worth 1 dB). The guard then moves regions in groups: it ranks the regions upstream of
the failing outputs by their own SQNR (the noise each one adds), moves them all (which clears the
outputs: their values then come from the CPU alone) and bisects for the shortest prefix of that
ranking that still clears them, in at most `MAX_GROUP_TRIALS` compiles. Under the model of
independent noise that adds up at the output, the noisiest regions first is the order that
clears the outputs with the fewest regions moved. The best compile seen is the one returned.

It runs at 8 bits only: with a 4-bit layer the model is expected to lose more than 20 dB, and
`--target-sqnr` is the tool that trades bits for fidelity. The samples are the calibration
samples, not the held-out fidelity samples, so the report's fidelity figure stays unbiased by
the guard's choices.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any, NamedTuple

import numpy as np
import onnx

from akidac.float_session import float_session
from akidac.frontend.samples import sample_set
from akidac.metrics import sqnr_db

#: calibration samples the guard measures the outputs on, at most (the float model runs them
#: once, the hybrid model once per compile the guard judges; a compile costs ten times more):
#: all of them by default. The figure is the minimum over them, so more samples see more of the
#: tail: with the first 16 of 32, the real-model benchmark's MobileNetV3-Large passed the guard
#: and scored 14.4 dB on its 31st, and with 4 PP-OCR's direction classifier scored 11.4 dB on
#: another of its samples
GUARD_SAMPLES = 32
#: once an output is below the threshold, the guard aims this much above it: the minimum over
#: other samples of the same kind is lower by about a dB (mediapipe's palm detector: 19.8 dB
#: over its 32 calibration samples, 18.8 dB over 8 held-out ones)
GUARD_MARGIN_DB = 1.5
#: extra compiles the guard may spend: each moves one more region, so a model with many regions
#: upstream of a drifting output is judged on its worst ones
MAX_TRIALS = 4
#: moves in a row that gain nothing before the guard stops: the error is then spread over many
#: regions (a deep network whose output is as sensitive to 8-bit values everywhere), which
#: moving one region at a time does not mend. On the project's real-model benchmark no move was
#: kept after two in a row had gained nothing (random-weight GoogLeNet, DenseNet, ResNet-50 and
#: EfficientNet-B0 spent four compiles to keep none).
MAX_REJECTED_IN_A_ROW = 2
#: compiles the guard may spend moving regions in groups once single moves have not mended the
#: outputs: the first moves every region upstream of them, the rest bisect the ranking, so the
#: prefix found is within 1/16 of the ranking of the shortest one that clears the outputs
MAX_GROUP_TRIALS = 5
#: a move to the CPU must lift the failing outputs' shortfall (dB below the threshold, summed
#: over outputs) by at least this much to be kept
MIN_GAIN_DB = 1.0
#: SQNR below this counts as this in the shortfall, so one output that is wrong outright (an
#: all-zero float output scores -200 dB) does not drown the others
SHORTFALL_FLOOR_DB = -40.0


class Compiled(NamedTuple):
    """One compile of the model: the IR after the passes, its context, the emitted regions and
    programs, and the hybrid model built from them."""

    graph: Any
    ctx: Any
    regions: list[Any]
    programs: list[Any]
    hybrid: onnx.ModelProto


def guards_outputs(compiled: Compiled, options: Any) -> bool:
    """Whether the guard applies: it is on, some region runs on Akida, and every layer of every
    region is at 8 bits."""
    if options.min_output_sqnr is None or not compiled.regions:
        return False
    return all(
        op.int_attr(key, 8) >= 8
        for region in compiled.regions
        for op in region.ops
        for key in ("abits", "wbits")
    )


class _Trial(NamedTuple):
    """A compile the guard judged: the compile, its outputs' upstream regions and SQNRs, and the
    CPU overrides it was compiled with."""

    compiled: Compiled
    upstream: dict[str, set[int]]
    scores: dict[str, float]
    overrides: dict[str, tuple[str, str]]


def guard_outputs(
    proto: onnx.ModelProto,
    first: Compiled,
    options: Any,
    compile_with: Callable[[Any], Compiled],
    progress: Any,
) -> Compiled:
    """The compile to keep: `first`, or a compile with more regions on the CPU whose outputs
    fall short of `options.min_output_sqnr` by less (see the module docstring). Every trial is
    told in an AK-OUTPUT-GUARD note of the returned compile."""
    threshold = float(options.min_output_sqnr)
    feeds = sample_set(first.graph, options).feeds[:GUARD_SAMPLES]
    expected = _float_outputs(proto, feeds)
    if not expected or not feeds:
        return first
    trials = 0
    notes: list[str] = []

    def judge(overrides: dict[str, tuple[str, str]], phase: str) -> _Trial:
        nonlocal trials
        trials += 1
        progress.phase(f"output guard: trial {trials}, {phase}")
        compiled = compile_with(replace(options, cpu_overrides=overrides))
        upstream = _upstream_regions(compiled.hybrid)
        return _Trial(
            compiled, upstream, _scores(compiled.hybrid, upstream, feeds, expected), overrides
        )

    upstream = _upstream_regions(first.hybrid)
    scores = _scores(first.hybrid, upstream, feeds, expected)
    best = _Trial(first, upstream, scores, dict(options.cpu_overrides))
    # the margin applies once an output is below the threshold: a model that passes is left as
    # it is, one that does not is mended with room to spare for samples the guard has not seen
    aim = threshold + GUARD_MARGIN_DB if any(s < threshold for s in scores.values()) else threshold
    tried: set[frozenset[str]] = set()
    rejected_in_a_row = 0
    for _ in range(MAX_TRIALS):
        failing = _failing(best.scores, aim)
        candidate = _next_region(best.compiled, best.upstream, failing, tried)
        if candidate is None:
            break
        region, names = candidate
        tried.add(names)
        sentence = _sentence(region, best.compiled, failing, aim, len(feeds))
        trial = judge(
            _moved(best, names, sentence),
            f"region {region.index} to the CPU",
        )
        kept = _keeps(_shortfall(best.scores, aim), _shortfall(trial.scores, aim))
        verdict = (
            ""
            if kept
            else f", less than the {MIN_GAIN_DB:g} dB a move must gain, so it stays on Akida"
        )
        notes.append(
            f"output guard: Akida region {region.index} ({region_span(region)}) on the CPU "
            f"{'lifts' if kept else 'would take'} {_figures(failing, trial.scores)}{verdict}"
        )
        if kept:
            best, rejected_in_a_row = trial, 0
        else:
            rejected_in_a_row += 1
        if _shortfall(best.scores, aim) == 0.0:
            break
        if rejected_in_a_row == MAX_REJECTED_IN_A_ROW:
            break
    if _shortfall(best.scores, aim) > 0.0:
        best = _move_groups(best, aim, len(feeds), judge, notes)
    for note in notes:
        best.compiled.ctx.sink.note("AK-OUTPUT-GUARD", note)
    best.compiled.ctx.analyses["output_guard"] = {
        "threshold_db": threshold,
        "aim_db": aim,
        "samples": len(feeds),
        "trials": trials,
        "output_sqnr_db": {name: round(s, 3) for name, s in sorted(best.scores.items())},
    }
    return best.compiled


def _move_groups(
    best: _Trial,
    aim: float,
    samples: int,
    judge: Callable[[dict[str, tuple[str, str]], str], _Trial],
    notes: list[str],
) -> _Trial:
    """Moves regions in groups when single moves have not mended the outputs (see the module
    docstring): the shortest prefix of the regions upstream of the failing outputs, noisiest
    first, that clears them, found by bisection in at most `MAX_GROUP_TRIALS` compiles; `best`
    when even the whole ranking does not gain `MIN_GAIN_DB`."""
    failing = _failing(best.scores, aim)
    ranked = _ranked_regions(best.compiled, best.upstream, failing)
    if not ranked:
        return best
    start = _shortfall(best.scores, aim)
    low, high = 0, len(ranked)  # the first `low` do not clear the outputs, the first `high` do
    cleared: _Trial | None = None
    count = high
    for _ in range(MAX_GROUP_TRIALS):
        group = ranked[:count]
        sentence = (
            f"{_failing_words(failing, aim, samples)}, and no single Akida region upstream of "
            f"them was worth {MIN_GAIN_DB:g} dB: the error is spread over them, so the {count} "
            f"of {len(ranked)} whose own output loses most run on the CPU together"
        )
        moved = frozenset(name for _, names in group for name in names)
        trial = judge(_moved(best, moved, sentence), f"{count} region(s) to the CPU")
        clears = _shortfall(trial.scores, aim) == 0.0
        # the whole ranking that does not clear the outputs is still kept when it gains enough
        kept = clears or (cleared is None and _keeps(start, _shortfall(trial.scores, aim)))
        notes.append(
            f"output guard: the {count} of {len(ranked)} Akida regions upstream whose own output "
            f"loses most ({_indices(group)}) on the CPU together "
            f"{'lift' if kept else 'would take'} {_figures(failing, trial.scores)}"
        )
        if clears:
            cleared, high = trial, count
        else:
            low = count
        if cleared is None:
            return trial if kept else best
        if high - low <= 1:
            break
        count = (low + high) // 2
    return cleared or best


def _moved(best: _Trial, names: frozenset[str], sentence: str) -> dict[str, tuple[str, str]]:
    """The CPU overrides of a trial that moves the ONNX nodes `names` from `best`: `best`'s own,
    the nodes the region guard sent to the CPU in `best` (AK-REGION-FIDELITY, pinned with their
    reason), and `names` (AK-OUTPUT-GUARD, `sentence`). Without the pins a trial compile would
    measure those nodes afresh, in regions that the moves reshaped, and could put them back on
    Akida upstream of the very output the moves are to clear (mediapipe's pose landmark model:
    every region upstream moved, and a new one formed of nodes the region guard had rejected)."""
    fallback = best.compiled.ctx.analyses.get("cpu_fallback", {})
    pinned = {
        name: (entry["code"], entry["message"])
        for name, entry in fallback.items()
        if entry["code"] == "AK-REGION-FIDELITY"
    }
    return {
        **pinned,
        **best.overrides,
        **dict.fromkeys(sorted(names), ("AK-OUTPUT-GUARD", sentence)),
    }


def _ranked_regions(
    compiled: Compiled, upstream: dict[str, set[int]], failing: dict[str, float]
) -> list[tuple[Any, frozenset[str]]]:
    """The regions upstream of the failing outputs with the ONNX nodes each holds, noisiest
    first: by their own SQNR (the region guard's figure), ties to the one nearest the outputs."""
    indices = set().union(*(upstream.get(name, set()) for name in failing))
    own = compiled.ctx.analyses.get("region_sqnr", {})
    ranked = []
    for region in compiled.regions:
        names = frozenset(name for op in region.ops for name in op.origin)
        if region.index in indices and names:
            ranked.append((own.get(region.index, float("inf")), -region.index, region, names))
    ranked.sort(key=lambda entry: (entry[0], entry[1]))
    return [(region, names) for _, _, region, names in ranked]


def _indices(group: list[tuple[Any, frozenset[str]]]) -> str:
    """The regions of a group by index, the first few spelt out."""
    indices = sorted(region.index for region, _ in group)
    words = ", ".join(str(i) for i in indices[:8])
    return words + (f" and {len(indices) - 8} more" if len(indices) > 8 else "")


def _keeps(before: float, after: float) -> bool:
    """Whether a move that takes the shortfall (dB) from `before` to `after` is kept: it gains
    `MIN_GAIN_DB`, or it clears every output however little it gains."""
    return after < before and (after == 0.0 or after <= before - MIN_GAIN_DB)


def _float_outputs(
    proto: onnx.ModelProto, feeds: list[dict[str, np.ndarray]]
) -> dict[str, list[np.ndarray]]:
    """Graph output name → the float model's value on each feed, for the floating-point outputs
    (an index or mask output has no SQNR)."""
    session = float_session(proto)
    names = [o.name for o in session.get_outputs() if "float" in o.type or "double" in o.type]
    values: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for feed in feeds:
        for name, array in zip(names, session.run(names, feed), strict=True):
            values[name].append(np.asarray(array))
    return values


def _scores(
    hybrid: onnx.ModelProto,
    upstream: dict[str, set[int]],
    feeds: list[dict[str, np.ndarray]],
    expected: dict[str, list[np.ndarray]],
) -> dict[str, float]:
    """Graph output name → its SQNR (dB) against the float model, for the outputs an Akida
    region reaches (`upstream`, from `_upstream_regions`): the minimum over the samples whose
    float value is finite and not all zero (SQNR has nothing to measure on the others; an output
    with no such sample is left out). An output of one value per sample (a presence score, a
    flag) is measured over those samples joined, as the report measures it (`akidac.metrics`):
    one number alone has no SQNR but its relative error."""
    from akidac.runtime.session import HybridSession

    names = [name for name in expected if upstream.get(name)]
    if not names:
        return {}
    session = HybridSession(hybrid)
    actual: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for feed in feeds:
        for name, array in zip(names, session.run(names, feed), strict=True):
            actual[name].append(np.asarray(array))
    scores = {}
    for name in names:
        pairs = [
            (r, g)
            for r, g in zip(expected[name], actual[name], strict=True)
            if np.any(r != 0) and np.all(np.isfinite(r))
        ]
        if pairs and pairs[0][0].size == 1:
            pairs = [(np.stack([r for r, _ in pairs]), np.stack([g for _, g in pairs]))]
        if pairs:
            scores[name] = min(sqnr_db(r, g) for r, g in pairs)
    return scores


def _shortfall(scores: dict[str, float], threshold: float) -> float:
    """How far the outputs fall below `threshold`, in dB summed over outputs (0 when none)."""
    return sum(max(0.0, threshold - max(s, SHORTFALL_FLOOR_DB)) for s in scores.values())


def _next_region(
    compiled: Compiled,
    upstream: dict[str, set[int]],
    failing: dict[str, float],
    tried: set[frozenset[str]],
) -> tuple[Any, frozenset[str]] | None:
    """The next region to try on the CPU: the noisiest region upstream of a failing output not
    tried yet (`_ranked_regions`), or None when there is none."""
    if not failing:
        return None
    return next(
        (entry for entry in _ranked_regions(compiled, upstream, failing) if entry[1] not in tried),
        None,
    )


def _upstream_regions(hybrid: onnx.ModelProto) -> dict[str, set[int]]:
    """Graph output name → the indices of the Akida regions (`AkidaOp` nodes named
    `akida_region_N`) its value depends on, through the main graph and the values that the
    subgraphs of control-flow nodes read."""
    producer = {out: node for node in hybrid.graph.node for out in node.output if out}
    result: dict[str, set[int]] = {}
    for output in hybrid.graph.output:
        regions: set[int] = set()
        seen: set[str] = set()
        stack = [output.name]
        while stack:
            value = stack.pop()
            if value in seen or value not in producer:
                continue
            seen.add(value)
            node = producer[value]
            if node.op_type == "AkidaOp" and node.name.startswith("akida_region_"):
                regions.add(int(node.name.rsplit("_", 1)[1]))
            stack.extend(_reads(node))
        result[output.name] = regions
    return result


def _reads(node: onnx.NodeProto) -> Iterable[str]:
    """The values a node reads: its inputs and every input of the nodes of its subgraphs (the
    outer values a branch or loop body captures are among them)."""
    yield from (name for name in node.input if name)
    for attribute in node.attribute:
        graphs = [attribute.g] if attribute.type == onnx.AttributeProto.GRAPH else []
        graphs += list(attribute.graphs)
        for graph in graphs:
            for inner in graph.node:
                yield from _reads(inner)


def region_span(region: Any) -> str:
    """How a region is named in messages: its first and last layer and its layer count."""
    layers = [op.display_name for op in region.ops]
    words = layers[0] if len(layers) == 1 else f"{layers[0]} … {layers[-1]}"
    return f"{words}, {len(layers)} layer(s)"


def _figures(before: dict[str, float], after: dict[str, float]) -> str:
    """How the failing outputs move: an output that no Akida region reaches any more is the
    float model's, up to the CPU's own rounding."""
    return ", ".join(
        f"'{name}' from {s:.1f} to {after[name]:.1f} dB"
        if name in after
        else f"'{name}' from {s:.1f} dB to the float model's value (no Akida region upstream)"
        for name, s in sorted(before.items())
    )


def _sentence(
    region: Any, compiled: Compiled, failing: dict[str, float], aim: float, samples: int
) -> str:
    own = compiled.ctx.analyses.get("region_sqnr", {}).get(region.index)
    own_words = (
        f" (its own output scores {own:.1f} dB)" if own is not None and own != float("inf") else ""
    )
    return (
        f"{_failing_words(failing, aim, samples)}; Akida region "
        f"{region.index} ({region_span(region)}) is upstream of them and loses most on its own"
        f"{own_words}, so it runs on the CPU"
    )


def _failing(scores: dict[str, float], aim: float) -> dict[str, float]:
    """The outputs below the SQNR the guard aims at, with their figures."""
    return {name: s for name, s in scores.items() if s < aim}


def _failing_words(failing: dict[str, float], aim: float, samples: int) -> str:
    """Why a move's nodes run on the CPU, the part every AK-OUTPUT-GUARD sentence opens with:
    the failing outputs' figures and the SQNR (--min-output-sqnr plus the guard's margin)
    they fall below."""
    outputs = ", ".join(f"'{name}' {s:.1f} dB" for name, s in sorted(failing.items()))
    return (
        f"the compiled model's output(s) {outputs} SQNR against the float model on {samples} "
        f"calibration sample(s), below the {aim:g} dB the guard aims at (--min-output-sqnr and "
        f"a margin of {GUARD_MARGIN_DB:g} dB for samples it has not seen)"
    )
