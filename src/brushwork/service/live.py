"""Live events: each job's server-sent events fanned out from the worker threads to the
clients that follow the job (``GET /jobs/{id}/events``), with bounded readers and queues.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any


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


__all__ = ["Hub", "Message", "ReadersFull", "Subscriber"]
