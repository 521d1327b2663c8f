"""Every class of bad input the command line knows, each refused with one line, exit status
2, no output file, and before any work; the table in docs/bad-input.md is generated from
these cases, and a test fails when the two drift apart (rewrite it with
``BRUSHWORK_WRITE_DOCS=1 pytest tests/test_bad_input.py``)."""

from __future__ import annotations

import io
import os
import re
import socket
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import expect_error, smooth_image
from PIL import Image

from brushwork.image import to_pil

DOC = Path(__file__).resolve().parents[1] / "docs" / "bad-input.md"


@dataclass(frozen=True)
class Case:
    group: str
    what: str
    argv: Callable[[Path], list[str]]
    expect: str
    """A part of the message (regular expression)."""


def files(folder: Path) -> dict[str, str]:
    """The images the cases use, made once per test folder."""
    made = {
        "content": folder / "content.png",
        "style": folder / "style.png",
        "labels": folder / "labels.png",
        "text": folder / "notes.png",
        "truncated": folder / "truncated.png",
        "empty": folder / "empty.png",
        "big": folder / "big.png",
        "broken_tiff": folder / "broken.tif",
    }
    if not made["content"].exists():
        to_pil(smooth_image(40, 48, seed=1)).save(made["content"])
        to_pil(smooth_image(48, 48, seed=2)).save(made["style"])
        labels = Image.new("RGB", (48, 40), (0, 0, 0))
        labels.paste((255, 255, 255), (24, 0, 48, 40))
        labels.save(made["labels"])
        made["text"].write_text("not an image")
        made["truncated"].write_bytes(made["content"].read_bytes()[:200])
        made["empty"].write_bytes(b"")
        Image.new("RGB", (3000, 2000)).save(made["big"])
        made["broken_tiff"].write_bytes(tiff_claiming_samples(5000))
        (folder / "exists.png").write_bytes(b"x")
    return {k: str(v) for k, v in made.items()}


def tiff_claiming_samples(samples: int) -> bytes:
    """A small TIFF whose header claims ``samples`` samples per pixel (Pillow refuses it,
    and logs an error line of its own)."""
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (100, 50, 20)).save(buffer, format="TIFF")
    data = bytearray(buffer.getvalue())
    ifd = struct.unpack_from("<I", data, 4)[0]
    for entry in range(struct.unpack_from("<H", data, ifd)[0]):
        at = ifd + 2 + 12 * entry
        if struct.unpack_from("<H", data, at)[0] == 277:  # SamplesPerPixel
            struct.pack_into("<HHIH", data, at, 277, 3, 1, samples)
    return bytes(data)


def stylize(
    *extra: str, content: str = "content", style: str | None = "style", output: str = "out.png"
) -> Callable[[Path], list[str]]:
    def argv(folder: Path) -> list[str]:
        f = files(folder)
        base = ["stylize", f.get(content, str(folder / content))]
        if style is not None:
            base.append(f.get(style, str(folder / style)))
        resolved = [str(folder / x[1:]) if x.startswith("@") else x for x in extra]
        return [*base, "-o", str(folder / output), "-q", *resolved]

    return argv


def batch(
    *extra: str,
    inputs: tuple[str, ...] = ("@content.png", "--style", "@style.png"),
    output: str = "out",
    make: Callable[[Path], object] | None = None,
) -> Callable[[Path], list[str]]:
    """``brushwork batch`` of ``inputs`` (the content in the style) with AdaIN into the
    folder ``output``; ``make(folder)`` sets the scene first; ``@name``: a path in the
    folder."""

    def argv(folder: Path) -> list[str]:
        files(folder)
        if make is not None:
            make(folder)
        resolved = [str(folder / x[1:]) if x.startswith("@") else x for x in (*inputs, *extra)]
        return ["batch", *resolved, "-o", str(folder / output), "-m", "adain", "-q"]

    return argv


def _long_output_name(folder: Path) -> None:
    """A pairs file whose output name is 254 bytes long."""
    (folder / "pairs.csv").write_text(f"content.png,style.png,{'x' * 250}.png\n")


def video(
    *extra: str, output: str = "out.mp4", make: Callable[[Path], object] | None = None
) -> Callable[[Path], list[str]]:
    """``brushwork video`` of a tiny clip (made once per test folder) in the style;
    ``make(folder)`` sets the scene first."""

    def argv(folder: Path) -> list[str]:
        from videoclips import pan, write_clip

        clip = folder / "clip.mp4"
        if not clip.exists():
            write_clip(clip, pan(4, 32, 48))
        if make is not None:
            make(folder)
        resolved = [str(folder / x[1:]) if x.startswith("@") else x for x in extra]
        style = files(folder)["style"]
        return ["video", str(clip), style, "-o", str(folder / output), "-q", *resolved]

    return argv


def _user_folder(folder: Path) -> None:
    """A folder of the user's files."""
    folder.mkdir(exist_ok=True)
    (folder / "notes.txt").write_text("the user's")


def _renders(folder: Path) -> None:
    (folder / "renders").mkdir(exist_ok=True)


def _stale_work_folder(folder: Path) -> None:
    """The work folder an interrupted ``video -o stale.mp4`` left."""
    from brushwork.outputs import mark_folder

    work = folder / "stale.mp4.work"
    (work / "frames").mkdir(parents=True, exist_ok=True)
    (work / "manifest.json").write_text("{}")
    mark_folder(work, ["manifest.json", "frames"])


def train(name: str, *extra: str, out: str = "run") -> Callable[[Path], list[str]]:
    """``brushwork train NAME`` into the run folder ``out`` (``@name``: a path in the
    folder, ``@``: the folder itself, which holds the test images)."""

    def argv(folder: Path) -> list[str]:
        files(folder)
        resolved = [str(folder / x[1:]) if x.startswith("@") else x for x in extra]
        return ["train", name, "--out", str(folder / out), "--quiet", *resolved]

    return argv


def demo(folder: Path) -> list[str]:
    """``brushwork demo`` into a folder that holds an earlier demo's image."""
    out = folder / "demo"
    out.mkdir(exist_ok=True)
    (out / "chelsea-mosaic-adain.png").write_bytes(b"an earlier demo's image")
    return ["demo", "--out", str(out)]


_HELD_PORTS: list[socket.socket] = []  # open until the module's tests end


@pytest.fixture(scope="module", autouse=True)
def _close_held_ports() -> Iterator[None]:
    yield
    while _HELD_PORTS:
        _HELD_PORTS.pop().close()


def serve(*extra: str, index: bytes | None = None) -> Callable[[Path], list[str]]:
    """``brushwork serve`` on the data folder ``serve-data`` (its ``jobs.sqlite3``:
    ``index``); ``--port @busy``: a port something else listens on."""

    def argv(folder: Path) -> list[str]:
        data = folder / "serve-data"
        if index is not None:
            data.mkdir(exist_ok=True)
            (data / "jobs.sqlite3").write_bytes(index)
        resolved = list(extra)
        if "@busy" in resolved:
            _HELD_PORTS.append(socket.create_server(("127.0.0.1", 0)))
            resolved[resolved.index("@busy")] = str(_HELD_PORTS[-1].getsockname()[1])
        return ["serve", "--data", str(data), *resolved]

    return argv


CASES = [
    # input files
    Case("input files", "missing content", stylize(content="missing.jpg"), "no such file"),
    Case("input files", "content is a folder", stylize(content="."), "is a directory"),
    Case("input files", "empty file", stylize(content="empty"), "empty file"),
    Case("input files", "not an image", stylize(style="text"), "not an image PIL can read"),
    Case("input files", "truncated image", stylize(content="truncated"), "truncated or corrupt"),
    Case(
        "input files",
        "TIFF header claiming 5000 samples per pixel",
        stylize(content="broken_tiff"),
        "not an image PIL can read",
    ),
    Case(
        "input files",
        "over the pixel limit (checked from the header)",
        stylize("--max-pixels", "1000000", content="big"),
        "over the limit of 1,000,000",
    ),
    Case("input files", "no style", stylize(style=None), "no style image"),
    Case(
        "input files",
        "a style weight that is not a number",
        stylize("--style", "@style.png:abc", style=None),
        "weight after ':' must be a number",
    ),
    Case(
        "input files",
        "an unknown layer after @",
        stylize("--style", "@style.png@relu9_9", style=None),
        "unknown VGG-19 layer 'relu9_9'",
    ),
    Case(
        "input files",
        "a label image with more regions than styles",
        stylize("--mask", "@labels.png"),
        "the label image has 2 regions .* but there are 1",
    ),
    Case(
        "input files",
        "a label image that is a photo",
        stylize("--mask", "@content.png"),
        "colors; use a PNG with one flat color per region",
    ),
    Case(
        "input files",
        "--style-mask count differs from the styles",
        stylize("--style-mask", "@labels.png", "--style-mask", "@labels.png"),
        "2 --style-mask given for 1 styles",
    ),
    # option values
    Case("option values", "unknown method", stylize("-m", "cubism"), "unknown method 'cubism'"),
    Case(
        "option values",
        "another method's option",
        stylize("--alpha", "0.5"),
        "--alpha does not apply to method 'gatys'",
    ),
    Case(
        "option values",
        "no such option",
        stylize("--colour", "red"),
        "unrecognized arguments: --colour",
    ),
    Case(
        "option values", "zero iterations", stylize("--iterations", "0"), "iterations must be >= 1"
    ),
    Case(
        "option values",
        "a negative weight",
        stylize("--style-weight", "-1"),
        "style-weight must be >= 0, not -1",
    ),
    Case(
        "option values",
        "a weight that is not finite",
        stylize("--tv-weight", "nan"),
        "tv-weight must be a finite number",
    ),
    Case(
        "option values",
        "alpha outside [0, 1]",
        stylize("-m", "adain", "--alpha", "2"),
        "alpha must be <= 1, not 2",
    ),
    Case(
        "option values",
        "an empty layer list",
        stylize("--style-layers", ""),
        "expected comma-separated text values, got ''",
    ),
    Case(
        "option values",
        "an unknown layer",
        stylize("--content-layers", "relu9_9"),
        "each of content-layers must be one of",
    ),
    Case(
        "option values",
        "a seed outside 64 bits",
        stylize("--seed", str(2**70)),
        "seed must be <= 18446744073709551615",
    ),
    Case("option values", "size 0", stylize("--size", "0"), "size must be >= 1"),
    Case(
        "option values",
        "a johnson network given to lapstyle",
        stylize("-m", "lapstyle", "--model", "johnson-klimt-beeches", style=None),
        "model 'johnson-klimt-beeches' is johnson's network for the one style 'klimt-beeches'; "
        "lapstyle cannot use it",
    ),
    Case(
        "option values",
        "a lapstyle model given to johnson",
        stylize("-m", "johnson", "--model", "lapstyle-boccioni-city", style=None),
        "model 'lapstyle-boccioni-city' is lapstyle's network for the one style "
        "'boccioni-city'; johnson cannot use it",
    ),
    Case(
        "option values",
        "regions for one of a per-style network's styles",
        stylize(
            "-m", "johnson", "--styles", "klimt-beeches", "--regions", "@labels.png", style=None
        ),
        "--regions paints each region in one of --styles: name two or more",
    ),
    Case(
        "option values",
        "fewer regions than the per-style network's styles named",
        stylize(
            "-m",
            "johnson",
            "--styles",
            "klimt-beeches,hartley-e,roerich-ridge",
            "--regions",
            "@labels.png",
            style=None,
        ),
        "the label image has 2 regions but there are 3 styles: every style needs a region",
    ),
    Case(
        "option values",
        "a size no image can have",
        stylize("--size", str(10**9)),
        "size must be <= 65536",
    ),
    Case(
        "option values",
        "style size 0 or negative",
        stylize("--style-size", "-5"),
        "style-size must be >= 1",
    ),
    Case(
        "option values",
        "an astronomically large style scale",
        stylize("--style-scale", "1e300"),
        "style-scale must be <= 128",
    ),
    Case(
        "option values",
        "style size and scale together",
        stylize("--style-size", "64", "--style-scale", "2"),
        "not both",
    ),
    Case(
        "option values",
        "start size larger than the output",
        stylize("--size", "64", "--start-size", "128"),
        "must not be larger",
    ),
    Case(
        "option values",
        "scale iterations that do not match the scales",
        stylize("--size", "64", "--start-size", "32", "--scale-iterations", "5,5,5"),
        "3 scale iterations given for 2 scales",
    ),
    Case(
        "option values",
        "a memory size that does not parse",
        stylize("--max-memory", "lots"),
        "expected a size like 8G",
    ),
    Case(
        "option values",
        "unknown precision",
        stylize("--precision", "half"),
        "invalid choice: 'half'",
    ),
    Case(
        "option values",
        "float16 on a CPU",
        stylize("--precision", "float16", "--device", "cpu"),
        "float16 runs only on CUDA",
    ),
    Case("option values", "unknown device", stylize("--device", "tpu"), "unknown device 'tpu'"),
    Case(
        "option values",
        "a weights hash that is not hexadecimal",
        stylize("--weights-sha256", "xyz"),
        "hexadecimal",
    ),
    Case(
        "option values",
        "a region color that is not a color",
        stylize("--mask", "@labels.png", "--region", "#-1-1-1=1"),
        "not a color: '#-1-1-1'",
    ),
    Case(
        "option values",
        "a depth model without a depth weight",
        stylize("--depth-model", "depth"),
        "depth-weight is 0",
    ),
    Case(
        "option values",
        "a start image that does not exist",
        stylize("--init", "nowhere.png"),
        "init must be 'content', 'noise' or an existing image file",
    ),
    # outputs
    Case("outputs", "output exists", stylize(output="exists.png"), "exists; pass --force"),
    Case(
        "outputs",
        "output folder missing",
        stylize(output="nowhere/out.png"),
        "output directory does not exist",
    ),
    Case(
        "outputs",
        "unsupported output format",
        stylize(output="out.gif"),
        "unsupported output format",
    ),
    Case(
        "outputs",
        "loss plot is the output",
        stylize("--plot-losses", "@out.png"),
        "--plot-losses .* is the same file as -o",
    ),
    Case(
        "outputs",
        "a loss plot of a method without losses",
        stylize("-m", "adain", "--plot-losses", "@plot.png"),
        "needs an optimization method",
    ),
    Case(
        "outputs",
        "steps saved by a method without steps",
        stylize("-m", "adain", "--save-every", "5"),
        "needs an optimization method",
    ),
    # size and memory, from the requested sizes
    Case(
        "size and memory",
        "a run too large for the memory limit",
        stylize("--size", "8000", "--max-memory", "1G"),
        "needs about .* GiB",
    ),
    Case(
        "size and memory",
        "a style too large for the memory limit",
        stylize("--size", "64", "--style-size", "30000", "--max-memory", "1G"),
        "needs about .* GiB",
    ),
    Case(
        "size and memory",
        "a tile smaller than the network's receptive field",
        stylize("-m", "adain", "--tile", "64"),
        "smaller than the 136 px of content adain paints each pixel from",
    ),
    Case(
        "size and memory",
        "a tile overlap larger than half the tile",
        stylize("-m", "adain", "--tile", "200", "--tile-overlap", "150"),
        "more than half the 200 px tile",
    ),
    Case(
        "size and memory",
        "a memory limit too small for even one tile",
        stylize("-m", "adain", "--size", "16000", "--style-size", "512", "--max-memory", "1G"),
        "even in tiles of 136 px",
    ),
    Case(
        "size and memory",
        "tiles asked of a method that does not tile",
        stylize("--tile", "512"),
        "gatys does not paint in tiles",
    ),
    Case(
        "outputs",
        "an output larger than its format holds",
        stylize(
            "-m",
            "adain",
            "--size",
            "65536",
            "--style-size",
            "512",
            "--max-memory",
            "64G",
            output="out.jpg",
        ),
        "too large for JPEG",
    ),
    Case(
        "outputs",
        "16 bits a channel in a format of 8",
        stylize("-m", "adain", "--bit-depth", "16", output="out.jpg"),
        "JPEG holds 8",
    ),
    Case(
        "size and memory",
        "a content too small for the deepest layer",
        stylize("--size", "8"),
        "smaller than the 16 px gatys needs",
    ),
    Case(
        "size and memory",
        "a style too small at the first coarse scale",
        stylize("--size", "64", "--start-size", "16", "--style-size", "20"),
        "at the first scale",
    ),
    # output safety (issue 18): --force, outputs that are inputs
    Case(
        "output safety",
        "the output is the content, even with --force",
        stylize("--force", output="content.png"),
        r"-o .*content\.png is the input .*content\.png",
    ),
    Case(
        "output safety",
        "the output is the style",
        stylize("--force", output="style.png"),
        "is the input .*style.png",
    ),
    Case(
        "output safety",
        "the output is the mask",
        stylize("--mask", "@labels.png", "--force", output="labels.png"),
        "is the input .*labels.png",
    ),
    Case(
        "output safety",
        "the loss plot is the content",
        stylize("--plot-losses", "@content.png", "--force"),
        "--plot-losses .* is the input",
    ),
    Case(
        "output safety",
        "the depth map is the image",
        lambda folder: ["depth", files(folder)["content"], "-o", files(folder)["content"], "-f"],
        "is the input .*content.png",
    ),
    # batch and Ray
    Case(
        "output safety",
        "batch: the manifest is the content, even with --force",
        batch("--manifest", "@content.png", "--force"),
        r"--manifest .*content\.png is the input .*content\.png",
    ),
    Case(
        "output safety",
        "batch: an existing manifest brushwork did not write",
        batch("--manifest", "@exists.png"),
        r"exists\.png exists and is not a brushwork manifest",
    ),
    Case(
        "output safety",
        "batch: a manifest in a missing folder",
        batch("--manifest", "@missing/log.jsonl"),
        "output directory does not exist: .*missing",
    ),
    Case(
        "output safety",
        "batch: the output folder holds the inputs",
        batch(output="."),
        r"-o .* contains the input .*content\.png",
    ),
    Case(
        "output safety",
        "batch: an output name in --pairs over the file name limit",
        batch("--pairs", "@pairs.csv", inputs=(), make=_long_output_name),
        "line 1: the output name is longer than the 241 bytes",
    ),
    Case(
        "output safety",
        "batch: a size no item can take, refused before the first item",
        batch("--size", "60000"),
        "no item of this batch can run .*needs about",
    ),
    Case(
        "output safety",
        "batch: --ray-gpus nan",
        batch("--engine", "ray", "--ray-gpus", "nan"),
        "--ray-gpus must be a number >= 0, not nan",
    ),
    Case(
        "output safety",
        "batch: a Ray address that accepts no connection (no wait)",
        batch("--engine", "ray", "--ray-address", "127.0.0.1:1"),
        "cannot reach the Ray cluster at 127.0.0.1:1",
    ),
    # video
    Case(
        "output safety",
        "video: --force on a folder brushwork did not write",
        video("--force", output="somefolder", make=lambda f: _user_folder(f / "somefolder")),
        "somefolder is a folder brushwork did not write",
    ),
    Case(
        "output safety",
        "video: a video file's path that is a folder",
        video("--force", output="film.mp4", make=lambda f: _user_folder(f / "film.mp4")),
        r"film\.mp4: is a directory",
    ),
    Case(
        "output safety",
        "video: the output is the input video, even with --force",
        video("--force", output="clip.mp4"),
        r"-o .*clip\.mp4 is the input .*clip\.mp4",
    ),
    Case(
        "output safety",
        "video: the work folder holds the output",
        video("--work-dir", "@renders", output="renders/out.mp4", make=_renders),
        "work folder .*renders and -o .*out.mp4 overlap",
    ),
    Case(
        "output safety",
        "video: an earlier run's work folder",
        video(output="stale.mp4", make=_stale_work_folder),
        "holds an earlier run's frames; pass --resume to continue it, or --force to start over",
    ),
    # training, demo and service
    Case(
        "training, demo and service",
        "a training batch too large for the memory",
        train("adain", "--content-dir", "@", "--style-dir", "@", "--batch-size", "1000000"),
        "adain training with batches of 1000000 crops of 256x256 px needs about .* GiB",
    ),
    Case(
        "training, demo and service",
        "training crops larger than any image",
        train("wct", "--images", "@", "--crop-size", "70000", "--load-size", "none"),
        "the wct training crops would be 70000x70000 px, over the 65536 px a side",
    ),
    Case(
        "training, demo and service",
        "a run folder that is the training data",
        train("depth", "--data", "@", out=""),
        "--out .* is the input .*; choose another path",
    ),
    Case(
        "training, demo and service",
        "a run folder inside a training data folder",
        train("adain", "--content-dir", "@", "--style-dir", "@"),
        "--out .*run lies inside the data folder",
    ),
    Case(
        "training, demo and service",
        "a style image too small for a training stage's losses",
        train(
            "lapstyle",
            "--content-dir",
            "@",
            "--style",
            "@labels.png",
            "--style-size",
            "64",
            out="../lapstyle-run",
        ),
        "style .*labels.png is 64x53 px at --style-size 64; its losses reach relu5_1 and need "
        "at least 64 px a side there",
    ),
    Case(
        "training, demo and service",
        "a demo over an earlier demo, without --force",
        demo,
        "chelsea-mosaic-adain.png exists; pass --force to overwrite",
    ),
    Case(
        "training, demo and service",
        "a port something else listens on",
        serve("--port", "@busy"),
        r"cannot listen on 127\.0\.0\.1:\d+: Address already in use",
    ),
    Case(
        "training, demo and service",
        "a --data folder whose jobs.sqlite3 is not a database",
        serve(index=b"my notes"),
        "jobs.sqlite3 is not a SQLite database",
    ),
]


@pytest.mark.usefixtures("no_work")
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.what)
def test_bad_input_is_one_line_before_any_work(capsys, tmp_path: Path, case: Case) -> None:
    message = expect_error(capsys, case.argv(tmp_path))
    assert re.search(case.expect, message), message
    assert not (tmp_path / "out.png").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporaries


def table(folder: Path, capsys: pytest.CaptureFixture[str]) -> str:
    lines = [
        "# Bad input and what brushwork says",
        "",
        "Every case below exits with status 2, prints one line `brushwork: error: ...` "
        "and writes no file, before any weights load or any work starts. Generated from "
        "`tests/test_bad_input.py` (the test fails if this file drifts from it); paths "
        "are shown as `DIR/`.",
        "",
    ]
    group = None
    for case in CASES:
        if case.group != group:
            group = case.group
            lines += [f"## {group.capitalize()}", "", "| input | message |", "|---|---|"]
        message = expect_error(capsys, case.argv(folder)).replace(str(folder), "DIR")
        message = re.sub(r"\d+\.\d GiB\)", "N GiB)", message)
        message = re.sub(r"about \d+\.\d GiB", "about N GiB", message)
        message = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", message)
        escaped = message.replace("|", "\\|")
        lines.append(f"| {case.what} | {escaped} |")
        if case is not CASES[-1] and CASES[CASES.index(case) + 1].group != group:
            lines.append("")
    return "\n".join(lines) + "\n"


@pytest.mark.usefixtures("no_work")
def test_the_docs_table_is_generated_from_these_cases(capsys, tmp_path: Path) -> None:
    generated = table(tmp_path, capsys)
    if os.environ.get("BRUSHWORK_WRITE_DOCS"):
        DOC.write_text(generated)
    assert DOC.read_text() == generated, (
        "docs/bad-input.md is out of date: BRUSHWORK_WRITE_DOCS=1 pytest tests/test_bad_input.py"
    )


def test_pillow_log_lines_do_not_reach_the_user(tmp_path: Path) -> None:
    """Pillow logs an error line of its own for some broken headers; outside the test
    harness (which captures logging) it would print above brushwork's one line."""
    import subprocess
    import sys

    files(tmp_path)
    completed = subprocess.run(
        [sys.executable, "-m", "brushwork.cli", *stylize(content="broken_tiff")(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 2, completed.stderr
    assert completed.stderr.splitlines() == [
        f"brushwork: error: {tmp_path / 'broken.tif'}: not an image PIL can read "
        "(supported: JPEG, PNG, WebP, TIFF, BMP)"
    ]
    assert not (tmp_path / "out.png").exists()
