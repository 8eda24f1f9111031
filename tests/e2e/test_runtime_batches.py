"""Batches: a hybrid model of a float model with a dynamic batch runs any batch size, and a
sample's output in a batch of 4 is bit for bit its output alone.

Programs are compiled for batch 1. When every CPU part is made of per-sample operators the
session runs the whole batch at once (the hardware model takes N samples); otherwise (here a
Reshape to [-1, 2, 5]) it runs one sample at a time and concatenates.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from models.samples import smooth_samples
from models.zoo import ZOO, dynamic_batch
from onnx import helper, numpy_helper

from akidac.api import compile_model
from akidac.backends.hybrid import DYNAMIC_BATCH_KEY
from akidac.errors import UsageError
from akidac.passes import CompileOptions
from akidac.runtime.session import HybridSession


def _compile(model: onnx.ModelProto) -> onnx.ModelProto:
    samples = smooth_samples(model, 8, seed=1)
    result = compile_model(
        model, options=CompileOptions(samples=samples, num_samples=8, fidelity_samples=0)
    )
    # compile_model passes its source model to build_hybrid_model, which records the dynamic
    # batch: no mark_dynamic_batch here, so these tests check the API path
    return result.model


def _with_reshape_head(model: onnx.ModelProto) -> onnx.ModelProto:
    """dynamic_batch with its output reshaped to [-1, 2, 5]: a CPU part that is not provably
    per-sample (the session cannot tell -1 from a batch baked into the shape)."""
    output = model.graph.output[0]
    model.graph.initializer.append(
        numpy_helper.from_array(np.array([-1, 2, 5], np.int64), "head_shape")
    )
    model.graph.node.append(
        helper.make_node("Reshape", [output.name, "head_shape"], ["reshaped"], name="head")
    )
    output.name = "reshaped"
    output.type.tensor_type.shape.dim.add().dim_value = 5
    output.type.tensor_type.shape.dim[1].dim_value = 2
    return model


@pytest.fixture(scope="module")
def batched() -> onnx.ModelProto:
    return _compile(dynamic_batch())


@pytest.fixture(scope="module")
def per_sample() -> onnx.ModelProto:
    return _compile(_with_reshape_head(dynamic_batch()))


def _inputs(count: int) -> np.ndarray:
    return smooth_samples(dynamic_batch(), count, seed=5)["input"]


def _assert_batch_equals_stacked_samples(session: HybridSession, x: np.ndarray) -> None:
    (whole,) = session.run(None, {"input": x})
    alone = [session.run(None, {"input": x[i : i + 1]})[0] for i in range(len(x))]
    assert whole.shape[0] == len(x)
    np.testing.assert_array_equal(whole, np.concatenate(alone))


def test_the_hybrid_model_records_the_dynamic_batch(batched: onnx.ModelProto) -> None:
    metadata = {p.key: p.value for p in batched.metadata_props}
    assert metadata[DYNAMIC_BATCH_KEY] == '{"input": 1}'
    session = HybridSession(batched)
    assert session.get_inputs()[0].shape == ["N", 3, 32, 32]
    assert session.get_outputs()[0].shape[0] == "N"
    onnx.checker.check_model(batched)


def test_a_batch_of_four_runs_whole_and_equals_four_samples_alone(
    batched: onnx.ModelProto,
) -> None:
    session = HybridSession(batched)
    assert session.batched
    _assert_batch_equals_stacked_samples(session, _inputs(4))


def test_a_batch_of_four_runs_per_sample_when_a_cpu_part_is_not_per_sample(
    per_sample: onnx.ModelProto,
) -> None:
    session = HybridSession(per_sample)
    assert not session.batched
    _assert_batch_equals_stacked_samples(session, _inputs(4))
    env = session.run_all({"input": _inputs(3)})
    assert env["reshaped"].shape == (3, 2, 5)


def test_run_dataset_stacks_the_outputs_of_every_feed(batched: onnx.ModelProto) -> None:
    session = HybridSession(batched)
    x = _inputs(5)
    (stacked,) = session.run_dataset({"input": x[i : i + 1]} for i in range(5))
    np.testing.assert_array_equal(stacked, session.run(None, {"input": x})[0])
    with pytest.raises(UsageError, match="no feed"):
        session.run_dataset([])


def test_compile_model_alone_gives_a_dynamic_batch_hybrid_that_runs_a_batch_of_four() -> None:
    """compile_model hands its source model to the hybrid builder, so the compiled model of a
    float model with a dynamic batch records it and takes any batch without mark_dynamic_batch."""
    model = dynamic_batch()
    samples = smooth_samples(model, 4, seed=1)
    result = compile_model(
        model, options=CompileOptions(samples=samples, num_samples=4, fidelity_samples=0)
    )
    assert any(p.key == DYNAMIC_BATCH_KEY for p in result.model.metadata_props)
    (out,) = HybridSession(result.model).run(None, {"input": _inputs(4)})
    assert out.shape[0] == 4


def test_a_model_with_a_fixed_batch_refuses_another_batch() -> None:
    model = dynamic_batch()  # then fixed back to batch 1
    for value in [*model.graph.input, *model.graph.output]:
        dim = value.type.tensor_type.shape.dim[0]
        dim.Clear()
        dim.dim_value = 1
    hybrid = _compile(model)
    assert not any(p.key == DYNAMIC_BATCH_KEY for p in hybrid.metadata_props)
    with pytest.raises(UsageError, match=r"got float32 \[2, 3, 32, 32\]"):
        HybridSession(hybrid).run(None, {"input": _inputs(2)})


@pytest.mark.parametrize(
    "name", ["mobilenet_like", "resnet_like", "unet_decoder", "concat_branches", "audio_1d"]
)
def test_every_layer_type_runs_a_whole_batch_bit_exactly(name: str) -> None:
    """Depthwise, Add across two programs, transposed convs, Concatenate, Dense: each executor
    of the hardware model takes N samples at once and gives each its result alone."""
    model = ZOO[name][0]()
    for value in [*model.graph.input, *model.graph.output]:
        dim = value.type.tensor_type.shape.dim[0]
        dim.Clear()
        dim.dim_param = "batch"
    session = HybridSession(_compile(model))
    assert session.batched
    feed = smooth_samples(model, 3, seed=4)
    whole = session.run(None, feed)
    alone = [session.run(None, {k: v[i : i + 1] for k, v in feed.items()}) for i in range(3)]
    for index, output in enumerate(whole):
        np.testing.assert_array_equal(output, np.concatenate([a[index] for a in alone]))
