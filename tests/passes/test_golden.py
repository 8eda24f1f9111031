"""Golden tests of the passes: IR text in, passes run, IR text (and near misses) out.

`golden/*.air-cases` hold many small cases separated by `// -----`. A case is a few comment
lines — `// CASE: name`, `// RUN: pass, pass`, a sentence of what it shows — then the input
IR, then `// EXPECT:` and the expected output IR (or `// EXPECT: unchanged`), then optionally
`// MISSES:` and one `// rule 'node': reason` line per near miss the passes record. A case
without MISSES expects none. Every input must be in printed form (it round-trips through the
parser to the same text); every output round-trips too. `--update-goldens` rewrites EXPECT and
MISSES from the actual output (run `pytest tests/passes --update-goldens`: the option lives in
tests/passes/conftest.py); review the diff before committing it.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from akidac.api import pass_context
from akidac.ir.attributes import DenseAttr, content_hash
from akidac.ir.graph import Graph
from akidac.ir.parser import parse_graph
from akidac.ir.printer import print_graph
from akidac.ir.verifier import verify_graph
from akidac.passes import DEFAULT_PIPELINE, PassManager, VerifyInstrument
from akidac.passes.canonicalize import RULES as CANONICALIZE_RULES
from akidac.passes.rewrites import IMPORT_CLEANUP_RULES

GOLDEN = Path(__file__).parent / "golden"
DOCS = Path(__file__).parents[2] / "docs" / "passes.md"
SEPARATOR = "// -----"


@dataclass
class Case:
    """One golden case: where it is, its header comments, input, expectation and misses."""

    path: Path
    name: str
    passes: list[str]
    header: list[str]
    input_text: str
    expected: str | None  # None: the output equals the input
    misses: list[str]

    def render(self, expected: str | None, misses: list[str]) -> str:
        lines = [*self.header, self.input_text.rstrip("\n")]
        if expected is None:
            lines.append("// EXPECT: unchanged")
        else:
            lines += ["// EXPECT:", expected.rstrip("\n")]
        if misses:
            lines += ["// MISSES:", *(f"// {m}" for m in misses)]
        return "\n".join(lines)


def parse_cases(path: Path) -> tuple[list[str], list[Case]]:
    """The file's chunks (preamble and cases, as text) and its parsed cases."""
    chunks = path.read_text().rstrip("\n").split(f"\n{SEPARATOR}\n")
    cases = []
    for chunk in chunks:
        lines = chunk.split("\n")
        header = _leading_comments(lines)
        fields = dict(
            re.match(r"// ([A-Z]+): ?(.*)$", line).groups()  # type: ignore[union-attr]
            for line in header
            if re.match(r"// [A-Z]+:", line)
        )
        if "CASE" not in fields:
            continue
        body = lines[len(header) :]
        expect_at = next(i for i, line in enumerate(body) if line.startswith("// EXPECT:"))
        misses_at = next((i for i, line in enumerate(body) if line == "// MISSES:"), len(body))
        unchanged = body[expect_at].removeprefix("// EXPECT:").strip() == "unchanged"
        expected = None if unchanged else "\n".join(body[expect_at + 1 : misses_at]) + "\n"
        cases.append(
            Case(
                path=path,
                name=fields["CASE"],
                passes=[p.strip() for p in fields["RUN"].split(",")],
                header=header,
                input_text="\n".join(body[:expect_at]) + "\n",
                expected=expected,
                misses=[line.removeprefix("// ") for line in body[misses_at + 1 :]],
            )
        )
    return chunks, cases


def _leading_comments(lines: list[str]) -> list[str]:
    count = 0
    while count < len(lines) and lines[count].startswith("//"):
        count += 1
    return lines[:count]


def all_cases() -> list[Case]:
    return [case for path in sorted(GOLDEN.glob("*.air-cases")) for case in parse_cases(path)[1]]


def run_case(case: Case) -> tuple[Graph, str, list[str]]:
    graph = parse_graph(case.input_text)
    ctx = pass_context()
    PassManager(case.passes, [VerifyInstrument()]).run(graph, ctx)
    misses = [str(m) for m in ctx.analyses.get("rewrite_misses", [])]
    return graph, print_graph(graph), misses


def write_back(case: Case, expected: str | None, misses: list[str]) -> None:
    chunks, _ = parse_cases(case.path)
    for index, chunk in enumerate(chunks):
        if f"// CASE: {case.name}" in chunk.split("\n"):
            chunks[index] = case.render(expected, misses)
    case.path.write_text(f"\n{SEPARATOR}\n".join(chunks) + "\n")


CASES = all_cases()


@pytest.mark.parametrize("case", CASES, ids=[f"{c.path.stem}:{c.name}" for c in CASES])
def test_golden_case(case: Case, update_goldens: bool) -> None:
    graph_in = parse_graph(case.input_text)
    verify_graph(graph_in)
    assert print_graph(graph_in, elide_weights=False) == case.input_text, (
        "the input is not in printed form (print → parse → print changes it)"
    )
    graph, actual, misses = run_case(case)
    weights = {content_hash(v.const): v.const for v in graph.constants.values()}  # type: ignore[arg-type]
    weights.update(
        (content_hash(attr.array), attr.array)
        for op in graph.ops
        for attr in op.attrs.values()
        if isinstance(attr, DenseAttr)
    )  # elided dense attributes (a LUT's table) parse back from the same weights
    assert print_graph(parse_graph(actual, weights=weights)) == actual
    expected_now = None if actual == case.input_text else actual
    if update_goldens:
        if (expected_now, misses) != (case.expected, case.misses):
            write_back(case, expected_now, misses)
        return
    assert actual == (case.input_text if case.expected is None else case.expected)
    assert misses == case.misses


def test_case_names_are_unique() -> None:
    names = [(c.path.name, c.name) for c in CASES]
    assert len(names) == len(set(names))


def test_every_rewrite_rule_has_golden_cases_and_a_documented_algebra() -> None:
    docs = DOCS.read_text()
    assert "## Rewrites" in docs
    section = docs.split("## Rewrites", 1)[1]
    goldens = "\n".join(path.read_text() for path in GOLDEN.glob("*.air-cases"))
    for rule in (*IMPORT_CLEANUP_RULES, *CANONICALIZE_RULES):
        assert rule.doc, rule.name
        assert f"`{rule.name}`" in section, f"docs/passes.md does not list {rule.name}"
        assert rule.name in goldens, f"no golden case names {rule.name}"


def test_every_pass_of_the_default_pipeline_has_at_least_four_golden_cases() -> None:
    """A case counts for the last pass it runs: the passes before it only prepare its input."""
    last_pass = Counter(case.passes[-1] for case in CASES)
    thin = {name: last_pass[name] for name in DEFAULT_PIPELINE if last_pass[name] < 4}
    assert not thin, f"passes with fewer than 4 golden cases: {thin}"
