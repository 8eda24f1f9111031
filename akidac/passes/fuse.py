"""`fuse`: turn each legal layer anchor and its fusable successors into one `akida.*` op.

Hardware order inside a layer: bias → max pooling → activation → global average pooling.
- A Conv absorbs an optional MaxPool, an activation (ReLU, bounded ReLU, or a LUT function,
  see `activations.py`), a MaxPool after a ReLU (ReLU and max pooling commute: both are
  monotonic per channel) and a GlobalAveragePool.
- A ConvTranspose (stride 2, kernel 3 or 4) absorbs an activation.
- A Gemm/MatMul absorbs a preceding Flatten of a 4-D value and a following activation.
- Add and Concat become `akida.add` / `akida.concat`. A merge must be followed by a CNP layer:
  when its consumer is anything else (an activation, a dense layer, the CPU), an identity layer
  (`akida.depthwise_conv2d`, 3×3, centre tap 1) is inserted after it and absorbs the activation,
  if any; it is annotated `inserted = "identity"` (it computes nothing of the model's own).
A successor joins only if it is the single user of the value and the fused layer still
satisfies every constraint of `akidac.target.constraints`; otherwise it stays on the CPU with the
reason that stopped it (a near-miss is explained, never silent).
After it, no op is "fusable": each is "akida" (an `akida.*` op) or "cpu" with reasons.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np

from akidac.ir.attributes import AttrValue, quad
from akidac.ir.graph import Graph, Op, Value
from akidac.ir.onnx_export import same_pads
from akidac.passes.activations import ActivationMatch, match_activation
from akidac.passes.base import PassContext, PassResult, register_pass
from akidac.passes.layer_candidates import describe_anchor, judge
from akidac.passes.legalize import record, unsupported
from akidac.passes.rewrites.rule import explicit_pool_pads
from akidac.target.constraints import LayerCandidate, Violation
from akidac.target.limits import MAX_CONSUMERS

#: a map with more readers than this gets no identity fan-out (see `Fuse._fan_out`).
FAN_OUT_MAX_READERS = MAX_CONSUMERS + 1

CNP_KINDS = frozenset(
    {
        "akida.conv2d",
        "akida.depthwise_conv2d",
        "akida.conv2d_transpose",
        "akida.depthwise_conv2d_transpose",
    }
)


def _single_fusable_user(graph: Graph, value: Value) -> Op | None:
    users = list(dict.fromkeys(value.users))
    if len(users) != 1 or graph.is_pinned(value):
        return None
    user = users[0]
    return user if user.annotations.get("target") == "fusable" else None


def _all_fusable(ops: list[Op]) -> bool:
    return all(op.annotations.get("target") == "fusable" for op in ops)


def _legal_activation(graph: Graph, value: Value, cand: LayerCandidate) -> ActivationMatch | None:
    """The activation after `value` if the layer `cand` may fuse it; a near miss is recorded
    on the activation's first op."""
    match = match_activation(graph, value)
    if match is None or not _all_fusable(match.ops):
        return None
    violations = judge(cand, activation=match.family)
    if violations:
        match.ops[0].meta["near_miss"] = violations
        return None
    return match


def _maxpool_params(op: Op, conv_out_hw: tuple[int, int], padding: str) -> list[int] | None:
    """[size_h, size_w, stride_h, stride_w] of an ONNX MaxPool Akida can fuse, else None."""
    if not isinstance(op.attrs.get("kernel_shape"), list):
        return None
    kernel = op.ints_attr("kernel_shape")
    strides = op.ints_attr("strides", [1, 1])
    if len(kernel) != 2:
        return None
    pads = explicit_pool_pads(op, conv_out_hw)  # auto_pad resolved: SAME_LOWER pads the head
    if pads is None:
        return None
    if op.attrs.get("dilations", [1, 1]) != [1, 1] or op.attrs.get("storage_order", 0):
        return None
    if len(op.outputs) > 1 and op.outputs[1].users:
        return None
    ceil_mode = bool(op.attrs.get("ceil_mode", 0))
    out_type = op.outputs[0].type
    if out_type.rank != 4 or not out_type.is_static:
        return None
    out = out_type.dims
    for axis in (0, 1):
        size, k, s = conv_out_hw[axis], kernel[axis], strides[axis]
        before, after = pads[axis], pads[axis + 2]
        if padding == "valid":
            if before or after or out[2 + axis] != (size - k) // s + 1:
                return None
        else:
            if out[2 + axis] != -(-size // s):
                return None
            if before != same_pads(size, k, s, upper=False)[0] and not (ceil_mode and before == 0):
                return None
    return [kernel[0], kernel[1], strides[0], strides[1]]


def _pool_near_miss(op: Op) -> list[Violation]:
    return [
        Violation(
            code="AK-POOL-SIZE",
            message=f"MaxPool '{op.display_name}' has a window, stride or padding that Akida's "
            "fused max pooling cannot reproduce",
            hint="use a 2×2 window with stride 2 and 'same' or no padding",
            values={},
        )
    ]


@register_pass
@dataclass(frozen=True)
class Fuse:
    """Fuse Conv/ConvTranspose/Gemm/Add/Concat with pooling and activations into akida.* ops."""

    name: ClassVar[str] = "fuse"

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        changed = False
        for op in list(graph.ops):
            if op.meta.get("removed") or op.annotations.get("target") != "akida":
                continue
            if op.dialect != "onnx":
                continue
            candidate = describe_anchor(op)
            if candidate is None:
                continue
            if candidate.kind == "dense1d":
                self._fuse_dense(graph, ctx, op, candidate)
            elif candidate.kind in ("add", "concatenate"):
                self._fuse_merge(graph, ctx, op, candidate)
            else:
                self._fuse_conv(graph, ctx, op, candidate)
            changed = True
        self._cnp_after_merges(graph, ctx)
        self._pools_after_layers(graph, ctx)
        self._fan_out(graph, ctx)
        for op in graph.ops:
            if op.annotations.get("target") == "fusable":
                reasons = op.meta.pop("near_miss", None) or [
                    _producer_on_cpu(ctx, op)
                    or unsupported(
                        op,
                        f"{op.op_type} '{op.display_name}' runs on Akida only fused into a "
                        "preceding Conv or Gemm layer",
                        "place it right after a Conv/Gemm with no other consumer in between",
                    )
                ]
                record(ctx, op, "cpu", reasons)
        graph.remove_unused_constants()
        return PassResult(graph, changed)

    # ------------------------------------------------------------------ conv
    def _fuse_conv(self, graph: Graph, ctx: PassContext, conv: Op, cand: LayerCandidate) -> None:
        transposed = cand.kind.endswith("transpose")
        attrs: dict[str, AttrValue] = {
            "kernel": list(cand.kernel),
            "stride": list(cand.stride),
            "pad": cand.padding,
            "act": "none",
            "pool": "none",
            "gap": False,
            "wbits": ctx.options.wbits,
            "abits": ctx.options.abits,
        }
        out_shape = conv.outputs[0].type.dims
        conv_hw = (out_shape[2], out_shape[3])
        fused = [conv]
        tail = conv.outputs[0]
        state: dict[str, Any] = {"pool": None, "activation": "none", "gap": False}
        while True:
            change: dict[str, Any] = {}
            new_attrs: dict[str, AttrValue] = {}
            consumed: list[Op] = []
            new_tail = tail
            user = _single_fusable_user(graph, tail)
            match = match_activation(graph, tail) if state["activation"] == "none" else None
            if match is not None and not state["gap"] and _all_fusable(match.ops):
                change = {"activation": match.family}
                new_attrs = dict(match.attrs)
                consumed, new_tail = match.ops, match.tail
            elif (
                user is not None
                and user.kind == "onnx.MaxPool"
                and state["pool"] is None
                and not state["gap"]
                and not transposed
            ):
                params = _maxpool_params(user, conv_hw, cand.padding)
                if params is None:
                    user.meta["near_miss"] = _pool_near_miss(user)
                    break
                change = {"pool": tuple(params)}
                new_attrs = {
                    "pool": "max",
                    "pool_size": [*params[:2]],
                    "pool_stride": [*params[2:]],
                }
                consumed, new_tail = [user], user.outputs[0]
            elif (
                user is not None
                and user.kind == "onnx.GlobalAveragePool"
                and not state["gap"]
                and not transposed
            ):
                change = {"gap": True}
                new_attrs = {"gap": True}
                consumed, new_tail = [user], user.outputs[0]
            else:
                break
            violations = judge(cand, **{**state, **change})
            if violations:
                consumed[0].meta["near_miss"] = violations
                break
            state.update(change)
            attrs.update(new_attrs)
            fused.extend(consumed)
            tail = new_tail
        kind = f"akida.{cand.kind}"
        operands = [conv.inputs[0], conv.inputs[1]]
        if len(conv.inputs) > 2 and conv.inputs[2] is not None:
            operands.append(conv.inputs[2])
        self._replace(graph, ctx, fused, kind, operands, attrs, tail)

    # ----------------------------------------------------------------- dense
    def _fuse_dense(self, graph: Graph, ctx: PassContext, op: Op, cand: LayerCandidate) -> None:
        fused = [op]
        x = op.operand(0)
        producer = x.producer
        if (
            producer is not None
            and producer.op_type == "Flatten"
            and producer.annotations.get("target") == "fusable"
            and len(x.users) == 1
            and not graph.is_pinned(x)
            and producer.attrs.get("axis", 1) == 1
            and producer.inputs[0] is not None
            and producer.inputs[0].type.rank == 4
        ):
            fused.insert(0, producer)
            x = producer.inputs[0]
        weight = op.operand(1).array.astype(np.float32)
        bias = None
        if op.kind == "onnx.Gemm":
            if op.attrs.get("transB", 0):
                weight = weight.T
            weight = weight * op.float_attr("alpha", 1.0)
            if len(op.inputs) > 2 and op.inputs[2] is not None and op.inputs[2].is_constant:
                c = op.inputs[2].array.astype(np.float32)
                beta = op.float_attr("beta", 1.0)
                bias = np.broadcast_to(c.reshape(-1), (weight.shape[1],)) * beta
        attrs: dict[str, AttrValue] = {
            "act": "none",
            "wbits": ctx.options.wbits,
            "abits": ctx.options.abits,
        }
        tail = op.outputs[0]
        match = _legal_activation(graph, tail, cand)
        if match is not None:
            attrs.update(match.attrs)
            fused.extend(match.ops)
            tail = match.tail
        base = op.display_name
        operands: list[Value | None] = [x, graph.add_constant(f"{base}_weight", weight, fresh=True)]
        if bias is not None:
            operands.append(
                graph.add_constant(f"{base}_bias", np.ascontiguousarray(bias), fresh=True)
            )
        self._replace(graph, ctx, fused, "akida.dense", operands, attrs, tail)

    # ---------------------------------------------------------------- merges
    def _fuse_merge(self, graph: Graph, ctx: PassContext, op: Op, cand: LayerCandidate) -> None:
        kind = "akida.add" if cand.kind == "add" else "akida.concat"
        attrs: dict[str, AttrValue] = (
            {"abits": ctx.options.abits} if kind == "akida.add" else {"axis": 1}
        )
        self._replace(graph, ctx, [op], kind, list(op.inputs), attrs, op.outputs[0])

    def _cnp_after_merges(self, graph: Graph, ctx: PassContext) -> None:
        """Insert an identity layer after every merge whose consumer is not a CNP layer;
        it absorbs the activation (and a GAP after it) that follows the merge, if any."""
        for merge in [op for op in graph.ops if op.kind in ("akida.add", "akida.concat")]:
            out = merge.outputs[0]
            users = list(dict.fromkeys(out.users))
            if users and all(u.kind in CNP_KINDS for u in users) and not graph.is_pinned(out):
                continue
            attrs = self._identity_attrs(ctx)
            ctx.sink.note(
                "AK-MERGE-CONSUMER",
                f"{merge.op_type} '{merge.display_name}' must be followed by a CNP layer; an "
                "identity layer (a 3×3 depthwise convolution) was inserted after it",
                node=merge.display_name,
            )
            fused: list[Op] = []
            tail = out
            shape = out.type.dims
            identity = LayerCandidate(
                node_name=merge.display_name,
                op_type=merge.op_type,
                kind="depthwise_conv2d",
                in_channels=shape[1],
                filters=shape[1],
                kernel=(3, 3),
                groups=shape[1],
                input_hw=(shape[2], shape[3]),
            )
            match = _legal_activation(graph, out, identity)
            if match is not None:
                attrs.update(match.attrs)
                fused, tail = list(match.ops), match.tail
                identity = replace(identity, activation=match.family)
            gap = _single_fusable_user(graph, tail) if fused else None
            if gap is not None and gap.kind == "onnx.GlobalAveragePool":
                violations = judge(identity, gap=True)
                if violations:
                    gap.meta["near_miss"] = violations
                else:
                    attrs["gap"] = True
                    fused.append(gap)
                    tail = gap.outputs[0]
            self._insert_identity(graph, ctx, merge, out, fused, tail, attrs)

    def _pools_after_layers(self, graph: Graph, ctx: PassContext) -> None:
        """A MaxPool/GlobalAveragePool left alone after a ReLU layer that has other consumers
        runs on Akida as an identity layer with that pooling (ReLU of a ReLU output is
        the identity, and Akida's max pooling needs an activation)."""
        for pool in [
            op for op in graph.ops if op.kind in ("onnx.MaxPool", "onnx.GlobalAveragePool")
        ]:
            if pool.annotations.get("target") != "fusable" or pool.inputs[0] is None:
                continue
            source = pool.inputs[0]
            producer = source.producer
            if (
                producer is None
                or producer.dialect != "akida"
                or producer.attrs.get("act") != "relu"
            ):
                continue
            attrs = self._identity_attrs(ctx)
            attrs["act"] = "relu"
            shape = source.type.dims
            pool_window: tuple[int, int, int, int] | None = None
            if pool.kind == "onnx.GlobalAveragePool":
                attrs["gap"] = True
            else:
                params = _maxpool_params(pool, (shape[2], shape[3]), "same")
                if params is None:
                    continue
                pool_window = quad(params)
                attrs.update(pool="max", pool_size=[*params[:2]], pool_stride=[*params[2:]])
            channels = shape[1]
            candidate = LayerCandidate(
                node_name=pool.display_name,
                op_type=pool.op_type,
                kind="depthwise_conv2d",
                in_channels=channels,
                filters=channels,
                kernel=(3, 3),
                groups=channels,
                input_hw=(shape[2], shape[3]),
                activation="relu",
                gap=bool(attrs["gap"]),
                pool=pool_window,
            )
            violations = judge(candidate)
            if violations:
                pool.meta["near_miss"] = violations
                continue
            self._insert_identity(
                graph, ctx, pool, source, [pool], pool.outputs[0], attrs, origin=pool.origin
            )

    def _fan_out(self, graph: Graph, ctx: PassContext) -> None:
        """Give every Akida map read by more than `MAX_CONSUMERS` ops a chain of identity
        layers: the producer keeps its first reader and feeds an identity layer, which keeps
        the next reader and feeds another, until each layer has at most two. A layer has at
        most two consumers on Akida; without this, a map read three times (YOLOv8's C2f reads
        its split half in the bottleneck, the shortcut Add and the Concat) ends the program
        there and every reader starts one of its own. Only where at least two readers are
        Akida layers (readers on the CPU take the map over a border anyway), and only for one
        reader too many (`FAN_OUT_MAX_READERS`): a map read many times is DenseNet's, whose
        readers are Concats that each take a second map from elsewhere and so cannot share a
        program; there 423 identity layers bought nothing and cost the CPU their work once
        the partition sent them back (torchvision DenseNet-121: 2.4× instead of 1.5× the
        float model's time)."""
        for producer in [op for op in graph.ops if op.dialect == "akida"]:
            if producer.annotations.get("target") != "akida" or not producer.outputs:
                continue
            source = producer.outputs[0]
            while True:
                users = list(dict.fromkeys(source.users))
                on_akida = [u for u in users if u.annotations.get("target") == "akida"]
                if len(users) <= MAX_CONSUMERS or len(on_akida) < 2 or source.type.rank != 4:
                    break
                if len(users) > FAN_OUT_MAX_READERS:
                    break
                if graph.is_pinned(source):
                    break
                moved = sorted(users, key=lambda u: (u not in on_akida, graph.ops.index(u)))[1:]
                ctx.sink.note(
                    "AK-FAN-OUT",
                    f"'{source.name}' is read by {len(users)} ops and an Akida layer has at most "
                    f"{MAX_CONSUMERS} consumers; an identity layer (a 3×3 depthwise convolution) "
                    "passes it on to the others",
                    node=producer.display_name,
                )
                source = self._fan_out_identity(graph, ctx, producer, source, moved)

    @staticmethod
    def _fan_out_identity(
        graph: Graph, ctx: PassContext, producer: Op, source: Value, readers: list[Op]
    ) -> Value:
        """An identity layer reading `source` that `readers` read instead; its result."""
        channels = source.type.dims[1]
        weight = _identity_weight(graph, f"{producer.display_name}_fanout", channels)
        anchor = source.producer or producer
        identity = graph.make_op(
            "akida.depthwise_conv2d",
            [source, weight],
            [source.type],
            result_names=[f"{source.name}_fanout"],
            attrs=Fuse._identity_attrs(ctx),
            origin=(),  # compiler-added: the producer's node stays on Akida whatever it becomes
            created_by="fuse",
            fresh_names=True,
            index=graph.ops.index(anchor) + 1,
        )
        for reader in readers:
            for index, operand in enumerate(reader.inputs):
                if operand is source:
                    graph.set_input(reader, index, identity.outputs[0])
        record(ctx, identity, "akida", [])
        identity.annotations["inserted"] = "identity"
        return identity.outputs[0]

    @staticmethod
    def _identity_attrs(ctx: PassContext) -> dict[str, AttrValue]:
        """The identity layer is a 3×3 depthwise convolution whose centre tap is 1: of the
        legal CNP layers that copy a map, the cheapest. Its weights take
        `ceil8(C) × 3 × 25` bits and each NP holds only its own channels' input, where an
        identity 1×1 full convolution takes `ceil8(C) × C × 25` bits and the whole input per NP
        (on a 2048-channel ResNet-50 map: 4 NPs against 256)."""
        return {
            "kernel": [3, 3],
            "stride": [1, 1],
            "pad": "same",
            "act": "none",
            "pool": "none",
            "gap": False,
            "wbits": ctx.options.wbits,
            "abits": ctx.options.abits,
        }

    @staticmethod
    def _insert_identity(
        graph: Graph,
        ctx: PassContext,
        after: Op,
        source: Value,
        fused: list[Op],
        tail: Value,
        attrs: dict[str, AttrValue],
        origin: tuple[str, ...] | None = None,
    ) -> None:
        """An identity layer (`_identity_attrs`: a 3×3 depthwise convolution, centre tap 1)
        reading `source`, replacing `fused` (which end in `tail`), placed after `after`."""
        channels = source.type.dims[1]
        weight = _identity_weight(graph, f"{after.display_name}_identity", channels)
        if origin is None:
            origin = (*after.origin[:1], *(n for f in fused for n in f.origin))
        Fuse._emit(
            graph,
            ctx,
            "akida.depthwise_conv2d",
            [source, weight],
            attrs,
            origin,
            fused,
            tail,
            after=fused[-1] if fused else after,
            suffix="identity",
        )

    # ---------------------------------------------------------------- shared
    @staticmethod
    def _replace(
        graph: Graph,
        ctx: PassContext,
        fused: list[Op],
        kind: str,
        operands: list[Value | None],
        attrs: dict[str, AttrValue],
        tail: Value,
    ) -> None:
        # the anchor names the layer; a fused Flatten before it comes after it
        ordered = sorted(fused, key=lambda f: f.op_type == "Flatten")
        origin = tuple(name for f in ordered for name in f.origin)
        Fuse._emit(
            graph, ctx, kind, operands, attrs, origin, fused, tail, after=fused[-1], suffix="akida"
        )

    @staticmethod
    def _emit(
        graph: Graph,
        ctx: PassContext,
        kind: str,
        operands: list[Value | None],
        attrs: dict[str, AttrValue],
        origin: tuple[str, ...],
        fused: list[Op],
        tail: Value,
        *,
        after: Op,
        suffix: str,
    ) -> None:
        """Insert the akida op after `after`, make it the producer of what `tail` was (its
        users, its name if pinned), and drop the `fused` ops it replaces."""
        new = graph.make_op(
            kind,
            operands,
            [tail.type],
            result_names=[f"{tail.name}_{suffix}"],
            attrs=attrs,
            origin=origin,
            created_by="fuse",
            fresh_names=True,
            index=graph.ops.index(after) + 1,
        )
        graph.redirect_uses(tail, new.outputs[0], skip=new)
        for op in reversed(fused):
            graph.remove_op(op)
        record(ctx, new, "akida", [])
        if suffix == "identity":
            new.annotations["inserted"] = "identity"
        elif len(fused) == 1 and fused[0].annotations.get("inserted"):
            # a layer a rewrite made to move data (channel-pad-to-conv), nothing fused into it
            new.annotations["inserted"] = fused[0].annotations["inserted"]
            if "channel_pads" in fused[0].meta:
                new.meta["channel_pads"] = fused[0].meta["channel_pads"]


#: ops a fusable op is found after when it follows a layer through other fused steps
#: (Conv → Relu → GlobalAveragePool): how far back `_producer_on_cpu` looks.
_LAYER_KINDS = ("onnx.Conv", "onnx.ConvTranspose", "onnx.Gemm", "onnx.MatMul")
_FUSED_STEPS = 3


def _producer_on_cpu(ctx: PassContext, op: Op) -> Any:
    """When `op` (a ReLU, Clip, pooling… that Akida runs only fused into a layer) follows a
    Conv/ConvTranspose/Gemm that runs on the CPU, directly or through other CPU ops of that
    kind, the reason says so: it names that layer and the layer's own first reason, since that
    is what to fix. None otherwise."""
    between: list[str] = []
    producer = op
    for _ in range(_FUSED_STEPS):
        value = producer.inputs[0] if producer.inputs else None
        upstream = value.producer if value is not None else None
        if upstream is None or upstream.annotations.get("target") != "cpu":
            return None
        producer = upstream
        if producer.kind in _LAYER_KINDS:
            break
        between.append(producer.display_name)
    else:
        return None
    name = producer.display_name
    decision = ctx.analyses.get("decisions", {}).get((producer.origin or (name,))[0])
    cause = decision.violations[0] if decision is not None and decision.violations else None
    why = f" ({cause.code}: {cause.message})" if cause else ""
    hint = f"; its hint: {cause.hint}" if cause and cause.hint else ""
    through = f" (through {', '.join(between)})" if between else ""
    return unsupported(
        op,
        f"{op.op_type} '{op.display_name}' would fuse into {producer.op_type} '{name}'"
        f"{through}, but '{name}' runs on the CPU{why}",
        f"make '{name}' run on Akida and '{op.display_name}' fuses into it{hint}",
    )


def _identity_weight(graph: Graph, name: str, channels: int) -> Value:
    """The weights of an identity layer (`Fuse._identity_attrs`): a 3×3 depthwise kernel per
    channel whose centre tap is 1."""
    eye = np.zeros((channels, 1, 3, 3), dtype=np.float32)
    eye[:, 0, 1, 1] = 1.0
    return graph.add_constant(name, eye, fresh=True)
