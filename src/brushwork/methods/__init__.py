"""Style-transfer methods, one module each, all behind :class:`~brushwork.methods.base.Method`."""

from __future__ import annotations

from brushwork.errors import BrushworkError
from brushwork.methods.adain import AdaIN, AdaINOptions
from brushwork.methods.base import Method, Options, StyleTarget, StylizeResult
from brushwork.methods.gatys import Gatys, GatysLaplacian, GatysOptions
from brushwork.methods.optimization import OptimizationMethod, OptimizationOptions
from brushwork.methods.styleswap import StyleSwap, StyleSwapOptions

METHODS: dict[str, type[Method]] = {m.name: m for m in (Gatys, GatysLaplacian, StyleSwap, AdaIN)}


def get_method(name: str) -> type[Method]:
    """The method class registered as ``name``."""
    try:
        return METHODS[name]
    except KeyError:
        raise BrushworkError(
            f"unknown method {name!r}; available: {', '.join(sorted(METHODS))}"
        ) from None


__all__ = [
    "METHODS",
    "AdaIN",
    "AdaINOptions",
    "GatysOptions",
    "Method",
    "OptimizationMethod",
    "OptimizationOptions",
    "Options",
    "StyleSwap",
    "StyleSwapOptions",
    "StyleTarget",
    "StylizeResult",
    "get_method",
]
