"""Stylizing a video: a streaming, resumable run over the frames of a clip.

    >>> import brushwork
    >>> done = brushwork.stylize_video("clip.mp4", "painting.jpg", "out.mp4", method="adain",
    ...                                size=512)
    >>> done.frames, done.fps

What happens, in order:

1. Everything is checked before any work (:func:`brushwork.video.io.scan`: the input
   decodes, frame by frame; :func:`brushwork.video.writer.plan_output`: the container takes
   the codec; the method, its options, the styles, masks and memory from their sizes).
   The output and the work folder are planned together by the output-safety rule of
   :mod:`brushwork.outputs` (:func:`brushwork.video.writer.add_output`,
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
import os
import time
from collections import deque
from collections.abc import Generator, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from brushwork import color
from brushwork import events as ev
from brushwork.defaults import DEFAULT_ONE_PASS_METHOD
from brushwork.errors import BrushworkError
from brushwork.image import array_to_tensor
from brushwork.video.flow import FramePair
from brushwork.video.options import (
    BLEND,
    HISTORY,
    TEMPORAL_WEIGHT,
    VideoOptions,
    VideoResult,
    describe,
)
from brushwork.video.plan import PlannedRun
from brushwork.video.work import INPUTS, PAINTED

__all__ = [
    "BLEND",
    "FRAME_STAGE",
    "HISTORY",
    "STAGE",
    "TEMPORAL_WEIGHT",
    "VideoOptions",
    "VideoResult",
    "describe",
    "frames_kept",
    "stylize_video",
]

STAGE = "video"
"""The event stage of a video run: one step per frame."""
FRAME_STAGE = "video frame"
"""The stage each frame's own stylization reports under (not shown by the bar)."""
FLAT = 2.0
"""A frame whose values deviate by less than this (of 255) is flat."""


def _as_rgb(image: Tensor) -> np.ndarray:
    return image[0].detach().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()


def _flat(rgb: np.ndarray) -> bool:
    """Whether a frame is flat: every value within a few levels of the mean (black, grey)."""
    return float(rgb.std()) < FLAT


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
    with ev.bound(ev.StepsInside(sink, STAGE) if sink is not None else None):
        return _Run(input, style, output, method, mask, regions, encoder, force, options).run()


class _Run(PlannedRun):
    """One video run (see :func:`stylize_video`): checked and planned
    (:class:`~brushwork.video.plan.PlannedRun`), then the frames stylized and written."""

    def _prepare(self, first: np.ndarray) -> None:
        from brushwork.inputs import style_targets
        from brushwork.stylizer import Prepared

        stylizer, plan = self.stylizer, self.plan
        max_pixels = stylizer.controls.max_pixels
        targets = style_targets(self.styles, plan, self.mask, self.regions, max_pixels)
        reference = array_to_tensor(self._reference(first), stylizer.device)
        self.prepared = stylizer.prepare(plan, targets, reference)
        self.later = self.prepared
        later = self.video.later_iterations
        if later is not None and self.optimization:
            side = plan.schedule[-1][0]
            self.later = Prepared(
                dataclasses.replace(plan, schedule=[(side, later)], explicit_iterations=True),
                self.prepared.targets,
                self.prepared.by_scale,
            )

    def _reference(self, first: np.ndarray) -> np.ndarray:
        """The frame colour preservation matches the styles to: the first frame, or where it
        is flat (a black or grey opening) the first that is not (decoded once more)."""
        if self.stylizer.controls.preserve_color == "none" or not _flat(first):
            return first
        from brushwork.video import io

        frames = io.read_frames(self.info, self.size, self.count)
        try:
            return next((rgb for rgb in frames if not _flat(rgb)), first)
        finally:
            frames.close()

    def _stylize(
        self,
        index: int,
        content: Tensor,
        rgb: np.ndarray,
        pairs: dict[int, FramePair],
        previous: deque[Tensor],
    ) -> tuple[Tensor, dict[str, float]]:
        """One frame: with temporal consistency when there is a previous output of the same
        scene (after a cut, a frame starts again as the first one)."""
        if self.tracking:
            return self._track(index, content, rgb, pairs.get(1))
        pair = pairs.get(1)
        cut = pair is not None and pair.cut
        if self.optimization and pair is not None and not cut:
            return self._optimize(content, self.later, pairs, previous)
        prepared = self.prepared if index == 0 or cut else self.later
        out = self.stylizer.stylize(content, prepared, stage=FRAME_STAGE)
        return out.tensor, out.result.losses

    def _track(
        self, index: int, content: Tensor, rgb: np.ndarray, pair: FramePair | None
    ) -> tuple[Tensor, dict[str, float]]:
        """A feed-forward frame: its own stylization, then the texture tracker; a frame
        that becomes a source of texture is kept in the work folder with its input."""
        stylizer = self.stylizer
        out = stylizer.stylize(content, self.prepared, stage=FRAME_STAGE)
        fresh = array_to_tensor(_as_rgb(out.tensor), stylizer.device)
        image = self.tracker.step(fresh, rgb, pair)
        if self.tracker.anchored:
            self.work.save(index, _as_rgb(fresh), PAINTED)
            self.work.save(index, rgb, INPUTS)
        return image, out.result.losses

    def _optimize(
        self, content: Tensor, prepared: Any, pairs: dict[int, FramePair], previous: deque[Tensor]
    ) -> tuple[Tensor, dict[str, float]]:
        """An optimization frame: started from the previous output warped by the flow, with
        the temporal loss toward it (and toward earlier ones, long-term; Ruder et al. 2016)."""
        from brushwork.video.flow import flow_tensor, warp
        from brushwork.video.temporal import TemporalLoss, long_term_weights

        video, device = self.video, self.stylizer.device
        mode = self.stylizer.controls.preserve_color
        looks = [j for j in video.temporal_frames if j in pairs and not pairs[j].cut]
        warped = [
            warp(previous[-j], flow_tensor(pairs[j].backward, device), "bicubic") for j in looks
        ]
        weights = long_term_weights([pairs[j].usable for j in looks])
        extra = []
        if video.temporal_weight > 0:
            targets = [color.prepare_content(w, mode) for w in warped]
            masks = [torch.from_numpy(w)[None, None].to(device) for w in weights]
            extra.append(("temporal", TemporalLoss(targets, masks, video.temporal_weight)))
        init = color.prepare_content(warped[0], mode)
        out = self.stylizer.stylize(
            content, prepared, init=init, extra_losses=extra, stage=FRAME_STAGE
        )
        return out.tensor, out.result.losses

    def _frames(
        self, reader: Generator[np.ndarray, None, None], first: np.ndarray
    ) -> Generator[tuple[int, np.ndarray], None, None]:
        """Each frame's stylized RGB, in order: from the work folder where an earlier run
        finished it, else made now and kept there."""
        from brushwork.metrics import WarpingError
        from brushwork.video.flow import DISFlow, gray

        looks = self.video.temporal_frames if self.optimization else (1,)
        self.greys: deque[np.ndarray] = deque(maxlen=max(looks))
        self.outputs: deque[Tensor] = deque(maxlen=max(looks))
        self.flow = DISFlow(self.video.flow)
        self.errors = {"output": WarpingError(), "input": WarpingError()}
        spent = 0.0
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
            content = array_to_tensor(rgb, self.stylizer.device)
            if index < self.done:
                result = self.work.load(index)
            else:
                result = self._make(index, content, rgb, looks)
                spent += time.perf_counter() - begin
            image = array_to_tensor(result, self.stylizer.device)  # as a resumed run reads it
            self._measure(index, content, image, grey)
            self.greys.append(grey)
            self.outputs.append(image)
            yield index, result
        self.frame_seconds = spent / self.stylized if self.stylized else 0.0

    def _make(
        self, index: int, content: Tensor, rgb: np.ndarray, looks: tuple[int, ...]
    ) -> np.ndarray:
        """Stylize frame ``index`` now, keep it in the work folder and report progress."""
        from brushwork.video.flow import gray

        pairs = {}
        if self.video.temporal and index > 0:
            grey, greys = gray(rgb), self.greys
            pairs = {
                j: FramePair.between(greys[-j], grey, self.flow) for j in looks if j <= len(greys)
            }
        image, losses = self._stylize(index, content, rgb, pairs, self.outputs)
        result = _as_rgb(image)
        self.work.save(index, result)
        if self.tracking:
            self.work.save_state(self.tracker.state())
        self.stylized += 1
        elapsed = time.perf_counter() - self.loop_started
        ev.emit(
            ev.Progress(STAGE, index + 1, self.count, losses, elapsed, details={"frame": index})
        )
        return result

    def _measure(self, index: int, content: Tensor, image: Tensor, grey: np.ndarray) -> None:
        """With ``report``: the warping error of the output and of the input at this frame
        (Farnebäck flow of the input, not the DIS flow the temporal methods follow)."""
        from brushwork.video.flow import FarnebackFlow, flow_tensor, warp

        if not self.video.report or index == 0:
            self.previous_input = content
            return
        pair = FramePair.between(self.greys[-1], grey, FarnebackFlow())
        backward = flow_tensor(pair.backward, content.device)
        mask = torch.from_numpy(pair.mask)
        self.errors["output"].add(image, warp(self.outputs[-1], backward), mask)
        self.errors["input"].add(content, warp(self.previous_input, backward), mask)
        self.previous_input = content

    def _restore(self) -> None:
        """The finished frames to take from the work folder, and the texture tracker's
        state after the last of them (its state is saved after its frame: it may lag by
        one, and a frame without it is stylized again)."""
        from brushwork.video.tracking import TextureTracker

        video = self.video
        self.done = min(self.work.done(), self.count)
        self.tracker = TextureTracker(video.history, video.blend, max_age=video.max_age)
        if not (self.tracking and self.done):
            return
        state = self.work.load_state()
        if state is None or self.done > int(state["frame"]) + 1:
            self.done = 0
            return
        self.done = int(state["frame"]) + 1
        needed = TextureTracker.needed_by(state)
        painted = {
            k: torch.from_numpy(self.work.load(k, PAINTED).copy()).permute(2, 0, 1)[None]
            for k in needed
        }
        self.tracker.restore(state, painted, {k: self.work.load(k, INPUTS) for k in needed})

    def _first(self) -> tuple[Generator[np.ndarray, None, None], np.ndarray]:
        """The decoder and the first frame (the styles are prepared with it)."""
        from brushwork.video import io

        reader = io.read_frames(self.info, self.size, self.count)
        first = next(reader, None)
        if first is None:  # scanned whole, but nothing decodes now (the file changed?)
            if not self.done:
                self.work.remove()
            raise BrushworkError(
                f"{self.info.path}: the first frame does not decode now (the file changed "
                "while brushwork was working?); no output written"
            )
        return reader, first

    def _write(self, frames: Iterator[tuple[int, np.ndarray]]) -> None:
        """Stream the frames into the output: a video file (encoded into a temporary file,
        then renamed) or a folder of PNG frames (linked from the work folder)."""
        from brushwork.outputs import write_atomically, write_folder
        from brushwork.video.io import frame_name
        from brushwork.video.writer import write_video

        if not self.spec.folder:
            write_atomically(
                self.spec.path,
                lambda tmp: write_video(tmp, self.spec, self.size, self.info, self.count, frames),
                replace=self.force,
            )
            return

        def fill(folder: Path) -> None:
            for index, _ in frames:
                target = folder / frame_name(index)
                try:
                    os.link(self.work.frame(index), target)
                except OSError:
                    import shutil

                    shutil.copyfile(self.work.frame(index), target)

        write_folder(self.spec.path, fill, replace=self.force, label="-o")

    def _started(self) -> None:
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

    def run(self) -> VideoResult:
        self.check()
        self.stylized, self.frame_seconds = 0, 0.0
        self._restore()
        reader, first = self._first()
        if self.done < self.count:
            self._prepare(first)
        self._started()
        self.loop_started = time.perf_counter()
        frames = self._frames(reader, first)
        try:
            self._write(frames)
        finally:
            frames.close()
            reader.close()
            ev.emit(
                ev.Finished(
                    STAGE,
                    time.perf_counter() - self.loop_started,
                    details={"frames": self.count, "stylized": self.stylized},
                )
            )
        if not self.video.keep_work:
            self.work.remove()
        return self._result()

    def _result(self) -> VideoResult:
        report = None
        if self.video.report:
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
