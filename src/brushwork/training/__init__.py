"""Training brushwork's networks: one loop (:mod:`brushwork.training.trainer`), one
objective per network (each an :class:`~brushwork.training.objective.Objective`).

The objectives are registered with their methods (:data:`brushwork.methods.REGISTRY`'s
``trainers``) plus the depth estimator's, which belongs to no style method.
``brushwork train NAME`` and :func:`get_objective` find them here::

    from brushwork.training import get_objective, train, RunOptions
    objective = get_objective("adain")
    result = train(objective(objective.config_class("photos/", "paintings/", lap_weight=3)),
                   RunOptions(out_dir="runs/mine", max_minutes=60))
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from brushwork.errors import BrushworkError

if TYPE_CHECKING:
    from brushwork.training.objective import Objective

OTHER_TRAINERS = {"depth": "brushwork.training.depth:DepthObjective"}
"""Objectives that belong to no style method."""


def trainers() -> dict[str, str]:
    """Every objective by name: ``module:Class`` (no import)."""
    from brushwork.methods import REGISTRY

    found: dict[str, str] = {}
    for entry in REGISTRY.values():
        found.update(entry.trainers)
    found.update(OTHER_TRAINERS)
    return found


def get_objective(name: str) -> type[Objective]:
    from brushwork.methods import load_object

    known = trainers()
    if name not in known:
        raise BrushworkError(f"nothing to train called {name!r}; trainers: {', '.join(known)}")
    return load_object(known[name])  # type: ignore[return-value]


def __getattr__(name: str) -> Any:  # lazy: the registry lists trainers without torch
    if name in ("train", "RunOptions", "TrainResult", "Objective"):
        from brushwork.training import trainer

        return getattr(trainer, name)
    raise AttributeError(f"module 'brushwork.training' has no attribute {name!r}")
