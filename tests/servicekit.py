"""Helpers for the service and batch tests: images made in the test (valid, truncated,
bombs), submissions, waiting for jobs, reading event streams with a deadline, and a real
server in a subprocess (``tests/service_server.py``: uvicorn with the tiny encoder, on a free
loopback port, through :class:`brushwork.service.process.ServerProcess`)."""

from __future__ import annotations

import io
import json
import struct
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from PIL import Image

from brushwork.service.process import ServerProcess, free_port, peak_rss

HERE = Path(__file__).resolve().parent
SERVER = HERE / "service_server.py"


def png_bytes(width: int = 48, height: int = 40, seed: int = 0, mode: str = "RGB") -> bytes:
    """A small PNG with some structure."""
    import numpy as np

    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, size=(4, 6, 3), dtype=np.uint8)
    image = Image.fromarray(base).resize((width, height), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    image.convert(mode).save(buffer, format="PNG")
    return buffer.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def bomb_png(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` × ``height`` (a decompression bomb: the
    pixel data, were it decoded, would be huge; here it is a few zero rows)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (width + 1) * 4, 9)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", rows)
        + _chunk(b"IEND", b"")
    )


def truncated_png() -> bytes:
    """A PNG cut in the middle of its pixel data: the header reads, decoding fails."""
    data = png_bytes(160, 120, seed=3)
    return data[: len(data) // 2]


def form(
    method: str = "adain",
    options: dict[str, Any] | None = None,
    content: bytes | None = None,
    styles: list[bytes] | None = None,
    names: tuple[str, str] = ("photo.png", "style.png"),
) -> dict[str, Any]:
    """Keyword arguments of ``client.post`` for a multipart job submission."""
    files = [("content", (names[0], content if content is not None else png_bytes(), "image/png"))]
    for number, style in enumerate(styles or [png_bytes(40, 40, seed=1)]):
        files.append(("style", (f"{number}-{names[1]}", style, "image/png")))
    data = {"method": method, "options": json.dumps(options or {})}
    return {"files": files, "data": data}


def wait_for(
    client: Any,
    job_id: str,
    states: tuple[str, ...] = ("done", "failed", "cancelled"),
    timeout: float = 60.0,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Poll a job until its state is one of ``states``."""
    end = time.monotonic() + timeout
    while True:
        job = client.get(f"/jobs/{job_id}", headers=headers or {}).json()
        if job.get("state") in states:
            return job
        if time.monotonic() > end:
            raise AssertionError(f"job {job_id} still {job.get('state')} after {timeout} s")
        time.sleep(0.05)


def read_events(
    lines: Iterator[str], deadline: float, until: tuple[str, ...] = ("done", "failed", "cancelled")
) -> list[tuple[str, dict[str, Any]]]:
    """The (name, data) of server-sent events from ``lines`` up to and including the first
    named in ``until`` (or the stream's end); AssertionError past ``deadline`` (a
    ``time.monotonic()`` value: checked at every line, keep-alives included)."""
    found: list[tuple[str, dict[str, Any]]] = []
    name = None
    for line in lines:
        if time.monotonic() > deadline:
            raise AssertionError(f"the event stream was still open at its deadline: {found[-3:]}")
        if line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            found.append((name or "message", json.loads(line[5:])))
            if name in until:
                break
    return found


def hold_jobs_at(step: int, marker: Path | None = None) -> tuple[Any, threading.Event]:
    """A replacement for ``JobSink.__call__`` that holds the first job whose progress
    reaches ``step``: its worker waits there until the server stops (or is killed), the job
    is cancelled or its time runs out, after writing the job's id to ``marker`` (if given)
    and setting the returned event. A stop, a kill, a cancel or a time limit then lands
    mid-job however fast the machine is (the job's progress in the index is written at most
    twice a second, too coarse to time them by).

    Returns (the replacement, the event set once a job is held)."""
    from brushwork import events as ev
    from brushwork.service.jobs import JobSink

    original = JobSink.__call__
    held = threading.Event()
    lock = threading.Lock()

    def call(self: JobSink, event: ev.Event) -> None:
        original(self, event)
        if not isinstance(event, ev.Progress) or event.step < step:
            return
        with lock:
            if held.is_set():
                return
            if marker is not None:
                marker.write_text(self.job.id)
            held.set()
        end = time.monotonic() + 300
        while time.monotonic() < min(end, self.deadline):
            if self.manager.stopping.is_set() or self.stop.is_set():
                break
            time.sleep(0.01)

    return call, held


def start_when_followed(timeout: float = 60.0) -> Any:
    """A replacement for ``JobManager._run`` that starts a job only once an event reader
    follows it (or the server stops, or ``timeout`` s pass). The reader then sees the job's
    every event (``running``, progress, previews) however fast the machine paints: a job
    that ended before its reader subscribed shows that reader only its final state."""
    from brushwork.service.jobs import JobManager

    original = JobManager._run

    def run(self: JobManager, job: Any, painters: Any) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end and not self.stopping.is_set():
            with self.hub._lock:
                if self.hub._subscribers.get(job.id):
                    break
            time.sleep(0.01)
        original(self, job, painters)

    return run


def wait_until_held(marker: Path, timeout: float = 60.0) -> str:
    """The id of the job a server started with ``--hold-at-step`` holds (see
    :func:`hold_jobs_at`), once it holds one."""
    end = time.monotonic() + timeout
    while not marker.is_file() or not marker.read_text():
        if time.monotonic() > end:
            raise AssertionError(f"no job was held after {timeout:g} s")
        time.sleep(0.02)
    return marker.read_text()


class LiveServer(ServerProcess):
    """``tests/service_server.py`` (``brushwork serve`` with the tiny encoder) on a free
    loopback port."""

    def __init__(self, data: Path, *args: str, log: Path | None = None) -> None:
        super().__init__(
            [sys.executable, str(SERVER)],
            data,
            *args,
            log=log,
            env={"BRUSHWORK_PRECISION": "float32", "PYTHONUNBUFFERED": "1"},
        )

    def start(self, timeout: float = 60.0) -> LiveServer:
        try:
            super().start(timeout)
        except RuntimeError as error:
            raise AssertionError(str(error)) from None
        return self


@contextmanager
def live_server(data: Path, *args: str) -> Iterator[LiveServer]:
    server = LiveServer(data, *args).start()
    try:
        yield server
    finally:
        server.stop()


__all__ = [
    "LiveServer",
    "bomb_png",
    "form",
    "free_port",
    "hold_jobs_at",
    "live_server",
    "peak_rss",
    "png_bytes",
    "read_events",
    "start_when_followed",
    "truncated_png",
    "wait_for",
    "wait_until_held",
]
