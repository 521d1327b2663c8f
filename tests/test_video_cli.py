"""``brushwork video`` (brushwork.video.cli): the command, its summary and interruption, and
every bad input of the issue: one line ``brushwork: error: ...``, exit status 2, no output
file, before any work."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import expect_error, save_decoder
from PIL import Image
from videoclips import pan, texture, truncated_clip, write_clip

from brushwork.cli import COMMANDS, main
from brushwork.encoders import VGG19
from brushwork.examples import style_path

pytestmark = pytest.mark.usefixtures("one_thread")
STYLE = str(style_path("strokes"))


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return write_clip(tmp_path / "clip.mp4", pan(4, 32, 48, shift=2))


@pytest.fixture
def model(tmp_path: Path, tiny_encoder: VGG19) -> str:
    return str(save_decoder(tmp_path / "adain.safetensors", tiny_encoder))


def test_video_is_one_lazy_command() -> None:
    assert COMMANDS["video"].target == "brushwork.video.cli:cmd_video"


def test_help_lists_the_video_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["video", "--help"])
    text = capsys.readouterr().out
    for flag in (
        "--blend",
        "--temporal-weight",
        "--temporal-frames",
        "--resume",
        "--report",
        "--codec",
        "--partial",
        "--alpha",
        "--size",
    ):
        assert flag in text
    assert "default: adain" in text


@pytest.mark.usefixtures("tiny_pretrained")
def test_a_run_prints_the_output_and_a_json_summary(
    tmp_path: Path, clip: Path, model: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.mp4"
    assert (
        main(["video", str(clip), STYLE, "-o", str(out), "--model", model, "--size", "48", "-q"])
        == 0
    )
    assert capsys.readouterr().out.strip() == str(out)
    assert out.is_file()
    assert (
        main(
            [
                "video",
                str(clip),
                STYLE,
                "-o",
                str(out),
                "--model",
                model,
                "--size",
                "48",
                "-q",
                "--json",
                "--report",
                "-f",
            ]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert (summary["frames"], summary["stylized"], summary["size"]) == (4, 4, [48, 32])
    assert set(summary["warping_error"]) == {"output", "input"}


@pytest.mark.usefixtures("tiny_pretrained")
def test_interrupted_and_resumed_from_the_command_line(
    tmp_path: Path,
    clip: Path,
    model: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from brushwork.video import runner

    original = runner._Run._stylize
    calls = {"n": 0}

    def stop_at_third(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    out = tmp_path / "out.mp4"
    argv = ["video", str(clip), STYLE, "-o", str(out), "--model", model, "--size", "48", "-q"]
    with monkeypatch.context() as patch:
        patch.setattr(runner._Run, "_stylize", stop_at_third)
        assert main(argv) == 130
    err = capsys.readouterr().err
    assert f"{out} not written; 2 finished frame(s) kept in {out}.work: --resume continues" in err
    assert not out.exists()
    assert main([*argv, "--resume", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["stylized"], summary["resumed"]) == (2, 2)
    assert out.is_file() and not Path(f"{out}.work").exists()


def _audio_only(path: Path) -> Path:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=8000)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
        )
        frame.sample_rate, frame.pts = 8000, 0
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def _work_folder(folder: Path, manifest: dict[str, Any]) -> Path:
    """A work folder as brushwork leaves it (marked), with ``manifest``."""
    from brushwork.outputs import mark_folder

    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps(manifest))
    mark_folder(folder, ["manifest.json", "frames"])
    return folder


def _bad_input(tmp_path: Path, case: str) -> tuple[list[str], str]:
    """(arguments, expected message) of one bad input."""
    out = str(tmp_path / "out.mp4")
    clip = write_clip(tmp_path / "clip.mp4", pan(4, 32, 48))
    if case == "not a video":
        path = tmp_path / "notes.mp4"
        path.write_text("hello " * 50)
        return [str(path), STYLE, "-o", out], "notes.mp4: not a video PyAV can read"
    if case == "no video stream":
        path = _audio_only(tmp_path / "sound.m4a")
        return [str(path), STYLE, "-o", out], "no video stream (streams: audio aac)"
    if case == "zero frames":
        whole = write_clip(tmp_path / "w.mp4", pan(4), options={"movflags": "faststart"})
        data = bytearray(whole.read_bytes())
        start = data.index(b"mdat") + 4
        data[start:] = bytes(len(data) - start)
        (tmp_path / "blank.mp4").write_bytes(bytes(data))
        return [
            str(tmp_path / "blank.mp4"),
            STYLE,
            "-o",
            out,
        ], "the video stream has no frames that decode"
    if case == "breaks mid-file":
        whole = write_clip(
            tmp_path / "w.mp4", pan(20, 64, 96, shift=2), options={"movflags": "faststart"}
        )
        data = whole.read_bytes()
        (tmp_path / "cut.mp4").write_bytes(data[: len(data) * 6 // 10])
        return [str(tmp_path / "cut.mp4"), STYLE, "-o", out], "of 20 frames do not decode"
    if case == "frames of different sizes":
        folder = tmp_path / "frames"
        folder.mkdir()
        Image.fromarray(texture(30, 40)).save(folder / "1.png")
        Image.fromarray(texture(20, 40)).save(folder / "2.png")
        return [
            str(folder),
            STYLE,
            "-o",
            out,
        ], "frames of different sizes: 1.png is 40x30, 2.png is 40x20"
    if case == "unsupported container":
        return [
            str(clip),
            STYLE,
            "-o",
            str(tmp_path / "out.xyz"),
        ], "unsupported output format ('.xyz')"
    if case == "unsupported codec":
        return [
            str(clip),
            STYLE,
            "-o",
            str(tmp_path / "out.webm"),
            "--codec",
            "libx264",
        ], "webm cannot hold libx264 video"
    if case == "output exists":
        Path(out).write_bytes(b"old")
        return [str(clip), STYLE, "-o", out], "exists; pass --force to overwrite"
    if case == "resume from another input":
        _work_folder(
            tmp_path / "out.mp4.work",
            {"input": {"kind": "file", "name": "other.mp4", "frames": 9, "sha256": "ab" * 32}},
        )
        return (
            [str(clip), STYLE, "-o", out, "--resume"],
            "was made from another input "
            "(other.mp4, 9 frames, sha256 abababababab; this one is clip.mp4, 4 frames",
        )
    if case == "resume with other options":
        from brushwork.video.io import scan
        from brushwork.video.work import fingerprint

        manifest = {"input": fingerprint(scan(clip)), "settings": {"method": "gatys"}}
        _work_folder(tmp_path / "out.mp4.work", manifest)
        return [str(clip), STYLE, "-o", out, "--resume"], "was made with other settings (controls"
    if case == "nothing to resume":
        return [str(clip), STYLE, "-o", out, "--resume"], "nothing to resume"
    if case == "a work folder without --resume":
        _work_folder(tmp_path / "out.mp4.work", {})
        return [str(clip), STYLE, "-o", out], "holds an earlier run's frames; pass --resume"
    return _bad_option(tmp_path, clip, out, case)


def _bad_option(tmp_path: Path, clip: Path, out: str, case: str) -> tuple[list[str], str]:
    """(arguments, expected message) of one bad option (the input itself is fine)."""
    if case == "temporal with coarse to fine":
        return [
            str(clip),
            STYLE,
            "-o",
            out,
            "-m",
            "gatys",
            "--start-size",
            "16",
        ], "temporal consistency needs a single-scale run"
    if case == "later iterations with a feed-forward method":
        return [
            str(clip),
            STYLE,
            "-o",
            out,
            "--later-iterations",
            "5",
        ], "--later-iterations needs an optimization method"
    if case == "another method's option":
        return [
            str(clip),
            STYLE,
            "-o",
            out,
            "-m",
            "gatys",
            "--alpha",
            "0.5",
        ], "--alpha does not apply to method 'gatys'"
    if case == "a bad video option":
        return [str(clip), STYLE, "-o", out, "--blend", "2"], "blend must be"
    if case == "fps for a video file":
        return [str(clip), STYLE, "-o", out, "--fps", "12"], "--fps applies to a folder"
    if case == "no style":
        return [str(clip), "-o", out], "no style image"
    if case == "missing input":
        return [str(tmp_path / "none.mp4"), STYLE, "-o", out], "none.mp4: no such file"
    raise AssertionError(case)


BAD = [
    "not a video",
    "no video stream",
    "zero frames",
    "breaks mid-file",
    "frames of different sizes",
    "unsupported container",
    "unsupported codec",
    "output exists",
    "resume from another input",
    "resume with other options",
    "nothing to resume",
    "a work folder without --resume",
    "temporal with coarse to fine",
    "later iterations with a feed-forward method",
    "another method's option",
    "a bad video option",
    "fps for a video file",
    "no style",
    "missing input",
]


@pytest.mark.usefixtures("no_work")
@pytest.mark.parametrize("case", BAD)
def test_bad_input_is_one_line_exit_2_and_no_output(
    tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv, expected = _bad_input(tmp_path, case)
    before = {p.name for p in tmp_path.iterdir()}
    message = expect_error(capsys, ["video", *argv, "--size", "48"])
    assert expected in message, message
    after = {p.name for p in tmp_path.iterdir()}
    created = after - before
    assert not created, created  # no output file, no work folder, no temporary file


def test_sigterm_stops_the_run_like_ctrl_c() -> None:
    import os
    import signal

    from brushwork.video.cli import _terminate_as_interrupt

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt), _terminate_as_interrupt():
        os.kill(os.getpid(), signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) == before


@pytest.mark.usefixtures("tiny_pretrained")
def test_partial_stylizes_what_decodes_and_says_what_was_lost(
    tmp_path: Path, model: str, capsys: pytest.CaptureFixture[str]
) -> None:
    whole = write_clip(
        tmp_path / "w.mp4", pan(20, 64, 96, shift=2), options={"movflags": "faststart"}
    )
    data = whole.read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) * 6 // 10])
    out = tmp_path / "frames"
    argv = [
        "video",
        str(tmp_path / "cut.mp4"),
        STYLE,
        "-o",
        str(out),
        "--model",
        model,
        "--size",
        "48",
        "--partial",
        "--json",
        "-q",
    ]
    assert main(argv) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["lost"] > 0 and summary["frames"] + summary["lost"] == 20
    assert len(list(out.glob("*.png"))) == summary["frames"]
    assert f"{summary['lost']} of 20 frames do not decode" in captured.err
    assert f"{summary['lost']} frame(s) of" in captured.err


@pytest.mark.usefixtures("tiny_pretrained")
def test_a_frame_folder_output_is_replaced_only_with_force(
    tmp_path: Path, clip: Path, model: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "frames"
    argv = [
        "video",
        str(clip),
        STYLE,
        "-o",
        str(out),
        "--model",
        model,
        "--size",
        "48",
        "-q",
        "--no-temporal",
    ]
    assert main(argv) == 0
    assert sorted(p.name for p in out.glob("*.png")) == [f"{i:06d}.png" for i in range(1, 5)]
    capsys.readouterr()
    assert "exists; pass --force" in expect_error(capsys, argv)
    assert main([*argv, "--max-frames", "2", "-f"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        ".brushwork-output.json",
        "000001.png",
        "000002.png",
    ]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("frames")) == ["frames"]


@pytest.mark.usefixtures("tiny_pretrained")
def test_no_audio_leaves_the_audio_out(tmp_path: Path, model: str) -> None:
    from videoclips import packets

    source = write_clip(tmp_path / "talk.mp4", pan(4), audio_seconds=0.4)
    out = tmp_path / "out.mp4"
    assert (
        main(
            [
                "video",
                str(source),
                STYLE,
                "-o",
                str(out),
                "--model",
                model,
                "--size",
                "48",
                "-q",
                "--no-audio",
            ]
        )
        == 0
    )
    with pytest.raises(StopIteration):
        packets(out)


@pytest.mark.usefixtures("tiny_pretrained")
@pytest.mark.parametrize("output", ["out.mp4", "frames"])
def test_a_stream_that_breaks_during_the_run_is_one_line_and_no_output(
    tmp_path: Path,
    clip: Path,
    model: str,
    output: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The input scanned whole, but decodes fewer frames while the run streams it (the file
    changed): one line, exit 2, no output; the finished frames stay for a later run."""
    from brushwork.video import io

    original = io.read_frames

    def short(*args: Any, **kwargs: Any) -> Any:
        for index, frame in enumerate(original(*args, **kwargs)):
            if index == 2:
                return
            yield frame

    monkeypatch.setattr(io, "read_frames", short)
    out = tmp_path / output
    message = expect_error(
        capsys,
        ["video", str(clip), STYLE, "-o", str(out), "--model", model, "--size", "48", "-q"],
    )
    assert "frame 3 of 4 does not decode now" in message, message
    assert not out.exists()
    assert [p.name for p in tmp_path.glob(f".{output}*")] == []  # no temporary output
    assert len(list((tmp_path / f"{output}.work" / "frames").glob("*.png"))) == 2


@pytest.mark.usefixtures("tiny_pretrained")
def test_a_first_frame_that_no_longer_decodes_leaves_nothing(
    tmp_path: Path,
    clip: Path,
    model: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from brushwork.video import io

    monkeypatch.setattr(io, "read_frames", lambda *args, **kwargs: iter(()))
    before = {p.name for p in tmp_path.iterdir()}
    message = expect_error(
        capsys,
        [
            "video",
            str(clip),
            STYLE,
            "-o",
            str(tmp_path / "out.mp4"),
            "--model",
            model,
            "--size",
            "48",
            "-q",
        ],
    )
    assert "the first frame does not decode now" in message, message
    assert {p.name for p in tmp_path.iterdir()} == before


@pytest.mark.usefixtures("tiny_pretrained")
def test_report_prints_the_warping_error_of_output_and_input(
    tmp_path: Path, clip: Path, model: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.mp4"
    argv = ["video", str(clip), STYLE, "-o", str(out), "--model", model, "--size", "48"]
    assert main([*argv, "-q", "--report"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == str(out)
    assert lines[1].startswith("warping error (Lai et al. 2018")
    numbers = [float(x) for x in re.findall(r"(?:output|input) (\d+\.\d+)", lines[1])]
    assert len(numbers) == 2 and all(n >= 0 for n in numbers)


# ----------------------------------------------------------------------------- output safety
# issue 18: --force replaces only a file or a folder brushwork wrote; no output is an input;
# the work folder holds neither; every check before any work; nothing left behind


def _tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder``: relative path → bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _user_files(folder: Path) -> Path:
    folder.mkdir()
    (folder / "notes.txt").write_text("the user's notes")
    (folder / "sub").mkdir()
    (folder / "sub" / "photo.png").write_bytes(b"the user's photo")
    return folder


def _refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], expected: str
) -> None:
    """One line matching ``expected``, exit 2, and every file under ``tmp_path`` as it was
    (nothing removed, changed or added)."""
    before = _tree(tmp_path)
    names = sorted(p.name for p in tmp_path.iterdir())
    message = expect_error(capsys, ["video", *argv, "--size", "48"])
    assert re.search(expected, message), message
    assert _tree(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == names


@pytest.mark.usefixtures("no_work")
@pytest.mark.parametrize("force", [[], ["--force"]])
def test_force_never_replaces_a_folder_of_other_files(
    tmp_path: Path, clip: Path, force: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _user_files(tmp_path / "somefolder")
    expected = "somefolder is a folder brushwork did not write"
    _refused(capsys, tmp_path, [str(clip), STYLE, "-o", str(folder), *force], expected)


@pytest.mark.usefixtures("no_work")
@pytest.mark.parametrize("force", [[], ["--force"]])
def test_a_video_path_that_is_a_folder_is_refused_never_filled_with_frames(
    tmp_path: Path, clip: Path, force: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _user_files(tmp_path / "out.mp4")
    _refused(capsys, tmp_path, [str(clip), STYLE, "-o", str(folder), *force], "is a directory")


def _frames_input(folder: Path) -> Path:
    folder.mkdir()
    for index, frame in enumerate(pan(3, 32, 48)):
        Image.fromarray(frame).save(folder / f"{index}.png")
    return folder


def _output_is_an_input(
    tmp_path: Path, clip: Path, model: Path, case: str
) -> tuple[list[str], str]:
    """(arguments, expected message) of an output that is, or holds, an input."""
    if case == "the input video":
        return [str(clip), STYLE, "-o", str(clip)], r"-o .*clip\.mp4 is the input .*clip\.mp4"
    if case == "a link to the input video":
        (tmp_path / "link.mp4").symlink_to(clip)
        return [str(clip), STYLE, "-o", str(tmp_path / "link.mp4")], r"link\.mp4 is the input"
    if case == "a frames folder as its own output":
        frames = _frames_input(tmp_path / "frames")
        return [str(frames), STYLE, "-o", str(frames)], r"-o .*frames is the input .*frames"
    if case == "a folder holding the style":
        (tmp_path / "styles").mkdir()
        style = tmp_path / "styles" / "strokes.png"
        style.write_bytes(Path(STYLE).read_bytes())
        return [str(clip), str(style), "-o", str(style.parent)], "contains the input .*strokes"
    if case == "a folder holding the mask":
        (tmp_path / "masks").mkdir()
        mask = tmp_path / "masks" / "labels.png"
        Image.new("RGB", (48, 32), (255, 255, 255)).save(mask)
        argv = [str(clip), STYLE, "--mask", str(mask), "-o", str(mask.parent)]
        return argv, "contains the input .*labels.png"
    if case == "a folder holding the model":
        return [str(clip), STYLE, "-o", str(model.parent)], "contains the input .*adain"
    raise AssertionError(case)


@pytest.mark.usefixtures("no_work")
@pytest.mark.parametrize(
    "case",
    [
        "the input video",
        "a link to the input video",
        "a frames folder as its own output",
        "a folder holding the style",
        "a folder holding the mask",
        "a folder holding the model",
    ],
)
def test_no_output_is_an_input_even_with_force(
    tmp_path: Path,
    clip: Path,
    tiny_encoder: VGG19,
    case: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "models").mkdir()
    model = save_decoder(tmp_path / "models" / "adain.safetensors", tiny_encoder)
    argv, expected = _output_is_an_input(tmp_path, clip, model, case)
    _refused(capsys, tmp_path, [*argv, "--model", str(model), "--force"], expected)


@pytest.mark.usefixtures("no_work")
@pytest.mark.parametrize(
    ("output", "work", "expected"),
    [
        ("renders/out.mp4", "renders", "work folder .*renders and -o .*renders/out.mp4 overlap"),
        ("frames", "frames", "work folder .*frames and -o .*frames overlap"),
        ("painted", "painted/work", "work folder .*work and -o .*painted overlap"),
        ("out.mp4", "out.mp4", r"work folder .*out\.mp4 and -o .*out\.mp4 overlap"),
        ("out.mp4", "", "work folder .* contains the input .*clip"),
    ],
)
def test_the_work_folder_holds_no_output_and_no_input(
    tmp_path: Path,
    clip: Path,
    output: str,
    work: str,
    expected: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from brushwork.outputs import mark_folder

    _user_files(tmp_path / "renders")
    (tmp_path / "painted").mkdir()  # frames brushwork wrote: --force may replace them
    mark_folder(tmp_path / "painted", [])
    argv = [str(clip), STYLE, "-o", str(tmp_path / output), "--work-dir", str(tmp_path / work)]
    _refused(capsys, tmp_path, [*argv, "--force"], expected)


@pytest.mark.usefixtures("no_work")
@pytest.mark.parametrize("flag", ["-o", "--work-dir"])
@pytest.mark.parametrize("path", [".", ".."])
def test_the_current_folder_or_an_ancestor_is_refused_in_one_line(
    tmp_path: Path,
    clip: Path,
    flag: str,
    path: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    argv = [str(clip), STYLE, "--force"]
    argv += ["-o", path] if flag == "-o" else ["-o", str(tmp_path / "out.mp4"), flag, path]
    label = "-o" if flag == "-o" else "work folder"
    expected = f"{label} {re.escape(path)} (is the current folder|contains the input)"
    _refused(capsys, tmp_path, argv, expected)


@pytest.mark.usefixtures("tiny_pretrained")
def test_the_cleanup_removes_only_what_brushwork_wrote_in_the_work_folder(
    tmp_path: Path, clip: Path, model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from brushwork.video import runner

    original = runner._Run._stylize

    def drop_a_file(self: Any, index: int, *args: Any, **kwargs: Any) -> Any:
        if index == 1:
            (self.work_dir / "notes.txt").write_text("put here while it ran")
        return original(self, index, *args, **kwargs)

    monkeypatch.setattr(runner._Run, "_stylize", drop_a_file)
    out = tmp_path / "out.mp4"
    argv = ["video", str(clip), STYLE, "-o", str(out), "--model", model, "--size", "48", "-q"]
    assert main(argv) == 0
    assert out.is_file()
    assert _tree(tmp_path / "out.mp4.work") == {"notes.txt": b"put here while it ran"}


def _interrupted(tmp_path: Path, argv: list[str], monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run ``argv`` until Ctrl-C at the third frame: the work folder keeps two frames."""
    from brushwork.video import runner

    original = runner._Run._stylize

    def stop_at_third(self: Any, index: int, *args: Any, **kwargs: Any) -> Any:
        if index == 2:
            raise KeyboardInterrupt
        return original(self, index, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(runner._Run, "_stylize", stop_at_third)
        assert main(argv) == 130
    work = tmp_path / "out.mp4.work"
    assert len(list((work / "frames").glob("*.png"))) == 2
    return work


@pytest.mark.usefixtures("tiny_pretrained")
def test_a_stale_work_folder_says_what_to_do_and_force_starts_over(
    tmp_path: Path,
    clip: Path,
    model: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "out.mp4"
    argv = ["video", str(clip), STYLE, "-o", str(out), "--model", model, "--size", "48", "-q"]
    work = _interrupted(tmp_path, argv, monkeypatch)
    capsys.readouterr()
    changed = [*argv, "--alpha", "0.5"]
    message = expect_error(capsys, changed)
    assert message == (
        f"work folder {work} holds an earlier run's frames; pass --resume to continue it, "
        "or --force to start over"
    )
    message = expect_error(capsys, [*changed, "--resume"])
    assert re.search(
        r"cannot resume: .* other settings \(options.alpha: .*\); --force "
        r"without --resume starts over",
        message,
    ), message
    assert main([*changed, "--force", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["stylized"], summary["resumed"]) == (4, 0)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["clip.mp4", "adain.safetensors", "out.mp4"]
    )


@pytest.mark.usefixtures("tiny_pretrained")
@pytest.mark.parametrize("later", [["--resume"], ["--force"]])
def test_a_later_run_clears_the_temporary_files_a_killed_run_left(
    tmp_path: Path,
    clip: Path,
    model: str,
    later: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "out.mp4"
    argv = ["video", str(clip), STYLE, "-o", str(out), "--model", model, "--size", "48", "-q"]
    work = _interrupted(tmp_path, argv, monkeypatch)
    # what kill -9 leaves while the video is encoded, or the work folder made or its frames kept
    stale = [
        tmp_path / ".out.mp4.x7_k2m9q.tmp",
        tmp_path / ".out.mp4.work.abcdefgh.tmp",
        work / ".tracker.npz.k1l2m3n4.tmp",
    ]
    stale[0].write_bytes(b"half a video")
    stale[1].mkdir()
    (stale[1] / "manifest.json").write_text("{}")
    stale[2].write_bytes(b"half a state")
    others = [
        tmp_path / ".out.mp4.notes",
        tmp_path / ".out.mp4.abc.tmp",
        tmp_path / ".out2.mp4.abcdefgh.tmp",
    ]
    for file in others:
        file.write_bytes(b"not brushwork's")
    assert main([*argv, *later]) == 0
    assert out.is_file() and not work.exists()
    assert [path.exists() for path in stale] == [False] * 3
    assert all(file.read_bytes() == b"not brushwork's" for file in others)


@pytest.mark.usefixtures("tiny_pretrained")
def test_partial_stylizes_every_frame_it_counted_on_a_clip_with_b_frames(
    tmp_path: Path, model: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A truncated clip whose decoder holds frames in flight: the count the check makes is
    the count the run reads (it used to accept 9 frames and then fail at the 8th)."""
    cut = truncated_clip(tmp_path / "cut.mp4")
    out = tmp_path / "frames"
    argv = ["video", str(cut), STYLE, "-o", str(out), "--model", model, "--size", "48"]
    assert main([*argv, "--partial", "--json", "-q", "--no-temporal"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert 0 < summary["frames"] < 30 and summary["frames"] + summary["lost"] == 30
    assert len(list(out.glob("*.png"))) == summary["frames"]
