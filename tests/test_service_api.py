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
from typing import Any, ClassVar

import pytest
from conftest import save_decoder
from fastapi.testclient import TestClient
from PIL import Image
from servicekit import (
    bomb_png,
    form,
    png_bytes,
    read_events,
    start_when_followed,
    truncated_png,
    wait_for,
)

from brushwork.encoders import VGG19
from brushwork.errors import BrushworkError
from brushwork.methods.adain import AdaINOptions
from brushwork.methods.gatys import GatysOptions
from brushwork.service import ServiceConfig, create_app
from brushwork.service.jobs import JobManager, valid_id
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


def events_of(
    client: TestClient, job_id: str, timeout: float = 60.0
) -> list[tuple[str, dict[str, Any]]]:
    """Every server-sent event of a job until its final one (AssertionError after
    ``timeout`` seconds)."""
    with client.stream("GET", f"/jobs/{job_id}/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        return read_events(stream.iter_lines(), time.monotonic() + timeout)


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


def test_models_carry_a_per_style_models_style_thumbnail(
    client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``GET /models`` gives each network's size and parts, and a per-style model's style
    with its thumbnail as a ``data:`` URI (for the page's ``<img>``); no server paths."""
    import base64

    import torch

    from brushwork import models
    from brushwork.examples import style_path
    from brushwork.models.parts import save_model

    torch.manual_seed(0)
    mosaic = models.Style("Mosaic", "brushwork examples", "CC0-1.0")
    path = save_model(
        tmp_path / "adain-mosaic.safetensors",
        torch.nn.Conv2d(3, 3, 3).state_dict(),
        method="adain",
        encoder="vgg19:relu4_1:512",
        style=mosaic,
        style_image=style_path("mosaic"),
    )
    entry = models.ModelInfo(
        "adain-mosaic",
        str(path),
        "adain",
        "vgg19:relu4_1:512",
        "docs/models/adain.md",
        "AdaIN for the mosaic style",
        "relu4_1",
        style=mosaic,
    )
    monkeypatch.setattr(models, "MODELS", {**models.MODELS, entry.name: entry})

    rows = {m["name"]: m for m in client.get("/models").json()["models"]}
    row = rows["adain-mosaic"]
    assert row["installed"] and row["bytes"] == path.stat().st_size and row["parts"] == []
    assert row["source"] == "bundled" and "file" not in row
    style = row["style"]
    assert {k: style[k] for k in ("name", "source", "licence")} == {
        "name": "Mosaic",
        "source": "brushwork examples",
        "licence": "CC0-1.0",
    }
    assert style["thumbnail"].startswith("data:image/png;base64,")
    png = base64.b64decode(style["thumbnail"].partition(",")[2])
    assert Image.open(io.BytesIO(png)).format == "PNG"
    assert rows["adain"]["style"] is None  # a network for any style
    assert rows["tiny"]["source"] == "operator" and rows["tiny"]["style"] is None
    assert rows["tiny"]["parts"] == [] and "bytes" in rows["tiny"]
    assert not any("file" in m for m in rows.values())


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
    # the page runs only its own script and styles: a policy, and nothing inline for it
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "img-src 'self' data: blob:" in policy
    assert "unsafe-inline" not in policy
    assert "<script>" not in html and " style=" not in html and " on" + "click=" not in html
    assert client.get("/openapi.json").json()["paths"]["/jobs"]["post"]
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/openapi.json" in docs.text
    from brushwork.service.routes.docs import swagger_ui_folder

    assert "http://" not in docs.text and "https://" not in docs.text  # works offline
    if swagger_ui_folder() is not None:  # Swagger UI, served from here
        assert "/static/swagger-ui/swagger-ui-bundle.js" in docs.text
        assert '"validatorUrl": null' in docs.text  # no badge from validator.swagger.io
        bundle = client.get("/static/swagger-ui/swagger-ui-bundle.js")
        assert bundle.status_code == 200 and len(bundle.content) > 100_000
    assert client.get("/redoc").status_code == 404  # no offline ReDoc: not offered


def test_docs_without_swagger_ui_stay_offline(make_client: Any, monkeypatch: Any) -> None:
    """Without ``swagger-ui-bundle-v2``, ``/docs`` is a plain page of the operations, not
    Swagger UI from a CDN."""
    import brushwork.service.routes.docs as docs_module

    monkeypatch.setattr(docs_module, "swagger_ui_folder", lambda: None)
    client = make_client()
    docs = client.get("/docs")
    assert docs.status_code == 200 and docs.headers["content-type"].startswith("text/html")
    assert "http://" not in docs.text and "https://" not in docs.text
    assert (
        "<script" not in docs.text
        and "default-src 'none'" in docs.headers["content-security-policy"]
    )
    for needle in ("POST /jobs", "GET /jobs/{job_id}/events", "POST /stylize", "/openapi.json"):
        assert needle in docs.text, needle
    assert "content, style" in docs.text  # the form fields of a submission
    assert client.get("/static/swagger-ui/swagger-ui-bundle.js").status_code == 404


def test_the_page_shows_the_declared_main_options_first(client: TestClient) -> None:
    """``main`` in ``GET /methods`` is the declaration's (``option(..., main=True)``):
    every method shows some options first, and of the controls the output size."""
    from brushwork.methods import get_method
    from brushwork.options import fields_of

    info = client.get("/methods").json()
    for method in info["methods"]:
        declared = {f.name: f.main for f in fields_of(get_method(method["name"]).options_class)}
        shown = {o["name"]: o["main"] for o in method["options"]}
        assert shown == {name: declared[name] for name in shown}, method["name"]
        assert any(shown.values()), f"{method['name']} shows no option first"
    assert [c["name"] for c in info["controls"] if c["main"]] == ["size"]


def test_one_source_for_the_default_methods(client: TestClient) -> None:
    """A form that names no method gets the service's defaults: the schema's, those of
    ``GET /methods`` (the page's choice) and what a submission runs are the same."""
    from brushwork.defaults import DEFAULT_METHOD, DEFAULT_ONE_PASS_METHOD

    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    assert schemas["Body_create_job"]["properties"]["method"]["default"] == DEFAULT_METHOD
    assert schemas["Body_stylize"]["properties"]["method"]["default"] == DEFAULT_ONE_PASS_METHOD
    info = client.get("/methods").json()
    assert info["defaults"] == {"job": DEFAULT_METHOD, "sync": DEFAULT_ONE_PASS_METHOD}
    sync = {m["name"]: m["sync"] for m in info["methods"]}
    assert sync[DEFAULT_ONE_PASS_METHOD] is True and sync[DEFAULT_METHOD] is False
    request = form(DEFAULT_METHOD, {"size": 32, "iterations": 1})
    del request["data"]["method"]
    response = client.post("/jobs", **request)
    assert response.status_code == 202 and response.json()["method"] == DEFAULT_METHOD


def test_each_app_has_its_own_state(make_client: Any, tmp_path: Path) -> None:
    """Routes reach the service through their app's state: two apps in one process answer
    with their own limits, schema and jobs."""
    small = make_client(max_styles=2, data=tmp_path / "small")
    large = make_client(max_styles=5, data=tmp_path / "large")
    for client, limit in ((small, 2), (large, 5)):
        assert client.get("/methods").json()["limits"]["max_styles"] == limit
        schemas = client.get("/openapi.json").json()["components"]["schemas"]
        for body in ("Body_create_job", "Body_stylize"):
            assert schemas[body]["properties"]["style"]["maxItems"] == limit
        assert "x-brushwork" not in json.dumps(schemas)
    job = small.post("/jobs", **gatys(iterations=1)).json()
    assert small.get(f"/jobs/{job['id']}").status_code == 200
    assert "no job" in error_of(large.get(f"/jobs/{job['id']}"), 404)
    assert small.app.state.service is not large.app.state.service


def test_a_malformed_form_is_answered_as_documented(client: TestClient) -> None:
    """A body that is not a form: ``400`` with one line, an answer the schema lists."""
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/jobs", "/stylize"):
        response = client.post(
            path,
            content=b"\xcf--b--\r\n",
            headers={"content-type": "multipart/form-data; boundary=b"},
        )
        assert "multipart" in error_of(response, 400)
        assert "400" in paths[path]["post"]["responses"]


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


def test_a_job_too_large_to_paint_whole_is_painted_in_tiles(make_client: Any) -> None:
    """Print size as a job: a picture over the server's memory limit is painted in tiles
    (the server's, from its limit: 4 at 460 MiB), its progress counts them, its details
    say how many; a job may ask for 16 bits; it may not choose the tiles."""
    client = make_client(max_memory=460 * 2**20)
    refused = client.post("/jobs", **adain(tile=144))
    assert "tile is set by the server" in error_of(refused, 422)
    response = client.post("/jobs", **adain(size=256, bit_depth=16))
    assert response.status_code == 202, response.text
    done = wait_for(client, response.json()["id"])
    assert done["state"] == "done", done
    assert done["details"]["tiles"] == 4 and done["details"]["size"] == [256, 213]
    assert done["progress"]["fraction"] == 1.0
    import png

    result = client.get(done["links"]["result"]).content
    width, height, _, info = png.Reader(bytes=result).read()
    assert (width, height, info["bitdepth"]) == (256, 213, 16)


def test_weighted_styles_mask_and_regions(client: TestClient) -> None:
    """A submission with everything the form takes: two weighted styles (one with its own
    layers), a label image and its regions."""
    labels = Image.new("RGB", (48, 40), (255, 0, 0))
    labels.paste((0, 0, 255), (24, 0, 48, 40))
    buffer = io.BytesIO()
    labels.save(buffer, format="PNG")
    request = form(
        "gatys",
        {"size": 32, "iterations": 2},
        styles=[png_bytes(40, 40, seed=1), png_bytes(36, 44, seed=2)],
    )
    request["files"].append(("mask", ("labels.png", buffer.getvalue(), "image/png")))
    request["data"]["styles"] = json.dumps([0.5, {"weight": 2, "layers": ["relu1_1"]}])
    request["data"]["regions"] = json.dumps({"#ff0000": 1, "#0000ff": 2})
    job = client.post("/jobs", **request)
    assert job.status_code == 202, job.text
    shown = job.json()
    assert [(s["weight"], s["layers"]) for s in shown["styles"]] == [
        (0.5, None),
        (2, ["relu1_1"]),
    ]
    done = wait_for(client, shown["id"])
    assert done["state"] == "done", done
    folder = client.app.state.manager.folder(shown["id"])
    assert {"content", "style-1", "style-2", "mask", "result.png"} <= {
        p.name for p in folder.iterdir()
    }
    result = Image.open(io.BytesIO(client.get(done["links"]["result"]).content))
    assert result.size == (32, 27)


def test_gatys_job_streams_progress_and_previews(make_client: Any, monkeypatch: Any) -> None:
    # the job starts once its reader follows it: done first, it would show only its end
    monkeypatch.setattr(JobManager, "_run", start_when_followed())
    client = make_client()
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
    # a job that fails in the worker answers 422 with its message (no server path in it)
    bad = form("adain", {"model": "adain", "size": 48})  # the real decoder: wrong encoder
    assert error_of(client.post("/stylize", **bad), 422) == (
        "model adain.safetensors was trained on encoder 'vgg19:relu4_1:512'; this run uses "
        "'vgg19:relu4_1:32'"
    )


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


def test_old_jobs_expire(make_client: Any, monkeypatch: Any) -> None:
    # no janitor: its round (every second) could expire the job before the test does
    monkeypatch.setattr(JobManager, "_janitor", lambda self: self.stopping.wait())
    client = make_client(expire=0.2)
    job = client.post("/jobs", **adain()).json()
    wait_for(client, job["id"])
    folder = client.app.state.manager.folder(job["id"])
    assert folder.is_dir()
    time.sleep(0.3)
    assert client.app.state.manager.expire() == 1
    assert not folder.exists()
    assert error_of(client.get(f"/jobs/{job['id']}"), 404)


def test_the_janitor_expires_old_jobs(make_client: Any) -> None:
    client = make_client(expire=0.2)  # a round every second
    job = client.post("/jobs", **adain()).json()
    wait_for(client, job["id"])
    end = time.monotonic() + 30
    while client.get(f"/jobs/{job['id']}").status_code != 404:
        assert time.monotonic() < end, "the janitor did not expire an old job"
        time.sleep(0.1)
    assert not client.app.state.manager.folder(job["id"]).exists()


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
    tmp_path: Path, tiny_encoder: VGG19, tiny_model: Path
) -> None:
    settings = config(tmp_path, tiny_encoder, tiny_model)
    with TestClient(create_app(settings), base_url=BASE) as client:
        job = client.post("/jobs", **gatys(iterations=100_000)).json()
        wait_for(client, job["id"], ("running",))
    store = JobStore(settings.data / "jobs.sqlite3")  # the app closed it: no worker runs
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
        ({"kind": "movie"}, "unknown job kind 'movie'; this server takes: image"),
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
    assert client.get("/static/app.js").status_code == 200
    for path in ("/health", "/methods", "/jobs", "/docs", "/openapi.json", "/examples"):
        response = client.get(path)
        assert "a bearer token is needed" in error_of(response, 401)
        assert response.headers["www-authenticate"] == "Bearer"
    first_only = {"Authorization": "Bearer first-token"}
    assert client.get("/docs", headers=first_only).status_code == 200
    assert client.get("/openapi.json", headers=first_only).json()["paths"]
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
    """The flags are generated from ServeOptions' declarations."""
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
            "--max-readers-per-job",
            "2",
            "--style-cache",
            "0",
        ]
    )
    settings = config_from(args)
    assert (settings.max_upload, settings.expire, settings.job_timeout) == (2 * 2**20, 7200.0, 90.0)
    assert settings.workers == 3 and settings.tokens == ("abcdefgh",)
    assert settings.host == "127.0.0.1" and settings.data == tmp_path
    assert (settings.max_readers_per_job, settings.style_cache) == (2, 0)
    assert settings.queue == 16  # not given: the declared default


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
    # the declarations' ranges, in the CLI's words
    assert expect_error(capsys, ["serve", "--workers", "0", "--data", str(tmp_path)]) == (
        "workers must be >= 1, not 0"
    )
    assert expect_error(capsys, ["serve", "--port", "70000"]) == (
        "port must be <= 65535, not 70000"
    )
    assert "argument --max-upload: expected a size like 8G" in expect_error(
        capsys, ["serve", "--max-upload", "lots"]
    )
    assert "max-connections (8) must be larger than max-readers (64)" in expect_error(
        capsys, ["serve", "--max-connections", "8", "--data", str(tmp_path)]
    )
    monkeypatch.setenv("BRUSHWORK_TOKEN", "env-token-1,env-token-2")
    from brushwork.service.config import tokens_from

    assert tokens_from([]) == ("env-token-1", "env-token-2")


# ----------------------------------------------------------------------------- review fixes


def test_several_workers_reuse_prepared_styles(make_client: Any, monkeypatch: Any) -> None:
    """Each worker keeps its painters by (method, values): the memory share is computed
    once, at the start, not per job (the memory available changes all the time)."""
    import itertools

    import brushwork.memory

    counter = itertools.count()
    monkeypatch.setattr(
        brushwork.memory, "available_memory", lambda device=None: 2**33 + 4096 * next(counter)
    )
    client = make_client(workers=2)
    share = client.app.state.manager.job_memory
    assert share is not None and abs(share - 0.8 * 2**33 / 2) < 2**20
    details = []
    for _ in range(3):  # two workers, three jobs: some worker paints twice
        job = client.post("/jobs", **adain()).json()
        details.append(wait_for(client, job["id"])["details"])
    assert [d["reused_styles"] for d in details].count(True) >= 1, details
    assert client.app.state.manager.job_memory == share


def test_job_memory_is_the_devices(
    tmp_path: Path, tiny_encoder: VGG19, tiny_model: Path, monkeypatch: Any
) -> None:
    """With several workers each job plans within a share of the jobs' device's memory:
    the GPU's free memory on CUDA, not the system's RAM."""
    import torch

    import brushwork.memory
    import brushwork.precision
    from brushwork.service.jobs import JobManager

    asked = []

    def available(device: Any = None) -> int:
        asked.append(getattr(device, "type", device))
        return 10 * 2**30 if asked[-1] == "cuda" else 100 * 2**30

    monkeypatch.setattr(brushwork.memory, "available_memory", available)
    monkeypatch.setattr(brushwork.precision, "resolve_device", lambda d: torch.device("cuda"))
    manager = JobManager(config(tmp_path, tiny_encoder, tiny_model, workers=4))
    try:
        assert asked == ["cuda"] and manager.job_memory == int(0.8 * 10 * 2**30 / 4)
    finally:
        manager.store.close()


def test_planned_style_sizes_are_bounded(client: TestClient) -> None:
    """A small output with a large style scale plans a large style: refused (422) from the
    sizes, before anything is decoded; nothing is kept."""
    request = form("adain", {"model": "tiny", "size": 32, "style_scale": 100})
    assert error_of(client.post("/jobs", **request), 422) == (
        "style 1 would be 3200x3200 px, over this server's 256 px; give a smaller "
        "style_scale or style_size"
    )
    assert list(client.app.state.manager.jobs_dir.iterdir()) == []
    fine = client.post("/jobs", **form("adain", {"model": "tiny", "size": 32, "style_scale": 2}))
    assert fine.status_code == 202


def refused_stream(client: TestClient, path: str, status: int) -> str:
    """The one-line message of an event stream refused with ``status`` (a stream that
    opens instead fails the test at once, never waits for the job)."""
    with client.stream("GET", path) as stream:
        assert stream.status_code == status, stream.status_code
        stream.read()
        body = json.loads(stream.text)
        assert set(body) == {"error"}
        assert stream.headers["retry-after"]
        return str(body["error"])


def test_event_readers_are_capped(make_client: Any) -> None:
    client = make_client(max_readers=2, max_readers_per_job=1)
    long = client.post("/jobs", **gatys(iterations=100_000)).json()
    other = client.post("/jobs", **gatys(iterations=100_000)).json()  # waits in the queue
    with client.stream("GET", f"/jobs/{long['id']}/events") as first:
        lines = first.iter_lines()  # kept: the stream lives as long as its line iterator
        assert next(lines).startswith("event: state")
        assert client.get("/health").json()["readers"] == 1
        message = refused_stream(client, f"/jobs/{long['id']}/events", 429)
        assert "already has 1 event readers, the most this server allows" in message
        with client.stream("GET", f"/jobs/{other['id']}/events") as third:
            more = third.iter_lines()
            assert next(more).startswith("event: state")
            refused_stream(client, f"/jobs/{other['id']}/events", 429)  # per job first
            client.app.state.manager.hub.per_job = 5
            message = refused_stream(client, f"/jobs/{other['id']}/events", 503)
            assert "this server already has 2 event readers" in message
    end = time.monotonic() + 10
    while client.get("/health").json()["readers"]:
        assert time.monotonic() < end, "closed streams kept their subscriptions"
        time.sleep(0.05)
    for job in (long, other):
        client.delete(f"/jobs/{job['id']}")


class _Server:
    """uvicorn's Server, recording what it was given instead of serving."""

    seen: ClassVar[dict[str, Any]] = {}

    def __init__(self, config: Any) -> None:
        self.seen["config"] = config

    def run(self, sockets: list[Any]) -> None:
        self.seen["address"] = sockets[0].getsockname()


def test_serve_bounds_connections(monkeypatch: Any, tmp_path: Path) -> None:
    import uvicorn

    import brushwork.service.app
    from brushwork.service.process import free_port

    monkeypatch.setattr(uvicorn, "Server", _Server)
    monkeypatch.setattr(brushwork.service.app, "create_app", lambda config: "app")
    from brushwork.cli import main

    port = free_port()
    argv = ["serve", "--data", str(tmp_path), "--max-connections", "99", "--threads", "1"]
    assert main([*argv, "--port", str(port)]) == 0
    assert _Server.seen["config"].limit_concurrency == 99
    assert _Server.seen["address"] == ("127.0.0.1", port)  # the socket bound before the app


def test_serve_refuses_a_busy_port_before_anything_starts(
    capsys: Any, monkeypatch: Any, tmp_path: Path
) -> None:
    """One line, exit status 2, no data folder made, no worker started."""
    import socket

    from conftest import expect_error

    import brushwork.service.app

    def refuse(config: Any) -> None:
        raise AssertionError("the app was made")

    monkeypatch.setattr(brushwork.service.app, "create_app", refuse)
    data = tmp_path / "data"
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        message = expect_error(capsys, ["serve", "--data", str(data), "--port", str(port)])
    assert message == f"cannot listen on 127.0.0.1:{port}: Address already in use"
    assert list(tmp_path.iterdir()) == []


def test_serve_refuses_a_bad_model_before_making_the_data_folder(
    capsys: Any, tmp_path: Path
) -> None:
    from conftest import expect_error

    model = tmp_path / "model.safetensors"
    model.write_bytes(b"not a checkpoint")
    data = tmp_path / "data"
    message = expect_error(capsys, ["serve", "--data", str(data), "--model", f"x={model}"])
    assert message.startswith(f"--model x={model}: not a brushwork checkpoint")
    assert not data.exists()


def test_serve_refuses_an_index_that_is_not_a_database(
    capsys: Any, tmp_path: Path, tiny_encoder: VGG19, tiny_model: Path
) -> None:
    """Refused in one line before the server starts, the file and its folder left as they
    were; the app (and the index itself) refuse it too."""
    from conftest import expect_error

    data = tmp_path / "data"
    data.mkdir()
    index = data / "jobs.sqlite3"
    index.write_text("my notes, not a database\n")
    message = expect_error(capsys, ["serve", "--data", str(data)])
    assert message == (
        f"{index} is not a SQLite database (the job index of --data); move it away or "
        "choose another --data"
    )
    assert sorted(p.name for p in data.iterdir()) == ["jobs.sqlite3"]
    with pytest.raises(BrushworkError, match="is not a SQLite database"):
        create_app(config(tmp_path, tiny_encoder, tiny_model))
    assert index.read_text() == "my notes, not a database\n"
    assert sorted(p.name for p in data.iterdir()) == ["jobs.sqlite3"]  # no jobs/ made
    index.write_bytes(b"SQLite format 3\x00" + b"\xff" * 200)  # the header, then garbage
    with pytest.raises(BrushworkError, match=f"{index} is not a usable job index: "):
        JobStore(index)


def test_tokens_are_checked_before_the_body(make_client: Any, monkeypatch: Any) -> None:
    """Without a good token a request is answered 401 before its body is read or parsed,
    before the body limit and the queue gate."""
    client = make_client(tokens=("first-token",), max_upload=1000)
    big = client.post("/jobs", **adain())  # over the body limit, and no token
    assert "a bearer token is needed" in error_of(big, 401)
    broken = client.post(
        "/jobs",
        content=b"not multipart at all",
        headers={"content-type": "multipart/form-data; boundary=x", "Authorization": "Bearer x"},
    )
    assert error_of(broken, 401) == "wrong bearer token"
    manager = client.app.state.manager
    monkeypatch.setattr(manager, "queue_full", lambda: True)
    assert "bearer token" in error_of(client.post("/stylize", **adain()), 401)
    token = {"Authorization": "Bearer first-token"}
    assert "over this server's limit" in error_of(
        client.post("/jobs", headers=token, **adain()), 413
    )


def test_messages_never_show_server_paths(client: TestClient, monkeypatch: Any) -> None:
    """Style Swap's inverse network missing from the installation: GET /methods marks its
    method not ready, a job of it is refused before its uploads are stored, and no message
    names a server folder."""
    import dataclasses

    from brushwork import models

    info = models.MODELS["styleswap-inverse"]
    monkeypatch.setitem(
        models.MODELS, "styleswap-inverse", dataclasses.replace(info, file="gone.safetensors")
    )
    methods = {m["name"]: m for m in client.get("/methods").json()["methods"]}
    inverse = methods["styleswap-inverse"]
    assert inverse["ready"] is False and inverse["models"] == []
    assert "styleswap-inverse' is missing" in inverse["problem"]
    assert "/" not in inverse["problem"]
    assert methods["styleswap"]["ready"] is True  # it optimizes: no network needed
    request = form("styleswap-inverse", {"size": 32}, content=b"not even an image")
    message = error_of(client.post("/jobs", **request), 422)
    assert message == (
        "the bundled model 'styleswap-inverse' is missing from this installation "
        "(gone.safetensors); reinstall brushwork or pass a file"
    )
    assert list(client.app.state.manager.jobs_dir.iterdir()) == []


def test_public_message() -> None:
    from brushwork.service.uploads import public_message

    folder = Path("/srv/data/jobs/abc")
    labels = {folder / "content": "content", f"{folder}/": ""}
    assert public_message(f"{folder}/content: truncated", labels) == "content: truncated"
    assert public_message(f"cannot write {folder}/result.png", labels) == "cannot write result.png"
    assert (
        public_message("model /opt/x/models/a.safetensors was\ntrained")
        == "model a.safetensors was trained"
    )
    kept = "use POST /jobs, see https://example.org/a/b, or ./relative/path"
    assert public_message(kept) == kept


def test_cors_headers_on_refusals(make_client: Any, monkeypatch: Any) -> None:
    """With --cors, refusals of the middlewares carry the CORS headers too, so that the
    calling page can read them."""
    origin = "https://elsewhere.example"
    client = make_client(cors=(origin,), max_upload=1000)
    asked = {"Origin": origin}
    wrong_host = client.get("/health", headers={**asked, "Host": "evil.example"})
    assert error_of(wrong_host, 421) and wrong_host.headers["access-control-allow-origin"] == origin
    too_big = client.post("/jobs", headers=asked, **adain())
    assert error_of(too_big, 413) and too_big.headers["access-control-allow-origin"] == origin
    monkeypatch.setattr(client.app.state.manager, "queue_full", lambda: True)
    full = client.post("/jobs", headers=asked, **form("adain", content=b"x", styles=[b"y"]))
    assert error_of(full, 429) and full.headers["access-control-allow-origin"] == origin
    assert "retry-after" in full.headers["access-control-expose-headers"].lower()
    locked = make_client(cors=(origin,), tokens=("first-token",))
    refused = locked.get("/jobs", headers=asked)
    assert error_of(refused, 401) and refused.headers["access-control-allow-origin"] == origin
    preflight = locked.options(
        "/jobs",
        headers={
            **asked,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert preflight.status_code == 200  # no token in a preflight: CORS answers it first


class WatchedLock:
    """The index's lock, noting when a thread other than the test's and the server's own
    (a request's) comes to take it."""

    def __init__(self, lock: Any) -> None:
        self.lock = lock
        self.wanted = threading.Event()
        self.test = threading.current_thread()

    def __enter__(self) -> Any:
        thread = threading.current_thread()
        if thread is not self.test and not thread.name.startswith("brushwork-"):
            self.wanted.set()
        return self.lock.__enter__()

    def __exit__(self, *exc: Any) -> Any:
        return self.lock.__exit__(*exc)


def test_the_index_never_blocks_the_event_loop(client: TestClient, monkeypatch: Any) -> None:
    """Handlers that read the index run in threads: while the index is busy (its lock
    held), the page still answers."""
    job = client.post("/jobs", **adain()).json()
    wait_for(client, job["id"])
    store = client.app.state.manager.store
    requests: list[tuple[str, str]] = [
        ("GET", "/health"),
        ("GET", "/jobs"),
        ("GET", f"/jobs/{job['id']}"),
        ("GET", f"/jobs/{job['id']}/events"),
        ("GET", f"/jobs/{job['id']}/result"),
        ("POST", "/jobs"),
    ]
    index_lock = store._lock
    for method, path in requests:
        answers: list[int] = []
        page: list[int] = []
        kwargs = adain() if method == "POST" else {}
        waiting = threading.Thread(
            target=lambda m=method, p=path, k=kwargs, a=answers: a.append(
                client.request(m, p, **k).status_code
            )
        )
        probe = threading.Thread(target=lambda a=page: a.append(client.get("/").status_code))
        lock = WatchedLock(index_lock)
        monkeypatch.setattr(store, "_lock", lock)
        with lock:  # the index is busy
            waiting.start()
            # the request is in its handler, waiting for the index
            assert lock.wanted.wait(30), f"{method} {path} never came to the index"
            probe.start()
            probe.join(30)  # a blocked event loop would not answer before the lock is free
            blocked = probe.is_alive()
            assert not answers
        probe.join(30)
        waiting.join(30)
        assert not blocked, f"{method} {path} blocked the event loop"
        assert page == [200] and answers and answers[0] < 500, (method, path, answers)


def test_finish_moves_only_running_jobs(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "index.sqlite3")
    try:
        store.add(Job("a" * 22, "", "image", "adain", "queued", {}, time.time()), None)
        assert not store.finish("a" * 22, "done")  # queued: not a worker's to finish
        claimed = store.claim()
        assert claimed is not None and claimed.state == "running"
        store.requeue("a" * 22)  # the server stopped it meanwhile
        assert not store.finish("a" * 22, "failed", error="late")
        assert store.get("a" * 22).state == "queued"  # type: ignore[union-attr]
        store.claim()
        assert store.finish("a" * 22, "done")
        assert store.get("a" * 22).state == "done"  # type: ignore[union-attr]
    finally:
        store.close()


def test_stop_keeps_the_index_open_while_a_worker_runs(
    tmp_path: Path, tiny_encoder: VGG19, tiny_model: Path, monkeypatch: Any
) -> None:
    """A worker busy past stop()'s timeout still writes its job's fate to the index."""
    from brushwork.painter import Painter

    inside, release = threading.Event(), threading.Event()
    original = Painter.paint

    def slow(self: Painter, *args: Any, **kwargs: Any) -> Any:
        inside.set()
        release.wait(30)  # deaf to the stop: as a long uninterruptible step would be
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Painter, "paint", slow)
    app = create_app(config(tmp_path, tiny_encoder, tiny_model))
    with TestClient(app, base_url=BASE) as client:
        job = client.post("/jobs", **adain()).json()
        assert inside.wait(30)
        manager = client.app.state.manager
        monkeypatch.setattr(manager, "stop", lambda timeout=0.2: type(manager).stop(manager, 0.2))
    # the app stopped; the worker is still in its job
    assert not manager.store.closed
    release.set()
    end = time.monotonic() + 30
    while manager.store.get(job["id"]).state == "running":
        assert time.monotonic() < end
        time.sleep(0.05)
    assert manager.store.get(job["id"]).state == "queued"  # back in the queue, not lost
    for thread in manager._threads:
        thread.join(30)
    manager.store.close()


def test_cancel_stops_between_stages(client: TestClient, monkeypatch: Any) -> None:
    """A job cancelled while its content is decoded stops there: its styles are never
    prepared (nor the encoder loaded), let alone painted."""
    import brushwork.painter
    from brushwork.stylizer import Stylizer

    manager = client.app.state.manager
    decode = brushwork.painter.as_image
    prepared: list[bool] = []

    def as_image(value: Any, what: str, *args: Any) -> Any:
        if what == "content":
            running = [j for j in manager.store.newest(None) if j.state == "running"]
            manager.cancel(running[0].id)
        return decode(value, what, *args)

    monkeypatch.setattr(brushwork.painter, "as_image", as_image)
    monkeypatch.setattr(Stylizer, "prepare", lambda *a, **k: prepared.append(True))
    job = client.post("/jobs", **adain()).json()
    done = wait_for(client, job["id"])
    assert done["state"] == "cancelled" and not prepared


def test_uploads_reach_the_disk_before_the_index(client: TestClient, monkeypatch: Any) -> None:
    import os

    order: list[str] = []
    sync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: order.append("fsync") or sync(fd))
    add = JobStore.add
    monkeypatch.setattr(JobStore, "add", lambda *a, **k: order.append("add") or add(*a, **k))
    assert client.post("/jobs", **adain()).status_code == 202
    # content, style, their folder; then the index row
    assert order[-1] == "add" and order[:-1].count("fsync") >= 3, order


def test_stylize_takes_what_methods_calls_sync(client: TestClient) -> None:
    """One rule for GET /methods' `sync` and POST /stylize, checked before any upload is
    stored or read."""
    for entry in client.get("/methods").json()["methods"]:
        request = form(entry["name"], {"size": 32}, content=b"not an image")
        answer = client.post("/stylize", **request)
        refused = (
            answer.status_code == 422
            and "POST /stylize is for one-pass methods" in (answer.json()["error"])
        )
        assert refused is (not entry["sync"]), (entry["name"], answer.text)
    assert list(client.app.state.manager.jobs_dir.iterdir()) == []


def test_free_text_options_are_refused(monkeypatch: Any) -> None:
    """A new option that takes any text (a string or a list of strings without choices)
    and declares no ``names`` is not offered: it could name a file."""
    from dataclasses import dataclass
    from types import SimpleNamespace

    from brushwork.options import Options, fields_of, option
    from brushwork.service import spec

    @dataclass
    class FakeOptions(Options):
        files: tuple[str, ...] = option((), "files to read")
        strength: float = option(1.0, "how strong", minimum=0)

    fake = SimpleNamespace(options_class=FakeOptions, default_options=FakeOptions)
    monkeypatch.setattr(spec, "get_entry", lambda name: SimpleNamespace(load=lambda: fake))
    monkeypatch.setattr(spec, "missing_files", lambda name: {})
    assert spec.is_free_text({f.name: f for f in fields_of(FakeOptions)}["files"])
    with pytest.raises(BrushworkError, match="unknown option 'files' for fake"):
        spec.parse_options("fake", '{"files": ["/etc/passwd"]}', max_side=64, extra_models={})
    assert [o["name"] for o in spec.client_options("fake", {})] == ["strength"]

    @dataclass
    class NamedOptions(Options):
        files: tuple[str, ...] = option((), "files to read", names=("a", "b"))

    named = SimpleNamespace(options_class=NamedOptions, default_options=NamedOptions)
    monkeypatch.setattr(spec, "get_entry", lambda name: SimpleNamespace(load=lambda: named))
    assert spec.parse_options("fake", '{"files": ["a"]}', max_side=64, extra_models={})
    with pytest.raises(BrushworkError, match="files must be one of a, b on this server, not 'c'"):
        spec.parse_options("fake", '{"files": ["a", "c"]}', max_side=64, extra_models={})


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"options": '{"alpha": true, "model": "tiny"}'}, "alpha must be a number, not true"),
        ({"options": '{"model": null}'}, "model must be given, not null"),
        ({"options": '{"size": [true]}'}, "size must be an integer, not [true]"),
        ({"styles": "[true]"}, 'style 1: expected {"weight": W, "layers": [...]}, not true'),
        ({"regions": '{"#ff0000": false}'}, "region '#ff0000': expected a style number or null"),
    ],
)
def test_messages_show_json_values(
    client: TestClient, fields: dict[str, str], expected: str
) -> None:
    request = form("adain", {"model": "tiny"})
    request["data"].update(fields)
    if "regions" in fields:
        request["files"].append(("mask", ("m.png", png_bytes(), "image/png")))
    message = error_of(client.post("/jobs", **request), 422)
    assert message.startswith(expected), message
    assert "None" not in message and "True" not in message and "False" not in message


def test_job_ids() -> None:
    from brushwork.service.records import ID_LENGTH, new_id

    made = {new_id() for _ in range(50)}
    assert {len(i) for i in made} == {ID_LENGTH} and all(valid_id(i) for i in made)
    assert not valid_id("a" * (ID_LENGTH - 1)) and not valid_id("/" * ID_LENGTH)
