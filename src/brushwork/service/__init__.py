"""``brushwork serve``: a web page and an HTTP API over a bounded, durable job queue.

    from brushwork.service import ServiceConfig, create_app
    app = create_app(ServiceConfig(data=Path("data"), workers=1))   # a FastAPI app

See :mod:`brushwork.service.app` for the endpoints, :mod:`brushwork.service.jobs` for the
queue and its workers, :mod:`brushwork.service.store` for the index, and
:mod:`brushwork.service.uploads` for how uploads are bounded and checked.
"""

from __future__ import annotations

from typing import Any

from brushwork.service.config import ServiceConfig


def create_app(config: ServiceConfig | None = None, **kwargs: Any) -> Any:
    """The FastAPI app (see :func:`brushwork.service.app.create_app`)."""
    from brushwork.service.app import create_app as build

    return build(config, **kwargs)


__all__ = ["ServiceConfig", "create_app"]
