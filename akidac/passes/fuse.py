"""`fuse`: turn each legal layer anchor and its fusable successors into one `akida.*` op.

A Conv absorbs, in ONNX order, an optional MaxPool, a ReLU (or Clip(0, a): a bounded ReLU),
a MaxPool (ReLU and max pooling commute: both are monotonic per channel) and a
GlobalAveragePool; a Gemm/MatMul absorbs a preceding Flatten of a 4-D value and a following
ReLU/Clip. A successor joins only if it is the single user of the value and the fused layer
still satisfies every constraint of `akidac.target.constraints`; otherwise it stays on the CPU
with the reason that stopped it (a near-miss is explained, never silent).
After it, no op is "fusable": each is "akida" (an `akida.*` op) or "cpu" with reasons.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from akidac.ir.attributes import AttrValue
from akidac.ir.graph import Graph, Op, Value
from akidac.ir.onnx_export import same_pads
from akidac.passes.base import PassContext, PassResult, register_pass
from akidac.passes.layer_candidates import describe_anchor, judge
from akidac.passes.legalize import record, unsupported
from akidac.target.constraints import LayerCandidate, Violation


def _single_user(graph: Graph, value: Value) -> Op | None:
    if len(value.users) != 1 or value in graph.outputs:
        return None
    user = value.users[0]
    return user if user.annotations.get("target") == "fusable" else None


def _relu_bound(op: Op) -> tuple[bool, float | None]:
    """(is a ReLU-like op, its ceiling) for Relu and Clip(0, a)."""
    if op.op_type == "Relu":
        return True, None
    if op.op_type != "Clip":
        return False, None
    low: float | None = op.attrs.get("min")  # type: ignore[assignment]
    high: float | None = op.attrs.get("max")  # type: ignore[assignment]
    if len(op.inputs) > 1 and op.inputs[1] is not None:
        low = float(op.inputs[1].const) if op.inputs[1].is_constant else None  # type: ignore[arg-type]
        if not op.inputs[1].is_constant:
            return False, None
    if len(op.inputs) > 2 and op.inputs[2] is not None:
        if not op.inputs[2].is_constant:
            return False, None
        high = float(op.inputs[2].const)  # type: ignore[arg-type]
    if low is None or low != 0.0:
        return False, None
    return True, high


def _maxpool_params(op: Op, conv_out_hw: tuple[int, int], padding: str) -> list[int] | None:
    """[size_h, size_w, stride_h, stride_w] of an ONNX MaxPool Akida can fuse, else None."""
    kernel = op.attrs.get("kernel_shape")
    strides = op.attrs.get("strides", [1, 1])
    pads = op.attrs.get("pads", [0, 0, 0, 0])
    if (
        not isinstance(kernel, list)
        or len(kernel) != 2
        or op.attrs.get("dilations", [1, 1]) != [1, 1]
        or op.attrs.get("storage_order", 0)
        or (len(op.outputs) > 1 and op.outputs[1].users)
    ):
        return None
    ceil_mode = bool(op.attrs.get("ceil_mode", 0))
    out = op.outputs[0].type.shape
    for axis in (0, 1):
        size, k, s = conv_out_hw[axis], kernel[axis], strides[axis]  # type: ignore[index]
        before, after = pads[axis], pads[axis + 2]  # type: ignore[index]
        if padding == "valid":
            if before or after or out[2 + axis] != (size - k) // s + 1:  # type: ignore[index]
                return None
        else:
            if out[2 + axis] != -(-size // s):  # type: ignore[index]
                return None
            if before != same_pads(size, k, s, upper=False)[0] and not (ceil_mode and before == 0):
                return None
    return [kernel[0], kernel[1], strides[0], strides[1]]  # type: ignore[index]


@register_pass
@dataclass(frozen=True)
class Fuse:
    """Fuse Conv/Gemm anchors with bias, max pooling, ReLU and GAP into akida.* ops."""

    name: ClassVar[str] = "fuse"

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        changed = False
        for op in list(graph.ops):
            if op not in graph.ops or op.annotations.get("target") != "akida":
                continue
            if op.dialect != "onnx":
                continue
            candidate = describe_anchor(op)
            if candidate is None:
                continue
            if candidate.kind == "dense1d":
                self._fuse_dense(graph, ctx, op, candidate)
            else:
                self._fuse_conv(graph, ctx, op, candidate)
            changed = True
        for op in graph.ops:
            if op.annotations.get("target") == "fusable":
                reasons = op.meta.pop("near_miss", None) or [
                    unsupported(
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
        out_shape = conv.outputs[0].type.shape
        conv_hw = (int(out_shape[2]), int(out_shape[3]))  # type: ignore[index,arg-type]
        fused = [conv]
        tail = conv.outputs[0]
        state = {"pool": None, "activation": "none", "gap": False}
        while (user := _single_user(graph, tail)) is not None:
            change: dict[str, object] = {}
            is_relu, ceiling = _relu_bound(user)
            if is_relu and state["activation"] == "none" and not state["gap"]:
                change = {"activation": "relu" if ceiling is None else "relu_max"}
                new_attrs = {"act": "relu", "act_max": ceiling}
            elif user.op_type == "MaxPool" and state["pool"] is None and not state["gap"]:
                params = _maxpool_params(user, conv_hw, cand.padding)
                if params is None:
                    user.meta["near_miss"] = [
                        Violation(
                            code="AK-POOL-SIZE",
                            message=f"MaxPool '{user.display_name}' has a window, stride or "
                            "padding that Akida's fused max pooling cannot reproduce",
                            hint="use a 2×2 window with stride 2 and 'same' or no padding",
                            values={},
                        )
                    ]
                    break
                change = {"pool": tuple(params)}
                new_attrs = {"pool": "max", "pool_size": params[:2], "pool_stride": params[2:]}
            elif user.op_type == "GlobalAveragePool" and not state["gap"]:
                change = {"gap": True}
                new_attrs = {"gap": True}
            else:
                break
            violations = judge(cand, **{**state, **change})
            if violations:
                user.meta["near_miss"] = violations
                break
            state.update(change)
            attrs.update(new_attrs)
            fused.append(user)
            tail = user.outputs[0]
        if attrs.get("act_max") is None:
            attrs.pop("act_max", None)
        kind = "akida.depthwise_conv2d" if cand.kind == "depthwise_conv2d" else "akida.conv2d"
        operands = [conv.inputs[0], conv.inputs[1]]
        if len(conv.inputs) > 2 and conv.inputs[2] is not None:
            operands.append(conv.inputs[2])
        self._replace(graph, ctx, fused, kind, operands, attrs, tail)

    # ----------------------------------------------------------------- dense
    def _fuse_dense(self, graph: Graph, ctx: PassContext, op: Op, cand: LayerCandidate) -> None:
        fused = [op]
        x = op.inputs[0]
        producer = x.producer if x is not None else None
        if (
            producer is not None
            and producer.op_type == "Flatten"
            and producer.annotations.get("target") == "fusable"
            and len(x.users) == 1  # type: ignore[union-attr]
            and producer.attrs.get("axis", 1) == 1
            and producer.inputs[0] is not None
            and producer.inputs[0].type.rank == 4
        ):
            fused.insert(0, producer)
            x = producer.inputs[0]
        weight = op.inputs[1].const.astype(np.float32)  # type: ignore[union-attr]
        bias = None
        if op.kind == "onnx.Gemm":
            if op.attrs.get("transB", 0):
                weight = weight.T
            weight = weight * float(op.attrs.get("alpha", 1.0))  # type: ignore[arg-type]
            if len(op.inputs) > 2 and op.inputs[2] is not None and op.inputs[2].is_constant:
                c = op.inputs[2].const.astype(np.float32)  # type: ignore[union-attr]
                bias = np.broadcast_to(c.reshape(-1), (weight.shape[1],)) * float(
                    op.attrs.get("beta", 1.0)
                )  # type: ignore[arg-type]
        attrs: dict[str, AttrValue] = {
            "act": "none",
            "wbits": ctx.options.wbits,
            "abits": ctx.options.abits,
        }
        tail = op.outputs[0]
        user = _single_user(graph, tail)
        if user is not None:
            is_relu, ceiling = _relu_bound(user)
            if is_relu:
                attrs["act"] = "relu"
                if ceiling is not None:
                    attrs["act_max"] = ceiling
                fused.append(user)
                tail = user.outputs[0]
        base = op.display_name
        operands: list[Value | None] = [x, graph.add_constant(f"{base}_weight", weight, fresh=True)]
        if bias is not None:
            operands.append(
                graph.add_constant(f"{base}_bias", np.ascontiguousarray(bias), fresh=True)
            )
        self._replace(graph, ctx, fused, "akida.dense", operands, attrs, tail)

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
        # the anchor (Conv/Gemm) names the layer; a fused Flatten before it comes after it
        ordered = sorted(fused, key=lambda f: f.op_type == "Flatten")
        origin = tuple(name for f in ordered for name in f.origin)
        new = graph.make_op(
            kind,
            operands,
            [tail.type],
            result_names=[f"{tail.name}_akida"],
            attrs=attrs,
            origin=origin,
            created_by="fuse",
            fresh_names=True,
            index=graph.ops.index(fused[-1]) + 1,
        )
        result = new.outputs[0]
        if tail in graph.outputs:
            result.name, tail.name = tail.name, result.name
        graph.replace_all_uses(tail, result)
        for op in reversed(fused):
            graph.remove_op(op)
        record(ctx, new, "akida", [])
