"""The service's routes, one :class:`fastapi.APIRouter` per what they serve; each route
reaches the app's :class:`~brushwork.service.state.Service` through its dependencies
(:data:`~brushwork.service.state.ServiceDep`, :data:`~brushwork.service.state.Owner`).

* :mod:`.docs`: the page (``/``, ``/static/...``) and the API's docs (``/docs``).
* :mod:`.catalog`: what the server offers (``/health``, ``/methods``, ``/models``,
  ``/examples``).
* :mod:`.jobs`: jobs (``/jobs``: submit, list, get, cancel, events, preview, result).
* :mod:`.stylize`: one synchronous stylization (``POST /stylize``).
"""

from __future__ import annotations

from brushwork.service.routes import catalog, docs, jobs, stylize

ROUTERS = (docs.router, catalog.router, jobs.router, stylize.router)
"""In the order the schema lists their paths."""

__all__ = ["ROUTERS"]
