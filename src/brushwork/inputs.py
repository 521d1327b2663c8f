"""What a stylization reads: content, style and mask images given as paths, PIL images or
tensors, checked from their headers before anything is decoded, then loaded at the planned
sizes.

One style type per stage: a :class:`Style` names the user's image (a path, PIL image or
tensor) with its weight, layers and mask; :func:`style_targets` turns the styles into the
methods' :class:`~brushwork.methods.base.StyleTarget` tensors at the planned sizes, which the
stylizer prepares (:class:`~brushwork.stylizer.Prepared`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import torch
from PIL import Image
from torch import Tensor

from brushwork import events as ev
from brushwork.errors import BrushworkError
from brushwork.image import normalize_mode, open_image, probe_image, split_alpha, to_pil, to_tensor
from brushwork.masks import grayscale_mask, label_masks
from brushwork.methods.base import StyleTarget, check_style_weights
from brushwork.stylizer import RunPlan, Stylizer

ImageInput = str | Path | Image.Image | Tensor


@dataclass
class Style:
    """A style image for :func:`brushwork.api.run`, with its blend weight, the encoder layers
    it is restricted to (None: all) and the region it paints (a grayscale mask image, white =
    here; None: everywhere). See :class:`brushwork.methods.base.StyleTarget` for how they
    combine."""

    image: ImageInput
    weight: float = 1.0
    layers: tuple[str, ...] | None = None
    mask: ImageInput | None = None


def image_size(value: ImageInput, what: str, max_pixels: int | None) -> tuple[int, int]:
    """(width, height) of an input without decoding it (a file's header)."""
    if isinstance(value, Image.Image):
        return value.size
    if isinstance(value, Tensor):
        if (
            value.ndim not in (3, 4)
            or (value.ndim == 4 and value.shape[0] != 1)
            or value.shape[-3] != 3
        ):
            raise BrushworkError(f"{what} tensor must have shape (1, 3, H, W) or (3, H, W)")
        return int(value.shape[-1]), int(value.shape[-2])
    if isinstance(value, (str, Path)):
        return probe_image(value, max_pixels=max_pixels)
    raise BrushworkError(f"{what} must be a path, a PIL image or a tensor, not {type(value)}")


def as_image(value: ImageInput, what: str, max_pixels: int | None) -> Image.Image:
    """An input decoded as a PIL image (RGB, or RGBA with transparency); a tensor must hold
    finite numbers."""
    if isinstance(value, Image.Image):
        return normalize_mode(value)
    if isinstance(value, Tensor):
        image_size(value, what, max_pixels)
        if not bool(torch.isfinite(value).all()):
            raise BrushworkError(f"{what} tensor has values that are not finite numbers")
        return to_pil(value[0] if value.ndim == 4 else value)
    if isinstance(value, (str, Path)):
        return open_image(value, max_pixels=max_pixels)
    raise BrushworkError(f"{what} must be a path, a PIL image or a tensor, not {type(value)}")


def as_styles(style: ImageInput | Style | Sequence[ImageInput | Style] | None) -> list[Style]:
    """One image, one :class:`Style` or a list of them (empty for a method whose network
    paints its own styles: :meth:`brushwork.stylizer.Stylizer.plan` checks), as a list of
    styles."""
    if style is None:
        return []
    items = style if isinstance(style, (list, tuple)) else [cast("ImageInput | Style", style)]
    return [s if isinstance(s, Style) else Style(s) for s in items]


def load_masks(
    styles: list[Style],
    labels: ImageInput | None,
    regions: Mapping[str, int | None] | None,
    size: tuple[int, int],
    max_pixels: int | None,
) -> list[Tensor | None]:
    """One mask per style (None: everywhere) at the output's (width, height): from a label
    image (one flat colour per region, Gatys et al. 2017 §4) or from each style's mask."""
    if labels is not None:
        if any(s.mask is not None for s in styles):
            raise BrushworkError("give either a label image or a mask per style, not both")
        image = as_image(labels, "mask", max_pixels)
        # label_masks also takes colors as RGB tuples (a Mapping's keys are invariant)
        colors = cast("Mapping[str | tuple[int, int, int], int | None] | None", regions)
        return list(label_masks(image, size, len(styles), colors))
    if regions is not None:
        raise BrushworkError("regions need a label image (mask)")
    masks = [
        None
        if s.mask is None
        else grayscale_mask(
            as_image(s.mask, f"mask of style {n}", max_pixels), size, f"the mask of style {n}"
        )
        for n, s in enumerate(styles, 1)
    ]
    for number, mask in enumerate(masks, 1):
        if mask is not None and float(mask.max()) == 0:
            ev.warn(f"the mask of style {number} is empty: that style is not used")
    return masks


def style_targets(
    styles: Sequence[Style],
    plan: RunPlan,
    labels: ImageInput | None,
    regions: Mapping[str, int | None] | None,
    max_pixels: int | None,
) -> list[StyleTarget]:
    """The styles decoded (transparency dropped) and resized to the planned sizes, with
    their masks at the output's size: what :meth:`brushwork.stylizer.Stylizer.prepare`
    takes."""
    masks = load_masks(list(styles), labels, regions, plan.content_size, max_pixels)
    targets = []
    for number, (s, m, (sw, sh)) in enumerate(zip(styles, masks, plan.style_sizes, strict=True), 1):
        image, _ = split_alpha(as_image(s.image, f"style {number}", max_pixels))
        if image.size != (sw, sh):
            image = image.resize((sw, sh), Image.Resampling.LANCZOS)
        targets.append(StyleTarget(to_tensor(image), s.weight, s.layers, m))
    return targets


def check_inputs(
    stylizer: Stylizer, content: ImageInput, styles: Sequence[Style], mask: ImageInput | None
) -> RunPlan:
    """Everything about a run that can be told without decoding its images: files, sizes,
    weights, layers, memory. Returns the plan."""
    max_pixels = stylizer.controls.max_pixels
    check_style_weights([s.weight for s in styles])
    content_size = image_size(content, "content", max_pixels)
    style_sizes = [image_size(s.image, f"style {n}", max_pixels) for n, s in enumerate(styles, 1)]
    for n, s in enumerate(styles, 1):
        if s.mask is not None:
            image_size(s.mask, f"mask of style {n}", max_pixels)
    if mask is not None:
        image_size(mask, "mask", max_pixels)
    stylizer.check_files()
    return stylizer.plan(content_size, style_sizes, [s.layers for s in styles])
