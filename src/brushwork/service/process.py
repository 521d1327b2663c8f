"""A ``brushwork serve`` (or a stand-in with the same flags) in a subprocess on a free
loopback port, for the tests (``tests/servicekit.py``) and the benchmark
(``benchmarks/bench_service.py``)::

    with ServerProcess(["brushwork", "serve"], Path("data"), "--workers", "1") as server:
        httpx.get(server.url + "/health")
        print(peak_rss(server.pid))
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def peak_rss(pid: int) -> int:
    """The peak resident memory of a live process (Linux ``VmHWM``), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


class ServerProcess:
    """``command --data DATA --port PORT *args`` on a free port, its output in ``log``
    (default: beside ``data``); :meth:`start` waits until ``/health`` answers 200 (send
    ``headers`` with a token if the server needs one)."""

    def __init__(
        self,
        command: Sequence[str],
        data: Path,
        *args: str,
        log: Path | None = None,
        env: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.command = list(command)
        self.data = Path(data)
        self.args = list(args)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log or self.data.parent / f"server-{self.port}.log"
        self.env = {**os.environ, **(env or {})}
        self.headers = dict(headers or {})
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None, "not started"
        return self.process.pid

    def start(self, timeout: float = 120.0) -> ServerProcess:
        import httpx

        self.data.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as handle:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                [*self.command, "--data", str(self.data), "--port", str(self.port), *self.args],
                stdout=handle,
                stderr=subprocess.STDOUT,
                env=self.env,
            )
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited: {self.log_text()[-3000:]}")
            try:
                answer = httpx.get(self.url + "/health", timeout=2, headers=self.headers)
                if answer.status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the server did not start in {timeout:g} s: {self.log_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs (a crash, an OOM kill, a power cut)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (uvicorn's graceful stop), then SIGKILL after ``timeout`` seconds."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def client(self, **kwargs: Any) -> Any:
        """An ``httpx.Client`` for the server (30 s timeouts unless given)."""
        import httpx

        kwargs.setdefault("timeout", 30)
        return httpx.Client(base_url=self.url, **kwargs)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.is_file() else ""

    def __enter__(self) -> ServerProcess:
        return self.start() if self.process is None else self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()


__all__ = ["ServerProcess", "free_port", "peak_rss"]
