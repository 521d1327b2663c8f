"""What comes in: request bodies bounded while they stream, uploads stored under names the
server chooses, images checked from their headers before anything is decoded.

* :class:`BodyLimit` answers ``413`` to a body over the limit: at once from its
  ``Content-Length``, or as soon as the bytes received pass it (chunked uploads), so an
  oversized upload is never read whole.
* :class:`RequestGuard` refuses unexpected ``Host`` headers while the server runs without
  a token (DNS rebinding) and state-changing requests from pages of other origins (unless
  allowed with ``--cors``).
* :func:`store_upload` writes an upload to a fixed name in the job folder (the client's
  file name is kept for display only); :func:`check_header` reads the size from the
  header (``413`` over the pixel limit, ``415`` for what is not an image);
  :func:`check_decodes` then decodes it (``422`` when truncated or corrupt).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from brushwork.errors import BrushworkError


class ApiError(Exception):
    """An HTTP error with a one-line message (the body is ``{"error": message}``)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(" ".join(str(message).split()))
        self.status = status
        self.headers = headers or {}


async def send_error(
    send: Any, status: int, message: str, headers: dict[str, str] | None = None
) -> None:
    """Send a JSON error response on a raw ASGI ``send``."""
    body = json.dumps({"error": message}).encode()
    raw = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


class BodyLimit:
    """ASGI middleware: request bodies of at most ``limit`` bytes (see the module
    docstring)."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    def _message(self, size: int | None = None) -> str:
        given = f" is {size:,} bytes," if size is not None else ""
        return (
            f"the upload{given} over this server's limit of {self.limit:,} bytes "
            "(all files together)"
        )

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        length = _header(scope, b"content-length")
        if length is not None:
            try:
                size = int(length)
            except ValueError:
                await send_error(send, 400, f"bad Content-Length header: {length[:40]!r}")
                return
            if size > self.limit:
                await send_error(send, 413, self._message(size))
                return
        received = 0
        exceeded = False
        started = False

        async def limited() -> Any:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    exceeded = True
                    raise _TooLarge
            return message

        async def guarded(message: Any) -> None:
            nonlocal started
            if exceeded:
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await send_error(send, 413, self._message())
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited, guarded)
        except _TooLarge:
            if not started:
                await send_error(send, 413, self._message())


class RequestGuard:
    """ASGI middleware: ``hosts`` (None: any) the Host header may name; ``origins`` that
    may send POST and DELETE from their pages besides the server's own."""

    def __init__(self, app: Any, hosts: set[str] | None, origins: set[str]) -> None:
        self.app = app
        self.hosts = hosts
        self.origins = origins

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = _header(scope, b"host") or ""
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        name = name.strip("[]").lower()
        if self.hosts is not None and name not in self.hosts:
            await send_error(
                send, 421, f"this server does not answer for host {host[:80]!r} (see --allow-host)"
            )
            return
        origin = _header(scope, b"origin")
        if (
            origin is not None
            and scope["method"] not in ("GET", "HEAD", "OPTIONS")
            and origin != f"{scope.get('scheme', 'http')}://{host}"
            and origin not in self.origins
            and "*" not in self.origins
        ):
            await send_error(
                send, 403, f"cross-origin request from {origin[:80]!r} refused (see --cors)"
            )
            return
        await self.app(scope, receive, send)


# ----------------------------------------------------------------------------- uploads


def store_upload(upload: Any, path: Path) -> int:
    """Copy an upload (a Starlette ``UploadFile``) to ``path``, a name the server chose,
    created new; the bytes written."""
    upload.file.seek(0)
    with open(path, "xb") as out:
        shutil.copyfileobj(upload.file, out, 1 << 20)
        return out.tell()


def _relabel(error: BrushworkError, path: Path, label: str) -> str:
    return str(error).replace(str(path), label)


def check_header(path: Path, label: str, max_pixels: int) -> tuple[int, int]:
    """(width, height) from the image's header; ``413`` over ``max_pixels``, ``415`` for a
    file that is not an image of a supported format, ``422`` for an empty or broken
    header. Nothing is decoded."""
    from PIL import Image

    from brushwork.image import probe_image

    if path.stat().st_size == 0:
        raise ApiError(422, f"{label}: empty file")
    ceiling = 2 * Image.MAX_IMAGE_PIXELS if Image.MAX_IMAGE_PIXELS else None
    try:
        width, height = probe_image(path, max_pixels=ceiling or max_pixels)
    except BrushworkError as error:
        message = _relabel(error, path, label)
        if "over the limit" in message:
            raise ApiError(
                413, f"{label}: image is over this server's limit of {max_pixels:,} pixels"
            ) from None
        if "not an image" in message:
            raise ApiError(415, message) from None
        raise ApiError(422, message) from None
    if width * height > max_pixels:
        raise ApiError(
            413,
            f"{label}: image is {width}x{height} = {width * height:,} "
            f"pixels, over this server's limit of {max_pixels:,}",
        )
    return width, height


def check_decodes(path: Path, label: str, max_pixels: int) -> None:
    """Decode the image once (after :func:`check_header`): ``422`` if it is truncated or
    corrupt."""
    from brushwork.image import open_image

    try:
        open_image(path, max_pixels=max_pixels).close()
    except BrushworkError as error:
        raise ApiError(422, _relabel(error, path, label)) from None


def display_name(name: str | None) -> str | None:
    """A client's file name, shortened and stripped of folders, for display only."""
    if not name:
        return None
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(c for c in base if c.isprintable())[:100]
    return cleaned or None


class QueueGate:
    """ASGI middleware: a submission (``POST`` to one of ``paths``) while the queue is full
    is answered ``429`` before its body is read; ``refusal()`` returns (status, message,
    headers) or None, and ``authorized(scope)`` whether the request's token is good (a bad
    one goes on to the app, which answers ``401``)."""

    def __init__(
        self, app: Any, paths: tuple[str, ...], refusal: Any, authorized: Any, limit: int
    ) -> None:
        self.app = app
        self.paths = paths
        self.refusal = refusal
        self.authorized = authorized
        self.limit = limit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] in self.paths
            and self.authorized(scope)
        ):
            refused = self.refusal()
            if refused is not None:
                # drain what the client is still sending (never parsed nor stored, at most
                # the body limit) so that it reads the answer instead of a broken pipe
                received = 0
                while received <= self.limit:
                    message = await receive()
                    if message["type"] != "http.request":
                        break
                    received += len(message.get("body", b""))
                    if not message.get("more_body", False):
                        break
                await send_error(send, *refused)
                return
        await self.app(scope, receive, send)
