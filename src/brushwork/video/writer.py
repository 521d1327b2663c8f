"""Video out: PyAV encoding, folders of PNG frames, timestamps, rotation and audio.
Reading is :mod:`brushwork.video.io`.

Use :func:`add_output` and :func:`plan_output`, then :func:`write_video` (a
:class:`VideoWriter`) or :func:`brushwork.outputs.write_folder`. The output's extension
picks the container and its default codec (``.mp4``, ``.mov``, ``.mkv``: H.264; ``.webm``:
VP9; ``.gif``: GIF with one palette for the clip); a path without extension is a folder of
PNG frames, replaced only when brushwork wrote it (the rule of :mod:`brushwork.outputs`,
checked by :func:`add_output` with the command's inputs and other outputs).
:func:`plan_output` checks the container, the codec (``--codec``) and their combination
before any work, by encoding two frames into memory. Frames keep their input timestamps;
codecs that store 4:2:0 chroma need even sides (:attr:`OutputSpec.even`: the runner rounds
the working size). The input's rotation is written back as metadata (frames stored as in
the input) where the container holds it (MP4, MOV, MKV, WebM); GIFs and PNG frames are
written upright. The audio stream is copied packet for packet when the container takes its
codec, else re-encoded to the container's audio codec (with a warning), and dropped (with a
warning) for GIF and frame folders.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from PIL import Image

from brushwork import events as ev
from brushwork.errors import BrushworkError
from brushwork.outputs import OutputPlan
from brushwork.video.io import VideoInfo, import_av, open_input

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
            source = open_input(info.path)
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
    values = np.array((indexed.getpalette() or [])[:768], np.uint8).reshape(-1, 3)
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
    found = _video_encoder(codec, default)
    pix_fmt = _pick_pix_fmt(found)
    spec = OutputSpec(
        p,
        False,
        container_format,
        found.name,
        pix_fmt,
        even=pix_fmt.startswith(("yuv420", "yuvj420", "nv12")),
        crf=crf if found.name in QUALITY_CODECS else None,
    )
    if audio and info is not None and info.audio is not None:
        _plan_audio(spec, info.audio.codec)
    _probe_encode(spec, info)
    return spec


def _video_encoder(codec: str | None, default: str) -> Any:
    """PyAV's encoder of ``codec`` (None: the container's ``default``, or its fallback
    where this FFmpeg lacks it)."""
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
    return found


def _plan_audio(spec: OutputSpec, codec: str) -> None:
    """What happens to the input's audio (``codec``): copied where the container takes it,
    else re-encoded; a GIF has none (a warning each)."""
    container_format = spec.format or ""
    if container_format == "gif":
        ev.warn(f"GIF has no audio: the input's {codec} audio is not kept")
        return
    supported = _supported_codecs(container_format)
    if codec in supported or not supported:
        spec.audio = "copy"
        return
    spec.audio = "encode"
    spec.audio_codec = _default_audio(container_format)
    ev.warn(f"{container_format} cannot hold {codec} audio: it is re-encoded as {spec.audio_codec}")


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
        self.source = open_input(info.path)
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
                **({"b:v": "0"} if "vpx" in (spec.codec or "") else {}),
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
