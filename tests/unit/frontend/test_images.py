"""Image folders as calibration samples (`akidac.frontend.images`): decoding through Pillow,
channels, resizing, normalising, and the limits that refuse a bad or hostile file."""

from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from models.files import encode_png, image_folder, lying_npy, peak_bytes

from akidac.errors import UsageError
from akidac.frontend.images import load_image_samples, read_image, resize_image


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


def test_an_image_folder_loads_sorted_resized_and_normalised(tmp_path: Path) -> None:
    image_folder(tmp_path)
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
    image_folder(tmp_path)
    with pytest.raises(UsageError, match=message):
        load_image_samples(tmp_path, (8, 8), mean, std)  # type: ignore[arg-type]
    assert load_image_samples(tmp_path, (8, 8), (0.5,), (0.25,)).shape == (4, 3, 8, 8)


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
    assert peak_bytes(lambda: read_image(bomb)) < 10 << 20
    # within the pixel limit, the inflated data is still capped at what the image holds
    small = tmp_path / "small.png"
    small.write_bytes(_png_bomb(64, 64))
    assert read_image(small)[0].shape == (64, 64, 3)
    pgm = tmp_path / "bomb.pgm"
    pgm.write_bytes(b"P5 100000 100000 255\n" + b"\0" * 100)
    with pytest.raises(UsageError, match="pixels"):
        read_image(pgm)
    npy = tmp_path / "bomb.npy"
    npy.write_bytes(lying_npy((100000, 100000)))
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
