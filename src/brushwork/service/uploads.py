"""What comes in: tokens checked before anything else, request bodies bounded while they
stream, uploads stored under names the server chooses, images checked from their headers
before anything is decoded, and what goes out: error messages without server paths.

* :class:`TokenGate` answers ``401`` to a request without a configured bearer token before
  any other middleware or the app sees it (so before a body is read or parsed); only the
  page (``/``) and its files (``/static/...``) are public.
* :class:`BodyLimit` answers ``413`` to a body over the limit: at once from its
  ``Content-Length``, or as soon as the bytes received pass it (chunked uploads), so an
  oversized upload is never read whole.
* :class:`RequestGuard` refuses unexpected ``Host`` headers while the server runs without
  a token (DNS rebinding) and state-changing requests from pages of other origins (unless
  allowed with ``--cors``).
* :class:`QueueGate` answers a submission ``429`` while the queue is full, before its body
  is parsed.
* :func:`store_upload` writes an upload to a fixed name in the job folder (the client's
  file name is kept for display only) and syncs it to disk; :func:`check_header` reads the
  size from the header (``413`` over the pixel limit, ``415`` for what is not an image);
  :func:`check_decodes` then decodes it (``422`` when truncated or corrupt).
* :func:`public_message` is the one place where a message for a client loses server paths.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool

from brushwork.errors import BrushworkError


class ApiError(Exception):
    """An HTTP error with a one-line message (the body is ``{"error": message}``)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(" ".join(str(message).split()))
        self.status = status
        self.headers = headers or {}


_ABSOLUTE_PATH = re.compile(r"(?<![\w.~/:-])/(?:[^\s/'\"(),;:]+/)+[^\s/'\"(),;:]*")
"""An absolute POSIX path of two or more components (not a URL's, not an API path's
single component)."""


def public_message(message: object, labels: Mapping[Path | str, str] | None = None) -> str:
    """``message`` as a client may see it: one line, each of ``labels``' paths (a job's
    files) replaced by its label (``content``, ``style 2``), any other absolute path by its
    last component (``/srv/brushwork/models/x.safetensors`` → ``x.safetensors``). Every
    message from the library that reaches a client goes through here."""
    text = " ".join(str(message).split())
    for path, label in sorted((labels or {}).items(), key=lambda item: -len(str(item[0]))):
        text = text.replace(str(path), label)
    return _ABSOLUTE_PATH.sub(lambda m: m.group(0).rstrip("/").rsplit("/", 1)[-1] or "/", text)


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


def owner_id(token: str) -> str:
    """The id a token's jobs are stored under (never the token itself)."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


OWNER_KEY = "brushwork.owner"
"""Where :class:`TokenGate` leaves the request's owner id in the ASGI scope."""


def is_public(path: str) -> bool:
    """The page and its files: they hold no data, and a browser loads them before it can
    send a token. Everything else (the API, ``/docs``, ``/openapi.json``) needs one."""
    return path == "/" or path.startswith("/static/")


class TokenGate:
    """ASGI middleware, innermost of the CORS layer and outside every other check: with
    ``tokens``, a request needs ``Authorization: Bearer TOKEN`` (one of them), else it is
    answered ``401`` before its body is read; the owner id of its token goes into the scope
    (:data:`OWNER_KEY`; ``""`` without tokens)."""

    def __init__(self, app: Any, tokens: tuple[str, ...]) -> None:
        self.app = app
        self.tokens = tuple(tokens)

    def token_of(self, header: str) -> str | None:
        """The configured token an ``Authorization`` header carries, if any."""
        scheme, _, given = header.partition(" ")
        given = given.strip()
        if scheme.lower() != "bearer" or not given:
            return None
        found = None
        for token in self.tokens:  # compare with every token: the time tells nothing
            if hmac.compare_digest(given.encode(), token.encode()):
                found = token
        return found

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        owner = ""
        if self.tokens and not is_public(scope["path"]):
            header = _header(scope, b"authorization") or ""
            token = self.token_of(header)
            if token is None:
                await send_error(
                    send,
                    401,
                    "a bearer token is needed: send 'Authorization: Bearer TOKEN'"
                    if not header
                    else "wrong bearer token",
                    {"WWW-Authenticate": "Bearer"},
                )
                return
            owner = owner_id(token)
        scope[OWNER_KEY] = owner
        await self.app(scope, receive, send)


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

    async def _refused_by_length(self, scope: dict[str, Any], send: Any) -> bool:
        """Answer ``400`` or ``413`` from the Content-Length header alone; whether it did."""
        length = _header(scope, b"content-length")
        if length is None:
            return False
        try:
            size = int(length)
        except ValueError:
            await send_error(send, 400, f"bad Content-Length header: {length[:40]!r}")
            return True
        if size > self.limit:
            await send_error(send, 413, self._message(size))
            return True
        return False

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        if await self._refused_by_length(scope, send):
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
    created new, and sync it to disk (the job's index row is committed after its files);
    the bytes written."""
    upload.file.seek(0)
    with open(path, "xb") as out:
        shutil.copyfileobj(upload.file, out, 1 << 20)
        out.flush()
        os.fsync(out.fileno())
        return out.tell()


def sync_folder(folder: Path) -> None:
    """Sync a folder's entries (the names of the files just written in it) to disk."""
    handle = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


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
        message = public_message(error, {path: label})
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
        raise ApiError(422, public_message(error, {path: label})) from None


VIDEO_CONTAINERS = frozenset(
    {
        "mov,mp4,m4a,3gp,3g2,mj2",
        "matroska,webm",
        "avi",
        "gif",
        "ogg",
        "mpegts",
        "flv",
        "mpeg",
    }
)
"""FFmpeg containers a video job's upload may be (by the name FFmpeg gives the one it
found). Formats that name other files or addresses (playlists such as HLS, concat
scripts, SDP) are never opened for their frames."""
_TEXT_SNIFF = 4096


def _looks_like_text(path: Path) -> bool:
    """Whether a file starts as text (playlists, scripts): no video container does."""
    with open(path, "rb") as handle:
        head = handle.read(_TEXT_SNIFF)
    if not head or b"\0" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as error:
        return error.start >= len(head) - 4  # a character cut at the end of the sample
    return True


def _video_refusal(error: BrushworkError, path: Path, label: str, max_pixels: int) -> ApiError:
    """The answer to a video :mod:`brushwork.video.io` cannot read: ``413`` over the pixel
    limit, ``415`` not a video, else ``422``."""
    message = public_message(error, {path: label})
    if "over the limit" in message:
        return ApiError(
            413, f"{label}: video frames are over this server's limit of {max_pixels:,} pixels"
        )
    if any(
        text in message
        for text in ("not a video PyAV can read", "a still image", "no video stream")
    ):
        return ApiError(415, message)
    return ApiError(422, message)


def _check_video_limits(
    label: str,
    size: tuple[int, int],
    frames: int | None,
    seconds: float | None,
    limits: tuple[int, int, float],
) -> None:
    """``413`` for a video over ``limits`` (pixels per frame, frames, seconds)."""
    width, height = size
    max_pixels, max_frames, max_seconds = limits
    if width * height > max_pixels:
        raise ApiError(
            413,
            f"{label}: video frames are {width}x{height} = {width * height:,} pixels, "
            f"over this server's limit of {max_pixels:,}",
        )
    if frames is not None and frames > max_frames:
        raise ApiError(
            413,
            f"{label}: the video has {frames:,} frames, over this server's limit of {max_frames:,}",
        )
    if seconds is not None and seconds > max_seconds * 1.001:
        raise ApiError(
            413,
            f"{label}: the video lasts {seconds:.1f} s, over this server's limit of "
            f"{max_seconds:g} s",
        )


def check_video(
    path: Path,
    label: str,
    *,
    max_pixels: int,
    max_frames: int,
    max_seconds: float,
    partial: bool = False,
) -> Any:
    """Check an uploaded video with :mod:`brushwork.video.io` (its messages): from the
    header first (``415`` not a video of a container this server takes, ``413`` frames
    over ``max_pixels``, more than ``max_frames`` frames or ``max_seconds`` seconds), then
    every frame decoded (:func:`brushwork.video.io.scan`: ``422`` for a stream that breaks,
    unless ``partial``; ``413`` over the limits as counted). Returns the scan's
    :class:`~brushwork.video.io.VideoInfo`."""
    from brushwork.video.io import probe, scan

    if path.stat().st_size == 0:
        raise ApiError(422, f"{label}: empty file")
    if _looks_like_text(path):
        raise ApiError(415, f"{label}: a text file, not a video")
    limits = (max_pixels, max_frames, max_seconds)
    try:
        header = probe(path)
    except BrushworkError as error:
        raise _video_refusal(error, path, label, max_pixels) from None
    if header.format not in VIDEO_CONTAINERS:
        raise ApiError(
            415,
            f"{label}: a {header.format.split(',')[0]} file; this server takes MP4, MOV, "
            "MKV, WebM, AVI, GIF, Ogg, MPEG and FLV videos",
        )
    _check_video_limits(label, header.size, header.frames, header.seconds, limits)
    try:
        info = scan(path, max_pixels=max_pixels, partial=partial)
    except BrushworkError as error:
        raise _video_refusal(error, path, label, max_pixels) from None
    _check_video_limits(label, info.stored_size, info.frames, info.duration, limits)
    return info


def display_name(name: str | None) -> str | None:
    """A client's file name, shortened and stripped of folders, for display only."""
    if not name:
        return None
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(c for c in base if c.isprintable())[:100]
    return cleaned or None


class QueueGate:
    """ASGI middleware: a submission (``POST`` to one of ``paths``) while the queue is full
    is answered before its body is parsed; ``refusal()`` (it reads the index: run in a
    thread) returns (status, message, headers) or None."""

    def __init__(self, app: Any, paths: tuple[str, ...], refusal: Any, limit: int) -> None:
        self.app = app
        self.paths = paths
        self.refusal = refusal
        self.limit = limit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in self.paths:
            refused = await run_in_threadpool(self.refusal)
            if refused is not None:
                await self._drain(receive)
                await send_error(send, *refused)
                return
        await self.app(scope, receive, send)

    async def _drain(self, receive: Any) -> None:
        """Read what the client is still sending (never parsed nor stored, at most the body
        limit) so that it reads the answer instead of a broken pipe."""
        received = 0
        while received <= self.limit:
            message = await receive()
            if message["type"] != "http.request":
                break
            received += len(message.get("body", b""))
            if not message.get("more_body", False):
                break
