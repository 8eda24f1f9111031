"""The frontend reads paths, bytes and ModelProtos, external weights, opsets 11 to 21, and
unsorted (but acyclic) graphs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from models import conv_net, tiny_conv_model

from akidac.errors import UnsupportedModelError
from akidac.frontend import import_model


def test_weights_stored_as_external_data_are_loaded_from_beside_the_model(
    tmp_path: Path,
) -> None:
    model = conv_net()
    name = model.graph.initializer[0].name
    expected = onnx.numpy_helper.to_array(model.graph.initializer[0])
    path = tmp_path / "model.onnx"
    onnx.save_model(
        model,
        path,
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="weights.bin",
        size_threshold=0,
    )
    assert (tmp_path / "weights.bin").stat().st_size > 10_000
    graph = import_model(path)
    np.testing.assert_array_equal(graph.constants[name].const, expected)


def test_a_path_bytes_and_a_model_proto_import_to_the_same_graph(tmp_path: Path) -> None:
    from akidac.ir.printer import print_graph

    model = tiny_conv_model()
    path = tmp_path / "tiny.onnx"
    onnx.save(model, path)
    texts = {
        print_graph(import_model(source), elide_weights=False)
        for source in (path, str(path), path.read_bytes(), model)
    }
    assert len(texts) == 1


@pytest.mark.parametrize("opset", [11, 13, 17, 21])
def test_opsets_11_to_21_are_accepted(opset: int) -> None:
    graph = import_model(tiny_conv_model(opset=opset))
    assert graph.opset_imports[""] == opset


@pytest.mark.parametrize("opset", [10, 22])
def test_opsets_outside_11_to_21_are_refused_with_exit_code_4(opset: int) -> None:
    with pytest.raises(UnsupportedModelError, match=f"opset {opset}") as caught:
        import_model(tiny_conv_model(opset=opset))
    assert caught.value.exit_code == 4


def test_an_unsorted_acyclic_graph_is_sorted_on_import() -> None:
    model = tiny_conv_model()
    nodes = list(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend(reversed(nodes))
    graph = import_model(model)
    assert [op.op_type for op in graph.ops] == ["Conv", "Relu", "Softmax"]
