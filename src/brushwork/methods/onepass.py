"""What every one-pass method shares: trained networks paint the content in a fixed number of
passes, with no loss and nothing to iterate.

A one-pass method says what it keeps of the styles (:meth:`OnePassMethod.encode_styles`),
which networks it loads (:meth:`OnePassMethod.networks`), how its passes run
(:meth:`OnePassMethod.passes`, one image per pass) and the stride its networks need
(:meth:`OnePassMethod.stride`). Handled here once: the checks on the styles (sizes, blends,
masks, layers), the memory plan from the method's measured bytes per pixel and fixed bytes,
the refusal of a start image and of extra loss terms, progress events and the result;
:func:`padded_pass` pads an image and the styles' masks to a stride and crops the output
back. Every one-pass method tiles (:mod:`brushwork.tiling`): its normalizations ask
:mod:`brushwork.frozen` for their statistics and :func:`frame` reports its framing, so a
tile is painted with the whole picture's. The VGG-mirror decoder methods (AdaIN, WCT:
:mod:`brushwork.methods.feedforward`) and Style Swap's inverse network
(:mod:`brushwork.methods.styleswap_inverse`) stand on it; a network without VGG-19 can too.
"""

from __future__ import annotations

import dataclasses
import time
from abc import abstractmethod
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor

from brushwork import events as ev
from brushwork import frozen
from brushwork.encoders import receptive_field
from brushwork.errors import BrushworkError
from brushwork.memory import MIB, require
from brushwork.methods.base import (
    LossTerm,
    MemoryPlan,
    Method,
    OptionsT,
    PreparedStyle,
    StepCounter,
    StyleTarget,
    StylizeResult,
    check_content,
    check_style_sides,
    uses_masks,
)
from brushwork.ops import pad_to_multiple, reflect_margin

Paint = Callable[[Tensor, list[StyleTarget]], Tensor]
"""A network's pass on a padded image, given the styles with their masks padded alike."""


def padded_pass(
    image: Tensor,
    targets: Sequence[StyleTarget],
    multiple: int,
    least: int,
    paint: Paint,
    margin: int = 0,
) -> Tensor:
    """``paint`` on ``image`` with a mirrored ``margin`` on every side
    (:func:`~brushwork.ops.reflect_margin`, less on a side shorter than that: VGG-19's zero
    padding then shapes features only outside the picture, so the decoder paints no frame
    along its border) and reflection-
    padded at the bottom and right to a multiple of ``multiple`` and at least ``least`` a side
    (:func:`~brushwork.ops.pad_to_multiple`: an encoder halves the size at each pooling; a
    decoder's 3×3 reflection padding needs 2×2 features), the styles' masks padded alike;
    its output cropped back to the image, in float32, clamped to [0, 1]."""
    padded_targets = [
        t
        if t.mask is None
        else dataclasses.replace(t, mask=frame(t.mask, multiple, least, margin)[0])
        for t in targets
    ]
    framed, crop = frame(image, multiple, least, margin)
    return crop(paint(framed, padded_targets))


def frame(
    image: Tensor, multiple: int, least: int, margin: int
) -> tuple[Tensor, Callable[[Tensor], Tensor]]:
    """``image`` framed and padded as :func:`padded_pass` does, and the function that crops
    an output of the framed size back to the image (float32, clamped to [0, 1])."""
    height, width = image.shape[-2:]
    framed, (top, left) = reflect_margin(image, margin)
    padded = pad_to_multiple(framed, multiple, least)[0]
    frozen.framed(top, left, padded.shape[-2])

    def crop(output: Tensor) -> Tensor:
        return output[..., top : top + height, left : left + width].float().clamp(0, 1)

    return padded, crop


class OnePassMethod(Method[OptionsT]):
    """Base of the methods that paint in a fixed number of passes of trained networks."""

    kind = "feed-forward"
    streamed_statistics: ClassVar[bool] = False
    """Whether every normalization statistic is of the content's own features, taken in
    one pass before anything depends on them (AdaIN): a tiled run then streams the whole
    picture's at full resolution instead of a thumbnail's (:mod:`brushwork.frozen`)."""
    bytes_per_pixel: ClassVar[int]
    """Peak memory per content pixel (padded to :meth:`stride`) of one stylization, measured
    on real runs (see :meth:`plan`)."""
    fixed_bytes: ClassVar[int] = 400 * MIB
    """Interpreter, torch and the networks' weights."""
    style_blends: ClassVar[bool] = True
    """Whether several styles may be blended by weight (a network trained for one style
    cannot)."""
    style_masks: ClassVar[bool] = True
    """Whether styles may be placed by masks."""
    encoder_scale: ClassVar[int] = 1
    """How many times smaller than the framed content the image the encoder sees is (2×2
    averages: a Laplacian pyramid's low-pass level)."""
    encoder_margin: ClassVar[int] = 0
    """Pixels mirrored again onto that smaller image before the encoder sees it, so that
    the margin at the encoder's scale is :attr:`margin` still."""
    margin: ClassVar[int] = 32
    """Pixels mirrored onto each side of the content before a pass and cropped after
    (:func:`padded_pass`): VGG-19 pads with zeros, so features within a few pixels of an
    image's border differ from interior ones and a decoder paints them as a frame."""

    # -- per method -------------------------------------------------------------------

    @abstractmethod
    def stride(self) -> int:
        """The multiple the content's sides are padded to for the deepest pass."""

    @abstractmethod
    def style_bytes(self, height: int, width: int) -> int:
        """Peak bytes of encoding one style image of that size (0 without encoding)."""

    @abstractmethod
    def encode_styles(self, targets: list[StyleTarget]) -> Any:
        """What the passes need of the styles (statistics, features), computed once in
        inference mode; becomes :attr:`PreparedStyle.data`."""

    @abstractmethod
    def networks(self) -> Any:
        """The trained networks the passes run (loaded once per process and file, outside
        inference mode: their weights stay usable for export and training)."""

    @abstractmethod
    def passes(
        self, content: Tensor, prepared: PreparedStyle, networks: Any, details: dict[str, Any]
    ) -> Iterator[Tensor]:
        """The image after each of the :meth:`steps` passes, (1, 3, H, W) in [0, 1]; the last
        is the result. Run in inference mode at the method's precision; what is worth
        reporting (the models used, timings) goes into ``details``."""

    # -- shared -------------------------------------------------------------------------

    def check_styles(self, targets: Sequence[StyleTarget]) -> None:
        """Refuse, before any work, styles this method cannot use: smaller than
        :meth:`min_style_side`, blended or placed by masks where it cannot, restricted to
        layers."""
        check_style_sides(targets, self.min_style_side(), self.name)
        if uses_masks(targets) and not self.style_masks:
            raise BrushworkError(f"{self.name} cannot place styles by masks")
        if len(targets) > 1 and not uses_masks(targets) and not self.style_blends:
            raise BrushworkError(f"{self.name} paints one style; it cannot blend {len(targets)}")
        self.check_style_layers([t.layers for t in targets])

    def receptive_field(self) -> int:
        """Pixels a side of the content that one output pixel depends on: the encoder's
        deepest layer's, twice (a decoder mirrors the encoder), at :attr:`encoder_scale`.
        Tiles must be at least this large."""
        request = self.encoder_request()
        assert request is not None, "a method without VGG-19 states its receptive field"
        return 2 * receptive_field(request[0]) * self.encoder_scale

    def check_tiling(self) -> None:
        """Refuse, before any work, options that cannot be painted in tiles (none by
        default)."""

    def need(self, height: int, width: int, style_sizes: Sequence[tuple[int, int]]) -> int:
        """Peak bytes: :attr:`bytes_per_pixel` per content pixel with its :attr:`margin`,
        padded to :meth:`stride`, or the largest style's encoding (:meth:`style_bytes`) if
        more, plus :attr:`fixed_bytes`."""
        multiple = self.stride()
        framed_height = height + 2 * min(self.margin, height - 1)  # as reflect_margin frames
        framed_width = width + 2 * min(self.margin, width - 1)
        padded = (framed_height + -framed_height % multiple) * (
            framed_width + -framed_width % multiple
        )
        style = max((self.style_bytes(h, w) for h, w in style_sizes), default=0)
        return int(self.fixed_bytes + max(self.bytes_per_pixel * padded, style))

    def plan(
        self,
        height: int,
        width: int,
        style_sizes: Sequence[tuple[int, int]],
        device: torch.device | None = None,
        limit: int | None = None,
    ) -> MemoryPlan:
        """:meth:`need`, refused over the limit."""
        need = self.need(height, width, style_sizes)
        require(need, f"a {width}x{height} {self.name} run", limit, device)
        return MemoryPlan(need)

    def encode_prepared(self, targets: list[StyleTarget]) -> Any:
        """:meth:`encode_styles` in inference mode at the method's precision."""
        with torch.inference_mode(), self.precision.autocast():
            return self.encode_styles(targets)

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
        """Paint ``content`` in :meth:`steps` passes, one progress event each.
        ``iterations`` does not apply (nothing iterates); a start image or extra loss
        terms are refused."""
        if init is not None:
            raise BrushworkError(f"{self.name} cannot start from a given image")
        if extra_losses:
            raise BrushworkError(
                f"{self.name} has no loss to add {', '.join(n for n, _ in extra_losses)} to"
            )
        start = time.perf_counter()
        check_content(content, self.min_content_side(), self.name)
        prepared = self._prepared(style)
        prepared.check_content(content)
        networks = self.networks()
        counter = progress or StepCounter(self.name)
        total = counter.total or counter.offset + self.steps()
        details: dict[str, Any] = {}
        image = content
        with ev.bound(events), torch.inference_mode(), self.precision.autocast():
            for done, painted in enumerate(self.passes(content, prepared, networks, details), 1):
                image = painted
                ev.emit(
                    ev.Progress(
                        counter.stage,
                        counter.offset + done,
                        total,
                        seconds=time.perf_counter() - start,
                        scale=counter.scale,
                    )
                )
        return StylizeResult(
            image.contiguous().clone(),
            {},
            time.perf_counter() - start,
            {
                **details,
                "precision": self.precision.name,
                **({"memory_estimate": plan.estimate} if plan is not None else {}),
            },
        )
