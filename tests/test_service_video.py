"""Video jobs through the HTTP service (FastAPI's TestClient): a video upload as the content
of ``POST /jobs`` with ``kind=video``, checked by :mod:`brushwork.video.io` before it is
accepted, stylized by :func:`brushwork.video.stylize_video` in a worker (progress over
frames, cancel and the time limit between frames, its work folder resumed after a restart),
the result an MP4. Tiny clips made in the test (``tests/videoclips.py``), the tiny random
encoder and a tiny decoder offered as model ``tiny``."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import save_decoder
from fastapi.testclient import TestClient
from servicekit import hold_jobs_at, png_bytes, read_events, start_when_followed, wait_for
from videoclips import pan, read_clip, write_clip

from brushwork.encoders import VGG19
from brushwork.service import ServiceConfig, create_app
from brushwork.service.jobs import JobManager, JobSink

pytest.importorskip("av", reason="video jobs need PyAV")
pytest.importorskip("cv2", reason="video jobs need OpenCV")
pytestmark = pytest.mark.usefixtures("no_pretrained", "one_thread")
BASE = "http://127.0.0.1"
FRAMES = 6


@pytest.fixture
def tiny_model(tmp_path: Path, tiny_encoder: VGG19) -> Path:
    return save_decoder(tmp_path / "tiny.safetensors", tiny_encoder)


@pytest.fixture
def make_client(tmp_path: Path, tiny_encoder: VGG19, tiny_model: Path) -> Iterator[Any]:
    """A factory of started clients on one data folder (the workers run until the test
    ends, or until the client is closed)."""
    stack: list[TestClient] = []

    def make(**changes: Any) -> TestClient:
        values: dict[str, Any] = {
            "data": tmp_path / "data",
            "workers": 1,
            "queue": 4,
            "models": {"tiny": tiny_model},
            "max_upload": 400_000,
            "max_pixels": 1_000_000,
            "max_side": 256,
            "max_video_frames": 40,
            "encoder": tiny_encoder,
        }
        values.update(changes)
        client = TestClient(create_app(ServiceConfig(**values)), base_url=BASE)
        client.__enter__()
        stack.append(client)
        return client

    yield make
    for client in reversed(stack):
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Any) -> TestClient:
    return make_client()


def clip_bytes(tmp_path: Path, count: int = FRAMES, name: str = "clip.mp4") -> bytes:
    return write_clip(tmp_path / name, pan(count, 32, 48, shift=2)).read_bytes()


def video_form(
    content: bytes,
    method: str = "adain",
    options: dict[str, Any] | None = None,
    style: bytes | None = None,
) -> dict[str, Any]:
    if options is None:
        options = {"model": "tiny", "size": 48} if method == "adain" else {}
    return {
        "files": [
            ("content", ("clip.mp4", content, "video/mp4")),
            ("style", ("style.png", style or png_bytes(40, 40, seed=1), "image/png")),
        ],
        "data": {"kind": "video", "method": method, "options": json.dumps(options)},
    }


def error_of(response: Any, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert "\n" not in body["error"]
    return str(body["error"])


def frames_of(data: bytes, tmp_path: Path) -> list[Any]:
    path = tmp_path / "result-check.mp4"
    path.write_bytes(data)
    return read_clip(path)[0]


def test_methods_and_health_say_video_jobs_are_taken(client: TestClient) -> None:
    info = client.get("/methods").json()
    assert info["kinds"] == ["image", "video"]
    names = {o["name"] for o in info["video"]["options"]}
    assert {"temporal", "blend", "max_frames", "crf"} <= names
    assert not {"work_dir", "codec", "resume", "keep_work", "fps"} & names
    assert info["limits"]["max_video_frames"] == 40
    assert client.get("/health").json()["kinds"] == ["image", "video"]
    schema = client.get("/openapi.json").json()
    result = schema["paths"]["/jobs/{job_id}/result"]["get"]["responses"]["200"]["content"]
    assert set(result) == {"image/png", "video/mp4"}


def test_video_job_from_submission_to_result(
    make_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the job starts once its reader follows it: done first, it would show only its end
    monkeypatch.setattr(JobManager, "_run", start_when_followed())
    client = make_client()
    answer = client.post("/jobs", **video_form(clip_bytes(tmp_path)))
    assert answer.status_code == 202, answer.text
    job = answer.json()
    assert job["kind"] == "video" and job["progress"]["total"] == FRAMES
    with client.stream("GET", f"/jobs/{job['id']}/events") as stream:
        events = read_events(stream.iter_lines(), time.monotonic() + 60)
    names = [name for name, _ in events]
    assert names[0] == "state" and names[-1] == "done", names
    steps = [data["step"] for name, data in events if name == "progress"]
    assert steps and steps == sorted(steps) and steps[-1] == FRAMES
    assert all(data["total"] == FRAMES for name, data in events if name == "progress")
    done = client.get(f"/jobs/{job['id']}").json()
    assert done["state"] == "done" and done["progress"]["fraction"] == 1.0
    assert done["details"]["frames"] == FRAMES and done["details"]["stylized"] == FRAMES
    result = client.get(f"/jobs/{job['id']}/result")
    assert result.status_code == 200 and result.headers["content-type"] == "video/mp4"
    frames = frames_of(result.content, tmp_path)
    assert len(frames) == FRAMES and frames[0].shape == (32, 48, 3)
    download = client.get(f"/jobs/{job['id']}/result?download=true")
    disposition = download.headers["content-disposition"]
    assert disposition.startswith("attachment") and f"brushwork-{job['id']}.mp4" in disposition
    folder = tmp_path / "data" / "jobs" / job["id"]
    assert not (folder / "work").exists()  # the work folder goes once the video is written


def test_video_options_reach_the_run(client: TestClient, tmp_path: Path) -> None:
    options = {"model": "tiny", "size": 48, "max_frames": 3, "temporal": False}
    job = client.post("/jobs", **video_form(clip_bytes(tmp_path), options=options)).json()
    assert job["progress"]["total"] == 3
    done = wait_for(client, job["id"])
    assert done["state"] == "done", done
    assert len(frames_of(client.get(f"/jobs/{job['id']}/result").content, tmp_path)) == 3


def test_not_a_video(client: TestClient, tmp_path: Path) -> None:
    message = error_of(client.post("/jobs", **video_form(png_bytes())), 415)
    assert message.startswith("content: a still image, not a video"), message
    message = error_of(client.post("/jobs", **video_form(b"\x00\x01garbage" * 50)), 415)
    assert message.startswith("content: not a video PyAV can read"), message
    playlist = b"#EXTM3U\n#EXTINF:1,\n/etc/passwd\n"
    assert "text file" in error_of(client.post("/jobs", **video_form(playlist)), 415)
    assert error_of(client.post("/jobs", **video_form(b"")), 422) == "content: empty file"
    truncated = clip_bytes(tmp_path)[:-200]
    assert error_of(client.post("/jobs", **video_form(truncated)), 422).startswith("content")
    assert sorted((tmp_path / "data" / "jobs").iterdir()) == []  # nothing kept


def test_video_limits(make_client: Any, tmp_path: Path) -> None:
    client = make_client(max_video_frames=4)
    message = error_of(client.post("/jobs", **video_form(clip_bytes(tmp_path))), 413)
    assert message == "content: the video has 6 frames, over this server's limit of 4"
    client = make_client(max_video_seconds=0.3)
    message = error_of(client.post("/jobs", **video_form(clip_bytes(tmp_path))), 413)
    assert "over this server's limit of 0.3 s" in message, message
    client = make_client(max_pixels=1000)
    small = png_bytes(30, 30, seed=1)
    message = error_of(client.post("/jobs", **video_form(clip_bytes(tmp_path), style=small)), 413)
    assert message == (
        "content: video frames are 48x32 = 1,536 pixels, over this server's limit of 1,000"
    )
    client = make_client(max_upload=2000)
    assert "over this server's limit" in error_of(
        client.post("/jobs", **video_form(clip_bytes(tmp_path, 30))), 413
    )


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"work_dir": "/tmp"}, "work-dir is set by the server, not per video job"),
        ({"codec": "gif"}, "codec is set by the server, not per video job"),
        ({"resume": True}, "resume is set by the server, not per video job"),
        ({"keep_work": True}, "keep-work is set by the server, not per video job"),
        ({"fps": 5}, "fps is set by the server, not per video job"),
        ({"device": "cpu"}, "device is set by the server, not per job"),
        ({"blend": 2}, "blend must be"),
        ({"temporal_frames": [1, "x"]}, "each of temporal-frames must be an integer"),
        ({"crf": "high"}, "crf must be an integer"),
    ],
)
def test_forbidden_and_bad_video_options(
    client: TestClient, tmp_path: Path, options: dict[str, Any], expected: str
) -> None:
    request = video_form(clip_bytes(tmp_path), options={"model": "tiny", **options})
    message = error_of(client.post("/jobs", **request), 422)
    assert message.startswith(expected), message


def test_video_options_are_refused_for_images(client: TestClient) -> None:
    request = video_form(png_bytes(), options={"model": "tiny", "blend": 0.5})
    request["data"]["kind"] = "image"
    request["files"][0] = ("content", ("photo.png", png_bytes(), "image/png"))
    assert error_of(client.post("/jobs", **request), 422).startswith("unknown option 'blend'")


def slow_video(tmp_path: Path, frames: int = 30) -> dict[str, Any]:
    """A video job that takes a while: Gatys, some steps per frame."""
    return video_form(
        clip_bytes(tmp_path, frames, name=f"clip-{frames}.mp4"),
        method="gatys",
        options={"size": 32, "iterations": 15},
    )


@pytest.fixture
def held_at_frame_1(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """The first video job holds after its first frame until it is cancelled, stopped or
    out of time (see :func:`servicekit.hold_jobs_at`); the event is set once it holds."""
    hold, held = hold_jobs_at(1)
    monkeypatch.setattr(JobSink, "__call__", hold)
    return held


def test_cancel_stops_a_video_job_between_frames(
    client: TestClient, tmp_path: Path, held_at_frame_1: threading.Event
) -> None:
    job = client.post("/jobs", **slow_video(tmp_path)).json()
    assert held_at_frame_1.wait(60), "the job did not reach its first frame"
    answer = client.delete(f"/jobs/{job['id']}")
    assert answer.status_code == 202 and answer.json()["state"] == "cancelling"
    stopped = wait_for(client, job["id"], timeout=60)
    assert stopped["state"] == "cancelled" and stopped["error"] == "cancelled"
    assert stopped["progress"]["step"] < 30
    assert "is cancelled" in error_of(client.get(f"/jobs/{job['id']}/result"), 409)


def endless_frames(tmp_path: Path) -> dict[str, Any]:
    """A video job whose every frame would take hours: Gatys, 10⁶ steps per frame."""
    return video_form(
        clip_bytes(tmp_path, 3, name="clip-3.mp4"),
        method="gatys",
        options={"size": 32, "iterations": 1_000_000},
    )


def test_video_job_time_limit_stops_inside_a_frame(make_client: Any, tmp_path: Path) -> None:
    client = make_client(job_timeout=1.0)
    job = client.post("/jobs", **endless_frames(tmp_path)).json()
    failed = wait_for(client, job["id"], timeout=60)
    assert failed["state"] == "failed", failed
    assert failed["error"] == "stopped after the time limit of 1 s per job"
    assert failed["progress"]["step"] == 0  # inside the first frame


def test_cancel_stops_a_video_job_inside_a_frame(client: TestClient, tmp_path: Path) -> None:
    job = client.post("/jobs", **endless_frames(tmp_path)).json()
    wait_for(client, job["id"], ("running",))
    assert client.delete(f"/jobs/{job['id']}").status_code == 202
    stopped = wait_for(client, job["id"], timeout=30)
    assert stopped["state"] == "cancelled" and stopped["progress"]["step"] == 0


def test_a_stopped_server_resumes_a_video_job(
    make_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server stopped mid-job gives the job back to the queue; the next one continues it
    from the frames kept in the job's work folder."""
    hold, held = hold_jobs_at(3)
    monkeypatch.setattr(JobSink, "__call__", hold)
    first = make_client()
    job = first.post("/jobs", **slow_video(tmp_path, 12)).json()
    assert held.wait(60), "the job did not reach frame 3"
    first.__exit__(None, None, None)
    work = tmp_path / "data" / "jobs" / job["id"] / "work"
    assert len(list((work / "frames").glob("[0-9]*.png"))) >= 3
    second = make_client()
    done = wait_for(second, job["id"], timeout=120)
    assert done["state"] == "done", done
    details = done["details"]
    assert details["frames"] == 12 and details["resumed"] >= 3
    assert details["stylized"] == 12 - details["resumed"]
    frames = frames_of(second.get(f"/jobs/{job['id']}/result").content, tmp_path)
    assert len(frames) == 12
