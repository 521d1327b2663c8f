"""Tiny video clips made in the tests (PyAV): a textured image panning by a known number of
pixels per frame, with optional variable timestamps, rotation metadata and an audio track."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from conftest import smooth_image


def texture(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A deterministic RGB uint8 texture with structure at several scales (flow can lock on)."""
    image = smooth_image(height, width, seed=seed)
    generator = torch.Generator().manual_seed(seed + 1)
    fine = torch.nn.functional.interpolate(
        torch.rand(1, 3, height // 4, width // 4, generator=generator),
        size=(height, width),
        mode="bicubic",
    )
    image = (0.6 * image + 0.4 * fine).clamp(0, 1)
    return (image[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def pan(
    count: int, height: int = 32, width: int = 48, shift: int = 1, seed: int = 0
) -> list[np.ndarray]:
    """``count`` frames of a window moving right by ``shift`` pixels per frame over a wider
    texture: frame t at column x is the texture at x + shift·t."""
    wide = texture(height, width + shift * count, seed)
    return [np.ascontiguousarray(wide[:, shift * t : shift * t + width]) for t in range(count)]


def write_clip(
    path: Path,
    frames: list[np.ndarray],
    *,
    fps: int = 10,
    pts: list[int] | None = None,
    time_base: Fraction | None = None,
    rotation: int = 0,
    audio_seconds: float = 0.0,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    options: dict[str, str] | None = None,
    preset: str = "ultrafast",
) -> Path:
    """Encode ``frames`` (RGB uint8, even sides for yuv420p) with PyAV (x264's ``preset``:
    ``ultrafast`` has no B-frames, ``medium`` has)."""
    import av

    container = av.open(str(path), mode="w", options=options or {})
    stream = container.add_stream(codec, rate=fps)
    stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
    stream.pix_fmt = pix_fmt
    if codec == "libx264":
        stream.options = {"crf": "10", "preset": preset}
    if time_base is not None:
        stream.time_base = time_base
        stream.codec_context.time_base = time_base
    if rotation:
        stream.set_display_rotation(rotation)
    sound = None
    if audio_seconds:
        sound = container.add_stream("aac", rate=8000)
        sound.layout = "mono"
    for index, frame in enumerate(frames):
        video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
        if pts is not None:
            video_frame.pts = pts[index]
            video_frame.time_base = time_base
        container.mux(stream.encode(video_frame))
    container.mux(stream.encode(None))
    if sound is not None:
        samples = np.sin(np.arange(int(8000 * audio_seconds)) / 5).astype(np.float32)[None]
        for start in range(0, samples.shape[1], 1024):
            chunk = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(samples[:, start : start + 1024]), format="fltp", layout="mono"
            )
            chunk.sample_rate = 8000
            chunk.pts = start
            chunk.time_base = Fraction(1, 8000)
            container.mux(sound.encode(chunk))
        container.mux(sound.encode(None))
    container.close()
    return path


def truncated_clip(path: Path, share: float = 0.78) -> Path:
    """An MP4 with B-frames (x264 ``medium``), 30 frames, cut after ``share`` of its bytes
    (a download that stopped): the stream breaks mid-file, and a decoder that holds frames
    in flight (frame threads) loses some that decode on their own."""
    whole = write_clip(
        path.with_name(f"whole-{path.name}"),
        pan(30, 64, 96, shift=2),
        options={"movflags": "faststart"},
        preset="medium",
    )
    data = whole.read_bytes()
    whole.unlink()
    path.write_bytes(data[: int(len(data) * share)])
    return path


def read_clip(path: Path) -> tuple[list[np.ndarray], list[float], int]:
    """Decoded frames (RGB, as stored), their timestamps in seconds, and the rotation."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames, times, rotation = [], [], 0
        for frame in container.decode(stream):
            frames.append(frame.to_ndarray(format="rgb24"))
            times.append(float(frame.pts * frame.time_base))
            rotation = int(frame.rotation or 0) % 360
    return frames, times, rotation


def packets(path: Path, kind: str = "audio") -> list[bytes]:
    """The payload of every packet of the first stream of ``kind``."""
    import av

    with av.open(str(path)) as container:
        stream = next(s for s in container.streams if s.type == kind)
        return [bytes(p) for p in container.demux(stream) if p.size]
