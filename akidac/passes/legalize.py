"""`legalize`: decide, per op, whether Akida can run it, and if not, say exactly why.

After it every op carries `ann{target = "akida" | "cpu" | "fusable"}`; every "cpu" op carries
its reason codes, and `ctx.analyses["decisions"]` holds the full `Decision` (code, sentence,
hint per violation) keyed by the op's ONNX name. Layer anchors (Conv, Gemm, MatMul with a
constant) are judged by the constraints of `akidac.target.constraints`, all of them at once;
activations and pooling are "fusable" and decided by `fuse`; any other op type is CPU work
with `AK-OP-UNSUPPORTED`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from akidac.ir.graph import Graph, Op
from akidac.passes.base import PassContext, PassResult, register_pass
from akidac.passes.layer_candidates import describe_anchor, judge
from akidac.target.constraints import Violation

#: ONNX op types that Akida can only run fused into a preceding layer.
FUSABLE_OPS = frozenset({"Relu", "Clip", "MaxPool", "GlobalAveragePool", "Flatten"})
ANCHOR_OPS = frozenset({"Conv", "Gemm", "MatMul"})


@dataclass
class Decision:
    """Where one ONNX node runs and why: the report's per-node record."""

    node: str
    op_type: str
    target: str
    violations: list[Violation] = field(default_factory=list)


def record(ctx: PassContext, op: Op, target: str, violations: list[Violation]) -> None:
    """Annotate `op` and store the decision for every ONNX node it came from."""
    op.annotations["target"] = target
    if violations:
        op.annotations["reasons"] = sorted({v.code for v in violations})
    else:
        op.annotations.pop("reasons", None)
    decisions = ctx.analyses.setdefault("decisions", {})
    for name in op.origin or (op.display_name,):
        decisions[name] = Decision(name, op.op_type, target, list(violations))


def unsupported(op: Op, sentence: str, hint: str) -> Violation:
    return Violation(code="AK-OP-UNSUPPORTED", message=sentence, hint=hint, values={})


@register_pass
@dataclass(frozen=True)
class Legalize:
    """Mark each op akida / cpu / fusable, with reason codes for every CPU decision."""

    name: ClassVar[str] = "legalize"

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        for op in graph.ops:
            record(ctx, op, *self.decide(op))
        return PassResult(graph, True)

    @staticmethod
    def decide(op: Op) -> tuple[str, list[Violation]]:
        if op.dialect == "akida":
            return "akida", []
        name = op.display_name
        if op.domain:
            return "cpu", [
                unsupported(
                    op,
                    f"{op.op_type} '{name}' is in domain '{op.domain}', which Akida does not run",
                    "it runs on the CPU",
                )
            ]
        if op.op_type in FUSABLE_OPS:
            return "fusable", []
        if op.op_type in ANCHOR_OPS:
            candidate = describe_anchor(op)
            if candidate is None:
                return "cpu", [
                    Violation(
                        code="AK-NOT-CONSTANT" if op.op_type != "Conv" else "AK-RANK",
                        message=f"{op.op_type} '{name}' needs a constant weight and a static "
                        "2-D (Gemm/MatMul) or 4-D NCHW (Conv) input",
                        hint="export the model with constant weights and static shapes",
                        values={},
                    )
                ]
            violations = judge(candidate)
            return ("cpu", violations) if violations else ("akida", [])
        return "cpu", [
            unsupported(
                op,
                f"{op.op_type} '{name}' has no Akida equivalent",
                "it runs on the CPU; see docs/reason-codes.md",
            )
        ]
