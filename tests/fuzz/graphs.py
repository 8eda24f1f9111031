"""Random small ONNX graphs for the compile fuzz, each one a pure function of its seed.

`random_graph(seed)` builds a DAG of 1–6 nodes over the operators akidac maps to Akida and their
awkward corners: Conv (strides, dilations, explicit pads and every `auto_pad`), depthwise Conv,
ConvTranspose, MaxPool/AveragePool (`ceil_mode`, `auto_pad`, dilations, `count_include_pad`),
GlobalAveragePool, Add, Concat, BatchNormalization, Clip, Relu, Sigmoid, Resize and
Flatten+Gemm, at opsets 13–21, batch 1 or 2, tiny spatial sizes (1–9), weights drawn normal,
all zero or huge. About one graph in thirty is made invalid on purpose (a group that does not
divide the channels, a kernel larger than its padded input, weights whose channels do not match
their input): the float model is then refused by onnx or onnxruntime, and akidac must refuse it
with exit 3.

The draws go through a `Chooser`, so the same builder serves an index-seeded numpy generator
(the fixed CI set and `make fuzz`) and hypothesis (`HypothesisChooser`, which can shrink).
Shapes are tracked with ONNX shape inference after every node; the truth for the comparison is
what onnxruntime computes on the float model, never these shapes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSETS = tuple(range(13, 22))
_Item = TypeVar("_Item")


class Chooser:
    """The draws a graph is built from; `NumpyChooser` and `HypothesisChooser` implement it."""

    def integer(self, low: int, high: int) -> int:
        """An integer in [low, high]."""
        raise NotImplementedError

    def choice(self, items: Sequence[_Item]) -> _Item:
        return items[self.integer(0, len(items) - 1)]

    def chance(self, probability: float) -> bool:
        """True with about this probability."""
        return self.integer(0, 999) < int(probability * 1000)


class NumpyChooser(Chooser):
    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def integer(self, low: int, high: int) -> int:
        return int(self.rng.integers(low, high + 1))


class HypothesisChooser(Chooser):
    """Draws through a hypothesis `draw` (from `st.composite` or `st.data()`)."""

    def __init__(self, draw: Callable[[Any], Any]) -> None:
        from hypothesis import strategies as st

        self._draw = draw
        self._st = st

    def integer(self, low: int, high: int) -> int:
        return int(self._draw(self._st.integers(low, high)))


@dataclass
class Tensor:
    name: str
    shape: tuple[int, ...]


@dataclass
class FuzzGraph:
    """A generated model and what was drawn to make it."""

    seed: int
    model: onnx.ModelProto
    batch: int
    opset: int
    ops: list[str]
    #: a defect was put in on purpose (the float model should be refused: exit 3 expected)
    invalid: str | None = None
    notes: list[str] = field(default_factory=list)


class _Builder:
    """Accumulates nodes and initializers; tracks shapes by ONNX shape inference."""

    def __init__(self, chooser: Chooser, opset: int, batch: int, input_shape: tuple[int, ...]):
        self.chooser = chooser
        self.opset = opset
        self.rng = np.random.default_rng(chooser.integer(0, 2**31))
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.input = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(input_shape))
        self.tensors: list[Tensor] = [Tensor("x", input_shape)]
        self.ops: list[str] = []
        self.batch = batch
        self.ceil_mode = False
        self.inferring = False

    def name(self, prefix: str) -> str:
        return f"{prefix}{len(self.nodes) + len(self.initializers)}"

    def constant(self, array: np.ndarray, prefix: str = "w") -> str:
        name = self.name(prefix)
        self.initializers.append(numpy_helper.from_array(array.astype(np.float32), name))
        return name

    def weights(self, shape: tuple[int, ...], fan_in: int) -> np.ndarray:
        """Normal weights scaled to keep activations near 1; sometimes all zero, sometimes huge,
        sometimes with one output channel zeroed."""
        kind = self.chooser.choice(("normal",) * 16 + ("zero", "huge", "channel-zero", "tiny"))
        values = self.rng.standard_normal(shape) / np.sqrt(max(fan_in, 1))
        if kind == "zero":
            return np.zeros(shape, np.float32)
        if kind == "huge":
            return values * 1e4
        if kind == "tiny":
            return values * 1e-5
        if kind == "channel-zero" and shape[0] > 1:
            values[self.chooser.integer(0, shape[0] - 1)] = 0.0
        return values

    def model(self, outputs: list[str]) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes,
            "fuzz",
            [self.input],
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, self.shape(n)) for n in outputs],
            self.initializers,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)])
        model.ir_version = min(model.ir_version, 10)  # onnxruntime's highest supported
        return model

    def shape(self, name: str) -> list[int | str] | None:
        """The shape a graph output declares: None while its node is being inferred; the
        spatial dims symbolic after a `ceil_mode` pooling, where ONNX shape inference and
        onnxruntime (what runs the float model, and what akidac follows) can disagree; N×1×1×1
        for the output of a node made invalid on purpose (its defect makes the model invalid)."""
        tracked = next((t.shape for t in self.tensors if t.name == name), None)
        if tracked is None:
            return None if self.inferring else [self.batch, 1, 1, 1]
        shape: list[int | str] = list(tracked)
        if self.ceil_mode and len(shape) == 4:
            shape[2:] = [f"{name}_h", f"{name}_w"]
        return shape

    def add_node(self, op_type: str, inputs: list[str], **attrs: Any) -> Tensor | None:
        """Append a node; its output shape from shape inference, None when it has none."""
        output = self.name("t")
        node = helper.make_node(op_type, inputs, [output], f"n{len(self.nodes)}_{op_type}", **attrs)
        self.nodes.append(node)
        self.ops.append(op_type)
        self.ceil_mode |= bool(attrs.get("ceil_mode"))
        self.inferring = True
        shape = _inferred_shape(self.model([output]), output)
        self.inferring = False
        if shape is None:
            return None
        tensor = Tensor(output, shape)
        self.tensors.append(tensor)
        return tensor


def _inferred_shape(model: onnx.ModelProto, name: str) -> tuple[int, ...] | None:
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    except Exception:  # an invalid node: the graph ends here
        return None
    for info in inferred.graph.output:
        if info.name == name and info.type.tensor_type.HasField("shape"):
            dims = info.type.tensor_type.shape.dim
            if all(d.HasField("dim_value") and d.dim_value > 0 for d in dims):
                return tuple(int(d.dim_value) for d in dims)
    return None


def _window(b: _Builder, size: tuple[int, int], max_kernel: int = 3) -> dict[str, Any]:
    """Kernel, strides, dilations and padding for a window over an H × W input; the effective
    kernel never exceeds the padded input."""
    c = b.chooser
    kernel = [c.integer(1, max_kernel), c.integer(1, max_kernel)]
    strides = [c.integer(1, 2), c.integer(1, 2)] if c.chance(0.6) else [1, 1]
    attrs: dict[str, Any] = {"kernel_shape": kernel, "strides": strides}
    mode = c.choice(("pads", "pads", "pads", "SAME_UPPER", "SAME_LOWER", "VALID"))
    # onnxruntime cannot run a dilated SAME convolution (akidac refuses it, exit 4): rarely
    dilated = c.chance(0.2 if mode in ("pads", "VALID") else 0.03)
    dilations = [c.integer(1, 2)] * 2 if dilated else [1, 1]
    if mode == "pads":
        pads = [c.integer(0, k - 1) if k > 1 else 0 for k in kernel] * 2
        if c.chance(0.3):
            pads = [c.integer(0, k - 1) if k > 1 else 0 for k in kernel + kernel]
        attrs["pads"] = pads
    else:
        attrs["auto_pad"] = mode
        pads = [0, 0, 0, 0] if mode == "VALID" else [k - 1 for k in kernel] * 2
    for axis in range(2):
        while (kernel[axis] - 1) * dilations[axis] + 1 > size[axis] + pads[axis] + pads[axis + 2]:
            if dilations[axis] > 1:
                dilations[axis] = 1
            else:
                kernel[axis] -= 1
    if mode == "pads":
        attrs["pads"] = [min(p, kernel[i % 2] - 1) for i, p in enumerate(attrs["pads"])]
    attrs["dilations"] = dilations
    return attrs


def _conv(b: _Builder, x: Tensor, depthwise: bool) -> Tensor | None:
    _, channels, h, w = x.shape
    attrs = _window(b, (h, w))
    group = channels if depthwise else 1
    out = channels * b.chooser.integer(1, 2) if depthwise else b.chooser.integer(1, 8)
    kh, kw = attrs["kernel_shape"]
    weights = b.weights((out, channels // group, kh, kw), channels // group * kh * kw)
    inputs = [x.name, b.constant(weights)]
    if b.chooser.chance(0.7):
        inputs.append(b.constant(b.rng.standard_normal(out) * 0.3, "b"))
    return b.add_node("Conv", inputs, group=group, **attrs)


def _conv_transpose(b: _Builder, x: Tensor) -> Tensor | None:
    _, channels, h, w = x.shape
    c = b.chooser
    kernel = [c.integer(1, 3)] * 2 if c.chance(0.7) else [c.integer(1, 3), c.integer(1, 3)]
    strides = [c.integer(1, 2)] * 2
    out = c.integer(1, 6)
    attrs: dict[str, Any] = {"kernel_shape": kernel, "strides": strides}
    if c.chance(0.5):
        pads = [c.integer(0, k - 1) if k > 1 else 0 for k in kernel]
        natural = [(size - 1) * s + k for size, s, k in zip((h, w), strides, kernel, strict=True)]
        attrs["pads"] = [p if 2 * p < n else 0 for p, n in zip(pads, natural, strict=True)] * 2
    if c.chance(0.15) and strides[0] > 1:
        attrs["output_padding"] = [1, 1]
    weights = b.weights((channels, out, *kernel), channels * kernel[0] * kernel[1])
    inputs = [x.name, b.constant(weights)]
    if c.chance(0.5):
        inputs.append(b.constant(b.rng.standard_normal(out) * 0.3, "b"))
    return b.add_node("ConvTranspose", inputs, **attrs)


def _pool(b: _Builder, x: Tensor) -> Tensor | None:
    c = b.chooser
    op_type = c.choice(("MaxPool", "MaxPool", "AveragePool"))
    attrs = _window(b, x.shape[2:], max_kernel=4)
    if c.chance(0.1):  # a window over the whole map (a GlobalAveragePool when unpadded)
        attrs.update(kernel_shape=list(x.shape[2:]), strides=[1, 1], dilations=[1, 1])
        attrs.pop("pads", None)
    dilations = attrs.pop("dilations")
    if op_type == "MaxPool" or b.opset >= 19:  # AveragePool has dilations from opset 19
        attrs["dilations"] = dilations
    if c.chance(0.35):
        attrs["ceil_mode"] = 1
    if op_type == "AveragePool" and c.chance(0.5):
        attrs["count_include_pad"] = 1
    return b.add_node(op_type, [x.name], **attrs)


def _add(b: _Builder, x: Tensor) -> Tensor | None:
    partners = [t for t in b.tensors if t.shape == x.shape]
    if len(partners) > 1 and b.chooser.chance(0.7):
        other = b.chooser.choice(partners).name
    else:
        shape = (1, x.shape[1], 1, 1) if len(x.shape) == 4 else (1, x.shape[1])
        other = b.constant(b.rng.standard_normal(shape) * 0.5, "c")
    return b.add_node("Add", [x.name, other])


def _concat(b: _Builder, x: Tensor) -> Tensor | None:
    partners = [t for t in b.tensors if t.shape[:1] + t.shape[2:] == x.shape[:1] + x.shape[2:]]
    other = b.chooser.choice(partners)
    return b.add_node("Concat", [x.name, other.name], axis=1)


def _batchnorm(b: _Builder, x: Tensor) -> Tensor | None:
    channels = x.shape[1]
    scale = b.rng.uniform(0.5, 1.5, channels)
    if b.chooser.chance(0.1):
        scale = np.zeros(channels)
    var = b.rng.uniform(0.2, 2.0, channels)
    if b.chooser.chance(0.1):
        var = np.full(channels, 1e-6)  # a huge effective scale
    inputs = [
        x.name,
        b.constant(scale, "g"),
        b.constant(b.rng.standard_normal(channels) * 0.3, "b"),
        b.constant(b.rng.standard_normal(channels) * 0.3, "m"),
        b.constant(var, "v"),
    ]
    return b.add_node("BatchNormalization", inputs, epsilon=1e-5)


def _clip(b: _Builder, x: Tensor) -> Tensor | None:
    low, high = b.chooser.choice(((0.0, 6.0), (0.0, 1.0), (-1.0, 1.0), (0.0, None), (-0.5, 3.0)))
    inputs = [x.name, b.constant(np.array(low), "lo")]
    if high is not None:
        inputs.append(b.constant(np.array(high), "hi"))
    return b.add_node("Clip", inputs)


def _resize(b: _Builder, x: Tensor) -> Tensor | None:
    c = b.chooser
    mode = c.choice(("nearest", "nearest", "linear"))
    attrs: dict[str, Any] = {"mode": mode}
    if mode == "nearest":
        attrs["coordinate_transformation_mode"] = c.choice(("asymmetric", "half_pixel"))
        attrs["nearest_mode"] = c.choice(("floor", "round_prefer_floor"))
    else:
        attrs["coordinate_transformation_mode"] = c.choice(("half_pixel", "align_corners"))
    factor = float(c.integer(1, 2))
    scales = b.constant(np.array([1.0, 1.0, factor, factor]), "s")
    return b.add_node("Resize", [x.name, "", scales], **attrs)


def _gemm(b: _Builder, x: Tensor) -> Tensor | None:
    if len(x.shape) == 4:
        flat = b.add_node("Flatten", [x.name], axis=1)
        if flat is None:
            return None
        x = flat
    features = x.shape[1]
    units = b.chooser.integer(1, 10)
    trans_b = b.chooser.integer(0, 1)
    shape = (units, features) if trans_b else (features, units)
    inputs = [x.name, b.constant(b.weights(shape, features))]
    if b.chooser.chance(0.7):
        inputs.append(b.constant(b.rng.standard_normal(units) * 0.3, "b"))
    return b.add_node("Gemm", inputs, transB=trans_b)


def _unary(op_type: str) -> Callable[[_Builder, Tensor], Tensor | None]:
    return lambda b, x: b.add_node(op_type, [x.name])


#: operator builders for 4-D (N, C, H, W) tensors and their weights in the draw
SPATIAL_OPS: dict[str, tuple[int, Callable[[_Builder, Tensor], Tensor | None]]] = {
    "conv": (6, lambda b, x: _conv(b, x, depthwise=False)),
    "depthwise": (3, lambda b, x: _conv(b, x, depthwise=True)),
    "convtranspose": (2, _conv_transpose),
    "pool": (4, _pool),
    "globalpool": (1, _unary("GlobalAveragePool")),
    "add": (2, _add),
    "concat": (2, _concat),
    "batchnorm": (2, _batchnorm),
    "clip": (2, _clip),
    "relu": (3, _unary("Relu")),
    "sigmoid": (1, _unary("Sigmoid")),
    "resize": (1, _resize),
    "gemm": (2, _gemm),
}
#: operator builders for 2-D (N, F) tensors
FLAT_OPS: dict[str, tuple[int, Callable[[_Builder, Tensor], Tensor | None]]] = {
    "gemm": (4, _gemm),
    "add": (1, _add),
    "clip": (1, _clip),
    "relu": (2, _unary("Relu")),
    "sigmoid": (1, _unary("Sigmoid")),
}


def _pick(chooser: Chooser, table: dict[str, tuple[int, Any]]) -> str:
    names = [name for name, (weight, _) in table.items() for _ in range(weight)]
    return chooser.choice(names)


def _invalid_node(b: _Builder, x: Tensor) -> str:
    """Append a node the ONNX spec forbids; return what is wrong with it."""
    c = b.chooser
    if len(x.shape) != 4:
        b.add_node("Gemm", [x.name, b.constant(np.ones((x.shape[1] + 1, 3)))])
        return "Gemm weights whose rows do not match the features"
    _, channels, h, w = x.shape
    defect = c.choice(("group", "kernel", "channels"))
    if defect == "group":
        group = next(g for g in range(2, channels + 2) if channels % g)
        weights = np.ones((group, max(channels // group, 1), 1, 1))
        b.add_node("Conv", [x.name, b.constant(weights)], group=group)
        return f"Conv group {group} does not divide {channels} input channels"
    if defect == "kernel":
        kernel = [h + 3, w + 3]
        b.add_node("Conv", [x.name, b.constant(np.ones((2, channels, *kernel)))])
        return f"Conv kernel {kernel} larger than its {h}×{w} input"
    b.add_node("Conv", [x.name, b.constant(np.ones((2, channels + 2, 1, 1)))])
    return f"Conv weights for {channels + 2} channels on {channels}"


def build_graph(chooser: Chooser, seed: int = -1) -> FuzzGraph:
    """One random graph from the chooser's draws (see the module docstring)."""
    opset = chooser.choice(OPSETS)
    batch = chooser.choice((1, 1, 2))
    size = (chooser.integer(1, 9), chooser.integer(1, 9))
    if chooser.chance(0.7):
        size = (max(size[0], 4), max(size[1], 4))
    shape = (batch, chooser.integer(1, 4), *size)
    b = _Builder(chooser, opset, batch, shape)
    invalid = None
    for _ in range(chooser.integer(1, 6)):
        current = b.tensors[-1] if chooser.chance(0.75) else chooser.choice(b.tensors)
        if chooser.chance(0.01):
            invalid = _invalid_node(b, current)
            break
        table = SPATIAL_OPS if len(current.shape) == 4 else FLAT_OPS
        kind = _pick(chooser, table)
        if kind == "concat" and len(current.shape) != 4:
            continue
        if table[kind][1](b, current) is None:
            invalid = f"shape inference refused {b.ops[-1]}"
            break
    outputs = [b.nodes[-1].output[0]] if b.nodes else []
    if not b.nodes:
        b.add_node("Relu", ["x"])
        outputs = [b.nodes[-1].output[0]]
    extra = [t.name for t in b.tensors[1:-1] if t.name not in outputs]
    if extra and invalid is None and chooser.chance(0.2):
        outputs.append(chooser.choice(extra))
    return FuzzGraph(seed, b.model(outputs), batch, opset, list(b.ops), invalid)


def random_graph(seed: int) -> FuzzGraph:
    """The graph of one example index: the same seed always gives the same model."""
    return build_graph(NumpyChooser(seed), seed)
