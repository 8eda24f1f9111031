"""Compile one random graph and say what became of it: the verdicts of the compile fuzz.

A graph ends in exactly one of these outcomes:

- `correct`: it compiled, its hybrid loads and runs in `HybridSession`, and every output
  matches onnxruntime on the float model (the rule below);
- `refused N`: `compile_model` raised an `AkidacError` with documented exit code N (2–7, the
  table of `akidac.errors.EXIT_CODES` and docs/cli.md), mapped as the CLI maps it;
- `crashed`: an internal error (exit 1) or any other exception out of the compile;
- `unrunnable`: it compiled but `HybridSession` cannot load or run the hybrid;
- `wrong`: the hybrid runs but an output drifts from the float model;
- `invalid accepted`: the float model is invalid — `onnx.checker` (full check, with shape
  inference) or onnxruntime refuses to load it — and akidac compiled it or refused it with
  another code than 3; or akidac compiled a model onnxruntime then fails to run. (A model both
  accept that onnxruntime fails to *run*, such as a SAME-padded pooling whose stride exceeds
  its kernel, is an onnxruntime limitation: akidac may refuse it with 3 or 4.)
- `unchecked`: onnxruntime's own float output is not finite (huge weights overflowing float32),
  so there is nothing to compare with; the hybrid must still load and run;
- `ill-conditioned`: the hybrid misses the rule below, but so does the float model itself on
  its inputs plus the noise of 8-bit rounding (±1 step, one of `NOISE_DRAWS` draws): the output
  depends on differences smaller than 8 bits resolve (a gain of 10^4 before a hard Clip flips an
  element whose pre-clip value is 0.1% of its range). No 8-bit pipeline can do better, so it
  is not a failure; each one is listed with its seed.

Each graph is compiled with `CALIBRATION_FEEDS` standard-normal feeds as its calibration
samples and judged on the first `EVAL_FEEDS` of them. Judging on calibration samples is
deliberate: a random graph has no input distribution, and how 8 calibration samples generalise
to new inputs (one input beyond the calibrated range, times a 10^4 weight, moves an output by
many steps) is a property of the calibration data, not of the compiler; this fuzz judges the
compiler's arithmetic, borders and runtime.

The correctness rule, per output and per sample (a batch element of a judged feed):

- an output that no `AkidaOp` feeds runs in onnxruntime in both models: it must agree to float
  rounding (`np.allclose`, rtol 1e-4, atol 1e-5 of the output's largest magnitude);
- an output computed through Akida is quantized to 8 bits at least once, and a random graph has
  no structure a calibration could exploit: its per-sample SQNR must be at least
  `MIN_SQNR_DB` (10 dB: the noise is under a tenth of the signal's energy; the compiler's own
  fidelity guard keeps each region at 20 dB on its calibration samples, and errors of stacked
  regions add) and its Pearson correlation at least `MIN_PEARSON` (0.9). Pearson removes the
  mean, so an output that ignores its input fails it; and the SQNR must beat by
  `CONSTANT_MARGIN_DB` what the constant output "mean of the references over the samples"
  scores, whenever that baseline is below `GUARD_SQNR_DB` (a baseline above it means the output
  barely depends on its input, and a result within the guard's 20 dB is then as close as
  8 bits can promise). A sample whose reference is constant has no Pearson: it is checked by
  SQNR alone. A sample whose RMS is below `RESOLVABLE_STEPS` (4) 8-bit steps of the output's
  largest magnitude over every sample (all zero, a scalar output near zero, a batch row that is
  tiny next to another one that sets the output's scale) has no meaningful SQNR: one step of
  rounding is a large part of it. Its largest error must stay within `ZERO_TOLERANCE` (5%, about
  six steps) of that largest magnitude.
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

from akidac.api import compile_model
from akidac.errors import AkidacError
from akidac.metrics import pearson, sqnr_db
from akidac.passes import CompileOptions
from akidac.runtime.session import HybridSession

from .graphs import FuzzGraph

#: the fixed set the test suite runs: seeds 0 … CI_GRAPHS − 1 (`make fuzz` starts after it)
CI_GRAPHS = 320
CALIBRATION_FEEDS = 8
EVAL_FEEDS = 3
MIN_SQNR_DB = 10.0
MIN_PEARSON = 0.9
CONSTANT_MARGIN_DB = 3.0
GUARD_SQNR_DB = 20.0
ZERO_TOLERANCE = 0.05
#: the steps of a signed 8-bit code on one side of zero
INT8_STEPS = 127
#: a sample whose RMS is below this many 8-bit steps of its output's range has no meaningful
#: SQNR (8-bit codes cannot resolve it): it is judged by its largest error
RESOLVABLE_STEPS = 4
#: draws of 8-bit noise on the inputs that tell an ill-conditioned graph from a wrong hybrid
NOISE_DRAWS = 16
#: the outcomes that make the fuzz fail
FAILURES = ("crashed", "unrunnable", "wrong", "invalid accepted")


@dataclass
class Verdict:
    outcome: str
    detail: str = ""
    #: warnings akidac's own code raised while compiling (numpy's RuntimeWarnings on NaN or
    #: overflow): not a failure, but listed, since library code should not print them
    warnings: list[str] = field(default_factory=list)


def compile_options(graph: FuzzGraph) -> CompileOptions:
    """Small and fast: `CALIBRATION_FEEDS` calibration feeds (`feeds`), no fidelity measurement
    (the fuzz measures it)."""
    samples = {"x": np.concatenate([feed["x"] for feed in feeds(graph)])}
    return CompileOptions(
        samples=samples, num_samples=CALIBRATION_FEEDS, fidelity_samples=0, seed=graph.seed
    )


def _quiet() -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.log_severity_level = 4
    return options


def float_runtime_refuses(model: onnx.ModelProto) -> str | None:
    """Why onnx or onnxruntime refuses the float model, or None when both accept it."""
    try:
        onnx.checker.check_model(model, full_check=True)
        ort.InferenceSession(model.SerializeToString(), _quiet())
    except Exception as error:
        return f"{type(error).__name__}: {' '.join(str(error).split())[:160]}"
    return None


def feeds(graph: FuzzGraph) -> list[dict[str, np.ndarray]]:
    """The graph's calibration feeds, standard normal, seeded by the graph's seed; the first
    `EVAL_FEEDS` are those the hybrid is judged on."""
    rng = np.random.default_rng(graph.seed + 1_000_003)
    shape = [d.dim_value for d in graph.model.graph.input[0].type.tensor_type.shape.dim]
    return [{"x": rng.standard_normal(shape).astype(np.float32)} for _ in range(CALIBRATION_FEEDS)]


def akida_fed_outputs(hybrid: onnx.ModelProto) -> set[str]:
    """The hybrid's outputs that some AkidaOp feeds, directly or through CPU nodes."""
    through = set()
    for node in hybrid.graph.node:  # topological order
        if node.op_type == "AkidaOp" or any(name in through for name in node.input):
            through.update(node.output)
    return {o.name for o in hybrid.graph.output if o.name in through}


def _sample_problem(ref: np.ndarray, got: np.ndarray, mean: np.ndarray, scale: float) -> str:
    """Why one sample of an Akida-fed output is wrong, or '' (see the module docstring)."""
    if ref.shape != got.shape:
        return f"shape {got.shape} instead of {ref.shape}"
    if not np.all(np.isfinite(got)):
        return "non-finite values"
    if float(np.sqrt(np.mean(ref * ref))) < RESOLVABLE_STEPS * scale / INT8_STEPS:
        error = float(np.max(np.abs(got - ref)))
        if error <= ZERO_TOLERANCE * scale:
            return ""
        return f"max error {error:.3g} on a sample within a few 8-bit steps of {scale:.3g}"
    if np.ptp(ref) == 0.0:
        sqnr = sqnr_db(ref, got)
        return "" if sqnr >= MIN_SQNR_DB else f"SQNR {sqnr:.1f} dB on a constant"
    sqnr, r = sqnr_db(ref, got), pearson(ref, got)
    baseline = sqnr_db(ref, mean)
    floor = MIN_SQNR_DB
    if baseline < GUARD_SQNR_DB:
        floor = max(floor, min(baseline + CONSTANT_MARGIN_DB, GUARD_SQNR_DB))
    if sqnr < floor or r < MIN_PEARSON:
        return f"SQNR {sqnr:.1f} dB (floor {floor:.1f}), Pearson {r:.3f}"
    return ""


def compare(
    names: list[str], refs: list[list[np.ndarray]], gots: list[list[np.ndarray]], akida: set[str]
) -> str:
    """The first problem of any output (refs[feed][output]), or '' when all match."""
    for index, name in enumerate(names):
        want = [np.asarray(r[index], np.float64) for r in refs]
        have = [np.asarray(g[index], np.float64) for g in gots]
        scale = max(float(np.max(np.abs(w))) if w.size else 0.0 for w in want)
        if name not in akida:
            for w, h in zip(want, have, strict=True):
                if w.shape != h.shape or not np.allclose(h, w, rtol=1e-4, atol=1e-5 * scale):
                    return f"CPU output {name!r} differs from onnxruntime"
            continue
        samples = [(w[i], h[i]) for w, h in zip(want, have, strict=True) for i in range(len(w))]
        if any(w.shape != h.shape for w, h in zip(want, have, strict=True)):
            return f"output {name!r}: shape {have[0].shape} instead of {want[0].shape}"
        mean = np.mean([w for w, _ in samples], axis=0)
        for number, (w, h) in enumerate(samples):
            problem = _sample_problem(w, h, mean, scale)
            if problem:
                return f"output {name!r} sample {number}: {problem}"
    return ""


def classify(graph: FuzzGraph) -> Verdict:
    """Compile the graph and give its outcome (see the module docstring)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        verdict = _classify(graph)
    verdict.warnings = [
        f"{Path(w.filename).name}:{w.lineno}: {w.message}"
        for w in caught
        if f"{os.sep}akidac{os.sep}" in w.filename
    ]
    return verdict


def _classify(graph: FuzzGraph) -> Verdict:
    refused = float_runtime_refuses(graph.model)
    try:
        result = compile_model(graph.model, options=compile_options(graph))
    except AkidacError as error:
        if refused is not None and error.exit_code != 3:
            return Verdict("invalid accepted", f"exit {error.exit_code} ({refused}): {error}")
        if error.exit_code == 1:
            return Verdict("crashed", str(error))
        return Verdict(f"refused {error.exit_code}", str(error))
    except Exception as error:
        return Verdict("crashed", f"{type(error).__name__}: {error}")
    if refused is not None:
        return Verdict("invalid accepted", f"compiled; the float runtime says {refused}")
    judged = feeds(graph)[:EVAL_FEEDS]
    names = [o.name for o in graph.model.graph.output]
    try:
        reference = ort.InferenceSession(graph.model.SerializeToString(), _quiet())
        refs = [reference.run(names, feed) for feed in judged]
    except Exception as error:
        return Verdict("invalid accepted", f"compiled; onnxruntime cannot run it: {error}")
    try:
        session = HybridSession(result.model)
        gots = [session.run(names, feed) for feed in judged]
    except Exception as error:
        return Verdict("unrunnable", f"{type(error).__name__}: {error}")
    if not all(np.all(np.isfinite(r)) for feed in refs for r in feed):
        return Verdict("unchecked", "the float model's output is not finite")
    akida = akida_fed_outputs(result.model)
    problem = compare(names, refs, gots, akida)
    if not problem:
        return Verdict("correct")
    for draw in range(NOISE_DRAWS):
        noisy = _at_8_bit_noise(reference, names, judged, graph.seed * NOISE_DRAWS + draw)
        if compare(names, refs, noisy, akida):
            return Verdict("ill-conditioned", problem)
    return Verdict("wrong", problem)


def _at_8_bit_noise(
    session: ort.InferenceSession,
    names: list[str],
    judged: list[dict[str, np.ndarray]],
    seed: int,
) -> list[list[np.ndarray]]:
    """The float model's outputs on its judged feeds plus the noise of two 8-bit roundings
    (uniform within ± one step, the feed's largest magnitude / 127): what an output that
    amplifies 8-bit noise past the floors (a high-gain layer before a hard clip) does in float
    alone."""
    rng = np.random.default_rng(seed + 7)
    outputs = []
    for feed in judged:
        x = feed["x"]
        step = float(np.max(np.abs(x))) / INT8_STEPS
        noisy = x + rng.uniform(-step, step, x.shape).astype(np.float32)
        outputs.append(session.run(names, {"x": noisy}))
    return outputs


def summarize(verdicts: dict[int, Verdict]) -> str:
    """The counts table `make fuzz` prints, failures listed under it."""
    counts = Counter(v.outcome for v in verdicts.values())
    order = ["correct", *sorted(k for k in counts if k.startswith("refused")), "unchecked"]
    order.append("ill-conditioned")
    order += list(FAILURES)
    lines = [f"{len(verdicts)} graphs"]
    lines += [f"  {name:<18} {counts.get(name, 0):>6}" for name in order]
    for seed, verdict in sorted(verdicts.items()):
        if verdict.outcome in (*FAILURES, "ill-conditioned"):
            lines.append(f"  seed {seed}: {verdict.outcome}: {verdict.detail[:300]}")
        for text in sorted(set(verdict.warnings)):
            lines.append(f"  seed {seed} ({verdict.outcome}) warned: {text}")
    return "\n".join(lines)


def run(seeds: range, progress: Any = None) -> dict[int, Verdict]:
    """Classify every seed's graph."""
    from .graphs import random_graph

    verdicts = {}
    for seed in seeds:
        verdicts[seed] = classify(random_graph(seed))
        if progress is not None:
            progress(seed, verdicts[seed])
    return verdicts
