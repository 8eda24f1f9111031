"""`partition`: group Akida layers into regions, each one Akida program, and set layouts.

A region is a connected set of `akida.*` ops with one input value and one output value, whose
contraction leaves the graph acyclic. Regions grow in topological order: an op joins the
region of its producers when all its non-constant operands come from that region and no path
leaves the region and comes back (checked on every join). Then region rules are applied by
the cheapest fix, never by dropping the region:
- a program has one output: a region with several outputs is cut after the first one;
- max pooling cannot end a sequence: the trailing pooling moves to the CPU as an ONNX MaxPool
  (`AK-REGION-MAXPOOL-LAST`), the layer stays on Akida.
Regions that would compute nothing run on the CPU: one made only of Add/Concatenate layers
(`AK-REGION-COST`: its transfers can only cost more than it saves) or only of merges and inserted
identity or channel-padding layers (`AK-REGION-NO-MACS`). No other cost is weighed here.
Finally, values inside a region become NHWC and Transposes are inserted at its borders.
After it every akida op is annotated with its `region` (or `target = "cpu"` with a reason),
and `ctx.analyses["regions"]` lists the regions with why each starts and ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from akidac.errors import InternalError
from akidac.ir.analyses import Region
from akidac.ir.graph import Graph, Op, Value
from akidac.ir.onnx_export import same_pads
from akidac.ir.types import TensorType
from akidac.passes.base import PassContext, PassResult, register_pass
from akidac.passes.legalize import record
from akidac.target.constraints import Violation
from akidac.target.limits import MAX_CONSUMERS

TO_NHWC = [0, 2, 3, 1]
TO_NCHW = [0, 3, 1, 2]


def region_boundary(ops: list[Op], graph: Graph) -> tuple[list[Value], list[Value]]:
    """(external non-constant inputs, values used outside or as graph outputs), in order."""
    members = {id(op) for op in ops}
    inputs: list[Value] = []
    outputs: list[Value] = []
    for op in ops:
        for value in op.inputs:
            if value is None or value.is_constant or value in inputs:
                continue
            if value.producer is None or id(value.producer) not in members:
                inputs.append(value)
        for value in op.outputs:
            if graph.is_pinned(value) or any(id(u) not in members for u in value.users):
                outputs.append(value)
    return inputs, outputs


def consumer_count(op: Op) -> int:
    """Distinct ops reading any result of `op`."""
    return len({id(user) for value in op.outputs for user in value.users})


def grow_regions(graph: Graph, start_reasons: dict[int, str] | None = None) -> list[list[Op]]:
    """Greedy growth of connected akida ops into regions (see module docstring).
    `start_reasons` receives, per op id, why an op did not join its producer's region.

    Why the result is acyclic: an op joins a region only when every producer is in it, or when
    it reads one outside value only, the same value the region's first op reads. So a region's
    only outside input is a value computed before its first op, and nothing a region computes
    can flow back into it. `quotient_cycle` checks this on the final regions all the same."""
    region_of: dict[int, int] = {}
    regions: list[list[Op]] = []
    region_reading: dict[int, int] = {}  # id of an outside value → the region it feeds
    for op in graph.ops:
        producers = [v.producer for v in op.inputs if v is not None and v.producer is not None]
        if op.dialect != "akida" or op.annotations.get("target") != "akida":
            continue
        source_regions = {region_of.get(id(p)) for p in producers}
        target = None
        crowded = any(consumer_count(p) > MAX_CONSUMERS for p in producers)
        if len(source_regions) == 1 and None not in source_regions and not crowded:
            (target,) = source_regions
        if target is None and start_reasons is not None and crowded:
            busy = next(p for p in producers if consumer_count(p) > MAX_CONSUMERS)
            start_reasons[id(op)] = (
                f"AK-REGION-CONSUMERS: '{busy.display_name}' feeds {consumer_count(busy)} "
                f"consumers; an Akida layer has at most {MAX_CONSUMERS}, so its program ends there"
            )
        external = {id(v) for v in op.inputs if v is not None and not v.is_constant}
        if target is None and not any(id(p) in region_of for p in producers) and len(external) == 1:
            # a branch reading the same value as an existing region's input joins that region
            (value_id,) = external
            target = region_reading.get(value_id)
        if target is None:
            target = len(regions)
            regions.append([])
            if len(external) == 1:
                region_reading.setdefault(next(iter(external)), target)
        regions[target].append(op)
        region_of[id(op)] = target
    return regions


def quotient_cycle(graph: Graph, regions: list[list[Op]]) -> list[str] | None:
    """A cycle of the graph with every region contracted to one node (display names of the
    nodes on it), or None when the contraction is acyclic, as a program must be: a region
    whose output flows back into its own input through the CPU could never run.

    Nodes are keyed by identity (a region's index, an op's position), not by display name:
    rewrites leave several ops with one ONNX origin (a Concat split into pairs), and keying
    them by name would join them into one node and report a cycle that does not exist."""
    position = {id(op): index for index, op in enumerate(graph.ops)}
    node_of: dict[int, tuple[int, int]] = {}
    for index, ops in enumerate(regions):
        for op in ops:
            node_of[id(op)] = (0, index)
    labels: dict[tuple[int, int], str] = {(0, i): f"region {i}" for i in range(len(regions))}

    def node(op: Op) -> tuple[int, int]:
        key = node_of.get(id(op))
        if key is None:
            key = (1, position[id(op)])
            labels[key] = f"{op.kind} '{op.display_name}'"
        return key

    edges: dict[tuple[int, int], set[tuple[int, int]]] = {}
    for op in graph.ops:
        here = node(op)
        edges.setdefault(here, set())
        for value in op.inputs:
            if value is None or value.producer is None:
                continue
            there = node(value.producer)
            if there != here:
                edges.setdefault(there, set()).add(here)
    state: dict[tuple[int, int], int] = {}  # 1 on the stack, 2 done
    for root in sorted(edges):
        if state.get(root):
            continue
        stack = [(root, iter(sorted(edges[root])))]
        path = [root]
        state[root] = 1
        while stack:
            current, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[current] = 2
                stack.pop()
                path.pop()
                continue
            if state.get(child) == 1:
                return [labels[key] for key in [*path[path.index(child) :], child]]
            if not state.get(child):
                state[child] = 1
                path.append(child)
                stack.append((child, iter(sorted(edges.get(child, ())))))
    return None


@register_pass
@dataclass(frozen=True)
class Partition:
    """Form single-input single-output Akida regions; fix region rules; NHWC inside regions."""

    name: ClassVar[str] = "partition"

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        start_reasons: dict[int, str] = {}
        end_reasons: dict[int, str] = {}
        pending = grow_regions(graph, start_reasons)
        regions: list[Region] = []
        while pending:
            ops = pending.pop(0)
            inputs, outputs = region_boundary(ops, graph)
            if len(inputs) != 1:
                cut = self._second_input_at(ops, inputs)
                if cut == 0:
                    self._demote(
                        ctx,
                        ops[0],
                        "AK-REGION-INPUTS",
                        f"{ops[0].op_type} '{ops[0].display_name}' reads {len(inputs)} values "
                        "from outside any Akida program; a program has one input",
                    )
                    pieces = [ops[1:]]
                else:
                    pieces = [ops[:cut], ops[cut:]]
                pending[0:0] = [piece for piece in pieces if piece]
                continue
            if len(outputs) > 1:
                # cut after the earliest exported value; both pieces are checked again
                cut = ops.index(outputs[0].producer) + 1  # type: ignore[arg-type]
                end_reasons[id(ops[cut - 1])] = (
                    f"AK-REGION-OUTPUTS: a program has one output; '{outputs[0].name}' is also "
                    "used outside, so the program ends there"
                )
                pending[0:0] = [ops[:cut], ops[cut:]]
                continue
            ends = end_reasons.get(
                id(ops[-1]), "the next op cannot run on Akida or starts another region"
            )
            if not outputs:
                continue
            region = Region(
                len(regions),
                ops,
                inputs[0],
                outputs[0],
                starts_because=start_reasons.get(id(ops[0]), self._start_reason(ops[0])),
                ends_because=ends,
            )
            if not any(
                op.kind not in ("akida.add", "akida.concat") and not op.annotations.get("inserted")
                for op in ops
            ) and any(op.annotations.get("inserted") for op in ops):
                for op in ops:
                    self._demote(
                        ctx,
                        op,
                        "AK-REGION-NO-MACS",
                        f"{op.op_type} '{op.display_name}' would form an Akida program whose "
                        "only layers are merges and inserted identity or channel-padding "
                        "layers: it computes nothing of the model's own, so it stays exact on "
                        "the CPU",
                    )
                continue
            if not any(op.kind not in ("akida.add", "akida.concat") for op in ops):
                for op in ops:
                    self._demote(
                        ctx,
                        op,
                        "AK-REGION-COST",
                        f"{op.op_type} '{op.display_name}' would form an Akida program "
                        "that computes nothing: its transfers cost more than it saves",
                    )
                continue
            self._move_trailing_pool(graph, ctx, region)
            regions.append(region)
        cycle = quotient_cycle(graph, [region.ops for region in regions])
        if cycle is not None:
            raise InternalError(f"partition formed a cycle: {' → '.join(cycle)}")
        self._drop_idle_identities(graph, regions)
        self._restore_channel_pads(graph, regions)
        for region in regions:
            self._to_nhwc(graph, region)
            for op in region.ops:
                op.annotations["region"] = region.index
        ctx.analyses["regions"] = regions
        return PassResult(graph, bool(regions))

    @staticmethod
    def _drop_idle_identities(graph: Graph, regions: list[Region]) -> None:
        """Identity layers `fuse` inserted (after a merge, for a fan-out) that ended up outside
        every region, with nothing fused into them: on the CPU they would be a 3×3 convolution
        computing a copy, so their readers read the copied value instead."""
        placed = {id(op) for region in regions for op in region.ops}
        for op in list(graph.ops):
            if op.annotations.get("inserted") != "identity" or id(op) in placed:
                continue
            if op.attrs.get("act") != "none" or op.attrs.get("pool") != "none":
                continue
            if op.attrs.get("gap") or op.inputs[0] is None or graph.is_pinned(op.outputs[0]):
                continue
            graph.redirect_uses(op.outputs[0], op.inputs[0])
            graph.remove_op(op)

    @staticmethod
    def _restore_channel_pads(graph: Graph, regions: list[Region]) -> None:
        """Layers `channel-pad-to-conv` made of a channel zero-Pad that ended up outside every
        region: on the CPU the Pad they came from is cheaper than a 1×1 convolution (and
        computes no MACs), so it comes back."""
        placed = {id(op) for region in regions for op in region.ops}
        for op in list(graph.ops):
            pads = op.meta.get("channel_pads")
            if op.annotations.get("inserted") != "channel_pad" or id(op) in placed or not pads:
                continue
            x, result = op.inputs[0], op.outputs[0]
            if x is None:
                continue
            before, after = pads
            constant = graph.add_constant(
                f"{op.display_name}_pads",
                np.array([0, before, 0, 0, 0, after, 0, 0], np.int64),
                fresh=True,
            )
            pad = graph.make_op(
                "onnx.Pad",
                [x, constant],
                [result.type],
                result_names=[f"{result.name}_pad"],
                origin=op.origin,
                created_by="partition",
                fresh_names=True,
                index=graph.ops.index(op),
            )
            pad.annotations["target"] = "cpu"
            graph.redirect_uses(result, pad.outputs[0])
            graph.remove_op(op)

    @staticmethod
    def _second_input_at(ops: list[Op], inputs: list[Value]) -> int:
        """Index of the first op that reads an outside value other than the region's first
        input (0 when the first op itself reads two)."""
        members = {id(op) for op in ops}
        first = inputs[0]
        for index, op in enumerate(ops):
            for value in op.inputs:
                if value is None or value.is_constant or value is first:
                    continue
                if value.producer is None or id(value.producer) not in members:
                    return index
        return len(ops)

    @staticmethod
    def _start_reason(op: Op) -> str:
        x = op.inputs[0]
        if x is not None and x.producer is not None and x.producer.dialect == "akida":
            return f"reads '{x.name}' from the previous Akida program ({x.producer.display_name})"
        if x is None or x.producer is None:
            return "reads a graph input"
        return f"reads '{x.name}' from {x.producer.kind} (CPU)"

    @staticmethod
    def _demote(ctx: PassContext, op: Op, code: str, message: str) -> None:
        record(
            ctx,
            op,
            "cpu",
            [
                Violation(
                    code=code, message=message, hint="this layer runs on the CPU instead", values={}
                )
            ],
        )

    @staticmethod
    def _move_trailing_pool(graph: Graph, ctx: PassContext, region: Region) -> None:
        """Max pooling may not end a sequence: run only that pooling on the CPU."""
        last = region.output.producer  # type: ignore[union-attr]
        if last is None or last.attrs.get("pool") != "max":
            return
        size = last.ints_attr("pool_size")
        stride = last.ints_attr("pool_stride")
        pooled = last.outputs[0]
        x_shape = last.operand(0).type.dims
        kernel = last.ints_attr("kernel")
        conv_stride = last.ints_attr("stride")
        conv_hw = [-(-x_shape[2 + a] // conv_stride[a]) for a in (0, 1)]
        if last.attrs.get("pad") == "valid":
            conv_hw = [(x_shape[2 + a] - kernel[a]) // conv_stride[a] + 1 for a in (0, 1)]
            pads = [0, 0, 0, 0]
        else:
            (top, bottom), (left, right) = (
                same_pads(conv_hw[a], size[a], stride[a], False) for a in (0, 1)
            )
            pads = [top, left, bottom, right]
        unpooled_type = pooled.type.with_shape(
            (
                pooled.type.dims[0],
                pooled.type.dims[1],
                conv_hw[0],
                conv_hw[1],
            )
        )
        for key in ("pool_size", "pool_stride"):
            last.attrs.pop(key)
        last.attrs["pool"] = "none"
        index = graph.ops.index(last)
        pool_op = graph.make_op(
            "onnx.MaxPool",
            [],
            [pooled.type],
            result_names=[f"{pooled.name}_cpu_pool"],
            attrs={"kernel_shape": size, "strides": stride, "pads": pads},
            origin=last.origin[-1:],
            created_by="partition",
            fresh_names=True,
            index=index + 1,
        )
        # the akida op now yields the unpooled map; the CPU pool produces the old value
        graph.redirect_uses(pooled, pool_op.outputs[0])
        pooled.type = unpooled_type
        _append(pool_op, pooled)
        message = (
            f"max pooling of '{last.display_name}' cannot end an Akida sequence; "
            "that pooling runs on the CPU, the layer stays on Akida"
        )
        record(
            ctx,
            pool_op,
            "cpu",
            [
                Violation(
                    code="AK-REGION-MAXPOOL-LAST",
                    message=message,
                    hint="no change needed",
                    values={},
                )
            ],
        )
        region.notes.append(message)

    @staticmethod
    def _to_nhwc(graph: Graph, region: Region) -> None:
        """Retype 4-D values inside the region to NHWC; Transposes at the borders."""
        (x,), _ = region_boundary(region.ops, graph)
        region.input = x
        first = region.ops[0]
        back = x.producer if x is not None else None
        if back is not None and back.kind == "onnx.Transpose" and back.created_by == "partition":
            # the previous region's output, transposed to NCHW: read its NHWC value instead
            nhwc_value = back.inputs[0]
            for op in region.ops:
                for i, operand in enumerate(op.inputs):
                    if operand is x:
                        graph.set_input(op, i, nhwc_value)
            if not x.users and not graph.is_pinned(x):
                graph.remove_op(back)
            region.input = nhwc_value
        elif x is not None and x.type.rank == 4:
            shape = x.type.shape
            nhwc = TensorType(x.type.dtype, (shape[0], shape[2], shape[3], shape[1]), "NHWC")  # type: ignore[index]
            transpose = graph.make_op(
                "onnx.Transpose",
                [x],
                [nhwc],
                result_names=[f"{x.name}_nhwc"],
                attrs={"perm": TO_NHWC},
                origin=(),
                created_by="partition",
                fresh_names=True,
                index=graph.ops.index(first),
            )
            for op in region.ops:
                for i, operand in enumerate(op.inputs):
                    if operand is x:
                        graph.set_input(op, i, transpose.outputs[0])
            region.input = transpose.outputs[0]
        for op in region.ops:
            for value in op.outputs:
                if value.type.rank == 4 and value.type.layout != "NHWC":
                    s = value.type.shape
                    value.type = TensorType(value.type.dtype, (s[0], s[2], s[3], s[1]), "NHWC")  # type: ignore[index]
        out = region.output
        if out is not None and out.type.rank == 4:
            s = out.type.shape
            nchw = TensorType(out.type.dtype, (s[0], s[3], s[1], s[2]))  # type: ignore[index]
            last = out.producer
            assert last is not None  # a region's output is a layer's result
            transpose = graph.make_op(
                "onnx.Transpose",
                [],
                [nchw],
                result_names=[f"{out.name}_nchw"],
                attrs={"perm": TO_NCHW},
                origin=(),
                created_by="partition",
                fresh_names=True,
                index=graph.ops.index(last) + 1,
            )
            graph.redirect_uses(out, transpose.outputs[0])
            _append(transpose, out)


def _append(op: Op, value: Value) -> None:
    op.inputs.append(value)
    value.users.append(op)
