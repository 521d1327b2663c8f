"""The HTTP API and the page (FastAPI). :func:`create_app` builds an app around a
:class:`~brushwork.service.state.Service` (``app.state.service``: the job manager, the
config); ``brushwork serve`` runs it on uvicorn. The routes are in
:mod:`brushwork.service.routes`, one router per what they serve:

* ``GET /`` the page; ``GET /static/...`` its files; ``GET /docs`` the OpenAPI docs
  (Swagger UI served from this server when ``swagger-ui-bundle-v2`` is installed, else a
  plain HTML list of the operations: never from a CDN, so it works offline),
  ``GET /openapi.json`` the schema (:mod:`~brushwork.service.routes.docs`).
* ``GET /health``; ``GET /methods`` (methods with the options a job may set, controls,
  limits); ``GET /models``; ``GET /examples``, ``GET /examples/{name}`` (bundled images)
  (:mod:`~brushwork.service.routes.catalog`).
* ``POST /jobs`` (multipart: ``content``, ``style`` (repeatable), optional ``mask``,
  ``method``, ``options`` (JSON object), ``styles`` (JSON list of weights / layers),
  ``regions``, ``kind``: ``image``, or ``video`` with a video file as ``content``) → ``202``
  and the job; ``GET /jobs`` (this token's newest);
  ``GET /jobs/{id}``; ``GET /jobs/{id}/events`` (server-sent events);
  ``GET /jobs/{id}/result`` (PNG, or MP4 for a video job); ``GET /jobs/{id}/preview`` (JPEG);
  ``DELETE /jobs/{id}`` (cancel a queued or running job; forget a finished one)
  (:mod:`~brushwork.service.routes.jobs`).
* ``POST /stylize``: the same form for one-pass methods, answered with the PNG
  (:mod:`~brushwork.service.routes.stylize`).

JSON unless said; errors are ``{"error": "one line"}`` with the CLI's messages. With
tokens, every request but ``/`` and ``/static/...`` needs one, the docs included; the check
comes first (:class:`~brushwork.service.uploads.TokenGate`), before any body is read.
Handlers that read the index (SQLite) run in threads, never in the event loop.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from brushwork.errors import BrushworkError
from brushwork.service.config import ServiceConfig
from brushwork.service.routes import ROUTERS
from brushwork.service.routes.docs import mount_static
from brushwork.service.schema import build_openapi
from brushwork.service.state import Service
from brushwork.service.uploads import (
    ApiError,
    BodyLimit,
    QueueGate,
    RequestGuard,
    TokenGate,
    public_message,
)

log = logging.getLogger("brushwork.service")
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "localhost.localdomain"}
DESCRIPTION = (
    "Neural style transfer as a service: submit jobs, follow "
    "their events, fetch results. Errors are JSON "
    '`{"error": "..."}` with the command line\'s messages. With a token, every '
    "request but the page's needs `Authorization: Bearer TOKEN`."
)


class ServiceApp(FastAPI):
    """The service's FastAPI app, whose schema is written for its config
    (``state.service.config``) by :func:`~brushwork.service.schema.build_openapi`."""

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            self.openapi_schema = build_openapi(self, self.state.service.config)
        return self.openapi_schema


def create_app(
    config: ServiceConfig | None = None,
    *,
    host: str | None = None,
    allow_hosts: tuple[str, ...] | None = None,
) -> FastAPI:
    """The app for ``config`` (validated here; ``host`` and ``allow_hosts`` replace the
    config's); its workers start with the app (lifespan) and stop with it."""
    config = _configured(config or ServiceConfig(), host, allow_hosts)
    service = Service(config)
    app = ServiceApp(
        title="brushwork",
        version=_version(),
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        description=DESCRIPTION,
        exception_handlers=ERROR_HANDLERS,
    )
    app.state.service = service
    app.state.manager = service.manager
    add_middleware(app, service)
    mount_static(app)
    for router in ROUTERS:
        app.include_router(router)
    return app


def _configured(
    config: ServiceConfig, host: str | None, allow_hosts: tuple[str, ...] | None
) -> ServiceConfig:
    """``config`` with ``host`` and ``allow_hosts`` where given, validated."""
    changes: dict[str, Any] = {}
    if host is not None:
        changes["host"] = host
    if allow_hosts is not None:
        changes["allow_hosts"] = tuple(allow_hosts)
    if changes:
        config = dataclasses.replace(config, **changes)
    config.validate()
    return config


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The app's workers run while it serves."""
    manager = app.state.manager
    await run_in_threadpool(manager.start)
    try:
        yield
    finally:
        await run_in_threadpool(manager.stop)


def add_middleware(app: FastAPI, service: Service) -> None:
    """The middlewares, outermost first: CORS (so that every answer, refusals included,
    carries its headers), Host and Origin, the token (before any body is read), the body
    limit, the queue gate, then the app. Starlette runs the last one added first."""
    config = service.config
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


# ----------------------------------------------------------------------------- errors


async def api_error(request: Request, error: ApiError) -> JSONResponse:
    """An :class:`ApiError`: its status, message and headers."""
    return JSONResponse({"error": str(error)}, status_code=error.status, headers=error.headers)


async def user_error(request: Request, error: BrushworkError) -> JSONResponse:
    """A :class:`BrushworkError` (bad options or inputs): ``422``, without server paths."""
    return JSONResponse({"error": public_message(error)}, status_code=422)


async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
    """A form FastAPI refused: ``422``, its first three problems on one line."""
    problems = []
    for item in error.errors()[:3]:
        where = ".".join(str(p) for p in item.get("loc", ())[1:]) or "request"
        problems.append(f"{where}: {str(item.get('msg', 'invalid')).lower()}")
    return JSONResponse({"error": "; ".join(problems) or "invalid request"}, status_code=422)


async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
    """Starlette's own refusals (404 of an unknown path, 405): as every other error."""
    detail = error.detail if isinstance(error.detail, str) else "request refused"
    return JSONResponse(
        {"error": public_message(detail)},
        status_code=error.status_code,
        headers=getattr(error, "headers", None),
    )


async def internal(request: Request, error: Exception) -> JSONResponse:
    """Anything else: logged whole, answered ``500`` with the error's type only."""
    log.exception("internal error on %s %s", request.method, request.url.path)
    return JSONResponse({"error": f"internal error ({type(error).__name__})"}, status_code=500)


ERROR_HANDLERS: dict[int | type[Exception], Any] = {
    ApiError: api_error,
    BrushworkError: user_error,
    RequestValidationError: invalid,
    StarletteHTTPException: http_error,
    Exception: internal,
}
"""Every error as ``{"error": "one line"}``."""


def _version() -> str:
    from brushwork import __version__

    return __version__


__all__ = ["ServiceConfig", "create_app"]
