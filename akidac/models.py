"""Small models the project generates itself (no downloads): the demo and benchmark models.

`conv_net` is the 3-block CNN of the demo (conv-relu-maxpool blocks, a conv, a dense head and a
Softmax that stays on the CPU); `chain_net` scales to any node count for the compile-time bench.
Weights are seeded and He-scaled so activations keep a sensible range through the layers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


class ModelBuilder:
    """Builds an ONNX model node by node with seeded, He-scaled weights."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []

    def weight(self, name: str, shape: tuple[int, ...], fan_in: int) -> str:
        array = self.rng.standard_normal(shape).astype(np.float32) * np.sqrt(2.0 / fan_in)
        self.initializers.append(numpy_helper.from_array(array.astype(np.float32), name))
        return name

    def bias(self, name: str, size: int) -> str:
        array = (self.rng.standard_normal(size) * 0.05).astype(np.float32)
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def node(self, op_type: str, inputs: list[str], name: str, **attrs: Any) -> str:
        self.nodes.append(helper.make_node(op_type, inputs, [name], name=name, **attrs))
        return name

    def conv(
        self, x: str, name: str, cin: int, cout: int, k: int = 3, stride: int = 1, group: int = 1
    ) -> str:
        """A k×k Conv with bias and "same" pads; `group` > 1 makes it grouped (depthwise when it
        equals `cin` and `cout`)."""
        fan_in = cin // group * k * k
        w = self.weight(f"{name}.weight", (cout, cin // group, k, k), fan_in)
        b = self.bias(f"{name}.bias", cout)
        pad = k // 2
        grouped = {"group": group} if group > 1 else {}
        return self.node(
            "Conv",
            [x, w, b],
            name,
            kernel_shape=[k, k],
            strides=[stride, stride],
            pads=[pad, pad, pad, pad],
            **grouped,
        )

    def gemm(self, x: str, name: str, n_in: int, n_out: int) -> str:
        w = self.weight(f"{name}.weight", (n_out, n_in), n_in)
        b = self.bias(f"{name}.bias", n_out)
        return self.node("Gemm", [x, w, b], name, transB=1)

    def model(
        self,
        name: str,
        inputs: list[onnx.ValueInfoProto],
        outputs: list[onnx.ValueInfoProto],
        opset: int = 17,
    ) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, name, inputs, outputs, self.initializers)
        model = helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="akidac.models"
        )
        model.ir_version = 9
        return model


def conv_net(
    seed: int = 0, size: int = 32, channels: int = 3, classes: int = 10
) -> onnx.ModelProto:
    """3 conv-relu-maxpool blocks, a conv-relu, a dense head and a Softmax (NCHW input)."""
    b = ModelBuilder(seed)
    x = "input"
    widths = [channels, 16, 32, 32]
    for i in range(3):
        x = b.conv(x, f"conv{i + 1}", widths[i], widths[i + 1])
        x = b.node("Relu", [x], f"relu{i + 1}")
        x = b.node("MaxPool", [x], f"pool{i + 1}", kernel_shape=[2, 2], strides=[2, 2])
    x = b.conv(x, "conv4", 32, 32)
    x = b.node("Relu", [x], "relu4")
    x = b.node("Flatten", [x], "flatten", axis=1)
    side = size // 8
    x = b.gemm(x, "fc1", 32 * side * side, 64)
    x = b.node("Relu", [x], "relu5")
    x = b.gemm(x, "fc2", 64, classes)
    x = b.node("Softmax", [x], "softmax", axis=1)
    return b.model(
        "conv_net",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, channels, size, size])],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, classes])],
    )


def chain_net(blocks: int, seed: int = 0, channels: int = 8, size: int = 8) -> onnx.ModelProto:
    """A long model of about `4 × blocks` nodes: Conv-Relu-Conv-Relu blocks with a Sigmoid-gated
    skip every block, so Akida and CPU regions alternate (stress for partitioning)."""
    b = ModelBuilder(seed)
    x = "input"
    for i in range(blocks):
        y = b.conv(x, f"b{i}_conv", channels, channels)
        y = b.node("Relu", [y], f"b{i}_relu")
        gate = b.node("Sigmoid", [y], f"b{i}_gate")
        x = b.node("Mul", [y, gate], f"b{i}_mul")
    x = b.node("GlobalAveragePool", [x], "gap")
    return b.model(
        "chain_net",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, channels, size, size])],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, channels, 1, 1])],
    )
