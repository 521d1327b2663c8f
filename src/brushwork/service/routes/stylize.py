"""One stylization answered in the request (``POST /stylize``): the same form as a job, for
methods that paint in one pass, through the same queue, answered with the PNG."""

# no `from __future__ import annotations`: FastAPI reads these annotations at run time
import asyncio
import time
from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from brushwork.defaults import DEFAULT_ONE_PASS_METHOD
from brushwork.service.jobs import JobManager
from brushwork.service.records import RESULT
from brushwork.service.schema import (
    JSON_FORM,
    STYLES_FORM,
    SUBMIT_ERRORS,
    ErrorOut,
    method_form,
)
from brushwork.service.state import Owner, ServiceDep
from brushwork.service.store import Job
from brushwork.service.uploads import ApiError

CLIENT_GONE = 499
"""The answer when the client disconnected first (nginx's code; nobody reads it)."""

router = APIRouter()


@router.post(
    "/stylize",
    operation_id="stylize",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}}},
        **SUBMIT_ERRORS,
        409: {"model": ErrorOut, "description": "the job was cancelled"},
        504: {"model": ErrorOut, "description": "the job did not finish in time"},
    },
)
async def stylize_now(
    request: Request,
    owner: Owner,
    service: ServiceDep,
    content: Annotated[UploadFile, File(description="the content image")],
    style: Annotated[
        list[UploadFile],
        File(
            default_factory=list,
            description="style images (repeat; none for a method that paints its own)",
            json_schema_extra=STYLES_FORM,
        ),
    ],
    mask: Annotated[UploadFile | None, File(description="label image")] = None,
    method: Annotated[
        str,
        Form(
            description="a method that paints in one pass with these options (GET /methods: sync)",
            json_schema_extra=method_form(),
        ),
    ] = DEFAULT_ONE_PASS_METHOD,
    options: Annotated[
        str, Form(description="JSON object of options", json_schema_extra=JSON_FORM)
    ] = "{}",
    styles: Annotated[
        str, Form(description="JSON list of {weight, layers}", json_schema_extra=JSON_FORM)
    ] = "[]",
    regions: Annotated[
        str | None, Form(description="JSON object", json_schema_extra=JSON_FORM)
    ] = None,
) -> Response:
    """Stylize with a one-pass method and answer with the PNG (through the same queue
    as jobs; the job id is in ``X-Job-Id``)."""
    job = await service.submit(
        owner,
        {
            "kind": "image",
            "method": method,
            "options": options,
            "styles": styles,
            "regions": regions,
            "content": content,
            "style": style,
            "mask": mask,
        },
        sync=True,
    )
    deadline = time.monotonic() + service.config.job_timeout + 60
    done = await finished(request, service.manager, job, deadline)
    if done is None:
        return Response(status_code=CLIENT_GONE)
    return await answer(service.manager, done)


async def finished(request: Request, manager: JobManager, job: Job, deadline: float) -> Job | None:
    """The job once it has ended; None (and the job cancelled) when the client went away
    first; ``504`` (and the job cancelled) past ``deadline`` (monotonic seconds)."""
    loop = asyncio.get_running_loop()
    ended: asyncio.Future[Job] = loop.create_future()

    def settle(done: Job) -> None:
        if not ended.done():
            ended.set_result(done)

    await run_in_threadpool(
        manager.when_done, job.id, lambda done: loop.call_soon_threadsafe(settle, done)
    )
    while not ended.done():
        await asyncio.wait({ended}, timeout=0.5)
        if ended.done():
            break
        if await request.is_disconnected():
            await run_in_threadpool(manager.cancel, job.id)
            return None
        if time.monotonic() > deadline:
            await run_in_threadpool(manager.cancel, job.id)
            raise ApiError(504, f"job {job.id} did not finish in time")
    return ended.result()


async def answer(manager: JobManager, done: Job) -> Response:
    """The PNG of a job that is done; else its error: ``500`` for an internal one,
    ``422`` for a failure, ``409`` for a cancelled job."""
    headers = {"X-Job-Id": done.id}
    if done.state == "done":
        data = await run_in_threadpool((manager.folder(done.id) / RESULT).read_bytes)
        return Response(data, media_type="image/png", headers=headers)
    if done.state == "failed" and (done.error or "").startswith("internal error"):
        raise ApiError(500, done.error or "internal error", headers)
    raise ApiError(422 if done.state == "failed" else 409, done.error or done.state, headers)
