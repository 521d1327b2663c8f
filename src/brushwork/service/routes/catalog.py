"""What the server offers: its health, the methods with the options a job may set, the
networks, and the bundled example images."""

# no `from __future__ import annotations`: FastAPI reads these annotations at run time
import time
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from brushwork.service.schema import ERRORS, HealthOut
from brushwork.service.spec import available_kinds
from brushwork.service.state import Owner, ServiceDep

router = APIRouter()


@router.get(
    "/health", operation_id="health", response_model=HealthOut, responses={401: ERRORS[401]}
)
def health(owner: Owner, service: ServiceDep) -> dict[str, Any]:
    """Whether the server answers, with its workers, job counts and job kinds."""
    manager = service.manager
    return {
        "status": "stopping" if manager.stopping.is_set() else "ok",
        "workers": service.config.workers,
        "jobs": manager.store.counts(),
        "readers": manager.hub.count(),
        "uptime_seconds": round(time.time() - manager.started_at, 3),
        "kinds": list(available_kinds()),
    }


@router.get("/methods", operation_id="methods", responses={401: ERRORS[401]})
def methods(owner: Owner, service: ServiceDep) -> dict[str, Any]:
    """Every method with the options a job may set (types, defaults, ranges, choices;
    ``unavailable``: what needs a network this server lacks), whether ``POST
    /stylize`` takes it with its defaults (``sync``), the controls every method shares,
    and this server's limits."""
    return service.methods()


@router.get("/models", operation_id="models", responses={401: ERRORS[401]})
def models_list(owner: Owner, service: ServiceDep) -> dict[str, Any]:
    """The bundled networks and those the operator added."""
    return {"models": model_rows(service.manager.extra_models)}


def model_rows(extra_models: dict[str, tuple[str, Any]]) -> list[dict[str, Any]]:
    """The bundled networks (whether installed, their size and parts, and for a per-style
    model its style with a ``data:`` thumbnail: :func:`brushwork.models.row`), then the
    operator's (``extra_models``: name → (method, file)); no server paths."""
    from brushwork import models

    rows = [models.row(m, paths=False) | {"source": "bundled"} for m in models.MODELS.values()]
    rows += [
        {
            "name": name,
            "method": method,
            "layer": None,
            "encoder": None,
            "installed": True,
            "bytes": None,
            "card": None,
            "description": "added by the operator",
            "parts": [],
            "style": None,
            "source": "operator",
        }
        for name, (method, _) in extra_models.items()
    ]
    return rows


@router.get("/examples", operation_id="examples", responses={401: ERRORS[401]})
async def examples_list(owner: Owner) -> dict[str, Any]:
    """The bundled example images (content photos and styles)."""
    from brushwork import examples

    return {"contents": list(examples.CONTENTS), "styles": list(examples.STYLES)}


@router.get(
    "/examples/{name}",
    operation_id="example",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}, 401: ERRORS[401], 404: ERRORS[404]},
)
def example(name: str, owner: Owner, service: ServiceDep) -> Response:
    """One bundled example image as PNG."""
    return Response(
        service.example(name),
        media_type="image/png",
        headers={"Cache-Control": "max-age=86400"},
    )
