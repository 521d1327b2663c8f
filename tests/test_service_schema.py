"""A bounded schemathesis run against the service's OpenAPI schema: whatever the schema
allows a client to send (and a bit more), the server never answers 500, and its answers
match the schema. Workers run as threads of this process with the tiny random encoder."""

from __future__ import annotations

from pathlib import Path

import schemathesis
from conftest import save_decoder
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from brushwork.encoders import VGG19
from brushwork.service import ServiceConfig, create_app

EXAMPLES = 25
"""Examples per operation (13 operations): about 10 s in all."""


def _schema() -> object:
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
        queue=4,
        max_side=64,
        models={"tiny": model},
        encoder=encoder,
        job_timeout=5.0,
        max_upload=200_000,
        max_pixels=200_000,
    )
    app = create_app(config, allow_hosts=("testserver",))
    return schemathesis.openapi.from_asgi("/openapi.json", app)


schema = _schema()


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_no_server_errors(case: schemathesis.Case, one_thread: None) -> None:
    case.call_and_validate(
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ]
    )
