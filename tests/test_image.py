"""Tests for brushwork.image. Every image is made inside the test (tmp_path)."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from brushwork import image as bi
from brushwork.errors import BrushworkError


def _rgb_noise(w: int, h: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def _pixels(img: Image.Image) -> np.ndarray:
    return np.asarray(img).astype(np.int64)


@pytest.fixture(autouse=True)
def _no_env_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(bi.MAX_PIXELS_ENV, raising=False)


# ----------------------------------------------------------------------------- pixel limit


def test_max_pixels_limit_default_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    assert bi.max_pixels_limit() == bi.DEFAULT_MAX_PIXELS == 40_000_000
    monkeypatch.setenv(bi.MAX_PIXELS_ENV, "1234")
    assert bi.max_pixels_limit() == 1234


@pytest.mark.parametrize("raw", ["abc", "0", "-5", "1.5"])
def test_max_pixels_limit_invalid_env(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv(bi.MAX_PIXELS_ENV, raw)
    with pytest.raises(BrushworkError, match="BRUSHWORK_MAX_PIXELS is invalid"):
        bi.max_pixels_limit()


def test_pixel_limit_via_argument(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    _rgb_noise(20, 20).save(path)
    assert bi.open_image(path, max_pixels=400).size == (20, 20)
    with pytest.raises(BrushworkError) as info:
        bi.open_image(path, max_pixels=399)
    msg = str(info.value)
    assert msg.startswith(str(path))
    assert "20x20" in msg and "400" in msg and "399" in msg
    assert "--max-pixels" in msg and "BRUSHWORK_MAX_PIXELS" in msg


def test_pixel_limit_via_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "a.png"
    _rgb_noise(20, 20).save(path)
    monkeypatch.setenv(bi.MAX_PIXELS_ENV, "100")
    with pytest.raises(BrushworkError, match="over the limit of 100"):
        bi.open_image(path)
    with pytest.raises(BrushworkError, match="over the limit of 100"):
        bi.load_image(path, size=5)
    # an explicit argument wins over the environment
    assert bi.open_image(path, max_pixels=1000).size == (20, 20)


@pytest.mark.parametrize("bad", [0, -1])
def test_pixel_limit_argument_must_be_positive(tmp_path: Path, bad: int) -> None:
    path = tmp_path / "a.png"
    _rgb_noise(4, 4).save(path)
    with pytest.raises(BrushworkError, match="--max-pixels"):
        bi.open_image(path, max_pixels=bad)


def _png_with_fake_size(path: Path, width: int, height: int) -> None:
    """A tiny PNG whose header claims a huge size (its pixel data cannot match it)."""
    Image.new("L", (1, 1)).save(path)
    data = bytearray(path.read_bytes())
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("width", "height", "fragments"),
    [
        # over brushwork's limit, under Pillow's: the header's size is named
        (8000, 6000, ("8000x6000", "48,000,000", "40,000,000", "--max-pixels")),
        # over Pillow's own bomb limit too: Pillow refuses it when reading the header
        (100_000, 100_000, ("over the limit of 40,000,000", "10000000000 pixels")),
    ],
)
def test_pixel_limit_checked_before_decoding(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    width: int,
    height: int,
    fragments: tuple[str, ...],
) -> None:
    path = tmp_path / "huge.png"
    _png_with_fake_size(path, width, height)

    def no_decode(self: ImageFile.ImageFile) -> None:
        raise AssertionError("decoded before the pixel-limit check")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decode)
    for check in (bi.open_image, bi.probe_image):
        with pytest.raises(BrushworkError) as info:
            check(path)
        msg = str(info.value)
        assert msg.startswith(str(path)), msg
        assert "\n" not in msg
        for fragment in fragments:
            assert fragment in msg, msg


def test_pillow_bomb_limit_is_left_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pillow's own limit is never changed: a limit of ours that Pillow would overrule is
    refused by name, and an image over Pillow's limit is one clear error."""
    path = tmp_path / "a.png"
    _rgb_noise(50, 50).save(path)
    small = tmp_path / "small.png"
    _rgb_noise(30, 30).save(small)
    # Pillow refuses images over twice its limit (2,000 pixels here) when opening them
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(BrushworkError, match="over Pillow's own limit of 2,000 pixels"):
        bi.open_image(small)  # the default limit (40M) is over Pillow's
    assert Image.MAX_IMAGE_PIXELS == 1000
    assert bi.open_image(small, max_pixels=2000).size == (30, 30)
    with pytest.raises(BrushworkError, match="over the limit of 2,000") as info:
        bi.open_image(path, max_pixels=2000)
    assert str(info.value).startswith(str(path))
    with pytest.raises(BrushworkError, match="900 pixels, over the limit of 800"):
        bi.open_image(small, max_pixels=800)  # ours, stricter, still applies
    assert Image.MAX_IMAGE_PIXELS == 1000


# ----------------------------------------------------------------------------- bad inputs


def _assert_error(path: Path, fragment: str) -> None:
    with pytest.raises(BrushworkError) as info:
        bi.open_image(path)
    msg = str(info.value)
    assert msg.startswith(str(path)), msg
    assert fragment in msg, msg
    assert "\n" not in msg


def test_missing_file(tmp_path: Path) -> None:
    _assert_error(tmp_path / "nope.jpg", "no such file")


def test_directory(tmp_path: Path) -> None:
    d = tmp_path / "dir.png"
    d.mkdir()
    _assert_error(d, "is a directory")


def test_empty_file(tmp_path: Path) -> None:
    p = tmp_path / "empty.png"
    p.write_bytes(b"")
    _assert_error(p, "empty file")


def test_not_an_image(tmp_path: Path) -> None:
    p = tmp_path / "notes.jpg"
    p.write_text("this is not a picture\n")
    _assert_error(p, "not an image PIL can read (supported: JPEG, PNG, WebP, TIFF, BMP)")


def test_unsupported_format_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "anim.gif"
    _rgb_noise(8, 8).convert("P").save(p)
    _assert_error(p, "not an image PIL can read")


def test_truncated_jpeg(tmp_path: Path) -> None:
    p = tmp_path / "cut.jpg"
    _rgb_noise(64, 64).save(p, quality=95)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    _assert_error(p, "truncated or corrupt image")


def test_truncated_png(tmp_path: Path) -> None:
    p = tmp_path / "cut.png"
    _rgb_noise(64, 64).save(p)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    _assert_error(p, "truncated or corrupt image")


# ----------------------------------------------------------------------------- modes


def test_grayscale_to_rgb(tmp_path: Path) -> None:
    p = tmp_path / "g.png"
    Image.fromarray(np.array([[0, 100, 255]], dtype=np.uint8)).save(p)
    img = bi.open_image(p)
    assert img.mode == "RGB"
    assert _pixels(img).tolist() == [[[0, 0, 0], [100, 100, 100], [255, 255, 255]]]


def test_bilevel_to_rgb(tmp_path: Path) -> None:
    p = tmp_path / "b.png"
    src = Image.new("1", (2, 1), 0)
    src.putpixel((1, 0), 1)
    src.save(p)
    img = bi.open_image(p)
    assert img.mode == "RGB"
    assert _pixels(img).tolist() == [[[0, 0, 0], [255, 255, 255]]]


def test_rgba_composited_over_white_and_alpha_returned(tmp_path: Path) -> None:
    p = tmp_path / "rgba.png"
    arr = np.array([[[255, 0, 0, 0], [255, 0, 0, 128], [0, 0, 255, 255]]], dtype=np.uint8)
    Image.fromarray(arr).save(p)
    img = bi.open_image(p)
    assert img.mode == "RGBA"
    rgb, alpha = bi.split_alpha(img)
    assert rgb.mode == "RGB" and alpha is not None and alpha.mode == "L"
    got = _pixels(rgb)[0]
    assert got[0].tolist() == [255, 255, 255]  # fully transparent -> white background
    assert got[1][0] == 255 and abs(got[1][1] - 127) <= 1 and abs(got[1][2] - 127) <= 1
    assert got[2].tolist() == [0, 0, 255]
    assert _pixels(alpha).tolist() == [[0, 128, 255]]
    black, _ = bi.split_alpha(img, background=(0, 0, 0))
    assert _pixels(black)[0][0].tolist() == [0, 0, 0]


def test_split_alpha_opaque_and_rgb() -> None:
    rgb = _rgb_noise(3, 2)
    out, alpha = bi.split_alpha(rgb)
    assert alpha is None and _pixels(out).tolist() == _pixels(rgb).tolist()
    opaque = rgb.convert("RGBA")
    out, alpha = bi.split_alpha(opaque)
    assert alpha is None and out.mode == "RGB"
    with pytest.raises(BrushworkError, match="background"):
        bi.split_alpha(rgb, background=(0, 0, 256))


def test_la_to_rgba(tmp_path: Path) -> None:
    p = tmp_path / "la.png"
    Image.fromarray(np.array([[[10, 0], [200, 255]]], dtype=np.uint8)).save(p)
    img = bi.open_image(p)
    assert img.mode == "RGBA"
    assert _pixels(img).tolist() == [[[10, 10, 10, 0], [200, 200, 200, 255]]]


def test_palette_with_transparency_to_rgba(tmp_path: Path) -> None:
    p = tmp_path / "p.png"
    src = Image.new("P", (2, 1), 0)
    src.putpalette([255, 0, 0, 0, 255, 0])
    src.putpixel((1, 0), 1)
    src.info["transparency"] = 0
    src.save(p)
    img = bi.open_image(p)
    assert img.mode == "RGBA"
    assert _pixels(img).tolist() == [[[255, 0, 0, 0], [0, 255, 0, 255]]]
    rgb, alpha = bi.split_alpha(img)
    assert _pixels(rgb).tolist() == [[[255, 255, 255], [0, 255, 0]]]
    assert alpha is not None


def test_palette_without_transparency_to_rgb(tmp_path: Path) -> None:
    p = tmp_path / "p.png"
    src = Image.new("P", (2, 1), 0)
    src.putpalette([255, 0, 0, 0, 255, 0])
    src.putpixel((1, 0), 1)
    src.save(p)
    img = bi.open_image(p)
    assert img.mode == "RGB"
    assert _pixels(img).tolist() == [[[255, 0, 0], [0, 255, 0]]]


def test_cmyk_to_rgb(tmp_path: Path) -> None:
    p = tmp_path / "cmyk.tif"
    Image.new("CMYK", (2, 2), (0, 255, 255, 0)).save(p)
    img = bi.open_image(p)
    assert img.mode == "RGB"
    assert _pixels(img)[0][0].tolist() == [255, 0, 0]
    j = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(j)
    r, g, b = _pixels(bi.open_image(j))[4][4]
    assert r > 240 and g < 15 and b < 15


def test_16bit_grayscale_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    p = tmp_path / "g16.png"
    values = np.array([[0, 257 * 100, 32768, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(p)
    assert Image.open(p).mode == "I;16"
    img = bi.open_image(p)
    assert img.mode == "RGB"
    assert _pixels(img)[0, :, 0].tolist() == [0, 100, 128, 255]


def test_16bit_big_endian_tiff(tmp_path: Path) -> None:
    p = tmp_path / "g16b.tif"
    src = Image.new("I;16B", (2, 1))
    src.putpixel((0, 0), 65535)
    src.putpixel((1, 0), 32768)
    src.save(p)
    assert Image.open(p).mode == "I;16B"
    assert _pixels(bi.open_image(p))[0, :, 0].tolist() == [255, 128]


def test_16bit_with_transparency_value() -> None:
    src = Image.fromarray(np.array([[0, 65535]], dtype=np.uint16))
    src.info["transparency"] = 0
    rgb, alpha = bi.split_alpha(src)
    assert alpha is not None and _pixels(alpha).tolist() == [[0, 255]]
    assert _pixels(rgb).tolist() == [[[255, 255, 255], [255, 255, 255]]]


def test_32bit_int_tiff(tmp_path: Path) -> None:
    wide = tmp_path / "i.tif"
    Image.fromarray(np.array([[0, 32768, 65535, 70000]], dtype=np.int32)).save(wide)
    assert Image.open(wide).mode == "I"
    assert _pixels(bi.open_image(wide))[0, :, 0].tolist() == [0, 128, 255, 255]
    narrow = tmp_path / "i8.tif"
    Image.fromarray(np.array([[-3, 7, 255]], dtype=np.int32)).save(narrow)
    assert _pixels(bi.open_image(narrow))[0, :, 0].tolist() == [0, 7, 255]


def test_float_tiff(tmp_path: Path) -> None:
    unit = tmp_path / "f1.tif"
    Image.fromarray(np.array([[-0.5, 0.0, 0.5, 1.0, np.nan]], dtype=np.float32)).save(unit)
    assert Image.open(unit).mode == "F"
    assert _pixels(bi.open_image(unit))[0, :, 0].tolist() == [0, 0, 128, 255, 0]
    wide = tmp_path / "f255.tif"
    Image.fromarray(np.array([[0.0, 1.0, 127.6, 300.0]], dtype=np.float32)).save(wide)
    assert _pixels(bi.open_image(wide))[0, :, 0].tolist() == [0, 1, 128, 255]


@pytest.mark.parametrize(
    ("mode", "value", "expected"),
    [
        ("HSV", (0, 255, 255), (255, 0, 0)),
        ("YCbCr", (255, 128, 128), (255, 255, 255)),
        ("LAB", (0, 128, 128), (0, 0, 0)),
        ("LAB", (255, 128, 128), (255, 255, 255)),
    ],
)
def test_other_colour_spaces_to_rgb(
    mode: str, value: tuple[int, int, int], expected: tuple[int, int, int]
) -> None:
    rgb, alpha = bi.split_alpha(Image.new(mode, (1, 1), value))
    assert rgb.mode == "RGB" and alpha is None
    assert np.abs(_pixels(rgb)[0, 0] - np.array(expected)).max() <= 2


def test_exif_orientation_applied(tmp_path: Path) -> None:
    src = Image.new("RGB", (40, 20), (255, 0, 0))
    src.paste((0, 0, 255), (20, 0, 40, 20))  # left red, right blue
    exif = src.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    p = tmp_path / "rot.jpg"
    src.save(p, exif=exif, quality=95)
    assert Image.open(p).size == (40, 20)
    img = bi.open_image(p)
    assert img.size == (20, 40)
    top, bottom = _pixels(img)[5, 10], _pixels(img)[35, 10]
    assert top[0] > 200 and top[2] < 50  # the left (red) half is now on top
    assert bottom[2] > 200 and bottom[0] < 50


def test_malformed_exif_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "a.png"
    _rgb_noise(6, 4).save(p)

    def broken(image: Image.Image, **kwargs: object) -> Image.Image:
        raise SyntaxError("bad EXIF")

    monkeypatch.setattr(bi.ImageOps, "exif_transpose", broken)
    img = bi.open_image(p)
    assert img.size == (6, 4) and img.mode == "RGB"


def test_open_image_returns_loaded_independent_image(tmp_path: Path) -> None:
    p = tmp_path / "a.png"
    _rgb_noise(6, 4).save(p)
    img = bi.open_image(p)
    assert img.mode == "RGB"
    assert _pixels(img).shape == (4, 6, 3)  # usable after the file was closed
    p.unlink()
    assert _pixels(img).shape == (4, 6, 3)


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("a.png", {}),
        ("a.webp", {"lossless": True}),
        ("a.tif", {}),
        ("a.tiff", {"compression": "tiff_lzw"}),
        ("a.bmp", {}),
        ("a.jpeg", {"quality": 100, "subsampling": 0}),
    ],
)
def test_round_trip_formats(tmp_path: Path, name: str, options: dict[str, object]) -> None:
    src = _rgb_noise(16, 12)
    p = tmp_path / name
    src.save(p, **options)
    t = bi.load_image(p)
    assert t.shape == (1, 3, 12, 16) and t.dtype == torch.float32
    got = _pixels(bi.to_pil(t))
    error = np.abs(got - _pixels(src))
    if name.endswith(".jpeg"):  # lossy: close on average
        assert error.mean() < 4
    else:
        assert error.max() == 0


# ----------------------------------------------------------------------------- resize


@pytest.mark.parametrize(
    ("src", "kwargs", "expected"),
    [
        ((400, 200), {"size": 100}, (100, 50)),
        ((200, 400), {"size": 100}, (50, 100)),
        ((30, 20), {"size": 90}, (90, 60)),
        ((1000, 1), {"size": 10}, (10, 1)),
        ((400, 200), {"pixels": 20_000}, (200, 100)),
        ((300, 300), {"pixels": 10_000}, (100, 100)),
        ((1000, 1), {"pixels": 1}, (32, 1)),
        ((40, 30), {}, (40, 30)),
    ],
)
def test_resize(src: tuple[int, int], kwargs: dict[str, int], expected: tuple[int, int]) -> None:
    out = bi.resize(Image.new("RGB", src, (9, 9, 9)), **kwargs)
    assert out.size == expected


def test_resize_none_returns_same_image() -> None:
    img = Image.new("RGB", (5, 5))
    assert bi.resize(img) is img


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"size": 10, "pixels": 100}, "not both"),
        ({"size": 0}, "--size"),
        ({"size": -3}, "--size"),
        ({"pixels": 0}, "--pixels"),
        ({"pixels": -100}, "--pixels"),
    ],
)
def test_resize_errors(kwargs: dict[str, int], fragment: str) -> None:
    with pytest.raises(BrushworkError, match=fragment):
        bi.resize(Image.new("RGB", (5, 5)), **kwargs)


def test_load_image_checks_resize_args_before_opening(tmp_path: Path) -> None:
    with pytest.raises(BrushworkError, match="not both"):
        bi.load_image(tmp_path / "missing.png", size=10, pixels=100)


# ----------------------------------------------------------------------------- tensors


def test_to_tensor_to_pil_round_trip_exact() -> None:
    src = _rgb_noise(23, 17, seed=3)
    t = bi.to_tensor(src)
    assert t.shape == (1, 3, 17, 23) and t.dtype == torch.float32
    assert t.is_contiguous() and float(t.min()) >= 0.0 and float(t.max()) <= 1.0
    assert torch.equal(t[0, :, 2, 5] * 255, torch.tensor(src.getpixel((5, 2)), dtype=torch.float32))
    back = bi.to_pil(t)
    assert back.mode == "RGB" and np.array_equal(np.asarray(back), np.asarray(src))
    assert np.array_equal(np.asarray(bi.to_pil(t[0])), np.asarray(src))


def test_to_pil_clamps_rounds_and_zeroes_nan() -> None:
    t = torch.tensor([-1.0, 2.0, 0.5, float("nan"), 0.2, float("inf")]).view(1, 1, 1, 6)
    t = t.expand(1, 3, 1, 6)
    got = _pixels(bi.to_pil(t))[0, :, 0].tolist()
    assert got == [0, 255, 128, 0, 51, 255]


@pytest.mark.parametrize("shape", [(2, 3, 4, 4), (1, 4, 4, 4), (4, 4), (1, 1, 3, 4, 4)])
def test_to_pil_rejects_bad_shapes(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="expected"):
        bi.to_pil(torch.zeros(shape))


def test_to_tensor_composites_rgba_over_white() -> None:
    img = Image.new("RGBA", (2, 2), (0, 0, 0, 0))
    assert torch.equal(bi.to_tensor(img), torch.ones(1, 3, 2, 2))


def test_load_image_with_alpha_resizes_alpha(tmp_path: Path) -> None:
    p = tmp_path / "rgba.png"
    arr = np.zeros((20, 40, 4), dtype=np.uint8)
    arr[..., 3] = 255
    arr[:, :20, 3] = 0  # left half transparent
    Image.fromarray(arr).save(p)
    t, alpha = bi.load_image_with_alpha(p, size=20)
    assert t.shape == (1, 3, 10, 20)
    assert alpha is not None and alpha.size == (20, 10) and alpha.mode == "L"
    assert alpha.getpixel((2, 5)) == 0 and alpha.getpixel((17, 5)) == 255
    assert torch.allclose(t[0, :, 5, 2], torch.ones(3))  # transparent -> white
    assert torch.allclose(t[0, :, 5, 17], torch.zeros(3))
    plain = bi.load_image(p, pixels=50)
    assert plain.shape == (1, 3, 5, 10)


# ----------------------------------------------------------------------------- output paths


def test_check_output_path_ok(tmp_path: Path) -> None:
    assert bi.check_output_path(tmp_path / "out.PNG") == tmp_path / "out.PNG"
    assert bi.check_output_path(str(tmp_path / "out.jpeg")) == tmp_path / "out.jpeg"


@pytest.mark.parametrize("name", ["out.gif", "out.bmp", "out.heic", "out"])
def test_unsupported_output_extension(tmp_path: Path, name: str) -> None:
    with pytest.raises(BrushworkError) as info:
        bi.check_output_path(tmp_path / name)
    msg = str(info.value)
    assert msg.startswith(str(tmp_path / name)) and "unsupported output format" in msg
    assert msg.endswith("use .png, .jpg, .jpeg, .webp, .tif or .tiff")


def test_output_is_directory(tmp_path: Path) -> None:
    d = tmp_path / "out.png"
    d.mkdir()
    with pytest.raises(BrushworkError, match="is a directory"):
        bi.check_output_path(d, force=True)


def test_output_directory_missing(tmp_path: Path) -> None:
    target = tmp_path / "nope" / "out.png"
    with pytest.raises(BrushworkError) as info:
        bi.save_image(_rgb_noise(4, 4), target)
    assert str(info.value) == f"output directory does not exist: {tmp_path / 'nope'}"


def test_output_directory_not_writable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):  # running as root: permissions are not enforced
            real_access = os.access

            def fake_access(path: object, mode: int, **kwargs: object) -> bool:
                if Path(str(path)) == locked and mode & os.W_OK:
                    return False
                return real_access(path, mode, **kwargs)  # type: ignore[arg-type]

            monkeypatch.setattr(os, "access", fake_access)
        with pytest.raises(BrushworkError) as info:
            bi.save_image(_rgb_noise(4, 4), locked / "out.png")
        assert str(info.value) == f"output directory is not writable: {locked}"
    finally:
        locked.chmod(0o700)
    assert list(locked.iterdir()) == []


def test_output_exists_needs_force(tmp_path: Path) -> None:
    target = tmp_path / "out.png"
    target.write_bytes(b"old")
    with pytest.raises(BrushworkError) as info:
        bi.save_image(_rgb_noise(4, 4), target)
    assert str(info.value) == f"{target} exists; pass --force to overwrite"
    assert target.read_bytes() == b"old"
    assert bi.save_image(_rgb_noise(4, 4), target, force=True) == target
    assert Image.open(target).size == (4, 4)


# ----------------------------------------------------------------------------- saving


def _leftovers(directory: Path, keep: set[str]) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name not in keep)


def test_save_tensor_png_exact_and_permissions(tmp_path: Path) -> None:
    src = _rgb_noise(9, 7)
    target = tmp_path / "out.png"
    assert bi.save_image(bi.to_tensor(src), target) == target
    assert np.array_equal(np.asarray(Image.open(target)), np.asarray(src))
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
    assert _leftovers(tmp_path, {"out.png"}) == []


def test_save_png_reattaches_alpha(tmp_path: Path) -> None:
    src = tmp_path / "in.png"
    arr = np.zeros((10, 20, 4), dtype=np.uint8)
    arr[..., 0] = 200
    arr[..., 3] = np.linspace(0, 255, 20, dtype=np.uint8)[None, :]
    Image.fromarray(arr).save(src)
    t, alpha = bi.load_image_with_alpha(src)
    out = bi.save_image(t, tmp_path / "out.png", alpha=alpha)
    saved = Image.open(out)
    assert saved.mode == "RGBA"
    assert np.array_equal(np.asarray(saved)[..., 3], arr[..., 3])
    # an alpha of another size is resized to the image
    half = bi.save_image(bi.resize(bi.to_pil(t), size=10), tmp_path / "half.webp", alpha=alpha)
    saved = Image.open(half)
    assert saved.size == (10, 5) and saved.mode == "RGBA"


def test_save_jpeg_drops_alpha(tmp_path: Path) -> None:
    rgba = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    alpha = Image.new("L", (8, 8), 0)
    out = bi.save_image(rgba, tmp_path / "out.jpg", alpha=alpha, quality=90)
    saved = Image.open(out)
    assert saved.format == "JPEG" and saved.mode == "RGB"
    assert _pixels(saved).min() > 245  # transparent composited over white


def test_save_jpeg_quality_is_used(tmp_path: Path) -> None:
    src = _rgb_noise(64, 64)
    low = bi.save_image(src, tmp_path / "low.jpg", quality=10)
    high = bi.save_image(src, tmp_path / "high.jpg", quality=95)
    assert low.stat().st_size < high.stat().st_size / 2
    with pytest.raises(BrushworkError, match="--quality"):
        bi.save_image(src, tmp_path / "bad.jpg", quality=0)


def test_save_webp_too_large(tmp_path: Path) -> None:
    with pytest.raises(BrushworkError, match="too large for WEBP"):
        bi.save_image(Image.new("RGB", (16_384, 1)), tmp_path / "wide.webp")
    assert _leftovers(tmp_path, set()) == []


def _failing_save(exc: BaseException):
    def save(self: Image.Image, fp: object, *args: object, **kwargs: object) -> None:
        Path(fp).write_bytes(b"partial data")  # type: ignore[arg-type]
        raise exc

    return save


def test_atomic_save_failure_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out.png"
    monkeypatch.setattr(Image.Image, "save", _failing_save(OSError(28, "No space left on device")))
    with pytest.raises(BrushworkError) as info:
        bi.save_image(_rgb_noise(4, 4), target)
    assert str(info.value) == f"cannot write {target}: No space left on device"
    assert not target.exists()
    assert _leftovers(tmp_path, set()) == []


def test_atomic_save_failure_keeps_existing_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out.jpg"
    target.write_bytes(b"precious")
    monkeypatch.setattr(Image.Image, "save", _failing_save(RuntimeError("boom")))
    with pytest.raises(RuntimeError, match="boom"):  # non-OSError: re-raised as is
        bi.save_image(_rgb_noise(4, 4), target, force=True)
    assert target.read_bytes() == b"precious"
    assert _leftovers(tmp_path, {"out.jpg"}) == []


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.jpg", True),
        ("a.JPEG", True),
        ("dir/b.Png", True),
        ("c.webp", True),
        ("d.tif", True),
        ("e.TIFF", True),
        ("f.bmp", True),
        ("g.gif", False),
        ("h.txt", False),
        ("png", False),
        (".png", False),
    ],
)
def test_is_image_path(name: str, expected: bool) -> None:
    assert bi.is_image_path(name) is expected
    assert bi.is_image_path(Path(name)) is expected


# ----------------------------------------------------------------------------- large outputs


@pytest.mark.parametrize("name", ["out.png", "out.tif"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_arrays_are_written_at_their_depth_band_by_band(
    tmp_path: Path, name: str, dtype: type, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PNG rows and TIFF tiles leave a band at a time (bands smaller than the image here),
    at 8 or 16 bits, and read back exactly."""
    monkeypatch.setattr(bi, "BAND_ROWS", 16)
    top = np.iinfo(dtype).max
    pixels = np.random.default_rng(0).integers(0, top, (37, 53, 3), dtype=dtype)
    path = bi.save_pixels(pixels, tmp_path / name)
    if name.endswith(".tif"):
        import tifffile

        back = tifffile.imread(path)
    else:
        import png

        width, height, rows, info = png.Reader(filename=str(path)).read()
        assert info["bitdepth"] == 8 * np.dtype(dtype).itemsize
        back = np.vstack([np.asarray(r, dtype=dtype) for r in rows]).reshape(height, width, 3)
    assert back.dtype == dtype and np.array_equal(back, pixels)


def test_a_16_bit_array_to_jpeg_is_written_at_8_bits(tmp_path: Path) -> None:
    pixels = np.full((20, 30, 3), 65535, dtype=np.uint16)
    pixels[:10] = 257 * 100
    path = bi.save_pixels(pixels, tmp_path / "out.jpg")
    back = np.asarray(Image.open(path)).astype(int)
    assert abs(back[:10].mean() - 100) < 2 and back[10:].mean() > 250


@pytest.mark.parametrize(
    ("name", "size", "depth", "message"),
    [
        ("out.jpg", (70000, 10), 8, "too large for JPEG"),
        ("out.webp", (20000, 10), 8, "too large for WEBP"),
        ("out.jpg", (100, 100), 16, "JPEG holds 8"),
        ("out.gif", (100, 100), 8, "cannot write"),
    ],
)
def test_an_output_its_format_cannot_hold_is_refused(
    tmp_path: Path, name: str, size: tuple[int, int], depth: int, message: str
) -> None:
    with pytest.raises(BrushworkError, match=message):
        bi.check_output(tmp_path / name, *size, depth)
    bi.check_output(tmp_path / "out.png", 70000, 10, 16)  # PNG holds both


def test_an_output_its_disk_has_no_room_for_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(
        "brushwork.outputs.shutil.disk_usage", lambda _: usage._replace(free=100 * 2**20)
    )
    bi.check_output(tmp_path / "out.png", 4000, 4000)  # 48 MiB at most
    with pytest.raises(BrushworkError, match="needs about 385 MiB, and its disk has 100 MiB"):
        bi.check_output(tmp_path / "out.png", 8192, 8192, 16)
    assert list(tmp_path.iterdir()) == []
