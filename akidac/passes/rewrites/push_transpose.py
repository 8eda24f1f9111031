"""Transposes pushed down through layout-agnostic ops, and pairs of Transposes composed away.

tf2onnx leaves a Keras model in NHWC and wraps every Conv as `Transpose(0,3,1,2) → Conv →
Transpose(0,2,3,1)`, with the bias Add, the BatchNormalization's Mul/Add, the activations and
the squeeze-excite ReduceMean working on the NHWC map between two Convs. Akida runs none of
those Transposes, so every Conv would be a region of its own. Moving each Transpose down past
the ops that do not care about the layout until it meets its inverse removes both, which is
what onnxruntime's transpose optimizer (ORT_ENABLE_BASIC) does:

    op(T(s₁, P), …, T(sₖ, P))  =  T(op(s₁, …, sₖ), P)        T(x, P) = Transpose(x, perm P)

for an elementwise op with broadcasting (a constant operand c is first given the output's rank
by leading 1s, then permuted by P⁻¹: T(T(c, P⁻¹), P) = c); for a reduction over axes A,
`reduce_A(T(s, P)) = T'(reduce_{P[A]}(s))` where T' is P itself with keepdims and, without,
P restricted to the kept axes and renumbered (the identity for NHWC axes [1, 2]); for a Concat
on axis a, the Concat of the sources on axis P[a]; a GlobalAveragePool/GlobalMaxPool on a
transposed map is a ReduceMean/ReduceMax over the axes P[2:] of the source (keepdims); a Pad
(any mode, no `axes` input) pads axis P[i] of the source as it padded axis i. Then

    T(T(s, P₁), P₂) = T(s, Q),  Q[i] = P₁[P₂[i]];  the identity Q leaves s itself.

An operand that is not a Transpose by P gets a Transpose by P⁻¹ (one it already has is reused).
A push happens only when it adds no more Transposes than it takes away (each Transpose input by
P counts as one taken away, each new Transpose as one added, the result's Transpose included
unless its perm is the identity) and, when the two are equal, when the result reaches another
Transpose through such ops (where the pair will cancel) or when P turns an NCHW map into NHWC
(perm [0, 2, 3, 1]): then the ops it passes run on the NCHW map of the layers before them, where
`fold-affine` and the Akida layers want them. Every step is a permutation of the same values,
so the model computes exactly what it computed.
"""

from __future__ import annotations

import numpy as np

from akidac.ir.attributes import AttrValue
from akidac.ir.graph import Graph, Op, Value
from akidac.passes.rewrites.rule import (
    Outcome,
    RewriteRule,
    bypass_op,
    const_of,
    replace_value,
)

#: ops applied element by element, whose operands broadcast numpy-style: all of them follow.
BROADCAST_OPS = frozenset(
    {
        "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "PRelu", "Where",
        "Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual", "And", "Or", "Xor", "Mod",
    }
)  # fmt: skip
#: ops applied element by element to their first operand (Clip's bounds are scalars).
UNARY_OPS = frozenset(
    {
        "Relu", "LeakyRelu", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "Elu", "Selu",
        "Celu", "Softplus", "Softsign", "Abs", "Neg", "Exp", "Log", "Sqrt", "Reciprocal", "Erf",
        "Floor", "Ceil", "Round", "Sign", "Cast", "Mish", "Gelu", "ThresholdedRelu", "Not",
        "Clip",
    }
)  # fmt: skip
#: reductions whose `axes` are input 1 in the IR (the frontend moved older attributes there).
REDUCE_OPS = frozenset(
    {
        "ReduceMean", "ReduceMax", "ReduceMin", "ReduceSum", "ReduceProd", "ReduceL1",
        "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare",
    }
)  # fmt: skip
#: global pools and the reduction each is over its spatial axes.
GLOBAL_POOLS = {"GlobalAveragePool": "ReduceMean", "GlobalMaxPool": "ReduceMax"}
PUSHED_OPS = BROADCAST_OPS | UNARY_OPS | REDUCE_OPS | frozenset(GLOBAL_POOLS) | {"Concat", "Pad"}

#: the perm that turns an NCHW map into NHWC.
TO_NHWC = [0, 2, 3, 1]


def transpose_perm(value: Value | None) -> list[int] | None:
    """The permutation of the ONNX Transpose that computes `value`, else None (a Transpose
    without `perm` reverses the axes)."""
    op = None if value is None else value.producer
    if op is None or op.kind != "onnx.Transpose" or op.domain or op.inputs[0] is None:
        return None
    rank = op.inputs[0].type.rank
    if rank is None:
        return None
    perm = op.attrs.get("perm")
    if perm is None:
        return list(range(rank))[::-1]
    if not isinstance(perm, list) or not all(isinstance(p, int) for p in perm):
        return None
    axes = [int(p) for p in perm]  # type: ignore[arg-type]  # ints, checked above
    return axes if sorted(axes) == list(range(rank)) else None


def invert(perm: list[int]) -> list[int]:
    """P⁻¹: `T(T(x, P), P⁻¹) = x`."""
    inverse = [0] * len(perm)
    for i, p in enumerate(perm):
        inverse[p] = i
    return inverse


def _permuted(shape: tuple[int | None, ...], perm: list[int]) -> tuple[int | None, ...]:
    return tuple(shape[p] for p in perm)


def _layout_inputs(op: Op) -> list[int]:
    """Indices of the operands that are maps in the op's layout (the rest: scalars, axes)."""
    if op.op_type in BROADCAST_OPS or op.op_type == "Concat":
        return [i for i, v in enumerate(op.inputs) if v is not None]
    return [0]


def _axes(op: Op, rank: int) -> list[int] | None:
    """The sorted, non-negative constant axes of a reduction; None when absent or computed."""
    array = const_of(op.inputs[1]) if len(op.inputs) > 1 else None
    if array is None or array.size == 0:
        return None
    return sorted({int(a) % rank for a in array.reshape(-1)})


class _Plan:
    """How one op is rebuilt on the sources of its Transposes: its operands, attributes,
    result shape and the perm of the Transpose after it (None: the identity)."""

    def __init__(self, op: Op, perm: list[int]) -> None:
        self.op = op
        self.perm = perm
        self.inverse = invert(perm)
        self.kind = op.kind
        self.attrs: dict[str, AttrValue] = dict(op.attrs)
        self.extra: dict[int, Value] = {}
        self.out_perm: list[int] | None = perm


def _plan(graph: Graph, op: Op, perm: list[int]) -> _Plan | None:
    """The rebuilt form of `op` when its operands are transposed by P⁻¹, or None when the op's
    attributes cannot follow."""
    result = op.outputs[0]
    rank = len(perm)
    plan = _Plan(op, perm)
    if op.op_type == "Concat":
        axis = op.int_attr("axis") % rank
        plan.attrs["axis"] = perm[axis]
    elif op.op_type in REDUCE_OPS:
        axes = _axes(op, rank)
        if axes is None or op.int_attr("noop_with_empty_axes", 0):
            return None
        moved = sorted(perm[a] for a in axes)
        plan.extra[1] = graph.add_constant(
            f"{op.display_name}_axes", np.array(moved, np.int64), fresh=True
        )
        if not op.int_attr("keepdims", 1):
            kept_source = [a for a in range(rank) if a not in moved]
            kept = [kept_source.index(perm[a]) for a in range(rank) if a not in axes]
            plan.out_perm = kept
    elif op.op_type == "Pad":
        pads = const_of(op.inputs[1]) if len(op.inputs) > 1 else None
        if pads is None or pads.size != 2 * rank or (len(op.inputs) > 3 and op.inputs[3]):
            return None
        flat = pads.reshape(-1)
        moved_pads = np.zeros_like(flat)
        for i, p in enumerate(perm):
            moved_pads[p], moved_pads[p + rank] = flat[i], flat[i + rank]
        plan.extra[1] = graph.add_constant(f"{op.display_name}_pads", moved_pads, fresh=True)
    elif op.op_type in GLOBAL_POOLS:
        plan.kind = f"onnx.{GLOBAL_POOLS[op.op_type]}"
        plan.attrs = {"keepdims": 1}
        moved = sorted(perm[a] for a in range(2, rank))
        plan.extra[1] = graph.add_constant(
            f"{op.display_name}_axes", np.array(moved, np.int64), fresh=True
        )
    if plan.out_perm == list(range(len(plan.out_perm or []))):
        plan.out_perm = None
    if result.type.shape is None:
        return None
    return plan


def _leads_to_transpose(graph: Graph, value: Value, depth: int = 64) -> bool:
    """Whether `value` reaches a Transpose through ops a Transpose is pushed through."""
    work, seen = [value], set()
    while work and depth > 0:
        depth -= 1
        current = work.pop()
        for user in current.users:
            if id(user) in seen or user.domain or user.dialect != "onnx":
                continue
            seen.add(id(user))
            if user.op_type == "Transpose":
                return True
            if user.op_type in PUSHED_OPS and len(user.outputs) == 1:
                work.append(user.outputs[0])
    return False


def push_transpose(graph: Graph, op: Op, by: str) -> Outcome:
    """An elementwise op, reduction, global pool, Pad or Concat reading a Transpose by P → the op
    on the Transpose's source (other operands transposed by P⁻¹), then a Transpose by P."""
    if op.domain or len(op.outputs) != 1 or op.outputs[0].type.rank is None:
        return False
    result = op.outputs[0]
    indices = _layout_inputs(op)
    perm = next((p for i in indices if (p := transpose_perm(op.inputs[i])) is not None), None)
    if perm is None or len(perm) != op.inputs[0].type.rank:  # type: ignore[union-attr]
        return False
    rank = len(perm)
    if op.op_type not in REDUCE_OPS and op.op_type not in GLOBAL_POOLS and result.type.rank != rank:
        return False
    position = graph.ops.index(op)
    inverse = invert(perm)
    sources: dict[int, Value | np.ndarray] = {}
    taken, added = 0, 0
    for i in indices:
        operand = op.inputs[i]
        assert operand is not None  # _layout_inputs lists present operands only
        if operand.type.rank is None or operand.type.rank > rank:
            return False
        array = const_of(operand)
        if array is not None:
            shaped = array.reshape((1,) * (rank - array.ndim) + tuple(array.shape))
            sources[i] = np.ascontiguousarray(np.transpose(shaped, inverse))
            continue
        if operand.type.rank != rank:
            return False  # a lower-rank computed operand would need an Unsqueeze first
        if transpose_perm(operand) == perm:
            transposed = operand.producer.inputs[0]  # type: ignore[union-attr]
            assert transposed is not None  # transpose_perm checked it
            sources[i] = transposed
            taken += 1
            continue
        reuse = _existing_transpose(graph, operand, inverse, position)
        if reuse is None:
            added += 1
        sources[i] = reuse if reuse is not None else operand
    plan = _plan(graph, op, perm)
    if plan is None:
        return False
    added += plan.out_perm is not None
    if added > taken:
        return False
    if added == taken and perm != TO_NHWC and not _leads_to_transpose(graph, result):
        return False
    _rebuild(graph, plan, sources, by)
    return True


def _existing_transpose(graph: Graph, value: Value, perm: list[int], before: int) -> Value | None:
    """The result of a Transpose by `perm` of `value` that already stands before op `before`."""
    for user in value.users:
        if transpose_perm(user.outputs[0]) == perm and graph.ops.index(user) < before:
            return user.outputs[0]
    return None


def _transpose(graph: Graph, x: Value, perm: list[int], op: Op, by: str, name: str) -> Value:
    """A new Transpose of `x` by `perm`, placed right before `op`."""
    shape = x.type.shape
    assert shape is not None
    new = graph.make_op(
        "onnx.Transpose",
        [x],
        [x.type.with_shape(_permuted(shape, perm))],
        result_names=[name],
        attrs={"perm": list(perm)},
        origin=op.origin,
        created_by=by,
        fresh_names=True,
        index=graph.ops.index(op),
    )
    return new.outputs[0]


def _rebuild(graph: Graph, plan: _Plan, sources: dict[int, Value | np.ndarray], by: str) -> None:
    op, result = plan.op, plan.op.outputs[0]
    inputs: list[Value | None] = list(op.inputs)
    for i, source in sources.items():
        if isinstance(source, np.ndarray):
            base = op.inputs[i].name  # type: ignore[union-attr]
            inputs[i] = graph.add_constant(f"{base}_permuted", source, fresh=True)
        elif transpose_perm(op.inputs[i]) == plan.perm or source is not op.inputs[i]:
            inputs[i] = source
        else:
            inputs[i] = _transpose(graph, source, plan.inverse, op, by, f"{source.name}_permuted")
    for i, value in plan.extra.items():
        inputs[i] = value
    out_perm = plan.out_perm
    shape = result.type.shape
    assert shape is not None
    inner_shape = shape if out_perm is None else _permuted(shape, invert(out_perm))
    inner = graph.make_op(
        plan.kind,
        inputs,
        [result.type.with_shape(inner_shape)],
        result_names=[f"{result.name}_permuted"],
        attrs=plan.attrs,
        origin=op.origin,
        created_by=by,
        fresh_names=True,
        index=graph.ops.index(op),
    )
    final = inner.outputs[0]
    if out_perm is not None:
        pushed = [v.producer for v in op.inputs if v is not None and transpose_perm(v) == plan.perm]
        after = graph.make_op(
            "onnx.Transpose",
            [final],
            [result.type],
            result_names=[f"{result.name}_transposed"],
            attrs={"perm": list(out_perm)},
            origin=pushed[0].origin if pushed and pushed[0] is not None else op.origin,
            created_by=by,
            fresh_names=True,
            index=graph.ops.index(op),
        )
        final = after.outputs[0]
    transposes = {
        id(v.producer): v.producer
        for v in op.inputs
        if v is not None and transpose_perm(v) == plan.perm
    }
    replace_value(graph, [op], result, final)
    for transpose in transposes.values():
        if transpose is not None and not transpose.outputs[0].users:
            if not graph.is_pinned(transpose.outputs[0]):
                graph.remove_op(transpose)


def compose_transposes(graph: Graph, op: Op, by: str) -> Outcome:
    """Transpose by P₂ of a Transpose by P₁ → one Transpose by Q = P₁[P₂] of the first one's
    source, or that source itself when Q is the identity."""
    outer = transpose_perm(op.outputs[0])
    first = op.inputs[0]
    inner = transpose_perm(first)
    if outer is None or inner is None or first is None or len(outer) != len(inner):
        return False
    producer = first.producer
    assert producer is not None
    source = producer.inputs[0]
    assert source is not None
    composed = [inner[p] for p in outer]
    result = op.outputs[0]
    if composed == list(range(len(composed))):
        if not bypass_op(graph, op, source):
            return False
    else:
        new = graph.make_op(
            "onnx.Transpose",
            [source],
            [result.type],
            result_names=[f"{result.name}_composed"],
            attrs={"perm": composed},
            origin=(*producer.origin, *op.origin),
            created_by=by,
            fresh_names=True,
            index=graph.ops.index(op),
        )
        replace_value(graph, [op], result, new.outputs[0])
    if not first.users and not graph.is_pinned(first):
        graph.remove_op(producer)
    return True


PUSH_RULE = RewriteRule("push-transpose", PUSHED_OPS, push_transpose)
COMPOSE_RULE = RewriteRule("compose-transposes", frozenset({"Transpose"}), compose_transposes)
