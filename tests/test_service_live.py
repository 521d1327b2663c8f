"""The service on a real uvicorn, in a subprocess on a free loopback port
(``tests/service_server.py``: the tiny encoder): server-sent events over HTTP, clients that
disconnect mid-upload and mid-stream, a server killed mid-job and restarted, and a load
test (50 concurrent submissions with event readers)."""

from __future__ import annotations

import asyncio
import base64
import io
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image
from servicekit import (
    LiveServer,
    form,
    live_server,
    peak_rss,
    png_bytes,
    read_events,
    wait_for,
    wait_until_held,
)

from brushwork.service.loadtest import load_test

LOAD_SUBMISSIONS = 50
LOAD_SECONDS = 120
PEAK_RSS_BOUND = 1536 * 2**20
"""The server's peak resident memory under the load test (torch, the app, 2 workers,
tiny images): measured about 0.5 GiB; 1.5 GiB is the bound."""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data = tmp_path_factory.mktemp("live") / "data"
    # every job of these tests has an event reader: each starts once followed (see
    # servicekit.start_when_followed), so that its reader sees all of it
    flags = ("--workers", "2", "--queue", "16", "--preview-every", "1", "--start-when-followed")
    with live_server(data, *flags) as s:
        yield s


def tiny_adain(**options: object) -> dict[str, object]:
    return form("adain", {"model": "tiny", "size": 32, **options})


def test_events_over_http(server: LiveServer) -> None:
    with server.client() as client:
        job = client.post("/jobs", **form("gatys", {"size": 32, "iterations": 12})).json()
        with client.stream("GET", f"/jobs/{job['id']}/events") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            assert stream.headers["cache-control"] == "no-cache"
            events = read_events(stream.iter_lines(), time.monotonic() + 60)
        names = [name for name, _ in events]
        steps = [data["step"] for name, data in events if name == "progress"]
        previews = [data["image"] for name, data in events if name == "preview"]
        assert names[0] == "state" and names[-1] == "done"
        assert steps == sorted(steps) and steps[-1] == 12
        picture = base64.b64decode(previews[-1].split(",", 1)[1])
        assert Image.open(io.BytesIO(picture)).size == (32, 27)
        result = client.get(f"/jobs/{job['id']}/result")
        assert Image.open(io.BytesIO(result.content)).size == (32, 27)


def test_a_reader_that_disconnects_is_dropped(server: LiveServer) -> None:
    with server.client() as client:
        job = client.post("/jobs", **form("gatys", {"size": 32, "iterations": 1_000_000})).json()
        with client.stream("GET", f"/jobs/{job['id']}/events") as stream:
            lines = stream.iter_lines()  # kept: a collected iterator closes the stream
            seen = read_events(lines, time.monotonic() + 60, until=("progress",))
            assert seen[-1][0] == "progress", seen
            assert client.get("/health").json()["readers"] >= 1
        end = time.monotonic() + 20
        while client.get("/health").json()["readers"] != 0:
            assert time.monotonic() < end, "the stream of a gone reader was not closed"
            time.sleep(0.1)
        assert client.delete(f"/jobs/{job['id']}").status_code == 202
        assert wait_for(client, job["id"], timeout=30)["state"] == "cancelled"


def test_a_client_that_disconnects_mid_upload(server: LiveServer) -> None:
    before = sorted(p.name for p in (server.data / "jobs").iterdir())
    body = (
        b'--b\r\nContent-Disposition: form-data; name="content"; filename="a.png"\r\n'
        b"Content-Type: image/png\r\n\r\n" + png_bytes(64, 64)
    )
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(
                b"POST /jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: multipart/form-data; boundary=b\r\n"
                b"Content-Length: 300000\r\n\r\n" + body
            )
            time.sleep(0.2)
    with server.client() as client:
        time.sleep(0.5)
        health = client.get("/health").json()
        assert health["status"] == "ok"
        ok = client.post("/jobs", **tiny_adain())
        assert ok.status_code == 202
        with client.stream("GET", f"/jobs/{ok.json()['id']}/events") as stream:
            events = read_events(stream.iter_lines(), time.monotonic() + 60)
        assert events[-1][0] == "done", events
    after = sorted(p.name for p in (server.data / "jobs").iterdir())
    assert set(after) - set(before) == {ok.json()["id"]}
    assert "Traceback" not in server.log_text()


def test_killed_mid_job_then_restarted(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = LiveServer(data, "--workers", "1", "--queue", "10", "--hold-at-step", "3").start()
    try:
        with first.client() as client:
            finished = client.post("/jobs", **tiny_adain()).json()
            wait_for(client, finished["id"])
            kept = client.get(f"/jobs/{finished['id']}/result").content
            running = client.post("/jobs", **form("gatys", {"size": 32, "iterations": 300})).json()
            waiting = client.post("/jobs", **tiny_adain()).json()
            assert wait_until_held(tmp_path / "held") == running["id"]
            first.kill()
    finally:
        first.stop()
    second = LiveServer(data, "--workers", "1", "--queue", "10", log=first.log).start()
    try:
        with second.client() as client:
            again = wait_for(client, running["id"], timeout=90)
            assert again["state"] == "done" and again["attempts"] == 2
            assert again["progress"]["step"] == 300
            assert wait_for(client, waiting["id"])["state"] == "done"
            assert client.get(f"/jobs/{finished['id']}/result").content == kept
    finally:
        second.stop()


def test_killed_mid_video_job_resumes(tmp_path: Path) -> None:
    """A server killed while a video job runs: the next start runs the job again, from the
    frames its work folder kept."""
    pytest.importorskip("av", reason="video jobs need PyAV")
    pytest.importorskip("cv2", reason="video jobs need OpenCV")
    from videoclips import pan, read_clip, write_clip

    clip = write_clip(tmp_path / "clip.mp4", pan(10, 32, 48, shift=2)).read_bytes()
    request = {
        "files": [
            ("content", ("clip.mp4", clip, "video/mp4")),
            ("style", ("style.png", png_bytes(40, 40, seed=1), "image/png")),
        ],
        "data": {
            "kind": "video",
            "method": "gatys",
            "options": '{"size": 32, "iterations": 20}',
        },
    }
    data = tmp_path / "data"
    first = LiveServer(data, "--workers", "1", "--hold-at-step", "3").start()
    try:
        with first.client() as client:
            job = client.post("/jobs", **request).json()
            assert wait_until_held(tmp_path / "held") == job["id"]
            first.kill()
    finally:
        first.stop()
    frames = data / "jobs" / job["id"] / "work" / "frames"
    assert len(list(frames.glob("[0-9]*.png"))) == 3
    second = LiveServer(data, "--workers", "1", log=first.log).start()
    try:
        with second.client() as client:
            done = wait_for(client, job["id"], timeout=120)
            assert done["state"] == "done" and done["attempts"] == 2, done
            assert done["details"]["resumed"] == 3 and done["details"]["frames"] == 10
            result = client.get(f"/jobs/{job['id']}/result")
            assert result.headers["content-type"] == "video/mp4"
            (tmp_path / "result.mp4").write_bytes(result.content)
            assert len(read_clip(tmp_path / "result.mp4")[0]) == 10
    finally:
        second.stop()


def test_load(server: LiveServer) -> None:
    """50 submissions at once, an event reader for each accepted job: every request is
    answered 202 or 429, every accepted job finishes, the server's memory stays bounded,
    its log has no error. (Last: it uses the module's server after the other tests.)"""
    with httpx.Client(base_url=server.url) as client:
        done_before = client.get("/health").json()["jobs"]["done"]
    start = time.monotonic()
    report = asyncio.run(
        asyncio.wait_for(
            load_test(
                server.url,
                submissions=LOAD_SUBMISSIONS,
                content=png_bytes(48, 40),
                style=png_bytes(40, 40, seed=1),
                method="adain",
                options={"model": "tiny", "size": 32},
                timeout=LOAD_SECONDS,
            ),
            LOAD_SECONDS,
        )
    )
    assert time.monotonic() - start < LOAD_SECONDS
    assert server.process is not None
    peak = peak_rss(server.process.pid)
    summary = report.summary()
    assert report.errors == [], summary
    assert set(report.statuses) <= {202, 429}, summary
    assert sum(report.statuses.values()) == LOAD_SUBMISSIONS
    accepted = report.statuses.get(202, 0)
    assert accepted >= 16, summary  # at least a full queue's worth
    assert report.finished == {"done": accepted}, summary
    assert peak < PEAK_RSS_BOUND, f"peak RSS {peak / 2**20:.0f} MiB"
    with httpx.Client(base_url=server.url) as client:
        assert client.get("/health").json()["jobs"]["done"] == done_before + accepted
    log = server.log_text()
    assert "Traceback" not in log and "ERROR" not in log, log[-3000:]
