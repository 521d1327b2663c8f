"""The HTTP service through FastAPI's TestClient: every endpoint, and every bad input with
its status code and one-line message. Workers run as threads of this process with the tiny
random encoder (``ServiceConfig.encoder``) and a tiny decoder offered as model ``tiny``."""

from __future__ import annotations

import io
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import save_decoder
from fastapi.testclient import TestClient
from PIL import Image
from servicekit import bomb_png, form, png_bytes, truncated_png, wait_for

from brushwork.encoders import VGG19
from brushwork.errors import BrushworkError
from brushwork.methods.adain import AdaINOptions
from brushwork.methods.gatys import GatysOptions
from brushwork.service import ServiceConfig, create_app
from brushwork.service.jobs import valid_id
from brushwork.service.store import Job, JobStore

pytestmark = pytest.mark.usefixtures("no_pretrained", "one_thread")
BASE = "http://127.0.0.1"


@pytest.fixture
def tiny_model(tmp_path: Path, tiny_encoder: VGG19) -> Path:
    return save_decoder(tmp_path / "tiny.safetensors", tiny_encoder)


def config(tmp_path: Path, encoder: VGG19, model: Path, **changes: Any) -> ServiceConfig:
    values: dict[str, Any] = {
        "data": tmp_path / "data",
        "workers": 1,
        "queue": 4,
        "models": {"tiny": model},
        "preview_every": 1,
        "preview_interval": 0.0,
        "max_upload": 400_000,
        "max_pixels": 1_000_000,
        "max_side": 256,
        "encoder": encoder,
    }
    values.update(changes)
    return ServiceConfig(**values)


@pytest.fixture
def make_client(tmp_path: Path, tiny_encoder: VGG19, tiny_model: Path) -> Iterator[Any]:
    """A factory of started clients (the app's workers run until the test ends)."""
    stack: list[TestClient] = []

    def make(**changes: Any) -> TestClient:
        app = create_app(config(tmp_path, tiny_encoder, tiny_model, **changes))
        client = TestClient(app, base_url=BASE)
        client.__enter__()
        stack.append(client)
        return client

    yield make
    for client in reversed(stack):
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Any) -> TestClient:
    return make_client()


def adain(**options: Any) -> dict[str, Any]:
    return form("adain", {"model": "tiny", "size": 48, **options})


def gatys(**options: Any) -> dict[str, Any]:
    return form("gatys", {"size": 32, "iterations": 3, **options})


def error_of(response: Any, status: int) -> str:
    """The one-line message of an error response with ``status``."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    message = body["error"]
    assert message and "\n" not in message
    return str(message)


def events_of(client: TestClient, job_id: str) -> list[tuple[str, dict[str, Any]]]:
    """Every server-sent event of a job until its final one."""
    found = []
    name = None
    with client.stream("GET", f"/jobs/{job_id}/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        for line in stream.iter_lines():
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                found.append((name, json.loads(line[5:])))
    return found


# ----------------------------------------------------------------------------- endpoints


def test_health_methods_models_examples(client: TestClient) -> None:
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["workers"] == 1
    assert set(health["jobs"]) == {"queued", "running", "done", "failed", "cancelled"}

    info = client.get("/methods").json()
    from brushwork.methods import REGISTRY

    assert [m["name"] for m in info["methods"]] == list(REGISTRY)
    adain_info = next(m for m in info["methods"] if m["name"] == "adain")
    assert adain_info["sync"] is True and adain_info["kind"] == "feed-forward"
    options = {o["name"]: o for o in adain_info["options"]}
    assert options["alpha"]["minimum"] == 0 and options["alpha"]["maximum"] == 1
    assert options["alpha"]["default"] == 1.0 and options["alpha"]["main"] is True
    assert "tiny" in options["model"]["choices"] and "adain" in options["model"]["choices"]
    gatys_info = next(m for m in info["methods"] if m["name"] == "gatys")
    gatys_options = {o["name"]: o for o in gatys_info["options"]}
    assert gatys_options["init"]["choices"] == ["content", "noise"]  # never a file
    assert "tiny" not in gatys_options.get("model", {}).get("choices", [])
    assert gatys_options["iterations"]["default"] == 300
    assert [c["name"] for c in info["controls"]][:1] == ["size"]
    assert not {"device", "weights", "max_memory", "max_pixels"} & {
        c["name"] for c in info["controls"]
    }
    assert info["limits"]["max_pixels"] == 1_000_000

    models = client.get("/models").json()["models"]
    names = {m["name"]: m for m in models}
    assert names["adain"]["source"] == "bundled" and names["tiny"]["method"] == "adain"
    assert all("file" not in m for m in models)  # no server paths

    examples = client.get("/examples").json()
    assert "strokes" in examples["styles"] and "astronaut" in examples["contents"]
    for name in ("strokes", "astronaut"):
        response = client.get(f"/examples/{name}")
        assert response.headers["content-type"] == "image/png"
        assert Image.open(io.BytesIO(response.content)).size[0] > 0
    assert "no example" in error_of(client.get("/examples/nope"), 404)


def test_page_and_docs(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    for needle in (
        '<label for="method">',
        'for="content-file"',
        'for="style-file"',
        'role="status"',
        "<progress",
        'name="viewport"',
        "/static/app.js",
    ):
        assert needle in html
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/style.css").status_code == 200
    assert client.get("/static/../app.py").status_code == 404
    assert client.get("/openapi.json").json()["paths"]["/jobs"]["post"]
    assert client.get("/docs").status_code == 200


def test_adain_job_from_submission_to_result(client: TestClient) -> None:
    response = client.post("/jobs", **adain(alpha=0.5))
    assert response.status_code == 202, response.text
    job = response.json()
    assert valid_id(job["id"]) and job["state"] in ("queued", "running", "done")
    assert response.headers["location"] == f"/jobs/{job['id']}"
    assert job["options"] == {"model": "tiny", "size": 48, "alpha": 0.5}
    assert job["content_name"] == "photo.png"
    done = wait_for(client, job["id"])
    assert done["state"] == "done", done
    assert done["progress"]["fraction"] == 1.0
    assert done["timings"]["run_seconds"] >= 0 and done["details"]["size"] == [48, 40]
    result = client.get(done["links"]["result"])
    assert result.headers["content-type"] == "image/png"
    assert "inline" in result.headers["content-disposition"]
    assert Image.open(io.BytesIO(result.content)).size == (48, 40)
    download = client.get(done["links"]["result"] + "?download=true")
    assert "attachment" in download.headers["content-disposition"]
    listed = client.get("/jobs").json()["jobs"]
    assert [j["id"] for j in listed] == [job["id"]]
    # the second job with the same style reuses the prepared style in the worker
    again = client.post("/jobs", **adain(alpha=0.5)).json()
    assert wait_for(client, again["id"])["details"]["reused_styles"] is True


def test_gatys_job_streams_progress_and_previews(client: TestClient) -> None:
    job = client.post("/jobs", **gatys(iterations=4)).json()
    events = events_of(client, job["id"])
    names = [name for name, _ in events]
    assert names[0] == "state" and names[-1] == "done", names
    steps = [data["step"] for name, data in events if name == "progress"]
    assert steps == sorted(steps) and steps[-1] == 4
    previews = [data for name, data in events if name == "preview"]
    assert previews and previews[-1]["image"].startswith("data:image/jpeg;base64,")
    import base64

    picture = base64.b64decode(previews[-1]["image"].split(",", 1)[1])
    assert Image.open(io.BytesIO(picture)).format == "JPEG"
    assert client.get(f"/jobs/{job['id']}/preview").headers["content-type"] == "image/jpeg"
    done = client.get(f"/jobs/{job['id']}").json()
    assert done["losses"]["total"] > 0 and done["progress"]["step"] == 4
    # a reader that connects after the end gets the state and the final event at once
    late = events_of(client, job["id"])
    assert [n for n, _ in late] == ["state", "done"]


def test_stylize_answers_with_the_image(client: TestClient) -> None:
    response = client.post("/stylize", **adain())
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(response.content)).size == (48, 40)
    job = client.get(f"/jobs/{response.headers['x-job-id']}").json()
    assert job["state"] == "done"
    message = error_of(client.post("/stylize", **gatys()), 422)
    assert "POST /stylize is for one-pass methods" in message
    # a job that fails in the worker answers 422 with its message
    bad = form("adain", {"model": "adain", "size": 48})  # the real decoder: wrong encoder
    assert error_of(client.post("/stylize", **bad), 422)


def test_cancel_stops_a_running_job(client: TestClient) -> None:
    job = client.post("/jobs", **gatys(iterations=100_000)).json()
    running = wait_for(client, job["id"], ("running",))
    end = time.monotonic() + 30
    while client.get(f"/jobs/{job['id']}").json()["progress"]["step"] < 2:
        assert time.monotonic() < end
        time.sleep(0.02)
    answer = client.delete(f"/jobs/{job['id']}")
    assert answer.status_code == 202 and answer.json()["state"] == "cancelling"
    stopped = wait_for(client, job["id"], timeout=20)
    assert stopped["state"] == "cancelled" and stopped["error"] == "cancelled"
    assert stopped["progress"]["step"] < 100_000
    assert running["attempts"] == 1
    # the worker is free again
    assert wait_for(client, client.post("/jobs", **adain()).json()["id"])["state"] == "done"
    assert "is cancelled" in error_of(client.get(f"/jobs/{job['id']}/result"), 409)


def test_cancel_queued_and_delete_finished(make_client: Any, monkeypatch: Any) -> None:
    gate = threading.Event()
    from brushwork.painter import Painter

    original = Painter.paint

    def held(self: Painter, *args: Any, **kwargs: Any) -> Any:
        gate.wait(30)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Painter, "paint", held)
    client = make_client(queue=1)
    first = client.post("/jobs", **adain()).json()
    wait_for(client, first["id"], ("running",))
    second = client.post("/jobs", **adain()).json()
    assert second["state"] == "queued"
    # the queue is full: 429 with Retry-After
    full = client.post("/jobs", **adain())
    assert "the queue is full" in error_of(full, 429)
    assert int(full.headers["retry-after"]) >= 1
    full_sync = client.post("/stylize", **adain())
    assert full_sync.status_code == 429 and "retry-after" in full_sync.headers
    cancelled = client.delete(f"/jobs/{second['id']}")
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    gate.set()
    assert wait_for(client, first["id"])["state"] == "done"
    assert client.get(f"/jobs/{second['id']}").json()["state"] == "cancelled"
    folder = client.app.state.manager.folder(first["id"])
    assert (folder / "result.png").is_file()
    deleted = client.delete(f"/jobs/{first['id']}")
    assert deleted.json() == {"id": first["id"], "state": "deleted"}
    assert not folder.exists()
    assert "no job" in error_of(client.get(f"/jobs/{first['id']}"), 404)


def test_job_time_limit(make_client: Any) -> None:
    client = make_client(job_timeout=0.5)
    job = client.post("/jobs", **gatys(iterations=1_000_000)).json()
    done = wait_for(client, job["id"], timeout=30)
    assert done["state"] == "failed"
    assert done["error"] == "stopped after the time limit of 0.5 s per job"


def test_old_jobs_expire(make_client: Any) -> None:
    client = make_client(expire=0.2)
    job = client.post("/jobs", **adain()).json()
    wait_for(client, job["id"])
    folder = client.app.state.manager.folder(job["id"])
    assert folder.is_dir()
    time.sleep(0.3)
    assert client.app.state.manager.expire() == 1
    assert not folder.exists()
    assert error_of(client.get(f"/jobs/{job['id']}"), 404)


def test_restart_recovers_jobs(tmp_path: Path, tiny_encoder: VGG19, tiny_model: Path) -> None:
    """The index as a killed server leaves it (jobs running, queued, done): the next start
    runs the running and queued ones, fails one started too often, keeps results."""
    settings = config(tmp_path, tiny_encoder, tiny_model, max_attempts=2)
    with TestClient(create_app(settings), base_url=BASE) as client:
        done = client.post("/jobs", **adain()).json()
        wait_for(client, done["id"])
        kept = client.get(f"/jobs/{done['id']}/result").content
        spec = client.app.state.manager.store.get(done["id"]).spec
    store = JobStore(settings.data / "jobs.sqlite3")
    folders = settings.data / "jobs"
    ids = {}
    for name in ("running-once", "running-twice", "queued"):
        job_id = f"{name:_<22}"[:22]
        ids[name] = job_id
        (folders / job_id).mkdir()
        for file in ("content", "style-1"):
            (folders / job_id / file).write_bytes((folders / done["id"] / file).read_bytes())
        store.add(Job(job_id, "", "image", "adain", "queued", spec, time.time()), None)
    store.close()
    with sqlite3.connect(settings.data / "jobs.sqlite3") as db:  # as a kill leaves them
        for name, state, attempts in (
            ("running-once", "running", 1),
            ("running-twice", "running", 2),
        ):
            db.execute(
                "UPDATE jobs SET state = ?, attempts = ?, step = 7 WHERE id = ?",
                (state, attempts, ids[name]),
            )
    (folders / "orphan-from-a-crash").mkdir()
    with TestClient(create_app(settings), base_url=BASE) as client:
        assert not (folders / "orphan-from-a-crash").exists()
        assert wait_for(client, ids["running-once"])["state"] == "done"
        assert wait_for(client, ids["queued"])["state"] == "done"
        failed = client.get(f"/jobs/{ids['running-twice']}").json()
        assert failed["state"] == "failed"
        assert "the server stopped while this job ran, 2 times" in failed["error"]
        assert client.get(f"/jobs/{done['id']}/result").content == kept


def test_stopping_the_server_requeues_a_running_job(
    make_client: Any, tmp_path: Path, tiny_encoder: VGG19, tiny_model: Path
) -> None:
    settings = config(tmp_path, tiny_encoder, tiny_model)
    with TestClient(create_app(settings), base_url=BASE) as client:
        job = client.post("/jobs", **gatys(iterations=100_000)).json()
        wait_for(client, job["id"], ("running",))
    store = JobStore(settings.data / "jobs.sqlite3")
    again = store.get(job["id"])
    store.close()
    assert again is not None and again.state == "queued" and again.attempts == 0


# ----------------------------------------------------------------------------- bad input

BAD_UPLOADS = [
    ("not an image", b"hello, this is text", 415, "content: not an image PIL can read"),
    ("empty", b"", 422, "content: empty file"),
    ("truncated", None, 422, "content: truncated or corrupt image"),
    (
        "over the pixel limit",
        None,
        413,
        "content: image is 1200x1000 = 1,200,000 pixels, over this server's limit of 1,000,000",
    ),
    (
        "bomb: header 5000x5000",
        bomb_png(5000, 5000),
        413,
        "content: image is 5000x5000 = 25,000,000 pixels, over this server's limit",
    ),
    (
        "bomb: header 60000x60000",
        bomb_png(60000, 60000),
        413,
        "content: image is over this server's limit of 1,000,000 pixels",
    ),
]


@pytest.mark.parametrize(
    ("case", "data", "status", "expected"), BAD_UPLOADS, ids=[c[0] for c in BAD_UPLOADS]
)
def test_bad_uploads(
    client: TestClient, case: str, data: bytes | None, status: int, expected: str
) -> None:
    if case == "truncated":
        data = truncated_png()
    elif case == "over the pixel limit":
        data = png_bytes(1200, 1000)
    assert data is not None
    message = error_of(
        client.post("/jobs", **form("adain", {"model": "tiny"}, content=data)), status
    )
    assert message.startswith(expected), message
    assert str(client.app.state.manager.root) not in message  # no server paths
    # nothing was kept: no job, no folder
    assert client.get("/jobs").json()["jobs"] == []
    assert list((client.app.state.manager.jobs_dir).iterdir()) == []


def test_a_bad_style_or_mask_is_named(client: TestClient) -> None:
    styles = [png_bytes(40, 40), b"GIF89a not really"]
    message = error_of(client.post("/jobs", **form("adain", {"model": "tiny"}, styles=styles)), 415)
    assert message.startswith("style 2: not an image")
    bad_mask = adain()
    bad_mask["files"].append(("mask", ("labels.png", truncated_png(), "image/png")))
    assert error_of(client.post("/jobs", **bad_mask), 422).startswith("mask: truncated")


def test_uploads_over_the_byte_limit(client: TestClient) -> None:
    big = b"\x89PNG" + b"\x00" * 500_000
    message = error_of(client.post("/jobs", **form("adain", content=big)), 413)
    assert "over this server's limit of 400,000 bytes" in message

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while it streams
        yield b'--x\r\nContent-Disposition: form-data; name="content"; filename="a"\r\n\r\n'
        for _ in range(100):
            yield b"\x00" * 10_000

    response = client.post(
        "/jobs", content=chunks(), headers={"content-type": "multipart/form-data; boundary=x"}
    )
    assert "over this server's limit" in error_of(response, 413)


def expected_message(cls: type, **values: Any) -> str:
    """The message the CLI prints for these option values (same validation)."""
    with pytest.raises(BrushworkError) as caught:
        cls(**values).validate()
    return str(caught.value)


@pytest.mark.parametrize(
    ("method", "options", "expected"),
    [
        ("nope", {}, "unknown method 'nope'; available: gatys, gatys-laplacian"),
        ("adain", {"bogus": 1}, "unknown option 'bogus' for adain; known: alpha"),
        ("adain", {"style_weight": 1}, "unknown option 'style_weight' for adain"),
        ("adain", {"alpha": 2}, expected_message(AdaINOptions, alpha=2)),
        ("adain", {"alpha": "x"}, expected_message(AdaINOptions, alpha="x")),
        ("gatys", {"iterations": 0}, expected_message(GatysOptions, iterations=0)),
        ("gatys", {"tv_weight": -1}, expected_message(GatysOptions, tv_weight=-1)),
        (
            "gatys",
            {"style_layers": ["relu9_9"]},
            expected_message(GatysOptions, style_layers=("relu9_9",)),
        ),
        ("adain", {"size": 0}, "size must be >= 1"),
        ("adain", {"size": 4096}, "size must be <= 256 on this server, not 4096"),
        ("adain", {"device": "cuda"}, "device is set by the server, not per job"),
        ("adain", {"weights": "/etc/passwd"}, "weights is set by the server"),
        ("adain", {"max_memory": 1}, "max-memory is set by the server"),
        ("adain", {"model": "/etc/passwd"}, "model must be one of adain, adain-laplacian"),
        ("adain", {"model": "../tiny.safetensors"}, "model must be one of"),
        ("gatys", {"init": "/etc/hosts"}, "init must be one of content, noise on this server"),
        ("gatys", {"depth_model": "/tmp/x.onnx"}, "depth-model must be one of none, depth"),
        ("wct", {"models": "/tmp"}, "models must be one of wct on this server"),
    ],
)
def test_bad_methods_and_options(
    client: TestClient, method: str, options: dict[str, Any], expected: str
) -> None:
    message = error_of(client.post("/jobs", **form(method, options)), 422)
    assert message.startswith(expected), message


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"options": "{not json"}, "options must be JSON"),
        ({"options": "[1, 2]"}, "options must be a JSON object, not list"),
        ({"styles": '[{"weight": -1}]'}, "style weights must be finite numbers >= 0"),
        ({"styles": '[{"weight": 1}, {"weight": 1}]'}, "styles lists 2 entries for 1 style"),
        ({"styles": '[{"colour": 1}]'}, "style 1: unknown field 'colour'"),
        ({"styles": '[{"layers": ["relu9_9"]}]'}, "style 1 is assigned layer relu9_9"),
        ({"regions": '{"#ff0000": 1}'}, "regions need a label image (mask)"),
        ({"kind": "video"}, "unknown job kind 'video'; this server takes: image"),
    ],
)
def test_bad_form_fields(client: TestClient, fields: dict[str, str], expected: str) -> None:
    request = form("gatys", {"size": 32})
    request["data"].update(fields)
    message = error_of(client.post("/jobs", **request), 422)
    assert message.startswith(expected), message


def test_missing_and_excess_parts(client: TestClient) -> None:
    only_style = form("adain")
    only_style["files"] = only_style["files"][1:]
    assert error_of(client.post("/jobs", **only_style), 422) == "content: field required"
    many = form("adain", {"model": "tiny"}, styles=[png_bytes(40, 40)] * 9)
    assert "this server takes at most 8" in error_of(client.post("/jobs", **many), 422)
    assert error_of(client.post("/jobs", data={"method": "adain"}), 422).startswith("content")
    assert error_of(
        client.post("/jobs", content=b"{}", headers={"content-type": "application/json"}), 422
    )


def test_missing_jobs_and_path_traversal_ids(client: TestClient) -> None:
    for job_id in ("AAAAAAAAAAAAAAAAAAAAAA", "nope", "..%2F..%2Fjobs.sqlite3", "%2e%2e", "a" * 500):
        for suffix in ("", "/result", "/events", "/preview"):
            response = client.get(f"/jobs/{job_id}{suffix}")
            assert response.status_code == 404, (job_id, suffix, response.text)
            assert set(response.json()) == {"error"}
        assert client.delete(f"/jobs/{job_id}").status_code == 404


def test_uploaded_names_are_never_paths(client: TestClient, tmp_path: Path) -> None:
    evil = ("../../../../escaped.png", "..\\..\\escaped2.png")
    request = form("adain", {"model": "tiny", "size": 48}, names=evil)
    job = client.post("/jobs", **request).json()
    assert wait_for(client, job["id"])["state"] == "done"
    folder = client.app.state.manager.folder(job["id"])
    assert sorted(p.name for p in folder.iterdir()) == ["content", "result.png", "style-1"]
    assert not list(tmp_path.rglob("escaped*"))
    shown = client.get(f"/jobs/{job['id']}").json()
    assert shown["content_name"] == "escaped.png"
    assert shown["styles"][0]["name"] == "escaped2.png"


# ----------------------------------------------------------------------------- access


def test_tokens(make_client: Any) -> None:
    client = make_client(tokens=("first-token", "second-token"))
    assert client.get("/").status_code == 200  # the page itself holds no data
    for path in ("/health", "/methods", "/jobs"):
        response = client.get(path)
        assert "a bearer token is needed" in error_of(response, 401)
        assert response.headers["www-authenticate"] == "Bearer"
    assert (
        error_of(client.get("/health", headers={"Authorization": "Bearer wrong"}), 401)
        == "wrong bearer token"
    )
    first = {"Authorization": "Bearer first-token"}
    second = {"Authorization": "Bearer second-token"}
    job = client.post("/jobs", headers=first, **adain()).json()
    wait_for(client, job["id"], headers=first)
    assert client.get(f"/jobs/{job['id']}/result", headers=first).status_code == 200
    for suffix in ("", "/result", "/events", "/preview"):
        message = error_of(client.get(f"/jobs/{job['id']}{suffix}", headers=second), 404)
        assert "another token's" in message
    assert client.delete(f"/jobs/{job['id']}", headers=second).status_code == 404
    assert client.get("/jobs", headers=second).json()["jobs"] == []
    assert len(client.get("/jobs", headers=first).json()["jobs"]) == 1


def test_non_loopback_binding_needs_a_token(
    tmp_path: Path, tiny_encoder: VGG19, tiny_model: Path
) -> None:
    settings = config(tmp_path, tiny_encoder, tiny_model)
    with pytest.raises(BrushworkError, match=r"binding to 0\.0\.0\.0 .* needs a token"):
        create_app(settings, host="0.0.0.0")
    settings.tokens = ("a-long-token",)
    create_app(settings, host="0.0.0.0")
    settings.tokens = ("short",)
    with pytest.raises(BrushworkError, match="at least 8 characters"):
        create_app(settings)


def test_cors_is_off_by_default(make_client: Any) -> None:
    client = make_client()
    origin = {"Origin": "https://elsewhere.example"}
    response = client.get("/methods", headers=origin)
    assert "access-control-allow-origin" not in response.headers
    preflight = client.options("/jobs", headers={**origin, "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in preflight.headers
    refused = client.post("/jobs", headers=origin, **adain())
    assert "cross-origin request" in error_of(refused, 403)
    same = client.post("/jobs", headers={"Origin": BASE}, **adain())
    assert same.status_code == 202
    assert "does not answer for host" in error_of(
        client.get("/health", headers={"Host": "evil.example"}), 421
    )

    allowed = make_client(cors=("https://elsewhere.example",))
    response = allowed.get("/methods", headers=origin)
    assert response.headers["access-control-allow-origin"] == "https://elsewhere.example"
    assert allowed.post("/jobs", headers=origin, **adain()).status_code == 202


def test_serve_flags(tmp_path: Path) -> None:
    from brushwork.service.cli import build_parser, config_from

    args = build_parser().parse_args(
        [
            "--data",
            str(tmp_path),
            "--max-upload",
            "2M",
            "--expire",
            "2h",
            "--job-timeout",
            "90s",
            "--workers",
            "3",
            "--token",
            "abcdefgh",
        ]
    )
    settings, host = config_from(args)
    assert (settings.max_upload, settings.expire, settings.job_timeout) == (2 * 2**20, 7200.0, 90.0)
    assert settings.workers == 3 and settings.tokens == ("abcdefgh",) and host == "127.0.0.1"


def test_serve_refuses_bad_flags(capsys: Any, tmp_path: Path, monkeypatch: Any) -> None:
    from conftest import expect_error

    monkeypatch.delenv("BRUSHWORK_TOKEN", raising=False)
    assert "needs a token" in expect_error(
        capsys, ["serve", "--host", "0.0.0.0", "--data", str(tmp_path)]
    )
    assert "expected a duration" in expect_error(capsys, ["serve", "--expire", "soon"])
    assert "--model expects NAME=PATH" in expect_error(capsys, ["serve", "--model", "x"])
    assert "no such file" in expect_error(
        capsys, ["serve", "--data", str(tmp_path), "--model", "x=/nonexistent.safetensors"]
    )
    assert "workers must be an integer >= 1" in expect_error(
        capsys, ["serve", "--workers", "0", "--data", str(tmp_path)]
    )
    monkeypatch.setenv("BRUSHWORK_TOKEN", "env-token-1,env-token-2")
    from brushwork.service.config import tokens_from

    assert tokens_from([]) == ("env-token-1", "env-token-2")
