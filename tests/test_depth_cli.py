"""Depth maps as images (:mod:`brushwork.depth.render`), ``brushwork depth`` and
:func:`brushwork.estimate_depth`: with a tiny random estimator, except one test marked
``integration`` that runs the bundled model on a 96 × 64 photo."""

from __future__ import annotations

import errno
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import expect_error, smooth_image
from PIL import Image

import brushwork
from brushwork.checkpoints import save_checkpoint
from brushwork.cli import main
from brushwork.depth.estimator import DepthNet, to_checkpoint
from brushwork.depth.render import RAW_DESCRIPTION, colorize, to_uint16, turbo
from brushwork.encoders import VGG19
from brushwork.errors import BrushworkError
from brushwork.image import to_pil
from brushwork.models import MODELS

HEIGHT, WIDTH = 37, 53  # odd sizes: the estimator pads to multiples of 32, resizes back


def _ramp(height: int = 8, width: int = 200) -> torch.Tensor:
    """Inverse depth growing left (far) to right (near)."""
    return torch.linspace(0.0, 1.0, width).expand(height, width).clone()


def _warmth(rgb: np.ndarray) -> float:
    return float(rgb[..., 0].astype(float).mean() - rgb[..., 2].astype(float).mean())


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    net = DepthNet(VGG19(last_layer="relu4_1", width=1 / 16)).eval()
    return save_checkpoint(
        tmp_path_factory.mktemp("model") / "tiny.safetensors", to_checkpoint(net, {}, 0)
    )


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "in" / "photo.png"
    path.parent.mkdir()
    to_pil(smooth_image(HEIGHT, WIDTH)).save(path)
    return path


@pytest.fixture
def out(tmp_path: Path) -> Path:
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


@pytest.fixture(autouse=True)
def _no_env_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BRUSHWORK_DEPTH_MODEL", raising=False)


# ----------------------------------------------------------------------------- render


@pytest.mark.parametrize("shape", [(12, 20), (1, 12, 20), (1, 1, 12, 20)])
def test_colorize_shape_and_dtype(shape: tuple[int, ...]) -> None:
    rgb = colorize(torch.rand(shape))
    assert rgb.shape == (12, 20, 3)
    assert rgb.dtype == np.uint8
    assert colorize(np.random.default_rng(0).random(shape)).shape == (12, 20, 3)


def test_colorize_refuses_other_shapes() -> None:
    with pytest.raises(ValueError, match="depth map"):
        colorize(torch.rand(2, 1, 4, 4))
    with pytest.raises(ValueError, match="percentiles"):
        colorize(torch.rand(4, 4), low=50, high=10)


def test_colorize_near_is_warm_and_far_is_blue() -> None:
    rgb = colorize(_ramp())
    quarter = rgb.shape[1] // 4
    far, near = rgb[:, :quarter], rgb[:, -quarter:]
    assert _warmth(near) > 100 and _warmth(far) < -100  # red vs blue, clearly
    # (Turbo is brightest in the middle: the ends are dark red and dark blue)


def test_colorize_flat_and_empty_maps() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no division by zero, no empty-slice warnings
        for values in (
            torch.full((6, 9), 3.5),
            torch.zeros(6, 9),
            torch.full((6, 9), float("nan")),
        ):
            rgb = colorize(values)
            assert rgb.shape == (6, 9, 3)
            assert (rgb == rgb[0, 0]).all()
        mixed = torch.full((6, 9), 2.0)
        mixed[0, 0] = float("inf")
        assert (colorize(mixed) == colorize(torch.zeros(6, 9))[0, 0]).all()


def test_colorize_ignores_a_few_outliers() -> None:
    clean = _ramp(20, 200)
    spiky = clean.clone()
    spiky[0, 0] = 1e6  # one absurdly near pixel
    spiky[5, 7] = -1e6  # one absurdly far pixel
    robust, reference = colorize(spiky), colorize(clean)
    close = np.abs(robust.astype(int) - reference.astype(int)).max(axis=-1) <= 6
    assert close.mean() > 0.99
    # with plain min-max scaling the same spikes squash the whole ramp into one colour
    squashed = colorize(spiky, low=0, high=100)
    assert len(np.unique(squashed.reshape(-1, 3), axis=0)) <= 3


def test_turbo_endpoints() -> None:
    far, near = turbo(np.array([0.0, 1.0]))
    assert near[0] > 0.5 > near[2]  # dark red
    assert turbo(np.array([-1.0]))[0].tolist() == far.tolist()  # clipped


def test_to_uint16_round_trip() -> None:
    generator = torch.Generator().manual_seed(0)
    values = torch.randn(1, 1, 30, 40, generator=generator) * 3 + 7
    raw = to_uint16(values)
    assert raw.dtype == np.uint16 and raw.shape == (30, 40)
    flat = values.flatten()
    assert raw.flatten()[flat.argmin()] == 0 and raw.flatten()[flat.argmax()] == 65535
    lo, hi = float(values.min()), float(values.max())
    recovered = lo + raw.astype(np.float64) / 65535 * (hi - lo)
    assert np.abs(recovered - values[0, 0].double().numpy()).max() <= (hi - lo) / 65535
    order = np.argsort(values.flatten().numpy(), kind="stable")
    assert np.all(np.diff(raw.flatten()[order].astype(int)) >= 0)  # nearer never lower


def test_to_uint16_flat_and_non_finite() -> None:
    assert not to_uint16(torch.full((4, 5), 9.0)).any()
    values = torch.tensor([[0.0, 1.0], [float("nan"), 0.5]])
    assert to_uint16(values).tolist() == [[0, 65535], [0, 32768]]


# ----------------------------------------------------------------------------- API


def test_estimate_depth_accepts_paths_pil_tensors_and_nets(tiny_model: Path, photo: Path) -> None:
    depth = brushwork.estimate_depth(photo, tiny_model, side=64, device="cpu")
    assert depth.shape == (1, 1, HEIGHT, WIDTH) and depth.dtype == torch.float32
    assert depth.std() > 0
    from brushwork.depth.estimator import load_estimator

    net = load_estimator(tiny_model)
    image = Image.open(photo)
    assert torch.allclose(brushwork.estimate_depth(image, net, 64), depth)
    tensor = smooth_image(HEIGHT, WIDTH)
    assert brushwork.estimate_depth(tensor, net, 64).shape == (1, 1, HEIGHT, WIDTH)
    assert "estimate_depth" in brushwork.__all__


def test_estimate_depth_refuses_a_tiny_side(tiny_model: Path, photo: Path) -> None:
    with pytest.raises(BrushworkError, match="side"):
        brushwork.estimate_depth(photo, tiny_model, side=8)


# ----------------------------------------------------------------------------- CLI


def _listing(*folders: Path) -> list[str]:
    return sorted(p.name for folder in folders for p in folder.iterdir())


def test_depth_writes_colour_and_raw(capsys, tiny_model: Path, photo: Path, out: Path) -> None:
    colour, raw = out / "depth.png", out / "raw.png"
    assert (
        main(
            [
                "depth",
                str(photo),
                "-o",
                str(colour),
                "--raw",
                str(raw),
                "--model",
                str(tiny_model),
                "--side",
                "64",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.splitlines() == [str(colour), str(raw)]
    assert _listing(out) == ["depth.png", "raw.png"]  # no temp files left
    with Image.open(colour) as image:
        assert image.size == (WIDTH, HEIGHT) and image.mode == "RGB"
    with Image.open(raw) as image:
        assert image.size == (WIDTH, HEIGHT) and image.mode == "I;16"
        assert image.text["Description"] == RAW_DESCRIPTION
        values = np.asarray(image)
    assert values.dtype == np.uint16 and values.min() == 0 and values.max() == 65535
    expected = brushwork.estimate_depth(photo, tiny_model, side=64, device="cpu")
    assert np.array_equal(values, to_uint16(expected))


def test_depth_model_from_environment(
    capsys, monkeypatch, tiny_model: Path, photo: Path, out: Path
) -> None:
    monkeypatch.setenv("BRUSHWORK_DEPTH_MODEL", str(tiny_model))
    assert main(["depth", str(photo), "-o", str(out / "d.jpg")]) == 0
    assert capsys.readouterr().out.strip() == str(out / "d.jpg")
    with Image.open(out / "d.jpg") as image:
        assert image.size == (WIDTH, HEIGHT)
    # the variable is really used: a broken file there is what fails ...
    broken = out / "broken.safetensors"
    broken.write_bytes(b"not a model")
    monkeypatch.setenv("BRUSHWORK_DEPTH_MODEL", str(broken))
    assert str(broken) in expect_error(capsys, ["depth", str(photo), "-o", str(out / "e.png")])
    # ... and --model overrides it
    assert (
        main(
            [
                "depth",
                str(photo),
                "-o",
                str(out / "e.png"),
                "--model",
                str(tiny_model),
                "--side",
                "64",
            ]
        )
        == 0
    )


def test_depth_help_warns_about_outdoor_scenes(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["depth", "-h"])
    text = " ".join(capsys.readouterr().out.split())
    assert "NYU Depth v2" in text and "unreliable outdoors" in text


def test_depth_missing_and_corrupt_image(
    capsys, tiny_model: Path, tmp_path: Path, out: Path
) -> None:
    args = ["-o", str(out / "d.png"), "--raw", str(out / "r.png"), "--model", str(tiny_model)]
    assert "no such file" in expect_error(capsys, ["depth", str(tmp_path / "nope.png"), *args])
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    message = expect_error(capsys, ["depth", str(corrupt), *args])
    assert str(corrupt) in message
    assert _listing(out) == []


def test_depth_corrupt_model(capsys, photo: Path, tmp_path: Path, out: Path) -> None:
    model = tmp_path / "model.safetensors"
    model.write_bytes(b"\x00" * 100)
    message = expect_error(
        capsys,
        [
            "depth",
            str(photo),
            "-o",
            str(out / "d.png"),
            "--raw",
            str(out / "r.png"),
            "--model",
            str(model),
        ],
    )
    assert str(model) in message and "corrupt" in message
    missing = tmp_path / "missing.safetensors"
    message = expect_error(
        capsys, ["depth", str(photo), "-o", str(out / "d.png"), "--model", str(missing)]
    )
    assert message == (
        f"depth model {missing} is neither a bundled depth model (depth) nor an existing file"
    )
    onnx = tmp_path / "midas.onnx"
    onnx.write_bytes(b"x")
    assert "ONNX" in expect_error(
        capsys, ["depth", str(photo), "-o", str(out / "d.png"), "--model", str(onnx)]
    )
    assert _listing(out) == []


def test_depth_existing_outputs_need_force(
    capsys, tiny_model: Path, photo: Path, out: Path
) -> None:
    colour, raw = out / "d.png", out / "r.png"
    colour.write_bytes(b"old")
    base = ["depth", str(photo), "-o", str(colour), "--model", str(tiny_model), "--side", "64"]
    assert "--force" in expect_error(capsys, base)
    assert colour.read_bytes() == b"old"
    colour.unlink()
    raw.write_bytes(b"old")
    assert "--force" in expect_error(capsys, [*base, "--raw", str(raw)])
    assert raw.read_bytes() == b"old" and not colour.exists()  # neither written
    colour.write_bytes(b"old")
    assert main([*base, "--raw", str(raw), "--force"]) == 0
    capsys.readouterr()
    with Image.open(colour) as a, Image.open(raw) as b:
        assert a.size == b.size == (WIDTH, HEIGHT)


def test_depth_bad_output_paths(capsys, tiny_model: Path, photo: Path, out: Path) -> None:
    base = ["depth", str(photo), "--model", str(tiny_model)]
    message = expect_error(capsys, [*base, "-o", str(out / "missing" / "d.png")])
    assert "does not exist" in message
    (out / "file").write_text("x")
    assert "not a directory" in expect_error(capsys, [*base, "-o", str(out / "file" / "d.png")])
    assert "does not exist" in expect_error(
        capsys, [*base, "-o", str(out / "d.png"), "--raw", str(out / "missing" / "r.png")]
    )
    assert "unsupported" in expect_error(capsys, [*base, "-o", str(out / "d.gif")])
    assert "unsupported" in expect_error(
        capsys, [*base, "-o", str(out / "d.png"), "--raw", str(out / "r.jpg")]
    )
    assert _listing(out) == ["file"]


def test_depth_unwritable_folder(
    capsys, monkeypatch, tiny_model: Path, photo: Path, out: Path
) -> None:
    access = os.access  # tests may run as root, who can write anywhere: fake the refusal

    def no_write(path: object, mode: int, **kwargs: object) -> bool:
        return False if Path(str(path)) == out and mode & os.W_OK else access(path, mode)

    monkeypatch.setattr(os, "access", no_write)
    assert "not writable" in expect_error(
        capsys, ["depth", str(photo), "-o", str(out / "d.png"), "--model", str(tiny_model)]
    )
    assert _listing(out) == []


def test_depth_raw_same_as_output(
    capsys, tiny_model: Path, photo: Path, out: Path, monkeypatch
) -> None:
    monkeypatch.chdir(out)
    base = ["depth", str(photo), "--model", str(tiny_model), "--force"]
    assert "same file" in expect_error(capsys, [*base, "-o", "d.png", "--raw", "d.png"])
    assert "same file" in expect_error(
        capsys, [*base, "-o", "d.png", "--raw", str(out / "." / "d.png")]
    )
    assert _listing(out) == []


# new files are published by a hard link (which refuses a file that appeared meanwhile),
# files replaced with --force by os.replace
@pytest.mark.parametrize("publish, extra", [("link", []), ("replace", ["--force"])])
def test_depth_failed_second_move_leaves_neither(
    capsys, monkeypatch, tiny_model: Path, photo: Path, out: Path, publish: str, extra: list[str]
) -> None:
    original, calls = getattr(os, publish), []

    def flaky(source: str, target: str) -> None:
        calls.append(target)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        original(source, target)

    monkeypatch.setattr(os, publish, flaky)
    message = expect_error(
        capsys,
        [
            "depth",
            str(photo),
            "-o",
            str(out / "d.png"),
            "--raw",
            str(out / "r.png"),
            "--model",
            str(tiny_model),
            "--side",
            "64",
            *extra,
        ],
    )
    assert "r.png" in message and "No space left" in message
    assert len(calls) == 2 and _listing(out) == []


def test_depth_failed_write_leaves_nothing(
    capsys, monkeypatch, tiny_model: Path, photo: Path, out: Path
) -> None:
    from PIL import PngImagePlugin

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(PngImagePlugin, "_save", broken)
    monkeypatch.setitem(Image.SAVE, "PNG", broken)
    message = expect_error(
        capsys,
        [
            "depth",
            str(photo),
            "-o",
            str(out / "d.jpg"),
            "--raw",
            str(out / "r.png"),
            "--model",
            str(tiny_model),
            "--side",
            "64",
        ],
    )
    assert "Input/output error" in message
    assert _listing(out) == []


# ----------------------------------------------------------------------------- bundled model


@pytest.mark.integration
@pytest.mark.skipif(not MODELS["depth"].path.is_file(), reason="bundled depth model not installed")
def test_bundled_model_on_a_photo(capsys, tmp_path: Path) -> None:
    """The rocket on its launch pad: sky at the top, the pad in front at the bottom. At
    96 × 64 the bundled model puts the bottom quarter clearly nearer than the top quarter
    (checked by eye on the full-size photo too)."""
    data = pytest.importorskip("skimage.data")
    photo = tmp_path / "rocket.png"
    Image.fromarray(data.rocket()).resize((96, 64), Image.Resampling.LANCZOS).save(photo)
    raw = tmp_path / "raw.png"
    assert (
        main(
            [
                "depth",
                str(photo),
                "-o",
                str(tmp_path / "d.png"),
                "--raw",
                str(raw),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    capsys.readouterr()
    with Image.open(raw) as image:
        values = np.asarray(image).astype(float)
    assert values.shape == (64, 96) and values.std() > 1000  # far from flat
    assert values[-16:].mean() > values[:16].mean() + 10000
