"""Seeing the run: a loss-curve plot and an animation of the image as it is optimized.

:func:`plot_losses`
    Writes a PNG with one curve per loss term (log y axis) from a run's loss history, with
    optional dashed lines where a coarse-to-fine run moved to a larger scale. Needs matplotlib
    (``pip install brushwork[plot]``); it draws on its own Agg canvas and never touches pyplot.

:class:`FrameRecorder`
    A step callback (``callbacks=[recorder]``) that keeps every ``every``-th image as a small
    uint8 frame, all frames the same size.

:func:`save_animation`
    Writes frames as an animated ``.gif`` (Pillow) or an H.264 ``.mp4`` (PyAV,
    ``pip install brushwork[video]``).

Every file is written to a temporary file in the destination folder and moved onto the target
with :func:`os.replace`, so a failed or interrupted write never leaves a partial file and never
damages an existing one. Output paths are checked first, as
:func:`brushwork.image.check_output_path` does for images; call :func:`check_plot_path` and
:func:`check_animation_path` yourself before a long run so a bad path fails early.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Mapping, Sequence
from fractions import Fraction
from pathlib import Path
from types import ModuleType

import numpy as np
import torch
from PIL import Image

from brushwork.errors import BrushworkError
from brushwork.events import Event, Progress
from brushwork.image import to_pil
from brushwork.outputs import check_output_path, write_atomically

__all__ = [
    "ANIMATION_EXTENSIONS",
    "FrameRecorder",
    "check_animation_path",
    "check_plot_path",
    "plot_losses",
    "save_animation",
]

PathLike = str | os.PathLike[str]

#: Extensions :func:`save_animation` writes.
ANIMATION_EXTENSIONS = (".gif", ".mp4")
_PLOT_EXTENSIONS = (".png",)

_MATPLOTLIB_MISSING = "the loss plot needs matplotlib: pip install matplotlib"
_AV_MISSING = "writing .mp4 needs PyAV: pip install av (or write a .gif instead)"


# ----------------------------------------------------------------------------- paths & atomic


def check_plot_path(path: PathLike, *, force: bool = False) -> Path:
    """Validate a loss-plot path (``.png`` only) before the run; return it as a ``Path``."""
    return check_output_path(path, force=force, extensions=_PLOT_EXTENSIONS, what="loss plot")


def check_animation_path(path: PathLike, *, force: bool = False) -> Path:
    """Validate an animation path (``.gif`` or ``.mp4``) before the run; return it as a ``Path``.

    Also checks that PyAV is installed when the path ends in ``.mp4``.
    """
    p = check_output_path(path, force=force, extensions=ANIMATION_EXTENSIONS, what="animation")
    check_animation_deps(p)
    return p


def check_animation_deps(path: PathLike) -> None:
    """Refuse an animation whose writer is not installed (PyAV for ``.mp4``)."""
    if Path(path).suffix.lower() == ".mp4":
        _import_av()


# ----------------------------------------------------------------------------- loss plot


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise BrushworkError(f"{name} must be a positive integer, got {value!r}")
    return value


def plot_losses(
    history: Sequence[Mapping[str, float]],
    path: PathLike,
    *,
    title: str | None = None,
    force: bool = False,
    scale_starts: Sequence[int] | None = None,
) -> Path:
    """Plot a loss history (one dict of terms per step) as a PNG; return the path written.

    One line per loss term against the step (1-based position in ``history``), log y axis;
    ``"total"`` is drawn black and thicker. Values that are not positive and finite are left
    out (a term with none is not drawn; if no term has any, the y axis is linear).
    ``scale_starts``: steps (1-based positions in ``history``) at which a coarse-to-fine run
    began a larger scale, drawn as dashed vertical lines; steps outside the history are ignored.
    """
    p = check_plot_path(path, force=force)
    if not history:
        raise BrushworkError("the loss history is empty: nothing to plot")
    starts = [_positive_int("scale_starts entries", s) for s in scale_starts or ()]
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise BrushworkError(_MATPLOTLIB_MISSING) from exc

    names: list[str] = []
    for entry in history:
        names.extend(name for name in entry if name not in names)
    if "total" in names:  # draw it last, on top of the terms it sums
        names.remove("total")
        names.append("total")

    steps = np.arange(1, len(history) + 1)
    curves: dict[str, np.ndarray] = {}
    for name in names:
        values = np.array([float(e.get(name, math.nan)) for e in history], dtype=np.float64)
        curves[name] = values
    positive = {n: (v > 0) & np.isfinite(v) for n, v in curves.items()}
    log_scale = any(mask.any() for mask in positive.values())

    fig = Figure(figsize=(8, 4.5), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for name, values in curves.items():
        keep = positive[name] if log_scale else np.isfinite(values)
        if not keep.any():
            continue
        style: dict[str, object] = {"linewidth": 1.2}
        if name == "total":
            style = {"linewidth": 2.0, "color": "black"}
        if keep.sum() < 2:
            style["marker"] = "o"
        # NaN breaks the line where a term is missing or not positive.
        ax.plot(steps, np.where(keep, values, np.nan), label=name, **style)
    if log_scale:
        ax.set_yscale("log")
    drawn = False
    for s in sorted(set(starts)):
        if s <= len(history):
            label = None if drawn else "new scale"
            ax.axvline(s, color="gray", linestyle="--", linewidth=1.0, label=label)
            drawn = True
    ax.set_xlabel("step")
    ax.set_ylabel("loss (log scale)" if log_scale else "loss")
    ax.set_xlim(1, max(2, len(history)))
    ax.grid(True, which="major", alpha=0.3)
    if title:
        ax.set_title(title.replace("$", r"\$"))  # no mathtext surprises from file names
    if ax.get_legend_handles_labels()[0]:
        # Outside the axes, right of them: never hides a curve.
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0, fontsize="small")

    write_atomically(p, lambda tmp: fig.savefig(tmp, format="png"), replace=force)
    return p


# ----------------------------------------------------------------------------- frames


class FrameRecorder:
    """Event sink that keeps every ``every``-th image as a uint8 ``(H, W, 3)`` frame.

    Pass it among the sinks of a run (``events=[recorder]``); it records the progress events
    whose step is a multiple of ``every``. :meth:`add` appends an image explicitly (e.g. the final
    result when the last step was not a multiple of ``every``; :attr:`last_step` tells).

    The first frame is shrunk (LANCZOS) so its longest side is at most ``max_side``; that size
    is then fixed and every later frame is resized to it (e.g. the larger scales of a
    coarse-to-fine run), so all :attr:`frames` have the same size.

    Memory: frames are kept in RAM, ``3 * width * height`` bytes each; at ``max_side=512`` a
    square frame is 768 KiB, so 1000 frames take about 750 MiB. Raise ``every`` or lower
    ``max_side`` for long runs.
    """

    def __init__(self, every: int = 1, max_side: int = 512) -> None:
        self.every = _positive_int("every", every)
        self.max_side = _positive_int("max_side", max_side)
        self.frames: list[np.ndarray] = []
        #: ``(width, height)`` of every frame, fixed by the first one; ``None`` before it.
        self.size: tuple[int, int] | None = None
        #: Step number of the last frame recorded by :meth:`__call__` (``None`` if none yet).
        self.last_step: int | None = None

    def __len__(self) -> int:
        return len(self.frames)

    def __call__(self, event: Event) -> None:
        """Record a progress event's image when its step is a multiple of ``every``."""
        if not isinstance(event, Progress) or event.image is None:
            return
        if event.step % self.every == 0:
            self.add(event.image)
            self.last_step = event.step

    def add(self, image: torch.Tensor | Image.Image) -> None:
        """Append one frame: a ``(1, 3, H, W)`` / ``(3, H, W)`` tensor in [0, 1] or an image."""
        img = to_pil(image) if isinstance(image, torch.Tensor) else image.convert("RGB")
        if self.size is None:
            w, h = img.size
            if max(w, h) > self.max_side:
                scale = self.max_side / max(w, h)
                w, h = max(1, round(w * scale)), max(1, round(h * scale))
            self.size = (w, h)
        if img.size != self.size:
            img = img.resize(self.size, Image.Resampling.LANCZOS)
        self.frames.append(np.asarray(img, dtype=np.uint8).copy())

    def clear(self) -> None:
        """Forget all frames (and the fixed size)."""
        self.frames.clear()
        self.size = None
        self.last_step = None


# ----------------------------------------------------------------------------- animation


def _import_av() -> ModuleType:
    try:
        import av
    except ImportError as exc:
        raise BrushworkError(_AV_MISSING) from exc
    return av


def _prepare_frames(frames: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Check frames are uint8 (H, W, 3); resize any to the first frame's size."""
    out: list[np.ndarray] = []
    size: tuple[int, int] | None = None
    for i, frame in enumerate(frames):
        arr = np.asarray(frame)
        if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3 or 0 in arr.shape:
            raise ValueError(
                f"frame {i}: expected a uint8 (H, W, 3) array, got {arr.dtype} {arr.shape}"
            )
        if size is None:
            size = (arr.shape[1], arr.shape[0])
        elif (arr.shape[1], arr.shape[0]) != size:
            arr = np.asarray(Image.fromarray(arr).resize(size, Image.Resampling.LANCZOS))
        out.append(np.ascontiguousarray(arr))
    return out


def _write_gif(frames: list[np.ndarray], tmp: str, fps: float) -> None:
    images = [
        Image.fromarray(f).convert("P", palette=Image.Palette.ADAPTIVE, colors=256) for f in frames
    ]
    images[0].save(
        tmp,
        format="GIF",
        save_all=True,
        append_images=images[1:],
        duration=min(655_350, max(10, round(1000 / fps))),  # GIF delays: 10 ms units, 16 bits
        loop=0,
    )


def _even(frame: np.ndarray) -> np.ndarray:
    """Pad (repeating the edge) to an even width and height, as yuv420p needs."""
    h, w = frame.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return frame
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def _write_mp4(frames: list[np.ndarray], tmp: str, fps: float) -> None:
    av = _import_av()
    frames = [_even(f) for f in frames]
    height, width = frames[0].shape[:2]
    rate = max(Fraction(fps).limit_denominator(1001), Fraction(1, 1001))
    try:
        container = av.open(tmp, mode="w", format="mp4", options={"movflags": "faststart"})
    except av.FFmpegError as exc:
        raise BrushworkError(f"cannot write an mp4 file: {exc}") from exc
    ok = False
    try:
        try:
            stream = container.add_stream("libx264", rate=rate)
            stream.options = {"crf": "18", "preset": "medium"}
        except (av.FFmpegError, ValueError, KeyError):  # this FFmpeg was built without x264
            stream = container.add_stream("mpeg4", rate=rate)
            stream.bit_rate = max(2_000_000, int(width * height * float(rate) * 0.25))
        stream.width = width
        stream.height = height
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
            container.mux(stream.encode(video_frame))
        container.mux(stream.encode(None))
        ok = True
    except av.FFmpegError as exc:
        raise BrushworkError(f"cannot encode the mp4 animation: {exc}") from exc
    finally:
        if ok:
            container.close()  # writes the index; errors here must surface
        else:
            with contextlib.suppress(Exception):  # keep the original error
                container.close()


def save_animation(
    frames: Sequence[np.ndarray],
    path: PathLike,
    *,
    fps: float = 10,
    force: bool = False,
) -> Path:
    """Write uint8 ``(H, W, 3)`` frames as an animation; return the path written.

    The format comes from the extension: ``.gif`` (Pillow; adaptive palette per frame, loops
    forever; identical consecutive frames are merged into one longer frame, and most browsers
    slow frames shorter than 20 ms, i.e. ``fps`` above 50) or ``.mp4`` (PyAV; H.264 via libx264,
    or MPEG-4 Part 2 when FFmpeg lacks it; yuv420p, padded to an even width and height).
    Frames of another size than the first are resized to it.
    """
    p = check_animation_path(path, force=force)
    if isinstance(fps, bool) or not isinstance(fps, int | float) or not math.isfinite(fps):
        raise BrushworkError(f"fps must be a positive number, got {fps!r}")
    if fps <= 0:
        raise BrushworkError(f"fps must be a positive number, got {fps!r}")
    prepared = _prepare_frames(frames)
    if not prepared:
        raise BrushworkError(f"no frames to write to {path}")
    if p.suffix.lower() == ".gif":
        write_atomically(p, lambda tmp: _write_gif(prepared, tmp, fps), replace=force)
    else:
        write_atomically(p, lambda tmp: _write_mp4(prepared, tmp, fps), replace=force)
    return p
