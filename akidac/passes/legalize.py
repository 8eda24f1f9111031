"""`legalize`: decide, per op, whether Akida can run it, and if not, say exactly why.

After it every op carries `ann{target = "akida" | "cpu" | "fusable"}`; every "cpu" op carries
its reason codes, and `ctx.analyses["decisions"]` holds the full `Decision` (code, sentence,
hint per violation) keyed by the op's ONNX name. Layer anchors (Conv, Gemm, MatMul with a
constant) are judged by the constraints of `akidac.target.constraints`, all of them at once;
activations and pooling are "fusable" and decided by `fuse`; any other op type is CPU work
with `AK-OP-UNSUPPORTED`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from akidac.ir.analyses import Decision
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


#: where an op runs ("akida", "cpu" or "fusable") and the violations behind a "cpu"
Verdict = tuple[str, list[Violation]]


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
    def decide(op: Op) -> Verdict:
        """Where `op` runs, in order of the questions asked: an Akida op stays; an op of another
        domain, and any op type Akida has no layer for, runs on the CPU; an activation or
        pooling is "fusable" (decided by `fuse`); a layer anchor is judged by the constraints."""
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
            return decide_anchor(op)
        return "cpu", [no_akida_layer(op)]


def _cpu(code: str, message: str, hint: str = "it runs on the CPU") -> Verdict:
    """A CPU decision with one violation."""
    return "cpu", [Violation(code=code, message=message, hint=hint, values={})]


def decide_anchor(op: Op) -> Verdict:
    """A layer anchor (Conv, Gemm, MatMul, Add, Concat): judged by every constraint of its layer
    kind at once when it describes a layer, otherwise why it cannot be one."""
    candidate = describe_anchor(op)
    if candidate is None:
        return why_not_a_layer(op)
    violations = judge(candidate)
    if candidate.kind == "add" and op.inputs[0] is op.inputs[1]:
        violations.append(
            Violation(
                code="AK-MERGE-INPUTS",
                message=f"Add '{op.display_name}' adds a value to itself; Akida's two Add "
                "inputs must come from different layers",
                hint="it runs on the CPU",
                values={},
            )
        )
    return ("cpu", violations) if violations else ("akida", [])


def why_not_a_layer(op: Op) -> Verdict:
    """An anchor whose operands describe no Akida layer: an Add of a constant is "fusable" (the
    constant Add of a GELU pattern); anything else runs on the CPU, with the reason."""
    name = op.display_name
    if op.op_type == "Add":
        if any(v is not None and v.is_constant for v in op.inputs):
            return "fusable", []
        if any(v is not None and v.type.rank != 4 for v in op.inputs):
            return _cpu(
                "AK-RANK",
                f"Add '{name}' adds {describe_operands(op)}; Akida adds two 4-D NCHW maps",
            )
        shapes = " and ".join(str(list(v.type.shape or [])) for v in op.inputs if v)
        return _cpu(
            "AK-SHAPE-MISMATCH",
            f"Add '{name}' adds tensors of shapes {shapes}; Akida adds two 4-D maps of the "
            "same shape",
        )
    if op.op_type == "Concat":
        if any(v is not None and v.is_constant for v in op.inputs):
            return _cpu(
                "AK-NOT-CONSTANT",
                f"Concat '{name}' joins a constant tensor; Akida concatenates two computed maps",
            )
        return _cpu(
            "AK-RANK",
            f"Concat '{name}' joins non-4-D or non-static tensors; Akida concatenates two 4-D "
            "maps on channels",
        )
    return _cpu(
        "AK-RANK" if weight_is_constant(op) else "AK-NOT-CONSTANT",
        f"{op.op_type} '{name}' needs a constant weight and a static 2-D (Gemm/MatMul) or 4-D "
        "NCHW (Conv) input; it has " + describe_operands(op),
        "export the model with constant weights and static shapes",
    )


def no_akida_layer(op: Op) -> Violation:
    """Why an op type that is neither an anchor nor fusable runs on the CPU: a resize that is
    not the nearest 2× upsampling, a reshape-like op, or an op Akida has no equivalent for."""
    name = op.display_name
    if op.op_type in ("Resize", "Upsample"):
        return Violation(
            code="AK-RESIZE",
            message=f"{op.op_type} '{name}' is not a nearest-neighbour 2× upsampling, the only "
            "resize Akida runs (as a transposed depthwise convolution)",
            hint="use mode='nearest' with scale 2, or accept CPU execution",
            values={},
        )
    if op.op_type in ("Reshape", "Transpose", "Squeeze", "Unsqueeze"):
        return Violation(
            code="AK-RESHAPE",
            message=f"{op.op_type} '{name}' rearranges a tensor; Akida has no reshape inside a "
            "program (only a Flatten right before a dense layer)",
            hint="it runs on the CPU between Akida programs",
            values={},
        )
    if op.op_type == "PRelu":
        return prelu_violation(op)
    return unsupported(
        op,
        f"{op.op_type} '{name}' has no Akida equivalent",
        "it runs on the CPU; see docs/reason-codes.md",
    )


def prelu_violation(op: Op) -> Violation:
    """Why a PRelu that `canonicalize` left (its slopes differ) runs on the CPU: Akida applies
    one activation function per layer, and a slope per channel is a different function per
    channel."""
    name = op.display_name
    slope = op.inputs[1] if len(op.inputs) > 1 else None
    if slope is None or not slope.is_constant:
        return Violation(
            code="AK-ACTIVATION",
            message=f"PRelu '{name}' reads a computed slope; Akida's activation is a lookup "
            "table fixed in the program",
            hint="it runs on the CPU",
            values={},
        )
    values = slope.array.astype(float).reshape(-1)
    return Violation(
        code="AK-ACTIVATION",
        message=f"PRelu '{name}' has {values.size} slopes from {values.min():g} to "
        f"{values.max():g}; Akida's lookup-table activation is one function for the whole "
        "layer, so it cannot give each channel its own slope",
        hint="it runs on the CPU (a PRelu with one slope for all channels maps as LeakyRelu)",
        values={"slopes": values.size, "min": float(values.min()), "max": float(values.max())},
    )
