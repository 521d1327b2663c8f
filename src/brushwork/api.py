"""The Python API: one call from image files (or PIL images, or tensors) to a stylized image.

    >>> import brushwork
    >>> image = brushwork.stylize("photo.jpg", "painting.jpg", method="gatys", iterations=200)
    >>> image.save("out.png")

Method options (``iterations``, ``style_weight``, ``lap_weight``, ...) are keyword arguments;
``brushwork.methods.get_method(name).default_options()`` lists them with their defaults.

Controls that work with every method are keyword arguments of :func:`run`: several styles
(:class:`Style`, blended or per layer), masks (``mask=`` label image, or ``Style.mask``),
``preserve_color``, ``style_scale``, and coarse-to-fine ``start_size`` for large outputs::

    >>> brushwork.stylize("city.jpg", [Style("starry.jpg", 0.7), Style("mosaic.jpg", 0.3)],
    ...                   preserve_color="luminance", size=2048, start_size=512)
"""

from __future__ import annotations

import functools
import itertools
import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from brushwork import color
from brushwork.encoders import VGG19, load_vgg19
from brushwork.errors import BrushworkError, BrushworkWarning
from brushwork.image import normalize_mode, open_image, resize, split_alpha, to_pil, to_tensor
from brushwork.masks import grayscale_mask, label_masks
from brushwork.methods import Method, StyleTarget, StylizeResult, get_method
from brushwork.methods.base import check_style_weights
from brushwork.optim import Iterate

ImageInput = str | Path | Image.Image | Tensor


@dataclass
class Style:
    """A style image for :func:`run`, with its blend weight, the encoder layers it is
    restricted to (None: all) and the region it paints (a grayscale mask image, white = here;
    None: everywhere). See :class:`brushwork.methods.StyleTarget` for how they combine."""

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


COARSE_TO_FINE_HINT = 1024
"""Optimizing outputs larger than this in one scale draws a warning suggesting coarse to
fine (see BENCHMARKS.md, high resolution)."""


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` → CUDA when available, else the CPU; anything else is checked."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as error:
        raise BrushworkError(f"unknown device {device!r}") from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise BrushworkError(f"device {device!r} requested but CUDA is not available")
    return resolved


@functools.lru_cache(maxsize=4)
def cached_vgg19(
    last_layer: str, pooling: str, device: str, weights: str | None = None,
    weights_sha256: str | None = None,
) -> VGG19:
    """A pretrained VGG-19 kept for repeated calls (one per layer/pooling/device/source)."""
    encoder = load_vgg19(last_layer, pooling=pooling, source=weights, sha256=weights_sha256)
    encoder = encoder.to(device)
    return encoder.use_channels_last(device == "cpu")


def _as_image(value: ImageInput, what: str, max_pixels: int | None) -> Image.Image:
    if isinstance(value, Image.Image):
        return normalize_mode(value)
    if isinstance(value, Tensor):
        if value.ndim == 4 and value.shape[0] == 1:
            value = value[0]
        if value.ndim != 3 or value.shape[0] != 3:
            raise BrushworkError(f"{what} tensor must have shape (1, 3, H, W) or (3, H, W)")
        return to_pil(value)
    if isinstance(value, (str, Path)):
        return open_image(value, max_pixels=max_pixels)
    raise BrushworkError(f"{what} must be a path, a PIL image or a tensor, not {type(value)}")


def _as_styles(style: ImageInput | Style | Sequence[ImageInput | Style]) -> list[Style]:
    if not isinstance(style, (list, tuple)):
        style = [style]
    styles = [s if isinstance(s, Style) else Style(s) for s in style]
    if not styles:
        raise BrushworkError("at least one style image is needed")
    return styles


def scale_schedule(
    size: int, start_size: int | None, iterations: int,
    scale_iterations: Sequence[int] | None = None,
) -> list[tuple[int, int]]:
    """(longest side, iterations) of each coarse-to-fine scale: from ``start_size``,
    doubling, to ``size``. Without ``scale_iterations`` the first scale runs ``iterations``
    and each finer one a quarter of the previous (at least 10, at most as many as the
    previous): a step costs 4× as much
    at twice the size, and a finer scale only refines what the coarser one built."""
    sizes = [size]
    if start_size is not None:
        if not isinstance(start_size, int) or start_size < 16:
            raise BrushworkError(f"start size must be an integer >= 16, not {start_size}")
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
        if any(not isinstance(n, int) or n < 1 for n in counts):
            raise BrushworkError(f"scale iterations must be integers >= 1: {counts}")
    return list(zip(sizes, counts, strict=True))


def _resized(image: Tensor, height: int, width: int) -> Tensor:
    if image.shape[-2:] == (height, width):
        return image
    return F.interpolate(
        image, size=(height, width), mode="bicubic", align_corners=False, antialias=True
    ).clamp(0, 1)


def _resized_mask(mask: Tensor | None, height: int, width: int) -> Tensor | None:
    if mask is None or mask.shape[-2:] == (height, width):
        return mask
    return F.interpolate(mask, size=(height, width), mode="bilinear", antialias=True)


def _scaled_size(width: int, height: int, side: int) -> tuple[int, int]:
    """(width, height) with the longest side ``side``, as :func:`brushwork.image.resize`."""
    ratio = side / max(width, height)
    return max(1, round(width * ratio)), max(1, round(height * ratio))


def _check_side(instance: Method, what: str, size: tuple[int, int], hint: str) -> None:
    """Refuse an image the method's deepest layer would shrink to nothing."""
    need = instance.min_style_side()
    if min(size) < need:
        raise BrushworkError(
            f"{what} would be {size[0]}x{size[1]} px, smaller than the {need} px "
            f"{instance.name} needs; use a larger {hint}"
        )


def run(
    content: ImageInput,
    style: ImageInput | Style | Sequence[ImageInput | Style],
    method: str = "gatys",
    *,
    size: int | None = 512,
    style_size: int | None = None,
    style_scale: float | None = None,
    mask: ImageInput | None = None,
    regions: Mapping[str, int | None] | None = None,
    preserve_color: str = "none",
    start_size: int | None = None,
    scale_iterations: Sequence[int] | None = None,
    max_memory: int | None = None,
    max_pixels: int | None = None,
    device: str | torch.device = "auto",
    weights: str | None = None,
    weights_sha256: str | None = None,
    callbacks: list[Callable[[Any], None]] | None = None,
    **options: Any,
) -> Stylization:
    """Stylize and return the image together with losses and timings.

    Args:
        content: image path, PIL image or (1, 3, H, W) tensor in [0, 1].
        style: one image like ``content``, a :class:`Style`, or a list of them (blended by
            their weights, or per layer, or per region with masks).
        method: a name from :data:`brushwork.methods.METHODS`.
        size: longest side of the output in pixels (the content is resized); None keeps it.
        style_size: longest side of every style image; default: the content's longest side
            times ``style_scale``.
        style_scale: style image size relative to the content (default 1): smaller makes
            smaller brush strokes and patterns, larger makes bigger ones.
        mask: a label image with one flat color per region; ``regions`` maps colors to
            1-based style numbers (or None: unstyled); default: by brightness, darkest first.
        preserve_color: ``"none"``, ``"luminance"`` (transfer luminance only, keep the
            content's colors), ``"linear"`` or ``"histogram"`` (recolor the style images to
            the content's colors first); see :mod:`brushwork.color`.
        start_size, scale_iterations: coarse-to-fine: optimize at ``start_size`` first, then
            at twice the size starting from the upsampled result, up to ``size``; iterations
            per scale (see :func:`scale_schedule`).
        max_memory: bytes the run may use (default: 80 % of the available memory); a run
            that cannot fit is refused before any work, with its estimate.
        max_pixels: refuse input images larger than this (default: BRUSHWORK_MAX_PIXELS or
            40 megapixels).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ...
        weights, weights_sha256: VGG-19 weights source and its expected sha256 (see
            :mod:`brushwork.encoders.weights`).
        callbacks: called with each optimization step's :class:`brushwork.optim.Iterate`
            (steps are numbered across scales).
        options: the method's options.
    """
    start = time.perf_counter()
    instance = get_method(method)(**options)
    preserve_color = color.check_mode(preserve_color)
    if style_size is not None and style_scale is not None:
        raise BrushworkError("give either a style size or a style scale, not both")
    if style_scale is not None and (
        not isinstance(style_scale, (int, float)) or not math.isfinite(style_scale)
        or style_scale <= 0
    ):
        raise BrushworkError(f"style scale must be a number > 0, not {style_scale}")
    if max_memory is not None and (not isinstance(max_memory, int) or max_memory <= 0):
        raise BrushworkError(f"max memory must be a positive number of bytes, not {max_memory}")
    styles = _as_styles(style)
    check_style_weights([s.weight for s in styles])
    instance.check_style_layers([s.layers for s in styles])
    device = resolve_device(device)

    content_image, alpha = split_alpha(_as_image(content, "content", max_pixels))
    content_image = resize(content_image, size=size)
    final_size = max(content_image.size)
    schedule = scale_schedule(
        final_size, start_size, getattr(instance.options, "iterations", 1), scale_iterations
    )
    if len(schedule) > 1 and not instance.accepts_init:
        raise BrushworkError(f"coarse-to-fine needs an optimization method, not {method!r}")
    if len(schedule) == 1 and instance.accepts_init and final_size > COARSE_TO_FINE_HINT:
        warnings.warn(
            f"single-scale at {final_size} px: each step costs about "
            f"{(final_size / 512) ** 2:.0f}x a 512 px step and large style structures will "
            "not form; --start-size 256 (coarse to fine) is faster and looks more painted",
            BrushworkWarning, stacklevel=2,
        )
    first_ratio = schedule[0][0] / final_size
    _check_side(instance, "the content" + (" at the first scale" if first_ratio < 1 else ""),
                _scaled_size(*content_image.size, schedule[0][0]),
                "--start-size" if first_ratio < 1 else "--size")
    instance.check_memory(content_image.size[1], content_image.size[0], device, max_memory)

    side = style_size or max(1, round(final_size * (style_scale or 1.0)))
    style_images = _load_styles(instance, styles, side, first_ratio, max_pixels)

    masks = _load_masks(styles, mask, regions, content_image.size, max_pixels)
    content_tensor = to_tensor(content_image).to(device)
    style_tensors = [to_tensor(image).to(device) for image in style_images]
    painted, style_tensors = color.before_transfer(content_tensor, style_tensors, preserve_color)

    if instance.encoder_request() is not None and instance.encoder is None:
        last_layer, pooling = instance.encoder_request()  # type: ignore[misc]
        instance.encoder = cached_vgg19(
            last_layer, pooling, str(device), weights, weights_sha256
        )

    targets = [
        StyleTarget(image, s.weight, s.layers, None if m is None else m.to(device))
        for s, image, m in zip(styles, style_tensors, masks, strict=True)
    ]
    output, result, scales = _coarse_to_fine(
        instance, painted, targets, schedule, scale_iterations is not None, callbacks
    )
    output = color.after_transfer(output, content_tensor, preserve_color)
    image = to_pil(output.cpu())
    if alpha is not None:
        image.putalpha(alpha.resize(image.size, Image.Resampling.LANCZOS))
    return Stylization(
        image, result, content_image.size, style_images[0].size,
        time.perf_counter() - start, scales,
    )


def _load_styles(instance: Method, styles: list[Style], side: int, first_ratio: float,
                 max_pixels: int | None) -> list[Image.Image]:
    """Open and resize the style images (longest side ``side``), refusing any that the
    method's deepest layer would shrink to nothing, also at the first coarse scale."""
    images = []
    for number, s in enumerate(styles, 1):
        image, _ = split_alpha(_as_image(s.image, f"style {number}", max_pixels))
        width, height = _scaled_size(*image.size, side)
        _check_side(instance, f"style {number}", (width, height), "--style-scale or --style-size")
        if first_ratio < 1:  # scaled with the content at each coarse scale
            _check_side(instance, f"style {number} at the first scale",
                        (max(1, round(width * first_ratio)), max(1, round(height * first_ratio))),
                        "--start-size, --style-scale or --style-size")
        images.append(resize(image, size=side))
    return images


def _coarse_to_fine(
    instance: Method, content: Tensor, styles: list[StyleTarget],
    schedule: list[tuple[int, int]], explicit_iterations: bool,
    callbacks: list[Callable[[Any], None]] | None,
) -> tuple[Tensor, StylizeResult, list[dict[str, Any]]]:
    """Run the method at each scale of ``schedule`` (longest side, iterations), each starting
    from the previous result upsampled; content, styles and masks are resized with the
    output, so the style keeps its size relative to the content."""
    height, width = content.shape[-2:]
    final_side = max(height, width)
    output: Tensor | None = None
    scales: list[dict[str, Any]] = []
    history: list[dict[str, float]] = []
    for side, iterations in schedule:
        ratio = side / final_side
        w, h = _scaled_size(width, height, side)
        targets = [
            StyleTarget(
                _resized(t.image, max(1, round(t.image.shape[-2] * ratio)),
                         max(1, round(t.image.shape[-1] * ratio))),
                t.weight, t.layers, _resized_mask(t.mask, h, w),
            )
            for t in styles
        ]
        if len(schedule) > 1 or explicit_iterations:
            instance.options = instance.options.replace(iterations=iterations)
        result = instance.stylize(
            _resized(content, h, w), targets,
            init=None if output is None else _resized(output, h, w),
            callbacks=_offset(callbacks, len(history)),
        )
        output = result.image
        history.extend(result.details.get("history", []))
        scales.append({"size": [w, h], "iterations": iterations,
                       "seconds": round(result.seconds, 3), "losses": result.losses})
    assert output is not None
    if len(schedule) > 1:
        result.details["history"] = history
        result.details["scale_starts"] = list(
            itertools.accumulate([1] + [s["iterations"] for s in scales[:-1]])
        )
    return output, result, scales


def _offset(callbacks: list[Callable[[Any], None]] | None,
            steps_before: int) -> list[Callable[[Any], None]] | None:
    """Callbacks that see steps numbered across the scales of a coarse-to-fine run."""
    if not callbacks or steps_before == 0:
        return callbacks

    def shifted(record: Any) -> None:
        moved = Iterate(record.step + steps_before, record.losses, record.image,
                        record.seconds)
        for callback in callbacks:
            callback(moved)

    return [shifted]


def _load_masks(
    styles: list[Style], labels: ImageInput | None, regions: Mapping[str, int | None] | None,
    size: tuple[int, int], max_pixels: int | None,
) -> list[Tensor | None]:
    """One mask per style (None: everywhere) at the content's size."""
    if labels is not None:
        if any(s.mask is not None for s in styles):
            raise BrushworkError("give either a label image or a mask per style, not both")
        image = _as_image(labels, "mask", max_pixels)
        return list(label_masks(image, size, len(styles), regions))
    if regions is not None:
        raise BrushworkError("regions need a label image (mask)")
    masks = [
        None if s.mask is None
        else grayscale_mask(_as_image(s.mask, f"mask of style {n}", max_pixels), size,
                            f"the mask of style {n}")
        for n, s in enumerate(styles, 1)
    ]
    for number, mask in enumerate(masks, 1):
        if mask is not None and float(mask.max()) == 0:
            warnings.warn(f"the mask of style {number} is empty: that style is not used",
                          BrushworkWarning, stacklevel=3)
    return masks


def estimate_depth(
    image: ImageInput,
    model: str | Path | torch.nn.Module | None = None,
    side: int | None = 224,
    device: str | torch.device = "auto",
    *,
    max_pixels: int | None = None,
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

    See :mod:`brushwork.depth.render` to turn the result into images.
    """
    from brushwork.depth.estimator import load_estimator, predict_depth

    if side is not None and (isinstance(side, bool) or not isinstance(side, int) or side < 32):
        raise BrushworkError(f"depth side must be an integer >= 32, not {side}")
    device = resolve_device(device)
    rgb, _ = split_alpha(_as_image(image, "image", max_pixels))
    net = model if isinstance(model, torch.nn.Module) else load_estimator(model)
    net = net.to(device)
    return predict_depth(net, to_tensor(rgb).to(device), side=side).float().cpu()


def stylize(
    content: ImageInput,
    style: ImageInput | Style | Sequence[ImageInput | Style],
    method: str = "gatys",
    **options: Any,
) -> Image.Image:
    """Paint ``content`` in the style of ``style`` and return a PIL image.

    Takes the same keyword arguments as :func:`run` (``size``, ``device``, controls,
    method options).
    """
    return run(content, style, method, **options).image
