"""What the fused runners (`border`, `elementwise`) read off a CPU part's nodes: its connected
pieces (nodes joined by the values one writes and another reads), the values each piece reads
and gives, a node's attribute and the inverse of a transpose's permutation.

The schedule puts independent work in one CPU part (the border nodes of an Inception block's
parallel branches, two heads' dequantizations); the fused runners plan each piece on its own,
as each has its own layout and its own sizes.
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


def piece_interfaces(
    nodes: Sequence[onnx.NodeProto],
    inputs: Sequence[str],
    outputs: Sequence[str],
    constants: dict[str, onnx.TensorProto],
) -> list[tuple[list[onnx.NodeProto], list[str], list[str]]] | None:
    """Per connected piece of a part: its nodes, the values it reads (sorted; constants left
    out) and the part's outputs it gives; None when a piece reads a value the part does not
    take or gives none of its outputs."""
    pieces = []
    for members in connected_pieces(nodes):
        piece = [nodes[i] for i in members]
        produced = {name for node in piece for name in node.output}
        reads = sorted(
            {
                name
                for node in piece
                for name in node.input
                if name and name not in produced and name not in constants
            }
        )
        gives = [name for name in outputs if name in produced]
        if not set(reads) <= set(inputs) or not gives:
            return None
        pieces.append((piece, reads, gives))
    return pieces


def attribute(node: onnx.NodeProto, name: str) -> onnx.AttributeProto | None:
    """The node's attribute of that name, None when it has none."""
    return next((a for a in node.attribute if a.name == name), None)


def inverse_perm(perm: Sequence[int]) -> tuple[int, ...]:
    """The permutation that undoes `perm` (Transpose(perm) then Transpose(inverse))."""
    inverse = [0] * len(perm)
    for position, axis in enumerate(perm):
        inverse[axis] = position
    return tuple(inverse)
