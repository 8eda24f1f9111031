"""Calibration: image folders and their decoders, observers, held-out samples, fidelity."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from models import conv_net, tiny_conv_model

from akidac.api import compile_model
from akidac.errors import UsageError
from akidac.frontend import import_model
from akidac.passes import CompileOptions
from akidac.passes.calibration import (
    abs_range,
    activation_range,
    decode_netpbm,
    decode_png,
    fidelity_feeds,
    load_image_samples,
    measure_fidelity,
    min_max_range,
    mse_range,
    mse_weight_peaks,
    resize_image,
    sample_set,
)
from akidac.passes.fixed_point import quantize_weights
from akidac.runtime.session import HybridSession


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def encode_png(image: np.ndarray, filters: list[int]) -> bytes:
    """A PNG whose scanline y uses filter `filters[y % len(filters)]` (the test's own encoder)."""
    height, width, channels = image.shape
    color = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    raw = bytearray()
    previous = [0] * (width * channels)
    for y in range(height):
        line = image[y].reshape(-1).astype(int).tolist()
        kind = filters[y % len(filters)]
        out = []
        for x, value in enumerate(line):
            left = line[x - channels] if x >= channels else 0
            up = previous[x]
            upper_left = previous[x - channels] if x >= channels else 0
            predictor = [0, left, up, (left + up) // 2, _paeth(left, up, upper_left)][kind]
            out.append((value - predictor) & 0xFF)
        raw.append(kind)
        raw.extend(out)
        previous = line

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    header = struct.pack(">IIBBBBB", width, height, 8, color, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(raw)))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_the_png_decoder_undoes_every_scanline_filter(channels: int) -> None:
    image = np.random.default_rng(channels).integers(0, 256, (7, 5, channels)).astype(np.uint8)
    decoded = decode_png(encode_png(image, [0, 1, 2, 3, 4]), "test.png")
    np.testing.assert_array_equal(decoded, image)


def test_the_png_decoder_rejects_16_bit_images_with_a_reason() -> None:
    data = bytearray(encode_png(np.zeros((2, 2, 1), np.uint8), [0]))
    data[24] = 16  # bit depth byte of IHDR
    with pytest.raises(ValueError, match="only 8-bit"):
        decode_png(bytes(data))


def test_netpbm_images_decode_in_binary_and_ascii_forms() -> None:
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    pixels, maxval = decode_netpbm(b"P5\n# comment\n4 3\n255\n" + gray.tobytes())
    np.testing.assert_array_equal(pixels, gray)
    assert maxval == 255
    rgb = np.arange(18, dtype=np.uint8).reshape(2, 3, 3)
    pixels, _ = decode_netpbm(b"P6 3 2 255\n" + rgb.tobytes())
    np.testing.assert_array_equal(pixels, rgb)
    pixels, maxval = decode_netpbm(b"P2\n2 1\n15\n3 15\n")
    assert pixels.tolist() == [[3, 15]] and maxval == 15


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


def test_a_jpeg_without_pillow_or_an_empty_folder_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="holds no images"):
        load_image_samples(tmp_path, (8, 8))
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8\xff")
    try:
        import PIL  # noqa: F401
    except ImportError:
        with pytest.raises(UsageError, match="install Pillow"):
            load_image_samples(tmp_path, (8, 8))


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
