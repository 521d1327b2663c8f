"""The work of one job in its folder: an image painted by the worker's painter for the
job's method and values, or a video stylized frame by frame (resumable after a restart);
each returns the result's details that ``GET /jobs/{id}`` shows."""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from brushwork import events as ev
from brushwork.errors import BrushworkError
from brushwork.service.records import RESULT, RESULT_TYPES, VIDEO_RESULT, WORK
from brushwork.service.sink import JobSink
from brushwork.service.spec import JobSpec
from brushwork.service.uploads import public_message

if TYPE_CHECKING:
    from brushwork.inputs import Style
    from brushwork.painter import Painter
    from brushwork.video.runner import VideoResult

log = logging.getLogger("brushwork.service")


class Painters:
    """A worker's own painters, newest last: one is built the first time a (method,
    values) pair comes, then reused with the styles it prepared; the ``keep`` most recently
    used are kept."""

    def __init__(self, encoder: Any, cache_bytes: int, keep: int = 4) -> None:
        self.encoder = encoder
        self.cache_bytes = cache_bytes
        self.keep = keep
        self._painters: OrderedDict[str, Painter] = OrderedDict()

    def get(self, method: str, values: dict[str, Any]) -> Painter:
        """The painter for ``method`` with ``values``."""
        from brushwork.painter import Painter

        key = json.dumps([method, values], sort_keys=True, default=str)
        painter = self._painters.get(key)
        if painter is not None:
            self._painters.move_to_end(key)
            return painter
        painter = Painter(method, values, encoder=self.encoder, cache_bytes=self.cache_bytes)
        self._painters[key] = painter
        while len(self._painters) > self.keep:
            self._painters.popitem(last=False)
        return painter


def job_styles(folder: Path, spec: JobSpec) -> list[Style]:
    """The job's styles, their files in its folder."""
    from brushwork.inputs import Style

    return [
        Style(
            folder / s["file"],
            s["weight"],
            None if s.get("layers") is None else tuple(s["layers"]),
        )
        for s in spec.styles
    ]


def paint_image(
    folder: Path, spec: JobSpec, painter: Painter, sink: JobSink, start: float
) -> dict[str, Any]:
    """Paint an image job into its folder; the result's details."""
    painting = painter.paint(
        folder / spec.content,
        job_styles(folder, spec),
        mask=folder / spec.mask if spec.mask else None,
        regions=spec.regions,
        events=sink,
        check=sink.check,
    )
    sink.check()
    painting.save(folder / RESULT, force=True)
    return ev.finite(
        {
            "size": list(painting.plan.content_size),
            "tiles": None if painting.plan.tiles is None else painting.plan.tiles.count,
            "style_sizes": [list(s) for s in painting.plan.style_sizes],
            "losses": painting.result.losses,
            "scales": painting.scales,
            "seconds": round(time.perf_counter() - start, 3),
            "paint_seconds": round(painting.seconds, 3),
            "reused_styles": painting.reused_styles,
            "precision": painter.stylizer.precision.name,
        }
    )


def _stylize(
    folder: Path, spec: JobSpec, values: dict[str, Any], encoder: Any, sink: JobSink, resume: bool
) -> VideoResult:
    """:func:`brushwork.video.stylize_video` of a video job, its frames kept in the job's
    work folder (and resumed from it with ``resume``)."""
    from brushwork.video.runner import stylize_video

    return stylize_video(
        folder / spec.content,
        job_styles(folder, spec),
        folder / VIDEO_RESULT,
        spec.method,
        mask=folder / spec.mask if spec.mask else None,
        regions=spec.regions,
        events=sink,
        encoder=encoder,
        force=True,
        **values,
        # the server's: where the frames are kept, and that they are resumed
        work_dir=str(folder / WORK),
        resume=resume,
        keep_work=False,
        codec=None,
        fps=None,
    )


def paint_video(
    folder: Path, spec: JobSpec, values: dict[str, Any], encoder: Any, sink: JobSink, start: float
) -> dict[str, Any]:
    """Stylize a video job into its folder (``values``: its resolved image values and its
    video options): the job's sink gets one progress step per frame (and stops the job
    between frames), the frames are kept in the job's work folder, which a job started
    again (after a restart) resumes; the result's details."""
    from brushwork.video.work import MANIFEST

    work = folder / WORK
    resume = (work / MANIFEST).is_file()
    try:
        done = _stylize(folder, spec, values, encoder, sink, resume)
    except BrushworkError as error:
        if not (resume and str(error).startswith("cannot resume")):
            raise
        # frames made with other settings (this server's device or limits changed)
        log.warning("job %s: %s; starting its frames again", folder.name, public_message(error))
        shutil.rmtree(work, ignore_errors=True)
        done = _stylize(folder, spec, values, encoder, sink, False)
    sink.check()
    return ev.finite(
        {
            "size": list(done.size),
            "frames": done.frames,
            "stylized": done.stylized,
            "resumed": done.frames - done.stylized,
            "lost": done.lost,
            "seconds": round(time.perf_counter() - start, 3),
            "frame_seconds": round(done.frame_seconds, 4),
            "warping_error": done.warping_error,
            "media_type": RESULT_TYPES["video"],
        }
    )


__all__ = ["Painters", "job_styles", "paint_image", "paint_video"]
