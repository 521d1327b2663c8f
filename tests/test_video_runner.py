"""The streaming, resumable video run (brushwork.video.runner.stylize_video): every method
on tiny clips with the tiny random encoder, temporal consistency, resume, bounded memory,
timestamps, rotation, odd sizes, audio and the controls."""

from __future__ import annotations

import tracemalloc
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import save_decoder
from PIL import Image
from videoclips import packets, pan, read_clip, texture, write_clip

import brushwork
from brushwork import events as ev
from brushwork.encoders import VGG19
from brushwork.errors import BrushworkError
from brushwork.examples import style_path
from brushwork.methods.feedforward import DECODER_LAYERS
from brushwork.metrics import warping_error
from brushwork.video import runner
from brushwork.video.runner import stylize_video

pytestmark = pytest.mark.usefixtures("one_thread", "tiny_pretrained")
STYLE = style_path("strokes")


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return write_clip(tmp_path / "clip.mp4", pan(5, 32, 48, shift=2))


@pytest.fixture
def adain_model(tmp_path: Path, tiny_encoder: VGG19) -> str:
    return str(save_decoder(tmp_path / "adain.safetensors", tiny_encoder))


def _frames(folder: Path) -> list[np.ndarray]:
    return [np.asarray(Image.open(p).convert("RGB")) for p in sorted(folder.glob("*.png"))]


def _tensors(frames: list[np.ndarray]) -> list[torch.Tensor]:
    return [torch.from_numpy(f.copy()).permute(2, 0, 1)[None].float() / 255 for f in frames]


@pytest.fixture
def models(tmp_path: Path, tiny_encoder: VGG19) -> dict[str, str]:
    """Random decoders for the tiny encoder: AdaIN's, the five of WCT, Style Swap's."""
    wct = tmp_path / "wct"
    wct.mkdir()
    for layer in DECODER_LAYERS:
        save_decoder(wct / f"{layer}.safetensors", tiny_encoder, "wct", layer)
    inverse = save_decoder(tmp_path / "inverse.safetensors", tiny_encoder, "styleswap", "relu3_1")
    adain = save_decoder(tmp_path / "adain.safetensors", tiny_encoder)
    return {"adain": str(adain), "wct": str(wct), "inverse": str(inverse)}


METHODS: list[tuple[str, dict[str, Any]]] = [
    ("gatys", {"iterations": 2}),
    ("gatys-laplacian", {"iterations": 2, "temporal_frames": (1, 2)}),
    ("styleswap", {"iterations": 2}),
    ("adain", {}),
    ("wct", {}),
    ("styleswap-inverse", {}),
]


@pytest.mark.parametrize(
    ("method", "options"),
    METHODS,
    ids=["gatys", "gatys-laplacian", "styleswap", "adain", "wct", "styleswap-inverse"],
)
def test_every_method_stylizes_a_clip(
    tmp_path: Path, clip: Path, models: dict[str, str], method: str, options: dict[str, Any]
) -> None:
    if method == "adain":
        options = {**options, "model": models["adain"]}
    if method == "wct":
        options = {**options, "models": models["wct"]}
    if method == "styleswap-inverse":
        options = {**options, "model": models["inverse"]}
    collect = ev.Collect()
    done = stylize_video(clip, STYLE, tmp_path / "out", method, size=48, events=collect, **options)
    frames = _frames(tmp_path / "out")
    assert len(frames) == 5 and frames[0].shape == (32, 48, 3)
    assert (done.frames, done.stylized, done.size) == (5, 5, (48, 32))
    assert [e.step for e in collect.of(ev.Progress)] == [1, 2, 3, 4, 5]  # frames, not steps
    assert all(e.stage == runner.STAGE for e in collect.of(ev.Progress))
    assert not (tmp_path / "out.work").exists()  # removed once the output is written


def test_the_temporal_loss_joins_the_optimization_after_the_first_frame(
    tmp_path: Path, clip: Path
) -> None:
    collect = ev.Collect()
    stylize_video(
        clip, STYLE, tmp_path / "out", "gatys", size=48, iterations=2, max_frames=3, events=collect
    )
    losses = [e.losses for e in collect.of(ev.Progress)]
    assert "temporal" not in losses[0] and "temporal" in losses[1] and "temporal" in losses[2]
    # the optimization's own steps arrive as heartbeats, where a sink can stop the run
    assert len(collect.of(ev.Heartbeat)) >= 3 * 2


def test_a_sink_can_stop_a_run_inside_a_frame(tmp_path: Path, clip: Path) -> None:
    """A sink that raises on a heartbeat stops the optimization of the first frame at once:
    no frame is finished, no output written."""

    class Stop(Exception):
        pass

    seen: list[ev.Event] = []

    def sink(event: ev.Event) -> None:
        seen.append(event)
        if isinstance(event, ev.Heartbeat):
            raise Stop

    with pytest.raises(Stop):
        stylize_video(
            clip, STYLE, tmp_path / "out", "gatys", size=48, iterations=10_000, events=sink
        )
    assert not any(isinstance(e, ev.Progress) for e in seen)
    assert not (tmp_path / "out").exists()


def test_texture_tracking_flickers_less_than_per_frame(
    tmp_path: Path, clip: Path, adain_model: str
) -> None:
    inputs = _tensors(read_clip(clip)[0])
    results = {}
    for temporal in (False, True):
        out = tmp_path / f"out-{temporal}"
        stylize_video(clip, STYLE, out, "adain", size=48, model=adain_model, temporal=temporal)
        results[temporal] = warping_error(_tensors(_frames(out)), inputs)
    assert results[True] < 0.8 * results[False]


def test_the_style_is_prepared_once_per_clip(
    tmp_path: Path, clip: Path, adain_model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from brushwork.methods.feedforward import FeedForwardMethod

    calls = []
    original = FeedForwardMethod.prepare

    def counted(self: Any, styles: Any) -> Any:
        calls.append(1)
        return original(self, styles)

    monkeypatch.setattr(FeedForwardMethod, "prepare", counted)
    stylize_video(clip, STYLE, tmp_path / "out", "adain", size=48, model=adain_model)
    assert len(calls) == 1


class _StopAt:
    """A sink that interrupts the run when frame ``frame`` (1-based) is finished."""

    def __init__(self, frame: int) -> None:
        self.frame = frame

    def __call__(self, event: ev.Event) -> None:
        if isinstance(event, ev.Progress) and event.step == self.frame:
            raise KeyboardInterrupt


@pytest.mark.parametrize(("method", "options"), [("gatys", {"iterations": 2}), ("adain", {})])
def test_an_interrupted_run_resumes_to_the_same_frames(
    tmp_path: Path, clip: Path, adain_model: str, method: str, options: dict[str, Any]
) -> None:
    if method == "adain":
        options = {**options, "model": adain_model}
    whole = tmp_path / "whole"
    stylize_video(clip, STYLE, whole, method, size=48, **options)
    out = tmp_path / "out.mp4"
    with pytest.raises(KeyboardInterrupt):
        stylize_video(clip, STYLE, out, method, size=48, events=_StopAt(3), **options)
    assert not out.exists()
    assert [p.name for p in tmp_path.glob(".out.mp4*")] == []  # no partial output
    work = tmp_path / "out.mp4.work"
    assert len(list((work / "frames").glob("*.png"))) == 3
    resumed = tmp_path / "resumed"
    done = stylize_video(
        clip, STYLE, resumed, method, size=48, resume=True, work_dir=str(work), **options
    )
    assert (done.frames, done.stylized) == (5, 2)
    assert all(np.array_equal(a, b) for a, b in zip(_frames(whole), _frames(resumed), strict=True))


def test_a_resumed_run_continues_the_texture_tracking_exactly(
    tmp_path: Path, adain_model: str
) -> None:
    """Interrupted after an anchor frame (a new texture source): the resumed run reads the
    tracker's state and its sources (stylization and grey input) back."""
    clip = write_clip(tmp_path / "long.mp4", pan(12, 32, 48, shift=2))
    options: dict[str, Any] = {"size": 48, "model": adain_model}
    stylize_video(clip, STYLE, tmp_path / "whole", "adain", **options)
    with pytest.raises(KeyboardInterrupt):
        stylize_video(clip, STYLE, tmp_path / "out.mp4", "adain", events=_StopAt(10), **options)
    work = tmp_path / "out.mp4.work"
    assert (work / "inputs").is_dir() and (work / "tracker.npz").is_file()
    done = stylize_video(
        clip, STYLE, tmp_path / "resumed", "adain", resume=True, work_dir=str(work), **options
    )
    assert done.stylized == 2
    whole, resumed = _frames(tmp_path / "whole"), _frames(tmp_path / "resumed")
    assert all(np.array_equal(a, b) for a, b in zip(whole, resumed, strict=True))


def _folder(path: Path, frames: list[np.ndarray]) -> Path:
    """A folder of PNG frames (exact pixels, unlike an encoded clip)."""
    path.mkdir()
    for index, frame in enumerate(frames):
        Image.fromarray(frame).save(path / f"{index:03d}.png")
    return path


@pytest.mark.parametrize(("method", "options"), [("adain", {}), ("gatys", {"iterations": 2})])
def test_a_scene_cut_starts_the_next_frame_afresh(
    tmp_path: Path, adain_model: str, method: str, options: dict[str, Any]
) -> None:
    """Bad input (issue 20): a video with a scene cut. The first frame of the new scene is
    its own stylization, as without temporal consistency: no texture (tracking) and no
    warped start (optimization) from the other scene."""
    if method == "adain":
        options = {"model": adain_model}
    scenes = pan(4, 32, 48, shift=2) + pan(3, 32, 48, shift=2, seed=5)
    clip = _folder(tmp_path / "cut", scenes)
    stylize_video(clip, STYLE, tmp_path / "temporal", method, size=48, **options)
    stylize_video(clip, STYLE, tmp_path / "alone", method, size=48, temporal=False, **options)
    temporal, alone = _frames(tmp_path / "temporal"), _frames(tmp_path / "alone")
    assert np.array_equal(temporal[4], alone[4])
    assert not np.array_equal(temporal[3], alone[3])  # within a scene: temporal


def test_a_black_first_frame_is_not_what_the_clip_is_painted_from(
    tmp_path: Path, adain_model: str
) -> None:
    """Bad input (issue 20): a video whose first frame is black. Colour preservation
    matches the styles to the first frame that shows something, and the picture is tracked
    from its own first frame: the frames are those of the clip without the black one."""
    frames = pan(5, 32, 48, shift=2)
    _folder(tmp_path / "black", [np.zeros_like(frames[0]), *frames])
    _folder(tmp_path / "plain", frames)
    for name in ("black", "plain"):
        stylize_video(
            tmp_path / name,
            STYLE,
            tmp_path / f"out-{name}",
            "adain",
            size=48,
            model=adain_model,
            preserve_color="linear",
        )
    black, plain = _frames(tmp_path / "out-black"), _frames(tmp_path / "out-plain")
    assert len(black) == 6 and np.isfinite(black[0]).all()
    assert all(np.array_equal(a, b) for a, b in zip(black[1:], plain, strict=True))


def test_a_resumed_run_keeps_the_encoding_free(
    tmp_path: Path, clip: Path, adain_model: str
) -> None:
    """Container, codec and quality only change the encoding: they may differ on resume;
    the number of frames too (a preview of the first frames, then the whole clip)."""
    work = tmp_path / "w"
    stylize_video(
        clip,
        STYLE,
        tmp_path / "a.mp4",
        "adain",
        size=48,
        model=adain_model,
        max_frames=2,
        work_dir=str(work),
        keep_work=True,
    )
    done = stylize_video(
        clip,
        STYLE,
        tmp_path / "b.mkv",
        "adain",
        size=48,
        model=adain_model,
        crf=30,
        work_dir=str(work),
        resume=True,
    )
    assert (done.frames, done.stylized) == (5, 3)


def test_resume_is_refused_for_another_input_or_settings(
    tmp_path: Path, clip: Path, adain_model: str
) -> None:
    work = str(tmp_path / "w")
    stylize_video(
        clip,
        STYLE,
        tmp_path / "a.mp4",
        "adain",
        size=48,
        model=adain_model,
        max_frames=2,
        work_dir=work,
        keep_work=True,
    )
    other = write_clip(tmp_path / "other.mp4", pan(5, 32, 48, seed=7))
    with pytest.raises(BrushworkError, match="was made from another input"):
        stylize_video(
            other,
            STYLE,
            tmp_path / "b.mp4",
            "adain",
            size=48,
            model=adain_model,
            work_dir=work,
            resume=True,
        )
    with pytest.raises(
        BrushworkError,
        match=r"was made with other settings \(options.alpha: "
        r"0.5 now, 1.0 there\)",
    ):
        stylize_video(
            clip,
            STYLE,
            tmp_path / "b.mp4",
            "adain",
            size=48,
            model=adain_model,
            alpha=0.5,
            work_dir=work,
            resume=True,
        )
    with pytest.raises(BrushworkError, match="holds an earlier run's frames; pass --resume"):
        stylize_video(
            clip, STYLE, tmp_path / "b.mp4", "adain", size=48, model=adain_model, work_dir=work
        )
    with pytest.raises(BrushworkError, match="nothing to resume"):
        stylize_video(
            clip,
            STYLE,
            tmp_path / "b.mp4",
            "adain",
            size=48,
            model=adain_model,
            work_dir=str(tmp_path / "none"),
            resume=True,
        )
    assert not (tmp_path / "b.mp4").exists()


def _peak(tmp_path: Path, count: int, adain_model: str) -> tuple[int, int]:
    """Peak traced memory of a run over ``count`` frames, and the most frames decoded
    ahead of the encoder."""
    source = write_clip(tmp_path / f"long{count}.mp4", pan(count, 64, 96))
    decoded = written = ahead = 0
    from brushwork.video import io, writer

    original_read, original_write = io.read_frames, writer.VideoWriter.write

    def reading(*args: Any, **kwargs: Any) -> Any:
        nonlocal decoded
        for frame in original_read(*args, **kwargs):
            decoded += 1
            yield frame

    def writing(self: Any, rgb: np.ndarray, index: int) -> None:
        nonlocal written, ahead
        written += 1
        ahead = max(ahead, decoded - written)
        original_write(self, rgb, index)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(io, "read_frames", reading)
        patch.setattr(writer.VideoWriter, "write", writing)
        tracemalloc.start()
        stylize_video(
            source, STYLE, tmp_path / f"out{count}.mp4", "adain", size=96, model=adain_model
        )
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert written == count
    return peak, ahead


def test_memory_does_not_grow_with_the_clip(tmp_path: Path, adain_model: str) -> None:
    short, ahead_short = _peak(tmp_path, 6, adain_model)
    long, ahead_long = _peak(tmp_path, 30, adain_model)
    assert ahead_short <= 1 and ahead_long <= 1  # decoded, stylized, encoded, one by one
    frame = 64 * 96 * 3
    assert long < short + 8 * frame  # 24 more frames would add 24 frames' worth and more


def test_variable_timestamps_and_audio_survive(tmp_path: Path, adain_model: str) -> None:
    pts = [0, 50, 100, 250, 300, 450]
    source = write_clip(
        tmp_path / "vfr.mp4", pan(6), pts=pts, time_base=Fraction(1, 1000), audio_seconds=0.6
    )
    out = tmp_path / "out.mp4"
    stylize_video(source, STYLE, out, "adain", size=48, model=adain_model)
    _, times, _ = read_clip(out)
    assert [t - times[0] for t in times] == pytest.approx([p / 1000 for p in pts], abs=1e-3)
    assert packets(out) == packets(source)


def test_rotation_is_kept_and_frames_are_stylized_upright(tmp_path: Path, adain_model: str) -> None:
    source = write_clip(tmp_path / "phone.mp4", pan(3, 32, 48), rotation=270)
    done = stylize_video(source, STYLE, tmp_path / "out.mp4", "adain", size=48, model=adain_model)
    assert done.size == (32, 48)  # upright: portrait
    stored, _, rotation = read_clip(tmp_path / "out.mp4")
    assert rotation == 270 and stored[0].shape == (32, 48, 3)
    stylize_video(source, STYLE, tmp_path / "frames", "adain", size=48, model=adain_model)
    assert _frames(tmp_path / "frames")[0].shape == (48, 32, 3)  # PNGs are upright


def test_odd_sizes_become_even_for_codecs_that_need_it(tmp_path: Path, adain_model: str) -> None:
    folder = tmp_path / "odd"
    folder.mkdir()
    for index in range(3):
        Image.fromarray(texture(31, 47, seed=index)).save(folder / f"{index}.png")
    collect = ev.Collect()
    done = stylize_video(
        folder, STYLE, tmp_path / "out.mp4", "adain", size=None, model=adain_model, events=collect
    )
    assert done.size == (48, 32)
    assert "the output is 48x32 px, not 47x31: libx264 needs even sides" in [
        w.message for w in collect.of(ev.Warned)
    ]
    assert read_clip(tmp_path / "out.mp4")[0][0].shape == (32, 48, 3)
    done = stylize_video(folder, STYLE, tmp_path / "frames", "adain", size=None, model=adain_model)
    assert done.size == (47, 31)
    done = stylize_video(
        folder, STYLE, tmp_path / "out.gif", "adain", size=None, model=adain_model, fps=5
    )
    assert done.size == (47, 31)


def test_an_animated_gif_is_an_input(tmp_path: Path, adain_model: str) -> None:
    frames = [Image.fromarray(f) for f in pan(4)]
    frames[0].save(
        tmp_path / "in.gif",
        save_all=True,
        append_images=frames[1:],
        duration=[100, 200, 100, 300],
        loop=0,
    )
    out = tmp_path / "out.mp4"
    done = stylize_video(tmp_path / "in.gif", STYLE, out, "adain", size=48, model=adain_model)
    assert done.frames == 4
    _, times, _ = read_clip(out)
    assert [t - times[0] for t in times] == pytest.approx([0, 0.1, 0.3, 0.4], abs=0.011)


@pytest.mark.parametrize(
    "options",
    [
        {"preserve_color": "luminance"},
        {"preserve_color": "histogram"},
        {"alpha": 0.5},
        {"style_scale": 0.5},
    ],
    ids=["luminance", "histogram", "alpha", "style-scale"],
)
def test_the_controls_work_on_video(
    tmp_path: Path, clip: Path, adain_model: str, options: dict[str, Any]
) -> None:
    done = stylize_video(
        clip, STYLE, tmp_path / "out", "adain", size=48, model=adain_model, max_frames=3, **options
    )
    assert done.frames == 3 and len(_frames(tmp_path / "out")) == 3


def test_blended_styles_and_masks_work_on_video(tmp_path: Path, clip: Path) -> None:
    mask = tmp_path / "labels.png"
    labels = np.zeros((32, 48, 3), np.uint8)
    labels[:, 24:] = 255
    Image.fromarray(labels).save(mask)
    styles = [brushwork.Style(STYLE, 0.7), brushwork.Style(style_path("mosaic"), 0.3)]
    stylize_video(clip, styles, tmp_path / "blend", "gatys", size=48, iterations=2, max_frames=2)
    stylize_video(
        clip, styles, tmp_path / "masked", "gatys", size=48, iterations=2, max_frames=2, mask=mask
    )
    assert len(_frames(tmp_path / "blend")) == len(_frames(tmp_path / "masked")) == 2


def test_later_frames_may_take_fewer_steps(tmp_path: Path, clip: Path) -> None:
    from brushwork import optim

    steps = []
    original = optim.optimize_image

    def counted(*args: Any, **kwargs: Any) -> Any:
        steps.append(kwargs["iterations"])
        return original(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        from brushwork.methods import optimization

        patch.setattr(optimization, "optimize_image", counted)
        stylize_video(
            clip,
            STYLE,
            tmp_path / "out",
            "gatys",
            size=48,
            iterations=4,
            later_iterations=2,
            max_frames=3,
        )
    assert steps == [4, 2, 2]


def test_report_measures_output_and_input(tmp_path: Path, clip: Path, adain_model: str) -> None:
    done = stylize_video(
        clip, STYLE, tmp_path / "out.mp4", "adain", size=48, model=adain_model, report=True
    )
    assert done.warping_error is not None
    assert set(done.warping_error) == {"output", "input"}
    assert 0 <= done.warping_error["input"] < done.warping_error["output"]


def test_the_api_is_exported_lazily() -> None:
    assert brushwork.stylize_video is stylize_video
    assert "stylize_video" in brushwork.__all__


def test_describe_lists_the_video_options() -> None:
    names = {o["name"] for o in runner.describe()}
    assert {"temporal", "blend", "max_age", "temporal_weight", "resume", "report"} <= names
