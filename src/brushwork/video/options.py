"""The options of a video run (:class:`VideoOptions`: what it does besides stylizing each
frame) and its result (:class:`VideoResult`); ``brushwork video`` and the service build their
forms from them (:func:`describe`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from brushwork.errors import BrushworkError
from brushwork.options import Options, option
from brushwork.video.flow import PRESETS
from brushwork.video.tracking import MAX_AGE

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
        "motion; lower values mix in the new frame's texture, contrast kept: "
        "more flicker)",
        minimum=0.0,
        maximum=1.0,
    )
    max_age: int = option(
        MAX_AGE,
        "feed-forward methods: frames a pixel's texture is tracked at most before it is "
        "painted anew from the current frame",
        minimum=1,
        maximum=10_000,
        metavar="N",
    )
    history: int = option(
        HISTORY,
        "feed-forward methods: earlier stylized frames kept as "
        "texture sources (memory: two frames each)",
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


def describe() -> list[dict[str, Any]]:
    """The video options (types, defaults, ranges) for forms, as
    :func:`brushwork.methods.describe` lists the methods'."""
    return VideoOptions.describe()
