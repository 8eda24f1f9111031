"""Compile-time benchmark: how `compile_model` and `analyze` scale with the node count.

    python bench/compile_time.py [--repeat 3] [--blocks 12,50,200,800] [--profile]

Models are `akidac.models.chain_net(blocks)` (about 4 ONNX nodes per block). Every model is
compiled once as a warm-up (excluded: Python start-up, imports, numba JIT and first-call caches),
then `--repeat` times; the table shows the median. `--profile` runs cProfile over one compile of
the largest model and prints the functions with the most cumulative and own time.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import itertools

import onnx

from akidac.api import analyze, compile_model
from akidac.errors import AkidacError
from akidac.models import chain_net
from akidac.passes import CompileOptions

TARGETS = {200: 0.5, 3200: 5.0}  # nodes → seconds (compile)
LINEAR_SLACK = 1.5  # time ratio / node ratio allowed per step for "about linear"


def median_seconds(action: Callable[[], object], repeat: int) -> float:
    action()  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(
    models: list[onnx.ModelProto],
    what: str,
    action: Callable[[onnx.ModelProto], object],
    repeat: int,
) -> list[tuple[int, float]]:
    rows: list[tuple[int, float]] = []
    print(f"\n{what}")
    print(f"{'nodes':>7} {'seconds':>9} {'ms/node':>8} {'time ratio':>11} {'node ratio':>11}")
    for model in models:
        nodes = len(model.graph.node)
        try:
            seconds = median_seconds(lambda model=model: action(model), repeat)
        except AkidacError as error:  # report it and go on with the other sizes
            print(f"{nodes:>7}   FAILED: {error}", flush=True)
            continue
        if rows:
            prev_nodes, prev_seconds = rows[-1]
            ratios = f"{seconds / prev_seconds:>11.2f} {nodes / prev_nodes:>11.2f}"
        else:
            ratios = f"{'-':>11} {'-':>11}"
        print(f"{nodes:>7} {seconds:>9.3f} {1000 * seconds / nodes:>8.3f} {ratios}", flush=True)
        rows.append((nodes, seconds))
    return rows


def verdict(rows: list[tuple[int, float]]) -> list[str]:
    if len(rows) < 2:
        return ["  not enough successful runs to judge"]
    lines = []
    for target_nodes, limit in TARGETS.items():
        near = min(rows, key=lambda row: abs(row[0] - target_nodes))
        ok = near[1] < limit
        lines.append(
            f"  {near[0]} nodes (target ~{target_nodes}) in {near[1]:.3f} s "
            f"< {limit} s: {'MET' if ok else 'NOT MET'}"
        )
    worst = max((s2 / s1) / (n2 / n1) for (n1, s1), (n2, s2) in itertools.pairwise(rows))
    lines.append(
        f"  growth: worst (time ratio / node ratio) = {worst:.2f} "
        f"(<= {LINEAR_SLACK} counts as about linear): "
        f"{'MET' if worst <= LINEAR_SLACK else 'NOT MET'}"
    )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--blocks", default="12,50,200,800", help="chain_net block counts (about 4 nodes each)"
    )
    parser.add_argument("--samples", type=int, default=4, help="calibration samples")
    parser.add_argument(
        "--fidelity-samples",
        type=int,
        default=0,
        help="held-out samples for the fidelity figure (0: compile only, the default)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="cProfile one compile of the largest model"
    )
    args = parser.parse_args()

    models = [chain_net(int(b)) for b in args.blocks.split(",")]
    options = CompileOptions(num_samples=args.samples, fidelity_samples=args.fidelity_samples)
    print(
        f"akidac compile-time bench: chain_net models, median of {args.repeat} runs after one "
        "warm-up run per model (excluded: Python start-up, imports, numba JIT compilation); "
        f"in-process, no file written; IR verifier on after every pass (the default); "
        f"fidelity measured on {args.fidelity_samples} samples (0: not measured)"
    )
    print("targets: 200 nodes < 0.5 s, 3200 nodes < 5 s, about linear growth")

    compile_rows = measure(
        models,
        f"compile_model(num_samples={args.samples})",
        lambda m: compile_model(m, options=options),
        args.repeat,
    )
    analyze_rows = measure(
        models, "analyze (report only, no quantization)", lambda m: analyze(m), args.repeat
    )

    print("\ncompile targets:")
    print("\n".join(verdict(compile_rows)))
    print("analyze (same targets, for reference):")
    print("\n".join(verdict(analyze_rows)))

    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        compile_model(models[-1], options=options)
        profiler.disable()
        for key in ("cumulative", "tottime"):
            stream = io.StringIO()
            pstats.Stats(profiler, stream=stream).sort_stats(key).print_stats(20)
            print(f"\nprofile of one compile of {len(models[-1].graph.node)} nodes, by {key}:")
            print(stream.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
