"""Helpers for the service and batch tests: images made in the test (valid, truncated,
bombs), a tiny model, waiting for jobs, and a real server in a subprocess
(``tests/service_server.py``: uvicorn with the tiny encoder, on a free loopback port)."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

HERE = Path(__file__).resolve().parent
SERVER = HERE / "service_server.py"


def png_bytes(width: int = 48, height: int = 40, seed: int = 0, mode: str = "RGB") -> bytes:
    """A small PNG with some structure."""
    import numpy as np

    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, size=(4, 6, 3), dtype=np.uint8)
    image = Image.fromarray(base).resize((width, height), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    image.convert(mode).save(buffer, format="PNG")
    return buffer.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def bomb_png(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` × ``height`` (a decompression bomb: the
    pixel data, were it decoded, would be huge; here it is a few zero rows)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (width + 1) * 4, 9)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", rows)
        + _chunk(b"IEND", b"")
    )


def truncated_png() -> bytes:
    """A PNG cut in the middle of its pixel data: the header reads, decoding fails."""
    data = png_bytes(160, 120, seed=3)
    return data[: len(data) // 2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def form(
    method: str = "adain",
    options: dict[str, Any] | None = None,
    content: bytes | None = None,
    styles: list[bytes] | None = None,
    names: tuple[str, str] = ("photo.png", "style.png"),
) -> dict[str, Any]:
    """Keyword arguments of ``client.post`` for a multipart job submission."""
    files = [("content", (names[0], content if content is not None else png_bytes(), "image/png"))]
    for number, style in enumerate(styles or [png_bytes(40, 40, seed=1)]):
        files.append(("style", (f"{number}-{names[1]}", style, "image/png")))
    data = {"method": method, "options": json.dumps(options or {})}
    return {"files": files, "data": data}


def wait_for(
    client: Any,
    job_id: str,
    states: tuple[str, ...] = ("done", "failed", "cancelled"),
    timeout: float = 60.0,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Poll a job until its state is one of ``states``."""
    end = time.monotonic() + timeout
    while True:
        job = client.get(f"/jobs/{job_id}", headers=headers or {}).json()
        if job.get("state") in states:
            return job
        if time.monotonic() > end:
            raise AssertionError(f"job {job_id} still {job.get('state')} after {timeout} s")
        time.sleep(0.05)


def peak_rss(pid: int) -> int:
    """The peak resident memory of a process (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


class LiveServer:
    """A ``brushwork serve`` subprocess with the tiny encoder on a free loopback port."""

    def __init__(self, data: Path, *args: str, log: Path | None = None) -> None:
        self.data = data
        self.args = list(args)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log or data.parent / f"server-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> LiveServer:
        env = {**os.environ, "BRUSHWORK_PRECISION": "float32", "PYTHONUNBUFFERED": "1"}
        handle = open(self.log, "ab")  # noqa: SIM115 - the server keeps it
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(SERVER),
                "--data",
                str(self.data),
                "--port",
                str(self.port),
                *self.args,
            ],
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=env,
        )
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"the server did not start: {self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs (a crash, an OOM kill, a power cut)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kwargs)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def live_server(data: Path, *args: str) -> Iterator[LiveServer]:
    server = LiveServer(data, *args).start()
    try:
        yield server
    finally:
        server.stop()
