"""Whole-model compile and run: the hybrid model is valid ONNX, deterministic, and faithful."""

from __future__ import annotations

from pathlib import Path

import onnx
import onnxruntime as ort
import pytest
from models import conv_net, tiny_conv_model
from models.agreement import assert_hardware_model_equals_reference

from akidac.api import compile_model
from akidac.backends.akida.akida_node import AKIDA_DOMAIN, is_akida_node
from akidac.demo import smooth_images
from akidac.metrics import cosine
from akidac.passes import CompileOptions, VerifyInstrument
from akidac.runtime.session import HybridSession


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("compiled")
    float_path, hybrid_path = folder / "conv_net.onnx", folder / "hybrid.onnx"
    onnx.save(conv_net(), float_path)
    compile_model(
        float_path,
        hybrid_path,
        instruments=[VerifyInstrument()],
        options=CompileOptions(samples={"input": smooth_images(64, seed=1)}, num_samples=64),
    )
    return float_path, hybrid_path


def test_the_hybrid_model_passes_the_onnx_checker_with_one_akida_op(compiled) -> None:
    model = onnx.load(compiled[1])
    onnx.checker.check_model(model)
    akida_nodes = [n for n in model.graph.node if is_akida_node(n)]
    assert len(akida_nodes) == 1
    assert {o.domain for o in model.opset_import} >= {"", AKIDA_DOMAIN}
    cpu_types = sorted(n.op_type for n in model.graph.node if not is_akida_node(n))
    assert cpu_types == ["DequantizeLinear", "QuantizeLinear", "Softmax", "Transpose"]


def test_the_hybrid_model_stays_faithful_to_the_float_model(compiled) -> None:
    session = HybridSession(compiled[1])
    reference_session = ort.InferenceSession(str(compiled[0]), providers=["CPUExecutionProvider"])
    held_out = smooth_images(8, seed=2)
    for i in range(len(held_out)):
        feed = {"input": held_out[i : i + 1]}
        (hybrid,) = session.run(None, feed)
        (expected,) = reference_session.run(None, feed)
        assert hybrid.shape == expected.shape == (1, 10)
        assert cosine(hybrid, expected) >= 0.99


def test_the_hardware_model_equals_the_reference_interpreter_on_the_compiled_program(
    compiled,
) -> None:
    feeds = {"input": smooth_images(1, seed=3)}
    assert assert_hardware_model_equals_reference(compiled[1], feeds) == 1


def test_compiling_twice_gives_byte_identical_models(tmp_path: Path) -> None:
    first, second = tmp_path / "a.onnx", tmp_path / "b.onnx"
    compile_model(conv_net(), first, options=CompileOptions(num_samples=4))
    compile_model(conv_net(), second, options=CompileOptions(num_samples=4))
    assert first.read_bytes() == second.read_bytes()


def test_a_dynamic_batch_compiles_with_batch_one_and_a_note() -> None:
    result = compile_model(tiny_conv_model(batch="N"), options=CompileOptions(num_samples=2))
    notes = [d for d in result.diagnostics.items if d.code == "AK-DYNAMIC-BATCH"]
    assert notes and "using 1" in notes[0].message
    assert result.report["summary"]["nodes_on_akida"] == 2
