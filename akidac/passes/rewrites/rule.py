"""What every rewrite rule shares: the `RewriteRule` record, the fixed-point driver, and helpers.

A rule starts from one op type. It returns `True` when it rewrote the graph, `False` when the
pattern does not apply, or a `Miss` that says why an op which almost matched was left alone;
`run_rules` sweeps the graph until no rule fires and keeps the near misses of the last sweep in
`ctx.analyses["rewrite_misses"]`, so a report can explain why a rewrite did not happen.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from akidac.ir.attributes import AttrValue, as_ints
from akidac.ir.graph import Graph, Op, Value
from akidac.ir.types import dtype_to_numpy
from akidac.passes.base import PassContext

#: sweeps of `run_rules` before it stops; every rule removes the op it starts from, so real
#: graphs converge in two or three.
MAX_SWEEPS = 16


@dataclass(frozen=True)
class Miss:
    """An op that almost matched a rule, and the sentence saying why it was left alone."""

    reason: str


#: what a rule returns: True (rewritten), False (does not apply) or a near miss.
Outcome = bool | Miss


@dataclass(frozen=True)
class RewriteRule:
    """A named rewrite starting from ops of `op_types`; `apply(graph, op, by)` does the work,
    where `by` is the name of the pass that runs it (the `created_by` of every new op)."""

    name: str
    op_types: frozenset[str]
    apply: Callable[[Graph, Op, str], Outcome]

    @property
    def doc(self) -> str:
        """The rule's docstring: its contract and its algebra."""
        return (self.apply.__doc__ or "").strip()


@dataclass(frozen=True)
class RewriteMiss:
    """One near miss: the rule, the ONNX node it looked at, and why it left the node alone."""

    rule: str
    node: str
    reason: str

    def __str__(self) -> str:
        return f"{self.rule} '{self.node}': {self.reason}"


def run_rules(graph: Graph, ctx: PassContext, rules: Sequence[RewriteRule], by: str) -> bool:
    """Apply `rules` to a fixed point; returns whether anything changed.

    The near misses of the last sweep (ops still in the graph) replace the earlier entries of
    these rules in `ctx.analyses["rewrite_misses"]`.
    """
    by_type: dict[str, list[RewriteRule]] = {}
    for rule in rules:
        for op_type in sorted(rule.op_types):
            by_type.setdefault(op_type, []).append(rule)
    changed = False
    misses: list[RewriteMiss] = []
    for _ in range(MAX_SWEEPS):
        swept = False
        misses = []
        live = {id(op) for op in graph.ops}
        for op in list(graph.ops):
            if id(op) not in live or op.domain or op.dialect != "onnx":
                continue
            for rule in by_type.get(op.op_type, ()):
                outcome = rule.apply(graph, op, by)
                if outcome is True:
                    swept = True
                    live = {id(o) for o in graph.ops}
                    break
                if isinstance(outcome, Miss):
                    misses.append(RewriteMiss(rule.name, op.display_name, outcome.reason))
        changed = changed or swept
        if not swept:
            break
    names = {rule.name for rule in rules}
    kept = [m for m in ctx.analyses.get("rewrite_misses", []) if m.rule not in names]
    ctx.analyses["rewrite_misses"] = kept + misses
    for miss in misses:
        ctx.sink.note("AK-REWRITE-NEAR-MISS", str(miss), node=miss.node)
    return changed


# ------------------------------------------------------------------------------- helpers


def const_of(value: Value | None) -> np.ndarray | None:
    """The array of a constant operand, else None."""
    return value.const if value is not None and value.is_constant else None


def per_channel(array: np.ndarray, rank: int, axis: int, channels: int) -> np.ndarray | None:
    """`array` as one float64 value per channel, when it broadcasts against a rank-`rank`
    tensor only along `axis` (a scalar, or `channels` values on that axis); else None."""
    if array.ndim > rank or array.size not in (1, channels):
        return None
    shape = (1,) * (rank - array.ndim) + tuple(array.shape)
    if any(d != 1 for i, d in enumerate(shape) if i != axis):
        return None
    return np.broadcast_to(array.reshape(-1).astype(np.float64), (channels,)).copy()


def float_dtype(value: Value) -> np.dtype | None:
    """The NumPy float dtype of `value`, or None for an integer type or one NumPy lacks."""
    try:
        dtype = dtype_to_numpy(value.type.dtype)
    except (KeyError, ValueError):  # a type NumPy lacks (bf16)
        return None
    return dtype if dtype.kind == "f" else None


def single_consumer(graph: Graph, value: Value) -> Op | None:
    """The one op reading `value`, if it is read once and is no graph output."""
    if len(value.users) != 1 or graph.is_pinned(value):
        return None
    return value.users[0]


def replace_value(graph: Graph, old_ops: Sequence[Op], old: Value, new: Value) -> None:
    """Route every use of `old` to `new`, then drop `old_ops` (which must now be unused).

    `new` takes over the name of `old` (the two swap names), so consumers and graph outputs
    keep reading the name they had: a graph output's name never changes.
    """
    graph.redirect_uses(old, new, naming="new-takes-name")
    for dead in reversed(old_ops):
        graph.remove_op(dead)


def bypass_op(graph: Graph, op: Op, source: Value) -> bool:
    """Let the readers of `op`'s result read `source` (a value equal to it) and drop `op`.

    A graph output keeps its name: `source` takes it, which an op's unpinned result can do but
    a graph input, a constant or another output cannot; then nothing changes (False)."""
    result = op.outputs[0]
    if graph.is_pinned(result) and (
        source.producer is None or source.is_constant or graph.is_pinned(source)
    ):
        return False
    graph.redirect_uses(result, source)
    graph.remove_op(op)
    return True


def replace_ops(
    graph: Graph,
    old_ops: Sequence[Op],
    kind: str,
    inputs: Sequence[Value | None],
    by: str,
    *,
    attrs: dict[str, AttrValue] | None = None,
    result_name: str | None = None,
    origin: tuple[str, ...] | None = None,
) -> None:
    """Replace `old_ops` by one new `kind` op reading `inputs`, made by pass `by`, where the
    last of them stands: it computes that op's result, with the same type and (by
    `replace_value`) the same name. `result_name` seeds the fresh name the replaced result is
    left with (default: the result's own name); `origin` defaults to the origins of `old_ops`."""
    last = old_ops[-1]
    result = last.outputs[0]
    new = graph.make_op(
        kind,
        inputs,
        [result.type],
        result_names=[result.name if result_name is None else result_name],
        attrs=attrs,
        origin=tuple(n for old in old_ops for n in old.origin) if origin is None else origin,
        created_by=by,
        fresh_names=True,
        index=graph.ops.index(last),
    )
    replace_value(graph, old_ops, result, new.outputs[0])


_DERIVED = re.compile(r"_(folded|odd|upsample|identity)(_\d+)?$")


def derived_constant(graph: Graph, base: str, suffix: str, array: np.ndarray) -> Value:
    """A new constant named `<base>_<suffix>` (an earlier rewrite's suffix is replaced, so a
    chain of folds gives `w_folded_1`, not `w_folded_folded`)."""
    stem = _DERIVED.sub("", base)
    return graph.add_constant(f"{stem}_{suffix}", np.ascontiguousarray(array), fresh=True)


def static_hw(value: Value | None) -> tuple[int, int] | None:
    """(H, W) of a static rank-4 NCHW value, else None."""
    if value is None or value.type.rank != 4 or not value.type.is_static:
        return None
    shape = value.type.dims
    return shape[2], shape[3]


def int_list(attr: AttrValue, default: list[int]) -> list[int]:
    """An ints attribute as a list of Python ints (the default when it is absent)."""
    if not isinstance(attr, list):
        return list(default)
    return as_ints(attr)


def conv_geometry(op: Op) -> tuple[list[int], list[int], list[int]]:
    """(kernel, strides, dilations) of a 2-D Conv, from its weight shape and attributes."""
    weight = op.inputs[1]
    shape = weight.type.shape if weight is not None else None
    kernel = [int(d) for d in shape[2:] if d is not None] if shape else [1, 1]
    kernel = int_list(op.attrs.get("kernel_shape"), kernel)
    strides = int_list(op.attrs.get("strides"), [1, 1])
    dilations = int_list(op.attrs.get("dilations"), [1, 1])
    return kernel, strides, dilations


def explicit_conv_pads(op: Op, in_hw: tuple[int, int]) -> list[int] | None:
    """The Conv's pads [top, left, bottom, right], `auto_pad` resolved (`explicit_pads`)."""
    return explicit_pads(op, in_hw, *conv_geometry(op))


def explicit_pool_pads(op: Op, in_hw: tuple[int, int]) -> list[int] | None:
    """A MaxPool's or AveragePool's pads [top, left, bottom, right], `auto_pad` resolved as
    onnxruntime resolves it for pooling: on the undilated kernel (`explicit_pads`)."""
    kernel = int_list(op.attrs.get("kernel_shape"), [1, 1])
    return explicit_pads(op, in_hw, kernel, int_list(op.attrs.get("strides"), [1, 1]), [1, 1])


def explicit_pads(
    op: Op, in_hw: tuple[int, int], kernel: list[int], strides: list[int], dilations: list[int]
) -> list[int] | None:
    """The window op's pads [top, left, bottom, right], with `auto_pad` resolved by ONNX's rule:

        total = max((⌈n / s⌉ − 1) · s + (k − 1) · d + 1 − n, 0)
        SAME_UPPER: begin = ⌊total / 2⌋;  SAME_LOWER: begin = ⌈total / 2⌉;  end = total − begin

    None for an unknown `auto_pad` value.
    """
    auto_pad = op.attrs.get("auto_pad", "NOTSET")
    if auto_pad == "NOTSET":
        return int_list(op.attrs.get("pads"), [0, 0, 0, 0])
    if auto_pad == "VALID":
        return [0, 0, 0, 0]
    if auto_pad not in ("SAME_UPPER", "SAME_LOWER"):
        return None
    begins, ends = [], []
    for axis in (0, 1):
        n, k, s, d = in_hw[axis], kernel[axis], strides[axis], dilations[axis]
        total = max((-(-n // s) - 1) * s + (k - 1) * d + 1 - n, 0)
        begin = total // 2 if auto_pad == "SAME_UPPER" else total - total // 2
        begins.append(begin)
        ends.append(total - begin)
    return [*begins, *ends]


def with_pads(attrs: dict[str, AttrValue], pads: list[int]) -> dict[str, AttrValue]:
    """A copy of Conv attributes with explicit `pads` (and no `auto_pad`)."""
    new = {k: v for k, v in attrs.items() if k != "auto_pad"}
    new["pads"] = [int(p) for p in pads]
    return new
