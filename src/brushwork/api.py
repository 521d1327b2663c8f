"""The Python API: one call from image files (or PIL images, or tensors) to a stylized image.

    >>> import brushwork
    >>> image = brushwork.stylize("photo.jpg", "painting.jpg", method="gatys", iterations=200)
    >>> image.save("out.png")

Method options (``iterations``, ``style_weight``, ``lap_weight``, ...) are keyword arguments;
``brushwork.methods.get_method(name).default_options()`` lists them with their defaults.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import Tensor

from brushwork.encoders import VGG19, load_vgg19
from brushwork.errors import BrushworkError
from brushwork.image import normalize_mode, open_image, resize, split_alpha, to_pil, to_tensor
from brushwork.methods import StylizeResult, get_method

ImageInput = str | Path | Image.Image | Tensor


@dataclass
class Stylization:
    """The output image (RGBA when the content had transparency) with the method's result."""

    image: Image.Image
    result: StylizeResult
    content_size: tuple[int, int]
    style_size: tuple[int, int]
    seconds: float


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


def run(
    content: ImageInput,
    style: ImageInput,
    method: str = "gatys",
    *,
    size: int | None = 512,
    style_size: int | None = None,
    max_pixels: int | None = None,
    device: str | torch.device = "auto",
    weights: str | None = None,
    weights_sha256: str | None = None,
    callbacks: list[Callable[[Any], None]] | None = None,
    **options: Any,
) -> Stylization:
    """Stylize and return the image together with losses and timings.

    Args:
        content, style: image paths, PIL images or (1, 3, H, W) tensors in [0, 1].
        method: a name from :data:`brushwork.methods.METHODS`.
        size: longest side of the output in pixels (the content is resized); None keeps it.
        style_size: longest side of the style image; default: the content's longest side.
        max_pixels: refuse input images larger than this (default: BRUSHWORK_MAX_PIXELS or
            40 megapixels).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ...
        weights, weights_sha256: VGG-19 weights source and its expected sha256 (see
            :mod:`brushwork.encoders.weights`).
        callbacks: called with each optimization step's :class:`brushwork.optim.Iterate`.
        options: the method's options.
    """
    start = time.perf_counter()
    method_class = get_method(method)
    instance = method_class(**options)
    device = resolve_device(device)
    content_image, alpha = split_alpha(_as_image(content, "content", max_pixels))
    style_image, _ = split_alpha(_as_image(style, "style", max_pixels))
    content_image = resize(content_image, size=size)
    style_image = resize(style_image, size=style_size or max(content_image.size))
    content_tensor = to_tensor(content_image).to(device)
    style_tensor = to_tensor(style_image).to(device)
    request = instance.encoder_request()
    if request is not None and instance.encoder is None:
        last_layer, pooling = request
        instance.encoder = cached_vgg19(
            last_layer, pooling, str(device), weights, weights_sha256
        )
    result = instance.stylize(content_tensor, style_tensor, callbacks=callbacks)
    image = to_pil(result.image.cpu())
    if alpha is not None:
        image.putalpha(alpha.resize(image.size, Image.Resampling.LANCZOS))
    return Stylization(
        image, result, content_image.size, style_image.size, time.perf_counter() - start
    )


def stylize(
    content: ImageInput, style: ImageInput, method: str = "gatys", **options: Any
) -> Image.Image:
    """Paint ``content`` in the style of ``style`` and return a PIL image.

    Takes the same keyword arguments as :func:`run` (``size``, ``device``, method options).
    """
    return run(content, style, method, **options).image
