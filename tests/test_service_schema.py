"""A bounded schemathesis run against the service's OpenAPI schema: whatever the schema
allows a client to send (and a bit more), the server never answers 500, and its answers
match the schema. Workers run as threads of this process with the tiny random encoder.

The schema declares ``method`` and ``kind`` as enums, the uploads as ``format: binary``
(filled here with small PNGs, and a few broken files) and the JSON fields as ``format: json``
(filled with small runs, and bad values), so generated submissions reach ``202`` and real
jobs; its links from ``POST /jobs`` to ``GET`` / ``DELETE /jobs/{id}``,
``/result`` and ``/preview`` let the stateful run use the ids it got."""

from __future__ import annotations

import io
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import schemathesis
from conftest import save_decoder
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from PIL import Image
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from servicekit import png_bytes, truncated_png

from brushwork.encoders import VGG19
from brushwork.service import ServiceConfig, create_app

EXAMPLES = 25
"""Examples per operation (13 operations): about 10 s in all."""
STATEFUL_EXAMPLES = 12
STATEFUL_STEPS = 5
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
SEEN: Counter[tuple[str, str, int]] = Counter()
"""(method, path template, status) of every call of the stateful run."""
CALLS: Counter[tuple[str, str, int]] = Counter()
"""The same for the run per operation."""


def _images() -> list[bytes]:
    grey = io.BytesIO()
    Image.new("L", (24, 20), 128).save(grey, format="PNG")
    return [
        png_bytes(32, 24, seed=1),
        png_bytes(40, 40, seed=2),
        png_bytes(20, 36, seed=3, mode="RGBA"),
        png_bytes(64, 48, seed=4),
        grey.getvalue(),
        truncated_png(),
        b"not an image",
    ]


def _json_texts() -> st.SearchStrategy[str]:
    """The form's JSON fields (options, styles, regions): valid small runs, objects of
    known names with any values, lists, and text that is not JSON."""
    names = ["size", "iterations", "model", "alpha", "style_scale", "init", "device", "levels"]
    values = st.one_of(
        st.integers(-3, 70),
        st.floats(allow_nan=False),
        st.booleans(),
        st.none(),
        st.text(max_size=6),
    )
    return st.one_of(
        st.sampled_from(
            [
                "{}",
                '{"size": 24, "iterations": 2}',
                '{"size": 32, "model": "tiny"}',
                '{"size": 24, "model": "tiny", "alpha": 0.5}',
                '[{"weight": 0.5}]',
                "[]",
            ]
        ),
        st.dictionaries(st.sampled_from(names), values, max_size=3).map(json.dumps),
        st.lists(st.one_of(values, st.fixed_dictionaries({"weight": values})), max_size=3).map(
            json.dumps
        ),
        st.text(max_size=12),
    )


schemathesis.openapi.format("binary", st.sampled_from(_images()))
schemathesis.openapi.format("json", _json_texts())


@schemathesis.hook
def map_body(context: Any, body: Any) -> Any:
    """Style uploads are optional in the schema (a method that paints its network's own
    styles takes none), but most forms need one: a generated form without any gets one
    when its method takes style images, so that the fuzzer reaches real jobs, not only the
    "at least one style image is needed" answer."""
    from brushwork.methods import REGISTRY, get_method

    if isinstance(body, dict) and "content" in body and not body.get("style"):
        method = body.get("method", "adain")
        if method not in REGISTRY or get_method(method).style_images:
            body["style"] = [_images()[0]]
    return body


def _schema() -> Any:
    """The app's schema; built at import (schemathesis parametrizes from it), its data in a
    temporary folder removed at exit."""
    import atexit
    import shutil
    import tempfile

    import torch

    folder = Path(tempfile.mkdtemp(prefix="brushwork-schema-"))
    atexit.register(shutil.rmtree, folder, True)
    torch.manual_seed(0)
    encoder = VGG19(last_layer="relu5_1", width=1 / 16).requires_grad_(False).eval()
    model = save_decoder(folder / "tiny.safetensors", encoder)
    config = ServiceConfig(
        data=folder / "data",
        workers=1,
        queue=8,
        max_side=48,
        models={"tiny": model},
        encoder=encoder,
        job_timeout=2.0,
        max_upload=200_000,
        max_pixels=200_000,
    )
    app = create_app(config, allow_hosts=("testserver",))
    return schemathesis.openapi.from_asgi("/openapi.json", app)


schema = _schema()
SETTINGS = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@schema.parametrize()
@settings(SETTINGS, max_examples=EXAMPLES, phases=[Phase.explicit, Phase.generate])
def test_no_server_errors(case: schemathesis.Case, one_thread: None) -> None:
    response = case.call_and_validate(checks=CHECKS)
    CALLS[(case.method.upper(), case.path, response.status_code)] += 1
    if (case.method.upper(), case.path, response.status_code) == ("POST", "/jobs", 202):
        # each accepted job runs until its time limit: cancelled here, so that jobs queued
        # by this run never hold a later POST /stylize past the client's read timeout
        schema.app.state.manager.cancel(response.json()["id"])


def test_stateful_run_uses_real_jobs(one_thread: None) -> None:
    """Calls chained by the schema's links and the ids answers carry: no 500, answers as
    the schema says, and real jobs reached (a 2xx for a path with a real job id)."""

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def after_call(self, response: Any, case: Any) -> None:
            SEEN[(case.method.upper(), case.path, response.status_code)] += 1

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            case.validate_response(response, checks=CHECKS)

    start = time.monotonic()
    Workflow.run(
        settings=settings(
            SETTINGS,
            max_examples=STATEFUL_EXAMPLES,
            stateful_step_count=STATEFUL_STEPS,
            phases=[Phase.generate],
        )
    )
    followed = sum(
        n for (_, path, status), n in SEEN.items() if "{job_id}" in path and status < 300
    )
    assert followed >= 1, SEEN
    assert not any(status >= 500 for _, _, status in SEEN), SEEN
    assert time.monotonic() - start < 120


def test_the_run_reached_real_jobs() -> None:
    """The run per operation (above) submitted jobs the server accepted: the generated
    forms are close enough to real ones to test more than the form checks."""
    if not CALLS:
        import pytest

        pytest.skip("runs after test_no_server_errors, in the same session")
    assert CALLS[("POST", "/jobs", 202)] >= 1, CALLS
