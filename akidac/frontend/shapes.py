"""Static shapes: fixing dynamic input dimensions and running ONNX shape inference.

Akida programs have fixed shapes, so every graph input must be static before import. A dim is
dynamic when it is symbolic (`dim_param`), unknown, or written as -1 or 0 (how Paddle and some
other exporters mark it). A dynamic leading batch dimension alone defaults to 1 (with a note);
any other dynamic dimension needs `--input-shape NAME=1x3x224x224` and is an
`UnsupportedModelError` (exit 4) without it.

ONNX shape inference and onnxruntime disagree on pooling output sizes (ceil_mode, auto_pad with
dilations): onnxruntime runs the float model and the CPU parts, so `infer_shapes` follows it
(`ort_pool_output_size`).
"""

from __future__ import annotations

import onnx

from akidac.errors import ModelError, UnsupportedModelError, UsageError
from akidac.ir.diagnostics import DiagnosticSink


def parse_input_shapes(specs: list[str] | None) -> dict[str, tuple[int, ...]]:
    """Parse `NAME=1x3x224x224` (or a bare `1x3x224x224` for a single input, keyed '')."""
    shapes: dict[str, tuple[int, ...]] = {}
    for spec in specs or []:
        name, _, dims_text = spec.rpartition("=")
        try:
            dims = tuple(int(d) for d in dims_text.replace(",", "x").split("x"))
        except ValueError:
            raise UsageError(
                f"--input-shape '{spec}' is not NAME=D1xD2x...; e.g. input=1x3x224x224"
            ) from None
        if not dims or any(d <= 0 for d in dims):
            raise UsageError(f"--input-shape '{spec}' has a non-positive dimension")
        if name in shapes:
            raise UsageError(f"--input-shape gives input '{name}' twice")
        shapes[name] = dims
    return shapes


def _graph_inputs(proto: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    initializers = {t.name for t in proto.graph.initializer}
    return [vi for vi in proto.graph.input if vi.name not in initializers]


def fix_input_shapes(
    proto: onnx.ModelProto, shapes: dict[str, tuple[int, ...]], sink: DiagnosticSink
) -> None:
    """Write static dims into the model's graph inputs, in place."""
    inputs = _graph_inputs(proto)
    by_name = {vi.name: vi for vi in inputs}
    if "" in shapes:
        if len(inputs) != 1:
            names = ", ".join(by_name)
            raise UsageError(
                f"the model has {len(inputs)} inputs ({names}); "
                "name the input in --input-shape NAME=..."
            )
        shapes = {inputs[0].name: shapes[""], **{k: v for k, v in shapes.items() if k}}
    for name in shapes:
        if name not in by_name:
            raise UsageError(
                f"--input-shape names '{name}', which is not a model input "
                f"(inputs: {', '.join(by_name)})"
            )
    for value_info in inputs:
        tensor_type = value_info.type.tensor_type
        if not value_info.type.HasField("tensor_type"):
            continue
        dims = tensor_type.shape.dim
        if value_info.name in shapes:
            wanted = shapes[value_info.name]
            if tensor_type.HasField("shape") and len(dims) != len(wanted):
                raise UsageError(
                    f"--input-shape gives {len(wanted)} dims for '{value_info.name}'"
                    f", which has rank {len(dims)}"
                )
            for index, dim in enumerate(dims):
                # a dim of -1 or 0 is how Paddle and other exporters write "dynamic"
                if dim.HasField("dim_value") and 0 < dim.dim_value != wanted[index]:
                    raise UsageError(
                        f"--input-shape gives {wanted[index]} for dim {index} of "
                        f"'{value_info.name}', which the model fixes at {dim.dim_value}"
                    )
            tensor_type.ClearField("shape")
            for size in wanted:
                tensor_type.shape.dim.add().dim_value = size
            continue
        if not tensor_type.HasField("shape"):
            raise UnsupportedModelError(
                f"input '{value_info.name}' has no shape; give --input-shape "
                f"{value_info.name}=D1xD2x...",
                code="AK-DYNAMIC-SHAPE",
            )
        dynamic = [i for i, d in enumerate(dims) if not d.HasField("dim_value") or d.dim_value <= 0]
        if dynamic == [0] and len(dims) > 1:
            dims[0].Clear()
            dims[0].dim_value = 1
            sink.note(
                "AK-DYNAMIC-BATCH",
                f"input '{value_info.name}' has a dynamic batch dimension; using 1",
                node=value_info.name,
            )
        elif dynamic:
            labels = ", ".join(
                f"{i} ('{dims[i].dim_param}')" if dims[i].dim_param else str(i) for i in dynamic
            )
            example = "x".join(str(d.dim_value) if d.dim_value > 0 else "N" for d in dims)
            raise UnsupportedModelError(
                f"input '{value_info.name}' has dynamic dimension(s) {labels}; give "
                f"--input-shape {value_info.name}={example} with N replaced by sizes",
                code="AK-DYNAMIC-SHAPE",
            )


def clear_dynamic_output_dims(proto: onnx.ModelProto) -> None:
    """Graph outputs declared with dims of -1 or 0 (exporters' "dynamic") get unknown dims, so
    shape inference does not report a conflict with the static sizes it infers."""
    for value_info in proto.graph.output:
        if not value_info.type.HasField("tensor_type"):
            continue
        tensor_type = value_info.type.tensor_type
        if not tensor_type.HasField("shape"):
            continue
        for dim in tensor_type.shape.dim:
            if dim.HasField("dim_value") and dim.dim_value <= 0:
                dim.Clear()


def infer_shapes(proto: onnx.ModelProto, where: str) -> onnx.ModelProto:
    """ONNX shape inference with data propagation (so Reshape targets resolve), with pooling
    output sizes as onnxruntime computes them.

    Where onnxruntime's size differs, inference runs again on a shadow copy whose pool node has
    explicit pads and ceil_mode 0 that give onnxruntime's size (so every later shape follows);
    the result keeps the model's own nodes. Rounds repeat until no pool node differs.
    """
    shadow = onnx.ModelProto()
    shadow.CopyFrom(proto)
    patched: set[int] = set()
    inferred = _onnx_infer(shadow, where)
    for _ in range(len(proto.graph.node) + 1):
        shapes = _static_shapes(inferred)
        changed = False
        for index, node in enumerate(proto.graph.node):
            if node.op_type not in _POOL_OPS or node.domain not in ("", "ai.onnx"):
                continue
            fix = _pool_fix(node, shapes, where, index)
            if fix is None:
                continue
            _set_explicit_floor_pads(shadow.graph.node[index], fix)
            patched.add(index)
            changed = True
        if not changed:
            break
        inferred = _onnx_infer(shadow, where)
    for index in patched:  # the shadow's attributes only served inference
        inferred.graph.node[index].CopyFrom(proto.graph.node[index])
    _fill_unknown_shapes(inferred)
    return inferred


def _unknown_tensors(proto: onnx.ModelProto) -> list[str]:
    """Node outputs (top-level graph) whose inferred shape is missing or has an unknown dim."""
    shapes = _static_shapes(proto)
    names = [name for node in proto.graph.node for name in node.output if name]
    return [n for n in names if shapes.get(n) is None or None in shapes[n]]  # type: ignore[operator]


def _fill_unknown_shapes(proto: onnx.ModelProto) -> None:
    """Shapes that ONNX inference leaves unknown, read off one onnxruntime run.

    Data propagation does not see through every shape computation exporters write (Paddle's
    `Shape → Gather → Cast → Concat → Reshape`, for one), and a graph output without a shape
    makes an invalid model. With every input static, each tensor's shape is a constant of the
    model, so one run of onnxruntime on zero-filled inputs (the runtime that executes the CPU
    parts) gives it exactly. Best effort: when onnxruntime cannot run the model the shapes stay
    unknown and the nodes that need them run on the CPU as before.
    """
    unknown = _unknown_tensors(proto)
    inputs = proto.graph.input
    initializers = {t.name for t in proto.graph.initializer}
    feeds_spec = [v for v in inputs if v.name not in initializers]
    if not unknown or any(
        not v.type.HasField("tensor_type")
        or not v.type.tensor_type.HasField("shape")
        or any(not d.HasField("dim_value") for d in v.type.tensor_type.shape.dim)
        for v in feeds_spec
    ):
        return
    import numpy as np
    import onnxruntime as ort
    from onnx import helper

    probe = onnx.ModelProto()
    probe.CopyFrom(proto)
    outputs = {o.name for o in probe.graph.output}
    for name in unknown:
        if name not in outputs:
            probe.graph.output.append(helper.make_empty_tensor_value_info(name))
    feeds = {}
    for value in feeds_spec:
        tensor_type = value.type.tensor_type
        dims = [d.dim_value for d in tensor_type.shape.dim]
        dtype = helper.tensor_dtype_to_np_dtype(tensor_type.elem_type)
        feeds[value.name] = np.zeros(dims, dtype)
    options = ort.SessionOptions()
    options.log_severity_level = 4
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        session = ort.InferenceSession(
            probe.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        names = [o.name for o in session.get_outputs()]
        results = session.run(names, feeds)
    except Exception:  # onnxruntime raises several types: the shapes then stay unknown
        return
    measured = {n: r for n, r in zip(names, results, strict=True) if n in set(unknown)}
    typed = {v.name: v for v in [*proto.graph.value_info, *proto.graph.output]}
    for name, array in measured.items():
        array = np.asarray(array)
        elem = helper.np_dtype_to_tensor_dtype(array.dtype)
        info = helper.make_tensor_value_info(name, elem, list(array.shape))
        if name in typed:
            typed[name].type.CopyFrom(info.type)
        else:
            proto.graph.value_info.append(info)


_POOL_OPS = frozenset({"MaxPool", "AveragePool", "LpPool"})


def _static_shapes(proto: onnx.ModelProto) -> dict[str, tuple[int | None, ...] | None]:
    """Name → inferred shape (None for unknown dims) of every typed tensor of the graph."""
    shapes: dict[str, tuple[int | None, ...] | None] = {}
    graph = proto.graph
    for value_info in [*graph.input, *graph.value_info, *graph.output]:
        if not value_info.type.HasField("tensor_type"):
            continue
        tensor_type = value_info.type.tensor_type
        if not tensor_type.HasField("shape"):
            shapes[value_info.name] = None
            continue
        shapes[value_info.name] = tuple(
            d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim
        )
    for tensor in graph.initializer:
        shapes[tensor.name] = tuple(tensor.dims)
    return shapes


def _ints(node: onnx.NodeProto, name: str) -> list[int] | None:
    for attr in node.attribute:
        if attr.name == name:
            return [int(v) for v in attr.ints]
    return None


def _int(node: onnx.NodeProto, name: str, default: int) -> int:
    for attr in node.attribute:
        if attr.name == name:
            return int(attr.i)
    return default


def _str(node: onnx.NodeProto, name: str, default: str) -> str:
    for attr in node.attribute:
        if attr.name == name:
            return attr.s.decode("utf-8", errors="replace")
    return default


def ort_pool_output_size(
    size: int,
    kernel: int,
    stride: int = 1,
    dilation: int = 1,
    pads: tuple[int, int] = (0, 0),
    ceil_mode: int = 0,
    auto_pad: str = "NOTSET",
) -> tuple[int, tuple[int, int]]:
    """(output size, (head pad, tail pad)) of one spatial axis of a MaxPool/AveragePool/LpPool
    as onnxruntime (1.17+, the CPU provider) computes it.

    auto_pad SAME_*: pad_needed = (ceil(size / stride) − 1) · stride + kernel − size (the
    undilated kernel), split with the extra pixel at the tail (SAME_UPPER) or head (SAME_LOWER);
    VALID: no pads; NOTSET: `pads`. Then with d = (kernel − 1) · dilation + 1 and
    n = size + head + tail − d: out = n / stride + 1 truncated (ceil_mode 0), or
    ceil(n / stride) + 1, minus 1 when that last window would start in the tail padding
    ((out − 1) · stride ≥ size + head), with ceil_mode 1. The pads may come out negative
    (SAME with kernel < stride), which onnxruntime refuses to run.
    """
    if auto_pad == "VALID":
        head = tail = 0
    elif auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        target = -(-size // stride)
        needed = (target - 1) * stride + kernel - size
        head = (needed + 1) // 2 if auto_pad == "SAME_LOWER" else needed // 2
        tail = needed - head
    else:
        head, tail = pads
    numerator = size + head + tail - ((kernel - 1) * dilation + 1)
    if ceil_mode:
        out = -(-numerator // stride) + 1
        if (out - 1) * stride >= size + head:
            out -= 1
    else:
        out = int(numerator / stride) + 1  # C++ truncation toward zero, as onnxruntime
    return out, (head, tail)


def _pool_fix(
    node: onnx.NodeProto,
    shapes: dict[str, tuple[int | None, ...] | None],
    where: str,
    index: int,
) -> list[tuple[int, int, int, int]] | None:
    """Per spatial axis (kernel, stride, dilation, total pad) that make ONNX's floor formula
    give onnxruntime's size, when the inferred output differs from it; else None."""
    in_shape = shapes.get(node.input[0]) if node.input else None
    out_shape = shapes.get(node.output[0]) if node.output else None
    kernel = _ints(node, "kernel_shape")
    if not in_shape or kernel is None or any(d is None for d in in_shape[2:]):
        return None
    rank = len(kernel)
    if len(in_shape) != rank + 2:
        return None
    strides = _ints(node, "strides") or [1] * rank
    dilations = _ints(node, "dilations") or [1] * rank
    pads = _ints(node, "pads") or [0] * (2 * rank)
    ceil_mode = _int(node, "ceil_mode", 0)
    auto_pad = _str(node, "auto_pad", "NOTSET")
    if len(strides) != rank or len(dilations) != rank or len(pads) != 2 * rank:
        return None
    label = node.name or f"{node.op_type}_{index}"
    wanted: list[int] = []
    axes = []
    for axis in range(rank):
        size = int(in_shape[axis + 2])  # type: ignore[arg-type]
        out, (head, tail) = ort_pool_output_size(
            size,
            kernel[axis],
            strides[axis],
            dilations[axis],
            (pads[axis], pads[axis + rank]),
            ceil_mode,
            auto_pad,
        )
        if head < 0 or tail < 0:
            # an invalid model like every AK-MODEL-SHAPES case (exit 3): no runtime runs it
            raise ModelError(
                f"'{where}': {node.op_type} '{label}' has auto_pad {auto_pad} with a kernel "
                f"({kernel[axis]}) smaller than its stride ({strides[axis]}), which gives "
                "negative padding that onnxruntime refuses to run; use explicit pads",
                code="AK-MODEL-SHAPES",
                node=label,
            )
        wanted.append(out)
        dilated = (kernel[axis] - 1) * dilations[axis] + 1
        total = (out - 1) * strides[axis] + dilated - size
        axes.append((kernel[axis], strides[axis], dilations[axis], total))
    if out_shape is not None and len(out_shape) == rank + 2 and list(out_shape[2:]) == wanted:
        return None
    return axes


def _set_explicit_floor_pads(node: onnx.NodeProto, axes: list[tuple[int, int, int, int]]) -> None:
    """Rewrite a pool node (of the shadow model) to auto_pad NOTSET, ceil_mode 0 and tail pads
    such that ONNX's floor formula gives the wanted sizes."""
    rank = len(axes)
    keep = [a for a in node.attribute if a.name not in ("auto_pad", "ceil_mode", "pads")]
    del node.attribute[:]
    node.attribute.extend(keep)
    node.attribute.append(
        onnx.helper.make_attribute("pads", [0] * rank + [max(total, 0) for *_, total in axes])
    )


def _onnx_infer(proto: onnx.ModelProto, where: str) -> onnx.ModelProto:
    try:
        return onnx.shape_inference.infer_shapes(
            proto, check_type=True, strict_mode=True, data_prop=True
        )
    except (onnx.shape_inference.InferenceError, onnx.checker.ValidationError) as error:
        first = str(error).strip().splitlines()[0]
        raise ModelError(
            f"'{where}': shape inference failed: {first}", code="AK-MODEL-SHAPES"
        ) from None
