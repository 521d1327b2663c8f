"""The interface every style-transfer method implements.

A method is a class with a name, an options dataclass and one call::

    method = get_method("gatys")(GatysOptions(iterations=200))
    result = method.stylize(content, style)   # tensors (1, 3, H, W), RGB in [0, 1]

Options are plain dataclasses whose fields carry ``help`` metadata: the CLI builds its flags
from them, so the library's defaults are the only defaults.
"""

from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from torch import Tensor

from brushwork.errors import BrushworkError


def option(default: Any, help: str, **kwargs: Any) -> Any:
    """A dataclass field with a help text for the CLI."""
    if isinstance(default, (list, dict, set)):
        raise TypeError("use tuples for sequence defaults")
    return field(default=default, metadata={"help": help, **kwargs})


@dataclass
class Options:
    """Base class of method options; subclasses add fields and checks in :meth:`validate`."""

    def validate(self) -> None:
        """Raise :class:`BrushworkError` for a value no run could use."""

    def replace(self, **changes: Any) -> Options:
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise BrushworkError(
                f"unknown option {unknown[0]!r} for {type(self).__name__}; "
                f"known: {', '.join(sorted(names))}"
            )
        new = dataclasses.replace(self, **changes)
        new.validate()
        return new


def check_weight(name: str, value: float) -> None:
    """Loss weights must be finite and non-negative."""
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise BrushworkError(f"{name} must be a finite number >= 0, not {value}")


@dataclass
class StylizeResult:
    """What a method returns: the image (1, 3, H, W) in [0, 1], final loss terms (empty for
    methods without a loss), seconds spent, and method-specific details."""

    image: Tensor
    losses: dict[str, float]
    seconds: float
    details: dict[str, Any] = field(default_factory=dict)


class Method(ABC):
    """A style-transfer method. Subclasses set ``name``, ``description``, ``options_class``."""

    name: ClassVar[str]
    description: ClassVar[str]
    options_class: ClassVar[type[Options]]
    preset: ClassVar[dict[str, Any]] = {}
    """Option values that differ from ``options_class``'s defaults for this method."""
    encoder: Any = None
    """The feature encoder, for methods that use one; front ends may set a shared one."""

    def encoder_request(self) -> tuple[str, str] | None:
        """(deepest VGG-19 layer, pooling) this method needs, or None if it needs none."""
        return None

    def __init__(self, options: Options | None = None, **changes: Any) -> None:
        base = options if options is not None else self.default_options()
        self.options = base.replace(**changes)

    @classmethod
    def default_options(cls) -> Options:
        options = cls.options_class(**cls.preset)
        options.validate()
        return options

    @abstractmethod
    def stylize(
        self,
        content: Tensor,
        style: Tensor,
        *,
        callbacks: list[Callable[[Any], None]] | None = None,
    ) -> StylizeResult:
        """Paint ``content`` in the style of ``style`` (both (1, 3, H, W) in [0, 1])."""
