"""Calibration: observers, sample arrays and held-out feeds, fidelity, compiles on image folders.

Decoding image folders is tested in tests/unit/frontend/test_images.py."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
from models import conv_net, tiny_conv_model
from models.files import encode_png, image_folder, lying_npy, peak_bytes
from onnx import TensorProto, helper

from akidac.api import compile_model
from akidac.errors import UnsupportedModelError, UsageError
from akidac.frontend import import_model
from akidac.frontend.sample_files import load_sample_file
from akidac.frontend.samples import (
    calibration_samples,
    check_samples,
    fidelity_feeds,
    sample_set,
    validate_sample_options,
)
from akidac.passes import CompileOptions
from akidac.passes.calibration import (
    abs_range,
    activation_range,
    min_max_range,
    mse_range,
    mse_weight_peaks,
)
from akidac.passes.fixed_point import quantize_weights
from akidac.runtime.compare import measure_fidelity
from akidac.runtime.session import HybridSession


def test_a_model_calibrates_on_an_image_folder(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    for i in range(6):
        image = rng.integers(0, 256, (10, 10, 3)).astype(np.uint8)
        (tmp_path / f"{i}.png").write_bytes(encode_png(image, [1, 2]))
    options = CompileOptions(samples_dir=str(tmp_path), num_samples=4, sample_mean=(0.5, 0.5, 0.5))
    result = compile_model(tiny_conv_model(), options=options)
    calibration = result.analyses["calibration"]
    assert calibration["samples"] == 4 and not calibration["random"]
    assert calibration["source"] == f"directory {tmp_path}"
    assert not [d for d in result.diagnostics.items if d.code == "AK-CALIBRATION-RANDOM"]
    feeds, note = fidelity_feeds(result.graph, options, count=8)
    assert len(feeds) == 2 and "2 held-out samples" in note


def test_observers_give_percentile_min_max_and_least_squares_ranges() -> None:
    data = [np.concatenate([np.linspace(-1, 1, 9999), [50.0]])]
    assert abs_range(data, 100) == 50.0
    assert abs_range(data, 99.9) < 2.0
    assert min_max_range([np.array([1.0, 3.0])], 100) == (0.0, 3.0)
    clip = mse_range(data, 4, signed=True)
    assert clip < 10.0  # one outlier does not stretch 15 levels over 50
    assert activation_range(data, "auto", 99.99, 4, True) == clip
    assert activation_range(data, "auto", 100.0, 8, True) == 50.0


def test_the_mse_weight_observer_never_does_worse_than_max_abs() -> None:
    weights = np.random.default_rng(2).standard_t(3, (16, 8, 3, 3))
    peaks = mse_weight_peaks(weights, 4, axis=0)
    q_mse, s_mse = quantize_weights(weights, 4, 0, peaks)
    q_max, s_max = quantize_weights(weights, 4, 0)
    err_mse = ((q_mse * s_mse[:, None, None, None] - weights) ** 2).sum(axis=(1, 2, 3))
    err_max = ((q_max * s_max[:, None, None, None] - weights) ** 2).sum(axis=(1, 2, 3))
    assert (err_mse <= err_max + 1e-12).all() and err_mse.sum() < err_max.sum()


def test_samples_beyond_num_samples_are_held_out_for_fidelity() -> None:
    graph = import_model(tiny_conv_model())
    samples = np.random.default_rng(3).standard_normal((10, 3, 8, 8)).astype(np.float32)
    options = CompileOptions(samples={"x": samples}, num_samples=6)
    sets = sample_set(graph, options, held_out=3)
    assert len(sets.feeds) == 6 and len(sets.held_out) == 3
    np.testing.assert_array_equal(sets.held_out[0]["x"], samples[6:7])
    feeds, note = fidelity_feeds(graph, CompileOptions(samples={"x": samples}, num_samples=10))
    assert len(feeds) == 8 and "no held-out samples" in note
    feeds, note = fidelity_feeds(graph, CompileOptions(num_samples=4), count=3)
    assert len(feeds) == 3 and "random" in note


def test_fidelity_reports_cosine_and_max_error_per_output() -> None:
    model = conv_net()
    rng = np.random.default_rng(4)
    samples = rng.standard_normal((20, 3, 32, 32)).astype(np.float32)
    result = compile_model(
        model, options=CompileOptions(samples={"input": samples}, num_samples=16)
    )
    feeds = [{"input": samples[i : i + 1]} for i in range(16, 20)]
    figures = measure_fidelity(model.SerializeToString(), HybridSession(result.model), feeds)
    (output,) = [o.name for o in model.graph.output]
    assert set(figures) == {output}
    assert figures[output]["cosine"] >= 0.99
    assert 0 < figures[output]["max_abs_error"] < 0.1
    assert figures[output]["samples"] == 4
    same = measure_fidelity(model, HybridSession(model.SerializeToString()), feeds)
    assert same[output]["cosine"] == pytest.approx(1.0) and same[output]["max_abs_error"] == 0.0


# ------------------------------------------------------------------ bad calibration inputs
def _two_input_model() -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["y"], name="add")],
        "two",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, 4]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, 4]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    return model


def _int_input_model() -> onnx.ModelProto:
    graph = helper.make_graph(
        [
            helper.make_node("Cast", ["x"], ["f"], name="cast", to=TensorProto.FLOAT),
            helper.make_node("Relu", ["f"], ["y"], name="relu"),
        ],
        "ints",
        [helper.make_tensor_value_info("x", TensorProto.INT16, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    return model


def test_a_single_npy_array_feeds_the_only_input_of_the_model() -> None:
    graph = import_model(tiny_conv_model())
    samples = np.random.default_rng(5).standard_normal((4, 3, 8, 8)).astype(np.float32)
    sets = sample_set(graph, CompileOptions(samples={"": samples}, num_samples=3), held_out=1)
    assert [list(feed) for feed in sets.feeds] == [["x"]] * 3 and not sets.random
    np.testing.assert_array_equal(sets.held_out[0]["x"], samples[3:4])
    feeds, random = calibration_samples(graph, {"": samples}, 2, 0)
    assert len(feeds) == 2 and not random


def test_a_single_npy_array_for_a_model_with_several_inputs_is_a_usage_error() -> None:
    graph = import_model(_two_input_model())
    with pytest.raises(UsageError, match=r"the model has 2 \(a, b\); pass an .npz"):
        check_samples(graph, {"": np.zeros((2, 4), np.float32)})
    with pytest.raises(UsageError, match=r"no array for input\(s\) b \(arrays given: 'a'\)"):
        check_samples(graph, {"a": np.zeros((2, 4), np.float32)})


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((3, 8, 8), "has shape (3, 8, 8); expected (N, 3, 8, 8)"),
        ((), "has shape (); expected (N, 3, 8, 8)"),
        ((5, 3, 8, 9), "has shape (5, 3, 8, 9); expected (N, 3, 8, 8)"),
        ((5, 1, 3, 8, 8), "has shape (5, 1, 3, 8, 8); expected (N, 3, 8, 8)"),
        ((0, 3, 8, 8), "has shape (0, 3, 8, 8); expected (N, 3, 8, 8) with at least 1 sample"),
    ],
)
def test_a_samples_array_of_the_wrong_shape_is_a_usage_error_naming_both_shapes(
    shape: tuple[int, ...], message: str
) -> None:
    graph = import_model(tiny_conv_model())
    with pytest.raises(UsageError) as caught:
        check_samples(graph, {"": np.zeros(shape, np.float32)})
    assert str(caught.value) == f"AK-USAGE: --samples array for input 'x' {message}"
    assert caught.value.exit_code == 2 and "\n" not in str(caught.value)


def test_a_compile_with_a_wrongly_shaped_samples_array_stops_with_a_usage_error() -> None:
    samples = {"input": np.zeros((3, 32, 32), np.float32)}
    with pytest.raises(UsageError, match=r"has shape \(3, 32, 32\); expected \(N, 3, 32, 32\)"):
        compile_model(conv_net(), options=CompileOptions(samples=samples, num_samples=2))


def test_samples_are_cast_to_the_input_dtype_only_when_no_value_changes() -> None:
    graph = import_model(tiny_conv_model())
    doubles = np.random.default_rng(6).standard_normal((2, 3, 8, 8))
    checked = check_samples(graph, {"x": doubles})
    assert checked["x"].dtype == np.float32
    np.testing.assert_allclose(checked["x"], doubles, rtol=1e-6)
    pixels = np.full((2, 3, 8, 8), 200, np.uint8)
    assert check_samples(graph, {"x": pixels})["x"].dtype == np.float32
    with pytest.raises(UsageError, match="dtype complex128; the input takes float32"):
        check_samples(graph, {"x": doubles.astype(np.complex128)})
    with pytest.raises(UsageError, match="dtype <U1"):
        check_samples(graph, {"x": np.full((2, 3, 8, 8), "a")})
    with pytest.raises(UsageError, match="do not all fit the input's float32"):
        check_samples(graph, {"x": np.full((2, 3, 8, 8), 2**24 + 1, np.int64)})
    ints = import_model(_int_input_model())
    assert check_samples(ints, {"x": np.array([[1, -2, 3, 4]], np.int64)})["x"].dtype == np.int16
    with pytest.raises(UsageError, match="do not all fit the input's int16"):
        check_samples(ints, {"x": np.array([[1, 2, 3, 70000]], np.int64)})
    with pytest.raises(UsageError, match="dtype float32; the input takes int16"):
        check_samples(ints, {"x": np.ones((1, 4), np.float32)})


def test_samples_with_nan_or_inf_are_a_usage_error() -> None:
    graph = import_model(tiny_conv_model())
    samples = np.zeros((2, 3, 8, 8), np.float32)
    samples[1, 0, 0, :2] = [np.nan, np.inf]
    with pytest.raises(UsageError, match="input 'x' holds 2 non-finite value"):
        check_samples(graph, {"x": samples})


def test_an_input_with_a_static_batch_takes_that_many_samples_per_feed() -> None:
    graph = import_model(tiny_conv_model(batch=2))
    samples = np.random.default_rng(7).standard_normal((5, 3, 8, 8)).astype(np.float32)
    sets = sample_set(graph, CompileOptions(samples={"x": samples}, num_samples=1), held_out=4)
    assert len(sets.feeds) == 1 and len(sets.held_out) == 1
    np.testing.assert_array_equal(sets.held_out[0]["x"], samples[2:4])
    with pytest.raises(UsageError, match=r"with N >= the input's batch 2"):
        check_samples(graph, {"x": samples[:1]})


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("num_samples", 0, "num_samples must be an integer >= 1, not 0"),
        ("num_samples", 2.5, "num_samples must be an integer >= 1, not 2.5"),
        ("fidelity_samples", -1, "fidelity_samples must be an integer >= 0, not -1"),
    ],
)
def test_sample_counts_out_of_range_are_usage_errors(key: str, value: object, message: str) -> None:
    options = CompileOptions(**{key: value})  # type: ignore[arg-type]
    with pytest.raises(UsageError, match=message):
        validate_sample_options(options)
    with pytest.raises(UsageError, match=message):
        sample_set(import_model(tiny_conv_model()), options)
    validate_sample_options(CompileOptions(num_samples=1, fidelity_samples=0))


def test_a_compile_with_zero_samples_stops_with_a_usage_error() -> None:
    with pytest.raises(UsageError, match="num_samples must be an integer >= 1"):
        compile_model(tiny_conv_model(), options=CompileOptions(num_samples=0))


def test_a_folder_for_a_model_with_bad_mean_stops_the_compile_with_a_usage_error(
    tmp_path: Path,
) -> None:
    image_folder(tmp_path)
    options = CompileOptions(samples_dir=str(tmp_path), num_samples=2, sample_mean=(0.5, 0.5))
    with pytest.raises(UsageError, match="mean has 2 values"):
        compile_model(tiny_conv_model(), options=options)


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_observers_reject_non_finite_activations_by_name_without_a_runtime_warning(
    bad: float,
) -> None:
    data = [np.array([0.5, bad, bad, bad], np.float32), np.array([2.0], np.float32)]
    calls = [
        lambda: abs_range(data, 100, name="conv1"),
        lambda: abs_range(data, 50, name="conv1"),
        lambda: min_max_range(data, 100, name="conv1"),
        lambda: min_max_range(data, 50, name="conv1"),
        lambda: mse_range(data, 4, True, name="conv1"),
        lambda: activation_range(data, "auto", 99.99, 8, True, name="conv1"),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for call in calls:
            with pytest.raises(
                UnsupportedModelError, match=r"range of 'conv1' is (-?inf|nan)"
            ) as e:
                call()
            assert e.value.code == "AK-QUANT" and e.value.node == "conv1"
        weights = np.ones((2, 3))
        weights[1, 2] = bad
        with pytest.raises(UnsupportedModelError, match="weights of 'fc' hold non-finite"):
            mse_weight_peaks(weights, 4, axis=0, name="fc")


def test_fidelity_figures_of_infinite_outputs_print_no_runtime_warning() -> None:
    from akidac.metrics import cosine

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isnan(cosine(np.array([np.inf, 1.0]), np.array([np.inf, 1.0])))


def test_random_samples_suit_each_input_type() -> None:
    """Floats are standard normal; bool inputs false/true; int64 inputs (a scalar sample rate)
    small non-negative integers, below the table size when they index a Gather."""
    from models.frontend_models import multi_input_model

    graph = import_model(multi_input_model())
    feeds, random = calibration_samples(graph, None, 64, seed=0)
    assert random
    stacked = {name: np.stack([f[name] for f in feeds]) for name in feeds[0]}
    assert stacked["image"].dtype == np.float32 and stacked["image"].shape == (64, 1, 3, 16, 16)
    assert abs(float(stacked["state"].std()) - 1.0) < 0.1
    assert stacked["sr"].dtype == np.int64 and stacked["sr"].shape == (64,)
    assert stacked["sr"].min() >= 0 and stacked["sr"].max() < 10
    assert len(np.unique(stacked["sr"])) > 1
    assert stacked["index"].dtype == np.int64
    assert set(np.unique(stacked["index"])) == {0, 1, 2, 3}  # the table has 4 rows
    assert stacked["flag"].dtype == np.bool_ and set(np.unique(stacked["flag"])) == {False, True}


def test_a_model_with_state_scalar_and_index_inputs_compiles_on_random_samples() -> None:
    from models.frontend_models import multi_input_model

    result = compile_model(multi_input_model(), options=CompileOptions(num_samples=8))
    feeds = {
        "image": np.zeros((1, 3, 16, 16), np.float32),
        "state": np.ones((2, 1, 128), np.float32),
        "sr": np.array(8000, np.int64),
        "index": np.array([2], np.int64),
        "flag": np.array([False]),
    }
    out, state = HybridSession(result.model).run(None, feeds)
    np.testing.assert_array_equal(out, np.zeros((1, 8), np.float32))
    np.testing.assert_allclose(state, np.full((2, 1, 128), 1.8), rtol=1e-5)


# ------------------------------------------------------------------ bounded sample loading


def test_an_npy_whose_header_claims_a_huge_array_is_refused_before_loading(
    tmp_path: Path,
) -> None:
    path = tmp_path / "bomb.npy"
    path.write_bytes(lying_npy((1, 3, 100000, 100000)))
    assert path.stat().st_size < 1000
    with pytest.raises(UsageError, match=r"120,000,000,000 bytes.*AKIDAC_MAX_TENSOR_BYTES") as e:
        load_sample_file(path)
    assert e.value.exit_code == 2
    assert peak_bytes(lambda: load_sample_file(path)) < 10 << 20


def test_a_compressed_npz_declaring_gigabytes_is_refused_before_inflating(tmp_path: Path) -> None:
    import zipfile

    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("x.npy", lying_npy((1000, 3, 1000, 1000)) + b"\0" * (3 << 20))
    assert path.stat().st_size < 100_000
    assert peak_bytes(lambda: load_sample_file(path)) < 10 << 20
    with pytest.raises(UsageError, match="array 'x' declares shape"):
        load_sample_file(path)


def test_declared_shapes_are_checked_against_the_model_before_the_data_is_read(
    tmp_path: Path,
) -> None:
    graph = import_model(tiny_conv_model())
    path = tmp_path / "wrong.npz"
    np.savez(path, x=np.zeros((4, 3, 16, 16), np.float32))
    samples = load_sample_file(path)
    with pytest.raises(UsageError, match=r"has shape \(4, 3, 16, 16\); expected \(N, 3, 8, 8\)"):
        check_samples(graph, samples)
    assert not samples._loaded  # refused on the header alone
    good = tmp_path / "good.npz"
    data = np.random.default_rng(0).standard_normal((5, 3, 8, 8)).astype(np.float32)
    np.savez(good, x=data)
    checked = check_samples(graph, load_sample_file(good))
    np.testing.assert_array_equal(checked["x"], data)
    single = tmp_path / "single.npy"
    np.save(single, data)
    np.testing.assert_array_equal(check_samples(graph, load_sample_file(single))["x"], data)


def test_an_empty_samples_npz_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.npz"
    np.savez(path)
    with pytest.raises(UsageError, match="holds no arrays") as caught:
        load_sample_file(path)
    assert caught.value.exit_code == 2
    with pytest.raises(UsageError, match="--samples holds no arrays"):
        compile_model(tiny_conv_model(), options=CompileOptions(samples={}))
