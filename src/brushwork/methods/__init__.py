"""The method registry: every style-transfer method, registered once.

An entry names the method, where its class lives, what it is, and, if it has them, the
trainers (:mod:`brushwork.training` objectives) and the ONNX exporter that belong to it. Its
bundled networks are listed in :mod:`brushwork.models` by method. Front ends (CLI, Python
API, HTTP service, export, ``brushwork methods``) iterate this registry and never name a
method; adding one is its module plus one entry here.

Reading the registry imports nothing heavy: classes load (with torch) when asked for.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from brushwork.errors import BrushworkError

if TYPE_CHECKING:
    from brushwork.methods.base import Method


def load_object(target: str) -> object:
    """``"package.module:Name"`` → the object."""
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class MethodEntry:
    """One registered method."""

    name: str
    target: str
    """``module:Class`` of its :class:`~brushwork.methods.base.Method` subclass."""
    description: str
    kind: str
    """The class's :attr:`~brushwork.methods.base.Method.kind` (``optimization`` or
    ``feed-forward``, from its base class), written here as well so that listing the
    methods imports no class, hence no torch; :meth:`load` refuses a mismatch."""
    paper: str = ""
    trainers: dict[str, str] = field(default_factory=dict)
    """Training objectives by name (``brushwork train NAME``): ``module:Class``."""
    exporter: str | None = None
    """``module:function`` writing the method as ONNX (``brushwork export NAME``)."""
    parts: tuple[str, ...] = ()
    """The named networks the method loads from one model file (each bundled model of
    the method, :mod:`brushwork.models`, holds them); none: one network. What
    :func:`brushwork.models.resolve` is given as ``parts``."""

    def load(self) -> type[Method[Any]]:
        """The class, checked against this entry (name and kind)."""
        cls = cast("type[Method[Any]]", load_object(self.target))
        for what in ("name", "kind"):
            if getattr(cls, what, None) != getattr(self, what):
                raise BrushworkError(
                    f"{self.target} is registered with {what} {getattr(self, what)!r} but "
                    f"its class has {getattr(cls, what, None)!r}"
                )
        cls.description = self.description
        return cls


REGISTRY: dict[str, MethodEntry] = {
    e.name: e
    for e in (
        MethodEntry(
            "gatys",
            "brushwork.methods.gatys:Gatys",
            "optimize the pixels to match content features and Gram statistics",
            "optimization",
            "Gatys, Ecker & Bethge, CVPR 2016",
        ),
        MethodEntry(
            "gatys-laplacian",
            "brushwork.methods.gatys:GatysLaplacian",
            "Gatys + a Laplacian loss that keeps fine content structure",
            "optimization",
            "Li, Xu, Nie & Chua, ACM MM 2017",
        ),
        MethodEntry(
            "styleswap",
            "brushwork.methods.styleswap:StyleSwap",
            "rebuild the content's features from best-matching style patches",
            "optimization",
            "Chen & Schmidt 2016",
        ),
        MethodEntry(
            "adain",
            "brushwork.methods.adain:AdaIN",
            "one pass for any style: channel statistics at relu4_1, trained decoder",
            "feed-forward",
            "Huang & Belongie, ICCV 2017",
            trainers={
                "adain": "brushwork.training.adain:AdaINObjective",
                "adain-temporal": "brushwork.training.temporal:TemporalAdaINObjective",
            },
            exporter="brushwork.methods.adain:export_onnx",
        ),
        MethodEntry(
            "wct",
            "brushwork.methods.wct:WCT",
            "one pass for any style: whitening and coloring at relu5_1..relu1_1, "
            "five trained decoders",
            "feed-forward",
            "Li, Fang, Yang, Wang, Lu & Yang, NeurIPS 2017",
            trainers={"wct": "brushwork.training.decoders:ReconstructionObjective"},
            exporter="brushwork.methods.wct:export_onnx",
        ),
        MethodEntry(
            "styleswap-inverse",
            "brushwork.methods.styleswap_inverse:StyleSwapInverse",
            "Style Swap in one pass: swapped relu3_1 features decoded by a trained network",
            "feed-forward",
            "Chen & Schmidt 2016, §4",
            trainers={"styleswap-inverse": "brushwork.training.styleswap:InverseObjective"},
        ),
        MethodEntry(
            "johnson",
            "brushwork.methods.johnson:Johnson",
            "one pass, no VGG: a transform network trained per style (several styles in "
            "one network by conditional instance norm, blended by weight)",
            "feed-forward",
            "Johnson, Alahi & Fei-Fei, ECCV 2016; Dumoulin, Shlens & Kudlur, ICLR 2017",
            trainers={"johnson": "brushwork.training.johnson:JohnsonObjective"},
            exporter="brushwork.methods.johnson:export_onnx",
        ),
        MethodEntry(
            "lapstyle",
            "brushwork.methods.lapstyle:LapStyle",
            "a per-style Laplacian pyramid: a drafting network paints the style at a quarter "
            "of the size, two revision networks add the detail",
            "feed-forward",
            "Lin, Wang, Zhou, Li, Yang, Ding & Deng, CVPR 2021",
            trainers={"lapstyle": "brushwork.training.lapstyle:LapStyleObjective"},
            exporter="brushwork.methods.lapstyle:export_onnx",
            parts=("draft", "revision1", "revision2"),
        ),
    )
}


def get_entry(name: str) -> MethodEntry:
    """The registry entry of ``name``, or one clear error listing the methods."""
    try:
        return REGISTRY[name]
    except (KeyError, TypeError):
        raise BrushworkError(f"unknown method {name!r}; available: {', '.join(REGISTRY)}") from None


def get_method(name: str) -> type[Method[Any]]:
    """The method class registered as ``name``."""
    return get_entry(name).load()


def method_names() -> list[str]:
    return list(REGISTRY)


def describe() -> list[dict[str, Any]]:
    """Every registered method with its options (as the HTTP service lists them)."""
    from brushwork import models

    found = []
    for name, entry in REGISTRY.items():
        cls = entry.load()
        defaults = cls.default_options()
        options = cls.options_class.describe()
        for option in options:
            value = getattr(defaults, option["name"])
            option["default"] = list(value) if isinstance(value, tuple) else value
        found.append(
            {
                "name": name,
                "kind": entry.kind,
                "description": entry.description,
                "paper": entry.paper,
                "options": options,
                "models": [m.name for m in models.for_method(name)],
                "trainers": list(entry.trainers),
                "export": entry.exporter is not None,
                "style_images": cls.style_images,
            }
        )
    return found


__all__ = [
    "REGISTRY",
    "MethodEntry",
    "describe",
    "get_entry",
    "get_method",
    "load_object",
    "method_names",
]
