"""Video in and out: PyAV decoding and encoding, folders of frames, timestamps, rotation and
audio.

Reading (:func:`scan`, then :func:`read_frames`)
    The input is a video file (anything FFmpeg demuxes: MP4, MOV, MKV, WebM, animated GIF,
    ...) or a folder of images (PNG, JPEG, WebP, TIFF, BMP; in natural order: ``2.png``
    before ``10.png``). :func:`scan` checks it before any work: a video stream exists and has
    frames, and every frame decodes; a stream that breaks mid-file (a truncated download, a
    corrupt packet) is refused with the number of frames lost, unless ``partial`` accepts
    the frames that decode (counted by decoding them as :func:`read_frames` will, so the run
    gets every frame it was promised). It records every frame's timestamp, so variable
    frame rates survive; a folder's frames get ``fps``. :func:`read_frames` then decodes
    again, one frame at a time (memory does not grow with the clip), each frame turned
    upright by the stream's rotation (display matrix) and resized to the working size.

Writing (:func:`add_output` and :func:`plan_output`, then :class:`VideoWriter` or
:func:`brushwork.outputs.write_folder`)
    The output's extension picks the container and its default codec (``.mp4``, ``.mov``,
    ``.mkv``: H.264; ``.webm``: VP9; ``.gif``: GIF with one palette for the clip); a path
    without extension is a folder of PNG frames, replaced only when brushwork wrote it (the
    rule of :mod:`brushwork.outputs`, checked by :func:`add_output` with the command's
    inputs and other outputs). :func:`plan_output` checks the container, the codec
    (``--codec``) and their combination before any work, by encoding two frames into
    memory. Frames keep their input timestamps; codecs that store 4:2:0 chroma need
    even sides (:attr:`OutputSpec.even`: the runner rounds the working size). The input's
    rotation is written back as metadata (frames stored as in the input) where the
    container holds it (MP4, MOV, MKV, WebM); GIFs and PNG frames are written upright. The
    audio stream is copied packet for packet when the container takes its codec, else
    re-encoded to the container's audio codec (with a warning), and dropped (with a warning)
    for GIF and frame folders.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from PIL import Image

from brushwork import events as ev
from brushwork.errors import BrushworkError
from brushwork.outputs import OutputPlan

VIDEO_FORMATS: dict[str, tuple[str, str]] = {
    ".mp4": ("mp4", "libx264"),
    ".m4v": ("mp4", "libx264"),
    ".mov": ("mov", "libx264"),
    ".mkv": ("matroska", "libx264"),
    ".webm": ("webm", "libvpx-vp9"),
    ".gif": ("gif", "gif"),
}
"""Output extension → (FFmpeg container, default video codec)."""
ROTATING_FORMATS = frozenset({"mp4", "mov", "matroska", "webm"})
"""Containers that keep a display rotation (frames are then stored as in the input)."""
FALLBACK_CODECS = {"libx264": "mpeg4"}
"""A default codec this FFmpeg lacks → the one used instead."""
QUALITY_CODECS = frozenset(
    {"libx264", "libx265", "libvpx-vp9", "libvpx", "libsvtav1", "libaom-av1"}
)
"""Codecs that take a constant-quality factor (``crf``)."""
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


# ----------------------------------------------------------------------------- reading


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


def _open_input(path: Path) -> Any:
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
    container = _open_input(p)
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


def _scan_file(path: Path, max_pixels: int | None) -> VideoInfo:
    from brushwork.image import MAX_PIXELS_ENV, max_pixels_limit

    container = _open_input(path)
    try:
        stream = _video_stream(container, path)
        width, height = stream.codec_context.width, stream.codec_context.height
        limit = max_pixels or max_pixels_limit()
        if width * height > limit:
            raise BrushworkError(
                f"{path}: video frames are {width}x{height} = {width * height:,} pixels, over "
                f"the limit of {limit:,}; raise it with --max-pixels or {MAX_PIXELS_ENV}"
            )
        audio = next(iter(container.streams.audio), None)
        errors: list[str] = []
        pts: list[int] = []
        rotation = 0
        stored = (width, height)
        time_base = stream.time_base or Fraction(1, 1000)
        for frame in _decoded(stream, container, errors):
            if not pts:
                rotation = _rotation(float(getattr(frame, "rotation", 0) or 0))
                stored = (frame.width, frame.height)
            value = frame.pts if frame.pts is not None else (pts[-1] + 1 if pts else 0)
            if pts and value <= pts[-1]:  # broken or missing timestamps: keep the order
                value = pts[-1] + 1
            pts.append(int(value))
        if not pts:
            detail = f" ({errors[0]})" if errors else ""
            raise BrushworkError(f"{path}: the video stream has no frames that decode{detail}")
        rate = stream.average_rate or stream.guessed_rate or Fraction(DEFAULT_FPS)
        expected = stream.frames or None
        if expected is None and stream.duration:
            expected = round(float(stream.duration * time_base) * rate) or None
        lost = max(0, (expected or 0) - len(pts))
        if errors and not lost:
            lost = len(errors)
        # an estimate from the duration can be off by a frame or two; decode errors cannot
        if not errors and not stream.frames and lost <= 2:
            lost = 0
        return VideoInfo(
            path,
            False,
            stored,
            rotation,
            pts,
            time_base,
            Fraction(rate),
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
) -> Iterator[np.ndarray]:
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
    container = _open_input(info.path)
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


# ----------------------------------------------------------------------------- writing


@dataclass
class OutputSpec:
    """Where and how the output is written (from :func:`plan_output`)."""

    path: Path
    folder: bool
    format: str | None = None
    codec: str | None = None
    pix_fmt: str | None = None
    even: bool = False
    """Whether the codec needs even sides (4:2:0 chroma)."""
    audio: str | None = None
    """``copy``, ``encode`` (to the container's audio codec) or None (no audio)."""
    audio_codec: str | None = None
    crf: int | None = None


def _pick_pix_fmt(codec: Any) -> str:
    formats = [f.name for f in (codec.video_formats or ())]
    for name in ("yuv420p", "rgb24", "pal8"):
        if name in formats or not formats:
            return name
    return formats[0]


def _probe_encode(spec: OutputSpec, info: VideoInfo | None) -> None:
    """Encode two tiny frames (and the audio stream) into memory: the container, codec and
    audio settings work, or one clear error now rather than after the stylization."""
    av = import_av()
    buffer = io.BytesIO()
    try:
        container = av.open(buffer, mode="w", format=spec.format)
    except (av.FFmpegError, ValueError) as error:
        raise BrushworkError(f"{spec.path}: cannot write {spec.format} files ({error})") from None
    try:
        stream = container.add_stream(spec.codec, rate=10)
        stream.width, stream.height, stream.pix_fmt = 16, 16, spec.pix_fmt
        if spec.audio is not None and info is not None and info.audio is not None:
            source = _open_input(info.path)
            try:
                template = source.streams[info.audio.index]
                if spec.audio == "copy":
                    container.add_stream_from_template(template)
                else:
                    _add_audio_encoder(container, spec.audio_codec, template)
            finally:
                source.close()
        for index in range(2):
            black = np.zeros((16, 16, 3), np.uint8)
            frame = (
                _pal8_frame(av, black, None)[0]
                if spec.pix_fmt == "pal8"
                else av.VideoFrame.from_ndarray(black, format="rgb24")
            )
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
        container.close()
    except (av.FFmpegError, ValueError, KeyError, TypeError) as error:
        with contextlib.suppress(Exception):
            container.close()
        raise BrushworkError(
            f"{spec.path}: {spec.format} cannot hold {spec.codec} video "
            f"({error}); choose another --codec or container"
        ) from None


def _pal8_frame(
    av: ModuleType, rgb: np.ndarray, palette: Image.Image | None
) -> tuple[Any, Image.Image]:
    """An RGB frame as a pal8 frame in ``palette`` (None: one made from this frame);
    returns the frame and the palette (a GIF keeps one palette for the clip: no palette
    flicker)."""
    image = Image.fromarray(rgb)
    if palette is None:
        palette = image.quantize(256, method=Image.Quantize.MEDIANCUT)
    indexed = image.quantize(palette=palette, dither=Image.Dither.NONE)
    colours = np.zeros((256, 3), np.uint8)
    values = np.array(indexed.getpalette()[:768], np.uint8).reshape(-1, 3)
    colours[: len(values)] = values
    # PyAV takes a pal8 palette as (256, 4) rows of alpha, red, green, blue
    table = np.concatenate([np.full((256, 1), 255, np.uint8), colours], axis=1)
    frame = av.VideoFrame.from_ndarray(
        (np.ascontiguousarray(np.asarray(indexed)), table), format="pal8"
    )
    return frame, palette


def _add_audio_encoder(container: Any, codec: str | None, template: Any) -> Any:
    rate = template.codec_context.sample_rate or 48000
    if codec in ("libopus", "opus"):
        rate = 48000
    stream = container.add_stream(codec, rate=rate)
    layout = template.codec_context.layout
    stream.layout = layout.name if layout is not None and layout.nb_channels <= 2 else "stereo"
    return stream


def is_frames_folder(path: str | os.PathLike[str]) -> bool:
    """Whether an output path names a folder of PNG frames: no extension, or a trailing
    separator. The name alone decides, never what is on disk: a video file's path that is
    an existing folder is refused (:func:`add_output`), not filled with frames."""
    return not Path(path).suffix or str(path).endswith(("/", os.sep))


def add_output(plan: OutputPlan, path: str | os.PathLike[str]) -> Path:
    """Check the output's path with the command's other outputs and inputs (the rule of
    :mod:`brushwork.outputs`): a frames folder is replaced only when brushwork wrote it and
    may hold no input; a video file may not be an input nor an existing folder."""
    if is_frames_folder(path):
        return plan.add_folder(path, flag="-o")
    _container(path)
    return plan.add(path, extensions=tuple(VIDEO_FORMATS), what="video", flag="-o")


def _container(path: str | os.PathLike[str]) -> tuple[str, str]:
    """The (container, default codec) of a video file's extension."""
    suffix = Path(path).suffix.lower()
    if suffix not in VIDEO_FORMATS:
        known = ", ".join(VIDEO_FORMATS)
        raise BrushworkError(
            f"{path}: unsupported output format ({suffix!r}); use {known}, "
            "or a path without extension for a folder of PNG frames"
        )
    return VIDEO_FORMATS[suffix]


def plan_output(
    path: str | os.PathLike[str],
    *,
    codec: str | None = None,
    crf: int = 18,
    audio: bool = True,
    info: VideoInfo | None = None,
) -> OutputSpec:
    """Check how the output is written before any work (see the module docstring): the
    container takes the codec, and what happens to the input's audio. Its path is checked
    by :func:`add_output`."""
    p = Path(path)
    if is_frames_folder(path):
        if codec is not None:
            raise BrushworkError("--codec applies to a video file; a folder gets PNG frames")
        if audio and info is not None and info.audio is not None:
            ev.warn(
                f"a folder of frames has no audio: the input's {info.audio.codec} audio is not kept"
            )
        return OutputSpec(p, True)
    container_format, default = _container(path)
    av = import_av()
    chosen = codec or default
    if chosen not in av.codecs_available and codec is None:
        chosen = FALLBACK_CODECS.get(chosen, chosen)
    try:
        found = av.Codec(chosen, "w")
    except (av.FFmpegError, ValueError):
        raise BrushworkError(
            f"--codec {chosen}: no such video encoder in this FFmpeg "
            f"(e.g. libx264, libx265, libvpx-vp9, mpeg4, ffv1)"
        ) from None
    if found.type != "video":
        article = "an" if found.type[:1] in "aeiou" else "a"
        raise BrushworkError(f"--codec {chosen} is {article} {found.type} codec, not a video one")
    spec = OutputSpec(
        p,
        False,
        container_format,
        found.name,
        _pick_pix_fmt(found),
        crf=crf if found.name in QUALITY_CODECS else None,
    )
    spec.even = spec.pix_fmt.startswith(("yuv420", "yuvj420", "nv12"))
    if audio and info is not None and info.audio is not None:
        if container_format == "gif":
            ev.warn(f"GIF has no audio: the input's {info.audio.codec} audio is not kept")
        else:
            supported = _supported_codecs(container_format)
            if info.audio.codec in supported or not supported:
                spec.audio = "copy"
            else:
                spec.audio = "encode"
                spec.audio_codec = _default_audio(container_format)
                ev.warn(
                    f"{container_format} cannot hold {info.audio.codec} audio: it is "
                    f"re-encoded as {spec.audio_codec}"
                )
    _probe_encode(spec, info)
    return spec


def _supported_codecs(container_format: str) -> set[str]:
    av = import_av()
    with av.open(io.BytesIO(), mode="w", format=container_format) as probe:
        return set(getattr(probe, "supported_codecs", set()))


def _default_audio(container_format: str) -> str:
    av = import_av()
    with av.open(io.BytesIO(), mode="w", format=container_format) as probe:
        name = probe.default_audio_codec
    return {"opus": "libopus", "vorbis": "libvorbis"}.get(name, name)


class _Audio:
    """The input's audio, muxed into the output as the video advances (packets copied, or
    decoded and re-encoded), up to ``end`` seconds."""

    def __init__(
        self, info: VideoInfo, container: Any, spec: OutputSpec, end: float | None
    ) -> None:
        assert info.audio is not None
        self.source = _open_input(info.path)
        template = self.source.streams[info.audio.index]
        self.copy = spec.audio == "copy"
        if self.copy:
            self.stream = container.add_stream_from_template(template)
        else:
            self.stream = _add_audio_encoder(container, spec.audio_codec, template)
        self.container = container
        self.end = end
        self.packets = (p for p in self.source.demux(template) if p.dts is not None)
        self.pending: Any = None
        self.done = False

    def _time(self, packet: Any) -> float:
        stamp = packet.pts if packet.pts is not None else packet.dts
        return float(stamp * packet.time_base)

    def until(self, seconds: float | None) -> None:
        """Mux every audio packet that starts before ``seconds`` (None: all)."""
        while not self.done:
            packet = self.pending or next(self.packets, None)
            self.pending = None
            if packet is None or (self.end is not None and self._time(packet) >= self.end):
                self.done = True
                break
            if seconds is not None and self._time(packet) > seconds:
                self.pending = packet
                return
            if self.copy:
                packet.stream = self.stream
                self.container.mux(packet)
            else:
                for frame in packet.decode():
                    frame.pts = None
                    self.container.mux(self.stream.encode(frame))

    def close(self) -> None:
        self.until(None)
        if not self.copy:
            self.container.mux(self.stream.encode(None))
        self.source.close()


class VideoWriter:
    """Frames (upright RGB uint8 arrays) with their input timestamps → a video file.

    ``size`` is the upright (width, height); ``info`` the scanned input (timestamps,
    rotation, audio); ``count`` the frames that will be written (the audio ends with
    them)."""

    def __init__(
        self, target: str, spec: OutputSpec, size: tuple[int, int], info: VideoInfo, count: int
    ) -> None:
        av = import_av()
        self.av = av
        self.spec = spec
        self.info = info
        self.rotation = info.rotation if spec.format in ROTATING_FORMATS else 0
        width, height = size
        if self.rotation % 180:
            width, height = height, width
        options = {"movflags": "+faststart"} if spec.format in ("mp4", "mov") else {}
        self.container = av.open(target, mode="w", format=spec.format, options=options)
        self.stream = self.container.add_stream(spec.codec, rate=info.rate)
        self.stream.width, self.stream.height = width, height
        self.stream.pix_fmt = spec.pix_fmt
        if spec.crf is not None:
            self.stream.options = {
                "crf": str(spec.crf),
                **({"b:v": "0"} if "vpx" in spec.codec else {}),
            }
        if spec.codec == "mpeg4":
            self.stream.bit_rate = max(2_000_000, int(width * height * float(info.rate) * 0.25))
        self.time_base = self._time_base(info.time_base)
        self.stream.time_base = self.time_base
        self.stream.codec_context.time_base = self.time_base
        if self.rotation:
            self.stream.set_display_rotation(self.rotation)
        self.last = -1
        self.palette: Image.Image | None = None
        end = info.seconds(count - 1) + float(1 / info.rate) if count < info.frames else None
        self.audio = _Audio(info, self.container, spec, end) if spec.audio else None
        self.start = info.seconds(0)

    def _time_base(self, source: Fraction) -> Fraction:
        if self.spec.codec == "gif":
            return Fraction(1, 100)
        if self.spec.codec == "mpeg4" and source.denominator > 65535:
            return Fraction(1, 1000)
        return source

    def _pts(self, seconds: float) -> int:
        value = round(seconds / self.time_base)
        value = max(value, self.last + 1)
        self.last = value
        return value

    def _gif_frame(self, rgb: np.ndarray) -> Any:
        """One palette for the whole clip (from the first frame): no palette flicker."""
        frame, self.palette = _pal8_frame(self.av, rgb, self.palette)
        return frame

    def write(self, rgb: np.ndarray, index: int) -> None:
        """Encode the upright frame ``index`` of the input (its timestamp)."""
        seconds = self.info.seconds(index)
        if self.audio is not None:
            self.audio.until(seconds)
        stored = (
            np.ascontiguousarray(np.rot90(rgb, -(self.rotation // 90))) if self.rotation else rgb
        )
        if self.spec.pix_fmt == "pal8":
            frame = self._gif_frame(stored)
        else:
            frame = self.av.VideoFrame.from_ndarray(stored, format="rgb24")
        frame.pts = self._pts(seconds)
        frame.time_base = self.time_base
        self.container.mux(self.stream.encode(frame))

    def close(self) -> None:
        """Flush the encoder and the rest of the audio; finish the file."""
        self.container.mux(self.stream.encode(None))
        if self.audio is not None:
            self.audio.close()
        self.container.close()

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            if self.audio is not None:
                self.audio.source.close()
        with contextlib.suppress(Exception):
            self.container.close()


def write_video(
    target: str,
    spec: OutputSpec,
    size: tuple[int, int],
    info: VideoInfo,
    count: int,
    frames: Iterator[tuple[int, np.ndarray]],
) -> None:
    """Encode ``(index, frame)`` pairs to ``target`` (a temporary file; see
    :func:`brushwork.outputs.write_atomically`)."""
    av = import_av()
    writer = VideoWriter(target, spec, size, info, count)
    ok = False
    try:
        for index, frame in frames:
            writer.write(frame, index)
        writer.close()
        ok = True
    except av.FFmpegError as error:
        raise BrushworkError(f"cannot encode {spec.path}: {error}") from None
    finally:
        if not ok:
            writer.abort()


def frame_name(index: int) -> str:
    """The file name of frame ``index`` (0-based) in a folder of frames: 000001.png, ..."""
    return f"{index + 1:06d}.png"
