"""What a client may ask of a job: the method, its options and the controls, checked with
the same declarations (and the same one-line messages) as the command line, less whatever
could reach outside the job's folder.

Options whose value may name a file (a start image, a decoder checkpoint, a depth model)
take only the names listed here: bundled networks of the method, networks the operator
added with ``--model NAME=PATH``, and keywords (``content``, ``noise``). A free-text option
(a string, or a list of strings, without declared choices) that is not listed is refused:
a new method option that names a file cannot open a hole by being forgotten here. The
controls that choose hardware, limits or weights (``device``, ``max_memory``,
``max_pixels``, ``weights``) are the server's.

Values in the service's own messages are written as JSON (``null``, ``true``, ``[1, 2]``),
strings quoted as the command line quotes them (``'x'``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from brushwork import models
from brushwork.errors import BrushworkError
from brushwork.methods import get_entry
from brushwork.options import FieldSpec, fields_of
from brushwork.stylizer import Controls

KINDS = ("image", "video")
"""Job kinds this server knows; it takes those of :func:`available_kinds`. A video job goes
through the same endpoints and job folders as an image: its content upload is a video file,
checked by :mod:`brushwork.video.io` before the job is accepted (the header, then every
frame; the server's limits on frame pixels, frames and seconds); a worker runs
:func:`brushwork.video.stylize_video` with the job's event sink (one progress step per
frame; a cancel or the time limit stops the job between frames) and its work folder inside
the job folder, resumed when the job runs again after a restart. Its options are an
image job's plus :data:`VIDEO_OPTIONS`; the output, codec and work folder are the
server's. Needs PyAV and OpenCV (``brushwork[video]``); without them the server takes
image jobs only."""

VIDEO_OPTIONS = (
    "temporal",
    "temporal_weight",
    "temporal_frames",
    "blend",
    "history",
    "flow",
    "later_iterations",
    "max_frames",
    "crf",
    "audio",
    "partial",
    "report",
)
"""The :class:`brushwork.video.VideoOptions` a video job may set; the others (``codec``,
``fps``, ``work_dir``, ``keep_work``, ``resume``) are the server's."""


def video_available() -> bool:
    """Whether this server can take video jobs: PyAV and OpenCV import."""
    global _VIDEO
    if _VIDEO is None:
        try:
            import av  # noqa: F401
            import cv2  # noqa: F401
        except ImportError:
            _VIDEO = False
        else:
            _VIDEO = True
    return _VIDEO


_VIDEO: bool | None = None


def available_kinds() -> tuple[str, ...]:
    """The job kinds this server takes: ``image``, and ``video`` when PyAV and OpenCV
    import."""
    return KINDS if video_available() else ("image",)


def video_fields() -> dict[str, FieldSpec]:
    """The declarations of the video options (name → spec)."""
    from brushwork.video.runner import VideoOptions

    return {spec.name: spec for spec in fields_of(VideoOptions)}


def split_video(values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A video job's values as (controls and method options, video options); list values
    of the video options as tuples."""
    image: dict[str, Any] = {}
    video: dict[str, Any] = {}
    for name, value in values.items():
        if name in VIDEO_OPTIONS:
            video[name] = tuple(value) if isinstance(value, list) else value
        else:
            image[name] = value
    return image, video


def client_video_options() -> list[dict[str, Any]]:
    """The video options a job may set, described like the methods' (``GET /methods``)."""
    found = []
    for name, spec in video_fields().items():
        if name in VIDEO_OPTIONS:
            described = spec.describe()
            if isinstance(described.get("default"), tuple):
                described["default"] = list(described["default"])
            found.append(described)
    return found


def check_video_options(values: Mapping[str, Any]) -> None:
    """Validate a video job's video options with the CLI's messages."""
    from brushwork.video.runner import VideoOptions

    VideoOptions(**split_video(values)[1]).validate()


CLIENT_CONTROLS = (
    "size",
    "style_size",
    "style_scale",
    "preserve_color",
    "start_size",
    "scale_iterations",
    "precision",
    "bit_depth",
)
"""The controls a job may set; the others are the server's (tiles follow its memory
limit)."""


def shown(value: Any) -> str:
    """A value as the service's messages write it: strings quoted as on the command line
    (``'x'``), everything else as JSON (``null``, ``true``, ``[1, 2]``)."""
    if isinstance(value, str):
        return repr(value)
    try:
        return json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return repr(value)


def is_free_text(spec: FieldSpec) -> bool:
    """Whether an option takes any text (a string, or a list of strings, without declared
    choices): such a value could name a file, so only :func:`file_choices` are allowed."""
    text = spec.kind == "str" or (spec.kind == "list" and (spec.item or "str") == "str")
    return text and not spec.choices and not spec.never_path


def one_pass(method: Any) -> bool:
    """Whether a built method paints in one pass with its options (no loss, no steps): the
    rule of ``POST /stylize`` and of ``GET /methods``' ``sync``."""
    return not method.has_losses()


def model_choices(method: str, extra: Mapping[str, Any]) -> list[str]:
    """The decoder names a job of ``method`` may give as ``model`` (``extra``: the
    operator's networks, name → (method, file))."""
    bundled = [m.name for m in models.for_method(method) if m.path.is_file()]
    return bundled + [
        name for name, (owner, _) in extra.items() if owner == method and name not in bundled
    ]


def file_choices(method: str, name: str, extra: Mapping[str, Any]) -> list[str | None] | None:
    """The values allowed for a file-naming option (None: not such an option): ``model``'s
    are the method's installed networks (:func:`model_choices`), any other option's the
    ``names`` its declaration lists (:func:`brushwork.options.option`)."""
    if name == "model":
        return list(model_choices(method, extra))
    specs = {f.name: f for f in fields_of(get_entry(method).load().options_class)}
    names = specs[name].metadata.get("names") if name in specs else None
    return list(names) if names is not None else None


def client_options(
    method: str, extra_models: Mapping[str, Any], missing: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """``method``'s options as a job may set them (for ``GET /methods``): file-naming
    options get their allowed values as choices; ``main`` marks the page's first ones
    (``option(..., main=True)``); ``unavailable`` what needs a bundled network that is
    missing (``missing``: from :func:`missing_files`, computed here if not given)."""
    cls = get_entry(method).load()
    defaults = cls.default_options()
    found = []
    missing = missing_files(method) if missing is None else missing
    for spec in fields_of(cls.options_class):
        described = spec.describe()
        value = getattr(defaults, spec.name)
        described["default"] = list(value) if isinstance(value, tuple) else value
        if is_free_text(spec):
            choices = file_choices(method, spec.name, extra_models)
            if choices is None:
                continue
            described["choices"] = choices
        described["main"] = spec.main
        if spec.name in missing:
            # true (a switch) or some choices need a bundled network this server lacks
            described["unavailable"] = missing[spec.name]
        found.append(described)
    return found


def _files_problem(cls: type, changes: dict[str, Any]) -> str | None:
    """Why ``cls(**changes)`` cannot run here for want of a file (None: it can, or the
    change is refused for another reason, which validation reports)."""
    try:
        method = cls(**changes)
    except BrushworkError:
        return None
    try:
        method.check_files()
    except BrushworkError as error:
        from brushwork.service.uploads import public_message

        return public_message(error)
    return None


def missing_files(method: str) -> dict[str, Any]:
    """What of ``method`` needs a bundled network that is not installed (the method's own
    :meth:`check_files`, which resolves names through :mod:`brushwork.models`):
    ``{"": problem}`` when its defaults cannot run, ``{switch: problem}`` for a switch that
    cannot be turned on, ``{option: {choice: problem}}`` for choices that cannot be used."""
    cls = get_entry(method).load()
    found: dict[str, Any] = {}
    default = _files_problem(cls, {})
    if default is not None:
        found[""] = default
    for spec in fields_of(cls.options_class):
        if spec.kind == "bool" and spec.default is False:
            problem = _files_problem(cls, {spec.name: True})
            if problem is not None and problem != default:
                found[spec.name] = problem
        elif spec.choices:
            choices = {}
            for choice in spec.choices:
                value = (choice,) if spec.kind == "list" else choice
                problem = _files_problem(cls, {spec.name: value})
                if problem is not None:
                    choices[str(choice)] = problem
            if choices:
                found[spec.name] = choices
    return found


def client_controls() -> list[dict[str, Any]]:
    """The controls a job may set, described like options (``main``: the page's first
    ones)."""
    return [
        dict(spec.describe(), main=spec.main)
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


_JSON_TYPES = {
    "int": ("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    "float": ("a number", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)),
    "bool": ("true or false", lambda v: isinstance(v, bool)),
    "str": ("a string", lambda v: isinstance(v, str)),
}


def check_json_type(spec: FieldSpec, value: Any) -> None:
    """Refuse a JSON value of the wrong type for ``spec`` with a JSON-style message (the
    ranges and choices are checked by the options' own validation)."""
    if value is None:
        if not spec.optional:
            raise BrushworkError(f"{spec.label} must be given, not null")
        return
    if spec.kind == "list":
        if not isinstance(value, list):
            raise BrushworkError(f"{spec.label} must be a list, not {shown(value)}")
        noun, ok = _JSON_TYPES[spec.item or "str"]
        for item in value:
            if not ok(item):
                raise BrushworkError(f"each of {spec.label} must be {noun}, not {shown(item)}")
        return
    noun, ok = _JSON_TYPES.get(spec.kind, _JSON_TYPES["str"])
    if not ok(value):
        raise BrushworkError(f"{spec.label} must be {noun}, not {shown(value)}")


def parse_options(
    method: str,
    text: str | None,
    *,
    max_side: int,
    extra_models: Mapping[str, Any],
    kind: str = "image",
) -> dict[str, Any]:
    """The options of a request (a JSON object) checked against the service's rules (a
    video job may also set :data:`VIDEO_OPTIONS`); the values themselves are validated when
    the stylizer is built."""
    entry = get_entry(method)
    values = _json(text, "options", {})
    if not isinstance(values, dict):
        raise BrushworkError(f"options must be a JSON object, not {type(values).__name__}")
    cls = entry.load()
    method_fields = {spec.name: spec for spec in fields_of(cls.options_class)}
    control_fields = {spec.name: spec for spec in fields_of(Controls)}
    allowed = [*CLIENT_CONTROLS, *_client_method_options(method, method_fields, extra_models)]
    video = video_fields() if kind == "video" else {}
    for name, value in values.items():
        if name in control_fields and name not in CLIENT_CONTROLS:
            raise BrushworkError(f"{name.replace('_', '-')} is set by the server, not per job")
        if name in video and name not in method_fields and name not in control_fields:
            if name not in VIDEO_OPTIONS:
                raise BrushworkError(
                    f"{name.replace('_', '-')} is set by the server, not per video job"
                )
            check_json_type(video[name], value)
            continue
        if name not in allowed:
            raise BrushworkError(
                f"unknown option {name!r} for {method}; known: {', '.join(sorted(allowed))}"
            )
        spec = method_fields.get(name) or control_fields[name]
        check_json_type(spec, value)
        if name in method_fields and is_free_text(spec):
            _check_choice(method, spec, value, extra_models)
    _check_sizes(values, max_side)
    return values


def _client_method_options(
    method: str, fields: Mapping[str, FieldSpec], extra_models: Mapping[str, Any]
) -> list[str]:
    """The method's options a client may set: all but free text (paths) with no choice of
    files on this server."""
    return [
        name
        for name, spec in fields.items()
        if not (is_free_text(spec) and file_choices(method, name, extra_models) is None)
    ]


def _check_choice(
    method: str, spec: FieldSpec, value: Any, extra_models: Mapping[str, Any]
) -> None:
    """A free-text option's value (a model, a file; or each of a list's): one of those
    this server offers."""
    choices = file_choices(method, spec.name, extra_models) or []
    for item in value if isinstance(value, list) else [value]:
        if item not in choices:
            listed = ", ".join("none" if c is None else str(c) for c in choices)
            raise BrushworkError(
                f"{spec.label} must be one of {listed} on this server, not {shown(item)}"
            )


def _check_sizes(values: dict[str, Any], max_side: int) -> None:
    """The sizes within this server's ``max_side`` (the default output size lowered to it)."""
    default = Controls().size or max_side
    if "size" not in values and default > max_side:
        values["size"] = max_side  # the default output size, within this server's limit
    for name in ("size", "style_size", "start_size"):
        side = values.get(name, default if name == "size" else None)
        if isinstance(side, int) and not isinstance(side, bool) and side > max_side:
            raise BrushworkError(
                f"{name.replace('_', '-')} must be <= {max_side} on this server, not {side}"
            )


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
                f'style {number}: expected {{"weight": W, "layers": [...]}}, not {shown(item)}'
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
                f"region {colour!r}: expected a style number or null, not {shown(target)}"
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
    """The job kind, if this server takes it."""
    kind = kind or "image"
    taken = available_kinds()
    if kind not in taken:
        if kind in KINDS:
            raise BrushworkError(
                f"this server does not take {kind} jobs: it needs PyAV and OpenCV "
                "(pip install 'brushwork[video]')"
            )
        raise BrushworkError(f"unknown job kind {kind!r}; this server takes: {', '.join(taken)}")
    return kind
