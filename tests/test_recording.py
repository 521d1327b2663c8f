"""Loss plot, frame recorder and animation writer (brushwork.recording)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from brushwork.errors import BrushworkError
from brushwork.events import Progress, Started
from brushwork.recording import (
    FrameRecorder,
    check_animation_path,
    plot_losses,
    save_animation,
)

av = pytest.importorskip("av")


def _history(n: int = 20) -> list[dict[str, float]]:
    out = []
    for i in range(n):
        content, style, tv = 10.0 / (i + 1), 100.0 * 0.8**i, 0.5
        out.append({"content": content, "style": style, "tv": tv, "total": content + style + tv})
    return out


def _frames(n: int, h: int = 15, w: int = 21, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _iterate(step: int, h: int, w: int) -> Progress:
    return Progress("gatys", step, losses={"total": 1.0}, image=torch.rand(1, 3, h, w))


# ----------------------------------------------------------------------------- plot


def test_plot_writes_png(tmp_path: Path) -> None:
    out = plot_losses(_history(), tmp_path / "loss.png", title="run $1", scale_starts=[8, 15])
    assert out == tmp_path / "loss.png"
    with Image.open(out) as im:
        assert im.format == "PNG"
        assert 400 <= im.width <= 2000 and 300 <= im.height <= 2000
    assert _leftovers(tmp_path) == ["loss.png"]


def test_plot_handles_odd_histories(tmp_path: Path) -> None:
    # One step; a term that is always zero (not drawable on a log axis); a term missing at first.
    plot_losses([{"total": 3.0, "tv": 0.0}], tmp_path / "one.png")
    history = [{"total": 2.0}, {"total": 1.0, "lap": 0.5}, {"total": float("nan"), "lap": 0.2}]
    plot_losses(history, tmp_path / "gaps.png", scale_starts=[1, 99])
    plot_losses([{"total": 0.0}, {"total": 0.0}], tmp_path / "zeros.png")  # linear fallback
    for name in ("one.png", "gaps.png", "zeros.png"):
        with Image.open(tmp_path / name) as im:
            assert im.format == "PNG"


def test_plot_refuses_existing_without_force(tmp_path: Path) -> None:
    target = tmp_path / "loss.png"
    target.write_bytes(b"old")
    with pytest.raises(BrushworkError, match="exists; pass --force"):
        plot_losses(_history(), target)
    assert target.read_bytes() == b"old"
    plot_losses(_history(), target, force=True)
    with Image.open(target) as im:
        assert im.format == "PNG"


@pytest.mark.parametrize("name", ["loss.jpg", "loss.svg", "loss"])
def test_plot_refuses_non_png(tmp_path: Path, name: str) -> None:
    with pytest.raises(BrushworkError, match=r"unsupported loss plot format.*\.png"):
        plot_losses(_history(), tmp_path / name)


def test_plot_empty_history(tmp_path: Path) -> None:
    with pytest.raises(BrushworkError, match="empty"):
        plot_losses([], tmp_path / "loss.png")
    assert _leftovers(tmp_path) == []


def test_plot_bad_scale_starts(tmp_path: Path) -> None:
    with pytest.raises(BrushworkError, match="scale_starts"):
        plot_losses(_history(), tmp_path / "loss.png", scale_starts=[0])


def test_plot_without_matplotlib(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(sys.modules):
        if name == "matplotlib" or name.startswith("matplotlib."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(BrushworkError, match="needs matplotlib: pip install matplotlib"):
        plot_losses(_history(), tmp_path / "loss.png")
    assert _leftovers(tmp_path) == []


def test_plot_failure_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from matplotlib.figure import Figure

    def broken_savefig(self: Figure, fname: str, **kwargs: object) -> None:
        Path(fname).write_bytes(b"\x89PNG half")
        raise RuntimeError("disk on fire")

    target = tmp_path / "loss.png"
    target.write_bytes(b"old")
    monkeypatch.setattr(Figure, "savefig", broken_savefig)
    with pytest.raises(RuntimeError, match="disk on fire"):
        plot_losses(_history(), target, force=True)
    assert target.read_bytes() == b"old"
    assert _leftovers(tmp_path) == ["loss.png"]


# ----------------------------------------------------------------------------- recorder


def test_recorder_keeps_every_nth_step() -> None:
    rec = FrameRecorder(every=3)
    rec(Started("gatys", 10))  # other events, and progress without a preview, are ignored
    for step in range(1, 11):
        rec(_iterate(step, 8, 12))
    rec(Progress("gatys", 12))
    assert len(rec) == 3  # steps 3, 6, 9
    assert rec.last_step == 9
    rec.add(torch.rand(1, 3, 8, 12))  # the final image
    assert len(rec.frames) == 4
    for frame in rec.frames:
        assert frame.dtype == np.uint8 and frame.shape == (8, 12, 3)


def test_recorder_frames_are_copies() -> None:
    rec = FrameRecorder()
    image = torch.zeros(1, 3, 4, 4)
    rec(Progress("gatys", 1, image=image))
    image.fill_(1.0)  # the optimizer updates its tensor in place
    assert rec.frames[0].max() == 0


def test_recorder_downsizes_and_fixes_size() -> None:
    rec = FrameRecorder(every=1, max_side=32)
    rec(_iterate(1, 40, 80))  # -> 32 x 16
    rec(_iterate(2, 81, 160))  # larger scale, about the same aspect
    rec(_iterate(3, 10, 20))  # smaller: upsized to the same size
    rec.add(Image.new("RGB", (7, 5), (255, 0, 0)))
    assert rec.size == (32, 16)
    assert [f.shape for f in rec.frames] == [(16, 32, 3)] * 4
    assert tuple(rec.frames[3][8, 16]) == (255, 0, 0)


def test_recorder_small_frames_keep_their_size() -> None:
    rec = FrameRecorder(max_side=512)
    rec.add(torch.rand(3, 9, 7))
    assert rec.frames[0].shape == (9, 7, 3)


@pytest.mark.parametrize("kwargs", [{"every": 0}, {"every": 1.5}, {"max_side": -1}])
def test_recorder_rejects_bad_arguments(kwargs: dict[str, object]) -> None:
    with pytest.raises(BrushworkError, match="positive integer"):
        FrameRecorder(**kwargs)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- animation


def test_gif_frames_and_size(tmp_path: Path) -> None:
    out = save_animation(_frames(5), tmp_path / "run.gif", fps=20)
    with Image.open(out) as im:
        assert im.format == "GIF"
        assert im.n_frames == 5
        assert im.size == (21, 15)
        assert im.info.get("loop") == 0
        assert im.info.get("duration") == 50
    assert _leftovers(tmp_path) == ["run.gif"]


def test_gif_single_frame(tmp_path: Path) -> None:
    out = save_animation(_frames(1), tmp_path / "one.GIF")
    with Image.open(out) as im:
        assert im.format == "GIF" and im.size == (21, 15)


def _decode(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def test_mp4_decodes_with_even_size(tmp_path: Path) -> None:
    frames = _frames(7, h=15, w=21)
    out = save_animation(frames, tmp_path / "run.mp4", fps=12)
    decoded = _decode(out)
    assert len(decoded) == 7
    assert decoded[0].shape == (16, 22, 3)
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.pix_fmt == "yuv420p"
        assert stream.average_rate == 12
    assert _leftovers(tmp_path) == ["run.mp4"]


def test_mp4_falls_back_to_mpeg4(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from av.container import OutputContainer

    real = OutputContainer.add_stream

    def no_x264(self: OutputContainer, codec_name: str, *args: object, **kwargs: object):
        if codec_name == "libx264":
            raise av.codec.codec.UnknownCodecError(codec_name)
        return real(self, codec_name, *args, **kwargs)

    monkeypatch.setattr(OutputContainer, "add_stream", no_x264)
    out = save_animation(_frames(3), tmp_path / "run.mp4")
    with av.open(str(out)) as container:
        assert container.streams.video[0].codec_context.name == "mpeg4"
    assert len(_decode(out)) == 3


def test_mixed_frame_sizes_are_resized(tmp_path: Path) -> None:
    frames = _frames(2, h=10, w=20) + _frames(1, h=21, w=40, seed=1)
    with Image.open(save_animation(frames, tmp_path / "run.gif")) as im:
        assert im.n_frames == 3 and im.size == (20, 10)


def test_animation_without_av(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "av", None)
    with pytest.raises(BrushworkError, match="needs PyAV: pip install av"):
        save_animation(_frames(2), tmp_path / "run.mp4")
    with pytest.raises(BrushworkError, match="needs PyAV"):
        check_animation_path(tmp_path / "run.mp4")
    save_animation(_frames(2), tmp_path / "run.gif")  # GIF does not need PyAV
    assert _leftovers(tmp_path) == ["run.gif"]


@pytest.mark.parametrize("name", ["run.webm", "run.png", "run"])
def test_animation_unknown_extension(tmp_path: Path, name: str) -> None:
    with pytest.raises(BrushworkError, match=r"\.gif or \.mp4"):
        save_animation(_frames(2), tmp_path / name)


def test_animation_no_frames(tmp_path: Path) -> None:
    with pytest.raises(BrushworkError, match="no frames"):
        save_animation([], tmp_path / "run.gif")
    assert _leftovers(tmp_path) == []


def test_animation_refuses_existing_without_force(tmp_path: Path) -> None:
    target = tmp_path / "run.gif"
    target.write_bytes(b"old")
    with pytest.raises(BrushworkError, match="exists; pass --force"):
        save_animation(_frames(2), target)
    assert target.read_bytes() == b"old"
    save_animation(_frames(2), target, force=True)
    with Image.open(target) as im:
        assert im.n_frames == 2


def test_animation_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(BrushworkError, match="output directory does not exist"):
        save_animation(_frames(2), tmp_path / "nope" / "run.gif")


@pytest.mark.parametrize("fps", [0, -1, float("nan"), True, "10"])
def test_animation_bad_fps(tmp_path: Path, fps: object) -> None:
    with pytest.raises(BrushworkError, match="fps"):
        save_animation(_frames(2), tmp_path / "run.gif", fps=fps)  # type: ignore[arg-type]


def test_animation_bad_frames(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="uint8"):
        save_animation([np.zeros((4, 4, 3), dtype=np.float32)], tmp_path / "run.gif")


def test_mp4_failure_midway_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = av.VideoFrame.from_ndarray
    calls = 0

    def flaky(*args: object, **kwargs: object):
        nonlocal calls
        calls += 1
        if calls == 4:
            raise RuntimeError("encoder crashed")
        return real(*args, **kwargs)

    target = tmp_path / "run.mp4"
    target.write_bytes(b"old")
    monkeypatch.setattr(av.VideoFrame, "from_ndarray", flaky)
    with pytest.raises(RuntimeError, match="encoder crashed"):
        save_animation(_frames(6), target, force=True)
    assert calls == 4
    assert target.read_bytes() == b"old"
    assert _leftovers(tmp_path) == ["run.mp4"]


def test_gif_failure_midway_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import brushwork.recording as recording

    def broken(frames: list[np.ndarray], tmp: str, fps: float) -> None:
        Path(tmp).write_bytes(b"GIF89a half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(recording, "_write_gif", broken)
    with pytest.raises(BrushworkError, match=r"cannot write .*No space left"):
        save_animation(_frames(3), tmp_path / "run.gif")
    assert _leftovers(tmp_path) == []


def test_interrupt_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(self: Image.Image, fp: object, *args: object, **kwargs: object) -> None:
        Path(str(fp)).write_bytes(b"GIF89a")
        raise KeyboardInterrupt

    monkeypatch.setattr(Image.Image, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_animation(_frames(3), tmp_path / "run.gif")
    assert _leftovers(tmp_path) == []
