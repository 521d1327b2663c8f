"""Video in: PyAV decoding, folders of frames, timestamps (variable frame rates too) and
rotation, with every check of the input. Writing is :mod:`brushwork.video.writer`.

The input is a video file (anything FFmpeg demuxes: MP4, MOV, MKV, WebM, animated GIF, ...)
or a folder of images (PNG, JPEG, WebP, TIFF, BMP; in natural order: ``2.png`` before
``10.png``). :func:`scan` checks it before any work: a video stream exists and has frames,
and every frame decodes; a stream that breaks mid-file (a truncated download, a corrupt
packet) is refused with the number of frames lost, unless ``partial`` accepts the frames
that decode (counted by decoding them as :func:`read_frames` will, so the run gets every
frame it was promised). It records every frame's timestamp, so variable frame rates
survive; a folder's frames get ``fps``. :func:`read_frames` then decodes again, one frame
at a time (memory does not grow with the clip), each frame turned upright by the stream's
rotation (display matrix) and resized to the working size.
"""

from __future__ import annotations

import os
import re
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from PIL import Image

from brushwork import events as ev
from brushwork.errors import BrushworkError

DEFAULT_FPS = 25.0
_AV_MISSING = "video needs PyAV: pip install av (or pip install 'brushwork[video]')"
_IMAGE_FORMATS = frozenset(
    {"image2", "png_pipe", "jpeg_pipe", "webp_pipe", "bmp_pipe", "tiff_pipe", "image2pipe"}
)


def import_av() -> ModuleType:
    """PyAV, or one clear error when it is not installed."""
    try:
        import av
    except ImportError as error:
        raise BrushworkError(_AV_MISSING) from error
    return av


def even(value: int) -> int:
    """The nearest even number >= 2 (halves round up)."""
    return max(2, 2 * int(value / 2 + 0.5))


@dataclass
class AudioInfo:
    """The input's first audio stream."""

    index: int
    codec: str


@dataclass
class VideoInfo:
    """What :func:`scan` found: sizes (as stored and upright), the frames that decode with
    their timestamps, what was lost, the audio stream."""

    path: Path
    folder: bool
    stored_size: tuple[int, int]
    """(width, height) as decoded."""
    rotation: int
    """Degrees counterclockwise that turn a decoded frame upright (0, 90, 180, 270)."""
    pts: list[int]
    time_base: Fraction
    rate: Fraction
    """The average frame rate (for the encoder's nominal rate)."""
    codec: str = ""
    expected: int | None = None
    """Frames the header announces (None: unknown)."""
    lost: int = 0
    error: str | None = None
    audio: AudioInfo | None = None
    files: list[Path] = field(default_factory=list)
    stream_index: int = 0

    @property
    def frames(self) -> int:
        return len(self.pts)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) upright."""
        width, height = self.stored_size
        return (height, width) if self.rotation % 180 else (width, height)

    def seconds(self, index: int) -> float:
        """Timestamp of frame ``index`` in seconds."""
        return float(self.pts[index] * self.time_base)

    @property
    def duration(self) -> float:
        """Seconds from the first frame to the end of the last (the last lasts one average
        frame)."""
        if not self.pts:
            return 0.0
        return self.seconds(-1) - self.seconds(0) + float(1 / self.rate)


def _natural_key(path: Path) -> list[Any]:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def _scan_folder(path: Path, fps: float | None, max_pixels: int | None) -> VideoInfo:
    from brushwork.image import IMAGE_EXTENSIONS, probe_image

    files = sorted(
        (p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()),
        key=_natural_key,
    )
    if not files:
        raise BrushworkError(
            f"{path}: a folder with no frames (PNG, JPEG, WebP, TIFF or BMP images)"
        )
    first = probe_image(files[0], max_pixels=max_pixels)
    for file in files[1:]:
        size = probe_image(file, max_pixels=max_pixels)
        if size != first:
            raise BrushworkError(
                f"{path}: frames of different sizes: {files[0].name} is "
                f"{first[0]}x{first[1]}, {file.name} is {size[0]}x{size[1]}"
            )
    rate = Fraction(fps or DEFAULT_FPS).limit_denominator(1001)
    return VideoInfo(
        path,
        True,
        first,
        0,
        list(range(len(files))),
        1 / rate,
        rate,
        codec="images",
        expected=len(files),
        files=files,
    )


def open_input(path: Path) -> Any:
    av = import_av()
    try:
        if path.stat().st_size == 0:
            raise BrushworkError(f"{path}: empty file")
        container = av.open(str(path))
    except BrushworkError:
        raise
    except PermissionError:
        raise BrushworkError(f"{path}: permission denied") from None
    except (av.FFmpegError, OSError, ValueError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise BrushworkError(f"{path}: not a video PyAV can read ({reason})") from None
    if container.format.name in _IMAGE_FORMATS:
        container.close()
        raise BrushworkError(
            f"{path}: a still image, not a video; use `brushwork stylize` "
            "(or give a folder of frames)"
        )
    return container


def _rotation(degrees: float) -> int:
    turns = round(degrees / 90)
    if abs(degrees - 90 * turns) > 1:
        ev.warn(
            f"the video's rotation of {degrees:g}° is not a multiple of 90°: frames are "
            "stylized as stored"
        )
        return 0
    return 90 * (turns % 4)


def _decoded(stream: Any, container: Any, errors: list[str]) -> Iterator[Any]:
    """Every frame of ``stream`` that decodes, in order; a packet that does not decode is
    recorded in ``errors`` and skipped. :func:`scan` counts frames and :func:`read_frames`
    reads them through this one function, decoding the same way: slice threads at most.
    Frame threads hold several frames in flight, and a broken packet takes them with it, so
    a stream that breaks would read back fewer frames than were counted."""
    av = import_av()
    stream.thread_type = "SLICE"
    for packet in container.demux(stream):
        try:
            yield from stream.decode(packet)
        except av.FFmpegError as error:
            errors.append(str(error))


def _video_stream(container: Any, path: Path) -> Any:
    videos = list(container.streams.video)
    if not videos:
        found = ", ".join(f"{s.type} {s.codec_context.name}" for s in container.streams)
        raise BrushworkError(f"{path}: no video stream (streams: {found or 'none'})")
    return videos[0]


@dataclass
class VideoHeader:
    """What a video file's header says, before any frame is decoded (:func:`probe`)."""

    format: str
    """FFmpeg's name of the container (``mov,mp4,m4a,3gp,3g2,mj2``, ``matroska,webm``)."""
    size: tuple[int, int]
    """(width, height) of the frames as stored."""
    frames: int | None
    """Frames the header announces (None: it does not say)."""
    seconds: float | None
    """The duration the header announces (None: it does not say)."""


def probe(path: str | os.PathLike[str]) -> VideoHeader:
    """Read a video file's header only (no frame decoded), with :func:`scan`'s messages for
    what is not a video: for limits checked before the whole file is decoded."""
    p = Path(path)
    if not p.is_file():
        raise BrushworkError(f"{path}: no such file")
    container = open_input(p)
    try:
        stream = _video_stream(container, p)
        seconds = None
        if stream.duration and stream.time_base:
            seconds = float(stream.duration * stream.time_base)
        elif container.duration:
            seconds = container.duration / 1_000_000
        return VideoHeader(
            container.format.name,
            (stream.codec_context.width, stream.codec_context.height),
            stream.frames or None,
            seconds,
        )
    finally:
        container.close()


def _timestamps(stream: Any, container: Any, errors: list[str]) -> tuple[list[int], int, Any]:
    """Decode every frame: their timestamps (in order, even where broken or missing), the
    rotation and the stored (width, height) of the first."""
    pts: list[int] = []
    rotation = 0
    stored = (stream.codec_context.width, stream.codec_context.height)
    for frame in _decoded(stream, container, errors):
        if not pts:
            rotation = _rotation(float(getattr(frame, "rotation", 0) or 0))
            stored = (frame.width, frame.height)
        value = frame.pts if frame.pts is not None else (pts[-1] + 1 if pts else 0)
        if pts and value <= pts[-1]:  # broken or missing timestamps: keep the order
            value = pts[-1] + 1
        pts.append(int(value))
    return pts, rotation, stored


def _lost(stream: Any, time_base: Fraction, rate: Fraction, found: int, errors: list[str]) -> Any:
    """The frames the header announces (None: unknown) and how many of them are lost."""
    expected = stream.frames or None
    if expected is None and stream.duration:
        expected = round(float(stream.duration * time_base) * rate) or None
    lost = max(0, (expected or 0) - found)
    if errors and not lost:
        lost = len(errors)
    # an estimate from the duration can be off by a frame or two; decode errors cannot
    if not errors and not stream.frames and lost <= 2:
        lost = 0
    return expected, lost


def _check_pixels(path: Path, stream: Any, max_pixels: int | None) -> None:
    from brushwork.image import MAX_PIXELS_ENV, max_pixels_limit

    width, height = stream.codec_context.width, stream.codec_context.height
    limit = max_pixels or max_pixels_limit()
    if width * height > limit:
        raise BrushworkError(
            f"{path}: video frames are {width}x{height} = {width * height:,} pixels, over "
            f"the limit of {limit:,}; raise it with --max-pixels or {MAX_PIXELS_ENV}"
        )


def _scan_file(path: Path, max_pixels: int | None) -> VideoInfo:
    container = open_input(path)
    try:
        stream = _video_stream(container, path)
        _check_pixels(path, stream, max_pixels)
        audio = next(iter(container.streams.audio), None)
        errors: list[str] = []
        pts, rotation, stored = _timestamps(stream, container, errors)
        if not pts:
            detail = f" ({errors[0]})" if errors else ""
            raise BrushworkError(f"{path}: the video stream has no frames that decode{detail}")
        time_base = stream.time_base or Fraction(1, 1000)
        rate = Fraction(stream.average_rate or stream.guessed_rate or Fraction(DEFAULT_FPS))
        expected, lost = _lost(stream, time_base, rate, len(pts), errors)
        return VideoInfo(
            path,
            False,
            stored,
            rotation,
            pts,
            time_base,
            rate,
            codec=stream.codec_context.name,
            expected=expected,
            lost=lost,
            error=errors[0] if errors else None,
            audio=AudioInfo(audio.index, audio.codec_context.name) if audio is not None else None,
            stream_index=stream.index,
        )
    finally:
        container.close()


def scan(
    path: str | os.PathLike[str],
    *,
    fps: float | None = None,
    max_pixels: int | None = None,
    partial: bool = False,
) -> VideoInfo:
    """Check a video file or frame folder and list its frames (see the module docstring);
    every problem is one :class:`BrushworkError`."""
    p = Path(path)
    if not p.exists():
        raise BrushworkError(f"{path}: no such file or folder")
    if p.is_dir():
        return _scan_folder(p, fps, max_pixels)
    if fps is not None:
        raise BrushworkError(
            "--fps applies to a folder of frames; a video file keeps its own timestamps"
        )
    info = _scan_file(p, max_pixels)
    if info.lost:
        total = f" of {info.expected}" if info.expected else ""
        reason = f": {info.error}" if info.error else ""
        if not partial:
            raise BrushworkError(
                f"{path}: the video stream breaks after frame {info.frames}: {info.lost}"
                f"{total} frames do not decode{reason}; pass --partial to stylize the "
                f"{info.frames} that do"
            )
        ev.warn(
            f"{path}: {info.lost}{total} frames do not decode{reason}; stylizing the "
            f"{info.frames} that do"
        )
    return info


def upright(frame: np.ndarray, rotation: int) -> np.ndarray:
    """A decoded (H, W, 3) frame turned ``rotation`` degrees counterclockwise."""
    return np.ascontiguousarray(np.rot90(frame, rotation // 90)) if rotation else frame


def read_frames(
    info: VideoInfo, size: tuple[int, int], limit: int | None = None
) -> Generator[np.ndarray, None, None]:
    """The frames of a scanned input, upright, at ``size`` (width, height) as RGB uint8
    (H, W, 3) arrays, one at a time (at most ``limit``)."""
    count = info.frames if limit is None else min(limit, info.frames)
    width, height = size
    if info.folder:
        from brushwork.image import open_image, split_alpha

        for file in info.files[:count]:
            image, _ = split_alpha(open_image(file))
            if image.size != (width, height):
                image = image.resize((width, height), Image.Resampling.LANCZOS)
            yield np.asarray(image, dtype=np.uint8)
        return
    stored = (height, width) if info.rotation % 180 else (width, height)
    container = open_input(info.path)
    try:
        stream = container.streams[info.stream_index]
        errors: list[str] = []
        for index, frame in enumerate(_decoded(stream, container, errors)):
            if index >= count:
                break
            if (frame.width, frame.height) != stored:
                frame = frame.reformat(width=stored[0], height=stored[1], interpolation="LANCZOS")
            yield upright(frame.to_ndarray(format="rgb24"), info.rotation)
    finally:
        container.close()


def frame_name(index: int) -> str:
    """The file name of frame ``index`` (0-based) in a folder of frames: 000001.png, ..."""
    return f"{index + 1:06d}.png"
