"""The page and the API's docs: ``GET /`` the page, ``/static/...`` its files, ``GET /docs``
the OpenAPI docs (Swagger UI served from this server when ``swagger-ui-bundle-v2`` is
installed, else a plain HTML list of the operations: never from a CDN, so it works
offline)."""

# no `from __future__ import annotations`: FastAPI reads these annotations at run time
from html import escape
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parent.parent / "static"
SWAGGER_ASSETS = "/static/swagger-ui"
PAGE_POLICY = (
    "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
    "object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
"""The page's Content-Security-Policy: its own scripts, styles and requests only (it has no
inline script or style); images also from data: (previews) and blob: (uploads, results),
videos from blob: (a video job's upload and result)."""
DOCS_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'"
)
"""The plain docs page's policy: no script, no request to anywhere."""

router = APIRouter()


def swagger_ui_folder() -> Path | None:
    """Swagger UI's files from the ``swagger-ui-bundle-v2`` package (Swagger UI 5, which
    reads OpenAPI 3.1), if installed: ``/docs`` then works offline."""
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:
        return None
    folder = Path(str(swagger_ui_path))
    return folder if (folder / "swagger-ui-bundle.js").is_file() else None


def mount_static(app: FastAPI) -> None:
    """Serve the page's files at ``/static`` and Swagger UI's, when installed, at
    :data:`SWAGGER_ASSETS` (mounted first: the longer prefix first); ``app.state.swagger``
    says whether ``/docs`` has Swagger UI."""
    swagger = swagger_ui_folder()
    if swagger is not None:
        app.mount(SWAGGER_ASSETS, StaticFiles(directory=swagger), name="swagger-ui")
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.state.swagger = swagger is not None


@router.get("/", include_in_schema=False)
async def page() -> FileResponse:
    """The page (``static/index.html``) under :data:`PAGE_POLICY`."""
    return FileResponse(
        STATIC / "index.html",
        media_type="text/html",
        headers={"Cache-Control": "no-cache", "Content-Security-Policy": PAGE_POLICY},
    )


@router.get("/docs", include_in_schema=False)
async def docs(request: Request) -> HTMLResponse:
    """Swagger UI from this server, or :func:`plain_docs` where it is not installed."""
    from fastapi.openapi.docs import get_swagger_ui_html

    if not request.app.state.swagger:  # no Swagger UI here: a plain page, nothing from elsewhere
        return HTMLResponse(
            plain_docs(request.app.openapi()),
            headers={"Content-Security-Policy": DOCS_POLICY},
        )
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="brushwork: HTTP API",
        swagger_js_url=f"{SWAGGER_ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{SWAGGER_ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{SWAGGER_ASSETS}/favicon-32x32.png",
        # no badge from validator.swagger.io: /docs asks nothing of other servers
        swagger_ui_parameters={"validatorUrl": None},
    )


def plain_docs(schema: dict[str, Any]) -> str:
    """``/docs`` without Swagger UI: every operation of ``schema`` with its summary, form
    fields and answers, in plain HTML (no script, nothing fetched from other servers)."""
    rows = [
        _operation(schema, path, verb, operation)
        for path, operations in schema.get("paths", {}).items()
        for verb, operation in operations.items()
    ]
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


def _operation(schema: dict[str, Any], path: str, verb: str, operation: dict[str, Any]) -> str:
    """One operation of :func:`plain_docs`: its summary, description, parameters, form
    fields and answers."""
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
    return (
        "<section><h2><code>"
        f"{escape(verb.upper())} {escape(path)}</code></h2>"
        f"<p>{escape(operation.get('summary', ''))}</p>"
        f"<pre>{escape(operation.get('description', '').strip())}</pre>"
        + (f"<p>Parameters: <code>{escape(', '.join(params))}</code></p>" if params else "")
        + (f"<p>Form fields: <code>{escape(', '.join(fields))}</code></p>" if fields else "")
        + f"<p>Answers: {answers}</p></section>"
    )
