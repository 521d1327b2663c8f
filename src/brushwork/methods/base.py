"""The interface every style-transfer method implements.

A method is a class with a name, an options dataclass and one call::

    method = get_method("gatys")(GatysOptions(iterations=200))
    result = method.stylize(content, style)   # tensors (1, 3, H, W), RGB in [0, 1]

``style`` may also be a list of :class:`StyleTarget`: several style images, each with a
blend weight, optionally restricted to some encoder layers or to a region of the content.

Options are plain dataclasses whose fields carry ``help`` metadata: the CLI builds its flags
from them, so the library's defaults are the only defaults.
"""

from __future__ import annotations

import dataclasses
import math
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor

from brushwork.errors import BrushworkError

GIB = 2**30


def available_memory(device: torch.device) -> int:
    """Bytes that can be allocated now: free GPU memory, or the system's MemAvailable."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def memory_limit(limit: int | None, device: torch.device) -> tuple[int, str]:
    """(bytes a run may use, how to name that limit in an error): ``limit``, or 80 % of
    what is available."""
    if limit:
        return limit, "the memory limit"
    return int(0.8 * available_memory(device)), "80 % of the available memory"


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
class StyleTarget:
    """One style image and where and how strongly it applies.

    Without masks, the styles of a list are blended: each layer's target statistics are the
    weighted mean of the styles assigned to it (weights normalized to sum 1; Gatys et al.
    2017, "Controlling Perceptual Factors in Neural Style Transfer", §4-5). With masks, each
    style is matched inside its own region only (Gatys et al. 2017 §4, guided Gram
    matrices) and its weight scales that region's style loss; a style without a mask covers
    the whole image, and pixels no mask covers keep the content.
    """

    image: Tensor
    """(1, 3, H, W) RGB in [0, 1]; any size."""
    weight: float = 1.0
    layers: tuple[str, ...] | None = None
    """Restrict this style to these encoder layers (e.g. fine layers from one painting,
    coarse ones from another); None: every style layer of the method."""
    mask: Tensor | None = None
    """(1, 1, H, W) over the content image, values in [0, 1]; None: everywhere."""


def style_targets(style: Tensor | StyleTarget | Sequence[StyleTarget],
                  content: Tensor) -> list[StyleTarget]:
    """Check styles against the content and return them as a list; a tensor becomes one
    :class:`StyleTarget` of weight 1."""
    if isinstance(style, Tensor):
        targets = [StyleTarget(style)]
    elif isinstance(style, StyleTarget):
        targets = [style]
    else:
        targets = list(style)
    if not targets:
        raise BrushworkError("at least one style image is needed")
    for number, target in enumerate(targets, 1):
        if target.image.ndim != 4 or target.image.shape[:2] != (1, 3):
            raise BrushworkError(f"style {number} must be a (1, 3, H, W) tensor")
        if target.mask is not None and (
            target.mask.ndim != 4 or target.mask.shape[:2] != (1, 1)
            or target.mask.shape[-2:] != content.shape[-2:]
        ):
            raise BrushworkError(
                f"the mask of style {number} has shape {tuple(target.mask.shape)}; "
                f"expected (1, 1, {content.shape[-2]}, {content.shape[-1]}) like the content"
            )
    check_style_weights([t.weight for t in targets])
    return targets


def check_style_weights(weights: Sequence[float]) -> None:
    """Blend weights must be finite, >= 0 and not all zero."""
    for weight in weights:
        if not isinstance(weight, (int, float)) or not math.isfinite(weight) or weight < 0:
            raise BrushworkError(f"style weights must be finite numbers >= 0, not {weight}")
    if sum(weights) <= 0:
        raise BrushworkError("style weights must not sum to zero")


def uses_masks(targets: Sequence[StyleTarget]) -> bool:
    return any(t.mask is not None for t in targets)


def blend_weights(targets: Sequence[StyleTarget]) -> list[float]:
    """Blend weights normalized to sum 1 (blend mode), or as given (mask mode: per-region
    strengths)."""
    if uses_masks(targets):
        return [float(t.weight) for t in targets]
    total = sum(t.weight for t in targets)
    return [t.weight / total for t in targets]


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

    def min_style_side(self) -> int:
        """The shortest side, in pixels, a style image must have for this method."""
        return 1

    def check_memory(self, height: int, width: int, device: torch.device,
                     limit: int | None = None) -> None:
        """Refuse, before any work, an H×W run that cannot fit in ``limit`` bytes (None: 80 %
        of the available memory). Methods that can estimate their peak override this."""
        return None

    def check_style_layers(self, assignments: Sequence[tuple[str, ...] | None]) -> None:
        """Refuse per-style layer assignments (``StyleTarget.layers``, one entry per style)
        this method cannot use; called before any work. By default none are allowed."""
        if any(layers is not None for layers in assignments):
            raise BrushworkError(f"{self.name} cannot restrict styles to layers")

    def __init__(self, options: Options | None = None, **changes: Any) -> None:
        base = options if options is not None else self.default_options()
        self.options = base.replace(**changes)

    @classmethod
    def default_options(cls) -> Options:
        options = cls.options_class(**cls.preset)
        options.validate()
        return options

    accepts_init: ClassVar[bool] = False
    """Whether :meth:`stylize` can start from a given image (coarse-to-fine, video)."""

    @abstractmethod
    def stylize(
        self,
        content: Tensor,
        style: Tensor | StyleTarget | Sequence[StyleTarget],
        *,
        init: Tensor | None = None,
        callbacks: list[Callable[[Any], None]] | None = None,
    ) -> StylizeResult:
        """Paint ``content`` ((1, 3, H, W) in [0, 1]) in the style of ``style``: one image
        tensor or a list of :class:`StyleTarget`. ``init``, for methods with
        ``accepts_init``, replaces the method's own start image (same shape as content)."""
