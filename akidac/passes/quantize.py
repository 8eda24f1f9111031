"""`quantize`: calibrate, then give every Akida layer its integer variables.

For a layer with per-tensor input scale `s_in` and symmetric per-output-channel weight scales
`s_w[f]`, one accumulator unit is worth `a[f] = s_in · s_w[f]`. Then (fixed-point forms in
`fixed_point.py`):
- bias `b[f]` becomes `bias << bias_shift ≈ b[f] / a[f]`;
- a ReLU ceiling `m` becomes `max_value << max_value_shift ≈ m / a[f]`;
- an activated 8-bit output of scale `s_out` (ceiling or calibrated range over 127) needs
  `output_scales · 2^output_shift ≈ a[f] / s_out` (÷ H·W more after GAP, which sums);
- a layer whose result leaves the region without activation keeps its raw 32-bit sum
  (`output_scales = 1`, `output_shift = 0`) and a per-channel DequantizeLinear of scale `a[f]`
  restores floats exactly.
The region input gets a QuantizeLinear (int8, symmetric, calibrated scale) and the region output
a DequantizeLinear. After it every akida op is `quantized = true` with the variables of
`akidac.target.layer_record` as attributes and int8 weights as its weight operand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from akidac.ir.attributes import DenseAttr
from akidac.ir.graph import Graph, Op
from akidac.ir.types import Quantization, TensorType
from akidac.passes.base import PassContext, PassResult, register_pass
from akidac.passes.calibration import abs_range, calibration_samples, observe
from akidac.passes.fixed_point import encode_bias, encode_relu_max, encode_scale, quantize_weights
from akidac.passes.partition import Region

RAW_OUTPUT_BITS = 32


def activation_limit(bits: int) -> int:
    """Largest activated output: 8-bit ReLU outputs are int8 0..127, 4-bit are 0..15."""
    return 2**bits - 1 if bits <= 4 else 2 ** (bits - 1) - 1


@register_pass
@dataclass(frozen=True)
class Quantize:
    """Calibrate on samples and quantize every Akida layer to its fixed-point variables."""

    name: ClassVar[str] = "quantize"

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        regions: list[Region] = ctx.analyses.get("regions", [])
        if not regions:
            return PassResult(graph, False)
        options = ctx.options
        feeds, random = calibration_samples(
            graph, options.samples, options.num_samples, options.seed
        )
        if random:
            ctx.sink.warning(
                "AK-CALIBRATION-RANDOM",
                f"no --samples given: calibrating on {len(feeds)} random "
                "standard-normal inputs; accuracy may suffer. Pass --samples "
                "data.npz with representative inputs",
            )
        watched = [r.input for r in regions] + [op.outputs[0] for r in regions for op in r.ops]
        seen = observe(graph, [v for v in watched if v is not None], feeds)
        ranges = {name: abs_range(arrays, options.percentile) for name, arrays in seen.items()}
        ctx.analyses["calibration"] = {"samples": len(feeds), "random": random}
        for region in regions:
            self._quantize_region(graph, region, ranges)
        return PassResult(graph, True)

    def _quantize_region(self, graph: Graph, region: Region, ranges: dict[str, float]) -> None:
        x = region.input
        assert x is not None
        in_scale = ranges[x.name] / 127.0
        scales: dict[str, float] = {}
        q_type = TensorType("i8", x.type.shape, x.type.layout, Quantization(in_scale, 0, 8, True))
        quant = graph.make_op(
            "onnx.QuantizeLinear",
            [
                x,
                graph.add_constant(f"{x.name}_scale", np.array(in_scale, np.float32), fresh=True),
                graph.add_constant(f"{x.name}_zero_point", np.array(0, np.int8), fresh=True),
            ],
            [q_type],
            result_names=[f"{x.name}_q"],
            created_by="quantize",
            fresh_names=True,
            index=graph.ops.index(region.ops[0]),
        )
        xq = quant.outputs[0]
        for op in region.ops:
            for i, operand in enumerate(op.inputs):
                if operand is x:
                    graph.set_input(op, i, xq)
        region.input = xq
        scales[xq.name] = in_scale
        for op in region.ops:
            exported = op.outputs[0] is region.output
            self._quantize_layer(graph, op, scales, ranges, exported)
        self._dequantize_output(graph, region)

    def _quantize_layer(
        self,
        graph: Graph,
        op: Op,
        scales: dict[str, float],
        ranges: dict[str, float],
        exported: bool,
    ) -> None:
        x, weight = op.inputs[0], op.inputs[1]
        assert x is not None and weight is not None and weight.const is not None
        in_scale = scales[x.name]
        wbits = int(op.attrs.get("wbits", 8))  # type: ignore[arg-type]
        abits = int(op.attrs.get("abits", 8))  # type: ignore[arg-type]
        dense = op.kind == "akida.dense"
        weights_q, weight_scale = quantize_weights(weight.const, wbits, axis=1 if dense else 0)
        acc_scale = in_scale * weight_scale
        filters = acc_scale.shape[0]
        result = op.outputs[0]
        gap_div = 1.0
        if op.attrs.get("gap"):
            pre_gap = op.attrs  # GAP sums H·W values of the conv output; fold 1/(H·W) in
            in_shape = x.type.shape
            stride = pre_gap.get("stride", [1, 1])
            h = -(-int(in_shape[1]) // stride[0])  # type: ignore[index,operator,arg-type]
            w = -(-int(in_shape[2]) // stride[1])  # type: ignore[index,operator,arg-type]
            if op.attrs.get("pool") == "max":
                ps = op.attrs["pool_stride"]
                h, w = -(-h // ps[0]), -(-w // ps[1])  # type: ignore[index,operator]
            gap_div = float(h * w)
        attrs = op.attrs
        bias_value = op.inputs[2] if len(op.inputs) > 2 else None
        bias = bias_value.const.astype(np.float64) if bias_value is not None else np.zeros(filters)  # type: ignore[union-attr]
        attrs["bias"], attrs["bias_shift"] = (DenseAttr(a) for a in encode_bias(bias / acc_scale))
        in_elems = int(np.prod(x.type.shape[1:])) if dense else int(x.type.shape[-1])  # type: ignore[index,arg-type]
        attrs["input_shift"] = DenseAttr(np.zeros(in_elems, np.uint8))
        activated = attrs.get("act") == "relu"
        if activated:
            ceiling = attrs.get("act_max")
            if ceiling is not None:
                mv, mvs = encode_relu_max(float(ceiling) / acc_scale)  # type: ignore[arg-type]
            else:
                mv = np.full(filters, 127, np.uint8)
                mvs = np.full(filters, 31, np.uint8)
            attrs["max_value"], attrs["max_value_shift"] = DenseAttr(mv), DenseAttr(mvs)
        if exported and not activated:
            bits = RAW_OUTPUT_BITS
            attrs["output_scales"] = DenseAttr(np.ones(filters, np.uint8))
            attrs["output_shift"] = DenseAttr(np.zeros(filters, np.int8))
            out_scale_per_channel = acc_scale / gap_div
            quant = None
            dtype = "i32"
        else:
            bits = abits if activated else 8
            limit = activation_limit(bits) if activated else 127
            observed = ranges[result.name]
            ceiling = attrs.get("act_max")
            top = observed
            if ceiling is not None and not attrs.get("gap"):
                top = min(float(ceiling), observed)  # type: ignore[arg-type]
            out_scale = top / limit
            scales_u8, shifts = encode_scale(acc_scale / (out_scale * gap_div))
            attrs["output_scales"], attrs["output_shift"] = DenseAttr(scales_u8), DenseAttr(shifts)
            out_scale_per_channel = np.full(filters, out_scale)
            signed = bits > 4 or not activated
            dtype = "i8" if signed else "u8"
            quant = Quantization(out_scale, 0, bits, signed)
            scales[result.name] = out_scale
        attrs["output_bits"] = bits
        attrs["quantized"] = True
        attrs["acc_scale"] = DenseAttr(out_scale_per_channel.astype(np.float32))
        new_weight = graph.add_constant(f"{weight.name}_q", weights_q, fresh=True)
        graph.set_input(op, 1, new_weight)
        if bias_value is not None:
            graph.set_input(op, 2, None)
            op.inputs.pop()
        result.type = TensorType(dtype, result.type.shape, result.type.layout, quant)

    @staticmethod
    def _dequantize_output(graph: Graph, region: Region) -> None:
        out = region.output
        assert out is not None and out.producer is not None
        producer = out.producer
        per_channel: np.ndarray = producer.attrs["acc_scale"].array  # type: ignore[union-attr]
        float_type = TensorType("f32", out.type.shape, out.type.layout)
        if out.type.quant is not None:
            scale = np.array(out.type.quant.scale, np.float32)
            zero = np.array(0, np.int8 if out.type.dtype == "i8" else np.uint8)
            attrs = {}
        elif graph.opset_imports.get("", 0) >= 13:
            scale = per_channel.astype(np.float32)
            zero = np.zeros(scale.shape, np.int32)
            attrs = {"axis": (out.type.rank or 1) - 1}
        else:  # per-axis DequantizeLinear needs opset 13: scale by a broadcast Mul instead
            scale = np.array(1.0, np.float32)
            zero = np.array(0, np.int32)
            attrs = {}
        dq = graph.make_op(
            "onnx.DequantizeLinear",
            [
                out,
                graph.add_constant(f"{out.name}_scale", scale, fresh=True),
                graph.add_constant(f"{out.name}_zero_point", zero, fresh=True),
            ],
            [float_type],
            result_names=[f"{out.name}_dq"],
            attrs=attrs,
            created_by="quantize",
            fresh_names=True,
            index=graph.ops.index(producer) + 1,
        )
        dequantize = dq
        if out.type.quant is None and not attrs:
            dq = graph.make_op(
                "onnx.Mul",
                [
                    dq.outputs[0],
                    graph.add_constant(
                        f"{out.name}_channel_scale", per_channel.astype(np.float32), fresh=True
                    ),
                ],
                [float_type],
                result_names=[f"{out.name}_scaled"],
                created_by="quantize",
                fresh_names=True,
                index=graph.ops.index(dq) + 1,
            )
        result = dq.outputs[0]
        if out in graph.outputs:
            result.name, out.name = out.name, result.name
        users = [u for u in out.users if u is not dequantize]
        for user in users:
            for i, operand in enumerate(user.inputs):
                if operand is out:
                    graph.set_input(user, i, result)
        graph.outputs = [result if v is out else v for v in graph.outputs]
        region.output = out
