"""The job queue: a fixed number of worker threads painting jobs from the index, live
events for the clients that follow them, expiry, recovery after a restart.

Workers are threads of the server process: they share the process's encoder and decoders
(loaded once, :func:`brushwork.encoders.cached_vgg19`), each keeps its own
:class:`~brushwork.painter.Painter` per (method, options), so a worker reuses prepared
styles (within ``--style-cache`` bytes). A job reports through :mod:`brushwork.events`:
the worker binds a :class:`JobSink` that turns progress into index updates, server-sent
events and previews. Once the job is cancelled, past its time limit, or the server is
stopping, :meth:`JobSink.check` raises :class:`JobStopped`: at the next event (between two
optimization steps, between two decoder levels) and between the stages of a job (decoding,
preparing the styles, painting, saving), so the work stops before its next expensive part.
"""

from __future__ import annotations

import base64
import io
import logging
import math
import secrets
import shutil
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from brushwork import events as ev
from brushwork.errors import BrushworkError
from brushwork.service.config import ServiceConfig
from brushwork.service.spec import JobSpec, resolve_values
from brushwork.service.store import FINAL, INDEX, Job, JobStore, check_index
from brushwork.service.uploads import public_message

log = logging.getLogger("brushwork.service")

RESULT = "result.png"
VIDEO_RESULT = "result.mp4"
WORK = "work"
"""A video job's work folder (its finished frames) inside the job folder: a job that runs
again after a restart continues from it."""
RESULT_TYPES = {"image": "image/png", "video": "video/mp4"}
"""The media type of a job's result, by kind."""
PREVIEW = "preview.jpg"
ID_BYTES = 16
ID_LENGTH = math.ceil(ID_BYTES * 4 / 3)
"""Characters of a job id: unpadded URL-safe base64 of :data:`ID_BYTES` random bytes."""
_ID_CHARACTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def result_name(kind: str) -> str:
    """The file name of a job's result in its folder."""
    return VIDEO_RESULT if kind == "video" else RESULT


def new_id() -> str:
    """A random job id (128 bits, URL-safe); it is also the job folder's name."""
    return secrets.token_urlsafe(ID_BYTES)


def valid_id(text: str) -> bool:
    """Whether ``text`` can be a job id: only then is it joined to a folder path."""
    return len(text) == ID_LENGTH and set(text) <= _ID_CHARACTERS


class JobStopped(Exception):
    """Raised from a job's event sink to stop its work; ``state`` is what the job
    becomes (``cancelled``, ``failed``, or ``queued`` when the server is stopping)."""

    def __init__(self, state: str, message: str) -> None:
        super().__init__(message)
        self.state = state


# ----------------------------------------------------------------------------- live events


@dataclass(frozen=True)
class Message:
    """One server-sent event: its name, JSON data and sequence number."""

    kind: str
    data: dict[str, Any]
    seq: int = 0


class Subscriber:
    """One event-stream reader: a bounded asyncio queue fed from worker threads. Progress
    and previews are dropped for a reader that falls behind; final events never are."""

    def __init__(self, job_id: str, loop: Any, size: int = 64) -> None:
        import asyncio

        self.job_id = job_id
        self.loop = loop
        self.queue: asyncio.Queue[Message] = asyncio.Queue(maxsize=size)

    def offer(self, message: Message) -> None:
        """Called in the reader's event loop."""
        if self.queue.full():
            if message.kind in ("progress", "preview"):
                return
            self.queue.get_nowait()
        self.queue.put_nowait(message)


class ReadersFull(Exception):
    """No more event-stream readers: ``status`` 429 (this job has its share) or 503 (the
    server has)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Hub:
    """Fans job messages out to the subscribers of each job: at most ``per_job`` of one
    job and ``total`` in all."""

    def __init__(self, total: int = 64, per_job: int = 8) -> None:
        self._lock = threading.Lock()
        self._subscribers: dict[str, set[Subscriber]] = {}
        self._seq = 0
        self.total = total
        self.per_job = per_job

    def _full(self, job_id: str) -> ReadersFull | None:
        """Under the lock."""
        if len(self._subscribers.get(job_id, ())) >= self.per_job:
            return ReadersFull(
                429,
                f"job {job_id} already has {self.per_job} event readers, the most this "
                "server allows; close one, or poll GET /jobs/{id}",
            )
        if sum(len(s) for s in self._subscribers.values()) >= self.total:
            return ReadersFull(
                503,
                f"this server already has {self.total} event readers, the most it allows; "
                "try again later, or poll GET /jobs/{id}",
            )
        return None

    def refusal(self, job_id: str) -> ReadersFull | None:
        """Why a new reader of ``job_id`` would be refused now (None: it would not)."""
        with self._lock:
            return self._full(job_id)

    def subscribe(self, job_id: str, loop: Any) -> Subscriber:
        """A new reader of ``job_id`` fed in ``loop``; :class:`ReadersFull` over a limit."""
        subscriber = Subscriber(job_id, loop)
        with self._lock:
            refused = self._full(job_id)
            if refused is not None:
                raise refused
            self._subscribers.setdefault(job_id, set()).add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            found = self._subscribers.get(subscriber.job_id)
            if found is not None:
                found.discard(subscriber)
                if not found:
                    del self._subscribers[subscriber.job_id]

    def count(self) -> int:
        with self._lock:
            return sum(len(s) for s in self._subscribers.values())

    def publish(self, job_id: str, kind: str, data: dict[str, Any]) -> None:
        with self._lock:
            self._seq += 1
            message = Message(kind, data, self._seq)
            subscribers = list(self._subscribers.get(job_id, ()))
        for subscriber in subscribers:
            try:
                subscriber.loop.call_soon_threadsafe(subscriber.offer, message)
            except RuntimeError:  # the reader's loop is closed: it is gone
                self.unsubscribe(subscriber)


# ----------------------------------------------------------------------------- the job's sink


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
    """The event sink bound while a job runs (see the module docstring)."""

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
        now = time.monotonic()
        if isinstance(event, ev.Progress):
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
        elif isinstance(event, ev.Started):
            self.manager.store.progress(job_id, 0, event.total, {})
            self.manager.hub.publish(
                job_id, "started", {"stage": event.stage, "total": event.total}
            )
        elif isinstance(event, ev.Warned):
            self.manager.hub.publish(job_id, "warning", {"message": event.message})

    def _preview(self, event: ev.Progress) -> None:
        from brushwork.outputs import write_atomically

        raw, url = preview_data(event.image, self.preview_side)
        write_atomically(
            self.manager.folder(self.job.id) / PREVIEW, lambda tmp: Path(tmp).write_bytes(raw)
        )
        self.manager.hub.publish(
            self.job.id, "preview", {"step": event.step, "total": event.total, "image": url}
        )


# ----------------------------------------------------------------------------- the manager


def job_labels(folder: Path, spec: dict[str, Any]) -> dict[Path | str, str]:
    """How a job's files are named to its client (``content``, ``style 2``, ``mask``;
    other files of its folder by their own names)."""
    labels: dict[Path | str, str] = {
        folder / "content": "content",
        f"{folder}/": "",
        folder: "the job's folder",
    }
    for number, style in enumerate(spec.get("styles", []), 1):
        labels[folder / str(style.get("file", f"style-{number}"))] = f"style {number}"
    if spec.get("mask"):
        labels[folder / str(spec["mask"])] = "mask"
    return labels


def describe_job(job: Job) -> dict[str, Any]:
    """A job as the API shows it."""
    total = job.total
    fraction = 1.0 if job.state == "done" else (min(1.0, job.step / total) if total else 0.0)
    now = time.time()
    queued = (job.started or job.finished or now) - job.created
    running = None
    if job.started is not None:
        running = (job.finished or now) - job.started
    base = f"/jobs/{job.id}"
    spec = job.spec
    return {
        "id": job.id,
        "kind": job.kind,
        "method": job.method,
        "state": job.state,
        "created": job.created,
        "started": job.started,
        "finished": job.finished,
        "progress": {"step": job.step, "total": total, "fraction": round(fraction, 4)},
        "losses": job.losses,
        "error": job.error,
        "attempts": job.attempts,
        "cancel_requested": job.cancel and job.state == "running",
        "timings": {
            "queued_seconds": round(max(0.0, queued), 3),
            "run_seconds": None if running is None else round(max(0.0, running), 3),
        },
        "options": spec.get("values", {}),
        "styles": [
            {"name": s.get("name"), "weight": s.get("weight"), "layers": s.get("layers")}
            for s in spec.get("styles", [])
        ],
        "content_name": spec.get("names", {}).get("content"),
        "details": job.result,
        "links": {
            "self": base,
            "events": f"{base}/events",
            "result": f"{base}/result" if job.state == "done" else None,
            "preview": f"{base}/preview",
        },
    }


def operator_models(given: dict[str, Path]) -> dict[str, tuple[str, Path]]:
    """The operator's networks (``--model NAME=PATH``): name → (method, file), the method
    read from the checkpoint's metadata."""
    from safetensors import SafetensorError, safe_open

    found = {}
    for name, path in given.items():
        try:
            with safe_open(str(path), framework="pt") as handle:
                method = (handle.metadata() or {}).get("method")
        except (OSError, SafetensorError) as error:
            raise BrushworkError(
                f"--model {name}={path}: not a brushwork checkpoint ({error})"
            ) from None
        if not method:
            raise BrushworkError(
                f"--model {name}={path}: the file does not say which method it belongs to"
            )
        found[name] = (method, Path(path))
    return found


class JobManager:
    """The index, the job folders, the workers, the janitor and the live events."""

    def __init__(self, config: ServiceConfig) -> None:
        self.config = config
        self.root = Path(config.data)
        self.jobs_dir = self.root / "jobs"
        check_index(self.root / INDEX)  # before anything is made in the data folder
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self.store = JobStore(self.root / INDEX)
        self.hub = Hub(config.max_readers, config.max_readers_per_job)
        self.stopping = threading.Event()
        self._wake = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._stops: dict[str, threading.Event] = {}
        self._done_events: dict[str, list[Callable[[Job], None]]] = {}
        self._lock = threading.Lock()
        self._durations: deque[float] = deque(maxlen=20)
        self.recovered: tuple[list[str], list[str]] = ([], [])
        self._stopped = False
        self.started_at = time.time()
        self.extra_models = operator_models(config.models)
        self.job_memory = self._job_memory()
        """Bytes one job may plan with (None: the method's planner decides); computed when
        the manager starts, so it is the same for every job (and every painter's key)."""

    # --------------------------------------------------------------- life cycle

    def start(self) -> None:
        """Recover the index, drop folders no job owns, expire, start the threads (again
        after :meth:`stop`: an app's lifespan may run more than once)."""
        if self._stopped:
            for thread in self._threads:  # a worker that outlived stop() ends first
                thread.join(60.0)
            if self.store.closed:
                self.store = JobStore(self.root / "jobs.sqlite3")
            self.stopping.clear()
            self._threads = []
            self._stopped = False
        self.job_memory = self._job_memory()
        self.recovered = self.store.recover(self.config.max_attempts)
        for job_id in self.recovered[1]:
            log.warning("job %s failed: the server stopped while it ran too often", job_id)
        known = self.store.ids()
        for folder in self.jobs_dir.iterdir():
            if folder.name not in known:
                shutil.rmtree(folder, ignore_errors=True)
        for job_id in list(known):
            job = self.store.get(job_id)
            if job is not None and job.state == "queued" and not self.folder(job_id).is_dir():
                self.store.finish(
                    job_id, "failed", error="the job's files are missing", expected="queued"
                )
        self.expire()
        for index in range(self.config.workers):
            thread = threading.Thread(
                target=self._work, name=f"brushwork-worker-{index}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        janitor = threading.Thread(target=self._janitor, name="brushwork-janitor", daemon=True)
        janitor.start()
        self._threads.append(janitor)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the workers: running jobs stop at their next event or stage and go back to
        the queue (they run again at the next start). The index is closed once every
        thread has ended; a worker still busy after ``timeout`` keeps it open (it will
        requeue its job, then end)."""
        self.stopping.set()
        with self._wake:
            self._wake.notify_all()
        end = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, end - time.monotonic()))
        busy = [t.name for t in self._threads if t.is_alive()]
        if busy:
            log.warning("still busy after %.0f s: %s; the index stays open", timeout, busy)
        else:
            self.store.close()
        self._stopped = True

    # --------------------------------------------------------------- requests

    def folder(self, job_id: str) -> Path:
        if not valid_id(job_id):
            raise BrushworkError(f"not a job id: {job_id!r}")
        return self.jobs_dir / job_id

    def submit(self, job: Job) -> bool:
        """Queue a job whose folder is complete; False when the queue is full."""
        if self.stopping.is_set():
            return False
        if not self.store.add(job, self.config.queue):
            return False
        with self._wake:
            self._wake.notify()
        return True

    def _job_memory(self) -> int | None:
        """Bytes one job may use: ``max_memory``, else (several workers) an equal share of
        80 % of the memory available now on the jobs' device (GPU memory on CUDA); None:
        the method's planner decides (one worker)."""
        if self.config.max_memory is not None:
            return self.config.max_memory
        if self.config.workers == 1:
            return None
        from brushwork.memory import available_memory
        from brushwork.precision import resolve_device

        device = resolve_device("auto")  # jobs cannot choose theirs: `device` is the server's
        return max(1, int(0.8 * available_memory(device) / self.config.workers))

    def run_values(self, spec: JobSpec) -> dict[str, Any]:
        """The painter's values for a job: its options and controls with the operator's
        model names resolved, and the server's limits (pixels, memory)."""
        values = resolve_values(spec, self.extra_models)
        values["max_pixels"] = self.config.max_pixels
        if self.job_memory is not None:
            values["max_memory"] = self.job_memory
        return values

    def queue_full(self) -> bool:
        return self.store.counts()["queued"] >= self.config.queue

    def retry_after(self) -> int:
        """Seconds until a place in the queue is likely free."""
        typical = sorted(self._durations)[len(self._durations) // 2] if self._durations else 10.0
        return max(1, min(3600, math.ceil(typical / self.config.workers)))

    def cancel(self, job_id: str) -> str | None:
        """Cancel a queued job, or stop a running one at its next event; the state."""
        state = self.store.request_cancel(job_id)
        if state == "cancelled":
            self.hub.publish(job_id, "cancelled", {"id": job_id, "state": "cancelled"})
            self._notify_done(job_id)
        elif state == "running":
            with self._lock:
                stop = self._stops.get(job_id)
            if stop is not None:
                stop.set()
            state = "cancelling"
        return state

    def delete(self, job_id: str) -> None:
        """Forget a finished job: its row and its folder."""
        self.store.delete(job_id)
        shutil.rmtree(self.folder(job_id), ignore_errors=True)

    def when_done(self, job_id: str, callback: Callable[[Job], None]) -> None:
        """Call ``callback(job)`` (in a worker thread) once the job is final."""
        with self._lock:
            self._done_events.setdefault(job_id, []).append(callback)
        job = self.store.get(job_id)
        if job is None or job.final:
            self._notify_done(job_id)

    def _notify_done(self, job_id: str) -> None:
        with self._lock:
            callbacks = self._done_events.pop(job_id, [])
        job = self.store.get(job_id)
        for callback in callbacks:
            if job is not None:
                callback(job)

    def expire(self) -> int:
        """Delete jobs that ended more than ``expire`` seconds ago; how many."""
        old = self.store.expired(time.time() - self.config.expire)
        for job_id in old:
            self.delete(job_id)
        return len(old)

    # --------------------------------------------------------------- threads

    def _janitor(self) -> None:
        period = max(1.0, min(60.0, self.config.expire / 4))
        while not self.stopping.wait(period):
            try:
                self.expire()
            except Exception:  # pragma: no cover - logged, the janitor keeps going
                log.exception("expiry failed")

    def _work(self) -> None:
        painters: OrderedDict[str, Any] = OrderedDict()
        while not self.stopping.is_set():
            job = self.store.claim()
            if job is None:
                with self._wake:
                    self._wake.wait(1.0)
                continue
            self._run(job, painters)

    def _painter(self, painters: OrderedDict[str, Any], spec: JobSpec) -> Any:
        """The calling worker's painter for the job's method and values (``painters``: the
        worker's own, newest last): built the first time a (method, values) pair comes,
        then reused with the styles it prepared; the 4 most recently used are kept."""
        import json

        from brushwork.painter import Painter

        values = self.run_values(spec)
        key = json.dumps([spec.method, values], sort_keys=True, default=str)
        painter = painters.get(key)
        if painter is None:
            painter = Painter(
                spec.method,
                values,
                encoder=self.config.encoder,
                cache_bytes=self.config.style_cache,
            )
            painters[key] = painter
            while len(painters) > 4:
                painters.popitem(last=False)
        else:
            painters.move_to_end(key)
        return painter

    def _paint_image(
        self, job: Job, spec: JobSpec, sink: JobSink, painters: OrderedDict[str, Any], start: float
    ) -> dict[str, Any]:
        """Paint an image job into its folder; the result's details."""
        from brushwork.image import save_image
        from brushwork.inputs import Style

        folder = self.jobs_dir / job.id
        painter = self._painter(painters, spec)
        styles = [
            Style(
                folder / s["file"],
                s["weight"],
                None if s.get("layers") is None else tuple(s["layers"]),
            )
            for s in spec.styles
        ]
        mask = folder / spec.mask if spec.mask else None
        painting = painter.paint(
            folder / spec.content,
            styles,
            mask=mask,
            regions=spec.regions,
            events=sink,
            check=sink.check,
        )
        sink.check()
        save_image(painting.image, folder / RESULT, force=True)
        seconds = time.perf_counter() - start
        return ev.finite(
            {
                "size": list(painting.plan.content_size),
                "style_sizes": [list(s) for s in painting.plan.style_sizes],
                "losses": painting.result.losses,
                "scales": painting.scales,
                "seconds": round(seconds, 3),
                "paint_seconds": round(painting.seconds, 3),
                "reused_styles": painting.reused_styles,
                "precision": painter.stylizer.precision.name,
            }
        )

    def _paint_video(self, job: Job, spec: JobSpec, sink: JobSink, start: float) -> dict[str, Any]:
        """Stylize a video job into its folder with :func:`brushwork.video.stylize_video`:
        the job's sink gets one progress step per frame (and stops the job between frames),
        the frames are kept in the job's work folder, which a job started again (after a
        restart) resumes; the result's details."""
        from brushwork.inputs import Style
        from brushwork.service.spec import split_video
        from brushwork.video.runner import stylize_video
        from brushwork.video.work import MANIFEST

        folder = self.jobs_dir / job.id
        image_values, video_values = split_video(spec.values)
        values = self.run_values(JobSpec(spec.kind, spec.method, image_values))
        styles = [
            Style(
                folder / s["file"],
                s["weight"],
                None if s.get("layers") is None else tuple(s["layers"]),
            )
            for s in spec.styles
        ]
        work = folder / WORK

        def run(resume: bool) -> Any:
            return stylize_video(
                folder / spec.content,
                styles,
                folder / VIDEO_RESULT,
                spec.method,
                mask=folder / spec.mask if spec.mask else None,
                regions=spec.regions,
                events=sink,
                encoder=self.config.encoder,
                force=True,
                **values,
                **video_values,
                # the server's: where the frames are kept, and that they are resumed
                work_dir=str(work),
                resume=resume,
                keep_work=False,
                codec=None,
                fps=None,
            )

        resume = (work / MANIFEST).is_file()
        try:
            done = run(resume)
        except BrushworkError as error:
            if not (resume and str(error).startswith("cannot resume")):
                raise
            # frames made with other settings (this server's device or limits changed)
            log.warning("job %s: %s; starting its frames again", job.id, public_message(error))
            shutil.rmtree(work, ignore_errors=True)
            done = run(False)
        sink.check()
        seconds = time.perf_counter() - start
        return ev.finite(
            {
                "size": list(done.size),
                "frames": done.frames,
                "stylized": done.stylized,
                "resumed": done.frames - done.stylized,
                "lost": done.lost,
                "seconds": round(seconds, 3),
                "frame_seconds": round(done.frame_seconds, 4),
                "warping_error": done.warping_error,
                "media_type": RESULT_TYPES["video"],
            }
        )

    def _run(self, job: Job, painters: OrderedDict[str, Any]) -> None:
        stop = threading.Event()
        if job.cancel:
            stop.set()
        with self._lock:
            self._stops[job.id] = stop
        fresh = self.store.get(job.id)  # a cancel that came between claim and now
        if fresh is not None and fresh.cancel:
            stop.set()
        sink = JobSink(self, job, stop, time.monotonic() + self.config.job_timeout)
        folder = self.jobs_dir / job.id
        start = time.perf_counter()
        self.hub.publish(
            job.id, "running", {"id": job.id, "state": "running", "attempt": job.attempts}
        )
        try:
            spec = JobSpec.from_json(job.spec)
            sink.check()
            if spec.kind == "video":
                result = self._paint_video(job, spec, sink, start)
            else:
                result = self._paint_image(job, spec, sink, painters, start)
            seconds = result["seconds"]
            self.store.finish(job.id, "done", result=result)
            self._durations.append(seconds)
            self.hub.publish(
                job.id,
                "done",
                {
                    "id": job.id,
                    "state": "done",
                    "result": f"/jobs/{job.id}/result",
                    "seconds": round(seconds, 3),
                    "losses": result.get("losses", {}),
                },
            )
        except JobStopped as stopped:
            if stopped.state == "queued":
                self.store.requeue(job.id)
                return
            self.store.finish(job.id, stopped.state, error=str(stopped))
            self.hub.publish(
                job.id, stopped.state, {"id": job.id, "state": stopped.state, "error": str(stopped)}
            )
        except BrushworkError as error:
            message = public_message(error, job_labels(folder, job.spec))
            self.store.finish(job.id, "failed", error=message)
            self.hub.publish(job.id, "failed", {"id": job.id, "state": "failed", "error": message})
        except Exception as error:
            log.exception("job %s failed", job.id)
            message = f"internal error: {type(error).__name__}"
            self.store.finish(job.id, "failed", error=message)
            self.hub.publish(job.id, "failed", {"id": job.id, "state": "failed", "error": message})
        finally:
            with self._lock:
                self._stops.pop(job.id, None)
        self._notify_done(job.id)


__all__ = [
    "FINAL",
    "Hub",
    "JobManager",
    "JobSink",
    "JobStopped",
    "ReadersFull",
    "describe_job",
    "new_id",
    "valid_id",
]
