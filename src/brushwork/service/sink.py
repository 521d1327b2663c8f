"""The event sink bound while a job runs: it turns a job's :mod:`brushwork.events` into
index updates, server-sent events and previews, and stops the job.

Once the job is cancelled, past its time limit, or the server is stopping,
:meth:`JobSink.check` raises :class:`JobStopped`: at the next event (between two
optimization steps, between two decoder levels) and between the stages of a job (decoding,
preparing the styles, painting, saving), so the work stops before its next expensive part.
"""

from __future__ import annotations

import base64
import io
import math
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from brushwork import events as ev
from brushwork.service.records import PREVIEW
from brushwork.service.store import Job

if TYPE_CHECKING:
    from brushwork.service.jobs import JobManager


class JobStopped(Exception):
    """Raised from a job's event sink to stop its work; ``state`` is what the job
    becomes (``cancelled``, ``failed``, or ``queued`` when the server is stopping)."""

    def __init__(self, state: str, message: str) -> None:
        super().__init__(message)
        self.state = state


def preview_data(image: Any, side: int) -> tuple[bytes, str]:
    """A JPEG of a (1, 3, H, W) tensor at most ``side`` px, and its data: URL."""
    from PIL import Image

    from brushwork.image import to_pil

    picture = to_pil(image)
    if max(picture.size) > side:
        picture.thumbnail((side, side), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=80)
    raw = buffer.getvalue()
    return raw, "data:image/jpeg;base64," + base64.b64encode(raw).decode()


class JobSink:
    """The event sink bound while a job runs (see the module docstring): the index is
    updated at most twice a second, progress events go out at most five times a second,
    previews every ``preview_every`` steps and ``preview_interval`` seconds."""

    def __init__(
        self, manager: JobManager, job: Job, stop: threading.Event, deadline: float
    ) -> None:
        self.manager = manager
        self.job = job
        self.stop = stop
        self.deadline = deadline
        self.reason: JobStopped | None = None
        self._last_index = -math.inf
        self._last_publish = -math.inf
        self._last_preview = -math.inf
        config = manager.config
        self.preview_every = config.preview_every
        self.preview_interval = config.preview_interval
        self.preview_side = config.preview_side

    def check(self) -> None:
        """Raise :class:`JobStopped` if the job must stop now."""
        if self.reason is None:
            if self.manager.stopping.is_set():
                self.reason = JobStopped("queued", "the server is stopping")
            elif self.stop.is_set():
                self.reason = JobStopped("cancelled", "cancelled")
            elif time.monotonic() > self.deadline:
                limit = self.manager.config.job_timeout
                self.reason = JobStopped(
                    "failed", f"stopped after the time limit of {limit:g} s per job"
                )
        if self.reason is not None:
            raise self.reason

    def __call__(self, event: ev.Event) -> None:
        self.check()
        job_id = self.job.id
        if isinstance(event, ev.Progress):
            self._progress(event)
        elif isinstance(event, ev.Started):
            self.manager.store.progress(job_id, 0, event.total, {})
            self.manager.hub.publish(
                job_id, "started", {"stage": event.stage, "total": event.total}
            )
        elif isinstance(event, ev.Warned):
            self.manager.hub.publish(job_id, "warning", {"message": event.message})

    def _progress(self, event: ev.Progress) -> None:
        job_id = self.job.id
        now = time.monotonic()
        last = event.total is not None and event.step >= event.total
        losses = {k: v for k, v in ev.finite(event.losses).items() if v is not None}
        if last or now - self._last_index >= 0.5:
            self._last_index = now
            self.manager.store.progress(job_id, event.step, event.total, losses)
        if last or now - self._last_publish >= 0.2:
            self._last_publish = now
            self.manager.hub.publish(
                job_id,
                "progress",
                {
                    "step": event.step,
                    "total": event.total,
                    "losses": losses,
                    "seconds": round(event.seconds, 3),
                    "scale": event.scale,
                },
            )
        if (
            event.image is not None
            and self.preview_every
            and (event.step % self.preview_every == 0 or last)
            and (last or now - self._last_preview >= self.preview_interval)
        ):
            self._last_preview = now
            self._preview(event)

    def _preview(self, event: ev.Progress) -> None:
        from brushwork.outputs import write_atomically

        raw, url = preview_data(event.image, self.preview_side)

        def write(path: str) -> None:
            Path(path).write_bytes(raw)

        write_atomically(self.manager.folder(self.job.id) / PREVIEW, write)
        self.manager.hub.publish(
            self.job.id, "preview", {"step": event.step, "total": event.total, "image": url}
        )


__all__ = ["JobSink", "JobStopped", "preview_data"]
