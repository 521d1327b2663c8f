"""Options, defined once: dataclasses whose fields carry their help text, choices and ranges.

Every tunable of brushwork is a field of one of these (a method's options, the run controls,
a training configuration, the run folder settings). The command line is generated from them
(:mod:`brushwork.cli`), the HTTP service lists them (types, defaults, ranges) so its page can
build its controls, and :meth:`Options.validate` checks every value against its declaration
before any work, so a value no run can use is one clear error everywhere.

    @dataclass
    class MyOptions(Options):
        strength: float = option(1.0, "how strong", minimum=0)
        levels: tuple[str, ...] = option(("a", "b"), "which levels", choices=("a", "b", "c"))
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from brushwork.errors import BrushworkError

SEED_MAX = 2**64 - 1
REQUIRED: Any = dataclasses.MISSING
"""The default of an option that must be given (a required flag; fields without a default
come first in their dataclass)."""


def option(
    default: Any,
    help: str,
    *,
    choices: tuple[Any, ...] | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
    min_items: int = 0,
    parse: Callable[[str], Any] | None = None,
    metavar: str | None = None,
    flag: str | None = None,
    short: str | None = None,
    cli: bool = True,
    names: tuple[str | None, ...] | None = None,
    main: bool = False,
    never_path: bool = False,
) -> Any:
    """A dataclass field with what the CLI, the service and validation need to know.

    ``choices`` (for a str field, or each item of a tuple field), ``minimum`` / ``maximum``
    (numbers, or each item; ``exclusive_minimum`` makes the minimum strict), ``min_items``
    (tuples), ``parse`` (a function from the command-line text, e.g. ``8G`` → bytes),
    ``metavar``, ``flag`` (the flag's name, default ``--field-name``) and ``short`` (e.g.
    ``-o``), ``cli=False`` to keep a field off the command line; ``names``, for an option
    that takes a file path or a name, the names it takes that are not paths (a front end
    that must never open a client's path, the HTTP service, allows only these);
    ``never_path`` for free text that never names a file (names of a model's styles), which
    such a front end may take as it is; ``main`` for the few options a form shows first (the
    service's page puts the rest under "more options").
    """
    if isinstance(default, (list, dict, set)):
        raise TypeError("use tuples for sequence defaults")
    metadata = {
        "help": help,
        "choices": choices,
        "minimum": minimum,
        "maximum": maximum,
        "exclusive_minimum": exclusive_minimum,
        "min_items": min_items,
        "parse": parse,
        "metavar": metavar,
        "flag": flag,
        "short": short,
        "cli": cli,
        "names": names,
        "main": main,
        "never_path": never_path,
    }
    if default is REQUIRED:
        return field(metadata=metadata)
    return field(default=default, metadata=metadata)


def redefault(base: type, name: str, default: Any, help: str | None = None) -> Any:
    """Option ``name`` of the options class ``base`` with another default (and help): for a
    subclass that shares an option but not its default, without declaring it again."""
    spec = next((f for f in dataclasses.fields(base) if f.name == name), None)
    if spec is None:
        raise TypeError(f"{base.__name__} has no option {name!r}")
    metadata = dict(spec.metadata)
    if help is not None:
        metadata["help"] = help
    return field(default=default, metadata=metadata, kw_only=spec.kw_only)


@dataclass(frozen=True)
class FieldSpec:
    """One option as front ends see it."""

    name: str
    kind: str
    """``int``, ``float``, ``str``, ``bool`` or ``list`` (a tuple field)."""
    item: str | None
    """The item kind of a ``list``."""
    optional: bool
    default: Any
    help: str
    choices: tuple[Any, ...] | None
    minimum: float | None
    maximum: float | None
    exclusive_minimum: bool
    min_items: int
    required: bool = False
    metadata: Any = None

    @property
    def label(self) -> str:
        """The option as users type it: its flag's name (``lr``), else the field's
        (``learning-rate``)."""
        flag = (self.metadata or {}).get("flag") if self.metadata is not None else None
        return flag.lstrip("-") if flag else self.name.replace("_", "-")

    @property
    def never_path(self) -> bool:
        """Whether the option's text never names a file (``option(..., never_path=True)``)."""
        return bool((self.metadata or {}).get("never_path"))

    @property
    def main(self) -> bool:
        """Whether a form shows this option first (``option(..., main=True)``)."""
        return bool((self.metadata or {}).get("main"))

    def describe(self) -> dict[str, Any]:
        """JSON-ready: what a form needs to build a control for this option."""
        default = list(self.default) if isinstance(self.default, tuple) else self.default
        return {
            "name": self.name,
            "type": self.kind,
            "items": self.item,
            "optional": self.optional,
            "default": default,
            "help": self.help,
            "choices": list(self.choices) if self.choices else None,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "exclusive_minimum": self.exclusive_minimum,
            "required": self.required,
        }


_KINDS = {int: "int", float: "float", str: "str", bool: "bool"}


def _kind(hint: Any) -> tuple[str, str | None, bool]:
    args = typing.get_args(hint)
    optional = False
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        optional = True
        hint = next(a for a in args if a is not type(None))
        args = typing.get_args(hint)
    if typing.get_origin(hint) is tuple:
        return "list", _KINDS.get(args[0], "str"), optional
    return _KINDS.get(hint, "str"), None, optional


def fields_of(cls: type) -> tuple[FieldSpec, ...]:
    """The options of an options dataclass, with their declared kinds and limits (computed
    once per class)."""
    return _fields_of(cls)


@functools.cache
def _fields_of(cls: type) -> tuple[FieldSpec, ...]:
    # behind fields_of: a cached function's arguments must be Hashable, which type checkers
    # do not see in an options class (a dataclass, whose instances are unhashable)
    hints = typing.get_type_hints(cls)
    specs = []
    # in the order of the constructor: a subclass's own fields before keyword-only ones
    for f in sorted(dataclasses.fields(cls), key=lambda f: f.kw_only is True):
        kind, item, optional = _kind(hints[f.name])
        meta = f.metadata
        required = f.default is dataclasses.MISSING
        default = None if required else f.default
        specs.append(
            FieldSpec(
                f.name,
                kind,
                item,
                optional,
                default,
                meta.get("help", ""),
                meta.get("choices"),
                meta.get("minimum"),
                meta.get("maximum"),
                bool(meta.get("exclusive_minimum")),
                int(meta.get("min_items") or 0),
                required,
                meta,
            )
        )
    return tuple(specs)


def _number(limit: float) -> str:
    """A limit as written: whole numbers as integers (2**64 − 1, not 1.84467e+19)."""
    if float(limit).is_integer():
        return str(int(limit))
    return f"{limit:g}"


def _check_value(spec: FieldSpec, kind: str, value: Any, what: str) -> None:
    if kind == "bool":
        if not isinstance(value, bool):
            raise BrushworkError(f"{what} must be true or false, not {value!r}")
        return
    if kind in ("int", "float"):
        is_int = isinstance(value, int) and not isinstance(value, bool)
        if kind == "int" and not is_int:
            raise BrushworkError(f"{what} must be an integer, not {value!r}")
        if kind == "float" and not (is_int or isinstance(value, float)):
            raise BrushworkError(f"{what} must be a number, not {value!r}")
        if kind == "float" and not math.isfinite(value):
            raise BrushworkError(f"{what} must be a finite number, not {value}")
        low, high = spec.minimum, spec.maximum
        if low is not None and (value < low or (spec.exclusive_minimum and value == low)):
            bound = f"> {_number(low)}" if spec.exclusive_minimum else f">= {_number(low)}"
            if high is not None:
                bound += f" and <= {_number(high)}"
            raise BrushworkError(f"{what} must be {bound}, not {value}")
        if high is not None and value > high:
            raise BrushworkError(f"{what} must be <= {_number(high)}, not {value}")
    elif kind == "str" and not isinstance(value, str):
        raise BrushworkError(f"{what} must be a string, not {value!r}")
    if spec.choices is not None and value not in spec.choices:
        raise BrushworkError(
            f"{what} must be one of {', '.join(map(str, spec.choices))}, not {value!r}"
        )


@dataclass
class Options:
    """Base of every options dataclass: validation from the declarations, then
    :meth:`check` for rules between fields."""

    retired: ClassVar[dict[str, str]] = {}
    """Options that were removed, by name, each with one line saying what to use instead:
    giving one is refused with that line (:func:`unknown_option`)."""

    def validate(self) -> None:
        """Raise :class:`BrushworkError` for a value no run could use."""
        for spec in fields_of(type(self)):
            value = getattr(self, spec.name)
            what = spec.label
            if value is None:
                if not spec.optional:
                    raise BrushworkError(f"{what} must be given")
                continue
            if spec.kind == "list":
                if not isinstance(value, (tuple, list)):
                    raise BrushworkError(f"{what} must be a list, not {value!r}")
                if len(value) < spec.min_items:
                    raise BrushworkError(
                        f"{what} needs at least {spec.min_items} "
                        f"value{'s' if spec.min_items > 1 else ''}"
                    )
                for item in value:
                    _check_value(spec, spec.item or "str", item, f"each of {what}")
                if isinstance(value, list):
                    object.__setattr__(self, spec.name, tuple(value))
            else:
                _check_value(spec, spec.kind, value, what)
        try:
            self.check()
        except OSError as error:  # a path the file system refuses to look at (too long, ...)
            name = str(error.filename or "a path")
            name = name if len(name) <= 80 else name[:77] + "..."
            raise BrushworkError(f"{name}: {error.strerror or error}") from None

    def check(self) -> None:
        """Rules between fields (override); single values are checked by :meth:`validate`."""

    def replace(self, **changes: Any) -> Any:
        """A validated copy with ``changes``; an unknown name is refused."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise unknown_option(unknown[0], type(self))
        new = dataclasses.replace(self, **changes)
        new.validate()
        return new

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def describe(cls) -> list[dict[str, Any]]:
        return [spec.describe() for spec in fields_of(cls)]


def split_options(values: dict[str, Any], *classes: type) -> list[dict[str, Any]]:
    """Split keyword arguments among options classes (the first that has a name takes it);
    a name none has is refused."""
    parts: list[dict[str, Any]] = [{} for _ in classes]
    for name, value in values.items():
        for index, cls in enumerate(classes):
            if name in {f.name for f in dataclasses.fields(cls)}:
                parts[index][name] = value
                break
        else:
            raise unknown_option(name, *classes)
    return parts


def unknown_option(name: str, *classes: type) -> BrushworkError:
    """The error for an option none of ``classes`` has: what to use instead if one of them
    retired it, else the options they know."""
    for cls in classes:
        retired: dict[str, str] = getattr(cls, "retired", {})
        if name in retired:
            return BrushworkError(retired[name])
    known = sorted({f.name for cls in classes for f in dataclasses.fields(cls)})
    owner = f" for {classes[0].__name__}" if len(classes) == 1 else ""
    return BrushworkError(f"unknown option {name!r}{owner}; known: {', '.join(known)}")
