"""Checks of the shape-inferred model, before anything is allocated from it.

ONNX's checker and shape inference accept some models that cannot run (a Conv whose weight
does not match its input, a kernel larger than its padded input). `check_inferred` refuses them
with a `ModelError` (exit 3) naming the node and the rule they break:

- every inferred dim is ≥ 1, except 0 in the outputs of nodes that are not spatial (an empty
  tensor can be legitimate there); a negative dim names the node that produced it;
- Conv / ConvTranspose: weight rank = input rank, input channels divisible by `group` and equal
  to the weight's (Conv: W[1] · group; ConvTranspose: W[0]), Conv's output channels divisible by
  `group`, `kernel_shape` (when given) equal to the weight's spatial dims, a bias of one value
  per output channel, and every spatial output ≥ 1 (the dilated kernel fits the padded input);
  auto_pad SAME with dilations, which onnxruntime cannot run, is an `UnsupportedModelError`;
- Gemm and MatMul: the inner dims agree.

`check_memory` is the memory budget: every tensor whose shape is static (graph inputs, every
intermediate value, constants) must fit `max_tensor_bytes()` — 2 GiB by default, or the
`AKIDAC_MAX_TENSOR_BYTES` environment variable (bytes; suffixes K, M, G accepted). A larger
tensor is an `UnsupportedModelError` (exit 4, AK-UNSUPPORTED) naming the tensor and its bytes,
raised before calibration or the hardware model allocate anything of that size.
"""

from __future__ import annotations

import onnx

from akidac.errors import ModelError, UnsupportedModelError
from akidac.limits import DEFAULT_MAX_TENSOR_BYTES, MAX_TENSOR_BYTES_ENV, max_tensor_bytes

__all__ = [
    "DEFAULT_MAX_TENSOR_BYTES",
    "MAX_TENSOR_BYTES_ENV",
    "check_inferred",
    "check_memory",
    "max_tensor_bytes",
    "tensor_bytes",
]

_SPATIAL_OPS = frozenset(
    {"Conv", "ConvTranspose", "MaxPool", "AveragePool", "LpPool", "ConvInteger", "QLinearConv"}
)
_DEFAULT_DOMAINS = ("", "ai.onnx")


def _label(node: onnx.NodeProto, index: int) -> str:
    return node.name or f"{node.op_type}_{index}"


def _type_shapes(
    proto: onnx.ModelProto,
) -> tuple[dict[str, tuple[int | None, ...] | None], dict[str, int]]:
    """Name → shape (None for unknown dims; None for unknown rank) and name → element type."""
    shapes: dict[str, tuple[int | None, ...] | None] = {}
    types: dict[str, int] = {}
    graph = proto.graph
    for value_info in [*graph.input, *graph.value_info, *graph.output]:
        if not value_info.type.HasField("tensor_type"):
            continue
        tensor_type = value_info.type.tensor_type
        types[value_info.name] = tensor_type.elem_type
        if not tensor_type.HasField("shape"):
            shapes[value_info.name] = None
            continue
        shapes[value_info.name] = tuple(
            d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim
        )
    for tensor in graph.initializer:
        shapes[tensor.name] = tuple(int(d) for d in tensor.dims)
        types[tensor.name] = tensor.data_type
    return shapes, types


def _attr_ints(node: onnx.NodeProto, name: str) -> list[int] | None:
    for attr in node.attribute:
        if attr.name == name:
            return [int(v) for v in attr.ints]
    return None


def _attr_int(node: onnx.NodeProto, name: str, default: int) -> int:
    for attr in node.attribute:
        if attr.name == name:
            return int(attr.i)
    return default


def _shape_text(shape: tuple[int | None, ...]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def check_inferred(proto: onnx.ModelProto, where: str) -> None:
    """Refuse (ModelError, exit 3) a shape-inferred model that breaks a rule above."""
    shapes, _ = _type_shapes(proto)
    for index, node in enumerate(proto.graph.node):
        label = _label(node, index)
        default_domain = node.domain in _DEFAULT_DOMAINS
        for output in node.output:
            shape = shapes.get(output) if output else None
            if not shape:
                continue
            bad = [d for d in shape if d is not None and d < 0]
            spatial_empty = default_domain and node.op_type in _SPATIAL_OPS and 0 in shape
            if bad or spatial_empty:
                raise ModelError(
                    f"'{where}': {node.op_type} '{label}' produces '{output}' with shape "
                    f"{_shape_text(shape)}: every dimension must be at least 1"
                    + (
                        " (its kernel is larger than its padded input)"
                        if node.op_type in _SPATIAL_OPS
                        else ""
                    ),
                    code="AK-MODEL-SHAPES",
                    node=label,
                )
        if not default_domain:
            continue
        if node.op_type in ("Conv", "ConvTranspose"):
            _check_conv(node, label, shapes, where)
        elif node.op_type in ("Gemm", "MatMul"):
            _check_matmul(node, label, shapes, where)


def _refuse(where: str, node: onnx.NodeProto, label: str, rule: str) -> None:
    raise ModelError(
        f"'{where}': {node.op_type} '{label}' is invalid: {rule}",
        code="AK-MODEL-INVALID",
        node=label,
    )


def _check_conv(
    node: onnx.NodeProto,
    label: str,
    shapes: dict[str, tuple[int | None, ...] | None],
    where: str,
) -> None:
    if len(node.input) < 2:
        return
    x = shapes.get(node.input[0])
    w = shapes.get(node.input[1])
    if not x or not w:
        return
    group = _attr_int(node, "group", 1)
    if group < 1:
        _refuse(where, node, label, f"group is {group}; it must be at least 1")
    if len(w) != len(x):
        _refuse(
            where,
            node,
            label,
            f"its weight has shape {_shape_text(w)} (rank {len(w)}) but its input "
            f"{_shape_text(x)} has rank {len(x)}; they must have the same rank",
        )
    channels = x[1] if len(x) > 1 else None
    transpose = node.op_type == "ConvTranspose"
    if channels is not None and channels % group:
        _refuse(
            where,
            node,
            label,
            f"its input has {channels} channels, which group={group} does not divide",
        )
    if channels is not None and None not in w[:2]:
        expected = w[0] if transpose else w[1] * group  # type: ignore[operator]
        if channels != expected:
            what = (
                f"weight dim 0 is {w[0]}"
                if transpose
                else f"weight dim 1 × group is {w[1]} × {group} = {expected}"
            )
            _refuse(
                where,
                node,
                label,
                f"its input {_shape_text(x)} has {channels} channels but its {what} "
                f"(weight {_shape_text(w)}); they must be equal",
            )
    if not transpose and w[0] is not None and w[0] % group:
        _refuse(
            where,
            node,
            label,
            f"its weight has {w[0]} output channels, which group={group} does not divide",
        )
    dilations = _attr_ints(node, "dilations") or []
    auto_pad = next((a.s.decode() for a in node.attribute if a.name == "auto_pad"), "NOTSET")
    if auto_pad.startswith("SAME") and any(d != 1 for d in dilations):
        raise UnsupportedModelError(
            f"'{where}': {node.op_type} '{label}' has auto_pad {auto_pad} with dilations "
            f"{dilations}, which onnxruntime cannot run; use explicit pads",
            code="AK-UNSUPPORTED",
            node=label,
        )
    kernel = _attr_ints(node, "kernel_shape")
    if kernel is not None and None not in w[2:] and list(w[2:]) != kernel:
        _refuse(
            where,
            node,
            label,
            f"kernel_shape {kernel} differs from its weight's spatial dims {list(w[2:])}",
        )
    if not transpose and auto_pad in ("NOTSET", "VALID"):
        _check_kernel_fits(node, label, x, w, dilations, auto_pad, where)
    if len(node.input) > 2 and node.input[2]:
        bias = shapes.get(node.input[2])
        outputs = (w[1] * group if w[1] is not None else None) if transpose else w[0]
        if bias is not None and outputs is not None and tuple(bias) != (outputs,):
            _refuse(
                where,
                node,
                label,
                f"its bias has shape {_shape_text(bias)}; it must be [{outputs}], one value "
                "per output channel",
            )


def _check_kernel_fits(
    node: onnx.NodeProto,
    label: str,
    x: tuple[int | None, ...],
    w: tuple[int | None, ...],
    dilations: list[int],
    auto_pad: str,
    where: str,
) -> None:
    """The dilated kernel must fit the padded input on every spatial axis, as onnxruntime
    requires. Shape inference alone misses it when the excess is smaller than the stride: ONNX
    truncates (n + pads − kernel) / stride toward zero, so −1 / 2 gives an output of 1."""
    spatial = len(x) - 2
    pads = [0] * (2 * spatial) if auto_pad == "VALID" else _attr_ints(node, "pads")
    pads = pads or [0] * (2 * spatial)
    dilations = dilations or [1] * spatial
    for axis in range(spatial):
        size, kernel = x[2 + axis], w[2 + axis]
        if size is None or kernel is None or len(pads) != 2 * spatial:
            continue
        padded = size + pads[axis] + pads[axis + spatial]
        reach = (kernel - 1) * dilations[axis] + 1
        if reach > padded:
            _refuse(
                where,
                node,
                label,
                f"its kernel reaches {reach} along spatial axis {axis} but its padded input "
                f"{_shape_text(x)} is {padded} there (its kernel is larger than its padded "
                "input)",
            )


def _check_matmul(
    node: onnx.NodeProto,
    label: str,
    shapes: dict[str, tuple[int | None, ...] | None],
    where: str,
) -> None:
    if len(node.input) < 2:
        return
    a = shapes.get(node.input[0])
    b = shapes.get(node.input[1])
    if not a or not b:
        return
    if node.op_type == "Gemm":
        if len(a) != 2 or len(b) != 2:
            return
        inner_a = a[0] if _attr_int(node, "transA", 0) else a[1]
        inner_b = b[1] if _attr_int(node, "transB", 0) else b[0]
    else:
        inner_a = a[-1]
        inner_b = b[0] if len(b) == 1 else b[-2]
    if inner_a is not None and inner_b is not None and inner_a != inner_b:
        _refuse(
            where,
            node,
            label,
            f"its inputs {_shape_text(a)} and {_shape_text(b)} have inner dims {inner_a} and "
            f"{inner_b}; they must be equal",
        )


def tensor_bytes(shape: tuple[int | None, ...], elem_type: int) -> int | None:
    """Bytes of a tensor of this static shape and ONNX element type (None if not static)."""
    if any(d is None for d in shape):
        return None
    try:
        itemsize = onnx.helper.tensor_dtype_to_np_dtype(elem_type).itemsize
    except (KeyError, ValueError, TypeError):
        itemsize = 1
    elements = 1
    for d in shape:
        elements *= int(d or 0)
    return elements * max(itemsize, 1)


def check_memory(proto: onnx.ModelProto, where: str, limit: int | None = None) -> None:
    """Refuse (UnsupportedModelError, exit 4, AK-UNSUPPORTED) a tensor above the memory budget."""
    limit = max_tensor_bytes() if limit is None else limit
    shapes, types = _type_shapes(proto)
    producers = {
        out: _label(node, i) for i, node in enumerate(proto.graph.node) for out in node.output
    }
    inputs = {vi.name for vi in proto.graph.input}
    for name, shape in shapes.items():
        if not shape:
            continue
        size = tensor_bytes(shape, types.get(name, onnx.TensorProto.FLOAT))
        if size is None or size <= limit:
            continue
        if name in inputs:
            what = f"input '{name}'"
        elif name in producers:
            what = f"tensor '{name}' (output of node '{producers[name]}')"
        else:
            what = f"tensor '{name}'"
        raise UnsupportedModelError(
            f"'{where}': {what} has shape {_shape_text(shape)}, {size:,} bytes, above akidac's "
            f"memory budget of {limit:,} bytes per tensor; give a smaller --input-shape, or "
            f"raise the budget with {MAX_TENSOR_BYTES_ENV}=BYTES",
            code="AK-UNSUPPORTED",
            node=producers.get(name),
        )
