"""Calibration: image folders and their decoders, observers, held-out samples, fidelity."""

from __future__ import annotations

import struct
import sys
import warnings
import zlib
from pathlib import Path

import numpy as np
import onnx
import pytest
from models import conv_net, tiny_conv_model
from models.png import encode_png
from onnx import TensorProto, helper

from akidac.api import compile_model
from akidac.errors import UnsupportedModelError, UsageError
from akidac.frontend import import_model
from akidac.frontend.images import (
    load_image_samples,
    read_image,
    resize_image,
)
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


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_png_images_read_back_the_pixels_of_every_scanline_filter(
    tmp_path: Path, channels: int
) -> None:
    image = np.random.default_rng(channels).integers(0, 256, (7, 5, channels)).astype(np.uint8)
    path = tmp_path / "test.png"
    path.write_bytes(encode_png(image, [0, 1, 2, 3, 4]))
    pixels, integer_max = read_image(path)
    np.testing.assert_array_equal(pixels.reshape(image.shape), image)
    assert integer_max == 255


def test_a_16_bit_gray_png_reads_on_a_65535_scale(tmp_path: Path) -> None:
    from PIL import Image

    gray = np.array([[0, 1000], [40000, 65535]], np.uint16)
    Image.fromarray(gray).save(tmp_path / "deep.png")
    pixels, integer_max = read_image(tmp_path / "deep.png")
    np.testing.assert_array_equal(pixels, gray)
    assert integer_max == 65535


def test_netpbm_images_read_in_binary_and_ascii_forms(tmp_path: Path) -> None:
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    (tmp_path / "gray.pgm").write_bytes(b"P5\n# comment\n4 3\n255\n" + gray.tobytes())
    pixels, integer_max = read_image(tmp_path / "gray.pgm")
    np.testing.assert_array_equal(pixels, gray)
    assert integer_max == 255
    rgb = np.arange(18, dtype=np.uint8).reshape(2, 3, 3)
    (tmp_path / "rgb.ppm").write_bytes(b"P6 3 2 255\n" + rgb.tobytes())
    np.testing.assert_array_equal(read_image(tmp_path / "rgb.ppm")[0], rgb)
    (tmp_path / "ascii.pgm").write_bytes(b"P2\n2 1\n15\n3 15\n")
    pixels, integer_max = read_image(tmp_path / "ascii.pgm")
    assert (pixels / integer_max).tolist() == [[0.2, 1.0]]  # 3/15 and 15/15, whatever the scale


def test_area_resizing_averages_boxes_and_nearest_picks_pixels() -> None:
    image = np.arange(16, dtype=np.float64).reshape(4, 4, 1)
    area = resize_image(image, (2, 2), "area")[:, :, 0]
    np.testing.assert_allclose(area, [[2.5, 4.5], [10.5, 12.5]])
    nearest = resize_image(image, (2, 2), "nearest")[:, :, 0]
    np.testing.assert_array_equal(nearest, [[5, 7], [13, 15]])
    up = resize_image(np.array([[[1.0], [2.0]]]), (1, 4), "area")[:, :, 0]
    np.testing.assert_array_equal(up, [[1, 1, 2, 2]])


def _image_folder(folder: Path) -> None:
    rng = np.random.default_rng(0)
    (folder / "a.png").write_bytes(
        encode_png(rng.integers(0, 256, (16, 16, 3)).astype(np.uint8), [4])
    )
    gray = rng.integers(0, 256, (8, 8)).astype(np.uint8)
    (folder / "b.pgm").write_bytes(b"P5 8 8 255\n" + gray.tobytes())
    np.save(folder / "c.npy", rng.integers(0, 256, (8, 8, 3)).astype(np.uint8))
    np.save(folder / "d.npy", np.full((8, 8, 3), 0.25, np.float32))
    (folder / "notes.txt").write_text("not an image")


def test_an_image_folder_loads_sorted_resized_and_normalised(tmp_path: Path) -> None:
    _image_folder(tmp_path)
    images = load_image_samples(tmp_path, (8, 8), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    assert images.shape == (4, 3, 8, 8) and images.dtype == np.float32
    assert images[:3].min() >= -2.0 and images[:3].max() <= 2.0
    np.testing.assert_array_equal(images[1][0], images[1][2])  # gray repeated to RGB
    np.testing.assert_allclose(images[3], 0.25)  # float arrays are taken as they are
    assert load_image_samples(tmp_path, (4, 4), channels=1, limit=2).shape == (2, 1, 4, 4)


def test_an_empty_folder_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="holds no images"):
        load_image_samples(tmp_path, (8, 8))


def test_without_pillow_an_image_folder_names_the_images_extra_and_arrays_still_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    np.save(tmp_path / "a.npy", np.zeros((8, 8, 3), np.uint8))
    monkeypatch.setitem(sys.modules, "PIL", None)  # `import PIL` raises ImportError
    assert load_image_samples(tmp_path, (8, 8)).shape == (1, 3, 8, 8)
    (tmp_path / "photo.png").write_bytes(encode_png(np.zeros((8, 8, 3), np.uint8), [0]))
    with pytest.raises(UsageError, match=r"photo\.png.*pip install 'akidac\[images\]'") as caught:
        load_image_samples(tmp_path, (8, 8))
    assert "\n" not in str(caught.value) and caught.value.exit_code == 2
    with pytest.raises(UsageError, match=r"akidac\[images\]"):
        read_image(tmp_path / "photo.png")


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


def _corrupt_files(folder: Path) -> list[str]:
    """Corrupt image files: truncated NPY, empty/non-zip/damaged NPZ, bad PNG and PGM."""
    np.save(folder / "whole.npy", np.zeros((4, 4), np.uint8))
    (folder / "truncated.npy").write_bytes((folder / "whole.npy").read_bytes()[:-5])  # ValueError
    (folder / "empty.npz").write_bytes(b"")  # EOFError
    (folder / "bad.npz").write_bytes(b"PK\x03\x04 this is not a zip archive")  # BadZipFile
    np.savez_compressed(folder / "whole.npz", a=np.arange(4096, dtype=np.uint8).reshape(64, 64))
    zipped = bytearray((folder / "whole.npz").read_bytes())
    start = zipped.index(b"a.npy") + len(b"a.npy")
    zipped[start + 40 : start + 80] = b"\xff" * 40  # the deflated member: zlib.error
    (folder / "inflate.npz").write_bytes(bytes(zipped))
    png = encode_png(np.zeros((4, 4, 3), np.uint8), [0])
    idat = png.index(b"IDAT") + 4
    (folder / "inflate.png").write_bytes(png[:idat] + b"\xff\xfe" + png[idat + 2 :])  # zlib.error
    (folder / "header.png").write_bytes(png[:8] + struct.pack(">I4s", 3, b"IHDR") + b"abc")
    (folder / "header.pgm").write_bytes(b"P5 4 x 255\n")  # ValueError
    return [
        "truncated.npy",
        "empty.npz",
        "bad.npz",
        "inflate.npz",
        "inflate.png",
        "header.png",
        "header.pgm",
    ]


def test_a_corrupt_npy_npz_png_or_pgm_is_a_usage_error_naming_the_file(tmp_path: Path) -> None:
    for name in _corrupt_files(tmp_path):
        with pytest.raises(UsageError) as caught:
            read_image(tmp_path / name)
        assert f"'{tmp_path / name}'" in str(caught.value), name
        assert "\n" not in str(caught.value)
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "a.npy").write_bytes((tmp_path / "truncated.npy").read_bytes())
    with pytest.raises(UsageError, match=r"cannot read image .*a\.npy"):
        load_image_samples(folder, (4, 4))


def test_npy_and_npz_files_are_read_by_their_content_whatever_their_suffix(tmp_path: Path) -> None:
    np.savez(tmp_path / "zipped.npz", np.full((2, 2), 7, np.uint8))
    (tmp_path / "zipped.npy").write_bytes((tmp_path / "zipped.npz").read_bytes())
    np.save(tmp_path / "plain.npy", np.full((2, 2), 0.5, np.float32))
    (tmp_path / "plain.npz").write_bytes((tmp_path / "plain.npy").read_bytes())
    assert read_image(tmp_path / "zipped.npy")[0].tolist() == [[7, 7], [7, 7]]
    pixels, integer_max = read_image(tmp_path / "plain.npz")
    assert pixels.tolist() == [[0.5, 0.5], [0.5, 0.5]] and integer_max is None


@pytest.mark.parametrize(
    ("mean", "std", "message"),
    [
        ((0.5, 0.5), None, "mean has 2 values; expected 1 or one per channel \\(3\\)"),
        (None, (0.2, 0.2, 0.2, 0.2), "std has 4 values; expected 1 or one per channel \\(3\\)"),
        (None, (0.0,), "std must not be 0"),
        (("a",), None, "mean must be numbers"),
    ],
)
def test_mean_and_std_take_one_value_or_one_per_channel(
    tmp_path: Path, mean: object, std: object, message: str
) -> None:
    _image_folder(tmp_path)
    with pytest.raises(UsageError, match=message):
        load_image_samples(tmp_path, (8, 8), mean, std)  # type: ignore[arg-type]
    assert load_image_samples(tmp_path, (8, 8), (0.5,), (0.25,)).shape == (4, 3, 8, 8)


def test_a_folder_for_a_model_with_bad_mean_stops_the_compile_with_a_usage_error(
    tmp_path: Path,
) -> None:
    _image_folder(tmp_path)
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
def _lying_npy(shape: tuple[int, ...]) -> bytes:
    """An NPY header that declares `shape` float32, followed by a few bytes (issue 10: 897 B)."""
    import io

    stream = io.BytesIO()
    header = {"descr": "<f4", "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(stream, header)
    return stream.getvalue() + b"\0" * 768


def _peak_bytes(action) -> int:
    import tracemalloc

    tracemalloc.start()
    try:
        action()
    except UsageError:
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_an_npy_whose_header_claims_a_huge_array_is_refused_before_loading(
    tmp_path: Path,
) -> None:
    path = tmp_path / "bomb.npy"
    path.write_bytes(_lying_npy((1, 3, 100000, 100000)))
    assert path.stat().st_size < 1000
    with pytest.raises(UsageError, match=r"120,000,000,000 bytes.*AKIDAC_MAX_TENSOR_BYTES") as e:
        load_sample_file(path)
    assert e.value.exit_code == 2
    assert _peak_bytes(lambda: load_sample_file(path)) < 10 << 20


def test_a_compressed_npz_declaring_gigabytes_is_refused_before_inflating(tmp_path: Path) -> None:
    import zipfile

    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("x.npy", _lying_npy((1000, 3, 1000, 1000)) + b"\0" * (3 << 20))
    assert path.stat().st_size < 100_000
    assert _peak_bytes(lambda: load_sample_file(path)) < 10 << 20
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


def _png_bomb(width: int, height: int) -> bytes:
    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = zlib.compress(b"\0" * (32 << 20), 9)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    )


def test_image_decompression_bombs_are_refused_before_decoding(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_bomb(100000, 100000))
    assert bomb.stat().st_size < 100_000
    with pytest.raises(UsageError, match=r"bomb\.png.*10,000,000,000 pixels.*MAX_IMAGE_PIXELS"):
        read_image(bomb)
    assert _peak_bytes(lambda: read_image(bomb)) < 10 << 20
    # within the pixel limit, the inflated data is still capped at what the image holds
    small = tmp_path / "small.png"
    small.write_bytes(_png_bomb(64, 64))
    assert read_image(small)[0].shape == (64, 64, 3)
    pgm = tmp_path / "bomb.pgm"
    pgm.write_bytes(b"P5 100000 100000 255\n" + b"\0" * 100)
    with pytest.raises(UsageError, match="pixels"):
        read_image(pgm)
    npy = tmp_path / "bomb.npy"
    npy.write_bytes(_lying_npy((100000, 100000)))
    with pytest.raises(UsageError, match="pixels"):
        read_image(npy)


def test_the_pixel_limit_is_set_by_an_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = tmp_path / "a.png"
    image.write_bytes(encode_png(np.zeros((8, 8, 3), np.uint8), [0]))
    monkeypatch.setenv("AKIDAC_MAX_IMAGE_PIXELS", "32")
    with pytest.raises(UsageError, match="limit of 32"):
        read_image(image)
    monkeypatch.setenv("AKIDAC_MAX_IMAGE_PIXELS", "64")
    assert read_image(image)[0].shape == (8, 8, 3)
