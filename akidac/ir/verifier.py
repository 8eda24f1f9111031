"""Structural verifier of the IR: SSA, topological order, use lists, types, akida op rules.

Runs after every pass in tests and under `--verify-each`. It raises `VerificationError` (an
internal error: a pass broke the IR) listing every problem, each naming the op and its origin,
and the pass that left the graph so when the caller says which one it was.
"""

from __future__ import annotations

from akidac.errors import InternalError
from akidac.ir.akida_candidates import describe_akida_op
from akidac.ir.akida_dialect import verify_akida_op
from akidac.ir.graph import Graph, Op
from akidac.target.constraints import check_layer


class VerificationError(InternalError):
    """The IR is malformed; this is a bug in the pass that produced it (`pass_name`, if known)."""

    code_prefix = "AK-VERIFY"

    def __init__(self, message: str, *, pass_name: str | None = None) -> None:
        super().__init__(message)
        self.pass_name = pass_name


def _where(op: Op) -> str:
    origin = f" (from {', '.join(op.origin)})" if op.origin else ""
    return f"{op.kind} {op.outputs[0].name if op.outputs else '?'}{origin}"


def verify_graph(graph: Graph, *, after_pass: str | None = None) -> None:
    """Raise `VerificationError` if `graph` breaks an IR invariant.

    `after_pass` names the pass that produced `graph`; the error then blames it, so a broken
    invariant is traced to the pass that broke it rather than to the one that tripped on it.
    """
    problems: list[str] = []
    defined: set[int] = set()
    names: set[str] = set()
    for value in [*graph.inputs, *graph.constants.values()]:
        defined.add(id(value))
        if value.name in names:
            problems.append(f"value {value.name!r} is defined twice")
        names.add(value.name)
        if value.producer is not None:
            problems.append(f"graph input/constant {value.name!r} has a producer")
    for value in graph.constants.values():
        if value.const is None:
            problems.append(f"constant {value.name!r} holds no data")
    for op in graph.ops:
        if "." not in op.kind:
            problems.append(f"op kind {op.kind!r} has no dialect prefix")
        for index, operand in enumerate(op.inputs):
            if operand is None:
                continue
            if id(operand) not in defined:
                problems.append(
                    f"{_where(op)}: operand {index} ({operand.name!r}) is used before it is defined"
                )
            if op not in operand.users:
                problems.append(f"{_where(op)}: missing from the users of {operand.name!r}")
        for value in op.outputs:
            if value.producer is not op:
                problems.append(f"{_where(op)}: result {value.name!r} names another producer")
            if value.name in names:
                problems.append(f"value {value.name!r} is defined twice")
            names.add(value.name)
            defined.add(id(value))
        if op.dialect == "akida":
            structural = verify_akida_op(op)
            problems.extend(f"{_where(op)}: {p}" for p in structural)
            if not structural:
                # the hardware rules: one source of truth, akidac.target.constraints
                problems.extend(f"{_where(op)}: {v}" for v in check_layer(describe_akida_op(op)))
    for op in graph.ops:
        for value in op.outputs:
            for user in value.users:
                if value not in user.inputs:
                    problems.append(f"{value.name!r} lists a user that does not read it")
    for value in graph.outputs:
        if id(value) not in defined:
            problems.append(f"graph output {value.name!r} is not defined")
    if problems:
        shown = "; ".join(problems[:5])
        more = f" (+{len(problems) - 5} more)" if len(problems) > 5 else ""
        culprit = f" after pass '{after_pass}' (a bug in that pass)" if after_pass else ""
        raise VerificationError(
            f"IR verification failed{culprit}: {shown}{more}", pass_name=after_pass
        )
