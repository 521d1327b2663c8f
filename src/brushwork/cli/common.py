"""The command line's building blocks, shared by every command (and by ``brushwork video``,
``serve`` and ``batch``): one-line errors, flags generated from options dataclasses
(:mod:`brushwork.options`), the style and method arguments, progress sinks.

Nothing here imports torch: light commands (``methods``, ``models``) stay light.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NoReturn

from brushwork.defaults import DEFAULT_METHOD
from brushwork.errors import BrushworkError
from brushwork.outputs import exists


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors and exit status 2."""

    def error(self, message: str) -> NoReturn:
        raise BrushworkError(message)


def version_text() -> str:
    """``brushwork VERSION``, as ``--version`` prints it."""
    from brushwork import __version__

    return f"brushwork {__version__}"


def _show(value: Any) -> str:
    """A default as the user would type it."""
    if value is None:
        return "none"
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value) or '""'
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


_ITEM = {"int": int, "float": float, "str": str}
_NOUN = {"int": "integer", "float": "number", "str": "text"}


def scalar_type(
    kind: str, optional: bool, parse: Callable[[str], Any] | None
) -> Callable[[str], Any]:
    """An argparse ``type`` for one value of ``kind`` (``parse``: a custom parser);
    ``optional``: ``none``/``null`` give None."""
    convert = parse or _ITEM.get(kind, str)
    label = {"int": "an integer", "float": "a number"}.get(kind, "a value")

    def parse_value(text: str) -> Any:
        if optional and text.strip().lower() in ("none", "null"):
            return None
        try:
            return convert(text)
        except BrushworkError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
        except (ValueError, OverflowError):
            raise argparse.ArgumentTypeError(f"expected {label}, got {text!r}") from None

    return parse_value


def _sequence(item: str, optional: bool) -> Callable[[str], Any]:
    """An argparse ``type`` for comma-separated values of ``item``."""
    convert = _ITEM.get(item, str)

    def parse(text: str) -> Any:
        if optional and text.strip().lower() in ("none", "null"):
            return None
        parts = [p.strip() for p in text.split(",")]
        if not text.strip() or any(not p for p in parts):
            raise argparse.ArgumentTypeError(
                f"expected comma-separated {_NOUN.get(item, item)} values, got {text!r}"
            )
        try:
            return tuple(convert(p) for p in parts)
        except (ValueError, OverflowError):
            raise argparse.ArgumentTypeError(
                f"expected comma-separated {_NOUN.get(item, item)} values, got {text!r}"
            ) from None

    return parse


ABSENT: Any = argparse.SUPPRESS
"""The default of every generated flag: absent flags leave no attribute, so a flag given as
``none`` (None) is told apart from a flag not given."""


def add_options(
    parser: Any, cls: type, prefix: str, *, defaults: Any = None, skip: Sequence[str] = ()
) -> None:
    """One flag per option of ``cls`` (help, choices, metavar and default from its
    declaration; ``defaults`` an instance whose values to show instead). Given values land
    in ``args`` as ``prefix + name``; absent ones are not set (:data:`ABSENT`)."""
    from brushwork.options import fields_of

    for spec in fields_of(cls):
        meta = spec.metadata
        if not meta.get("cli", True) or spec.name in skip:
            continue
        flag = meta.get("flag") or "--" + spec.label
        default = getattr(defaults, spec.name) if defaults is not None else spec.default
        shown = "" if spec.required else f" (default: {_show(default)})"
        kwargs: dict[str, Any] = {
            "dest": prefix + spec.name,
            "default": ABSENT,
            "help": spec.help.replace("%", "%%") + shown,
        }
        if spec.required:
            kwargs["required"] = True
        if spec.kind == "bool":
            kwargs["action"] = argparse.BooleanOptionalAction
        elif spec.kind == "list":
            kwargs["type"] = _sequence(spec.item or "str", spec.optional)
            kwargs["metavar"] = meta.get("metavar") or f"{(spec.item or 'str').upper()},..."
        else:
            kwargs["type"] = scalar_type(spec.kind, spec.optional, meta.get("parse"))
            if spec.choices and spec.kind == "str":
                kwargs["choices"] = spec.choices
            kwargs["metavar"] = meta.get("metavar") or (None if spec.choices else spec.kind.upper())
        flags = [meta["short"], flag] if meta.get("short") else [flag]
        parser.add_argument(*flags, **kwargs)


def given(args: argparse.Namespace, prefix: str) -> dict[str, Any]:
    """The options given on the command line under ``prefix`` (names without it; a value
    given as ``none`` is None)."""
    return {
        name[len(prefix) :]: value for name, value in vars(args).items() if name.startswith(prefix)
    }


def parse_style_spec(spec: str) -> dict[str, Any]:
    """``PATH[:WEIGHT][@LAYER,LAYER]`` → {"image", "weight", "layers"}; an existing file's
    name is taken whole, so paths containing ':' or '@' still work. A weight or layer list
    that does not parse is an error naming it (not a missing file)."""
    from brushwork.encoders.vgg import LAYER_INDEX

    if exists(spec):
        return {"image": spec, "weight": 1.0, "layers": None}
    path, weight, layers = spec, 1.0, None
    head, at, tail = path.rpartition("@")
    if at and head:
        names = [n.strip() for n in tail.split(",")]
        unknown = [n for n in names if n not in LAYER_INDEX]
        if unknown or not all(names):
            weighted = head.rpartition(":")[0]
            if exists(head) or (weighted and exists(weighted)):
                raise BrushworkError(
                    f"--style {spec}: unknown VGG-19 layer "
                    f"{(unknown or [''])[0]!r} after '@' (layers are named "
                    "relu1_1, relu2_1, ...)"
                )
        else:
            path, layers = head, tuple(names)
    head, colon, tail = path.rpartition(":")
    if colon and head:
        try:
            weight = float(tail)
        except ValueError:
            if exists(head):
                raise BrushworkError(
                    f"--style {spec}: the weight after ':' must be a number, not {tail!r}"
                ) from None
        else:
            path = head
    return {"image": path, "weight": weight, "layers": layers}


def parse_regions(items: list[str]) -> dict[str, int | None] | None:
    """``--region COLOR=N|none`` items → {color: style number or None} (None: no items)."""
    from brushwork.masks import parse_color

    if not items:
        return None
    regions: dict[str, int | None] = {}
    for item in items:
        color, equals, target = item.rpartition("=")
        if not equals or not color:
            raise BrushworkError(f"--region expects COLOR=N or COLOR=none, not {item!r}")
        parse_color(color)
        if target.strip().lower() == "none":
            regions[color] = None
            continue
        try:
            regions[color] = int(target)
        except ValueError:
            raise BrushworkError(
                f"--region {item!r}: expected a style number or 'none' after '='"
            ) from None
    return regions


def add_style_arguments(parser: argparse.ArgumentParser) -> None:
    """The style images and their regions: ``STYLE``/``--style``, ``--mask``, ``--region``,
    ``--style-mask`` (read back with :func:`styles_from_args`)."""
    parser.add_argument("style", nargs="?", default=None, help="style image (or use --style)")
    styles = parser.add_argument_group("styles and regions")
    styles.add_argument(
        "--style",
        dest="styles",
        action="append",
        default=[],
        metavar="PATH[:W][@LAYERS]",
        help="a style image, repeatable: blend weight W (default 1; weights are normalized), "
        "and optionally the style layers it is restricted to, e.g. "
        "a.jpg:0.7 or a.jpg@relu1_1,relu2_1",
    )
    styles.add_argument(
        "--mask",
        default=None,
        metavar="LABELS",
        help="label image, one flat color per region; regions go to the "
        "styles in order of brightness, darkest first, unless --region",
    )
    styles.add_argument(
        "--region",
        dest="regions",
        action="append",
        default=[],
        metavar="COLOR=N",
        help="map a label color (#rrggbb or r,g,b) to "
        "style number N (1-based) or 'none' (unstyled); repeatable",
    )
    styles.add_argument(
        "--style-mask",
        dest="style_masks",
        action="append",
        default=[],
        metavar="PATH",
        help="grayscale mask per style, in --style order: white where the style applies",
    )


def add_method_arguments(
    parser: argparse.ArgumentParser, method: str, default: str = DEFAULT_METHOD
) -> Any:
    """``-m/--method`` (``default`` when absent), the controls every method shares and
    ``method``'s own options (read back with :func:`method_values`); returns the method's
    registry entry."""
    from brushwork.methods import get_entry
    from brushwork.stylizer import Controls

    entry = get_entry(method)
    cls = entry.load()
    parser.add_argument(
        "-m",
        "--method",
        default=default,
        help=f"method (see `brushwork methods`; default: {default})",
    )
    add_options(parser.add_argument_group("controls (every method)"), Controls, "c_")
    add_options(
        parser.add_argument_group(f"{method} options"),
        cls.options_class,
        "m_",
        defaults=cls.default_options(),
    )
    return entry


def method_values(args: argparse.Namespace) -> dict[str, Any]:
    """The controls and method options given on the command line."""
    return {**given(args, "c_"), **given(args, "m_")}


def method_of(argv: Sequence[str], default: str = DEFAULT_METHOD) -> str:
    """The ``-m/--method`` of an argument list (``default`` when absent), before the full
    parse."""
    pre = _Parser(add_help=False)
    pre.add_argument("-m", "--method", default=default)
    known, _ = pre.parse_known_args(list(argv))
    return str(known.method)


def parse_known(
    parser: argparse.ArgumentParser, argv: Sequence[str], method: str
) -> argparse.Namespace:
    """Parse, refusing leftover flags with a message that names the methods they belong
    to."""
    args, extra = parser.parse_known_args(list(argv))
    if extra:
        raise BrushworkError(_unknown_option_message(extra, method))
    return args


def progress_flags(group: Any) -> None:
    """``--progress {auto,bar,json,none}`` and ``-q`` (read back with :func:`progress_sinks`)."""
    group.add_argument(
        "--progress",
        choices=("auto", "bar", "json", "none"),
        default="auto",
        help="progress on stderr: a bar (auto: when stderr is a terminal), "
        "JSON lines, or none (default: auto)",
    )
    group.add_argument(
        "-q", "--quiet", action="store_true", help="no progress (warnings and errors still print)"
    )


@contextlib.contextmanager
def progress_sinks(args: argparse.Namespace) -> Iterator[list[Any]]:
    """The event sinks the progress flags ask for (warnings always print), closed (their
    bars ended) when the block ends, however it ends."""
    from brushwork import events

    mode = "none" if args.quiet else args.progress
    sinks: list[Any]
    if mode == "json":
        sinks = [events.JsonLines(sys.stderr)]
    else:
        disable = True if mode == "none" else (False if mode == "bar" else None)
        sinks = [events.ProgressBar(disable=disable)]
    try:
        yield sinks
    finally:
        for sink in sinks:
            if hasattr(sink, "close"):
                sink.close()


def _unknown_option_message(extra: list[str], method: str) -> str:
    """Why leftover flags were refused: an option the method retired (what to use
    instead), another method's option, or no option at all."""
    from brushwork.methods import REGISTRY
    from brushwork.options import fields_of

    flag = next((x for x in extra if x.startswith("--")), extra[0])
    name = flag[2:].split("=", 1)[0].replace("-", "_")
    retired = REGISTRY[method].load().options_class.retired
    if name in retired:
        return retired[name]
    owners = []
    for entry in REGISTRY.values():
        try:
            cls = entry.load()
        except BrushworkError:
            continue
        if any(spec.name == name for spec in fields_of(cls.options_class)):
            owners.append(entry.name)
    if owners:
        return (
            f"{flag.split('=')[0]} does not apply to method {method!r} (it is an option of "
            f"{', '.join(owners)})"
        )
    return f"unrecognized arguments: {' '.join(extra)}"


def takes_style_images(method: str | None) -> bool:
    """Whether ``method`` (None: a front end without one) takes style images (a per-style
    network paints its own)."""
    from brushwork.methods import get_method

    return method is None or get_method(method).style_images


def styles_from_args(args: argparse.Namespace) -> list[Any]:
    """The :class:`brushwork.inputs.Style` list of STYLE, ``--style`` and ``--style-mask``."""
    from brushwork.inputs import Style

    specs = ([{"image": args.style, "weight": 1.0, "layers": None}] if args.style else []) + [
        parse_style_spec(spec) for spec in args.styles
    ]
    if not specs and takes_style_images(getattr(args, "method", None)):
        raise BrushworkError("no style image: give STYLE or --style PATH")
    if args.style_masks and len(args.style_masks) != len(specs):
        raise BrushworkError(
            f"{len(args.style_masks)} --style-mask given for {len(specs)} styles; give one "
            "per style"
        )
    masks = args.style_masks or [None] * len(specs)
    return [Style(mask=mask, **spec) for spec, mask in zip(specs, masks, strict=True)]


def pick_named(
    argv: Sequence[str], *, prog: str, description: str, dest: str, names: Sequence[str]
) -> tuple[str, list[str]] | None:
    """The NAME of ``brushwork COMMAND NAME ...`` and the arguments after it; None once the
    command's own help (no NAME, or ``-h``) has been printed."""
    if not argv or argv[0] in ("-h", "--help"):
        parser = _Parser(prog=prog, description=description)
        parser.add_argument(dest, choices=list(names))
        parser.parse_args(list(argv))
        return None
    return argv[0], list(argv[1:])
