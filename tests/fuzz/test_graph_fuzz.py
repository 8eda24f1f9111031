"""The compile fuzz on a fixed set of random graphs (`fuzz.graphs`, one per seed): each one
compiles to a hybrid that matches onnxruntime on the float model, or is refused with a
documented exit code; none crashes, drifts, or gives a hybrid that does not run
(`fuzz.compile_fuzz` states the rule). `make fuzz` runs thousands more."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .compile_fuzz import CI_GRAPHS, FAILURES, classify, run, summarize
from .graphs import HypothesisChooser, build_graph


def test_every_graph_of_the_fixed_set_compiles_correctly_or_is_refused_by_code() -> None:
    verdicts = run(range(CI_GRAPHS))
    table = summarize(verdicts)
    print(table)
    assert not [s for s, v in verdicts.items() if v.outcome in FAILURES], table
    # the set exercises what it is meant to: most graphs compile, a few are refused
    compiled = sum(v.outcome == "correct" for v in verdicts.values())
    assert compiled >= 0.8 * CI_GRAPHS, table
    assert any(v.outcome == "refused 3" for v in verdicts.values()), table


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_hypothesis_graphs_compile_correctly_or_are_refused_by_code(data: st.DataObject) -> None:
    """The same builder driven by hypothesis: locally it explores new graphs and shrinks a
    failing one to a small example."""
    graph = build_graph(HypothesisChooser(data.draw), seed=0)
    verdict = classify(graph)
    assert verdict.outcome not in FAILURES, f"{verdict.outcome}: {verdict.detail}"
