"""CPU parts grouped by data flow (`_schedule`): each CPU node runs in the earliest CPU part
after everything it reads, so parallel branches do not cost one onnxruntime session per
stretch between AkidaOps, and every value is still computed before it is read."""

from __future__ import annotations

import numpy as np
from onnx import helper

from akidac.runtime.session import _schedule, node_reads


def _node(op: str, inputs: list[str], output: str):
    return helper.make_node(op, inputs, [output], name=output)


def test_a_parallel_branch_listed_after_an_akida_op_joins_the_first_cpu_part() -> None:
    nodes = [
        _node("Relu", ["x"], "p"),  # 0 CPU
        _node("AkidaOp", ["p"], "a"),  # 1 Akida
        _node("Neg", ["x"], "q"),  # 2 CPU, reads only the graph input
        _node("AkidaOp", ["q"], "b"),  # 3 Akida
        _node("Add", ["a", "b"], "y"),  # 4 CPU, after both
    ]
    assert _schedule(nodes, [node_reads(n) for n in nodes], {1, 3}) == [[0, 2], [1], [3], [4]]


def _cuts_at_every_akida_op(count: int, akida: set[int]) -> int:
    """How many CPU parts the node list cut at every AkidaOp would give."""
    parts, open_part = 0, False
    for index in range(count):
        if index in akida:
            open_part = False
        elif not open_part:
            parts, open_part = parts + 1, True
    return parts


def test_random_graphs_keep_every_read_after_its_write_and_never_add_cpu_parts() -> None:
    rng = np.random.default_rng(0)
    for _ in range(300):
        count = int(rng.integers(1, 25))
        nodes, akida = [], set()
        for index in range(count):
            reads = ["x"] + [f"v{j}" for j in range(index) if rng.random() < 0.15]
            nodes.append(_node("Op", reads, f"v{index}"))
            if rng.random() < 0.35:
                akida.add(index)
        groups = _schedule(nodes, [node_reads(n) for n in nodes], akida)
        assert sorted(i for group in groups for i in group) == list(range(count))
        where = {i: g for g, group in enumerate(groups) for i in group}
        for g, group in enumerate(groups):
            assert len(group) == 1 or not (set(group) & akida)  # an AkidaOp runs alone
            assert group == sorted(group)  # the file's topological order within a part
            for i in group:
                for name in nodes[i].input[1:]:
                    writer = int(name[1:])
                    assert where[writer] < g or (where[writer] == g and writer < i)
        cpu_parts = sum(1 for group in groups if group[0] not in akida)
        assert cpu_parts <= _cuts_at_every_akida_op(count, akida)
