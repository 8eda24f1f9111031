"""`HybridSession` looks like `onnxruntime.InferenceSession`: type strings, providers, model
metadata, session options, and every onnxruntime argument passed on to its CPU sessions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from models import conv_net
from onnx import TensorProto, helper

from akidac.runtime.session import TRANSPOSE_OPTIMIZERS, HybridSession, ModelMetadata

TYPES = {
    TensorProto.FLOAT: "tensor(float)",
    TensorProto.DOUBLE: "tensor(double)",
    TensorProto.INT64: "tensor(int64)",
    TensorProto.INT32: "tensor(int32)",
    TensorProto.INT8: "tensor(int8)",
    TensorProto.UINT8: "tensor(uint8)",
    TensorProto.FLOAT16: "tensor(float16)",
    TensorProto.BOOL: "tensor(bool)",
}


def identity_model() -> onnx.ModelProto:
    """One Identity per element type, input `x_<type>` to output `y_<type>`."""
    names = {elem: TensorProto.DataType.Name(elem).lower() for elem in TYPES}
    graph = helper.make_graph(
        [helper.make_node("Identity", [f"x_{n}"], [f"y_{n}"]) for n in names.values()],
        "identities",
        [helper.make_tensor_value_info(f"x_{n}", e, ["N", 2]) for e, n in names.items()],
        [helper.make_tensor_value_info(f"y_{n}", e, ["N", 2]) for e, n in names.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    return model


def described(infos: list[Any]) -> list[tuple[str, list[Any], str]]:
    return [(i.name, list(i.shape), i.type) for i in infos]


def test_input_and_output_types_are_spelled_like_onnxruntime_for_a_float_model() -> None:
    model = conv_net().SerializeToString()
    reference = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    session = HybridSession(model)
    assert described(session.get_inputs()) == described(reference.get_inputs())
    assert described(session.get_outputs()) == described(reference.get_outputs())
    assert session.get_inputs()[0].type == "tensor(float)"


def test_every_element_type_is_spelled_like_onnxruntime() -> None:
    model = identity_model().SerializeToString()
    reference = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    session = HybridSession(model)
    assert described(session.get_inputs()) == described(reference.get_inputs())
    assert described(session.get_outputs()) == described(reference.get_outputs())
    assert sorted(i.type for i in session.get_inputs()) == sorted(TYPES.values())


def test_providers_and_session_options_are_those_of_the_cpu_sessions(
    hybrid: onnx.ModelProto,
) -> None:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = HybridSession(hybrid, options, providers=["CPUExecutionProvider"])
    assert session.get_providers() == ["CPUExecutionProvider"]
    assert isinstance(session.get_session_options(), ort.SessionOptions)
    assert session.get_session_options().intra_op_num_threads == 1


def test_modelmeta_describes_the_hybrid_model(hybrid: onnx.ModelProto) -> None:
    meta = HybridSession(hybrid).get_modelmeta()
    assert meta.producer_name == "akidac"
    assert meta.graph_name == hybrid.graph.name
    assert meta.version == hybrid.model_version
    assert meta.domain == hybrid.domain
    assert meta.description == hybrid.doc_string
    assert meta.custom_metadata_map == {p.key: p.value for p in hybrid.metadata_props}
    assert "akidac.regions" in meta.custom_metadata_map


def test_a_model_that_is_only_an_akida_op_has_modelmeta_and_providers_too(
    hybrid: onnx.ModelProto,
) -> None:
    value_types = {v.name: v for v in hybrid.graph.value_info}
    node = next(n for n in hybrid.graph.node if n.op_type == "AkidaOp")
    graph = helper.make_graph(
        [node], "only_akida", [value_types[node.input[0]]], [value_types[node.output[0]]]
    )
    model = helper.make_model(graph, opset_imports=list(hybrid.opset_import))
    model.ir_version = hybrid.ir_version
    model.producer_name = "akidac"
    entry = model.metadata_props.add()
    entry.key, entry.value = "note", "text"
    session = HybridSession(model)
    meta = session.get_modelmeta()
    assert meta == ModelMetadata("akidac", "only_akida", "", "", "", 0, {"note": "text"})
    assert session.get_providers() == ["CPUExecutionProvider"]
    assert isinstance(session.get_session_options(), ort.SessionOptions)
    (y,) = session.run(None, {node.input[0]: np.zeros((1, 32, 32, 3), np.uint8)})
    assert y.shape == (1, 10) and y.dtype == np.int32


def test_provider_options_and_keyword_arguments_reach_every_onnxruntime_session(
    hybrid: onnx.ModelProto, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[dict[str, Any]] = []
    real = ort.InferenceSession

    def recording(model: bytes, options: Any = None, **kwargs: Any) -> ort.InferenceSession:
        calls.append(kwargs)
        return real(model, options, **kwargs)

    monkeypatch.setattr(ort, "InferenceSession", recording)
    session = HybridSession(
        hybrid,
        providers=["CPUExecutionProvider"],
        provider_options=[{}],
        disabled_optimizers=["ConstantFolding"],
    )
    assert len(calls) == 2
    for kwargs in calls:
        assert kwargs["providers"] == ["CPUExecutionProvider"]
        assert kwargs["provider_options"] == [{}]
        # the caller's list, plus the transpose optimizer in parts with a QuantizeLinear
        assert kwargs["disabled_optimizers"][0] == "ConstantFolding"
        assert set(kwargs["disabled_optimizers"][1:]) <= set(TRANSPOSE_OPTIMIZERS)
    (y,) = session.run(None, {"input": np.zeros((1, 3, 32, 32), np.float32)})
    assert y.shape == (1, 10)


def test_a_path_loads_like_the_proto(hybrid_path: Path) -> None:
    assert HybridSession(hybrid_path).get_modelmeta().producer_name == "akidac"
