"""The HTTP API and the page (FastAPI). :func:`create_app` builds an app around a
:class:`~brushwork.service.jobs.JobManager`; ``brushwork serve`` runs it on uvicorn.

Endpoints (JSON unless said; errors are ``{"error": "one line"}`` with the CLI's messages):

* ``GET /`` the page; ``GET /static/...`` its files; ``GET /docs`` the OpenAPI docs
  (Swagger UI served from this server when ``swagger-ui-bundle-v2`` is installed, else a
  plain HTML list of the operations: never from a CDN, so it works offline),
  ``GET /openapi.json`` the schema.
* ``GET /health``; ``GET /methods`` (methods with the options a job may set, controls,
  limits); ``GET /models``; ``GET /examples``, ``GET /examples/{name}`` (bundled images).
* ``POST /jobs`` (multipart: ``content``, ``style`` (repeatable), optional ``mask``,
  ``method``, ``options`` (JSON object), ``styles`` (JSON list of weights / layers),
  ``regions``, ``kind``: ``image``, or ``video`` with a video file as ``content``) → ``202``
  and the job; ``GET /jobs`` (this token's newest);
  ``GET /jobs/{id}``; ``GET /jobs/{id}/events`` (server-sent events);
  ``GET /jobs/{id}/result`` (PNG, or MP4 for a video job); ``GET /jobs/{id}/preview`` (JPEG);
  ``DELETE /jobs/{id}`` (cancel a queued or running job; forget a finished one).
* ``POST /stylize``: the same form for one-pass methods, answered with the PNG.

With tokens, every request but ``/`` and ``/static/...`` needs one, the docs included; the
check comes first (:class:`~brushwork.service.uploads.TokenGate`), before any body is read.
Handlers that read the index (SQLite) run in threads, never in the event loop.
"""

# no `from __future__ import annotations`: FastAPI reads these annotations at run time
import asyncio
import base64
import contextlib
import dataclasses
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
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from brushwork.errors import BrushworkError
from brushwork.service.config import ServiceConfig
from brushwork.service.jobs import (
    PREVIEW,
    RESULT,
    RESULT_TYPES,
    JobManager,
    ReadersFull,
    describe_job,
    new_id,
    result_name,
    valid_id,
)
from brushwork.service.spec import (
    JobSpec,
    available_kinds,
    check_kind,
    check_video_options,
    client_controls,
    client_options,
    client_video_options,
    missing_files,
    one_pass,
    parse_options,
    parse_regions,
    parse_styles,
    split_video,
)
from brushwork.service.store import Job
from brushwork.service.uploads import (
    OWNER_KEY,
    ApiError,
    BodyLimit,
    QueueGate,
    RequestGuard,
    TokenGate,
    check_decodes,
    check_header,
    check_video,
    display_name,
    public_message,
    store_upload,
    sync_folder,
)

log = logging.getLogger("brushwork.service")
STATIC = Path(__file__).resolve().parent / "static"
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "localhost.localdomain"}
KEEPALIVE = 15.0
"""Seconds between two keep-alive comments of an idle event stream."""
METHODS_TTL = 30.0
"""Seconds ``GET /methods`` is kept before it is built again (networks installed meanwhile
show up)."""
PAGE_POLICY = (
    "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
    "object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
"""The page's Content-Security-Policy: its own scripts, styles and requests only (it has no
inline script or style); images also from data: (previews) and blob: (uploads, results),
videos from blob: (a video job's upload and result)."""
SWAGGER_ASSETS = "/static/swagger-ui"


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
        (429, "queue full, or this job has all the event readers it may; see Retry-After"),
        (503, "the server is stopping, or has all the event readers it may"),
    )
}

JOB_LINKS = {
    name: {"operationId": operation, "parameters": {"job_id": "$response.body#/id"}}
    for name, operation in (
        ("GetJob", "get_job"),
        ("DeleteJob", "delete_job"),
        ("GetResult", "job_result"),
        ("GetPreview", "job_preview"),
    )
}
"""OpenAPI links from a submission to what can be done with its id (schemathesis follows
them in its stateful run)."""


def _binary_files(schema: Any) -> None:
    """Mark every uploaded file of the schema ``format: binary`` (as OpenAPI 3.0 writes
    it), besides pydantic's ``contentMediaType``, so clients and test generators send
    bytes; an optional file is a file that may be left out (not a file-or-null, which a
    multipart form cannot send)."""
    if isinstance(schema, dict):
        if schema.get("type") == "string" and schema.get("contentMediaType"):
            schema.setdefault("format", "binary")
        choices = schema.get("anyOf")
        if isinstance(choices, list) and {"type": "null"} in choices:
            files = [c for c in choices if isinstance(c, dict) and c.get("contentMediaType")]
            if len(files) == 1 and len(choices) == 2:
                del schema["anyOf"]
                schema.update(files[0])
        for value in schema.values():
            _binary_files(value)
    elif isinstance(schema, list):
        for value in schema:
            _binary_files(value)


# ----------------------------------------------------------------------------- helpers


def _sse(kind: str, data: dict[str, Any], seq: int | None = None) -> str:
    head = f"id: {seq}\n" if seq is not None else ""
    return f"{head}event: {kind}\ndata: {json.dumps(data, allow_nan=False)}\n\n"


def owner_of(request: Request) -> str:
    """The owner id :class:`~brushwork.service.uploads.TokenGate` found for the request's
    token ('' when the server has no tokens)."""
    return str(request.scope.get(OWNER_KEY, ""))


def _method_names() -> list[str]:
    from brushwork.methods import method_names

    return list(method_names())


class Service:
    """The app's state: the manager, the config, the bundled examples."""

    def __init__(self, config: ServiceConfig) -> None:
        self.config = config
        self.manager = JobManager(config)
        self.decoding = threading.Semaphore(2)
        self._examples: dict[str, bytes] = {}
        self._methods: tuple[float, dict[str, Any]] | None = None
        self._methods_lock = threading.Lock()

    # ------------------------------------------------------------- jobs

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
        sync: bool = False,
    ) -> Job:
        """Check a submission completely and build its folder; the job, not yet queued.
        Runs in a thread. Everything that needs no upload is checked before any upload is
        stored (the form, the options, ``sync``: ``POST /stylize`` takes one-pass runs
        only, the files the options name); then the uploads are stored and synced, checked
        from their headers, planned (sizes against ``max_side``) and decoded once."""
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
            method,
            options,
            max_side=config.max_side,
            extra_models=manager.extra_models,
            kind=kind,
        )
        video = kind == "video"
        if video:
            check_video_options(values)
        weights = parse_styles(styles, len(style))
        region_map = parse_regions(regions)
        if region_map is not None and mask is None:
            raise ApiError(422, "regions need a label image (mask)")
        painter = Painter(
            method,
            manager.run_values(JobSpec(kind, method, split_video(values)[0] if video else values)),
            encoder=config.encoder,
            cache_size=0,
        )
        if sync and not one_pass(painter.stylizer.method):
            raise ApiError(
                422,
                f"POST /stylize is for one-pass methods; {method} with these options "
                "optimizes for many steps: use POST /jobs and follow its events",
            )
        painter.stylizer.check_files()
        job_id = new_id()
        folder = manager.folder(job_id)
        folder.mkdir()
        labels: dict[Path | str, str] = {}
        info = None
        try:
            files = [("content", "content", content)] + [
                (f"style-{n}", f"style {n}", upload) for n, upload in enumerate(style, 1)
            ]
            if mask is not None:
                files.append(("mask", "mask", mask))
            for name, label, upload in files:
                path = folder / name
                store_upload(upload, path)
                if video and name == "content":
                    with self.decoding:
                        info = check_video(
                            path,
                            label,
                            max_pixels=config.max_pixels,
                            max_frames=config.max_video_frames,
                            max_seconds=config.max_video_seconds,
                            partial=bool(values.get("partial", False)),
                        )
                    continue
                labels[path] = label
                check_header(path, label, config.max_pixels)
            sync_folder(folder)
            style_list = [
                Style(
                    folder / f"style-{n}",
                    w["weight"],
                    None if w["layers"] is None else tuple(w["layers"]),
                )
                for n, w in enumerate(weights, 1)
            ]
            mask_path = folder / "mask" if mask is not None else None
            labels_all = {**labels, folder / "content": "content"}
            try:
                if info is not None:
                    plan = self._plan_video(painter, info.size, style_list, mask_path)
                else:
                    plan = painter.check(folder / "content", style_list, mask_path)
            except BrushworkError as error:
                raise ApiError(422, public_message(error, labels_all)) from None
            self._check_sides(plan)
            total = plan.total_steps
            if info is not None:  # one step per frame
                total = min(info.frames, values.get("max_frames") or info.frames)
            with self.decoding:
                for path, label in labels.items():
                    check_decodes(Path(path), label, config.max_pixels)
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
            return Job(
                job_id,
                owner,
                kind,
                method,
                "queued",
                spec.to_json(),
                time.time(),
                total=total,
            )
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise

    def _plan_video(
        self, painter: Any, size: tuple[int, int], styles: list[Any], mask: Path | None
    ) -> Any:
        """A video job's plan for frames of ``size`` (what :meth:`Painter.check` tells of an
        image, from the styles' and mask's headers)."""
        from brushwork.api import image_size
        from brushwork.methods.base import check_style_weights

        stylizer = painter.stylizer
        limit = self.config.max_pixels
        check_style_weights([s.weight for s in styles])
        sizes = [image_size(s.image, f"style {n}", limit) for n, s in enumerate(styles, 1)]
        if mask is not None:
            image_size(mask, "mask", limit)
        stylizer.check_files()
        return stylizer.plan(size, sizes, [s.layers for s in styles])

    def _check_sides(self, plan: Any) -> None:
        """Refuse a plan whose output or any style image would be larger than
        ``max_side`` (a small output with a large style scale plans a large style)."""
        limit = self.config.max_side
        width, height = plan.content_size
        if max(width, height) > limit:
            raise ApiError(
                422,
                f"the output would be {width}x{height} px, over this server's {limit} px; "
                "give a smaller size",
            )
        for number, (w, h) in enumerate(plan.style_sizes, 1):
            if max(w, h) > limit:
                raise ApiError(
                    422,
                    f"style {number} would be {w}x{h} px, over this server's {limit} px; "
                    "give a smaller style_scale or style_size",
                )

    async def submit(self, owner: str, fields: dict[str, Any], *, sync: bool = False) -> Job:
        """Accept a submission and queue it (``sync``: for ``POST /stylize``)."""
        manager = self.manager
        if await run_in_threadpool(manager.queue_full):
            raise self.too_busy()
        job = await run_in_threadpool(self.accept, owner, sync=sync, **fields)
        if not await run_in_threadpool(manager.submit, job):
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

    def refusal(self) -> tuple[int, str, dict[str, str]] | None:
        """Why a submission is refused before its body is read (reads the index)."""
        if not self.manager.queue_full() and not self.manager.stopping.is_set():
            return None
        error = self.too_busy()
        return error.status, str(error), error.headers

    # ------------------------------------------------------------- listings

    def methods(self) -> dict[str, Any]:
        """``GET /methods`` (built at most every :data:`METHODS_TTL` seconds)."""
        with self._methods_lock:
            if self._methods is not None and time.monotonic() - self._methods[0] < METHODS_TTL:
                return self._methods[1]
            built = self._build_methods()
            self._methods = (time.monotonic(), built)
            return built

    def _build_methods(self) -> dict[str, Any]:
        from brushwork.methods import describe, get_entry

        extra = self.manager.extra_models
        found = []
        for entry in describe():
            name = entry["name"]
            missing = missing_files(name)
            entry = dict(entry, options=client_options(name, extra, missing))
            # the rule of POST /stylize, for the method's default options
            entry["sync"] = one_pass(get_entry(name).load()())
            entry["ready"] = "" not in missing
            entry["problem"] = missing.get("")
            model = next((o for o in entry["options"] if o["name"] == "model"), None)
            if model is not None:  # the bundled ones installed, and the operator's
                entry["models"] = list(model["choices"])
            found.append(entry)
        c = self.config
        return {
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
                "max_video_frames": c.max_video_frames,
                "max_video_seconds": c.max_video_seconds,
            },
            "kinds": list(available_kinds()),
            # what a video job may set besides a method's options (None: no video jobs here)
            "video": {"options": client_video_options()} if "video" in available_kinds() else None,
        }

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


def swagger_ui_folder() -> Path | None:
    """Swagger UI's files from the ``swagger-ui-bundle-v2`` package (Swagger UI 5, which
    reads OpenAPI 3.1), if installed: ``/docs`` then works offline."""
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:
        return None
    folder = Path(str(swagger_ui_path))
    return folder if (folder / "swagger-ui-bundle.js").is_file() else None


DOCS_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'"
)
"""The plain docs page's policy: no script, no request to anywhere."""


def plain_docs(schema: dict[str, Any]) -> str:
    """``/docs`` without Swagger UI: every operation of ``schema`` with its summary, form
    fields and answers, in plain HTML (no script, nothing fetched from other servers)."""
    from html import escape

    rows = []
    for path, operations in schema.get("paths", {}).items():
        for verb, operation in operations.items():
            answers = ", ".join(
                f"{code} {escape(str(r.get('description', '')))}"
                for code, r in operation.get("responses", {}).items()
            )
            body = operation.get("requestBody", {}).get("content", {})
            fields = []
            for media in body.values():
                ref = str(media.get("schema", {}).get("$ref", ""))
                found = schema.get("components", {}).get("schemas", {}).get(ref.rsplit("/", 1)[-1])
                fields += list((found or media.get("schema", {})).get("properties", {}))
            params = [p.get("name", "") for p in operation.get("parameters", [])]
            rows.append(
                "<section><h2><code>"
                f"{escape(verb.upper())} {escape(path)}</code></h2>"
                f"<p>{escape(operation.get('summary', ''))}</p>"
                f"<pre>{escape(operation.get('description', '').strip())}</pre>"
                + (f"<p>Parameters: <code>{escape(', '.join(params))}</code></p>" if params else "")
                + (
                    f"<p>Form fields: <code>{escape(', '.join(fields))}</code></p>"
                    if fields
                    else ""
                )
                + f"<p>Answers: {answers}</p></section>"
            )
    title = escape(str(schema.get("info", {}).get("title", "API")))
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}: HTTP API</title>"
        "<style>body{font-family:sans-serif;max-width:60rem;margin:auto;padding:1rem}"
        "pre{white-space:pre-wrap}</style></head><body>"
        f"<h1>{title}: HTTP API</h1>"
        f"<p>{escape(str(schema.get('info', {}).get('description', '')))}</p>"
        '<p>The machine-readable schema: <a href="/openapi.json">/openapi.json</a>. '
        "(Install <code>swagger-ui-bundle-v2</code> for the interactive Swagger UI.)</p>"
        + "".join(rows)
        + "</body></html>"
    )


# ----------------------------------------------------------------------------- the app


def create_app(
    config: ServiceConfig | None = None,
    *,
    host: str | None = None,
    allow_hosts: tuple[str, ...] | None = None,
) -> FastAPI:
    """The app for ``config`` (validated here; ``host`` and ``allow_hosts`` replace the
    config's); its workers start with the app (lifespan) and stop with it."""
    config = config or ServiceConfig()
    changes: dict[str, Any] = {}
    if host is not None:
        changes["host"] = host
    if allow_hosts is not None:
        changes["allow_hosts"] = tuple(allow_hosts)
    if changes:
        config = dataclasses.replace(config, **changes)
    config.validate()
    service = Service(config)
    manager = service.manager

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(manager.start)
        try:
            yield
        finally:
            await run_in_threadpool(manager.stop)

    app = FastAPI(
        title="brushwork",
        version=_version(),
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        description="Neural style transfer as a service: submit jobs, follow "
        "their events, fetch results. Errors are JSON "
        '`{"error": "..."}` with the command line\'s messages. With a token, every '
        "request but the page's needs `Authorization: Bearer TOKEN`.",
    )
    app.state.service = service
    app.state.manager = manager

    # middlewares, outermost first: CORS (so that every answer, refusals included, carries
    # its headers), Host and Origin, the token (before any body is read), the body limit,
    # the queue gate, then the app. Starlette runs the last one added first.
    app.add_middleware(
        QueueGate,
        paths=("/jobs", "/stylize"),
        refusal=service.refusal,
        limit=config.max_upload,
    )
    app.add_middleware(BodyLimit, limit=config.max_upload)
    app.add_middleware(TokenGate, tokens=config.tokens)
    hosts = None
    if not config.tokens and "*" not in config.allow_hosts:
        hosts = (
            LOOPBACK_NAMES
            | {config.host.strip("[]").lower()}
            | {h.lower() for h in config.allow_hosts}
        )
    app.add_middleware(RequestGuard, hosts=hosts, origins=set(config.cors))
    if config.cors:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(config.cors),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
            expose_headers=["Retry-After", "X-Job-Id", "Location"],
        )

    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> JSONResponse:
        return JSONResponse({"error": str(error)}, status_code=error.status, headers=error.headers)

    @app.exception_handler(BrushworkError)
    async def user_error(request: Request, error: BrushworkError) -> JSONResponse:
        return JSONResponse({"error": public_message(error)}, status_code=422)

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
        return JSONResponse(
            {"error": public_message(detail)},
            status_code=error.status_code,
            headers=getattr(error, "headers", None),
        )

    @app.exception_handler(Exception)
    async def internal(request: Request, error: Exception) -> JSONResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return JSONResponse({"error": f"internal error ({type(error).__name__})"}, status_code=500)

    Owner = Annotated[str, Depends(owner_of)]

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            _binary_files(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    # ------------------------------------------------------------------ page and docs

    swagger = swagger_ui_folder()
    if swagger is not None:  # before /static: the longer prefix first
        app.mount(SWAGGER_ASSETS, StaticFiles(directory=swagger), name="swagger-ui")
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(
            STATIC / "index.html",
            media_type="text/html",
            headers={"Cache-Control": "no-cache", "Content-Security-Policy": PAGE_POLICY},
        )

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        from fastapi.openapi.docs import get_swagger_ui_html

        assets = {
            "swagger_js_url": f"{SWAGGER_ASSETS}/swagger-ui-bundle.js",
            "swagger_css_url": f"{SWAGGER_ASSETS}/swagger-ui.css",
            "swagger_favicon_url": f"{SWAGGER_ASSETS}/favicon-32x32.png",
        }
        if swagger is None:  # no Swagger UI here: a plain page, still nothing from elsewhere
            return HTMLResponse(
                plain_docs(openapi()),
                headers={"Content-Security-Policy": DOCS_POLICY},
            )
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="brushwork: HTTP API",
            # no badge from validator.swagger.io: /docs asks nothing of other servers
            swagger_ui_parameters={"validatorUrl": None},
            **assets,
        )

    # ------------------------------------------------------------------ listings

    @app.get(
        "/health", operation_id="health", response_model=HealthOut, responses={401: ERRORS[401]}
    )
    def health(owner: Owner) -> dict[str, Any]:
        """Whether the server answers, with its workers, job counts and job kinds."""
        return {
            "status": "stopping" if manager.stopping.is_set() else "ok",
            "workers": config.workers,
            "jobs": manager.store.counts(),
            "readers": manager.hub.count(),
            "uptime_seconds": round(time.time() - manager.started_at, 3),
            "kinds": list(available_kinds()),
        }

    @app.get("/methods", operation_id="methods", responses={401: ERRORS[401]})
    def methods(owner: Owner) -> dict[str, Any]:
        """Every method with the options a job may set (types, defaults, ranges, choices;
        ``unavailable``: what needs a network this server lacks), whether ``POST
        /stylize`` takes it with its defaults (``sync``), the controls every method shares,
        and this server's limits."""
        return service.methods()

    @app.get("/models", operation_id="models", responses={401: ERRORS[401]})
    def models_list(owner: Owner) -> dict[str, Any]:
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

    @app.get("/examples", operation_id="examples", responses={401: ERRORS[401]})
    async def examples_list(owner: Owner) -> dict[str, Any]:
        """The bundled example images (content photos and styles)."""
        from brushwork import examples

        return {"contents": list(examples.CONTENTS), "styles": list(examples.STYLES)}

    @app.get(
        "/examples/{name}",
        operation_id="example",
        response_class=Response,
        responses={200: {"content": {"image/png": {}}}, 401: ERRORS[401], 404: ERRORS[404]},
    )
    def example(name: str, owner: Owner) -> Response:
        """One bundled example image as PNG."""
        return Response(
            service.example(name),
            media_type="image/png",
            headers={"Cache-Control": "max-age=86400"},
        )

    # ------------------------------------------------------------------ jobs

    submit_responses = {k: ERRORS[k] for k in (401, 413, 415, 422, 429, 503)}
    method_form = {"enum": _method_names()}
    json_form = {"format": "json"}  # a JSON text (object or list), not any string
    styles_form = {"minItems": 1, "maxItems": config.max_styles}

    @app.post(
        "/jobs",
        operation_id="create_job",
        status_code=202,
        response_model=JobOut,
        responses={
            **submit_responses,
            202: {"description": "the job, queued", "links": JOB_LINKS},
        },
    )
    async def create_job(
        owner: Owner,
        content: Annotated[
            UploadFile, File(description="the content image (kind video: a video file)")
        ],
        style: Annotated[
            list[UploadFile],
            File(description="style images (repeat)", json_schema_extra=styles_form),
        ],
        mask: Annotated[
            UploadFile | None, File(description="label image: one flat colour per region")
        ] = None,
        method: Annotated[
            str, Form(description="see GET /methods", json_schema_extra=method_form)
        ] = "gatys",
        options: Annotated[
            str,
            Form(
                description='JSON object of options and controls, e.g. {"size": 256}',
                json_schema_extra=json_form,
            ),
        ] = "{}",
        styles: Annotated[
            str,
            Form(
                description='JSON list, per style: {"weight": W, "layers": [...]}',
                json_schema_extra=json_form,
            ),
        ] = "[]",
        regions: Annotated[
            str | None,
            Form(
                description="JSON object: label colour → style number or null",
                json_schema_extra=json_form,
            ),
        ] = None,
        kind: Annotated[
            str, Form(description="job kind", json_schema_extra={"enum": list(available_kinds())})
        ] = "image",
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
        return JSONResponse(
            describe_job(job), status_code=202, headers={"Location": f"/jobs/{job.id}"}
        )

    @app.get(
        "/jobs", operation_id="list_jobs", response_model=JobsOut, responses={401: ERRORS[401]}
    )
    def list_jobs(owner: Owner, limit: Annotated[int, Query(ge=1, le=200)] = 50) -> dict[str, Any]:
        """This token's newest jobs."""
        found = manager.store.list(owner if config.tokens else None, limit)
        return {"jobs": [describe_job(j) for j in found]}

    @app.get(
        "/jobs/{job_id}",
        operation_id="get_job",
        response_model=JobOut,
        responses={401: ERRORS[401], 404: ERRORS[404]},
    )
    def get_job(job_id: str, owner: Owner) -> dict[str, Any]:
        """A job's state, progress, losses and timings."""
        return describe_job(service.job_of(job_id, owner))

    @app.delete(
        "/jobs/{job_id}",
        operation_id="delete_job",
        response_model=CancelOut,
        responses={
            202: {"model": CancelOut, "description": "running: stops at its next step or stage"},
            401: ERRORS[401],
            404: ERRORS[404],
        },
    )
    def delete_job(job_id: str, owner: Owner) -> JSONResponse:
        """Cancel a queued job (``200``), stop a running one at its next step or stage
        (``202``, state ``cancelling``), or forget a finished one and its files (``200``,
        state ``deleted``)."""
        job = service.job_of(job_id, owner)
        if job.final:
            manager.delete(job.id)
            return JSONResponse({"id": job.id, "state": "deleted"})
        state = manager.cancel(job.id) or "deleted"
        return JSONResponse(
            {"id": job.id, "state": state}, status_code=202 if state == "cancelling" else 200
        )

    @app.get(
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
        job_id: str, owner: Owner, download: Annotated[bool, Query()] = False
    ) -> FileResponse:
        """The finished image (PNG) or video (MP4); ``?download=true`` as an attachment."""
        job = service.job_of(job_id, owner)
        name = result_name(job.kind)
        path = manager.folder(job.id) / name
        if job.state != "done" or not path.is_file():
            why = f": {job.error}" if job.error else ""
            raise ApiError(409, f"job {job.id} is {job.state}{why}; no result")
        return FileResponse(
            path,
            media_type=RESULT_TYPES[job.kind],
            filename=f"brushwork-{job.id}{Path(name).suffix}",
            content_disposition_type="attachment" if download else "inline",
        )

    @app.get(
        "/jobs/{job_id}/preview",
        operation_id="job_preview",
        response_class=FileResponse,
        responses={200: {"content": {"image/jpeg": {}}}, 401: ERRORS[401], 404: ERRORS[404]},
    )
    def preview(job_id: str, owner: Owner) -> FileResponse:
        """The latest preview of an optimization (JPEG)."""
        job = service.job_of(job_id, owner)
        path = manager.folder(job.id) / PREVIEW
        if not path.is_file():
            raise ApiError(404, f"job {job.id} has no preview (yet)")
        return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    @app.get(
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
    async def job_events(job_id: str, owner: Owner) -> StreamingResponse:
        """Server-sent events: ``state`` first (the job now), then ``started``,
        ``progress``, ``preview`` (a JPEG data: URL), ``warning``, and one of ``done``,
        ``failed``, ``cancelled``, after which the stream ends. A job has at most
        ``--max-readers-per-job`` readers (one more: ``429``), the server
        ``--max-readers`` (``503``)."""
        job = await run_in_threadpool(service.job_of, job_id, owner)
        refused = manager.hub.refusal(job.id)
        if refused is not None:
            raise ApiError(refused.status, str(refused), {"Retry-After": "5"})

        async def stream() -> AsyncIterator[str]:
            # subscribed here, in the generator, so that the finally below always runs for
            # a subscription; before reading the state, so that no event falls between
            try:
                subscriber = manager.hub.subscribe(job.id, asyncio.get_running_loop())
            except ReadersFull as full:  # others came between the check and now
                yield _sse("error", {"status": full.status, "error": str(full)})
                return
            try:
                now = await run_in_threadpool(manager.store.get, job.id) or job
                yield _sse("state", describe_job(now))
                picture = manager.folder(job.id) / PREVIEW
                if now.state != "done" and await run_in_threadpool(picture.is_file):
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
                        message = await asyncio.wait_for(subscriber.queue.get(), KEEPALIVE)
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
        operation_id="stylize",
        response_class=Response,
        responses={
            200: {"content": {"image/png": {}}},
            **submit_responses,
            409: {"model": ErrorOut, "description": "the job was cancelled"},
            504: {"model": ErrorOut, "description": "the job did not finish in time"},
        },
    )
    async def stylize_now(
        request: Request,
        owner: Owner,
        content: Annotated[UploadFile, File(description="the content image")],
        style: Annotated[
            list[UploadFile],
            File(description="style images (repeat)", json_schema_extra=styles_form),
        ],
        mask: Annotated[UploadFile | None, File(description="label image")] = None,
        method: Annotated[
            str,
            Form(
                description="a method that paints in one pass with these options (GET "
                "/methods: sync)",
                json_schema_extra=method_form,
            ),
        ] = "adain",
        options: Annotated[
            str, Form(description="JSON object of options", json_schema_extra=json_form)
        ] = "{}",
        styles: Annotated[
            str, Form(description="JSON list of {weight, layers}", json_schema_extra=json_form)
        ] = "[]",
        regions: Annotated[
            str | None, Form(description="JSON object", json_schema_extra=json_form)
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
        loop = asyncio.get_running_loop()
        finished: asyncio.Future[Job] = loop.create_future()

        def settle(done: Job) -> None:
            if not finished.done():
                finished.set_result(done)

        await run_in_threadpool(
            manager.when_done, job.id, lambda done: loop.call_soon_threadsafe(settle, done)
        )
        deadline = time.monotonic() + config.job_timeout + 60
        while not finished.done():
            await asyncio.wait({finished}, timeout=0.5)
            if finished.done():
                break
            if await request.is_disconnected():
                await run_in_threadpool(manager.cancel, job.id)
                return Response(status_code=499)
            if time.monotonic() > deadline:
                await run_in_threadpool(manager.cancel, job.id)
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
