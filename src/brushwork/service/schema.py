"""The service's OpenAPI schema: the answer models, the error answers every route shares,
the links from a submission to what can be done with its id, the forms' schema hints, and
:func:`build_openapi`, which writes the schema of an app once its routes are in place.

A limit that depends on the server (``maxItems`` of the style uploads) is declared as
``{LIMIT: field}``, naming the :class:`~brushwork.service.config.ServiceConfig` field that
holds it; :func:`build_openapi` puts the server's value there, so the routes are declared
once, at import, for every server.
"""

# no `from __future__ import annotations`: pydantic and FastAPI read these annotations at run time
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field

from brushwork.service.config import ServiceConfig
from brushwork.service.spec import available_kinds


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
        (400, "not a form: a malformed multipart body or Content-Length"),
        (401, "missing or wrong bearer token"),
        (404, "no such job (unknown, expired, or another token's)"),
        (413, "upload over the byte or pixel limit"),
        (415, "not an image of a supported format"),
        (422, "bad options or inputs (the CLI's message)"),
        (429, "queue full, or this job has all the event readers it may; see Retry-After"),
        (503, "the server is stopping, or has all the event readers it may"),
    )
}
SUBMIT_ERRORS: dict[int | str, dict[str, Any]] = {
    code: ERRORS[code] for code in (400, 401, 413, 415, 422, 429, 503)
}
"""The error answers of a submission (``POST /jobs``, ``POST /stylize``)."""

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

JSON_FORM = {"format": "json"}
"""A form field holding a JSON text (object or list), not any string."""
LIMIT = "x-brushwork-max-items"
"""A schema key naming the config field that holds the ``maxItems`` of a list field."""
STYLES_FORM = {"minItems": 1, LIMIT: "max_styles"}
"""The style uploads: at least one, at most the server's ``max_styles``."""


def kinds_form() -> dict[str, Any]:
    """The ``kind`` field: the job kinds this server takes."""
    return {"enum": list(available_kinds())}


def method_form() -> dict[str, Any]:
    """The ``method`` field: a registered method."""
    from brushwork.methods import method_names

    return {"enum": list(method_names())}


def build_openapi(app: FastAPI, config: ServiceConfig) -> dict[str, Any]:
    """The schema of ``app``'s routes (what FastAPI's own ``openapi()`` writes, less its
    extras) with the server's limits filled in (then checked and ordered by FastAPI's
    model of a schema, as FastAPI writes it) and the uploads marked binary."""
    from fastapi.encoders import jsonable_encoder
    from fastapi.openapi.models import OpenAPI
    from fastapi.openapi.utils import get_openapi

    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    _server_limits(schema, config)
    schema = jsonable_encoder(OpenAPI(**schema), by_alias=True, exclude_none=True)
    _binary_files(schema)
    return schema


def _server_limits(schema: Any, config: ServiceConfig) -> None:
    """Replace every :data:`LIMIT` by ``maxItems``: the value of the config field it
    names."""
    if isinstance(schema, dict):
        if LIMIT in schema:
            schema["maxItems"] = getattr(config, schema.pop(LIMIT))
        values: Any = schema.values()
    elif isinstance(schema, list):
        values = schema
    else:
        return
    for value in values:
        _server_limits(value, config)


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
