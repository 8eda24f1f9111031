"""Quantization of every Akida layer kind, measured: the compiled hybrid model against the float IR.

Each test builds a small float IR graph of `akida.*` ops by hand (as `fuse` leaves them: NCHW
values, ONNX weight layouts), runs partition → quantize → allocate, builds the hybrid model and
compares it with the float model exported before quantization, on held-out inputs. The
hardware model must also equal the reference interpreter on every compiled program.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import onnx
import pytest
from models.agreement import assert_hardware_model_equals_reference

from akidac.api import pass_context
from akidac.backends.akida.program import Program
from akidac.backends.hybrid import build_hybrid_model, build_programs
from akidac.errors import UnsupportedModelError, UsageError
from akidac.frontend.samples import SampleSet
from akidac.ir.graph import Graph, Op, Value
from akidac.ir.onnx_export import graph_to_model
from akidac.ir.printer import print_graph
from akidac.ir.types import TensorType
from akidac.passes import CompileOptions, PassContext, PassManager, VerifyInstrument
from akidac.passes.fixed_point import add_rule_holds
from akidac.runtime.compare import measure_fidelity
from akidac.runtime.session import HybridSession

CALIBRATION = 24
HELD_OUT = 6


def smooth_images(
    count: int, channels: int, size: int, seed: int, scale: float = 1.0
) -> np.ndarray:
    """Blurred noise: images with spatial structure, the same distribution for every seed."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((count, channels, size + 4, size + 4))
    kernel = np.ones(5) / 5
    blurred = np.apply_along_axis(lambda r: np.convolve(r, kernel, "valid"), 2, noise)
    blurred = np.apply_along_axis(lambda r: np.convolve(r, kernel, "valid"), 3, blurred)
    return (blurred * 2.2 * scale).astype(np.float32)


class Net:
    """A float IR graph of akida ops on an NCHW input, built layer by layer."""

    def __init__(self, channels: int = 8, size: int = 12, seed: int = 0) -> None:
        self.graph = Graph("net")
        self.graph.opset_imports = {"": 17}
        self.rng = np.random.default_rng(seed)
        self.x = self.graph.add_input("x", TensorType("f32", (1, channels, size, size)))
        self.count = 0

    def _op(self, kind: str, inputs: list[Value], shape: tuple[int, ...], **attrs: object) -> Value:
        self.count += 1
        name = f"{kind.split('.')[1]}{self.count}"
        op: Op = self.graph.make_op(
            kind, inputs, [TensorType("f32", shape)], result_names=[name], attrs=attrs,
            origin=(name,), created_by="test",
        )  # fmt: skip
        op.annotations["target"] = "akida"
        return op.outputs[0]

    def _const(self, shape: tuple[int, ...], fan_in: int, scale: float = 1.0) -> Value:
        array = self.rng.standard_normal(shape) * np.sqrt(2.0 / fan_in) * scale
        return self.graph.add_constant(
            f"w{self.count}_{len(self.graph.constants)}", array.astype(np.float32)
        )

    def _bias(self, size: int) -> Value:
        array = self.rng.standard_normal(size) * 0.1
        return self.graph.add_constant(
            f"b{self.count}_{len(self.graph.constants)}", array.astype(np.float32)
        )

    def conv(
        self, x: Value, filters: int, kernel: int = 3, stride: int = 1, act: str = "relu",
        kind: str = "akida.conv2d", **attrs: object,
    ) -> Value:  # fmt: skip
        _, channels, h, w = x.type.shape  # type: ignore[misc]
        weight = self._const((filters, channels, kernel, kernel), channels * kernel * kernel)
        out_h, out_w = -(-h // stride), -(-w // stride)
        if attrs.get("pool") == "max":
            ps = attrs["pool_stride"][0]  # type: ignore[index]
            out_h, out_w = -(-out_h // ps), -(-out_w // ps)
        if attrs.get("gap"):
            out_h = out_w = 1
        return self._op(
            kind, [x, weight, self._bias(filters)], (1, filters, out_h, out_w),
            kernel=[kernel, kernel], stride=[stride, stride], pad="same", act=act, **attrs,
        )  # fmt: skip

    def depthwise(
        self, x: Value, kernel: int = 3, stride: int = 1, act: str = "relu", **attrs: object
    ) -> Value:
        _, channels, h, w = x.type.shape  # type: ignore[misc]
        weight = self._const((channels, 1, kernel, kernel), kernel * kernel)
        return self._op(
            "akida.depthwise_conv2d", [x, weight, self._bias(channels)],
            (1, channels, -(-h // stride), -(-w // stride)),
            kernel=[kernel, kernel], stride=[stride, stride], pad="same", act=act, **attrs,
        )  # fmt: skip

    def transpose(
        self,
        x: Value,
        filters: int | None = None,
        kernel: int = 4,
        act: str = "relu",
        **attrs: object,
    ) -> Value:
        _, channels, h, w = x.type.shape  # type: ignore[misc]
        if filters is None:  # depthwise
            weight = self._const((channels, 1, kernel, kernel), kernel * kernel / 4)
            kind, filters = "akida.depthwise_conv2d_transpose", channels
        else:
            weight = self._const(
                (channels, filters, kernel, kernel), channels * kernel * kernel / 4
            )
            kind = "akida.conv2d_transpose"
        return self._op(
            kind, [x, weight, self._bias(filters)], (1, filters, 2 * h, 2 * w),
            kernel=[kernel, kernel], stride=[2, 2], pad="same", act=act, **attrs,
        )  # fmt: skip

    def dense(self, x: Value, units: int, act: str = "none", **attrs: object) -> Value:
        inputs = int(np.prod(x.type.shape[1:]))  # type: ignore[arg-type]
        weight = self._const((inputs, units), inputs)
        return self._op("akida.dense", [x, weight, self._bias(units)], (1, units), act=act, **attrs)

    def add(self, a: Value, b: Value, **attrs: object) -> Value:
        return self._op("akida.add", [a, b], a.type.shape, **attrs)  # type: ignore[arg-type]

    def concat(self, a: Value, b: Value) -> Value:
        n, ca, h, w = a.type.shape  # type: ignore[misc]
        cb = b.type.shape[1]  # type: ignore[index]
        return self._op("akida.concat", [a, b], (n, ca + cb, h, w), axis=1)


@dataclass
class Compiled:
    float_model: onnx.ModelProto
    hybrid: onnx.ModelProto
    programs: list[Program]
    ctx: PassContext
    graph: Graph


def compile_net(net: Net, samples: np.ndarray, output: Value, **options: object) -> Compiled:
    """partition → quantize → allocate, then the hybrid model (and the float one from before)."""
    graph = net.graph
    graph.outputs = [output]
    float_model = graph_to_model(graph)
    ctx = pass_context(
        CompileOptions(samples={"x": samples}, num_samples=len(samples), **options)  # type: ignore[arg-type]
    )
    graph = (
        PassManager(["partition", "quantize", "allocate"], [VerifyInstrument()])
        .run(graph, ctx)
        .graph
    )
    regions = ctx.analyses["regions"]
    programs = build_programs(regions, ctx.options.device, ctx.analyses["np_assignment"])
    hybrid = build_hybrid_model(graph, regions, programs)
    onnx.checker.check_model(hybrid)
    return Compiled(float_model, hybrid, programs, ctx, graph)


def fidelity(compiled: Compiled, held_out: np.ndarray) -> float:
    """Cosine similarity of the hybrid model's output with the float model's on held-out inputs."""
    feeds = [{"x": held_out[i : i + 1]} for i in range(len(held_out))]
    (figures,) = measure_fidelity(
        compiled.float_model, HybridSession(compiled.hybrid), feeds
    ).values()
    return figures["cosine"]


Builder = Callable[[Net], Value]


def _branches(
    net: Net, merge: Callable[[Value, Value], Value], a: tuple[int, str], b: tuple[int, str]
) -> Value:
    """A stem conv, two branches (3×3 and 1×1) from it, merged: one region holds them all
    (partition does not merge two branches that both start at the region input)."""
    stem = net.conv(net.x, 8)
    return merge(net.conv(stem, a[0], act=a[1]), net.conv(stem, b[0], kernel=1, act=b[1]))


#: one small network per layer kind; the layer under test sits between two others.
KINDS: dict[str, Builder] = {
    "conv": lambda n: n.conv(n.conv(n.x, 16), 8, act="none"),
    "conv_stride2_maxpool": lambda n: n.conv(
        n.conv(n.x, 16, pool="max", pool_size=[2, 2], pool_stride=[2, 2]), 8, stride=2, act="none"
    ),
    "conv_relu6": lambda n: n.conv(n.conv(n.x, 16, act_max=6.0), 8, act="none"),
    "depthwise": lambda n: n.conv(n.depthwise(n.conv(n.x, 16)), 8, act="none"),
    "transposed": lambda n: n.conv(n.transpose(n.conv(n.x, 8), 8, kernel=4), 8, act="none"),
    "transposed_k3": lambda n: n.conv(n.transpose(n.conv(n.x, 8), 8, kernel=3), 8, act="none"),
    "depthwise_transposed": lambda n: n.conv(n.transpose(n.conv(n.x, 8), kernel=4), 8, act="none"),
    "dense": lambda n: n.dense(n.dense(n.conv(n.x, 8, stride=2), 32, act="relu"), 10),
    "add": lambda n: n.conv(_branches(n, n.add, (8, "relu"), (8, "none")), 8, act="none"),
    "concat": lambda n: n.conv(_branches(n, n.concat, (6, "relu"), (10, "relu")), 8, act="none"),
    "gap": lambda n: n.dense(n.conv(n.conv(n.x, 16), 16, gap=True), 10),
    "input_conv": lambda n: n.conv(
        n.conv(n.x, 16, kind="akida.input_conv2d", stride=2), 8, act="none"
    ),
    "lut_gelu": lambda n: n.conv(n.conv(n.x, 16, act="lut", lut="gelu"), 8, act="none"),
    "lut_swish": lambda n: n.conv(n.conv(n.x, 16, act="lut", lut="swish"), 8, act="none"),
    "lut_hardswish": lambda n: n.conv(n.conv(n.x, 16, act="lut", lut="hardswish"), 8, act="none"),
    "lut_leaky_relu": lambda n: n.conv(
        n.conv(n.x, 16, act="lut", lut="leaky_relu", lut_alpha=0.1), 8, act="none"
    ),
    "lut_sigmoid": lambda n: n.conv(n.conv(n.x, 16, act="lut", lut="sigmoid"), 8, act="none"),
}
#: the channel count of the input each network reads (the input conv takes an RGB image).
INPUT_CHANNELS = {"input_conv": 3}


def build(kind: str, seed: int = 0) -> tuple[Net, Value]:
    net = Net(channels=INPUT_CHANNELS.get(kind, 8), seed=seed)
    return net, KINDS[kind](net)


def compile_kind(kind: str, **options: object) -> tuple[Compiled, np.ndarray]:
    net, output = build(kind)
    channels = INPUT_CHANNELS.get(kind, 8)
    calibration = smooth_images(CALIBRATION, channels, 12, seed=1)
    held_out = smooth_images(HELD_OUT, channels, 12, seed=2)
    return compile_net(net, calibration, output, **options), held_out


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_layer_kind_quantized_to_8_bits_stays_faithful_to_the_float_model(kind: str) -> None:
    compiled, held_out = compile_kind(kind)
    assert len(compiled.programs) == 1  # one program holds the whole network
    score = fidelity(compiled, held_out)
    assert score >= 0.99, f"{kind}: cosine {score:.4f}"
    assert_hardware_model_equals_reference(compiled.hybrid, {"x": held_out[:1]})


#: 4-bit weights and activations: a looser bound. 4-bit outputs are unsigned 0..15, so the
#: negative lobe of swish, hardswish and gelu clips to 0 (measured: 0.870, 0.811, 0.938), and a
#: 4-bit Add output is −8..7 (0.948); every other kind measures ≥ 0.96.
FOUR_BIT_FLOOR = 0.95
FOUR_BIT_FLOORS = {"add": 0.93, "lut_gelu": 0.92, "lut_swish": 0.85, "lut_hardswish": 0.79}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_layer_kind_quantized_to_4_bits_keeps_a_useful_fidelity(kind: str) -> None:
    compiled, held_out = compile_kind(kind, wbits=4, abits=4)
    score = fidelity(compiled, held_out)
    assert score >= FOUR_BIT_FLOORS.get(kind, FOUR_BIT_FLOOR), f"{kind}: cosine {score:.4f}"
    assert_hardware_model_equals_reference(compiled.hybrid, {"x": held_out[:1]})


def test_add_shifts_obey_the_hardware_rule_and_operand_scales_differ_by_a_power_of_two() -> None:
    compiled, _ = compile_kind("add")
    (add,) = [op for op in compiled.graph.ops if op.kind == "akida.add"]
    a_shift, b_shift, out_shift = (
        int(add.attrs[k].array[0]) for k in ("a_shift", "b_shift", "output_shift")
    )  # type: ignore[union-attr]
    assert add_rule_holds(a_shift, b_shift, out_shift)
    scale_a, scale_b, scale_out = (
        v.type.quant.scale for v in (add.inputs[0], add.inputs[1], add.outputs[0])
    )  # type: ignore[union-attr]
    assert scale_a / 2.0**a_shift == pytest.approx(scale_b / 2.0**b_shift)
    assert scale_out == pytest.approx(scale_a / 2.0**a_shift * 2.0**-out_shift)


def test_a_4_bit_add_fed_by_8_bit_branches_still_obeys_the_shift_rule() -> None:
    net = Net()
    stem = net.conv(net.x, 8)
    out = net.conv(
        net.add(net.conv(stem, 8), net.conv(stem, 8, act="none"), abits=4), 8, act="none"
    )
    compiled = compile_net(net, smooth_images(8, 8, 12, seed=1), out)
    (add,) = [op for op in compiled.graph.ops if op.kind == "akida.add"]
    shifts = (int(add.attrs[k].array[0]) for k in ("a_shift", "b_shift", "output_shift"))  # type: ignore[union-attr]
    assert add_rule_holds(*shifts)
    assert add.outputs[0].type.quant.bits == 4  # type: ignore[union-attr]


def test_both_inputs_of_a_concatenate_share_one_scale_and_width() -> None:
    net = Net()
    stem = net.conv(net.x, 8)
    a = net.conv(stem, 6, act_max=6.0)
    b = net.conv(stem, 10, kernel=1, abits=4)
    compiled = compile_net(
        net, smooth_images(8, 8, 12, seed=1), net.conv(net.concat(a, b), 8, act="none")
    )
    (concat,) = [op for op in compiled.graph.ops if op.kind == "akida.concat"]
    qa, qb, qout = (v.type.quant for v in (concat.inputs[0], concat.inputs[1], concat.outputs[0]))
    assert qa == qb == qout
    assert qa.bits == 8  # type: ignore[union-attr]
    assert any(d.code == "AK-BITS" for d in compiled.ctx.sink.items)


def test_the_input_conv_reads_uint8_with_the_zero_point_as_padding_value() -> None:
    compiled, _ = compile_kind("input_conv")
    (program,) = compiled.programs
    first = program.layers[0]
    assert first.layer_type == "InputConv2D" and first.inbounds == []
    assert program.input.dtype == "uint8"
    (quantize,) = [op for op in compiled.graph.ops if op.kind == "onnx.QuantizeLinear"]
    zero_point = int(quantize.inputs[2].const)  # type: ignore[union-attr,arg-type]
    assert 0 < zero_point < 255
    assert (first.variables["padding_value"] == zero_point).all()


def test_an_unactivated_last_layer_sends_its_raw_sum_to_the_host() -> None:
    compiled, _ = compile_kind("dense")
    last = compiled.programs[0].layers[-1]
    assert last.params["output_bits"] == 32 and last.params["activation"] == "NoActivation"
    assert (last.variables["output_scales"] == 1).all() and (
        last.variables["output_shift"] == 0
    ).all()


def test_an_opset_12_model_dequantizes_a_raw_sum_with_a_broadcast_mul() -> None:
    net, output = build("conv")
    net.graph.opset_imports = {"": 12}
    compiled = compile_net(net, smooth_images(8, 8, 12, seed=1), output)
    kinds = [op.kind for op in compiled.graph.ops]
    assert "onnx.Mul" in kinds
    (dq,) = [op for op in compiled.graph.ops if op.kind == "onnx.DequantizeLinear"]
    assert "axis" not in dq.attrs
    assert fidelity(compiled, smooth_images(4, 8, 12, seed=2)) >= 0.99


def test_the_mse_weight_observer_compiles_a_faithful_4_bit_model() -> None:
    compiled, held_out = compile_kind("conv", wbits=4, abits=4, weight_observer="mse")
    assert fidelity(compiled, held_out) >= FOUR_BIT_FLOOR


def test_a_layer_reading_4_bit_activations_gets_4_bit_weights_with_a_warning() -> None:
    net = Net()
    out = net.conv(net.conv(net.x, 16, abits=4), 8, act="none", wbits=8)
    compiled = compile_net(net, smooth_images(8, 8, 12, seed=1), out)
    assert compiled.programs[0].layers[-1].params["weights_bits"] == 4
    assert [d.code for d in compiled.ctx.sink.items if d.code == "AK-BITS"]


def test_a_layer_that_cannot_be_quantized_fails_with_ak_quant_naming_it() -> None:
    net = Net()
    out = net.conv(net.conv(net.x, 8), 8, act="none")
    weight = out.producer.inputs[1]  # type: ignore[union-attr]
    weight.const = np.full_like(weight.const, np.nan)  # type: ignore[union-attr,arg-type]
    with pytest.raises(
        UnsupportedModelError, match=r"AK-QUANT: cannot quantize akida\.conv2d 'conv2d2'"
    ):
        compile_net(net, smooth_images(4, 8, 12, seed=1), out)


def test_a_region_reading_the_previous_regions_output_requantizes_its_dequantized_value() -> None:
    net = Net()
    first = net.conv(net.x, 8)
    second = net.conv(first, 8, act="none")
    graph = net.graph
    cpu = graph.make_op(
        "onnx.Softmax", [first], [first.type], result_names=["soft"], attrs={"axis": 1}
    )
    cpu.annotations["target"] = "cpu"
    total = graph.make_op("onnx.Add", [second, cpu.outputs[0]], [second.type], result_names=["y"])
    total.annotations["target"] = "cpu"
    graph.outputs = [total.outputs[0]]
    ctx = pass_context(
        CompileOptions(samples={"x": smooth_images(4, 8, 12, seed=1)}, num_samples=4)
    )
    PassManager(["partition", "quantize"], [VerifyInstrument()]).run(graph, ctx)
    regions = ctx.analyses["regions"]
    assert len(regions) == 2
    quantize = regions[1].input.producer
    assert quantize.kind == "onnx.QuantizeLinear"
    dequantize = quantize.inputs[0].producer
    assert dequantize.kind == "onnx.DequantizeLinear"
    assert dequantize.inputs[0] is regions[0].output


def _two_conv_net() -> Graph:
    net = Net()
    net.graph.outputs = [net.conv(net.conv(net.x, 8), 8, act="none")]
    return net.graph


def test_quantize_without_calibration_samples_is_a_usage_error_naming_the_context_field() -> None:
    with pytest.raises(UsageError, match=r"quantize needs calibration samples: set PassContext\."):
        PassManager(["partition", "quantize"]).run(_two_conv_net(), PassContext())
    empty = PassContext(calibration=SampleSet(feeds=[]))
    with pytest.raises(UsageError, match=r"PassContext\.calibration has no feeds"):
        PassManager(["partition", "quantize"]).run(_two_conv_net(), empty)


def test_quantize_calibrates_on_feeds_put_in_the_context_as_on_the_same_samples_loaded() -> None:
    """A researcher's own feeds in `PassContext.calibration` give the graph the driver's
    loading of the same arrays gives; the report names their source."""
    images = smooth_images(4, 8, 12, seed=1)
    loaded = pass_context(CompileOptions(samples={"x": images}, num_samples=4))
    by_driver = _two_conv_net()
    PassManager(["partition", "quantize"]).run(by_driver, loaded)
    feeds = [{"x": images[i : i + 1]} for i in range(len(images))]
    own = PassContext(calibration=SampleSet(feeds, source="my feeds"))
    by_hand = _two_conv_net()
    PassManager(["partition", "quantize"]).run(by_hand, own)
    assert print_graph(by_hand) == print_graph(by_driver)
    assert own.analyses["calibration"]["source"] == "my feeds"
    assert loaded.analyses["calibration"]["source"] == "samples"


def test_pass_context_checks_the_sample_options_before_any_pass_runs() -> None:
    with pytest.raises(UsageError, match="num_samples must be an integer >= 1, not 0"):
        pass_context(CompileOptions(num_samples=0))
