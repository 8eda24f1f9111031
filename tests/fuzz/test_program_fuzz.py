"""The program mutation fuzz on a fixed set of mutants (`fuzz.program_fuzz` states the rule):
every mutated program is refused with exit 6, or runs and gives exactly what its decoded
program defines; never another exit code, never more than a bounded amount of memory."""

from __future__ import annotations

import resource

import pytest

from .program_fuzz import CI_MUTANTS, FAILURES, Source, load_sources, run, summarize

#: how far the whole run may raise the process's peak resident set (numba's own allocations
#: are not traced by tracemalloc)
RSS_GROWTH_BOUND_KIB = 512 << 10


@pytest.fixture(scope="module")
def sources() -> list[Source]:
    return load_sources()


def test_every_mutant_is_refused_with_exit_6_or_runs_as_its_decoded_program(
    sources: list[Source],
) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    counts = run(range(CI_MUTANTS), sources)
    table = summarize(counts)
    print(table)
    assert not any(counts[name] for name in FAILURES), table
    assert counts["refused"] > 0 and counts["ran"] > 0, table
    growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert growth <= RSS_GROWTH_BOUND_KIB, f"peak RSS grew by {growth} KiB"
