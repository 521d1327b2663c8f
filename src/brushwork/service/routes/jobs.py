"""Jobs: submit one (``POST /jobs``), list this token's, get one, cancel or forget it, follow
its server-sent events, fetch its preview and its result."""

# no `from __future__ import annotations`: FastAPI reads these annotations at run time
import asyncio
import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from brushwork.defaults import DEFAULT_METHOD
from brushwork.service.jobs import JobManager
from brushwork.service.live import ReadersFull, Subscriber
from brushwork.service.records import PREVIEW, RESULT_TYPES, describe_job, result_name
from brushwork.service.schema import (
    ERRORS,
    JOB_LINKS,
    JSON_FORM,
    STYLES_FORM,
    SUBMIT_ERRORS,
    CancelOut,
    ErrorOut,
    JobOut,
    JobsOut,
    kinds_form,
    method_form,
)
from brushwork.service.state import Owner, ServiceDep
from brushwork.service.store import Job
from brushwork.service.uploads import ApiError

KEEPALIVE = 15.0
"""Seconds between two keep-alive comments of an idle event stream."""
FINAL = ("done", "failed", "cancelled")
"""The events after which a stream ends."""

router = APIRouter()


@router.post(
    "/jobs",
    operation_id="create_job",
    status_code=202,
    response_model=JobOut,
    responses={**SUBMIT_ERRORS, 202: {"description": "the job, queued", "links": JOB_LINKS}},
)
async def create_job(
    owner: Owner,
    service: ServiceDep,
    content: Annotated[
        UploadFile, File(description="the content image (kind video: a video file)")
    ],
    style: Annotated[
        list[UploadFile],
        File(
            default_factory=list,
            description="style images (repeat; none for a method that paints its own)",
            json_schema_extra=STYLES_FORM,
        ),
    ],
    mask: Annotated[
        UploadFile | None, File(description="label image: one flat colour per region")
    ] = None,
    method: Annotated[
        str, Form(description="see GET /methods", json_schema_extra=method_form())
    ] = DEFAULT_METHOD,
    options: Annotated[
        str,
        Form(
            description='JSON object of options and controls, e.g. {"size": 256}',
            json_schema_extra=JSON_FORM,
        ),
    ] = "{}",
    styles: Annotated[
        str,
        Form(
            description='JSON list, per style: {"weight": W, "layers": [...]}',
            json_schema_extra=JSON_FORM,
        ),
    ] = "[]",
    regions: Annotated[
        str | None,
        Form(
            description="JSON object: label colour → style number or null",
            json_schema_extra=JSON_FORM,
        ),
    ] = None,
    kind: Annotated[str, Form(description="job kind", json_schema_extra=kinds_form())] = "image",
) -> JSONResponse:
    """Queue a job: ``202`` with its id and links; follow ``links.events``. With
    ``kind=video`` the content is a video file (checked whole before the job is
    accepted), the options may add the video options of ``GET /methods``
    (``video.options``), progress counts frames and the result is an MP4."""
    job = await service.submit(
        owner,
        {
            "kind": kind,
            "method": method,
            "options": options,
            "styles": styles,
            "regions": regions,
            "content": content,
            "style": style,
            "mask": mask,
        },
    )
    return JSONResponse(describe_job(job), status_code=202, headers={"Location": f"/jobs/{job.id}"})


@router.get("/jobs", operation_id="list_jobs", response_model=JobsOut, responses={401: ERRORS[401]})
def list_jobs(
    owner: Owner, service: ServiceDep, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> dict[str, Any]:
    """This token's newest jobs."""
    found = service.manager.store.newest(owner if service.config.tokens else None, limit)
    return {"jobs": [describe_job(j) for j in found]}


@router.get(
    "/jobs/{job_id}",
    operation_id="get_job",
    response_model=JobOut,
    responses={401: ERRORS[401], 404: ERRORS[404]},
)
def get_job(job_id: str, owner: Owner, service: ServiceDep) -> dict[str, Any]:
    """A job's state, progress, losses and timings."""
    return describe_job(service.job_of(job_id, owner))


@router.delete(
    "/jobs/{job_id}",
    operation_id="delete_job",
    response_model=CancelOut,
    responses={
        202: {"model": CancelOut, "description": "running: stops at its next step or stage"},
        401: ERRORS[401],
        404: ERRORS[404],
    },
)
def delete_job(job_id: str, owner: Owner, service: ServiceDep) -> JSONResponse:
    """Cancel a queued job (``200``), stop a running one at its next step or stage
    (``202``, state ``cancelling``), or forget a finished one and its files (``200``,
    state ``deleted``)."""
    job = service.job_of(job_id, owner)
    if job.final:
        service.manager.delete(job.id)
        return JSONResponse({"id": job.id, "state": "deleted"})
    state = service.manager.cancel(job.id) or "deleted"
    return JSONResponse(
        {"id": job.id, "state": state}, status_code=202 if state == "cancelling" else 200
    )


@router.get(
    "/jobs/{job_id}/result",
    operation_id="job_result",
    response_class=FileResponse,
    responses={
        200: {"content": {"image/png": {}, "video/mp4": {}}},
        401: ERRORS[401],
        404: ERRORS[404],
        409: {"model": ErrorOut, "description": "not done (yet)"},
    },
)
def result(
    job_id: str,
    owner: Owner,
    service: ServiceDep,
    download: Annotated[bool, Query()] = False,
) -> FileResponse:
    """The finished image (PNG) or video (MP4); ``?download=true`` as an attachment."""
    job = service.job_of(job_id, owner)
    name = result_name(job.kind)
    path = service.manager.folder(job.id) / name
    if job.state != "done" or not path.is_file():
        why = f": {job.error}" if job.error else ""
        raise ApiError(409, f"job {job.id} is {job.state}{why}; no result")
    return FileResponse(
        path,
        media_type=RESULT_TYPES[job.kind],
        filename=f"brushwork-{job.id}{Path(name).suffix}",
        content_disposition_type="attachment" if download else "inline",
    )


@router.get(
    "/jobs/{job_id}/preview",
    operation_id="job_preview",
    response_class=FileResponse,
    responses={200: {"content": {"image/jpeg": {}}}, 401: ERRORS[401], 404: ERRORS[404]},
)
def preview(job_id: str, owner: Owner, service: ServiceDep) -> FileResponse:
    """The latest preview of an optimization (JPEG)."""
    job = service.job_of(job_id, owner)
    path = service.manager.folder(job.id) / PREVIEW
    if not path.is_file():
        raise ApiError(404, f"job {job.id} has no preview (yet)")
    return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "no-store"})


@router.get(
    "/jobs/{job_id}/events",
    operation_id="job_events",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}},
        401: ERRORS[401],
        404: ERRORS[404],
        429: ERRORS[429],
        503: ERRORS[503],
    },
)
async def job_events(job_id: str, owner: Owner, service: ServiceDep) -> StreamingResponse:
    """Server-sent events: ``state`` first (the job now), then ``started``,
    ``progress``, ``preview`` (a JPEG data: URL), ``warning``, and one of ``done``,
    ``failed``, ``cancelled``, after which the stream ends. A job has at most
    ``--max-readers-per-job`` readers (one more: ``429``), the server
    ``--max-readers`` (``503``)."""
    job = await run_in_threadpool(service.job_of, job_id, owner)
    refused = service.manager.hub.refusal(job.id)
    if refused is not None:
        raise ApiError(refused.status, str(refused), {"Retry-After": "5"})
    return StreamingResponse(
        event_stream(service.manager, job),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def event_stream(manager: JobManager, job: Job) -> AsyncIterator[str]:
    """A job's events: what it is now (:func:`current_events`), then each new one until
    a final one. Subscribed here, in the generator, so that the ``finally`` below always
    runs for a subscription; before the state is read, so that no event falls between."""
    try:
        subscriber = manager.hub.subscribe(job.id, asyncio.get_running_loop())
    except ReadersFull as full:  # others came between the check and now
        yield sse("error", {"status": full.status, "error": str(full)})
        return
    try:
        now = await run_in_threadpool(manager.store.get, job.id) or job
        for event in await current_events(manager, now):
            yield event
        if not now.final:
            async for event in new_events(subscriber):
                yield event
    finally:
        manager.hub.unsubscribe(subscriber)


async def current_events(manager: JobManager, now: Job) -> list[str]:
    """``state`` (the job now), its latest ``preview`` unless it is done, and its final
    event if it has ended."""
    found = [sse("state", describe_job(now))]
    picture = manager.folder(now.id) / PREVIEW
    if now.state != "done" and await run_in_threadpool(picture.is_file):
        data = await run_in_threadpool(picture.read_bytes)
        image = "data:image/jpeg;base64," + base64.b64encode(data).decode()
        found.append(sse("preview", {"step": now.step, "total": now.total, "image": image}))
    if now.final:
        link = describe_job(now)["links"]["result"]
        found.append(
            sse(now.state, {"id": now.id, "state": now.state, "error": now.error, "result": link})
        )
    return found


async def new_events(subscriber: Subscriber) -> AsyncIterator[str]:
    """The subscriber's events until a final one, with a keep-alive comment every
    :data:`KEEPALIVE` seconds of silence."""
    while True:
        try:
            message = await asyncio.wait_for(subscriber.queue.get(), KEEPALIVE)
        except TimeoutError:
            yield ": keep-alive\n\n"
            continue
        yield sse(message.kind, message.data, message.seq)
        if message.kind in FINAL:
            return


def sse(kind: str, data: dict[str, Any], seq: int | None = None) -> str:
    """One server-sent event (``id`` when it has a sequence number)."""
    head = f"id: {seq}\n" if seq is not None else ""
    return f"{head}event: {kind}\ndata: {json.dumps(data, allow_nan=False)}\n\n"
