"""The job queue: a fixed number of worker threads painting jobs from the index, live
events for the clients that follow them, expiry, recovery after a restart.

Workers are threads of the server process: they share the process's encoder and decoders
(loaded once, :func:`brushwork.encoders.cached_vgg19`), each keeps its own painters
(:class:`~brushwork.service.painting.Painters`, one per method and options), so a worker
reuses prepared styles (within ``--style-cache`` bytes). A job reports through
:mod:`brushwork.events`: the worker binds a :class:`~brushwork.service.sink.JobSink` that
turns progress into index updates, server-sent events (:mod:`brushwork.service.live`) and
previews, and stops the job when it is cancelled, past its time limit, or the server is
stopping. What a job paints is in :mod:`brushwork.service.painting`; its id, files and how
the API shows it in :mod:`brushwork.service.records`.
"""

from __future__ import annotations

import logging
import math
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from brushwork.errors import BrushworkError
from brushwork.service.config import ServiceConfig
from brushwork.service.live import Hub, ReadersFull
from brushwork.service.painting import Painters, paint_image, paint_video
from brushwork.service.records import describe_job, job_labels, new_id, valid_id
from brushwork.service.sink import JobSink, JobStopped
from brushwork.service.spec import JobSpec, resolve_values, split_video
from brushwork.service.store import FINAL, INDEX, Job, JobStore, check_index
from brushwork.service.uploads import public_message

log = logging.getLogger("brushwork.service")


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
        self._done_events: dict[str, list[Callable[[Job], object]]] = {}
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
            self._restart()
        self.job_memory = self._job_memory()
        self._recover()
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

    def _restart(self) -> None:
        """Make a stopped manager ready to start again."""
        for thread in self._threads:  # a worker that outlived stop() ends first
            thread.join(60.0)
        if self.store.closed:
            self.store = JobStore(self.root / INDEX)
        self.stopping.clear()
        self._threads = []
        self._stopped = False

    def _recover(self) -> None:
        """Requeue the jobs that ran when the server stopped (fail those that did too
        often), drop folders no job owns and fail queued jobs whose folder is gone."""
        self.recovered = self.store.recover(self.config.max_attempts)
        for job_id in self.recovered[1]:
            log.warning("job %s failed: the server stopped while it ran too often", job_id)
        known = self.store.ids()
        for folder in self.jobs_dir.iterdir():
            if folder.name not in known:
                shutil.rmtree(folder, ignore_errors=True)
        for job_id in known:
            job = self.store.get(job_id)
            if job is not None and job.state == "queued" and not self.folder(job_id).is_dir():
                self.store.finish(
                    job_id, "failed", error="the job's files are missing", expected="queued"
                )

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

    def when_done(self, job_id: str, callback: Callable[[Job], object]) -> None:
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
        painters = Painters(self.config.encoder, self.config.style_cache)
        while not self.stopping.is_set():
            job = self.store.claim()
            if job is None:
                with self._wake:
                    self._wake.wait(1.0)
                continue
            self._run(job, painters)

    def _paint(self, job: Job, sink: JobSink, painters: Painters, start: float) -> dict[str, Any]:
        """Paint a claimed job into its folder; the result's details."""
        folder = self.jobs_dir / job.id
        spec = JobSpec.from_json(job.spec)
        sink.check()
        if spec.kind == "video":
            image_values, video_values = split_video(spec.values)
            values = self.run_values(JobSpec(spec.kind, spec.method, image_values))
            values.update(video_values)
            return paint_video(folder, spec, values, self.config.encoder, sink, start)
        painter = painters.get(spec.method, self.run_values(spec))
        return paint_image(folder, spec, painter, sink, start)

    def _stop_event(self, job: Job) -> threading.Event:
        """The event that stops a running job, set already if it was cancelled."""
        stop = threading.Event()
        if job.cancel:
            stop.set()
        with self._lock:
            self._stops[job.id] = stop
        fresh = self.store.get(job.id)  # a cancel that came between claim and now
        if fresh is not None and fresh.cancel:
            stop.set()
        return stop

    def _run(self, job: Job, painters: Painters) -> None:
        sink = JobSink(self, job, self._stop_event(job), time.monotonic() + self.config.job_timeout)
        start = time.perf_counter()
        self.hub.publish(
            job.id, "running", {"id": job.id, "state": "running", "attempt": job.attempts}
        )
        try:
            self._done(job, self._paint(job, sink, painters, start))
        except JobStopped as stopped:
            if stopped.state == "queued":
                self.store.requeue(job.id)
                return
            self._end(job.id, stopped.state, str(stopped))
        except BrushworkError as error:
            labels = job_labels(self.jobs_dir / job.id, job.spec)
            self._end(job.id, "failed", public_message(error, labels))
        except Exception as error:
            log.exception("job %s failed", job.id)
            self._end(job.id, "failed", f"internal error: {type(error).__name__}")
        finally:
            with self._lock:
                self._stops.pop(job.id, None)
        self._notify_done(job.id)

    def _done(self, job: Job, result: dict[str, Any]) -> None:
        """Record a painted job and tell its readers."""
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

    def _end(self, job_id: str, state: str, message: str) -> None:
        """Record a job that ended unpainted (``failed``, ``cancelled``) and tell its readers."""
        self.store.finish(job_id, state, error=message)
        self.hub.publish(job_id, state, {"id": job_id, "state": state, "error": message})


__all__ = [
    "FINAL",
    "Hub",
    "JobManager",
    "JobSink",
    "JobStopped",
    "ReadersFull",
    "describe_job",
    "new_id",
    "operator_models",
    "valid_id",
]
