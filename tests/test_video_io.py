"""Video in and out (brushwork.video.io, brushwork.video.writer): scanning inputs, frame
folders, timestamps, rotation, odd sizes, audio, containers and codecs; every bad input is
one clear error before any work."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import SHARED, requires_shared
from PIL import Image
from videoclips import packets, pan, read_clip, texture, truncated_clip, write_clip

from brushwork import events as ev
from brushwork.errors import BrushworkError
from brushwork.outputs import OutputPlan
from brushwork.video.io import even, read_frames, scan
from brushwork.video.writer import add_output, plan_output, write_video


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return write_clip(tmp_path / "clip.mp4", pan(6, 32, 48))


def _frames_folder(folder: Path, count: int, size: tuple[int, int] = (40, 30)) -> Path:
    folder.mkdir()
    for index in range(count):
        Image.fromarray(texture(size[1], size[0], seed=index)).save(folder / f"f{index}.png")
    return folder


def test_scan_lists_frames_timestamps_and_size(clip: Path) -> None:
    info = scan(clip)
    assert (info.frames, info.size, info.rotation, info.lost) == (6, (48, 32), 0, 0)
    assert info.rate == 10 and [round(info.seconds(i), 3) for i in range(6)] == [
        0.0,
        0.1,
        0.2,
        0.3,
        0.4,
        0.5,
    ]
    assert info.audio is None


def test_read_frames_resizes_one_frame_at_a_time(clip: Path) -> None:
    info = scan(clip)
    frames = read_frames(info, (24, 16), limit=4)
    first = next(frames)
    assert first.shape == (16, 24, 3) and first.dtype == np.uint8
    assert len(list(frames)) == 3


def test_a_folder_is_read_in_natural_order_at_the_given_rate(tmp_path: Path) -> None:
    folder = _frames_folder(tmp_path / "frames", 12)
    info = scan(folder, fps=5)
    assert info.folder and info.frames == 12 and info.size == (40, 30)
    assert [p.name for p in info.files[:3]] == ["f0.png", "f1.png", "f2.png"]
    assert info.files[10].name == "f10.png"  # not after f1.png
    assert info.seconds(5) == pytest.approx(1.0)
    first = next(read_frames(info, (40, 30)))
    assert np.array_equal(first, texture(30, 40, seed=0))


def test_variable_timestamps_are_kept(tmp_path: Path) -> None:
    pts = [0, 40, 120, 160, 400, 440]
    source = write_clip(tmp_path / "vfr.mp4", pan(6), pts=pts, time_base=Fraction(1, 1000))
    info = scan(source)
    times = [info.seconds(i) for i in range(6)]
    assert times == pytest.approx([p / 1000 for p in pts], abs=1e-6)
    spec = plan_output(tmp_path / "out.mkv")
    write_video(
        str(tmp_path / "out.mkv"),
        spec,
        (48, 32),
        info,
        6,
        iter(enumerate(read_frames(info, (48, 32)))),
    )
    _, written, _ = read_clip(tmp_path / "out.mkv")
    assert [t - written[0] for t in written] == pytest.approx([p / 1000 for p in pts], abs=1.5e-3)


@pytest.mark.parametrize("suffix", [".mp4", ".mov", ".mkv", ".webm"])
def test_rotation_is_read_and_written_back(tmp_path: Path, suffix: str) -> None:
    frames = pan(4, 32, 48)
    source = write_clip(tmp_path / "rot.mp4", frames, rotation=90)
    info = scan(source)
    assert info.rotation == 90 and info.stored_size == (48, 32) and info.size == (32, 48)
    upright = next(read_frames(info, info.size))
    assert upright.shape == (48, 32, 3)  # turned: taller than wide
    right = np.abs(upright.astype(int) - np.rot90(frames[0]).astype(int)).mean()
    wrong = np.abs(upright.astype(int) - np.rot90(frames[0], -1).astype(int)).mean()
    assert right < 10 < 3 * 10 < wrong  # H.264 at 48x32 loses a few levels per pixel
    out = tmp_path / f"out{suffix}"
    spec = plan_output(out)
    write_video(str(out), spec, info.size, info, 4, iter(enumerate(read_frames(info, info.size))))
    stored, _, rotation = read_clip(out)
    assert rotation == 90 and stored[0].shape == (32, 48, 3)  # stored as the input was
    again = scan(out)  # each container is an input too
    assert (again.frames, again.rotation, again.size) == (4, 90, (32, 48))


def test_codecs_that_need_even_sides_say_so(tmp_path: Path) -> None:
    assert plan_output(tmp_path / "a.mp4").even
    assert not plan_output(tmp_path / "a.gif").even
    assert not plan_output(tmp_path / "frames").even
    assert (even(143), even(144), even(1)) == (144, 144, 2)


def test_audio_is_copied_packet_for_packet(tmp_path: Path) -> None:
    source = write_clip(tmp_path / "talk.mp4", pan(10), audio_seconds=1.0)
    info = scan(source)
    assert info.audio is not None and info.audio.codec == "aac"
    spec = plan_output(tmp_path / "out.mov", info=info)
    assert spec.audio == "copy"
    write_video(
        str(tmp_path / "out.mov"),
        spec,
        (48, 32),
        info,
        10,
        iter(enumerate(read_frames(info, (48, 32)))),
    )
    assert packets(tmp_path / "out.mov") == packets(source)


def test_audio_ends_with_the_last_frame_written(tmp_path: Path) -> None:
    source = write_clip(tmp_path / "talk.mp4", pan(10), audio_seconds=1.0)
    info = scan(source)
    spec = plan_output(tmp_path / "out.mp4", info=info)
    write_video(
        str(tmp_path / "out.mp4"),
        spec,
        (48, 32),
        info,
        5,
        iter(enumerate(read_frames(info, (48, 32), 5))),
    )
    assert 0 < len(packets(tmp_path / "out.mp4")) < len(packets(source))


def test_audio_a_container_cannot_hold_is_re_encoded(tmp_path: Path) -> None:
    source = write_clip(tmp_path / "talk.mp4", pan(6), audio_seconds=0.6)
    info = scan(source)
    with ev.bound(collect := ev.Collect()):
        spec = plan_output(tmp_path / "out.webm", info=info)
    assert spec.audio == "encode" and spec.audio_codec == "libopus"
    assert "re-encoded as libopus" in collect.of(ev.Warned)[0].message
    write_video(
        str(tmp_path / "out.webm"),
        spec,
        (48, 32),
        info,
        6,
        iter(enumerate(read_frames(info, (48, 32)))),
    )
    import av

    with av.open(str(tmp_path / "out.webm")) as written:
        assert [s.codec_context.name for s in written.streams] == ["vp9", "opus"]


@pytest.mark.parametrize("output", ["out.gif", "frames"])
def test_outputs_without_audio_warn_that_it_is_dropped(tmp_path: Path, output: str) -> None:
    source = write_clip(tmp_path / "talk.mp4", pan(4), audio_seconds=0.4)
    with ev.bound(collect := ev.Collect()):
        spec = plan_output(tmp_path / output, info=scan(source))
    assert spec.audio is None
    assert "audio is not kept" in collect.of(ev.Warned)[0].message


def test_a_gif_keeps_its_colours_with_one_palette(tmp_path: Path) -> None:
    frames = pan(3, 32, 48)
    folder = _frames_folder(tmp_path / "in", 1)
    info = scan(folder)
    info.pts = [0, 1, 2]
    spec = plan_output(tmp_path / "out.gif")
    write_video(str(tmp_path / "out.gif"), spec, (48, 32), info, 3, iter(enumerate(frames)))
    with Image.open(tmp_path / "out.gif") as gif:
        assert gif.n_frames == 3
        gif.seek(2)
        decoded = np.asarray(gif.convert("RGB")).astype(int)
    assert np.abs(decoded - frames[2].astype(int)).mean() < 12


# ----------------------------------------------------------------------------- bad input


def test_not_a_video(tmp_path: Path) -> None:
    path = tmp_path / "notes.mp4"
    path.write_text("not a video " * 20)
    with pytest.raises(BrushworkError, match=r"notes\.mp4: not a video PyAV can read"):
        scan(path)


def test_an_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(BrushworkError, match="empty file"):
        scan(tmp_path / "empty.mp4")


def test_a_still_image_is_not_a_video(tmp_path: Path) -> None:
    Image.fromarray(texture(8, 8)).save(tmp_path / "still.png")
    with pytest.raises(BrushworkError, match="a still image, not a video"):
        scan(tmp_path / "still.png")


def test_no_video_stream(tmp_path: Path) -> None:
    import av

    path = tmp_path / "sound.m4a"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=8000)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
        )
        frame.sample_rate, frame.pts = 8000, 0
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    with pytest.raises(BrushworkError, match=r"no video stream \(streams: audio aac\)"):
        scan(path)


def test_zero_frames(tmp_path: Path) -> None:
    """A video stream whose packets all fail to decode (its data zeroed) has no frames."""
    source = write_clip(tmp_path / "whole.mp4", pan(4), options={"movflags": "faststart"})
    data = bytearray(source.read_bytes())
    start = data.index(b"mdat") + 4
    data[start:] = bytes(len(data) - start)
    (tmp_path / "blank.mp4").write_bytes(bytes(data))
    with pytest.raises(BrushworkError, match="the video stream has no frames that decode"):
        scan(tmp_path / "blank.mp4")


def _truncated(tmp_path: Path) -> Path:
    source = write_clip(
        tmp_path / "whole.mp4", pan(20, 64, 96, shift=2), options={"movflags": "faststart"}
    )
    data = source.read_bytes()
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(data[: len(data) * 6 // 10])
    return broken


def test_a_stream_that_breaks_is_refused_with_the_frames_lost(tmp_path: Path) -> None:
    with pytest.raises(
        BrushworkError,
        match=r"breaks after frame \d+: \d+ of 20 frames do not "
        r"decode.*pass --partial",
    ):
        scan(_truncated(tmp_path))


def test_partial_keeps_what_decodes_and_says_how_much_was_lost(tmp_path: Path) -> None:
    with ev.bound(collect := ev.Collect()):
        info = scan(_truncated(tmp_path), partial=True)
    assert 0 < info.frames < 20 and info.lost == 20 - info.frames
    assert f"{info.lost} of 20 frames do not decode" in collect.of(ev.Warned)[0].message


@pytest.mark.parametrize("share", [0.7, 0.78, 0.85])
def test_a_broken_stream_reads_back_every_frame_the_scan_counted(
    tmp_path: Path, share: float
) -> None:
    """``--partial`` promises the frames the scan counted: reading decodes them the same way
    (frame threads would lose the frames in flight when the broken packet comes)."""
    with ev.bound(ev.Collect()):
        info = scan(truncated_clip(tmp_path / "cut.mp4", share), partial=True)
    assert 0 < info.frames < 30 and info.lost == 30 - info.frames
    assert sum(1 for _ in read_frames(info, info.size)) == info.frames


def test_frames_of_different_sizes(tmp_path: Path) -> None:
    folder = _frames_folder(tmp_path / "frames", 2)
    Image.fromarray(texture(20, 20)).save(folder / "f2.png")
    with pytest.raises(
        BrushworkError,
        match=r"frames of different sizes: f0\.png is 40x30, "
        r"f2\.png is 20x20",
    ):
        scan(folder)


def test_an_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "none").mkdir()
    with pytest.raises(BrushworkError, match="a folder with no frames"):
        scan(tmp_path / "none")


def test_fps_belongs_to_frame_folders(clip: Path) -> None:
    with pytest.raises(BrushworkError, match="--fps applies to a folder of frames"):
        scan(clip, fps=12)


@pytest.mark.parametrize(
    ("name", "codec", "message"),
    [
        ("out.avi2", None, "unsupported output format ('.avi2')"),
        ("out.mp4", "nosuchcodec", "--codec nosuchcodec: no such video encoder"),
        ("out.mp4", "aac", "--codec aac is an audio codec, not a video one"),
        ("out.webm", "libx264", "webm cannot hold libx264 video"),
        ("frames", "libx264", "--codec applies to a video file"),
    ],
)
def test_unsupported_containers_and_codecs(
    tmp_path: Path, name: str, codec: str | None, message: str
) -> None:
    with pytest.raises(BrushworkError, match=message.replace("(", r"\(").replace(")", r"\)")):
        plan_output(tmp_path / name, codec=codec)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["out.mp4", "frames"])
def test_an_existing_output_needs_force(tmp_path: Path, name: str) -> None:
    target = tmp_path / name
    target.write_bytes(b"old") if name == "out.mp4" else _brushwork_frames(target)
    with pytest.raises(BrushworkError, match=r"exists; pass --force to (overwrite|replace it)"):
        add_output(OutputPlan(), target)
    assert add_output(OutputPlan(force=True), target) == target


def _brushwork_frames(folder: Path) -> Path:
    """A frames folder as brushwork writes it (with its marker)."""
    from brushwork.outputs import mark_folder

    folder.mkdir()
    (folder / "000001.png").write_bytes(b"frame")
    mark_folder(folder, ["000001.png"])
    return folder


@pytest.mark.parametrize(
    ("name", "folder"),
    [("out.mp4", False), ("out.GIF", False), ("frames", True), ("frames.v2/", True)],
)
def test_the_name_alone_says_video_file_or_frames_folder(
    tmp_path: Path, name: str, folder: bool
) -> None:
    (tmp_path / "out.mp4").mkdir()  # what is on disk decides nothing
    assert plan_output(f"{tmp_path}/{name}").folder == folder


@pytest.mark.parametrize("force", [False, True])
def test_a_video_path_that_is_a_folder_is_refused_not_filled_with_frames(
    tmp_path: Path, force: bool
) -> None:
    target = tmp_path / "out.mp4"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    with pytest.raises(BrushworkError, match=r"out\.mp4: is a directory"):
        add_output(OutputPlan(force=force), target)
    assert [p.name for p in target.iterdir()] == ["notes.txt"]


# ----------------------------------------------------------------------------- shared data


@requires_shared
def test_the_shared_clip_scans_with_its_audio() -> None:
    info = scan(SHARED / "data" / "video" / "cutBunny.mp4")
    assert (info.frames, info.size, info.rate, info.lost) == (240, (640, 360), 24, 0)
    assert info.audio is not None and info.audio.codec == "aac"
    assert info.duration == pytest.approx(10.0, abs=0.05)


@requires_shared
@pytest.mark.usefixtures("tiny_pretrained", "one_thread")
def test_the_shared_clip_keeps_its_audio_when_cut(tmp_path: Path, tiny_encoder: Any) -> None:
    from conftest import save_decoder

    from brushwork.examples import style_path
    from brushwork.video.runner import stylize_video

    source = SHARED / "data" / "video" / "cutBunny.mp4"
    model = save_decoder(tmp_path / "adain.safetensors", tiny_encoder)
    out = tmp_path / "bunny.mp4"
    stylize_video(
        source, style_path("strokes"), out, "adain", size=64, model=str(model), max_frames=6
    )
    written = packets(out)
    assert 0 < len(written) < len(packets(source))
    assert written == packets(source)[: len(written)]  # copied, not re-encoded
    assert len(read_clip(out)[0]) == 6
