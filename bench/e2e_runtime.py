"""Benchmark: a whole hybrid model in `HybridSession` against the float model in onnxruntime.

For every model of the test zoo (tests/models/zoo.py) it compiles the model with defaults
(calibrated on smooth random samples), then times one batch-1 inference of

- the hybrid model in `HybridSession` (CPU parts in onnxruntime, AkidaOps on the hardware model),
- the float model in onnxruntime,
- the same float model quantized by onnxruntime (`quantize_static`, QDQ, calibrated on a few
  random samples of the same distribution), in onnxruntime,

all on one thread (`intra_op_num_threads=1`; the hardware model always runs on one thread).
The three are timed in turn, round after round, and each figure is the median of its rounds
after a warm-up, so that a burst of load on a shared machine hits all of them alike. Ratios are
hybrid time / ORT time, so < 1 means the hybrid model is faster. Target (DESIGN.md): hybrid
≤ 3× ORT float on models whose MACs are ≥ 90% on Akida.

The hybrid session runs its border CPU parts (Transpose / QuantizeLinear / DequantizeLinear
around each AkidaOp, `akidac/runtime/border.py`) and its elementwise CPU parts (SE means and
scales, PReLU, residual adds, `akidac/runtime/elementwise.py`) fused, in numba; with
`--unfused` the table gets one more column, the same session with `fuse_borders=False` (all
those parts in onnxruntime sessions), timed in the same interleaved rounds: a side-by-side
figure of what fusing gains.

It also prints the per-call overhead of one AkidaOp step: the Akida step of a program of one
1×1 convolution on a 1×1×8 input, whose arithmetic is a few dozen multiply-adds.

With `--realworld` it also times the real models that bench/realworld.py has compiled into its
cache (CACHE/work/NAME/hybrid.onnx, default ~/.cache/akidac-realworld; models it has not compiled
are skipped): the hybrid model on the first of its held-out inputs against the float model
(CACHE/models/NAME.onnx) and the float model quantized by `quantize_static` on its calibration
samples, as bench/realworld.py does, with the MAC share from its report.

A reference the bench cannot build (onnxruntime's quantizer fails on the model, or the
quantized model does not run) is reported in its cell as "n/a (reason)"; the other figures stay.

Run: `python bench/e2e_runtime.py [--rounds N] [--models a b ...] [--unfused]
[--realworld [CACHE]] [--realworld-models a,b]`.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from models.samples import smooth_samples  # noqa: E402
from models.zoo import ZOO  # noqa: E402

from akidac.api import compile_model  # noqa: E402
from akidac.passes import CompileOptions  # noqa: E402
from akidac.runtime.session import (  # noqa: E402
    HybridSession,
    _AkidaStep,
    _BorderStep,
    _FusedStep,
    _run_akida,
)


def _one_thread() -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return options


class _Reader:
    """A `CalibrationDataReader` over a few samples (batch 1 each)."""

    def __init__(self, samples: dict[str, np.ndarray]) -> None:
        count = len(next(iter(samples.values())))
        self._feeds = iter(
            [{name: array[i : i + 1] for name, array in samples.items()} for i in range(count)]
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._feeds, None)


def quantized_int8(model: onnx.ModelProto, samples: dict[str, np.ndarray]) -> bytes | str:
    """The model quantized by onnxruntime (QDQ, int8 weights and activations), or why not."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    logging.getLogger().setLevel(logging.ERROR)  # its advice to pre-process, once per model
    with tempfile.TemporaryDirectory() as folder:
        src, dst = Path(folder) / "float.onnx", Path(folder) / "int8.onnx"
        onnx.save(model, src)
        try:
            quantize_static(
                str(src),
                str(dst),
                _Reader(samples),
                quant_format=QuantFormat.QDQ,
                activation_type=QuantType.QInt8,
                weight_type=QuantType.QInt8,
            )
        except Exception as error:  # a figure script reports and goes on
            return _reason(error)
        return dst.read_bytes()


def _reason(error: BaseException) -> str:
    """One short line for a table cell: the exception's type and first line."""
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {text}"[:100].replace("|", "/")


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1e3


def time_interleaved(runs: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Median ms of each callable, timed in turn round after round, after two warm-up rounds."""
    for _ in range(2):
        for run in runs.values():
            run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: _median_ms(t) for name, t in times.items()}


def measure(name: str, rounds: int, unfused: bool = False) -> str:
    model = ZOO[name][0]()
    data = smooth_samples(model, 40, seed=7)
    calibration = {k: v[:32] for k, v in data.items()}
    feed = {k: v[32:33] for k, v in data.items()}
    result = compile_model(
        model, options=CompileOptions(samples=calibration, num_samples=32, fidelity_samples=0)
    )
    summary = result.report["summary"]
    macs = summary["macs_on_akida"] / max(summary["macs_total"], 1)
    hybrid = HybridSession(result.model, sess_options=_one_thread())
    float_session = ort.InferenceSession(
        model.SerializeToString(), _one_thread(), providers=["CPUExecutionProvider"]
    )
    runs: dict[str, Callable[[], object]] = {
        "hybrid": lambda: hybrid.run(None, feed),
        "float": lambda: float_session.run(None, feed),
    }
    if unfused:
        plain = HybridSession(result.model, sess_options=_one_thread(), fuse_borders=False)
        runs["unfused"] = lambda: plain.run(None, feed)
    int8 = quantized_int8(model, {k: v[:8] for k, v in calibration.items()})
    int8_note = ""
    if isinstance(int8, str):
        int8_note = int8
    else:
        int8_session = ort.InferenceSession(int8, _one_thread(), providers=["CPUExecutionProvider"])
        runs["int8"] = lambda: int8_session.run(None, feed)
    ms = time_interleaved(runs, rounds)
    regions = sum(isinstance(s, _AkidaStep) for s in hybrid.steps)
    return _row(name, macs, regions, ms, int8_note, unfused)


def _row(
    name: str,
    macs: float,
    regions: int,
    ms: dict[str, float],
    int8_note: str = "",
    unfused: bool = False,
) -> str:
    """A table row; `int8_note` says why there is no ORT int8 figure ("n/a (reason)");
    `unfused` adds the hybrid session's time with its border parts in onnxruntime."""
    int8_ms = f"{ms['int8']:.3f}" if "int8" in ms else f"n/a ({int8_note or 'not run'})"
    int8_ratio = f"{ms['hybrid'] / ms['int8']:.2f}×" if "int8" in ms else "n/a"
    target = ""
    if macs >= 0.9:
        float_ok = ms["hybrid"] <= 3 * ms["float"]
        int8_ok = "int8" in ms and ms["hybrid"] <= 1.5 * ms["int8"]
        target = f"{'yes' if float_ok else 'NO'} / {'yes' if int8_ok else 'NO'}"
    extra = ""
    if unfused:
        extra = f" {ms['unfused']:.3f} |" if "unfused" in ms else " n/a |"
    return (
        f"| {name} | {macs:.0%} | {regions} | {ms['hybrid']:.3f} | {ms['float']:.3f} | {int8_ms} "
        f"| {ms['hybrid'] / ms['float']:.2f}× | {int8_ratio} | {target} |{extra}"
    )


def measure_realworld(work: Path, cache: Path, rounds: int, unfused: bool = False) -> str:
    """One cached real model of bench/realworld.py: hybrid vs float vs ORT int8, batch 1."""
    import json

    from realworld import ort_int8_session

    name = work.name
    float_path = cache / "models" / f"{name}.onnx"
    report = json.loads((work / "report.json").read_text())["summary"]
    macs = report["macs_on_akida"] / max(report["macs_total"], 1)
    with np.load(work / "heldout.npz") as held:
        # np.asarray: a scalar input (silero_vad's sample rate) indexes to a NumPy scalar,
        # which onnxruntime refuses ("Unable to handle object of type numpy.int64")
        feed = {k: np.asarray(held[k][0]) for k in held.files}
    hybrid = HybridSession(str(work / "hybrid.onnx"), sess_options=_one_thread())
    float_session = ort.InferenceSession(
        str(float_path), _one_thread(), providers=["CPUExecutionProvider"]
    )
    runs: dict[str, Callable[[], object]] = {
        "hybrid": lambda: hybrid.run(None, feed),
        "float": lambda: float_session.run(None, feed),
    }
    if unfused:
        plain = HybridSession(
            str(work / "hybrid.onnx"), sess_options=_one_thread(), fuse_borders=False
        )
        runs["unfused"] = lambda: plain.run(None, feed)
    calib = work / "calib.npz"
    int8_note = "no calibration samples"
    if calib.exists():
        names = list(feed)
        batch = {n: int(feed[n].shape[0]) if feed[n].ndim else 0 for n in names}
        try:
            int8 = ort_int8_session(str(float_path), str(calib), _one_thread(), names, batch)
            int8.run(None, feed)  # a quantized model that loads but cannot run is n/a too
            runs["int8"] = lambda: int8.run(None, feed)
        except Exception as error:  # a figure script reports and goes on
            int8_note = _reason(error)
    ms = time_interleaved(runs, rounds)
    regions = sum(isinstance(s, _AkidaStep) for s in hybrid.steps)
    return _row(name, macs, regions, ms, int8_note, unfused)


def tiny_model() -> onnx.ModelProto:
    """One 1×1 convolution with a ReLU on a 1×8×1×1 input: an AkidaOp with almost no work."""
    rng = np.random.default_rng(0)
    weights = numpy_helper.from_array(
        (rng.standard_normal((8, 8, 1, 1)) * 0.3).astype(np.float32), "w"
    )
    bias = numpy_helper.from_array(np.zeros(8, np.float32), "b")
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv"),
        helper.make_node("Relu", ["c"], ["y"], name="relu"),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 1, 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 1, 1])],
        [weights, bias],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def akida_op_overhead(rounds: int) -> str:
    """Median µs of the Akida step alone (and of the whole session run) on the tiny program."""
    model = tiny_model()
    samples = smooth_samples(model, 16, seed=1)
    result = compile_model(
        model, options=CompileOptions(samples=samples, num_samples=16, fidelity_samples=0)
    )
    session = HybridSession(result.model, sess_options=_one_thread())
    steps = [s for s in session.steps if isinstance(s, _AkidaStep)]
    if len(steps) != 1:
        return f"the tiny model compiled to {len(steps)} AkidaOps, not 1: no figure"
    step = steps[0]
    env = session.run_all({"x": samples["x"][:1]})
    x = env[step.input]
    run_step = _run_akida
    repeat = 200
    times, whole = [], []
    for _ in range(max(rounds, 5)):
        start = time.perf_counter()
        for _ in range(repeat):
            run_step(step, x)
        times.append((time.perf_counter() - start) / repeat)
        start = time.perf_counter()
        for _ in range(repeat):
            session.run(None, {"x": samples["x"][:1]})
        whole.append((time.perf_counter() - start) / repeat)
    step_us = statistics.median(times) * 1e6
    whole_us = statistics.median(whole) * 1e6
    fused = sum(isinstance(s, (_BorderStep, _FusedStep)) for s in session.run_steps)
    return (
        f"per-AkidaOp overhead (one 1×1 conv on 1×1×8, input {x.dtype} {x.shape}): "
        f"{step_us:.1f} µs per step; whole session run {whole_us:.1f} µs "
        f"({len(session.run_steps)} steps, {fused} of them border parts run fused)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--models", nargs="*", default=sorted(ZOO))
    parser.add_argument(
        "--unfused",
        action="store_true",
        help="add a column: the hybrid session with its border parts in onnxruntime sessions",
    )
    parser.add_argument(
        "--realworld",
        nargs="?",
        const=str(Path.home() / ".cache" / "akidac-realworld"),
        default=None,
        metavar="CACHE",
        help="also time the real models bench/realworld.py compiled into CACHE",
    )
    parser.add_argument(
        "--realworld-models",
        default="",
        metavar="A,B",
        help="with --realworld: only these cached models (comma-separated; default all)",
    )
    args = parser.parse_args()
    ort.set_default_logger_severity(3)  # run-time shape warnings of some real models
    print(f"batch 1, one thread, medians of {args.rounds} interleaved rounds after 2 warm-ups")
    print(
        "| model | MACs on Akida | AkidaOps | hybrid ms | ORT float ms | ORT int8 ms "
        "| hybrid/float | hybrid/int8 | ≤ 3× float / ≤ 1.5× int8 (≥ 90% MACs) |"
        + (" hybrid, borders in ORT ms |" if args.unfused else "")
    )
    print(
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
        + (" --- |" if args.unfused else "")
    )
    for name in args.models:
        try:
            row = measure(name, args.rounds, args.unfused)
        except Exception as error:  # a figure script reports and goes on
            row = f"| {name} | error: {type(error).__name__}: {error} | | | | | | | |"
        print(row, flush=True)
    if args.realworld:
        cache = Path(args.realworld)
        works = sorted((cache / "work").glob("*/hybrid.onnx")) if cache.is_dir() else []
        only = {name for name in args.realworld_models.split(",") if name}
        if only:
            works = [path for path in works if path.parent.name in only]
        if not works:
            print(f"no compiled real models under {cache}/work: run bench/realworld.py first")
        for hybrid_path in works:
            work = hybrid_path.parent
            if not (cache / "models" / f"{work.name}.onnx").exists():
                continue
            try:
                row = measure_realworld(work, cache, args.rounds, args.unfused)
            except Exception as error:  # a figure script reports and goes on
                row = f"| {work.name} | error: {type(error).__name__}: {error} | | | | | | | |"
            print(row, flush=True)
    print(akida_op_overhead(args.rounds))


if __name__ == "__main__":
    main()
