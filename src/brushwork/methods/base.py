"""The interface every style-transfer method implements.

A method is a class with options (a dataclass, :mod:`brushwork.options`) and two calls:
:meth:`Method.prepare` encodes the styles once (Gram targets, channel statistics,
covariances, feature maps: a :class:`PreparedStyle`), and :meth:`Method.stylize` paints one
content image with them; a video or a server prepares once and stylizes many times::

    method = get_method("gatys")(GatysOptions(iterations=200), encoder=vgg)
    prepared = method.prepare([StyleTarget(style)])
    result = method.stylize(content, prepared)   # tensors (1, 3, H, W), RGB in [0, 1]

A method instance holds its options (fixed at construction), its shared encoder and the
networks it loaded; nothing about one run is stored on it, so one instance may serve
several threads. Per-run choices (a memory plan, the iterations of a coarse-to-fine scale,
extra loss terms) are arguments of :meth:`Method.stylize`.

Several styles (:class:`StyleTarget`) blend by their weights, may be restricted to some
encoder layers, or paint their own region of the content (masks).
"""

from __future__ import annotations

import math
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar, cast

import torch
from torch import Tensor

from brushwork.errors import BrushworkError
from brushwork.options import Options
from brushwork.precision import FLOAT32, Precision


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


@dataclass
class PreparedStyle:
    """Styles encoded once by one method, for content images of one size (their masks are
    over the content). ``data`` is the method's own (targets, statistics, features)."""

    method: str
    targets: list[StyleTarget]
    data: Any
    content_size: tuple[int, int] | None = None
    """(H, W) the masks are for; None when no style has a mask."""
    seconds: float = 0.0

    def check_content(self, content: Tensor) -> None:
        if self.content_size is not None and tuple(content.shape[-2:]) != self.content_size:
            raise BrushworkError(
                f"the styles were prepared with masks for a {self.content_size[1]}x"
                f"{self.content_size[0]} content, not {content.shape[-1]}x{content.shape[-2]}"
            )


def refuse_style_images(method: str) -> None:
    """The one-line refusal of style images given to a method whose network paints its own
    styles."""
    raise BrushworkError(
        f"{method} takes no style image: its network paints the styles it was trained for "
        "(choose them with its styles option; see `brushwork models`)"
    )


def style_targets(style: Tensor | StyleTarget | Sequence[StyleTarget]) -> list[StyleTarget]:
    """Check styles and return them as a list; a tensor becomes one :class:`StyleTarget`
    of weight 1."""
    if isinstance(style, Tensor):
        targets = [StyleTarget(style)]
    elif isinstance(style, StyleTarget):
        targets = [style]
    else:
        targets = list(style)
    if not targets:
        raise BrushworkError("at least one style image is needed")
    size = None
    for number, target in enumerate(targets, 1):
        if target.image.ndim != 4 or target.image.shape[:2] != (1, 3):
            raise BrushworkError(f"style {number} must be a (1, 3, H, W) tensor")
        if not bool(torch.isfinite(target.image).all()):
            raise BrushworkError(f"style {number} has values that are not finite numbers")
        if target.mask is not None:
            if target.mask.ndim != 4 or target.mask.shape[:2] != (1, 1):
                raise BrushworkError(
                    f"the mask of style {number} must be a (1, 1, H, W) "
                    f"tensor, not {tuple(target.mask.shape)}"
                )
            if size is not None and tuple(target.mask.shape[-2:]) != size:
                raise BrushworkError("the masks of the styles differ in size")
            size = tuple(target.mask.shape[-2:])
    check_style_weights([t.weight for t in targets])
    return targets


def mask_size(targets: Sequence[StyleTarget]) -> tuple[int, int] | None:
    """The (H, W) of the styles' masks, or None without masks."""
    for target in targets:
        if target.mask is not None:
            return (int(target.mask.shape[-2]), int(target.mask.shape[-1]))
    return None


def check_style_weights(weights: Sequence[float]) -> None:
    """Blend weights must be finite, >= 0 and not all zero."""
    for weight in weights:
        if (
            isinstance(weight, bool)
            or not isinstance(weight, (int, float))
            or not math.isfinite(weight)
            or weight < 0
        ):
            raise BrushworkError(f"style weights must be finite numbers >= 0, not {weight}")
    if weights and sum(weights) <= 0:
        raise BrushworkError("style weights must not sum to zero")


def uses_masks(targets: Sequence[StyleTarget]) -> bool:
    return any(t.mask is not None for t in targets)


def blend_weights(targets: Sequence[StyleTarget]) -> list[float]:
    """Blend weights normalized to sum 1 (blend mode), or as given (mask mode: per-region
    strengths). Scaled by the largest first, so that huge weights (1e308) cannot overflow
    the sum."""
    if uses_masks(targets):
        return [float(t.weight) for t in targets]
    largest = max(t.weight for t in targets)
    scaled = [t.weight / largest for t in targets]
    return [w / math.fsum(scaled) for w in scaled]


def check_style_sides(targets: Sequence[StyleTarget], least: int, name: str) -> None:
    """Refuse a style image with a side under ``least`` pixels (method ``name``'s least)."""
    for number, target in enumerate(targets, 1):
        height, width = target.image.shape[-2:]
        if min(height, width) < least:
            raise BrushworkError(
                f"style {number} is {width}×{height} px; {name} needs at least {least}×{least} px"
            )


def check_content(content: Tensor, least: int, name: str) -> None:
    """Refuse a content tensor a method cannot take: wrong shape, non-finite values, or a
    side under ``least`` pixels."""
    if content.ndim != 4 or content.shape[:2] != (1, 3):
        raise BrushworkError(
            f"the content must be a (1, 3, H, W) tensor, not {tuple(content.shape)}"
        )
    if not bool(torch.isfinite(content).all()):
        raise BrushworkError("the content has values that are not finite numbers")
    if min(content.shape[-2:]) < least:
        raise BrushworkError(
            f"the content is {content.shape[-1]}x{content.shape[-2]} px; "
            f"{name} needs at least {least} px a side"
        )


@dataclass
class StylizeResult:
    """What a method returns: the image (1, 3, H, W) in [0, 1], final loss terms (empty for
    methods without a loss), seconds spent, and method-specific details."""

    image: Tensor
    losses: dict[str, float]
    seconds: float
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class MemoryPlan:
    """How a run fits in memory: estimated peak bytes and, for optimization, activation
    checkpointing and the L-BFGS history."""

    estimate: int
    checkpointing: bool = False
    history_size: int = 0

    def describe(self) -> dict[str, Any]:
        return {
            "memory_estimate": self.estimate,
            "checkpointing": self.checkpointing,
            "lbfgs_history": self.history_size,
        }


@dataclass(frozen=True)
class StepCounter:
    """Where one :meth:`Method.stylize` call's steps fall in a longer run (the scales of a
    coarse-to-fine run, the frames of a video): progress events are numbered from
    ``offset`` + 1, out of ``total`` (None: this call's own steps)."""

    stage: str
    offset: int = 0
    total: int | None = None
    scale: int | None = None


OptionsT = TypeVar("OptionsT", bound=Options)
"""A method's options class (:attr:`Method.options_class`): ``Method[AdaINOptions]``."""

LossTerm = Callable[[Tensor], Tensor]
"""An extra term of an optimization objective: the image being optimized → a scalar, already
weighted (e.g. the temporal loss of a video frame)."""


class Method(ABC, Generic[OptionsT]):
    """A style-transfer method. Subclasses set ``name``, ``description`` (both from the
    registry, :mod:`brushwork.methods`), ``options_class``, and inherit ``kind`` from their
    base (:class:`~brushwork.methods.optimization.OptimizationMethod`,
    :class:`~brushwork.methods.onepass.OnePassMethod`). A subclass names its options class
    as the parameter too (``class AdaIN(FeedForwardMethod[AdaINOptions])``), so that
    ``self.options`` has that type."""

    name: ClassVar[str]
    kind: ClassVar[str]
    """``optimization`` (optimizes the output's pixels) or ``feed-forward`` (trained
    networks, one pass): set by the base classes, copied into the registry entry."""
    description: ClassVar[str] = ""
    options_class: ClassVar[type[Options]]
    preset: ClassVar[dict[str, Any]] = {}
    style_images: ClassVar[bool] = True
    """Whether the method takes style images; False: its trained network paints the
    styles it was trained for, chosen by its options, and style images are refused."""
    """Option values that differ from ``options_class``'s defaults for this method."""

    def __init__(
        self,
        options: OptionsT | None = None,
        *,
        encoder: Any = None,
        precision: Precision | None = None,
        **changes: Any,
    ) -> None:
        base = options if options is not None else self.default_options()
        if not isinstance(base, self.options_class):
            raise BrushworkError(
                f"{self.name} takes {self.options_class.__name__}, not {type(base).__name__}"
            )
        self.options: OptionsT = base.replace(**changes) if changes else base
        if not changes:
            self.options.validate()
        self.encoder = encoder
        self.precision = precision or FLOAT32
        self._lock = threading.Lock()

    @classmethod
    def default_options(cls) -> OptionsT:
        options = cast(OptionsT, cls.options_class(**cls.preset))
        options.validate()
        return options

    # -- what the method needs, asked before any work ------------------------------------

    def encoder_request(self) -> tuple[str, str] | None:
        """(deepest VGG-19 layer, pooling) this method needs, or None if it needs none."""
        return None

    def accepts_init(self) -> bool:
        """Whether :meth:`stylize` can start from a given image (coarse-to-fine, video)."""
        return False

    def has_losses(self) -> bool:
        """Whether runs have loss terms and steps (loss plots, animations, step saves)."""
        return False

    def steps(self) -> int:
        """Steps one :meth:`stylize` call takes (its progress total)."""
        return 1

    def min_style_side(self) -> int:
        """The shortest side, in pixels, a style image must have for this method."""
        return 1

    def min_content_side(self) -> int:
        """The shortest side, in pixels, the content must have for this method."""
        return 1

    def check_style_layers(self, assignments: Sequence[tuple[str, ...] | None]) -> None:
        """Refuse per-style layer assignments (``StyleTarget.layers``, one entry per style)
        this method cannot use; called before any work. By default none are allowed."""
        if any(layers is not None for layers in assignments):
            raise BrushworkError(f"{self.name} cannot restrict styles to layers")

    def check_files(self) -> None:
        """Check, before any weights load, that every file the options name exists
        (trained networks, start images); override where options name files."""

    def plan(
        self,
        height: int,
        width: int,
        style_sizes: Sequence[tuple[int, int]],
        device: torch.device | None = None,
        limit: int | None = None,
    ) -> MemoryPlan:
        """Check that an H×W run with styles of ``style_sizes`` (each (H, W)) fits in
        ``limit`` bytes (None: 80 % of what is available) and return how; raise
        :class:`BrushworkError` with the estimate if it cannot. Computed from the sizes
        alone: nothing is allocated."""
        return MemoryPlan(0)

    # -- the work -------------------------------------------------------------------------

    def get_encoder(self) -> Any:
        if self.encoder is None:
            raise BrushworkError(
                f"{self.name} needs an encoder (pass encoder=, or use "
                "brushwork.Stylizer, which loads the pretrained VGG-19)"
            )
        return self.encoder

    def check_styles(self, targets: Sequence[StyleTarget]) -> None:
        """Refuse, before any work, styles this method cannot use: by default, smaller than
        :meth:`min_style_side` or restricted to layers it refuses
        (:meth:`check_style_layers`)."""
        check_style_sides(targets, self.min_style_side(), self.name)
        self.check_style_layers([t.layers for t in targets])

    def prepare(self, styles: Tensor | StyleTarget | Sequence[StyleTarget]) -> PreparedStyle:
        """Encode the styles once; the result serves every content image of the size their
        masks have (any size without masks). The styles are checked
        (:func:`style_targets`, :meth:`check_styles`), encoded by :meth:`encode_prepared`
        and wrapped with the time it all took."""
        start = time.perf_counter()
        targets = style_targets(styles) if self.style_images else self.no_style_images(styles)
        self.check_styles(targets)
        data = self.encode_prepared(targets)
        return PreparedStyle(
            self.name, targets, data, mask_size(targets), time.perf_counter() - start
        )

    def no_style_images(
        self, styles: Tensor | StyleTarget | Sequence[StyleTarget]
    ) -> list[StyleTarget]:
        """An empty list of styles, for a method without style images (any given are
        refused: :func:`refuse_style_images`)."""
        given = [styles] if isinstance(styles, (Tensor, StyleTarget)) else list(styles)
        if given:
            refuse_style_images(self.name)
        return []

    @abstractmethod
    def encode_prepared(self, targets: list[StyleTarget]) -> Any:
        """What :meth:`stylize` needs of the checked styles (statistics, features),
        computed once without gradients; becomes :attr:`PreparedStyle.data`."""

    @abstractmethod
    def stylize(
        self,
        content: Tensor,
        style: PreparedStyle | Tensor | StyleTarget | Sequence[StyleTarget],
        *,
        init: Tensor | None = None,
        plan: MemoryPlan | None = None,
        iterations: int | None = None,
        extra_losses: Sequence[tuple[str, LossTerm]] = (),
        events: Any = None,
        progress: StepCounter | None = None,
    ) -> StylizeResult:
        """Paint ``content`` ((1, 3, H, W) in [0, 1]) in the prepared style (or in raw
        styles, prepared on the spot).

        ``init`` (methods that accept one) replaces the start image; ``plan`` is the
        memory plan of :meth:`plan` (computed if None); ``iterations`` overrides the
        options' step count for this call (coarse-to-fine scales); ``extra_losses`` adds
        named, weighted terms to an optimization objective; progress goes to ``events``
        (see :mod:`brushwork.events`), numbered by ``progress``."""

    def _prepared(
        self, style: PreparedStyle | Tensor | StyleTarget | Sequence[StyleTarget]
    ) -> PreparedStyle:
        if isinstance(style, PreparedStyle):
            if style.method != self.name:
                raise BrushworkError(
                    f"styles prepared by {style.method} cannot be used by {self.name}"
                )
            return style
        return self.prepare(style)
