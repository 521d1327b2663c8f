"""Spatial control: which style paints which region of the content (Gatys et al. 2017,
"Controlling Perceptual Factors in Neural Style Transfer", §4).

Two ways to say it:

* a **label image**: one flat color per region (PNG; JPEG's compression noise adds colors).
  By default regions are given to the styles in order of brightness, darkest first; or map
  colors explicitly (``{"#000000": 1, "#ffffff": None}``: None leaves a region unstyled);
* one **grayscale mask per style**: white where the style applies, black where it does not;
  gray values blend softly.

Masks of another size than the content are resized to it (with a warning if the aspect
ratio differs). Inside the methods, masks are brought to each feature layer's resolution by
the same poolings the features went through (:func:`brushwork.encoders.downsample_mask`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from brushwork import events
from brushwork.errors import BrushworkError

MAX_REGIONS = 64
"""More distinct colors than this means the label image is not a flat-color map."""


def parse_color(text: str) -> tuple[int, int, int]:
    """``#rrggbb``, ``rrggbb``, ``#rgb`` or ``r,g,b`` → an RGB triple."""
    value = text.strip().lower()
    if re.fullmatch(r"\d{1,3}\s*,\s*\d{1,3}\s*,\s*\d{1,3}", value):
        parts = tuple(int(p) for p in value.split(","))
        if all(0 <= p <= 255 for p in parts):
            return parts  # type: ignore[return-value]
    elif re.fullmatch(r"#?([0-9a-f]{3}|[0-9a-f]{6})", value):
        value = value.removeprefix("#")
        if len(value) == 3:
            value = "".join(c * 2 for c in value)
        return tuple(int(value[i : i + 2], 16) for i in (0, 2, 4))  # type: ignore[return-value]
    raise BrushworkError(f"not a color: {text!r} (use #rrggbb, #rgb or r,g,b with values 0-255)")


def color_name(color: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*color)


def fit_to_content(image: Image.Image, size: tuple[int, int], what: str) -> Image.Image:
    """Resize a mask to the content's (width, height); warn if the aspect ratio differs by
    more than 1 %, since the regions are then stretched."""
    if image.size == size:
        return image
    aspect, target = image.size[0] / image.size[1], size[0] / size[1]
    if abs(aspect / target - 1) > 0.01:
        events.warn(
            f"{what} is {image.size[0]}x{image.size[1]} but the content is "
            f"{size[0]}x{size[1]}: stretched to fit"
        )
    return image.resize(size, Image.Resampling.BILINEAR)


def _to_mask(values: np.ndarray) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32))[None, None]


def grayscale_mask(image: Image.Image, size: tuple[int, int], what: str = "mask") -> Tensor:
    """A (1, 1, H, W) mask in [0, 1] from a grayscale image (white = the style applies)."""
    if image.mode in ("RGBA", "LA", "P"):
        image = image.convert("RGBA").convert("RGB")
    gray = fit_to_content(image.convert("L"), size, what)
    return _to_mask(np.asarray(gray, dtype=np.float32) / 255.0)


def label_masks(
    labels: Image.Image,
    size: tuple[int, int],
    n_styles: int,
    regions: Mapping[str | tuple[int, int, int], int | None] | None = None,
) -> list[Tensor | None]:
    """One (1, 1, H, W) mask per style from a label image with a flat color per region.

    ``regions`` maps colors to 1-based style numbers, or None to leave a region unstyled;
    without it, colors are sorted by brightness (darkest first) and must match the styles
    one to one. Returns a list with one mask per style.
    """
    rgb = np.asarray(labels.convert("RGB"))
    colors, inverse = np.unique(rgb.reshape(-1, 3), axis=0, return_inverse=True)
    found = [tuple(int(v) for v in c) for c in colors]
    if len(found) > MAX_REGIONS:
        raise BrushworkError(
            f"the label image has {len(found)} colors; use a PNG with one flat color per "
            "region (JPEG compression adds colors)"
        )
    if regions is None:
        if len(found) > n_styles:
            raise BrushworkError(
                f"the label image has {len(found)} regions ({', '.join(map(color_name, found))})"
                f" but there are {n_styles} styles; give more styles or map colors to styles"
                " (--region COLOR=N, or COLOR=none to leave a region unstyled)"
            )
        if len(found) < n_styles:
            raise BrushworkError(
                f"the label image has {len(found)} regions but there are {n_styles} styles: "
                "every style needs a region"
            )
        order = sorted(found, key=lambda c: (0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2], c))
        mapping: dict[tuple[int, int, int], int | None] = {c: i + 1 for i, c in enumerate(order)}
    else:
        mapping = {}
        for key, number in regions.items():
            color = parse_color(key) if isinstance(key, str) else tuple(key)
            if color not in found:
                raise BrushworkError(f"color {color_name(color)} does not occur in the label image")
            if number is not None and not (isinstance(number, int) and 1 <= number <= n_styles):
                raise BrushworkError(
                    f"region {color_name(color)} names style {number}, but styles are "
                    f"numbered 1 to {n_styles}"
                )
            mapping[color] = number  # type: ignore[index]
        missing = [c for c in found if c not in mapping]
        if missing:
            raise BrushworkError(
                f"the label image's color {color_name(missing[0])} is not mapped to a style "
                "(map it, or to none to leave it unstyled)"
            )
    labels_index = inverse.reshape(rgb.shape[:2])
    masks: list[Tensor | None] = []
    for number in range(1, n_styles + 1):
        chosen = [i for i, c in enumerate(found) if mapping[c] == number]
        if not chosen:
            raise BrushworkError(f"style {number} has no region in the label image")
        binary = np.isin(labels_index, chosen).astype(np.uint8) * 255
        masks.append(grayscale_mask(Image.fromarray(binary), size, "the label image"))
    return masks
