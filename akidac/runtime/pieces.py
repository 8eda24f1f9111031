"""The connected pieces of a CPU part: nodes joined by the values one writes and another reads.

The schedule puts independent work in one CPU part (the border nodes of an Inception block's
parallel branches, two heads' dequantizations); the fused runners (`border`, `elementwise`)
plan each piece on its own, as each has its own layout and its own sizes.
"""

from __future__ import annotations

from collections.abc import Sequence

import onnx


def connected_pieces(nodes: Sequence[onnx.NodeProto]) -> list[list[int]]:
    """The indices of `nodes` grouped by data flow (union-find on produced/consumed values),
    each group in node order, the groups in the order of their first node."""
    owner = list(range(len(nodes)))

    def find(i: int) -> int:
        while owner[i] != i:
            owner[i] = owner[owner[i]]
            i = owner[i]
        return i

    writer = {name: i for i, node in enumerate(nodes) for name in node.output if name}
    for i, node in enumerate(nodes):
        for name in node.input:
            if name in writer:
                owner[find(i)] = find(writer[name])
    pieces: dict[int, list[int]] = {}
    for i in range(len(nodes)):
        pieces.setdefault(find(i), []).append(i)
    return list(pieces.values())
