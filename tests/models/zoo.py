"""The test-model zoo, built in code: one small model per architecture family akidac must handle.

Each builder returns an `onnx.ModelProto` (opset 17, static batch 1 unless said otherwise) with
seeded He-scaled weights. `ZOO` maps a name to (builder, expectation) where the expectation says
which op types must end up on Akida and which must stay on the CPU.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from akidac.models import ModelBuilder, conv_net


def _io(name: str, shape: list[int | str]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


class ZooBuilder(ModelBuilder):
    """ModelBuilder with the extra layers the zoo needs."""

    def const(self, name: str, array: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def batchnorm(self, x: str, name: str, channels: int) -> str:
        rng = self.rng
        scale = self.const(
            f"{name}.gamma", (1 + 0.1 * rng.standard_normal(channels)).astype(np.float32)
        )
        bias = self.const(f"{name}.beta", (0.1 * rng.standard_normal(channels)).astype(np.float32))
        mean = self.const(f"{name}.mean", (0.1 * rng.standard_normal(channels)).astype(np.float32))
        var = self.const(f"{name}.var", (1 + 0.1 * rng.random(channels)).astype(np.float32))
        return self.node("BatchNormalization", [x, scale, bias, mean, var], name, epsilon=1e-5)

    def depthwise(self, x: str, name: str, channels: int, k: int = 3, stride: int = 1) -> str:
        return self.conv(x, name, channels, channels, k, stride, group=channels)

    def gap_dense(self, x: str, name: str, channels: int, classes: int) -> str:
        """GlobalAveragePool, Flatten and a dense layer `name` of `classes` units."""
        x = self.node("GlobalAveragePool", [x], "gap")
        x = self.node("Flatten", [x], "flatten", axis=1)
        return self.gemm(x, name, channels, classes)

    def conv_bn_relu(
        self, x: str, name: str, cin: int, cout: int, k: int = 3, stride: int = 1
    ) -> str:
        y = self.conv(x, f"{name}_conv", cin, cout, k, stride)
        y = self.batchnorm(y, f"{name}_bn", cout)
        return self.node("Relu", [y], f"{name}_relu")


@dataclass
class Expectation:
    """What the report must say: op types all on Akida, op types all on the CPU."""

    on_akida: set[str] = field(default_factory=set)
    on_cpu: set[str] = field(default_factory=set)
    min_akida_share: float = 0.0


def mobilenet_like(seed: int = 0) -> onnx.ModelProto:
    """Depthwise-separable blocks (3×3 depthwise + 1×1 pointwise, BN, ReLU6), GAP, dense."""
    b = ZooBuilder(seed)
    x = b.conv_bn_relu("input", "stem", 3, 16, stride=2)
    channels = 16
    for i, (cout, stride) in enumerate([(32, 1), (64, 2), (64, 1)]):
        y = b.depthwise(x, f"dw{i}", channels, 3, stride)
        y = b.batchnorm(y, f"dw{i}_bn", channels)
        zero = b.const(f"dw{i}_min", np.array(0.0, np.float32))
        six = b.const(f"dw{i}_max", np.array(6.0, np.float32))
        y = b.node("Clip", [y, zero, six], f"dw{i}_relu6")
        y = b.conv(y, f"pw{i}", channels, cout, k=1)
        y = b.batchnorm(y, f"pw{i}_bn", cout)
        x = b.node("Relu", [y], f"pw{i}_relu")
        channels = cout
    x = b.gap_dense(x, "classifier", channels, 10)
    return b.model("mobilenet_like", [_io("input", [1, 3, 32, 32])], [_io(x, [1, 10])])


def resnet_like(seed: int = 0) -> onnx.ModelProto:
    """Two residual blocks (conv-BN-ReLU, conv-BN, Add, ReLU), GAP, dense."""
    b = ZooBuilder(seed)
    x = b.conv_bn_relu("input", "stem", 3, 16)
    for i in range(2):
        y = b.conv_bn_relu(x, f"block{i}_a", 16, 16)
        y = b.conv(y, f"block{i}_b_conv", 16, 16)
        y = b.batchnorm(y, f"block{i}_b_bn", 16)
        y = b.node("Add", [x, y], f"block{i}_add")
        x = b.node("Relu", [y], f"block{i}_relu")
    x = b.gap_dense(x, "fc", 16, 10)
    return b.model("resnet_like", [_io("input", [1, 3, 16, 16])], [_io(x, [1, 10])])


def concat_branches(seed: int = 0) -> onnx.ModelProto:
    """Two conv branches concatenated on channels, then a conv."""
    b = ZooBuilder(seed)
    stem = b.node("Relu", [b.conv("input", "stem", 3, 8)], "stem_relu")
    left = b.node("Relu", [b.conv(stem, "left", 8, 8, k=1)], "left_relu")
    right = b.node("Relu", [b.conv(stem, "right", 8, 8, k=3)], "right_relu")
    x = b.node("Concat", [left, right], "concat", axis=1)
    x = b.node("Relu", [b.conv(x, "mix", 16, 16)], "mix_relu")
    return b.model("concat_branches", [_io("input", [1, 3, 16, 16])], [_io(x, [1, 16, 16, 16])])


def unet_decoder(seed: int = 0) -> onnx.ModelProto:
    """Encoder conv + max pool, bottleneck, nearest 2× Resize, skip Concat, decoder conv."""
    b = ZooBuilder(seed)
    enc = b.node("Relu", [b.conv("input", "enc", 3, 8)], "enc_relu")
    down = b.node("MaxPool", [enc], "down", kernel_shape=[2, 2], strides=[2, 2])
    mid = b.node("Relu", [b.conv(down, "mid", 8, 8)], "mid_relu")
    scales = b.const("up_scales", np.array([1, 1, 2, 2], np.float32))
    up = b.node(
        "Resize",
        [mid, "", scales],
        "up",
        mode="nearest",
        coordinate_transformation_mode="asymmetric",
        nearest_mode="floor",
    )
    x = b.node("Concat", [enc, up], "skip", axis=1)
    x = b.node("Relu", [b.conv(x, "dec", 16, 8)], "dec_relu")
    x = b.conv(x, "head", 8, 2, k=1)
    return b.model("unet_decoder", [_io("input", [1, 3, 16, 16])], [_io(x, [1, 2, 16, 16])])


def activations_net(seed: int = 0) -> onnx.ModelProto:
    """Conv layers followed by Swish, HardSwish, LeakyReLU and (erf) GELU."""
    b = ZooBuilder(seed)
    x = b.conv("input", "c_swish", 3, 8)
    x = b.node("Mul", [x, b.node("Sigmoid", [x], "swish_gate")], "swish")
    x = b.conv(x, "c_hswish", 8, 8)
    x = b.node("HardSwish", [x], "hardswish")
    x = b.conv(x, "c_leaky", 8, 8)
    x = b.node("LeakyRelu", [x], "leaky", alpha=0.1)
    y = b.conv(x, "c_gelu", 8, 8)
    sqrt2 = b.const("sqrt2", np.array(np.sqrt(2), np.float32))
    one = b.const("one", np.array(1.0, np.float32))
    half = b.const("half", np.array(0.5, np.float32))
    t = b.node("Erf", [b.node("Div", [y, sqrt2], "gelu_div")], "gelu_erf")
    t = b.node("Mul", [y, b.node("Add", [t, one], "gelu_add")], "gelu_mul")
    x = b.node("Mul", [t, half], "gelu")
    x = b.conv(x, "out", 8, 4, k=1)
    return b.model("activations_net", [_io("input", [1, 3, 16, 16])], [_io(x, [1, 4, 16, 16])])


def kernels_net(seed: int = 0) -> onnx.ModelProto:
    """5×5 and 7×7 convs, stride-2 3×3 and 1×1 convs, and a 9×9 conv Akida cannot run."""
    b = ZooBuilder(seed)
    x = b.node("Relu", [b.conv("input", "k5", 3, 8, k=5)], "k5_relu")
    x = b.node("Relu", [b.conv(x, "k7", 8, 8, k=7)], "k7_relu")
    x = b.node("Relu", [b.conv(x, "k3s2", 8, 16, k=3, stride=2)], "k3s2_relu")
    x = b.node("Relu", [b.conv(x, "k1s2", 16, 16, k=1, stride=2)], "k1s2_relu")
    x = b.conv(x, "k9", 16, 8, k=9)
    return b.model("kernels_net", [_io("input", [1, 3, 32, 32])], [_io(x, [1, 8, 8, 8])])


def audio_1d(seed: int = 0) -> onnx.ModelProto:
    """1-D audio convs written as 1×k Conv2D on a [1, C, 1, T] input (non-square kernels)."""
    b = ZooBuilder(seed)
    x = "input"
    cin = 1
    for i, cout in enumerate([8, 16]):
        w = b.weight(f"a{i}.weight", (cout, cin, 1, 9), cin * 9)
        bias = b.bias(f"a{i}.bias", cout)
        x = b.node("Conv", [x, w, bias], f"a{i}", kernel_shape=[1, 9], pads=[0, 4, 0, 4])
        x = b.node("Relu", [x], f"a{i}_relu")
        cin = cout
    x = b.gap_dense(x, "fc", 16, 4)
    return b.model("audio_1d", [_io("input", [1, 1, 1, 64])], [_io(x, [1, 4])])


def mlp(seed: int = 0) -> onnx.ModelProto:
    """Gemm+ReLU layers within Dense1D's limits (≤ 2048 inputs)."""
    b = ZooBuilder(seed)
    x = "input"
    sizes = [256, 128, 64, 10]
    for i in range(3):
        x = b.gemm(x, f"fc{i}", sizes[i], sizes[i + 1])
        if i < 2:
            x = b.node("Relu", [x], f"relu{i}")
    return b.model("mlp", [_io("input", [1, 256])], [_io(x, [1, 10])])


def transformer_block(seed: int = 0, tokens: int = 8, dim: int = 16) -> onnx.ModelProto:
    """A single-head self-attention encoder block with LayerNorm and an MLP."""
    b = ZooBuilder(seed)
    x = "input"

    def proj(src: str, name: str) -> str:
        w = b.weight(f"{name}.weight", (dim, dim), dim)
        return b.node("MatMul", [src, w], name)

    q, k, v = proj(x, "q"), proj(x, "k"), proj(x, "v")
    kt = b.node("Transpose", [k], "k_t", perm=[0, 2, 1])
    scores = b.node("MatMul", [q, kt], "scores")
    scale = b.const("scale", np.array(1 / np.sqrt(dim), np.float32))
    scores = b.node("Mul", [scores, scale], "scaled")
    attn = b.node("Softmax", [scores], "attn", axis=-1)
    ctx = b.node("MatMul", [attn, v], "context")
    x = b.node("Add", [x, proj(ctx, "o")], "residual1")
    gamma = b.const("ln.gamma", np.ones(dim, np.float32))
    beta = b.const("ln.beta", np.zeros(dim, np.float32))
    x = b.node("LayerNormalization", [x, gamma, beta], "ln", axis=-1)
    h = b.node("Relu", [proj(x, "mlp_in")], "mlp_relu")
    x = b.node("Add", [x, proj(h, "mlp_out")], "residual2")
    return b.model(
        "transformer_block", [_io("input", [1, tokens, dim])], [_io(x, [1, tokens, dim])]
    )


def dynamic_batch(seed: int = 0) -> onnx.ModelProto:
    """conv_net with a symbolic batch dimension."""
    model = conv_net(seed)
    for value in [*model.graph.input, *model.graph.output]:
        dim = value.type.tensor_type.shape.dim[0]
        dim.Clear()
        dim.dim_param = "batch"
    return model


ZOO: dict[str, tuple[Callable[[], onnx.ModelProto], Expectation]] = {
    "mobilenet_like": (mobilenet_like, Expectation({"Conv", "Gemm", "Relu", "Clip"}, set(), 0.9)),
    "resnet_like": (resnet_like, Expectation({"Conv", "Add", "Relu", "Gemm"}, set(), 0.9)),
    "concat_branches": (concat_branches, Expectation({"Conv", "Concat", "Relu"}, set(), 0.9)),
    "unet_decoder": (unet_decoder, Expectation({"Conv", "Concat"}, set(), 0.7)),
    "activations_net": (
        activations_net,
        Expectation({"Conv", "HardSwish", "LeakyRelu"}, set(), 0.9),
    ),
    "kernels_net": (kernels_net, Expectation({"Relu"}, set(), 0.6)),
    "audio_1d": (audio_1d, Expectation({"Gemm"}, {"Conv"}, 0.2)),
    "mlp": (mlp, Expectation({"Gemm", "Relu"}, set(), 1.0)),
    "transformer_block": (
        transformer_block,
        Expectation(set(), {"Softmax", "LayerNormalization", "Transpose"}, 0.0),
    ),
    "dynamic_batch": (dynamic_batch, Expectation({"Conv", "Gemm"}, {"Softmax"}, 0.8)),
    "conv_net": (conv_net, Expectation({"Conv", "Relu", "MaxPool", "Gemm"}, {"Softmax"}, 0.9)),
}
