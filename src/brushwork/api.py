"""The Python API: one call from image files (or PIL images, or tensors) to a stylized image.

    >>> import brushwork
    >>> image = brushwork.stylize("photo.jpg", "painting.jpg", method="gatys", iterations=200)
    >>> image.save("out.png")

Keyword arguments are the controls every method shares (:class:`brushwork.stylizer.Controls`:
``size``, ``style_scale``, ``preserve_color``, ``start_size``, ``max_memory``, ``device``,
``precision``, ...) and the method's own options (``iterations``, ``style_weight``,
``alpha``, ...; ``brushwork.methods.get_method(name).default_options()`` lists them). Several
styles are :class:`Style` objects (blended, per layer, or per region with masks)::

    >>> brushwork.stylize("city.jpg", [Style("starry.jpg", 0.7), Style("mosaic.jpg", 0.3)],
    ...                   preserve_color="luminance", size=2048, start_size=512)

Everything is checked from the sizes before any image is decoded at its working size
(:meth:`brushwork.stylizer.Stylizer.plan`); progress goes to ``events`` (see
:mod:`brushwork.events`). For many images with the same styles, use
:class:`brushwork.stylizer.Stylizer` directly: it encodes the styles once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import Tensor

from brushwork import events as ev
from brushwork.errors import BrushworkError
from brushwork.image import normalize_mode, open_image, probe_image, split_alpha, to_pil, to_tensor
from brushwork.masks import grayscale_mask, label_masks
from brushwork.methods.base import StylizeResult, check_style_weights
from brushwork.precision import resolve_device
from brushwork.stylizer import RunPlan, Stylizer

ImageInput = str | Path | Image.Image | Tensor


@dataclass
class Style:
    """A style image for :func:`run`, with its blend weight, the encoder layers it is
    restricted to (None: all) and the region it paints (a grayscale mask image, white = here;
    None: everywhere). See :class:`brushwork.methods.base.StyleTarget` for how they combine."""

    image: ImageInput
    weight: float = 1.0
    layers: tuple[str, ...] | None = None
    mask: ImageInput | None = None


@dataclass
class Stylization:
    """The output image (RGBA when the content had transparency) with the method's result
    (of the last scale; ``scales`` lists every scale's size, steps and seconds)."""

    image: Image.Image
    result: StylizeResult
    content_size: tuple[int, int]
    style_size: tuple[int, int]
    seconds: float
    scales: list[dict[str, Any]] = field(default_factory=list)
    plan: RunPlan | None = None
    precision: str = "float32"
    precision_reason: str = ""


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


def as_styles(style: ImageInput | Style | Sequence[ImageInput | Style]) -> list[Style]:
    if not isinstance(style, (list, tuple)):
        style = [style]
    styles = [s if isinstance(s, Style) else Style(s) for s in style]
    if not styles:
        raise BrushworkError("at least one style image is needed")
    return styles


def load_masks(
    styles: list[Style],
    labels: ImageInput | None,
    regions: Mapping[str, int | None] | None,
    size: tuple[int, int],
    max_pixels: int | None,
) -> list[Tensor | None]:
    """One mask per style (None: everywhere) at the output's (width, height)."""
    if labels is not None:
        if any(s.mask is not None for s in styles):
            raise BrushworkError("give either a label image or a mask per style, not both")
        image = as_image(labels, "mask", max_pixels)
        return list(label_masks(image, size, len(styles), regions))
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


def check_inputs(
    stylizer: Stylizer, content: ImageInput, styles: list[Style], mask: ImageInput | None
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


def run(
    content: ImageInput,
    style: ImageInput | Style | Sequence[ImageInput | Style],
    method: str = "gatys",
    *,
    mask: ImageInput | None = None,
    regions: Mapping[str, int | None] | None = None,
    events: ev.Sinks = None,
    encoder: Any = None,
    **options: Any,
) -> Stylization:
    """Stylize and return the image together with losses and timings.

    Args:
        content: image path, PIL image or (1, 3, H, W) tensor in [0, 1].
        style: one image like ``content``, a :class:`Style`, or a list of them (blended by
            their weights, or per layer, or per region with masks).
        method: a name from :data:`brushwork.methods.REGISTRY`.
        mask: a label image with one flat color per region; ``regions`` maps colors to
            1-based style numbers (or None: unstyled); default: by brightness, darkest first.
        events: sinks for progress and warnings (:mod:`brushwork.events`).
        encoder: a VGG-19 to use instead of the shared pretrained one.
        options: controls (:class:`brushwork.stylizer.Controls`: ``size``, ``style_size``,
            ``style_scale``, ``preserve_color``, ``start_size``, ``scale_iterations``,
            ``max_memory``, ``max_pixels``, ``device``, ``precision``, ``weights``,
            ``weights_sha256``) and the method's options.
    """
    from brushwork.painter import Painter

    with ev.bound(events):
        painter = Painter(method, options, encoder=encoder, cache_size=0)
        painting = painter.paint(content, as_styles(style), mask=mask, regions=regions)
    precision = painter.stylizer.precision
    return Stylization(
        painting.image,
        painting.result,
        painting.plan.content_size,
        painting.plan.style_sizes[0],
        painting.seconds,
        painting.scales,
        painting.plan,
        precision.name,
        precision.reason,
    )


def stylize(
    content: ImageInput,
    style: ImageInput | Style | Sequence[ImageInput | Style],
    method: str = "gatys",
    **options: Any,
) -> Image.Image:
    """Paint ``content`` in the style of ``style`` and return a PIL image.

    Takes the same keyword arguments as :func:`run`.
    """
    return run(content, style, method, **options).image


DEPTH_BYTES_PER_PIXEL = 2000
"""Peak memory per (padded) pixel the estimator sees in one depth estimate: the VGG-19 to
relu4_1 keeps its four skip outputs while the U-Net decoder climbs back up. Measured as the
peak RSS of ``brushwork depth`` on a 2048² image (``/usr/bin/time -f %M``, CPU, float32):
0.87 / 0.88 / 2.31 / 4.78 GB at ``--side`` 224 / 512 / 1024 / 1536, i.e. about 1,930 bytes
per pixel above ~0.4 GB of fixed cost (torch, the model, the image), rounded up."""


def estimate_depth(
    image: ImageInput,
    model: str | Path | torch.nn.Module | None = None,
    side: int | None = 224,
    device: str | torch.device = "auto",
    *,
    max_pixels: int | None = None,
    max_memory: int | None = None,
) -> Tensor:
    """Relative inverse depth of one image: a float32 (1, 1, H, W) CPU tensor at the image's
    size, larger = nearer, with an unknown scale and shift (only the order of depths and
    their ratios of differences mean anything).

    Args:
        image: image path, PIL image or (1, 3, H, W) tensor in [0, 1] (transparency is
            composited over white).
        model: a bundled estimator's name (None: ``"depth"``, trained on indoor scenes,
            NYU Depth v2, and unreliable outdoors), a checkpoint from ``brushwork train
            depth``, or a loaded :class:`brushwork.depth.estimator.DepthNet`.
        side: the image is resized so that its shorter side is ``side`` for the estimator
            (224: the bundled model's training scale; None: as it is) and the prediction
            resized back.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ...
        max_pixels: refuse input images larger than this (default: BRUSHWORK_MAX_PIXELS or
            40 megapixels).
        max_memory: bytes the estimate may use (default: 80 % of the available memory); a
            larger one is refused before any work.

    See :mod:`brushwork.depth.render` to turn the result into images.
    """
    from brushwork.depth.estimator import load_estimator, predict_depth
    from brushwork.memory import MAX_SIDE, check_limit, require

    if side is not None and (
        isinstance(side, bool) or not isinstance(side, int) or side < 32 or side > MAX_SIDE
    ):
        raise BrushworkError(f"depth side must be an integer from 32 to {MAX_SIDE}, not {side}")
    check_limit(max_memory)
    device = resolve_device(device)
    width, height = image_size(image, "image", max_pixels)
    if side is not None:
        factor = side / min(width, height)
        work = (max(1, round(width * factor)), max(1, round(height * factor)))
    else:
        work = (width, height)
    if max(work) > MAX_SIDE:
        raise BrushworkError(
            f"the estimator would see the image at {work[0]}x{work[1]} px "
            f"(shorter side {side}), over the {MAX_SIDE} px brushwork "
            "handles; use a smaller --side"
        )
    padded = (work[0] + -work[0] % 32) * (work[1] + -work[1] % 32)
    require(
        400 * 2**20 + DEPTH_BYTES_PER_PIXEL * padded + 16 * width * height,
        f"a depth estimate of a {width}x{height} image at {work[0]}x{work[1]}",
        max_memory,
        device,
        "use a smaller --side or a smaller image",
    )
    rgb, _ = split_alpha(as_image(image, "image", max_pixels))
    net = model if isinstance(model, torch.nn.Module) else load_estimator(model)
    net = net.to(device)
    return predict_depth(net, to_tensor(rgb).to(device), side=side).float().cpu()
