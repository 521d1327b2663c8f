"""Style-transfer methods, one module each, all behind :class:`~brushwork.methods.base.Method`."""

from __future__ import annotations

from brushwork.errors import BrushworkError
from brushwork.methods.base import Method, Options, StylizeResult
from brushwork.methods.gatys import Gatys, GatysLaplacian, GatysOptions

METHODS: dict[str, type[Method]] = {m.name: m for m in (Gatys, GatysLaplacian)}


def get_method(name: str) -> type[Method]:
    """The method class registered as ``name``."""
    try:
        return METHODS[name]
    except KeyError:
        raise BrushworkError(
            f"unknown method {name!r}; available: {', '.join(sorted(METHODS))}"
        ) from None


__all__ = ["METHODS", "GatysOptions", "Method", "Options", "StylizeResult", "get_method"]
