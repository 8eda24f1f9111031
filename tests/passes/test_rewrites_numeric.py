"""Every rewrite of import-cleanup and canonicalize fires and computes what the model computed.

Each test builds a small ONNX model, runs `import-cleanup` and `canonicalize`, checks which op
kinds remain (so the rewrite really fired, or really did not), and compares the exported graph
with the original in onnxruntime (allclose, 1e-5).
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from akidac.frontend import import_model
from akidac.ir.graph import Graph
from akidac.ir.onnx_export import graph_to_model
from akidac.ir.verifier import verify_graph
from akidac.passes import PassContext, PassManager
from akidac.passes.rewrites.resize_nearest import index_map

TOLERANCE = 1e-5


def make_model(
    nodes: list[onnx.NodeProto],
    inputs: dict[str, tuple[int, ...]],
    outputs: list[str],
    weights: dict[str, np.ndarray] | None = None,
    opset: int = 17,
) -> onnx.ModelProto:
    """A float32 model of `nodes`; the output shapes come from ONNX shape inference."""
    graph = helper.make_graph(
        nodes,
        "rewrite",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs.items()],
        [],
        [numpy_helper.from_array(np.asarray(a), n) for n, a in (weights or {}).items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    known = {vi.name: vi for vi in inferred.graph.value_info}
    model.graph.output.extend(known[name] for name in outputs)
    onnx.checker.check_model(model, full_check=True)
    return model


def rand(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _session(model: onnx.ModelProto) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def _unique_node_names(model: onnx.ModelProto) -> None:
    """Rename repeated node names: the exporter names a node after its op's first origin, and a
    rule that splits one op in two gives both halves that origin (onnxruntime rejects it)."""
    seen: Counter[str] = Counter()
    for node in model.graph.node:
        seen[node.name] += 1
        if seen[node.name] > 1:
            node.name = f"{node.name}#{seen[node.name]}"


def rewrite(model: onnx.ModelProto) -> tuple[Graph, PassContext]:
    """Import `model`, run import-cleanup and canonicalize, check the result still computes
    the model's outputs, and return the graph and the pass context."""
    graph = import_model(model)
    ctx = PassContext()
    PassManager(["import-cleanup", "canonicalize"]).run(graph, ctx)
    verify_graph(graph)
    exported = graph_to_model(graph)
    _unique_node_names(exported)
    onnx.checker.check_model(exported)
    _check_types(graph, exported)
    feeds = {}
    for index, value in enumerate(model.graph.input):
        shape = [d.dim_value for d in value.type.tensor_type.shape.dim]
        feeds[value.name] = rand(*shape, seed=100 + index)
    expected = _session(model).run(None, feeds)
    actual = _session(exported).run(None, feeds)
    assert [o.name for o in exported.graph.output] == [o.name for o in model.graph.output]
    for want, got in zip(expected, actual, strict=True):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=TOLERANCE, atol=TOLERANCE)
    return graph, ctx


def _check_types(graph: Graph, exported: onnx.ModelProto) -> None:
    """The IR's result types agree with ONNX shape inference on the exported model."""
    inferred = onnx.shape_inference.infer_shapes(exported, strict_mode=True)
    shapes = {
        vi.name: tuple(d.dim_value for d in vi.type.tensor_type.shape.dim)
        for vi in [*inferred.graph.value_info, *inferred.graph.output]
    }
    for op in graph.ops:
        for value in op.outputs:
            if value.name in shapes:
                assert shapes[value.name] == value.type.shape, value.name


def kinds(graph: Graph) -> list[str]:
    return [op.op_type for op in graph.ops]


def misses(ctx: PassContext) -> list[str]:
    return [str(m) for m in ctx.analyses.get("rewrite_misses", [])]


def bn_params(channels: int, seed: int = 7) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "gamma": (rng.standard_normal(channels) + 2).astype(np.float32),
        "beta": rng.standard_normal(channels).astype(np.float32),
        "mean": rng.standard_normal(channels).astype(np.float32),
        "var": (np.abs(rng.standard_normal(channels)) + 0.5).astype(np.float32),
    }


def bn(x: str, y: str, name: str = "bn") -> onnx.NodeProto:
    return helper.make_node(
        "BatchNormalization", [x, "gamma", "beta", "mean", "var"], [y], name=name, epsilon=1e-3
    )


# ------------------------------------------------------------------------------ fold-affine


def test_a_batchnorm_after_a_conv_folds_into_its_weights_and_bias() -> None:
    model = make_model(
        [
            helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
            bn("c", "y"),
        ],
        {"x": (1, 3, 6, 6)},
        ["y"],
        {"w": rand(4, 3, 3, 3), "b": rand(4, seed=1), **bn_params(4)},
    )
    graph, _ = rewrite(model)
    assert kinds(graph) == ["Conv"]
    assert graph.ops[0].origin == ("conv", "bn")
    assert graph.ops[0].created_by == "import-cleanup"
    assert graph.outputs[0].name == "y"


def test_per_channel_mul_div_add_sub_after_a_biasless_conv_fold_in_one_chain() -> None:
    model = make_model(
        [
            helper.make_node("Conv", ["x", "w"], ["c"], name="conv", group=2),
            helper.make_node("Mul", ["scale", "c"], ["m"], name="mul"),
            helper.make_node("Div", ["m", "two"], ["d"], name="div"),
            helper.make_node("Add", ["d", "shift"], ["a"], name="add"),
            helper.make_node("Sub", ["a", "offset"], ["y"], name="sub"),
        ],
        {"x": (1, 4, 5, 5)},
        ["y"],
        {
            "w": rand(4, 2, 3, 3),
            "scale": rand(1, 4, 1, 1, seed=2),
            "two": np.array(2.0, np.float32),
            "shift": rand(4, 1, 1, seed=3),
            "offset": rand(1, seed=4),
        },
    )
    graph, _ = rewrite(model)
    assert kinds(graph) == ["Conv"]
    assert graph.ops[0].origin == ("conv", "mul", "div", "add", "sub")


def test_a_batchnorm_after_a_grouped_conv_transpose_folds_per_output_channel() -> None:
    model = make_model(
        [
            helper.make_node(
                "ConvTranspose", ["x", "w"], ["c"], name="deconv", group=2, strides=[2, 2]
            ),
            bn("c", "y"),
        ],
        {"x": (1, 4, 3, 3)},
        ["y"],
        {"w": rand(4, 3, 3, 3), **bn_params(6)},
    )
    graph, _ = rewrite(model)
    assert kinds(graph) == ["ConvTranspose"]


@pytest.mark.parametrize("trans_b", [0, 1])
def test_a_batchnorm_after_a_gemm_folds_into_b_and_c(trans_b: int) -> None:
    weight = rand(5, 8) if trans_b else rand(8, 5)
    model = make_model(
        [
            helper.make_node(
                "Gemm", ["x", "w", "c0"], ["g"], name="fc", transB=trans_b, alpha=0.5, beta=2.0
            ),
            bn("g", "y"),
        ],
        {"x": (2, 8)},
        ["y"],
        {"w": weight, "c0": rand(5, seed=5), **bn_params(5)},
    )
    graph, _ = rewrite(model)
    assert kinds(graph) == ["Gemm"]
    assert "beta" not in graph.ops[0].attrs


def test_a_batchnorm_after_a_constant_matmul_makes_a_gemm() -> None:
    model = make_model(
        [helper.make_node("MatMul", ["x", "w"], ["mm"], name="fc"), bn("mm", "y")],
        {"x": (2, 8)},
        ["y"],
        {"w": rand(8, 5), **bn_params(5)},
    )
    graph, _ = rewrite(model)
    assert kinds(graph) == ["Gemm"]
    assert graph.ops[0].origin == ("fc", "bn")


def test_a_scale_after_a_rank3_matmul_folds_into_its_columns() -> None:
    model = make_model(
        [
            helper.make_node("MatMul", ["x", "w"], ["mm"], name="fc"),
            helper.make_node("Mul", ["mm", "scale"], ["y"], name="mul"),
        ],
        {"x": (1, 3, 8)},
        ["y"],
        {"w": rand(8, 5), "scale": rand(5, seed=6)},
    )
    graph, _ = rewrite(model)
    assert kinds(graph) == ["MatMul"]


def test_standalone_and_shared_affine_ops_are_left_alone_and_say_why() -> None:
    """A standalone BN is not folded (canonicalize then makes it a depthwise Conv: below), a
    per-pixel Mul and an Add after a shared layer are not folded at all."""
    model = make_model(
        [
            bn("x", "n", name="standalone_bn"),
            helper.make_node("Conv", ["n", "w"], ["c"], name="conv"),
            helper.make_node("Mul", ["c", "pixel_scale"], ["m"], name="pixel_mul"),
            helper.make_node("Conv", ["m", "w2"], ["c2"], name="conv2"),
            helper.make_node("Add", ["c2", "bias"], ["a"], name="shared_add"),
            helper.make_node("Relu", ["c2"], ["r"], name="relu"),
            helper.make_node("Add", ["a", "r"], ["y"], name="sum"),
        ],
        {"x": (1, 2, 4, 4)},
        ["y"],
        {
            "w": rand(2, 2, 1, 1),
            "w2": rand(2, 2, 1, 1, seed=1),
            "pixel_scale": rand(1, 1, 4, 4, seed=2),
            "bias": rand(2, 1, 1, seed=3),
            **bn_params(2),
        },
    )
    graph, ctx = rewrite(model)
    assert Counter(kinds(graph)) == Counter(["Conv", "Conv", "Mul", "Conv", "Add", "Relu", "Add"])
    assert misses(ctx) == [
        "fold-affine 'pixel_mul': the constant of Mul 'pixel_mul' has shape [1, 1, 4, 4]; "
        "only a scalar or one value per channel (2 on axis 1) folds",
        "fold-affine 'shared_add': the output of Conv 'conv2' has other readers",
    ]


# ------------------------------------------------------------------- batchnorm-to-depthwise


def test_a_standalone_batchnorm_becomes_a_centre_tap_depthwise_conv_with_the_same_values() -> None:
    """BN after a merge (pre-activation ResNet) and BN on a graph input: both are 3×3 depthwise
    Convs (group = C) that compute the BN exactly; a BN of a vector stays."""
    model = make_model(
        [
            bn("x", "xn", name="input_bn"),
            helper.make_node("Add", ["xn", "s"], ["a"], name="merge"),
            bn("a", "an", name="merge_bn"),
            helper.make_node("Relu", ["an"], ["r"], name="relu"),
            helper.make_node("GlobalAveragePool", ["r"], ["g"], name="gap"),
            helper.make_node("Flatten", ["g"], ["f"], name="flat"),
            bn("f", "y", name="vector_bn"),
        ],
        {"x": (1, 3, 5, 6), "s": (1, 3, 5, 6)},
        ["y"],
        bn_params(3),
    )
    graph, ctx = rewrite(model)
    convs = [op for op in graph.ops if op.op_type == "Conv"]
    assert [op.origin for op in convs] == [("input_bn",), ("merge_bn",)]
    assert all(op.attrs["group"] == 3 and op.attrs["kernel_shape"] == [3, 3] for op in convs)
    assert kinds(graph).count("BatchNormalization") == 1
    assert misses(ctx) == [
        "batchnorm-to-depthwise 'vector_bn': BatchNormalization 'vector_bn' normalizes a rank-2 "
        "value; only NCHW maps become a layer"
    ]


# --------------------------------------------------------------- split-to-convs, concat-to-pairs


def test_a_split_silu_conv_and_a_wide_concat_keep_their_values() -> None:
    """YOLOv8's C2f: cv1 → SiLU → Split(2) → bottleneck on one half → Concat of three maps.
    The Split becomes two Convs (each with its own SiLU copy), the Concat two pairs; a channel
    Slice of another Conv keeps only that Conv's filters."""
    silu = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c"], name="cv1"),
        helper.make_node("Sigmoid", ["c"], ["s"], name="sig"),
        helper.make_node("Mul", ["c", "s"], ["m"], name="silu"),
        helper.make_node("Split", ["m", "sizes"], ["a", "b"], name="split", axis=1),
        helper.make_node("Conv", ["b", "w2"], ["d"], name="bottleneck", pads=[1, 1, 1, 1]),
        helper.make_node("Concat", ["a", "b", "d"], ["cat"], name="cat", axis=1),
        helper.make_node("Conv", ["x", "w3"], ["e"], name="other"),
        helper.make_node("Slice", ["e", "starts", "ends", "axes"], ["f"], name="slice"),
        helper.make_node("Concat", ["cat", "f"], ["y"], name="out", axis=1),
    ]
    model = make_model(
        silu,
        {"x": (1, 3, 5, 5)},
        ["y"],
        {
            "w1": rand(8, 3, 1, 1),
            "b1": rand(8, seed=1),
            "sizes": np.array([3, 5], np.int64),
            "w2": rand(4, 5, 3, 3, seed=2),
            "w3": rand(6, 3, 1, 1, seed=3),
            "starts": np.array([1], np.int64),
            "ends": np.array([4], np.int64),
            "axes": np.array([1], np.int64),
        },
    )
    graph, ctx = rewrite(model)
    assert "Split" not in kinds(graph) and "Slice" not in kinds(graph)
    assert Counter(kinds(graph))["Conv"] == 4 and Counter(kinds(graph))["Concat"] == 3
    assert all(len(op.inputs) == 2 for op in graph.ops if op.op_type == "Concat")
    assert misses(ctx) == []


# --------------------------------------------------------------------------- resize-nearest


RESIZE_FORMS = [
    (11, "asymmetric", "floor", "scales"),
    (11, "half_pixel", "round_prefer_floor", "sizes"),
    (13, "pytorch_half_pixel", "round_prefer_ceil", "scales"),
    (13, "align_corners", "round_prefer_floor", "sizes"),
    (17, "asymmetric", "round_prefer_floor", "scales"),
    (19, "half_pixel_symmetric", "round_prefer_floor", "scales"),
    (18, "tf_half_pixel_for_nn", "floor", "axes"),
]


def resize_model(opset: int, coordinate: str, nearest: str, form: str) -> onnx.ModelProto:
    weights: dict[str, np.ndarray] = {}
    attrs: dict[str, object] = {
        "mode": "nearest",
        "coordinate_transformation_mode": coordinate,
        "nearest_mode": nearest,
    }
    roi = ""
    if opset == 11:
        weights["roi"] = np.zeros(0, np.float32)
        weights["none"] = np.zeros(0, np.float32)
        roi = "roi"
    if form == "scales":
        weights["scales"] = np.array([1, 1, 2, 2], np.float32)
        inputs = ["x", roi, "scales"]
    elif form == "sizes":
        weights["sizes"] = np.array([1, 3, 10, 14], np.int64)
        inputs = ["x", roi, "none" if opset == 11 else "", "sizes"]
    else:
        weights["scales"] = np.array([2, 2], np.float32)
        attrs["axes"] = [2, 3]
        inputs = ["x", "", "scales"]
    return make_model(
        [helper.make_node("Resize", inputs, ["y"], name="up", **attrs)],
        {"x": (1, 3, 5, 7)},
        ["y"],
        weights,
        opset=opset,
    )


@pytest.mark.parametrize("form", RESIZE_FORMS, ids=["-".join(map(str, f)) for f in RESIZE_FORMS])
def test_a_nearest_2x_resize_becomes_a_depthwise_transposed_conv(form: tuple) -> None:
    graph, _ = rewrite(resize_model(*form))
    assert kinds(graph) == ["ConvTranspose"]
    op = graph.ops[0]
    assert op.attrs["group"] == 3
    assert op.inputs[1].const.shape == (3, 1, 4, 4)  # type: ignore[union-attr]


def test_a_resize_whose_rounding_does_not_repeat_pixels_stays_and_says_why() -> None:
    graph, ctx = rewrite(resize_model(17, "asymmetric", "ceil", "scales"))
    assert kinds(graph) == ["Resize"]
    assert misses(ctx) == [
        "resize-nearest-to-transposed-conv 'up': Resize 'up' with coordinate_transformation_mode "
        "'asymmetric' and nearest_mode 'ceil' does not repeat each pixel twice"
    ]


def test_the_index_map_matches_onnxruntime_for_every_mode_pair() -> None:
    """The rule's model of ONNX coordinates picks exactly the mode pairs that onnxruntime
    resolves to pixel repetition (half_pixel_symmetric needs opset 19)."""
    coordinates = ["asymmetric", "half_pixel", "pytorch_half_pixel", "align_corners"]
    nearests = ["floor", "ceil", "round_prefer_floor", "round_prefer_ceil"]
    x = np.arange(5 * 7, dtype=np.float32).reshape(1, 1, 5, 7)
    repeated = x.repeat(2, axis=2).repeat(2, axis=3)
    for coordinate in coordinates:
        for nearest in nearests:
            model = make_model(
                [
                    helper.make_node(
                        "Resize",
                        ["x", "", "scales"],
                        ["y"],
                        mode="nearest",
                        coordinate_transformation_mode=coordinate,
                        nearest_mode=nearest,
                    )
                ],
                {"x": (1, 1, 5, 7)},
                ["y"],
                {"scales": np.array([1, 1, 2, 2], np.float32)},
            )
            (y,) = _session(model).run(None, {"x": x})
            predicted = all(
                index_map(coordinate, nearest, n, 2.0) == [i // 2 for i in range(2 * n)]
                for n in (5, 7)
            )
            assert predicted == np.array_equal(y, repeated), (coordinate, nearest)


# ------------------------------------------------------------------------ even-kernel-to-odd


EVEN_CONVS = {
    "2x2-stride2-patchify": ((1, 2, 8, 8), (3, 2, 2, 2), {"strides": [2, 2]}),
    "4x4-same-upper": ((1, 2, 6, 6), (2, 2, 4, 4), {"auto_pad": "SAME_UPPER"}),
    "4x4-stride2-pads1": ((1, 2, 8, 8), (3, 2, 4, 4), {"strides": [2, 2], "pads": [1] * 4}),
    "6x6-same-lower": ((1, 1, 9, 9), (2, 1, 6, 6), {"auto_pad": "SAME_LOWER"}),
    "2x3-rectangular": ((1, 2, 5, 6), (2, 2, 2, 3), {"pads": [0, 1, 1, 1]}),
}


@pytest.mark.parametrize("case", sorted(EVEN_CONVS))
def test_an_even_kernel_becomes_an_odd_one_with_the_same_result(case: str) -> None:
    x_shape, w_shape, attrs = EVEN_CONVS[case]
    model = make_model(
        [helper.make_node("Conv", ["x", "w", "b"], ["y"], name="conv", **attrs)],
        {"x": x_shape},
        ["y"],
        {"w": rand(*w_shape), "b": rand(w_shape[0], seed=1)},
    )
    graph, _ = rewrite(model)
    assert kinds(graph) == ["Conv"]
    kernel = graph.ops[0].inputs[1].type.shape[2:]  # type: ignore[union-attr,index]
    assert all(k % 2 == 1 for k in kernel)  # type: ignore[operator]
    assert "auto_pad" not in graph.ops[0].attrs


def test_an_even_kernel_no_zero_tap_makes_runnable_keeps_its_own_kernel_and_says_why() -> None:
    """A 2×2 stride-2 Conv on a 7×7 map without pads: a 3×3 kernel would need pads (0, 1), which
    Akida has no mode for, so the Conv keeps the kernel, pads and MACs the model has."""
    model = make_model(
        [helper.make_node("Conv", ["x", "w", "b"], ["y"], name="conv", strides=[2, 2])],
        {"x": (1, 2, 7, 7)},
        ["y"],
        {"w": rand(3, 2, 2, 2), "b": rand(3, seed=1)},
    )
    graph, ctx = rewrite(model)
    assert graph.ops[0].inputs[1].type.shape == (3, 2, 2, 2)  # type: ignore[union-attr]
    assert misses(ctx) == [
        "even-kernel-to-odd 'conv': Conv 'conv' has kernel 2×2 and pads [0, 0, 0, 0]; no zero "
        "tap gives pads Akida runs, so it keeps its own kernel"
    ]


def test_a_valid_conv_over_its_whole_map_then_flattened_is_a_dense_layer() -> None:
    """MediaPipe iris landmark's heads: a 'valid' 2×2 Conv on a 2×2 map, then Reshape([1, -1])."""
    model = make_model(
        [
            helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv_iris"),
            helper.make_node("Reshape", ["c", "shape"], ["y"], name="output_iris"),
        ],
        {"x": (1, 6, 2, 2)},
        ["y"],
        {"w": rand(5, 6, 2, 2), "b": rand(5, seed=1), "shape": np.array([1, -1], np.int64)},
    )
    graph, ctx = rewrite(model)
    assert kinds(graph) == ["Flatten", "Gemm"]
    assert misses(ctx) == []


def test_a_patchify_conv_gets_tf_same_pads_so_akida_can_run_it() -> None:
    x_shape, w_shape, attrs = EVEN_CONVS["2x2-stride2-patchify"]
    model = make_model(
        [helper.make_node("Conv", ["x", "w"], ["y"], name="conv", **attrs)],
        {"x": x_shape},
        ["y"],
        {"w": rand(*w_shape)},
    )
    graph, _ = rewrite(model)
    assert graph.ops[0].attrs["pads"] == [0, 0, 1, 1]


# ------------------------------------------------------------------- split-strided-depthwise


def depthwise_model(
    kernel: int, pads: list[int] | None, size: int = 8, auto_pad: str | None = None
) -> onnx.ModelProto:
    attrs: dict[str, object] = {"group": 3, "strides": [2, 2]}
    if pads is not None:
        attrs["pads"] = pads
    if auto_pad is not None:
        attrs["auto_pad"] = auto_pad
    return make_model(
        [helper.make_node("Conv", ["x", "w", "b"], ["y"], name="dw", **attrs)],
        {"x": (1, 3, size, size)},
        ["y"],
        {"w": rand(3, 1, kernel, kernel), "b": rand(3, seed=1)},
    )


@pytest.mark.parametrize(
    ("kernel", "pads", "size"),
    [(5, [2] * 4, 8), (5, [2] * 4, 9), (7, [3] * 4, 10), (7, [3, 3, 2, 2], 10), (5, [0] * 4, 9)],
)
def test_a_stride2_large_depthwise_conv_becomes_stride1_then_a_1x1_identity(
    kernel: int, pads: list[int], size: int
) -> None:
    graph, _ = rewrite(depthwise_model(kernel, pads, size))
    assert kinds(graph) == ["Conv", "Conv"]
    first, second = graph.ops
    assert first.attrs["strides"] == [1, 1] and first.attrs["group"] == 3
    assert second.attrs == {"kernel_shape": [1, 1], "strides": [2, 2]}
    assert first.origin == second.origin == ("dw",)


@pytest.mark.parametrize(("kernel", "size"), [(5, 8), (7, 10), (5, 16)])
def test_a_stride2_depthwise_conv_with_tf_same_pads_keeps_the_odd_rows_after_the_split(
    kernel: int, size: int
) -> None:
    """TF "same" on an even input starts k // 2 − 1 early: the stride-2 output is the stride-1
    output's odd rows and columns, which a centre-tap 3×3 stride-2 depthwise Conv selects."""
    graph, ctx = rewrite(depthwise_model(kernel, None, size, auto_pad="SAME_UPPER"))
    assert kinds(graph) == ["Conv", "Conv"]
    first, second = graph.ops
    assert first.attrs["pads"] == [kernel // 2] * 4 and first.attrs["strides"] == [1, 1]
    assert second.attrs == {
        "strides": [2, 2],
        "kernel_shape": [3, 3],
        "pads": [0, 0, 1, 1],
        "group": 3,
    }
    assert misses(ctx) == []


def test_a_stride2_depthwise_conv_sampling_rows_and_columns_unlike_stays_and_says_why() -> None:
    graph, ctx = rewrite(depthwise_model(5, [2, 1, 2, 2], 8))
    assert kinds(graph) == ["Conv"]
    assert misses(ctx) == [
        "split-strided-depthwise 'dw': depthwise Conv 'dw' has pads [2, 1, 2, 2]; the split "
        "needs k // 2 before (PyTorch padding), k // 2 − 1 before on an even input "
        "(TensorFlow 'same') or no padding, alike on both axes, so that the stride-1 layer "
        "has Akida 'same' or 'valid' pads"
    ]


def test_an_even_stride2_depthwise_kernel_is_made_odd_then_split() -> None:
    model = make_model(
        [
            helper.make_node(
                "Conv", ["x", "w"], ["y"], name="dw", group=3, strides=[2, 2], pads=[1] * 4
            )
        ],
        {"x": (1, 3, 8, 8)},
        ["y"],
        {"w": rand(3, 1, 4, 4)},
    )
    graph, _ = rewrite(model)
    assert kinds(graph) == ["Conv", "Conv"]
    assert graph.ops[0].inputs[1].type.shape == (3, 1, 5, 5)  # type: ignore[union-attr]


# ------------------------------------------------------------------------ fold-pad-into-conv


def test_a_zero_pad_before_a_conv_becomes_its_pads() -> None:
    model = make_model(
        [
            helper.make_node("Pad", ["x", "pads"], ["p"], name="pad"),
            helper.make_node("Conv", ["p", "w"], ["y"], name="conv", pads=[1, 0, 0, 1]),
        ],
        {"x": (1, 2, 5, 6)},
        ["y"],
        {"pads": np.array([0, 0, 1, 2, 0, 0, 3, 0], np.int64), "w": rand(2, 2, 3, 3)},
    )
    graph, _ = rewrite(model)
    assert kinds(graph) == ["Conv"]
    assert graph.ops[0].attrs["pads"] == [2, 2, 3, 1]
    assert graph.ops[0].origin == ("conv", "pad")


def test_a_pad_with_axes_folds_into_every_conv_that_reads_it() -> None:
    model = make_model(
        [
            helper.make_node("Pad", ["x", "pads", "zero", "axes"], ["p"], name="pad"),
            helper.make_node("Conv", ["p", "w"], ["a"], name="conv_a", pads=[1, 1, 1, 1]),
            helper.make_node("Conv", ["p", "w"], ["b"], name="conv_b", auto_pad="SAME_UPPER"),
            helper.make_node("Add", ["a", "b"], ["y"], name="sum"),
        ],
        {"x": (1, 2, 5, 5)},
        ["y"],
        {
            "pads": np.array([1, 1, 1, 1], np.int64),
            "zero": np.array(0.0, np.float32),
            "axes": np.array([-2, -1], np.int64),
            "w": rand(2, 2, 3, 3),
        },
        opset=18,
    )
    graph, _ = rewrite(model)
    assert kinds(graph) == ["Conv", "Conv", "Add"]


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ({"mode": "reflect"}, "Pad 'pad' has mode 'reflect'; a Conv pads only with zeros"),
        ({"value": 1.0}, "Pad 'pad' pads with 1; a Conv pads only with zeros"),
    ],
)
def test_a_pad_a_conv_cannot_express_stays_and_says_why(extra: dict, reason: str) -> None:
    inputs = ["x", "pads", "value"] if "value" in extra else ["x", "pads"]
    weights = {"pads": np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "w": rand(2, 2, 3, 3)}
    if "value" in extra:
        weights["value"] = np.array(extra.pop("value"), np.float32)
    model = make_model(
        [
            helper.make_node("Pad", inputs, ["p"], name="pad", **extra),
            helper.make_node("Conv", ["p", "w"], ["y"], name="conv"),
        ],
        {"x": (1, 2, 5, 5)},
        ["y"],
        weights,
    )
    graph, ctx = rewrite(model)
    assert kinds(graph) == ["Pad", "Conv"]
    assert misses(ctx) == [f"fold-pad-into-conv 'pad': {reason}"]


# --------------------------------------------------------------------------- push-transpose


def _nhwc_conv(name: str, x: str, y: str) -> list[onnx.NodeProto]:
    """A Conv as tf2onnx leaves it in an NHWC model: between a Transpose to NCHW and back."""
    return [
        helper.make_node("Transpose", [x], [f"{name}_in"], name=f"{name}__in", perm=[0, 3, 1, 2]),
        helper.make_node(
            "Conv", [f"{name}_in", f"{name}_w"], [f"{name}_c"], name=name, pads=[1, 1, 1, 1]
        ),
        helper.make_node("Transpose", [f"{name}_c"], [y], name=f"{name}__out", perm=[0, 2, 3, 1]),
    ]


def test_an_nhwc_block_loses_its_transposes_and_keeps_its_values() -> None:
    """Two NHWC Convs with a per-channel Mul/Add, Clip, PRelu, a residual Add, a squeeze-excite
    ReduceMean over NHWC axes [1, 2], a Concat on the channel axis and a final GlobalAveragePool
    of an NHWC map: only the Transposes at the model's input and output stay."""
    channels = 4
    nodes = [
        *_nhwc_conv("conv0", "x", "a"),
        helper.make_node("Mul", ["a", "scale"], ["m"], name="bn_mul"),
        helper.make_node("Add", ["m", "shift"], ["b"], name="bn_add"),
        helper.make_node("Clip", ["b", "lo", "hi"], ["r"], name="relu6"),
        *_nhwc_conv("conv1", "r", "d"),
        helper.make_node("PRelu", ["d", "slope"], ["p"], name="prelu"),
        helper.make_node("Add", ["p", "r"], ["res"], name="residual"),
        helper.make_node("ReduceMean", ["res"], ["se"], name="se_mean", axes=[1, 2], keepdims=1),
        helper.make_node("Mul", ["res", "se"], ["gated"], name="se_mul"),
        helper.make_node("Concat", ["gated", "res"], ["cat"], name="cat", axis=3),
        helper.make_node("Transpose", ["cat"], ["cat_nchw"], name="to_nchw", perm=[0, 3, 1, 2]),
        helper.make_node("GlobalAveragePool", ["cat_nchw"], ["y"], name="gap"),
    ]
    weights = {
        "conv0_w": rand(channels, 3, 3, 3, seed=1),
        "conv1_w": rand(channels, channels, 3, 3, seed=2),
        "scale": rand(channels, seed=3),
        "shift": rand(channels, seed=4),
        "lo": np.array(0, np.float32),
        "hi": np.array(6, np.float32),
        "slope": rand(1, 1, channels, seed=5),
    }
    graph, _ = rewrite(make_model(nodes, {"x": (1, 6, 6, 3)}, ["y"], weights))
    assert Counter(kinds(graph))["Transpose"] == 1  # the model's own input Transpose
    assert graph.ops[0].op_type == "Transpose"
    assert "GlobalAveragePool" in kinds(graph)  # the NHWC squeeze-excite mean became a GAP


def test_a_reduction_without_keepdims_and_a_fanned_out_transpose_keep_their_values() -> None:
    """A Transpose read by two Relus that both reach graph outputs moves past both (it turns
    NCHW into NHWC); a ReduceMax over NHWC axes [2, 3] without keepdims leaves the kept axes
    [N, H] of the source, in order."""
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], name="to_nhwc", perm=[0, 2, 3, 1]),
        helper.make_node("Relu", ["t"], ["y"], name="relu"),
        helper.make_node("Sigmoid", ["t"], ["z"], name="sigmoid"),
        helper.make_node("ReduceMax", ["t"], ["w"], name="max", axes=[2, 3], keepdims=0),
    ]
    graph, _ = rewrite(make_model(nodes, {"x": (1, 3, 4, 5)}, ["y", "z", "w"]))
    assert kinds(graph) == ["Relu", "Transpose", "Sigmoid", "Transpose", "ReduceMax"]
    assert graph.ops[-1].inputs[0] is graph.inputs[0]


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
def test_an_nhwc_pad_between_transposes_pads_the_nchw_map(mode: str) -> None:
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], name="to_nhwc", perm=[0, 2, 3, 1]),
        helper.make_node("Pad", ["t", "pads"], ["p"], name="pad", mode=mode),
        helper.make_node("Transpose", ["p"], ["y"], name="to_nchw", perm=[0, 3, 1, 2]),
    ]
    pads = np.array([0, 1, 2, 0, 0, 2, 1, 0], np.int64)
    graph, _ = rewrite(make_model(nodes, {"x": (1, 3, 4, 5)}, ["y"], {"pads": pads}))
    assert kinds(graph) == ["Pad"]


# -------------------------------------------------------------- reshape chains and squeezes


def test_a_keras_squeeze_excite_and_head_keep_their_values_without_their_reshapes() -> None:
    """GlobalAveragePool → Squeeze → Reshape back → 1×1 Conv (the pair goes), and the head's
    GlobalAveragePool → Squeeze → MatMul + Add (the Squeeze is a Flatten before a Gemm)."""
    nodes = [
        helper.make_node("GlobalAveragePool", ["x"], ["g"], name="se_pool"),
        helper.make_node("Squeeze", ["g", "axes"], ["s"], name="se_squeeze"),
        helper.make_node("Reshape", ["s", "back"], ["r"], name="se_reshape"),
        helper.make_node("Conv", ["r", "w"], ["c"], name="se_reduce"),
        helper.make_node("Mul", ["x", "c"], ["gated"], name="se_mul"),
        helper.make_node("GlobalAveragePool", ["gated"], ["h"], name="head_pool"),
        helper.make_node("Squeeze", ["h", "axes"], ["flat"], name="head_squeeze"),
        helper.make_node("MatMul", ["flat", "dense"], ["mm"], name="head"),
        helper.make_node("Add", ["mm", "bias"], ["y"], name="head_bias"),
    ]
    weights = {
        "axes": np.array([2, 3], np.int64),
        "back": np.array([-1, 4, 1, 1], np.int64),
        "w": rand(4, 4, 1, 1, seed=1),
        "dense": rand(4, 3, seed=2),
        "bias": rand(3, seed=3),
    }
    graph, _ = rewrite(make_model(nodes, {"x": (1, 4, 5, 5)}, ["y"], weights))
    assert kinds(graph) == [
        "GlobalAveragePool",
        "Conv",
        "Mul",
        "GlobalAveragePool",
        "Flatten",
        "Gemm",
    ]


# ---------------------------------------------------------------------- channel-pad-to-conv


def test_a_zero_channel_pad_before_an_add_becomes_a_1x1_conv_with_the_same_values() -> None:
    nodes = [
        helper.make_node("Pad", ["x", "pads"], ["p"], name="channel_padding"),
        helper.make_node("Add", ["branch", "p"], ["y"], name="add"),
    ]
    pads = np.array([0, 1, 0, 0, 0, 2, 0, 0], np.int64)
    model = make_model(nodes, {"x": (1, 3, 4, 4), "branch": (1, 6, 4, 4)}, ["y"], {"pads": pads})
    graph, _ = rewrite(model)
    assert kinds(graph) == ["Conv", "Add"]


# ------------------------------------------------------------------------------ all together


def test_a_block_using_every_rewrite_becomes_akida_shaped_layers() -> None:
    model = make_model(
        [
            helper.make_node("Pad", ["x", "pads"], ["p"], name="pad"),
            helper.make_node("Conv", ["p", "w"], ["c"], name="dw", group=3, strides=[2, 2]),
            bn("c", "n"),
            helper.make_node("Relu", ["n"], ["r"], name="relu"),
            helper.make_node(
                "Resize",
                ["r", "", "scales"],
                ["y"],
                name="up",
                mode="nearest",
                coordinate_transformation_mode="asymmetric",
                nearest_mode="floor",
            ),
        ],
        {"x": (1, 3, 8, 8)},
        ["y"],
        {
            "pads": np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64),
            "w": rand(3, 1, 4, 4),
            "scales": np.array([1, 1, 2, 2], np.float32),
            **bn_params(3),
        },
    )
    graph, ctx = rewrite(model)
    assert kinds(graph) == ["Conv", "Conv", "Relu", "ConvTranspose"]
    assert graph.ops[0].origin == ("dw", "bn", "pad")
    assert misses(ctx) == []


# ---------------------------------------------------------- the idioms canonicalize normalizes


IDIOMS = {
    "matmul-add-to-gemm": (
        [
            helper.make_node("MatMul", ["x", "w"], ["mm"], name="fc"),
            helper.make_node("Add", ["bias", "mm"], ["y"], name="fc_bias"),
        ],
        (2, 8),
        {"w": rand(8, 5), "bias": rand(1, 5, seed=1)},
        ["Gemm"],
    ),
    "reshape-to-flatten": (
        [helper.make_node("Reshape", ["x", "shape"], ["y"], name="reshape")],
        (1, 2, 3, 4),
        {"shape": np.array([1, -1], np.int64)},
        ["Flatten"],
    ),
    "reduce-mean-to-gap": (
        [helper.make_node("ReduceMean", ["x"], ["y"], name="mean", axes=[-1, -2], keepdims=0)],
        (1, 2, 3, 4),
        {},
        ["GlobalAveragePool", "Flatten"],
    ),
    "average-pool-to-gap": (
        [helper.make_node("AveragePool", ["x"], ["y"], name="pool", kernel_shape=[3, 4])],
        (1, 2, 3, 4),
        {},
        ["GlobalAveragePool"],
    ),
}


@pytest.mark.parametrize("rule", sorted(IDIOMS))
def test_the_idioms_canonicalize_normalizes_keep_their_values(rule: str) -> None:
    nodes, x_shape, weights, expected = IDIOMS[rule]
    graph, _ = rewrite(make_model(nodes, {"x": x_shape}, ["y"], weights))
    assert kinds(graph) == expected
