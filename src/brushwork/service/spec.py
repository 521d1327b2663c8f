"""What a client may ask of a job: the method, its options and the controls, checked with
the same declarations (and the same one-line messages) as the command line, less whatever
could reach outside the job's folder.

Options whose value may name a file (a start image, a decoder checkpoint, a depth model)
take only the names listed here: bundled networks of the method, networks the operator
added with ``--model NAME=PATH``, and keywords (``content``, ``noise``). A string option
without declared choices that is not listed is refused: a new method option that names a
file cannot open a hole by being forgotten here. The controls that choose hardware,
limits or weights (``device``, ``max_memory``, ``max_pixels``, ``weights``) are the
server's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from brushwork import models
from brushwork.errors import BrushworkError
from brushwork.methods import get_entry
from brushwork.options import fields_of
from brushwork.stylizer import Controls

KINDS = ("image",)
"""Job kinds this server takes. A video kind would be a second entry: the same endpoints and
job folders, the upload checked by :mod:`brushwork.video.io`, and a worker branch calling
:func:`brushwork.video.stylize_video` with the job's sink (its work folder inside the job
folder makes a restarted job resume)."""

CLIENT_CONTROLS = (
    "size",
    "style_size",
    "style_scale",
    "preserve_color",
    "start_size",
    "scale_iterations",
    "precision",
)
"""The controls a job may set; the others are the server's."""

KEYWORDS: dict[str, tuple[str | None, ...]] = {
    "init": ("content", "noise"),
    "models": ("wct",),
    "depth_model": (None, "depth"),
}
"""Allowed values of the file-naming options that are not ``model``."""

MAIN_OPTIONS = (
    "alpha",
    "model",
    "iterations",
    "style_weight",
    "content_weight",
    "lap_weight",
    "inverse",
    "levels",
    "optimizer",
)
"""Options the page shows first (the rest are under "more options")."""


def model_choices(method: str, extra: Mapping[str, Any]) -> list[str]:
    """The decoder names a job of ``method`` may give as ``model`` (``extra``: the
    operator's networks, name → (method, file))."""
    bundled = [m.name for m in models.for_method(method) if m.path.is_file()]
    return bundled + [
        name for name, (owner, _) in extra.items() if owner == method and name not in bundled
    ]


def file_choices(method: str, name: str, extra: Mapping[str, Any]) -> list[str | None] | None:
    """The values allowed for a file-naming option (None: not such an option)."""
    if name == "model":
        return list(model_choices(method, extra))
    if name in KEYWORDS:
        return list(KEYWORDS[name])
    return None


def client_options(method: str, extra_models: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``method``'s options as a job may set them (for ``GET /methods``): file-naming
    options get their allowed values as choices; ``main`` marks the page's first ones."""
    cls = get_entry(method).load()
    defaults = cls.default_options()
    found = []
    for spec in fields_of(cls.options_class):
        described = spec.describe()
        value = getattr(defaults, spec.name)
        described["default"] = list(value) if isinstance(value, tuple) else value
        if spec.kind == "str" and not spec.choices:
            choices = file_choices(method, spec.name, extra_models)
            if choices is None:
                continue
            described["choices"] = choices
        described["main"] = spec.name in MAIN_OPTIONS
        found.append(described)
    return found


def client_controls() -> list[dict[str, Any]]:
    """The controls a job may set, described like options."""
    return [
        dict(spec.describe(), main=spec.name == "size")
        for spec in fields_of(Controls)
        if spec.name in CLIENT_CONTROLS
    ]


@dataclass
class JobSpec:
    """A checked request: what a worker needs to rebuild the job after a restart."""

    kind: str
    method: str
    values: dict[str, Any]
    """The job's options and controls as the client gave them (model names unresolved)."""
    styles: list[dict[str, Any]] = field(default_factory=list)
    """Per style: ``file`` (in the job folder), ``weight``, ``layers``, ``name``."""
    content: str = "content"
    mask: str | None = None
    regions: dict[str, int | None] | None = None
    names: dict[str, str] = field(default_factory=dict)
    """The uploads' original file names, for display only (never used as paths)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "method": self.method,
            "values": self.values,
            "styles": self.styles,
            "content": self.content,
            "mask": self.mask,
            "regions": self.regions,
            "names": self.names,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> JobSpec:
        return cls(
            **{
                k: data[k]
                for k in (
                    "kind",
                    "method",
                    "values",
                    "styles",
                    "content",
                    "mask",
                    "regions",
                    "names",
                )
                if k in data
            }
        )


def _json(text: str | None, what: str, default: Any) -> Any:
    if text is None or not text.strip():
        return default
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise BrushworkError(f"{what} must be JSON, not {text[:60]!r}") from None


def parse_options(
    method: str, text: str | None, *, max_side: int, extra_models: Mapping[str, Any]
) -> dict[str, Any]:
    """The options of a request (a JSON object) checked against the service's rules; the
    values themselves are validated when the stylizer is built."""
    entry = get_entry(method)
    values = _json(text, "options", {})
    if not isinstance(values, dict):
        raise BrushworkError(f"options must be a JSON object, not {type(values).__name__}")
    cls = entry.load()
    method_fields = {spec.name: spec for spec in fields_of(cls.options_class)}
    controls = {spec.name for spec in fields_of(Controls)}
    allowed = [
        *CLIENT_CONTROLS,
        *(
            n
            for n, s in method_fields.items()
            if not (
                s.kind == "str" and not s.choices and file_choices(method, n, extra_models) is None
            )
        ),
    ]
    for name, value in values.items():
        if name in controls and name not in CLIENT_CONTROLS:
            raise BrushworkError(f"{name.replace('_', '-')} is set by the server, not per job")
        if name not in allowed:
            raise BrushworkError(
                f"unknown option {name!r} for {method}; known: {', '.join(sorted(allowed))}"
            )
        spec = method_fields.get(name)
        if spec is not None and spec.kind == "str" and not spec.choices:
            choices = file_choices(method, name, extra_models) or []
            if value not in choices:
                shown = ", ".join("none" if c is None else str(c) for c in choices)
                raise BrushworkError(
                    f"{name.replace('_', '-')} must be one of {shown} on this server, not {value!r}"
                )
    default = Controls().size or max_side
    if "size" not in values and default > max_side:
        values["size"] = max_side  # the default output size, within this server's limit
    size = values.get("size", default)
    if isinstance(size, int) and not isinstance(size, bool) and size > max_side:
        raise BrushworkError(f"size must be <= {max_side} on this server, not {size}")
    for name in ("style_size", "start_size"):
        side = values.get(name)
        if isinstance(side, int) and not isinstance(side, bool) and side > max_side:
            raise BrushworkError(
                f"{name.replace('_', '-')} must be <= {max_side} on this server, not {side}"
            )
    return values


def parse_styles(text: str | None, count: int) -> list[dict[str, Any]]:
    """Per-style weight and layers (a JSON list aligned with the style uploads)."""
    given = _json(text, "styles", [])
    if not isinstance(given, list):
        raise BrushworkError('styles must be a JSON list of {"weight": W, "layers": [...]}')
    if len(given) > count:
        raise BrushworkError(
            f"styles lists {len(given)} entries for {count} style image{'s' if count != 1 else ''}"
        )
    found = []
    for number, item in enumerate([*given, *([{}] * (count - len(given)))], 1):
        if isinstance(item, (int, float)) and not isinstance(item, bool):
            item = {"weight": item}
        if not isinstance(item, dict):
            raise BrushworkError(
                f'style {number}: expected {{"weight": W, "layers": [...]}}, not {item!r}'
            )
        unknown = sorted(set(item) - {"weight", "layers"})
        if unknown:
            raise BrushworkError(f"style {number}: unknown field {unknown[0]!r} (weight, layers)")
        weight = item.get("weight", 1.0)
        layers = item.get("layers")
        if layers is not None and (
            not isinstance(layers, list) or not all(isinstance(x, str) for x in layers)
        ):
            raise BrushworkError(f"style {number}: layers must be a list of layer names")
        found.append({"weight": weight, "layers": None if layers is None else list(layers)})
    return found


def parse_regions(text: str | None) -> dict[str, int | None] | None:
    """Label colour → style number (or None: unstyled), as ``--region``."""
    from brushwork.masks import parse_color

    given = _json(text, "regions", None)
    if given is None:
        return None
    if not isinstance(given, dict):
        raise BrushworkError("regions must be a JSON object of colour: style number or null")
    for colour, target in given.items():
        parse_color(colour)
        if target is not None and (isinstance(target, bool) or not isinstance(target, int)):
            raise BrushworkError(
                f"region {colour!r}: expected a style number or null, not {target!r}"
            )
    return given


def resolve_values(spec: JobSpec, extra_models: Mapping[str, Any]) -> dict[str, Any]:
    """The job's values with operator-added model names turned into their files."""
    values = dict(spec.values)
    model = values.get("model")
    bundled = {m.name for m in models.for_method(spec.method)}
    if isinstance(model, str) and model not in bundled:
        owner, path = extra_models.get(model, (None, None))
        if owner != spec.method:
            raise BrushworkError(f"model {model!r} is no longer offered by this server")
        values["model"] = str(path)
    return values


def check_kind(kind: str | None) -> str:
    kind = kind or "image"
    if kind not in KINDS:
        raise BrushworkError(f"unknown job kind {kind!r}; this server takes: {', '.join(KINDS)}")
    return kind
