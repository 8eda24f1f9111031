"""Typed reads of attributes: the right Python type, the declared default, or a clear error."""

from __future__ import annotations

import numpy as np
import pytest

from akidac.ir.akida_dialect import akida_int, akida_ints, akida_optional_float, akida_str
from akidac.ir.attributes import AttributeTypeError, AttrValue, DenseAttr, TypedList, pair, quad
from akidac.ir.graph import Graph, Op
from akidac.ir.types import TensorType


def _op(kind: str, **attrs: AttrValue) -> Op:
    graph = Graph()
    x = graph.add_input("x", TensorType("f32", (1, 3, 8, 8)))
    w = graph.add_constant("w", np.zeros((4, 3, 3, 3), np.float32))
    return graph.make_op(
        kind, [x, w], [TensorType("f32", (1, 4, 8, 8))], attrs=dict(attrs), origin=["conv"]
    )


def test_onnx_attributes_read_as_their_python_types_or_the_default() -> None:
    op = _op("onnx.Conv", group=1, strides=[2, 2], auto_pad="NOTSET", alpha=0.5)
    assert op.int_attr("group") == 1
    assert op.ints_attr("strides") == [2, 2]
    assert op.ints_attr("dilations", [1, 1]) == [1, 1]
    assert op.str_attr("auto_pad") == "NOTSET"
    assert op.float_attr("alpha") == 0.5 and op.float_attr("beta", 1.0) == 1.0
    assert op.optional_float_attr("beta") is None


def test_a_missing_attribute_without_default_or_a_wrong_type_names_the_attribute() -> None:
    op = _op("onnx.Conv", strides=[2, 2], auto_pad="NOTSET", value=DenseAttr(np.ones(2)))
    with pytest.raises(AttributeTypeError, match=r"'group' of onnx\.Conv 'conv' is missing"):
        op.int_attr("group")
    with pytest.raises(AttributeTypeError, match=r"'auto_pad' of onnx\.Conv 'conv' is 'NOTSET'"):
        op.int_attr("auto_pad")
    with pytest.raises(AttributeTypeError, match="not a list of integers"):
        op.ints_attr("auto_pad")
    np.testing.assert_array_equal(op.dense_attr("value"), np.ones(2))


def test_empty_typed_lists_read_as_empty_lists() -> None:
    op = _op("onnx.Conv", pads=TypedList("ints"), scales=TypedList("floats"))
    assert op.ints_attr("pads") == [] and op.floats_attr("scales") == []


def test_akida_reads_fall_back_to_the_declared_default() -> None:
    op = _op("akida.conv2d", kernel=[3, 3], act="relu")
    assert akida_ints(op, "kernel") == [3, 3]
    assert akida_ints(op, "stride") == [1, 1]  # declared default
    assert akida_str(op, "pad") == "same" and akida_str(op, "act") == "relu"
    assert akida_int(op, "wbits") == 8
    assert akida_optional_float(op, "act_max") is None


def test_pair_and_quad_check_their_length() -> None:
    assert pair([3, 5]) == (3, 5) and quad([0, 1, 2, 3]) == (0, 1, 2, 3)
    with pytest.raises(AttributeTypeError, match="not two integers"):
        pair([1, 2, 3])
    with pytest.raises(AttributeTypeError, match="not four integers"):
        quad([1, 2])


def test_dims_is_the_static_shape_and_refuses_an_unknown_dimension() -> None:
    assert TensorType("f32", (1, 3, 8, 8)).dims == (1, 3, 8, 8)
    with pytest.raises(ValueError, match="is not static"):
        _ = TensorType("f32", (None, 3)).dims
