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
FUSABLE_OPS = frozenset(
    {
        "Relu",
        "Clip",
        "MaxPool",
        "GlobalAveragePool",
        "Flatten",
        "Sigmoid",
        "Tanh",
        "LeakyRelu",
        "Elu",
        "HardSwish",
        "HardSigmoid",
        "Gelu",
        "Mul",
        "Div",
        "Erf",
    }
)
ANCHOR_OPS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul", "Add", "Concat"})


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


def weight_is_constant(op: Op) -> bool:
    """Weights and bias (Gemm: B and C) are constants, as Akida stores them in the program."""
    return len(op.inputs) > 1 and all(v is None or v.is_constant for v in op.inputs[1:])


def describe_operands(op: Op) -> str:
    """`input [1, 8, 16], constant weight [16, 16]`: what the op was given."""
    parts = []
    for label, value in zip(("input", "weight"), op.inputs[:2], strict=False):
        if value is not None:
            kind = "constant " if value.is_constant else ""
            shape = list(value.type.shape) if value.type.shape is not None else "unknown shape"
            parts.append(f"{kind}{label} {shape}")
    return ", ".join(parts)


def cpu_overrides(ctx: PassContext) -> dict[str, Violation]:
    """Nodes that run on the CPU whatever their legality: the user's `--keep-on-cpu`
    (AK-USER-CPU) and the compile driver's `cpu_overrides` (an earlier round found that
    quantization cannot express them, or that their region lost too much accuracy)."""
    options = ctx.options
    forced: dict[str, Violation] = {}
    for name in getattr(options, "keep_on_cpu", ()):
        forced[name] = Violation(
            code="AK-USER-CPU",
            message=f"'{name}' is kept on the CPU by --keep-on-cpu",
            hint="drop it from --keep-on-cpu to let Akida run it",
            values={},
        )
    for name, (code, sentence) in getattr(options, "cpu_overrides", {}).items():
        forced.setdefault(
            name,
            Violation(code=code, message=sentence, hint="it runs on the CPU instead", values={}),
        )
    return forced


@register_pass
@dataclass(frozen=True)
class Legalize:
    """Mark each op akida / cpu / fusable, with reason codes for every CPU decision."""

    name: ClassVar[str] = "legalize"

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        overrides = cpu_overrides(ctx)
        for op in graph.ops:
            forced = [overrides[name] for name in op.origin if name in overrides]
            if forced:
                record(ctx, op, "cpu", forced)
            else:
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
            if candidate is None and op.op_type == "Add":
                if any(v is not None and v.is_constant for v in op.inputs):
                    return "fusable", []  # e.g. the constant Add of a GELU pattern
                if any(v is not None and v.type.rank != 4 for v in op.inputs):
                    return "cpu", [
                        Violation(
                            code="AK-RANK",
                            message=f"Add '{name}' adds {describe_operands(op)}; Akida adds two "
                            "4-D NCHW maps",
                            hint="it runs on the CPU",
                            values={},
                        )
                    ]
                return "cpu", [
                    Violation(
                        code="AK-SHAPE-MISMATCH",
                        message=f"Add '{name}' adds tensors of shapes "
                        f"{' and '.join(str(list(v.type.shape or [])) for v in op.inputs if v)}; "
                        "Akida adds two 4-D maps of the same shape",
                        hint="it runs on the CPU",
                        values={},
                    )
                ]
            if (
                candidate is None
                and op.op_type == "Concat"
                and any(v is not None and v.is_constant for v in op.inputs)
            ):
                return "cpu", [
                    Violation(
                        code="AK-NOT-CONSTANT",
                        message=f"Concat '{name}' joins a constant tensor; Akida concatenates two "
                        "computed maps",
                        hint="it runs on the CPU",
                        values={},
                    )
                ]
            if candidate is None and op.op_type == "Concat":
                return "cpu", [
                    Violation(
                        code="AK-RANK",
                        message=f"Concat '{name}' joins non-4-D or non-static tensors; Akida "
                        "concatenates two 4-D maps on channels",
                        hint="it runs on the CPU",
                        values={},
                    )
                ]
            if candidate is None:
                return "cpu", [
                    Violation(
                        code="AK-RANK" if weight_is_constant(op) else "AK-NOT-CONSTANT",
                        message=f"{op.op_type} '{name}' needs a constant weight and a static "
                        "2-D (Gemm/MatMul) or 4-D NCHW (Conv) input; it has "
                        + describe_operands(op),
                        hint="export the model with constant weights and static shapes",
                        values={},
                    )
                ]
            violations = judge(candidate)
            if candidate.kind == "add" and op.inputs[0] is op.inputs[1]:
                violations.append(
                    Violation(
                        code="AK-MERGE-INPUTS",
                        message=f"Add '{name}' adds a value to itself; Akida's two Add inputs must "
                        "come from different layers",
                        hint="it runs on the CPU",
                        values={},
                    )
                )
            return ("cpu", violations) if violations else ("akida", [])
        if op.op_type in ("Resize", "Upsample"):
            return "cpu", [
                Violation(
                    code="AK-RESIZE",
                    message=f"{op.op_type} '{name}' is not a nearest-neighbour 2× upsampling, the "
                    "only resize Akida runs (as a transposed depthwise convolution)",
                    hint="use mode='nearest' with scale 2, or accept CPU execution",
                    values={},
                )
            ]
        if op.op_type in ("Reshape", "Transpose", "Squeeze", "Unsqueeze"):
            return "cpu", [
                Violation(
                    code="AK-RESHAPE",
                    message=f"{op.op_type} '{name}' rearranges a tensor; Akida has no reshape "
                    "inside a program (only a Flatten right before a dense layer)",
                    hint="it runs on the CPU between Akida programs",
                    values={},
                )
            ]
        return "cpu", [
            unsupported(
                op,
                f"{op.op_type} '{name}' has no Akida equivalent",
                "it runs on the CPU; see docs/reason-codes.md",
            )
        ]
