"""Stylizing a video: a streaming, resumable run over the frames of a clip.

    >>> import brushwork
    >>> done = brushwork.stylize_video("clip.mp4", "painting.jpg", "out.mp4", method="adain",
    ...                                size=512)
    >>> done.frames, done.fps

What happens, in order:

1. Everything is checked before any work (:func:`brushwork.video.io.scan`: the input
   decodes, frame by frame; :func:`brushwork.video.io.plan_output`: the container takes
   the codec; the method, its options, the styles, masks and memory from their sizes).
   The output and the work folder are planned together by the output-safety rule of
   :mod:`brushwork.outputs` (:func:`brushwork.video.io.add_output`,
   :func:`brushwork.video.work.plan_work_folder`): neither is nor holds an input (the
   video or frames folder, a style, a mask, a model), nor holds the other, nor is the
   current folder; ``force`` replaces only a file or a folder brushwork wrote.
2. The styles are prepared once for the whole clip (colour preservation matched to the
   first frame), so a feed-forward method uses fixed statistics.
3. Frames stream through: decoded one at a time, stylized (with temporal consistency,
   :mod:`brushwork.video.temporal`, from the optical flow of the input frames,
   :mod:`brushwork.video.flow`), kept in the work folder (:mod:`brushwork.video.work`) and
   encoded into a temporary file beside the output. Only the last few frames are held in
   memory, however long the clip.
4. At the end the temporary file becomes the output (rename) and what brushwork wrote in
   the work folder is removed. An interrupted run (Ctrl-C, kill, crash) leaves no output
   but keeps its finished frames: ``resume=True`` continues from them, and clears the
   temporary files a killed run left (as does any later run to the same output).

Progress goes to the event stream, stage ``"video"``, one step per frame (unit
``frame``): a bar with frames per second and the time left.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import time
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from brushwork import color
from brushwork import events as ev
from brushwork.defaults import DEFAULT_ONE_PASS_METHOD
from brushwork.errors import BrushworkError
from brushwork.options import Options, option, split_options
from brushwork.video.flow import PRESETS
from brushwork.video.work import PAINTED

STAGE = "video"
"""The event stage of a video run: one step per frame."""
FRAME_STAGE = "video frame"
"""The stage each frame's own stylization reports under (not shown by the bar)."""

TEMPORAL_WEIGHT = 100.0
BLEND = 1.0
HISTORY = 16


@dataclass
class VideoOptions(Options):
    """What a video run does besides stylizing each frame (see also
    :class:`brushwork.stylizer.Controls` and the method's options)."""

    temporal: bool = option(
        True,
        "temporal consistency from the optical flow of the input (off: every frame stylized alone)",
    )
    temporal_weight: float = option(
        TEMPORAL_WEIGHT,
        "optimization methods: weight of the temporal loss toward the "
        "previous output warped by the flow (Ruder et al. 2016, eq. 5); 0 = start from it "
        "only",
        minimum=0.0,
    )
    temporal_frames: tuple[int, ...] = option(
        (1,),
        "optimization methods: earlier frames the temporal loss looks back to; e.g. "
        "1,2,4 adds long-term consistency (Ruder et al. 2016, eq. 8-9)",
        minimum=1,
        maximum=64,
        min_items=1,
        metavar="J,...",
    )
    blend: float = option(
        BLEND,
        "feed-forward methods: share of each reliable pixel painted "
        "by the texture tracked along the flow (1: the texture follows the "
        "motion; lower values average it with the new frame's: less "
        "flicker, fainter style)",
        minimum=0.0,
        maximum=1.0,
    )
    history: int = option(
        HISTORY,
        "feed-forward methods: earlier stylized frames kept as "
        "texture sources (memory: one frame each)",
        minimum=1,
        maximum=1000,
        metavar="N",
    )
    flow: str = option("medium", "DIS optical-flow preset (OpenCV), fastest first", choices=PRESETS)
    later_iterations: int | None = option(
        None,
        "optimization methods: steps for every frame after the first, which starts "
        "from the previous one (none: --iterations)",
        minimum=1,
        maximum=1_000_000,
        metavar="N",
    )
    max_frames: int | None = option(None, "stylize only the first N frames", minimum=1, metavar="N")
    fps: float | None = option(
        None,
        "frame rate of a folder of frames (none: 25)",
        minimum=0.0,
        exclusive_minimum=True,
        maximum=1000.0,
    )
    codec: str | None = option(
        None,
        "video codec (none: libx264 for .mp4, .mov and .mkv, libvpx-vp9 for .webm, gif for .gif)",
    )
    crf: int = option(
        18,
        "constant quality of x264, x265, VP9 and AV1: lower is better and larger",
        minimum=0,
        maximum=63,
    )
    audio: bool = option(True, "keep the input's audio (copied when the container takes its codec)")
    partial: bool = option(
        False, "accept a video stream that breaks mid-file: stylize the frames that decode"
    )
    work_dir: str | None = option(
        None,
        "folder for the finished frames, brushwork's alone: a new folder, holding no input "
        "and not the output (none: OUTPUT.work)",
        metavar="DIR",
    )
    keep_work: bool = option(False, "keep the work folder when the output is written")
    resume: bool = option(False, "continue an interrupted run from its work folder")
    report: bool = option(
        False, "measure flicker: the warping error (Lai et al. 2018) of the output and of the input"
    )

    def check(self) -> None:
        if len(set(self.temporal_frames)) != len(self.temporal_frames):
            raise BrushworkError("each of temporal-frames may be given once")
        object.__setattr__(self, "temporal_frames", tuple(sorted(self.temporal_frames)))


@dataclass
class VideoResult:
    """A finished video run."""

    output: Path
    frames: int
    """Frames written."""
    stylized: int
    """Frames stylized by this run (the others came from the work folder)."""
    lost: int
    size: tuple[int, int]
    seconds: float
    method: str
    warping_error: dict[str, float] | None = None
    """With ``report``: ``{"output": ..., "input": ...}``."""
    frame_seconds: float = 0.0
    """Mean seconds per stylized frame (flow, stylization, saving)."""

    @property
    def fps(self) -> float:
        """Frames stylized per second."""
        return 1 / self.frame_seconds if self.frame_seconds else math.nan


class _FrameEvents:
    """Pass every event on, but the per-step progress inside each frame as a
    :class:`~brushwork.events.Heartbeat` (not shown; a sink may still stop the run there)."""

    def __init__(self, sink: ev.Sink) -> None:
        self.sink = sink

    def __call__(self, event: ev.Event) -> None:
        if isinstance(event, ev.Progress) and event.stage != STAGE:
            event = ev.Heartbeat(event.stage)
        self.sink(event)


def _digest(value: Any) -> str | None:
    """A hash of a style or mask input (file, PIL image or tensor)."""
    from brushwork.video.work import file_digest

    if value is None:
        return None
    if isinstance(value, (str, os.PathLike)):
        return file_digest(Path(value))
    if isinstance(value, Image.Image):
        return hashlib.sha256(value.tobytes() + repr((value.mode, value.size)).encode()).hexdigest()
    if isinstance(value, Tensor):
        return hashlib.sha256(value.detach().cpu().float().numpy().tobytes()).hexdigest()
    return None


def _as_tensor(rgb: np.ndarray, device: torch.device) -> Tensor:
    """An RGB uint8 (H, W, 3) frame as a (1, 3, H, W) tensor in [0, 1]."""
    if not rgb.flags.writeable:
        rgb = rgb.copy()
    return (
        torch.from_numpy(np.ascontiguousarray(rgb))
        .permute(2, 0, 1)[None]
        .float()
        .div(255)
        .to(device)
    )


def _as_rgb(image: Tensor) -> np.ndarray:
    return image[0].detach().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()


def _split(method: str, values: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    from brushwork.methods import get_entry
    from brushwork.stylizer import Controls

    cls = get_entry(method).load()
    controls, options, video = split_options(values, Controls, cls.options_class, VideoOptions)
    return controls, options, video


def stylize_video(
    input: str | os.PathLike[str],
    style: Any,
    output: str | os.PathLike[str],
    method: str = DEFAULT_ONE_PASS_METHOD,
    *,
    mask: Any = None,
    regions: Mapping[str, int | None] | None = None,
    events: ev.Sinks = None,
    encoder: Any = None,
    force: bool = False,
    **options: Any,
) -> VideoResult:
    """Stylize a video file or a folder of frames into a video file or a folder of PNG
    frames (see the module docstring).

    Args:
        input: a video file (MP4, MOV, MKV, WebM, animated GIF, ...) or a folder of frames.
        style: a style image, a :class:`brushwork.Style`, or a list of them (blended, per
            layer or per region, as for images).
        output: ``.mp4``, ``.mov``, ``.mkv``, ``.webm`` or ``.gif``, or a path without
            extension: a folder of PNG frames.
        method: any registered method (:data:`brushwork.methods.REGISTRY`).
        mask, regions: a label image and its colour → style mapping (as for images).
        events: sinks for progress (stage ``"video"``, one step per frame) and warnings.
        encoder: a VGG-19 to use instead of the shared pretrained one (tests).
        force: replace an existing output file, or a frames or work folder brushwork wrote
            (never a folder of other files, the current folder or one holding an input).
        options: controls (:class:`brushwork.stylizer.Controls`), the method's options and
            :class:`VideoOptions` (``temporal``, ``blend``, ``temporal_weight``, ``resume``,
            ``report``, ...).
    """
    sink = ev.combine(events)
    with ev.bound(_FrameEvents(sink) if sink is not None else None):
        return _Run(input, style, output, method, mask, regions, encoder, force, options).run()


class _Run:
    """One video run (see :func:`stylize_video`)."""

    def __init__(
        self,
        input: Any,
        style: Any,
        output: Any,
        method: str,
        mask: Any,
        regions: Mapping[str, int | None] | None,
        encoder: Any,
        force: bool,
        options: dict[str, Any],
    ) -> None:
        from brushwork.stylizer import Controls, Stylizer

        self.started = time.perf_counter()
        controls, method_options, video = _split(method, options)
        # option values that may name files the run reads (a model, the weights)
        self.read = [*controls.values(), *method_options.values()]
        self.video = VideoOptions(**video)
        self.video.validate()
        self.stylizer = Stylizer(method, Controls(**controls), encoder=encoder, **method_options)
        self.input, self.style, self.output = input, style, output
        self.mask, self.regions, self.force = mask, regions, force

    # -- checks, before any work -------------------------------------------------------

    def _check(self) -> None:
        from brushwork.inputs import as_styles, image_size
        from brushwork.methods.base import check_style_weights
        from brushwork.outputs import clear_temporaries
        from brushwork.video.io import plan_output, scan
        from brushwork.video.work import WorkFolder, fingerprint

        video, stylizer = self.video, self.stylizer
        method = stylizer.method
        self.optimization = method.accepts_init()
        controls = stylizer.controls
        if (
            video.temporal
            and self.optimization
            and (controls.start_size is not None or controls.scale_iterations is not None)
        ):
            raise BrushworkError(
                "temporal consistency needs a single-scale run: drop "
                "--start-size/--scale-iterations, or pass --no-temporal"
            )
        self.tracking = video.temporal and not self.optimization and video.blend > 0
        if video.later_iterations is not None and not self.optimization:
            raise BrushworkError(
                f"--later-iterations needs an optimization method; "
                f"{method.name} makes each frame in one pass"
            )
        self.styles = as_styles(self.style)
        max_pixels = controls.max_pixels
        check_style_weights([s.weight for s in self.styles])
        style_sizes = [
            image_size(s.image, f"style {n}", max_pixels) for n, s in enumerate(self.styles, 1)
        ]
        for n, s in enumerate(self.styles, 1):
            if s.mask is not None:
                image_size(s.mask, f"mask of style {n}", max_pixels)
        if self.mask is not None:
            image_size(self.mask, "mask", max_pixels)
        stylizer.check_files()
        # the output's and the work folder's paths, container and codec before the input is
        # decoded (a long clip takes a while), then again with the input's audio
        self.work_dir = self._plan_outputs()
        plan_output(self.output, codec=video.codec, crf=video.crf, audio=False)
        self.info = scan(self.input, fps=video.fps, max_pixels=max_pixels, partial=video.partial)
        self.count = min(self.info.frames, video.max_frames or self.info.frames)
        self.spec = plan_output(
            self.output, codec=video.codec, crf=video.crf, audio=video.audio, info=self.info
        )
        layers = [s.layers for s in self.styles]
        plan = stylizer.plan(self.info.size, style_sizes, layers)
        width, height = plan.content_size
        if self.spec.even and (width % 2 or height % 2):
            from brushwork.video.io import even

            wanted = (even(width), even(height))
            ev.warn(
                f"the output is {wanted[0]}x{wanted[1]} px, not {width}x{height}: "
                f"{self.spec.codec} needs even sides"
            )
            controls.size = max(wanted)
            plan = stylizer.plan(wanted, style_sizes, layers)
        self.plan = plan
        self.size = plan.content_size
        manifest = {"input": fingerprint(self.info), "settings": self._settings()}
        import json

        manifest = json.loads(json.dumps(manifest))
        self.work = WorkFolder.prepare(
            self.work_dir, manifest, resume=video.resume, replace=self.force
        )
        # this run owns the output now: what a killed run left beside it goes
        clear_temporaries(self.spec.path)
        clear_temporaries(self.work_dir)

    def _plan_outputs(self) -> Path:
        """Check the output and the work folder against the inputs and each other (see
        the module docstring); the work folder's path."""
        from brushwork.outputs import OutputPlan, inputs_of
        from brushwork.video.io import add_output
        from brushwork.video.work import default_work_dir, plan_work_folder

        styles = [(s.image, s.mask) for s in self.styles]
        inputs = inputs_of(self.input, self.mask, styles, *self.read)
        plan = OutputPlan(self.force, inputs=inputs)
        output = add_output(plan, self.output)
        work_dir = self.video.work_dir or default_work_dir(output)
        return plan_work_folder(plan, work_dir, resume=self.video.resume)

    def _settings(self) -> dict[str, Any]:
        """Everything that changes a stylized frame (what a resumed run must share)."""
        s, video = self.stylizer, self.video
        c = s.controls
        temporal: dict[str, Any] = {"on": video.temporal, "flow": video.flow}
        if self.optimization:
            temporal.update(
                weight=video.temporal_weight,
                frames=list(video.temporal_frames),
                later_iterations=video.later_iterations,
            )
        else:
            temporal.update(blend=video.blend, history=video.history)
        return {
            "method": s.name,
            "options": s.method.options.as_dict(),
            "controls": {
                "size": list(self.plan.content_size),
                "style_size": c.style_size,
                "style_scale": c.style_scale,
                "preserve_color": c.preserve_color,
                "start_size": c.start_size,
                "scale_iterations": c.scale_iterations,
                "precision": s.precision.name,
                "weights": c.weights,
            },
            "styles": [
                {
                    "image": _digest(st.image),
                    "weight": st.weight,
                    "layers": st.layers,
                    "mask": _digest(st.mask),
                }
                for st in self.styles
            ],
            "mask": _digest(self.mask),
            "regions": dict(self.regions or {}),
            "temporal": temporal,
        }

    # -- the work ----------------------------------------------------------------------

    def _prepare(self, first: np.ndarray) -> None:
        from brushwork.inputs import style_targets
        from brushwork.stylizer import Prepared

        stylizer, plan = self.stylizer, self.plan
        max_pixels = stylizer.controls.max_pixels
        targets = style_targets(self.styles, plan, self.mask, self.regions, max_pixels)
        self.prepared = stylizer.prepare(plan, targets, _as_tensor(first, stylizer.device))
        self.later = self.prepared
        later = self.video.later_iterations
        if later is not None and self.optimization:
            side = plan.schedule[-1][0]
            self.later = Prepared(
                dataclasses.replace(plan, schedule=[(side, later)], explicit_iterations=True),
                self.prepared.targets,
                self.prepared.by_scale,
            )

    def _stylize(
        self, index: int, content: Tensor, pairs: dict[int, Any], previous: deque[Tensor]
    ) -> tuple[Tensor, dict[str, float]]:
        """One frame: with temporal consistency when there is a previous output."""
        from brushwork.video.flow import flow_tensor, warp
        from brushwork.video.temporal import TemporalLoss, long_term_weights

        stylizer, video = self.stylizer, self.video
        device = stylizer.device
        prepared = self.prepared if index == 0 else self.later
        if self.tracking:
            out = stylizer.stylize(content, prepared, stage=FRAME_STAGE)
            fresh = _as_tensor(_as_rgb(out.tensor), device)
            self.work.save(index, _as_rgb(fresh), PAINTED)
            pair = pairs.get(1)
            image = self.tracker.step(
                fresh,
                None if pair is None else pair.backward,
                None if pair is None else pair.usable,
            )
            return image, out.result.losses
        if not (video.temporal and index > 0):
            out = stylizer.stylize(content, prepared, stage=FRAME_STAGE)
            return out.tensor, out.result.losses
        if self.optimization:
            mode = stylizer.controls.preserve_color
            looks = [j for j in video.temporal_frames if j in pairs]
            warped = [
                warp(previous[-j], flow_tensor(pairs[j].backward, device), "bicubic") for j in looks
            ]
            weights = long_term_weights([pairs[j].usable for j in looks])
            init = color.prepare_content(warped[0], mode)
            extra = []
            if video.temporal_weight > 0:
                extra.append(
                    (
                        "temporal",
                        TemporalLoss(
                            [color.prepare_content(w, mode) for w in warped],
                            [torch.from_numpy(w)[None, None].to(device) for w in weights],
                            video.temporal_weight,
                        ),
                    )
                )
            out = stylizer.stylize(
                content, prepared, init=init, extra_losses=extra, stage=FRAME_STAGE
            )
            return out.tensor, out.result.losses
        out = stylizer.stylize(content, prepared, stage=FRAME_STAGE)
        return out.tensor, out.result.losses

    def _frames(
        self, reader: Iterator[np.ndarray], first: np.ndarray
    ) -> Iterator[tuple[int, np.ndarray]]:
        """Each frame's stylized RGB, in order: from the work folder where an earlier run
        finished it, else made now and kept there."""
        from brushwork.metrics import WarpingError
        from brushwork.video.flow import DISFlow, FarnebackFlow, FramePair, flow_tensor, gray
        from brushwork.video.flow import warp as warp_image

        video, work, device = self.video, self.work, self.stylizer.device
        looks = video.temporal_frames if self.optimization else (1,)
        keep = max(looks)
        greys: deque[np.ndarray] = deque(maxlen=keep)
        outputs: deque[Tensor] = deque(maxlen=keep)
        flow = DISFlow(video.flow)
        metric = FarnebackFlow() if video.report else None
        self.errors = {"output": WarpingError(), "input": WarpingError()}
        previous_input: Tensor | None = None
        done = self.done
        spent = 0.0
        self.stylized = 0
        for index in range(self.count):
            rgb = first if index == 0 else next(reader, None)
            if rgb is None:  # scanned whole, but the stream breaks now (the file changed?)
                raise BrushworkError(
                    f"{self.info.path}: frame {index + 1} of {self.count} does not decode "
                    f"now (the file changed while brushwork was working?); "
                    f"{self.spec.path} is not written; the finished frames stay in "
                    f"{self.work_dir}"
                )
            begin = time.perf_counter()
            grey = gray(rgb)
            content = _as_tensor(rgb, device)
            if index < done:
                result = work.load(index)
                image = _as_tensor(result, device)
            else:
                pairs = {}
                if video.temporal and index > 0:
                    pairs = {
                        j: FramePair.between(greys[-j], grey, flow)
                        for j in looks
                        if j <= len(greys)
                    }
                image, losses = self._stylize(index, content, pairs, outputs)
                result = _as_rgb(image)
                work.save(index, result)
                if self.tracking:
                    work.save_state(self.tracker.state())
                image = _as_tensor(result, device)  # what a resumed run would read back
                spent += time.perf_counter() - begin
                self.stylized += 1
                ev.emit(
                    ev.Progress(
                        STAGE,
                        index + 1,
                        self.count,
                        losses,
                        time.perf_counter() - self.loop_started,
                        details={"frame": index},
                    )
                )
            if metric is not None and index > 0 and previous_input is not None:
                pair = FramePair.between(greys[-1], grey, metric)
                backward = flow_tensor(pair.backward, device)
                mask = torch.from_numpy(pair.mask)
                self.errors["output"].add(image, warp_image(outputs[-1], backward), mask)
                self.errors["input"].add(content, warp_image(previous_input, backward), mask)
            greys.append(grey)
            outputs.append(image)
            previous_input = content
            yield index, result
        self.frame_seconds = spent / self.stylized if self.stylized else 0.0

    def run(self) -> VideoResult:
        from brushwork.outputs import write_atomically, write_folder
        from brushwork.video.io import read_frames, write_video
        from brushwork.video.temporal import TextureTracker

        self._check()
        video = self.video
        self.done = min(self.work.done(), self.count)
        self.tracker = TextureTracker(video.history, video.blend)
        if self.tracking and self.done:
            state = self.work.load_state()
            if state is None:
                self.done = 0
            else:  # the tracker's state is saved after its frame: it may lag by one
                self.done = min(self.done, int(state["frame"]) + 1)
                if self.done == int(state["frame"]) + 1:
                    self.tracker.restore(
                        state,
                        {
                            k: torch.from_numpy(self.work.load(k, PAINTED).copy()).permute(2, 0, 1)[
                                None
                            ]
                            for k in TextureTracker.needed_by(state)
                        },
                    )
                else:
                    self.done = 0
        reader = read_frames(self.info, self.size, self.count)
        first = next(reader, None)
        if first is None:  # scanned whole, but nothing decodes now (the file changed?)
            if not self.done:
                self.work.remove()
            raise BrushworkError(
                f"{self.info.path}: the first frame does not decode now (the file changed "
                "while brushwork was working?); no output written"
            )
        if self.done < self.count:
            self._prepare(first)
        ev.emit(
            ev.Started(
                STAGE,
                self.count,
                unit="frame",
                details={
                    "initial": self.done,
                    "method": self.stylizer.name,
                    "size": list(self.size),
                    "precision": self.stylizer.precision.name,
                    "work_dir": str(self.work_dir),
                    "unit_scale": False,
                },
            )
        )
        self.loop_started = time.perf_counter()
        frames = self._frames(reader, first)
        try:
            if self.spec.folder:

                def fill(folder: Path) -> None:
                    from brushwork.video.io import frame_name

                    for index, _ in frames:
                        target = folder / frame_name(index)
                        try:
                            os.link(self.work.frame(index), target)
                        except OSError:
                            import shutil

                            shutil.copyfile(self.work.frame(index), target)

                write_folder(self.spec.path, fill, replace=self.force, label="-o")
            else:
                write_atomically(
                    self.spec.path,
                    lambda tmp: write_video(
                        tmp, self.spec, self.size, self.info, self.count, frames
                    ),
                    replace=self.force,
                )
        finally:
            frames.close()
            reader.close()
            ev.emit(
                ev.Finished(
                    STAGE,
                    time.perf_counter() - self.loop_started,
                    details={"frames": self.count, "stylized": getattr(self, "stylized", 0)},
                )
            )
        if not video.keep_work:
            self.work.remove()
        report = None
        if video.report:
            report = {name: error.value for name, error in self.errors.items()}
        return VideoResult(
            self.spec.path,
            self.count,
            self.stylized,
            self.info.lost,
            self.size,
            time.perf_counter() - self.started,
            self.stylizer.name,
            report,
            self.frame_seconds,
        )


def frames_kept(output: str | os.PathLike[str], work_dir: str | None = None) -> tuple[Path, int]:
    """The work folder of an output and how many finished frames it holds (after an
    interruption)."""
    from brushwork.video.work import FRAMES, default_work_dir

    folder = Path(work_dir) if work_dir else default_work_dir(output)
    frames = folder / FRAMES
    count = len(list(frames.glob("*.png"))) if frames.is_dir() else 0
    return folder, count


def describe() -> list[dict[str, Any]]:
    """The video options (types, defaults, ranges) for forms, as
    :func:`brushwork.methods.describe` lists the methods'."""
    return VideoOptions.describe()
