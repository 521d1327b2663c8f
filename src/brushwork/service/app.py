"""The HTTP API and the page (FastAPI). :func:`create_app` builds an app around a
:class:`~brushwork.service.jobs.JobManager`; ``brushwork serve`` runs it on uvicorn.

Endpoints (JSON unless said; errors are ``{"error": "one line"}`` with the CLI's messages):

* ``GET /`` the page; ``GET /static/...`` its files; ``GET /docs`` the OpenAPI docs.
* ``GET /health``; ``GET /methods`` (methods with the options a job may set, controls,
  limits); ``GET /models``; ``GET /examples``, ``GET /examples/{name}`` (bundled images).
* ``POST /jobs`` (multipart: ``content``, ``style`` (repeatable), optional ``mask``,
  ``method``, ``options`` (JSON object), ``styles`` (JSON list of weights / layers),
  ``regions``) → ``202`` and the job; ``GET /jobs`` (this token's newest);
  ``GET /jobs/{id}``; ``GET /jobs/{id}/events`` (server-sent events);
  ``GET /jobs/{id}/result`` (PNG); ``GET /jobs/{id}/preview`` (JPEG);
  ``DELETE /jobs/{id}`` (cancel a queued or running job; forget a finished one).
* ``POST /stylize``: the same form for one-pass methods, answered with the PNG.
"""

# no `from __future__ import annotations`: FastAPI reads these annotations at run time
import asyncio
import base64
import contextlib
import hashlib
import hmac
import io
import json
import logging
import shutil
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, File, Form, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from brushwork.errors import BrushworkError
from brushwork.service.config import ServiceConfig
from brushwork.service.jobs import PREVIEW, RESULT, JobManager, describe_job, new_id, valid_id
from brushwork.service.spec import (
    KINDS,
    JobSpec,
    check_kind,
    client_controls,
    client_options,
    parse_options,
    parse_regions,
    parse_styles,
    resolve_values,
)
from brushwork.service.store import Job
from brushwork.service.uploads import (
    ApiError,
    BodyLimit,
    QueueGate,
    RequestGuard,
    check_decodes,
    check_header,
    display_name,
    store_upload,
)

log = logging.getLogger("brushwork.service")
STATIC = Path(__file__).resolve().parent / "static"
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "localhost.localdomain"}


# ----------------------------------------------------------------------------- schema


class ErrorOut(BaseModel):
    """Every error: one line, as the command line prints it."""

    error: str


class ProgressOut(BaseModel):
    step: int
    total: int | None
    fraction: float


class JobOut(BaseModel):
    """A job's state, progress, timings and links."""

    id: str
    kind: str
    method: str
    state: str = Field(description="queued, running, done, failed or cancelled")
    created: float
    started: float | None
    finished: float | None
    progress: ProgressOut
    losses: dict[str, float]
    error: str | None
    attempts: int
    cancel_requested: bool
    timings: dict[str, float | None]
    options: dict[str, Any]
    styles: list[dict[str, Any]]
    content_name: str | None
    details: dict[str, Any] | None
    links: dict[str, str | None]


class JobsOut(BaseModel):
    jobs: list[JobOut]


class CancelOut(BaseModel):
    id: str
    state: str


class HealthOut(BaseModel):
    status: str
    workers: int
    jobs: dict[str, int]
    readers: int
    uptime_seconds: float
    kinds: list[str]


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut, "description": text}
    for code, text in (
        (401, "missing or wrong bearer token"),
        (404, "no such job (unknown, expired, or another token's)"),
        (413, "upload over the byte or pixel limit"),
        (415, "not an image of a supported format"),
        (422, "bad options or inputs (the CLI's message)"),
        (429, "queue full; see Retry-After"),
    )
}


# ----------------------------------------------------------------------------- helpers


def _sse(kind: str, data: dict[str, Any], seq: int | None = None) -> str:
    head = f"id: {seq}\n" if seq is not None else ""
    return f"{head}event: {kind}\ndata: {json.dumps(data, allow_nan=False)}\n\n"


def _owner(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16]


class Service:
    """The app's state: the manager, the config, the bundled examples."""

    def __init__(self, config: ServiceConfig) -> None:
        self.config = config
        self.manager = JobManager(config)
        self.decoding = threading.Semaphore(2)
        self._examples: dict[str, bytes] = {}
        self._methods: dict[str, Any] | None = None

    # ------------------------------------------------------------- auth and jobs

    def token_of(self, header: str) -> str | None:
        """The configured token an ``Authorization`` header carries, if any."""
        scheme, _, given = header.partition(" ")
        given = given.strip()
        if scheme.lower() != "bearer" or not given:
            return None
        for token in self.config.tokens:
            if hmac.compare_digest(given.encode(), token.encode()):
                return token
        return None

    def token_ok(self, header: str) -> bool:
        return not self.config.tokens or self.token_of(header) is not None

    def owner_of(self, request: Request) -> str:
        """The token's owner id ('' when the server has no tokens); 401 otherwise."""
        if not self.config.tokens:
            return ""
        header = request.headers.get("authorization", "")
        token = self.token_of(header)
        if token is not None:
            return _owner(token)
        raise ApiError(
            401,
            "a bearer token is needed: send 'Authorization: Bearer TOKEN'"
            if not header
            else "wrong bearer token",
            {"WWW-Authenticate": "Bearer"},
        )

    def job_of(self, job_id: str, owner: str) -> Job:
        """The job if it exists and belongs to ``owner``; else one 404 for all cases."""
        job = self.manager.store.get(job_id) if valid_id(job_id) else None
        if job is None or (self.config.tokens and job.owner != owner):
            raise ApiError(404, f"no job {job_id[:40]!r} (unknown, expired, or another token's)")
        return job

    def accept(
        self,
        owner: str,
        kind: str | None,
        method: str,
        options: str | None,
        styles: str | None,
        regions: str | None,
        content: UploadFile,
        style: list[UploadFile],
        mask: UploadFile | None,
    ) -> tuple[Job, bool]:
        """Check a submission completely (options, uploads, plan, decoding) and build its
        job and folder; (job, whether the method optimizes). Runs in a thread."""
        from brushwork.api import Style
        from brushwork.painter import Painter

        config = self.config
        manager = self.manager
        kind = check_kind(kind)
        if not style:
            raise ApiError(422, "at least one style image is needed")
        if len(style) > config.max_styles:
            raise ApiError(
                422, f"{len(style)} style images; this server takes at most {config.max_styles}"
            )
        values = parse_options(
            method, options, max_side=config.max_side, extra_models=manager.extra_models
        )
        weights = parse_styles(styles, len(style))
        region_map = parse_regions(regions)
        if region_map is not None and mask is None:
            raise ApiError(422, "regions need a label image (mask)")
        draft = JobSpec(kind, method, values)
        run_values = resolve_values(draft, manager.extra_models)
        run_values["max_pixels"] = config.max_pixels
        share = manager.memory_share()
        if share is not None:
            run_values["max_memory"] = share
        painter = Painter(method, run_values, encoder=config.encoder, cache_size=0)
        job_id = new_id()
        folder = manager.folder(job_id)
        folder.mkdir()
        labels: dict[Path, str] = {}
        try:
            files = [("content", "content", content)] + [
                (f"style-{n}", f"style {n}", upload) for n, upload in enumerate(style, 1)
            ]
            if mask is not None:
                files.append(("mask", "mask", mask))
            for name, label, upload in files:
                path = folder / name
                store_upload(upload, path)
                labels[path] = label
                check_header(path, label, config.max_pixels)
            style_list = [
                Style(
                    folder / f"style-{n}",
                    w["weight"],
                    None if w["layers"] is None else tuple(w["layers"]),
                )
                for n, w in enumerate(weights, 1)
            ]
            try:
                plan = painter.check(
                    folder / "content", style_list, folder / "mask" if mask is not None else None
                )
            except BrushworkError as error:
                message = str(error)
                for path, label in labels.items():
                    message = message.replace(str(path), label)
                raise ApiError(422, message) from None
            if max(plan.content_size) > config.max_side:
                raise ApiError(
                    422,
                    f"the output would be {plan.content_size[0]}x"
                    f"{plan.content_size[1]} px, over this server's "
                    f"{config.max_side} px; give a smaller size",
                )
            with self.decoding:
                for path, label in labels.items():
                    check_decodes(path, label, config.max_pixels)
            spec = JobSpec(
                kind,
                method,
                values,
                styles=[
                    {
                        "file": f"style-{n}",
                        "weight": w["weight"],
                        "layers": w["layers"],
                        "name": display_name(style[n - 1].filename),
                    }
                    for n, w in enumerate(weights, 1)
                ],
                mask="mask" if mask is not None else None,
                regions=region_map,
                names={"content": display_name(content.filename) or ""},
            )
            job = Job(
                job_id,
                owner,
                kind,
                method,
                "queued",
                spec.to_json(),
                time.time(),
                total=plan.total_steps,
            )
            return job, painter.stylizer.method.has_losses()
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise

    async def submit(self, owner: str, fields: dict[str, Any], *, sync: bool = False) -> Job:
        manager = self.manager
        if manager.queue_full():
            raise self.too_busy()
        job, optimizes = await run_in_threadpool(self.accept, owner, **fields)
        if sync and optimizes:
            shutil.rmtree(manager.folder(job.id), ignore_errors=True)
            raise ApiError(
                422,
                f"POST /stylize is for one-pass methods; {job.method} "
                "optimizes for many steps: use POST /jobs and follow its "
                "events",
            )
        if not manager.submit(job):
            shutil.rmtree(manager.folder(job.id), ignore_errors=True)
            raise self.too_busy()
        return job

    def too_busy(self) -> ApiError:
        seconds = self.manager.retry_after()
        if self.manager.stopping.is_set():
            return ApiError(503, "the server is stopping", {"Retry-After": str(seconds)})
        return ApiError(
            429,
            f"the queue is full ({self.config.queue} jobs waiting); try again in {seconds} s",
            {"Retry-After": str(seconds)},
        )

    # ------------------------------------------------------------- listings

    def methods(self) -> dict[str, Any]:
        if self._methods is None:
            from brushwork.methods import describe

            extra = self.manager.extra_models
            found = []
            for entry in describe():
                entry = dict(entry, options=client_options(entry["name"], extra))
                entry["sync"] = entry["kind"] == "feed-forward"
                model = next((o for o in entry["options"] if o["name"] == "model"), None)
                if model is not None:  # the bundled ones installed, and the operator's
                    entry["models"] = list(model["choices"])
                found.append(entry)
            c = self.config
            self._methods = {
                "methods": found,
                "controls": client_controls(),
                "limits": {
                    "max_upload_bytes": c.max_upload,
                    "max_pixels": c.max_pixels,
                    "max_styles": c.max_styles,
                    "max_side": c.max_side,
                    "job_timeout_seconds": c.job_timeout,
                    "expire_seconds": c.expire,
                    "queue": c.queue,
                    "workers": c.workers,
                },
                "kinds": list(KINDS),
            }
        return self._methods

    def example(self, name: str) -> bytes:
        from brushwork import examples

        if name not in self._examples:
            if name in examples.STYLES:
                self._examples[name] = examples.style_path(name).read_bytes()
            elif name in examples.CONTENTS:
                image = examples.content_image(name)
                image.thumbnail((512, 512))
                buffer = io.BytesIO()
                image.save(buffer, format="PNG")
                self._examples[name] = buffer.getvalue()
            else:
                raise ApiError(
                    404,
                    f"no example {name[:40]!r}; examples: "
                    f"{', '.join((*examples.CONTENTS, *examples.STYLES))}",
                )
        return self._examples[name]


# ----------------------------------------------------------------------------- the app


def create_app(
    config: ServiceConfig | None = None,
    *,
    host: str = "127.0.0.1",
    allow_hosts: tuple[str, ...] = (),
) -> FastAPI:
    """The app for ``config`` (checked here); its workers start with the app (lifespan)
    and stop with it."""
    config = config or ServiceConfig()
    config.check(host)
    service = Service(config)
    manager = service.manager

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        manager.start()
        try:
            yield
        finally:
            await run_in_threadpool(manager.stop)

    app = FastAPI(
        title="brushwork",
        version=_version(),
        lifespan=lifespan,
        description="Neural style transfer as a service: submit jobs, follow "
        "their events, fetch results. Errors are JSON "
        '`{"error": "..."}` with the command line\'s messages.',
    )
    app.state.service = service
    app.state.manager = manager

    # middlewares: the last added runs first
    app.add_middleware(BodyLimit, limit=config.max_upload)
    if config.cors:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(config.cors),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    hosts = None
    if not config.tokens and "*" not in allow_hosts:
        hosts = LOOPBACK_NAMES | {host.strip("[]").lower()} | {h.lower() for h in allow_hosts}

    def refusal() -> tuple[int, str, dict[str, str]] | None:
        if not manager.queue_full() and not manager.stopping.is_set():
            return None
        error = service.too_busy()
        return error.status, str(error), error.headers

    def authorized(scope: dict[str, Any]) -> bool:
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        return service.token_ok(headers.get("authorization", ""))

    # a full queue answers 429 before an upload is read; the host and origin checks run
    # before everything (the last middleware added runs first)
    app.add_middleware(
        QueueGate,
        paths=("/jobs", "/stylize"),
        refusal=refusal,
        authorized=authorized,
        limit=config.max_upload,
    )
    app.add_middleware(RequestGuard, hosts=hosts, origins=set(config.cors))

    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> JSONResponse:
        return JSONResponse({"error": str(error)}, status_code=error.status, headers=error.headers)

    @app.exception_handler(BrushworkError)
    async def user_error(request: Request, error: BrushworkError) -> JSONResponse:
        return JSONResponse({"error": str(error)}, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = []
        for item in error.errors()[:3]:
            where = ".".join(str(p) for p in item.get("loc", ())[1:]) or "request"
            problems.append(f"{where}: {str(item.get('msg', 'invalid')).lower()}")
        return JSONResponse({"error": "; ".join(problems) or "invalid request"}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        detail = error.detail if isinstance(error.detail, str) else "request refused"
        if error.status_code == 400 and detail == "There was an error parsing the body":
            detail = "the request body is not valid multipart form data"
        return JSONResponse(
            {"error": detail},
            status_code=error.status_code,
            headers=getattr(error, "headers", None),
        )

    @app.exception_handler(Exception)
    async def internal(request: Request, error: Exception) -> JSONResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return JSONResponse({"error": f"internal error ({type(error).__name__})"}, status_code=500)

    Owner = Annotated[str, Depends(service.owner_of)]

    # ------------------------------------------------------------------ page

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(
            STATIC / "index.html", media_type="text/html", headers={"Cache-Control": "no-cache"}
        )

    # ------------------------------------------------------------------ listings

    @app.get("/health", response_model=HealthOut, responses={401: ERRORS[401]})
    async def health(owner: Owner) -> dict[str, Any]:
        """Whether the server answers, with its workers, job counts and job kinds."""
        return {
            "status": "stopping" if manager.stopping.is_set() else "ok",
            "workers": config.workers,
            "jobs": manager.store.counts(),
            "readers": manager.hub.count(),
            "uptime_seconds": round(time.time() - manager.started_at, 3),
            "kinds": list(KINDS),
        }

    @app.get("/methods", responses={401: ERRORS[401]})
    async def methods(owner: Owner) -> dict[str, Any]:
        """Every method with the options a job may set (types, defaults, ranges, choices),
        the controls every method shares, and this server's limits."""
        return await run_in_threadpool(service.methods)

    @app.get("/models", responses={401: ERRORS[401]})
    async def models_list(owner: Owner) -> dict[str, Any]:
        """The bundled networks and those the operator added."""
        from brushwork import models

        rows = [
            {
                "name": m.name,
                "method": m.method,
                "layer": m.layer,
                "encoder": m.encoder,
                "installed": m.path.is_file(),
                "description": m.description,
                "card": m.card,
                "source": "bundled",
            }
            for m in models.MODELS.values()
        ]
        rows += [
            {
                "name": name,
                "method": method,
                "layer": None,
                "encoder": None,
                "installed": True,
                "description": "added by the operator",
                "card": None,
                "source": "operator",
            }
            for name, (method, _) in manager.extra_models.items()
        ]
        return {"models": rows}

    @app.get("/examples", responses={401: ERRORS[401]})
    async def examples_list(owner: Owner) -> dict[str, Any]:
        """The bundled example images (content photos and styles)."""
        from brushwork import examples

        return {"contents": list(examples.CONTENTS), "styles": list(examples.STYLES)}

    @app.get(
        "/examples/{name}",
        response_class=Response,
        responses={200: {"content": {"image/png": {}}}, 401: ERRORS[401], 404: ERRORS[404]},
    )
    async def example(name: str, owner: Owner) -> Response:
        """One bundled example image as PNG."""
        data = await run_in_threadpool(service.example, name)
        return Response(data, media_type="image/png", headers={"Cache-Control": "max-age=86400"})

    # ------------------------------------------------------------------ jobs

    submit_responses = {k: ERRORS[k] for k in (401, 413, 415, 422, 429)}

    @app.post("/jobs", status_code=202, response_model=JobOut, responses=submit_responses)
    async def create_job(
        owner: Owner,
        content: Annotated[UploadFile, File(description="the content image")],
        style: Annotated[list[UploadFile], File(description="style images (repeat)")],
        mask: Annotated[
            UploadFile | None, File(description="label image: one flat colour per region")
        ] = None,
        method: Annotated[str, Form(description="see GET /methods")] = "gatys",
        options: Annotated[
            str, Form(description='JSON object of options and controls, e.g. {"size": 256}')
        ] = "{}",
        styles: Annotated[
            str, Form(description='JSON list, per style: {"weight": W, "layers": [...]}')
        ] = "[]",
        regions: Annotated[
            str | None, Form(description="JSON object: label colour → style number or null")
        ] = None,
        kind: Annotated[str, Form(description="job kind: image")] = "image",
    ) -> JSONResponse:
        """Queue a job: ``202`` with its id and links; follow ``links.events``."""
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
        return JSONResponse(
            describe_job(job), status_code=202, headers={"Location": f"/jobs/{job.id}"}
        )

    @app.get("/jobs", response_model=JobsOut, responses={401: ERRORS[401]})
    async def list_jobs(
        owner: Owner, limit: Annotated[int, Query(ge=1, le=200)] = 50
    ) -> dict[str, Any]:
        """This token's newest jobs."""
        found = manager.store.list(owner if config.tokens else None, limit)
        return {"jobs": [describe_job(j) for j in found]}

    @app.get(
        "/jobs/{job_id}", response_model=JobOut, responses={401: ERRORS[401], 404: ERRORS[404]}
    )
    async def get_job(job_id: str, owner: Owner) -> dict[str, Any]:
        """A job's state, progress, losses and timings."""
        return describe_job(service.job_of(job_id, owner))

    @app.delete(
        "/jobs/{job_id}", response_model=CancelOut, responses={401: ERRORS[401], 404: ERRORS[404]}
    )
    async def delete_job(job_id: str, owner: Owner) -> JSONResponse:
        """Cancel a queued job (``200``), stop a running one at its next step (``202``,
        state ``cancelling``), or forget a finished one and its files (``200``, state
        ``deleted``)."""
        job = service.job_of(job_id, owner)
        if job.final:
            await run_in_threadpool(manager.delete, job.id)
            return JSONResponse({"id": job.id, "state": "deleted"})
        state = manager.cancel(job.id) or "deleted"
        return JSONResponse(
            {"id": job.id, "state": state}, status_code=202 if state == "cancelling" else 200
        )

    @app.get(
        "/jobs/{job_id}/result",
        response_class=FileResponse,
        responses={
            200: {"content": {"image/png": {}}},
            401: ERRORS[401],
            404: ERRORS[404],
            409: {"model": ErrorOut, "description": "not done (yet)"},
        },
    )
    async def result(
        job_id: str, owner: Owner, download: Annotated[bool, Query()] = False
    ) -> FileResponse:
        """The finished image (PNG); ``?download=true`` as an attachment."""
        job = service.job_of(job_id, owner)
        path = manager.folder(job.id) / RESULT
        if job.state != "done" or not path.is_file():
            why = f": {job.error}" if job.error else ""
            raise ApiError(409, f"job {job.id} is {job.state}{why}; no result")
        return FileResponse(
            path,
            media_type="image/png",
            filename=f"brushwork-{job.id}.png",
            content_disposition_type="attachment" if download else "inline",
        )

    @app.get(
        "/jobs/{job_id}/preview",
        response_class=FileResponse,
        responses={200: {"content": {"image/jpeg": {}}}, 401: ERRORS[401], 404: ERRORS[404]},
    )
    async def preview(job_id: str, owner: Owner) -> FileResponse:
        """The latest preview of an optimization (JPEG)."""
        job = service.job_of(job_id, owner)
        path = manager.folder(job.id) / PREVIEW
        if not path.is_file():
            raise ApiError(404, f"job {job.id} has no preview (yet)")
        return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    @app.get(
        "/jobs/{job_id}/events",
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}}}, 401: ERRORS[401], 404: ERRORS[404]},
    )
    async def job_events(job_id: str, owner: Owner) -> StreamingResponse:
        """Server-sent events: ``state`` first (the job now), then ``started``,
        ``progress``, ``preview`` (a JPEG data: URL), ``warning``, and one of ``done``,
        ``failed``, ``cancelled``, after which the stream ends."""
        job = service.job_of(job_id, owner)
        subscriber = manager.hub.subscribe(job.id, asyncio.get_running_loop())

        async def stream() -> AsyncIterator[str]:
            try:
                now = manager.store.get(job.id) or job
                yield _sse("state", describe_job(now))
                picture = manager.folder(job.id) / PREVIEW
                if picture.is_file() and now.state != "done":
                    data = await run_in_threadpool(picture.read_bytes)
                    yield _sse(
                        "preview",
                        {
                            "step": now.step,
                            "total": now.total,
                            "image": "data:image/jpeg;base64," + base64.b64encode(data).decode(),
                        },
                    )
                if now.final:
                    yield _sse(
                        now.state,
                        {
                            "id": now.id,
                            "state": now.state,
                            "error": now.error,
                            "result": describe_job(now)["links"]["result"],
                        },
                    )
                    return
                while True:
                    try:
                        message = await asyncio.wait_for(subscriber.queue.get(), 15)
                    except TimeoutError:
                        yield ": keep-alive\n\n"
                        continue
                    yield _sse(message.kind, message.data, message.seq)
                    if message.kind in ("done", "failed", "cancelled"):
                        return
            finally:
                manager.hub.unsubscribe(subscriber)

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @app.post(
        "/stylize",
        response_class=Response,
        responses={200: {"content": {"image/png": {}}}, **submit_responses},
    )
    async def stylize_now(
        request: Request,
        owner: Owner,
        content: Annotated[UploadFile, File(description="the content image")],
        style: Annotated[list[UploadFile], File(description="style images (repeat)")],
        mask: Annotated[UploadFile | None, File(description="label image")] = None,
        method: Annotated[str, Form(description="a one-pass method: adain, wct")] = "adain",
        options: Annotated[str, Form(description="JSON object of options")] = "{}",
        styles: Annotated[str, Form(description="JSON list of {weight, layers}")] = "[]",
        regions: Annotated[str | None, Form(description="JSON object")] = None,
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
        loop = asyncio.get_running_loop()
        finished: asyncio.Future[Job] = loop.create_future()

        def settle(done: Job) -> None:
            if not finished.done():
                finished.set_result(done)

        manager.when_done(job.id, lambda done: loop.call_soon_threadsafe(settle, done))
        deadline = time.monotonic() + config.job_timeout + 60
        while not finished.done():
            await asyncio.wait({finished}, timeout=0.5)
            if finished.done():
                break
            if await request.is_disconnected():
                manager.cancel(job.id)
                return Response(status_code=499)
            if time.monotonic() > deadline:
                manager.cancel(job.id)
                raise ApiError(504, f"job {job.id} did not finish in time")
        done = finished.result()
        headers = {"X-Job-Id": done.id}
        if done.state == "done":
            data = await run_in_threadpool((manager.folder(done.id) / RESULT).read_bytes)
            return Response(data, media_type="image/png", headers=headers)
        if done.state == "failed" and (done.error or "").startswith("internal error"):
            raise ApiError(500, done.error or "internal error", headers)
        raise ApiError(422 if done.state == "failed" else 409, done.error or done.state, headers)

    return app


def _version() -> str:
    from brushwork import __version__

    return __version__


__all__ = ["ServiceConfig", "create_app"]
