"""The two fuzzers at scale (`make fuzz`): random graphs through the compiler, mutated program
binaries through `HybridSession`; prints the count of each outcome and every failure.

The test suite runs fixed sets (seeds below `compile_fuzz.CI_GRAPHS` and
`program_fuzz.CI_MUTANTS`); this runs `--graphs` and `--mutants` seeds from `--start` (by
default the ones after them), each graph or mutant a pure function of its seed, so a failure is
reproduced by its seed alone:

    python bench/fuzz.py --graphs 2000 --mutants 5000
    python bench/fuzz.py --graphs 1 --mutants 0 --start 1234   # one graph again

Exits 1 when any graph crashed, drifted, gave an unrunnable hybrid or was invalid but accepted,
or any mutant crashed, gave a wrong result or exceeded its memory bound.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fuzz import compile_fuzz, program_fuzz


def _fuzz(label: str, first: int, count: int, run: Callable[[range], tuple[str, bool]]) -> bool:
    """Run one fuzzer over `count` seeds from `first`, print its table; whether any failed."""
    began = time.perf_counter()
    table, failed = run(range(first, first + count))
    print(f"{label}, seeds {first}…{first + count - 1}:")
    print(table)
    print(f"  ({time.perf_counter() - began:.0f} s)")
    return failed


def _graphs(seeds: range) -> tuple[str, bool]:
    verdicts = compile_fuzz.run(seeds)
    failed = any(v.outcome in compile_fuzz.FAILURES for v in verdicts.values())
    return compile_fuzz.summarize(verdicts), failed


def _mutants(seeds: range) -> tuple[str, bool]:
    counts = program_fuzz.run(seeds)
    return program_fuzz.summarize(counts), any(counts[n] for n in program_fuzz.FAILURES)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graphs", type=int, default=2000, help="random graphs to compile")
    parser.add_argument("--mutants", type=int, default=5000, help="mutated programs to run")
    parser.add_argument("--start", type=int, default=None, help="first seed (default: after CI's)")
    options = parser.parse_args()
    failed = False
    if options.graphs > 0:
        first = compile_fuzz.CI_GRAPHS if options.start is None else options.start
        failed |= _fuzz("graph fuzz", first, options.graphs, _graphs)
    if options.mutants > 0:
        first = program_fuzz.CI_MUTANTS if options.start is None else options.start
        failed |= _fuzz("program mutation fuzz", first, options.mutants, _mutants)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
