"""Boundary tests of every layer-legality rule: just inside and just outside each limit."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from akidac.target import limits as lim
from akidac.target.constraints import (
    LayerCandidate,
    all_constraints,
    check_layer,
    classify_padding,
    constraints_for,
    output_hw,
    pooled_hw,
    same_pads,
    transposed_pads,
)
from akidac.target.reason_codes import REASON_CODES

#: a legal candidate of every kind; each boundary case changes a few fields of one of these.
BASELINES: dict[str, LayerCandidate] = {
    "input_conv2d": LayerCandidate(
        "stem", "Conv", "input_conv2d", in_channels=3, filters=16, kernel=(3, 3), stride=(2, 2),
        input_hw=(224, 224), activation="relu", input_dtype="uint8",
    ),
    "conv2d": LayerCandidate(
        "conv", "Conv", "conv2d", in_channels=32, filters=64, kernel=(3, 3), input_hw=(28, 28),
        activation="relu",
    ),
    "depthwise_conv2d": LayerCandidate(
        "dw", "Conv", "depthwise_conv2d", in_channels=32, filters=32, groups=32, kernel=(3, 3),
        input_hw=(28, 28), activation="relu",
    ),
    "conv2d_transpose": LayerCandidate(
        "up", "ConvTranspose", "conv2d_transpose", in_channels=32, filters=16, kernel=(4, 4),
        stride=(2, 2), input_hw=(14, 14), activation="relu",
    ),
    "depthwise_conv2d_transpose": LayerCandidate(
        "dwup", "Resize", "depthwise_conv2d_transpose", in_channels=16, filters=16, groups=16,
        kernel=(3, 3), stride=(2, 2), input_hw=(14, 14),
    ),
    "dense1d": LayerCandidate(
        "fc", "Gemm", "dense1d", in_channels=1024, filters=10, input_features=1024,
    ),
    "add": LayerCandidate(
        "add", "Add", "add", in_channels=64, filters=64, input_hw=(14, 14), num_inputs=2,
    ),
    "concatenate": LayerCandidate(
        "cat", "Concat", "concatenate", in_channels=32, filters=64, input_hw=(14, 14),
        num_inputs=2, axis=1,
    ),
}  # fmt: skip


def make(baseline: str, /, **changes: Any) -> LayerCandidate:
    """The legal candidate of kind `baseline` with `changes` applied."""
    return dataclasses.replace(BASELINES[baseline], **changes)


def codes(candidate: LayerCandidate) -> list[str]:
    return [v.code for v in check_layer(candidate)]


@pytest.mark.parametrize("kind", lim.KINDS)
def test_every_baseline_candidate_is_legal(kind: str) -> None:
    assert check_layer(BASELINES[kind]) == []


# (kind, changes, codes expected: [] just inside the limit, the broken codes just outside)
BOUNDARIES: list[tuple[str, dict[str, Any], list[str]]] = [
    # kernel sizes
    ("conv2d", {"kernel": (1, 1)}, []),
    ("conv2d", {"kernel": (7, 7)}, []),
    ("conv2d", {"kernel": (9, 9)}, ["AK-KERNEL-SIZE"]),
    ("conv2d", {"kernel": (3, 1)}, ["AK-KERNEL-SIZE"]),
    ("conv2d", {"kernel": (2, 2)}, ["AK-KERNEL-SIZE"]),
    ("depthwise_conv2d", {"kernel": (7, 7)}, []),
    ("depthwise_conv2d", {"kernel": (1, 1)}, ["AK-KERNEL-SIZE"]),
    ("conv2d_transpose", {"kernel": (3, 3)}, []),
    ("conv2d_transpose", {"kernel": (5, 5)}, ["AK-KERNEL-SIZE"]),
    ("depthwise_conv2d_transpose", {"kernel": (2, 2)}, ["AK-KERNEL-SIZE"]),
    ("input_conv2d", {"kernel": (4, 4)}, []),
    ("input_conv2d", {"kernel": (7, 7)}, []),
    ("input_conv2d", {"kernel": (6, 6)}, ["AK-KERNEL-SIZE"]),
    ("input_conv2d", {"kernel": (1, 1)}, ["AK-KERNEL-SIZE"]),
    # strides
    ("conv2d", {"stride": (2, 2)}, []),
    ("conv2d", {"kernel": (1, 1), "stride": (2, 2)}, []),
    ("conv2d", {"stride": (3, 3)}, ["AK-STRIDE"]),
    ("conv2d", {"stride": (1, 2)}, ["AK-STRIDE"]),
    ("conv2d", {"kernel": (5, 5), "stride": (2, 2)}, ["AK-STRIDE"]),
    ("conv2d", {"kernel": (7, 7), "stride": (2, 2)}, ["AK-STRIDE"]),
    ("depthwise_conv2d", {"stride": (2, 2)}, []),
    ("depthwise_conv2d", {"kernel": (5, 5), "stride": (2, 2)}, ["AK-STRIDE"]),
    ("conv2d_transpose", {"stride": (1, 1)}, ["AK-STRIDE"]),
    ("depthwise_conv2d_transpose", {"stride": (3, 3)}, ["AK-STRIDE"]),
    ("input_conv2d", {"stride": (3, 3)}, []),
    ("input_conv2d", {"stride": (4, 4)}, ["AK-STRIDE"]),
    ("input_conv2d", {"kernel": (7, 7), "stride": (6, 6)}, []),
    ("input_conv2d", {"kernel": (7, 7), "stride": (7, 7)}, ["AK-STRIDE"]),
    # padding
    ("conv2d", {"padding": "same_upper", "stride": (2, 2)}, []),
    ("conv2d", {"padding": "same_upper"}, []),  # stride 1, odd kernel: identical to "same"
    ("conv2d", {"padding": "valid"}, ["AK-PADDING"]),
    ("conv2d", {"padding": "valid", "kernel": (1, 1)}, []),  # 1×1 pads nothing either way
    ("conv2d", {"padding": "explicit", "pads": (1, 1, 1, 1)}, []),  # exactly "same"
    ("conv2d", {"padding": "explicit", "pads": (2, 2, 2, 2)}, ["AK-PADDING"]),
    ("conv2d", {"padding": "explicit", "pads": (0, 0, 1, 1), "stride": (2, 2)}, []),
    ("depthwise_conv2d", {"padding": "valid"}, ["AK-PADDING"]),
    ("input_conv2d", {"padding": "same_upper"}, []),
    ("input_conv2d", {"padding": "same_upper", "kernel": (4, 4), "stride": (1, 1)}, ["AK-PADDING"]),
    ("input_conv2d", {"padding": "same_upper", "stride": (3, 3)}, ["AK-PADDING"]),
    ("conv2d_transpose", {"padding": "explicit", "pads": (0, 0, 0, 0)}, ["AK-PADDING"]),
    ("depthwise_conv2d_transpose", {"padding": "valid"}, ["AK-PADDING"]),
    # dilation
    ("conv2d", {"dilation": (2, 2)}, ["AK-DILATION"]),
    ("depthwise_conv2d", {"dilation": (1, 2)}, ["AK-DILATION"]),
    ("input_conv2d", {"dilation": (2, 2)}, ["AK-DILATION"]),
    # groups
    ("conv2d", {"groups": 2}, ["AK-GROUPS"]),
    ("conv2d_transpose", {"groups": 32}, ["AK-GROUPS"]),
    ("depthwise_conv2d", {"groups": 16}, ["AK-GROUPS"]),
    ("depthwise_conv2d", {"filters": 64}, ["AK-GROUPS"]),  # depth multiplier 2
    ("depthwise_conv2d_transpose", {"groups": 1}, ["AK-GROUPS"]),
    # input channels
    ("conv2d", {"kernel": (1, 1), "in_channels": 2048}, []),
    ("conv2d", {"kernel": (1, 1), "in_channels": 2049}, ["AK-CHANNELS"]),
    ("conv2d", {"in_channels": 682}, []),
    ("conv2d", {"in_channels": 683}, ["AK-CHANNELS"]),
    ("conv2d", {"kernel": (5, 5), "in_channels": 204}, []),
    ("conv2d", {"kernel": (5, 5), "in_channels": 205}, ["AK-CHANNELS"]),
    ("conv2d", {"kernel": (7, 7), "in_channels": 73}, []),
    ("conv2d", {"kernel": (7, 7), "in_channels": 74}, ["AK-CHANNELS"]),
    ("conv2d", {"kernel": (3, 3), "in_channels": 2049}, ["AK-CHANNELS", "AK-CHANNELS"]),
    ("conv2d_transpose", {"kernel": (3, 3), "in_channels": 682}, []),
    ("conv2d_transpose", {"kernel": (3, 3), "in_channels": 683}, ["AK-CHANNELS"]),
    ("conv2d_transpose", {"kernel": (4, 4), "in_channels": 2048}, []),
    ("depthwise_conv2d", {"in_channels": 2048, "filters": 2048, "groups": 2048}, []),
    (
        "depthwise_conv2d",
        {"in_channels": 2049, "filters": 2049, "groups": 2049},
        ["AK-CHANNELS", "AK-FILTERS"],
    ),
    ("add", {"in_channels": 2048, "filters": 2048}, []),
    ("add", {"in_channels": 2049, "filters": 2048}, ["AK-CHANNELS"]),
    ("concatenate", {"in_channels": 2049}, ["AK-CHANNELS"]),
    # input-convolution channels and height
    ("input_conv2d", {"in_channels": 1}, []),
    ("input_conv2d", {"in_channels": 2}, ["AK-INPUT-CONV-CHANNELS"]),
    ("input_conv2d", {"in_channels": 4}, ["AK-INPUT-CONV-CHANNELS"]),
    ("input_conv2d", {"input_hw": (5, 224)}, []),
    ("input_conv2d", {"input_hw": (4, 224)}, ["AK-INPUT-CONV-HEIGHT"]),
    ("input_conv2d", {"input_hw": (384, 224)}, []),
    ("input_conv2d", {"input_hw": (385, 224)}, ["AK-INPUT-CONV-HEIGHT"]),
    # filters
    ("conv2d", {"filters": 2048}, []),
    ("conv2d", {"filters": 2049}, ["AK-FILTERS"]),
    ("input_conv2d", {"filters": 512}, []),
    ("input_conv2d", {"filters": 513}, ["AK-FILTERS"]),
    ("dense1d", {"filters": 2048}, []),
    ("dense1d", {"filters": 2049}, ["AK-FILTERS"]),
    ("concatenate", {"filters": 2049}, ["AK-FILTERS"]),
    # dense inputs
    ("dense1d", {"input_features": 2048}, []),
    ("dense1d", {"input_features": 2049}, ["AK-DENSE-INPUTS"]),
    # kinds without pooling
    ("dense1d", {"pool": (2, 2, 2, 2)}, ["AK-POOL-UNSUPPORTED"]),
    ("conv2d_transpose", {"gap": True}, ["AK-POOL-UNSUPPORTED"]),
    ("add", {"gap": True}, ["AK-POOL-UNSUPPORTED"]),
    ("concatenate", {"pool": (2, 2, 2, 2)}, ["AK-POOL-UNSUPPORTED"]),
    # max-pooling size and stride
    ("conv2d", {"pool": (2, 2, 2, 2)}, []),
    ("conv2d", {"pool": (1, 1, 1, 1)}, []),
    ("conv2d", {"pool": (3, 3, 2, 2)}, ["AK-POOL-SIZE"]),
    ("conv2d", {"pool": (2, 1, 1, 1)}, ["AK-POOL-SIZE"]),
    ("conv2d", {"pool": (2, 2, 1, 1)}, []),
    ("conv2d", {"pool": (2, 2, 3, 3)}, ["AK-POOL-STRIDE"]),
    ("conv2d", {"pool": (1, 1, 2, 2)}, ["AK-POOL-STRIDE"]),
    ("conv2d", {"pool": (2, 2, 2, 1)}, ["AK-POOL-STRIDE"]),
    ("depthwise_conv2d", {"pool": (2, 2, 2, 2)}, []),
    ("input_conv2d", {"stride": (1, 1), "pool": (3, 3, 2, 2)}, []),
    ("input_conv2d", {"stride": (1, 1), "pool": (2, 2, 2, 2)}, []),
    ("input_conv2d", {"stride": (1, 1), "pool": (2, 2, 1, 1)}, ["AK-POOL-STRIDE"]),
    ("input_conv2d", {"stride": (1, 1), "pool": (3, 3, 3, 3)}, ["AK-POOL-STRIDE"]),
    ("input_conv2d", {"stride": (1, 1), "pool": (4, 4, 2, 2)}, ["AK-POOL-SIZE"]),
    # pooling combined with stride, activation and GAP
    ("conv2d", {"stride": (2, 2), "pool": (2, 2, 2, 2)}, ["AK-POOL-WITH-STRIDE2"]),
    ("input_conv2d", {"pool": (2, 2, 2, 2)}, ["AK-POOL-WITH-STRIDE2"]),
    ("conv2d", {"activation": "lut:gelu", "pool": (2, 2, 2, 2)}, ["AK-POOL-WITH-LUT"]),
    ("conv2d", {"activation": "lut:gelu"}, []),
    ("conv2d", {"activation": "none", "pool": (2, 2, 2, 2)}, ["AK-POOL-WITHOUT-ACTIVATION"]),
    ("conv2d", {"activation": "relu_max", "pool": (2, 2, 2, 2)}, []),
    ("conv2d", {"input_hw": (16, 16), "pool": (2, 2, 2, 2), "gap": True}, ["AK-POOL-AND-GAP"]),
    # global average pooling size
    ("conv2d", {"input_hw": (12, 12), "gap": True}, []),
    ("conv2d", {"input_hw": (13, 12), "gap": True}, ["AK-GAP-SIZE"]),
    ("conv2d", {"input_hw": (24, 24), "stride": (2, 2), "gap": True}, []),
    ("conv2d", {"input_hw": (25, 24), "stride": (2, 2), "gap": True}, ["AK-GAP-SIZE"]),
    (
        "conv2d",
        {"input_hw": (24, 24), "kernel": (1, 1), "padding": "valid", "gap": True},
        ["AK-GAP-SIZE"],
    ),
    ("input_conv2d", {"input_hw": (24, 24), "gap": True}, []),
    ("input_conv2d", {"input_hw": (25, 24), "gap": True}, ["AK-GAP-SIZE"]),
    # activations
    ("conv2d", {"activation": "sigmoid"}, ["AK-ACTIVATION"]),
    ("conv2d", {"activation": "lut:"}, ["AK-ACTIVATION"]),
    ("dense1d", {"activation": "lut:swish"}, []),
    ("add", {"activation": "relu"}, ["AK-ACTIVATION"]),
    ("concatenate", {"activation": "lut:gelu"}, ["AK-ACTIVATION"]),
    # bits
    ("conv2d", {"weight_bits": 4}, []),
    ("conv2d", {"weight_bits": 2}, ["AK-BITS"]),
    ("conv2d", {"weight_bits": 16}, ["AK-BITS", "AK-BITS"]),  # also wider than the input
    ("conv2d", {"input_bits": 4, "weight_bits": 4}, []),
    ("conv2d", {"input_bits": 4, "weight_bits": 8}, ["AK-BITS"]),
    ("dense1d", {"act_bits": 4}, []),
    ("dense1d", {"act_bits": 2}, ["AK-BITS"]),
    ("add", {"act_bits": 16}, ["AK-BITS"]),
    # input element types
    ("conv2d", {"input_dtype": "uint8"}, []),
    ("conv2d", {"input_dtype": "FLOAT"}, []),  # ONNX spelling of float32
    ("conv2d", {"input_dtype": "double"}, []),
    ("conv2d", {"input_dtype": "int64"}, ["AK-DTYPE"]),
    ("input_conv2d", {"input_dtype": "float32"}, []),
    ("input_conv2d", {"input_dtype": "int8"}, ["AK-DTYPE"]),
    ("add", {"input_dtype": "bool"}, ["AK-DTYPE"]),
    # merges
    ("add", {"num_inputs": 3}, ["AK-MERGE-INPUT-COUNT"]),
    ("concatenate", {"num_inputs": 1}, ["AK-MERGE-INPUT-COUNT"]),
    ("concatenate", {"axis": 2}, ["AK-CONCAT-AXIS"]),
    ("concatenate", {"axis": 0}, ["AK-CONCAT-AXIS"]),
]


@pytest.mark.parametrize(("kind", "changes", "expected"), BOUNDARIES)
def test_each_limit_holds_just_inside_and_breaks_just_outside(
    kind: str, changes: dict[str, Any], expected: list[str]
) -> None:
    assert codes(make(kind, **changes)) == expected


def test_every_rule_is_broken_by_at_least_one_boundary_case() -> None:
    broken = {(kind, code) for kind, changes, found in BOUNDARIES for code in found}
    for rule in all_constraints():
        assert any((kind, rule.code) in broken for kind in rule.kinds), rule.name


def test_check_layer_reports_every_broken_rule_of_a_node_at_once() -> None:
    candidate = make(
        "conv2d",
        node_name="conv3",
        kernel=(9, 9),
        stride=(3, 3),
        dilation=(2, 2),
        groups=2,
        in_channels=4096,
        filters=4096,
        pool=(3, 3, 3, 3),
        activation="lut:gelu",
        gap=True,
        weight_bits=5,
        act_bits=2,
        input_dtype="int64",
    )
    assert codes(candidate) == [
        "AK-KERNEL-SIZE",
        "AK-STRIDE",
        "AK-DILATION",
        "AK-GROUPS",
        "AK-CHANNELS",
        "AK-FILTERS",
        "AK-POOL-SIZE",
        "AK-POOL-STRIDE",
        "AK-POOL-WITH-STRIDE2",
        "AK-POOL-WITH-LUT",
        "AK-POOL-AND-GAP",
        "AK-BITS",
        "AK-BITS",
        "AK-DTYPE",
    ]


def test_a_violation_names_the_node_its_actual_values_and_the_limit() -> None:
    (violation,) = check_layer(make("conv2d", node_name="conv3", kernel=(9, 9)))
    assert str(violation) == (
        "AK-KERNEL-SIZE: Conv 'conv3' has kernel 9×9; Conv2D supports 1×1, 3×3, 5×5 or 7×7"
    )
    assert violation.node == "conv3"
    assert violation.values == {"kernel": [9, 9], "allowed": [1, 3, 5, 7]}
    assert (
        violation.hint == "use a 1×1, 3×3, 5×5 or 7×7 kernel, or accept CPU execution for this node"
    )


def test_the_stride_message_gives_the_strides_allowed_for_that_kernel() -> None:
    (violation,) = check_layer(make("conv2d", node_name="c5", kernel=(5, 5), stride=(2, 2)))
    assert violation.message == (
        "Conv 'c5' has stride 2×2 with a 5×5 kernel; Conv2D supports stride 1 with a 5×5 kernel"
    )


def test_violation_values_serialise_to_json_for_reports() -> None:
    for kind, changes, _ in BOUNDARIES:
        for violation in check_layer(make(kind, **changes)):
            json.dumps(violation.values)


@pytest.mark.parametrize("kind", lim.KINDS)
def test_rule_and_hint_sentences_have_every_placeholder_filled(kind: str) -> None:
    for rule in constraints_for(kind):
        for text in (rule.rule(kind), rule.hint(kind)):
            assert "{" not in text and "}" not in text, (rule.name, text)
            assert "None" not in text, (rule.name, text)


def test_every_code_used_by_a_rule_is_registered() -> None:
    for rule in all_constraints():
        assert rule.code in REASON_CODES


def test_every_layer_reason_code_is_checked_by_some_rule() -> None:
    used = {rule.code for rule in all_constraints()}
    layer_codes = {code for code, rc in REASON_CODES.items() if rc.category == "layer"}
    assert layer_codes == used


def test_constraints_for_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="matmul"):
        constraints_for("matmul")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("kind", "matmul"),
        ("padding", "reflect"),
        ("kernel", (0, 3)),
        ("pool", (2, 2, 0, 2)),
        ("filters", 0),
    ],
)
def test_a_malformed_candidate_is_a_programming_error(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match="conv"):
        make("conv2d", **{field: value})


# --- geometry ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "upper", "expected"),
    [
        (8, 3, 2, False, (0, 1)),  # vectors: conv2d_k3s2_same on 8 rows
        (8, 3, 2, True, (1, 0)),  # vectors: conv2d_k3s2_sameupper
        (7, 3, 2, False, (1, 1)),
        (9, 3, 1, False, (1, 1)),
        (10, 4, 1, False, (1, 2)),
        (8, 1, 2, False, (0, 0)),
    ],
)
def test_same_padding_matches_the_engine(
    size: int, kernel: int, stride: int, upper: bool, expected: tuple[int, int]
) -> None:
    assert same_pads(size, kernel, stride, upper=upper) == expected


def test_transposed_pads_give_exactly_twice_the_input() -> None:
    for kernel in (3, 4):
        begin, end = transposed_pads(kernel)
        height = 7
        assert (height - 1) * 2 + kernel - begin - end == 2 * height


@pytest.mark.parametrize(
    ("kind", "kernel", "stride", "hw", "pads", "expected"),
    [
        ("conv2d", (3, 3), (2, 2), (8, 7), (0, 1, 1, 1), "same"),
        ("conv2d", (3, 3), (2, 2), (8, 7), (1, 1, 0, 1), "same_upper"),
        ("conv2d", (1, 1), (1, 1), (8, 8), (0, 0, 0, 0), "same"),
        ("conv2d", (3, 3), (1, 1), (8, 8), (0, 0, 0, 0), "valid"),
        ("conv2d", (3, 3), (1, 1), (8, 8), (2, 0, 0, 0), "explicit"),
        ("conv2d_transpose", (3, 3), (2, 2), (4, 5), (0, 0, 1, 1), "same"),
        ("depthwise_conv2d_transpose", (4, 4), (2, 2), (4, 4), (1, 1, 1, 1), "same"),
        ("conv2d_transpose", (4, 4), (2, 2), (4, 4), (0, 0, 0, 0), "explicit"),
    ],
)
def test_classify_padding_names_onnx_pads(
    kind: str,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    hw: tuple[int, int],
    pads: tuple[int, int, int, int],
    expected: str,
) -> None:
    assert classify_padding(kind, kernel, stride, hw, pads) == expected


def test_output_sizes_follow_the_layer_geometry() -> None:
    assert output_hw(make("conv2d", input_hw=(8, 7), stride=(2, 2))) == (4, 4)
    assert output_hw(make("conv2d", input_hw=(8, 8), padding="valid")) == (6, 6)
    assert output_hw(make("conv2d_transpose", input_hw=(4, 5))) == (8, 10)
    assert output_hw(make("dense1d")) == (1, 1)
    assert output_hw(make("add")) == (14, 14)
    assert pooled_hw(make("conv2d", input_hw=(9, 9), pool=(2, 2, 2, 2))) == (5, 5)
    assert pooled_hw(make("input_conv2d", stride=(1, 1), input_hw=(9, 9), pool=(3, 3, 2, 2))) == (
        5,
        5,
    )
