"""A job's records: its id, the files of its folder, how its errors name them, and how the
API shows it."""

from __future__ import annotations

import math
import secrets
import time
from pathlib import Path
from typing import Any

from brushwork.service.store import Job

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


def _timings(job: Job) -> dict[str, float | None]:
    """Seconds a job waited in the queue and ran (so far, while it runs)."""
    now = time.time()
    queued = (job.started or job.finished or now) - job.created
    running = None if job.started is None else (job.finished or now) - job.started
    return {
        "queued_seconds": round(max(0.0, queued), 3),
        "run_seconds": None if running is None else round(max(0.0, running), 3),
    }


def _links(job: Job) -> dict[str, str | None]:
    base = f"/jobs/{job.id}"
    return {
        "self": base,
        "events": f"{base}/events",
        "result": f"{base}/result" if job.state == "done" else None,
        "preview": f"{base}/preview",
    }


def describe_job(job: Job) -> dict[str, Any]:
    """A job as the API shows it."""
    total = job.total
    fraction = 1.0 if job.state == "done" else (min(1.0, job.step / total) if total else 0.0)
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
        "timings": _timings(job),
        "options": spec.get("values", {}),
        "styles": [
            {"name": s.get("name"), "weight": s.get("weight"), "layers": s.get("layers")}
            for s in spec.get("styles", [])
        ],
        "content_name": spec.get("names", {}).get("content"),
        "details": job.result,
        "links": _links(job),
    }


__all__ = [
    "ID_LENGTH",
    "PREVIEW",
    "RESULT",
    "RESULT_TYPES",
    "VIDEO_RESULT",
    "WORK",
    "describe_job",
    "job_labels",
    "new_id",
    "result_name",
    "valid_id",
]
