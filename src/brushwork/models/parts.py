"""Models made of named networks, and models for one style, in one safetensors file.

A model of several networks (LapStyle's drafting net and revision nets, Lin et al. 2021; a
distilled student's encoder, modulator and decoder, Wang et al. 2020) is one brushwork
checkpoint whose tensors are stored under ``part.NAME.`` and whose metadata lists the part
names (``parts``). A per-style model (Johnson et al. 2016) names its :class:`Style` in the
metadata (``style``) with a small PNG thumbnail made from the style image (``thumbnail``,
base64), so the file says what it paints wherever it is copied; the registry entry
(:class:`brushwork.models.ModelInfo`) says the same for the bundled ones.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from io import BytesIO
from pathlib import Path

import torch
from PIL import Image
from torch import Tensor

from brushwork.checkpoints import Checkpoint, load_checkpoint, save_checkpoint
from brushwork.errors import BrushworkError
from brushwork.models import (
    PART_PREFIX,
    PARTS_KEY,
    STYLE_KEY,
    STYLES_KEY,
    THUMBNAIL_KEY,
    THUMBNAILS_KEY,
    Style,
    check_part_names,
    checkpoint_method,
    file_metadata,
    parts_of,
)

THUMBNAIL_SIZE = 96
"""The longest side of a style's thumbnail, in pixels (a few kilobytes of PNG)."""


def make_thumbnail(style: str | Path | Image.Image, size: int = THUMBNAIL_SIZE) -> bytes:
    """A style image (a path, opened and checked as every input image is, or an image)
    shrunk to at most ``size`` pixels a side (aspect kept, Lanczos) as PNG bytes."""
    from brushwork.image import open_image

    image = style if isinstance(style, Image.Image) else open_image(style)
    small = image.convert("RGB")
    small.thumbnail((size, size), Image.Resampling.LANCZOS)
    buffer = BytesIO()
    small.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def style_metadata(styles: Sequence[tuple[Style, str | Path | Image.Image]]) -> dict[str, str]:
    """The metadata naming the styles a model paints, each with a thumbnail made from its
    image: one style under ``style`` and ``thumbnail``, several (in the order of the
    network's style parameters) as lists under ``styles`` and ``thumbnails``; none: {}."""
    if not styles:
        return {}
    thumbnails = [base64.b64encode(make_thumbnail(image)).decode() for _, image in styles]
    if len(styles) == 1:
        return {STYLE_KEY: json.dumps(asdict(styles[0][0])), THUMBNAIL_KEY: thumbnails[0]}
    return {
        STYLES_KEY: json.dumps([asdict(s) for s, _ in styles]),
        THUMBNAILS_KEY: json.dumps(thumbnails),
    }


def save_model(
    path: str | Path,
    network: Mapping[str, Tensor] | None = None,
    *,
    parts: Mapping[str, Mapping[str, Tensor]] | None = None,
    method: str,
    encoder: str,
    style: Style | None = None,
    style_image: str | Path | Image.Image | None = None,
    styles: Sequence[tuple[Style, str | Path | Image.Image]] = (),
    config: Mapping[str, object] | None = None,
    dtype: torch.dtype | None = torch.float16,
) -> Path:
    """Write a model to ship: one ``network``'s tensors, or named ``parts`` (each a
    network's tensors) under ``part.NAME.``; for a per-style model its ``style`` with a
    thumbnail made from ``style_image`` (both or neither), for a multi-style one its
    ``styles`` with their images (:func:`style_metadata`). Floating tensors are stored as
    ``dtype`` (float16, as the bundled models). Refused before writing: both or neither
    of ``network`` and ``parts``, a bad or empty part, a style without its image."""
    if (network is None) == (parts is None):
        raise BrushworkError("a model holds either one network or named parts, not both")
    if (style is None) != (style_image is None):
        raise BrushworkError("a per-style model needs both its style and the style's image")
    metadata: dict[str, str] = {}
    tensors = dict(network or {})
    if parts is not None:
        tensors = _joined(parts, f"model {path}")
        metadata[PARTS_KEY] = json.dumps(list(parts))
    if style is not None and style_image is not None:
        if styles:
            raise BrushworkError("give either one style or several, not both")
        styles = [(style, style_image)]
    metadata.update(style_metadata(styles))
    checkpoint = Checkpoint(checkpoint_method(method), encoder, tensors, dict(config or {}))
    return save_checkpoint(path, checkpoint, dtype=dtype, metadata=metadata)


def _joined(parts: Mapping[str, Mapping[str, Tensor]], what: str) -> dict[str, Tensor]:
    """Named networks' tensors as one flat mapping, each under ``part.NAME.``."""
    check_part_names(list(parts), what)
    if not parts:
        raise BrushworkError(f"{what}: no parts given")
    empty = [name for name, tensors in parts.items() if not tensors]
    if empty:
        raise BrushworkError(f"{what}: part {empty[0]!r} has no tensors")
    return {
        f"{PART_PREFIX}{name}.{key}": tensor
        for name, tensors in parts.items()
        for key, tensor in tensors.items()
    }


def load_parts(
    path: str | Path, *, method: str, encoder: str | None = None
) -> dict[str, dict[str, Tensor]]:
    """Every named network of a model file (a path :func:`brushwork.models.resolve`
    returned), by part name, each with its own tensor names. Refused in one line, besides
    what :func:`brushwork.checkpoints.load_checkpoint` refuses: a file of one network, a
    tensor outside the listed parts, a listed part without tensors."""
    path = Path(path)
    checkpoint = load_checkpoint(
        path, method=checkpoint_method(method), encoder=encoder, what="model"
    )
    names = parts_of(file_metadata(path))
    if not names:
        raise BrushworkError(f"model {path} holds one network, not named parts")
    split: dict[str, dict[str, Tensor]] = {name: {} for name in names}
    for key, tensor in checkpoint.tensors.items():
        part, _, rest = key.removeprefix(PART_PREFIX).partition(".")
        if not key.startswith(PART_PREFIX) or part not in split or not rest:
            raise BrushworkError(
                f"model {path} holds the tensor {key!r} outside its parts ({', '.join(names)})"
            )
        split[part][rest] = tensor
    empty = [name for name, tensors in split.items() if not tensors]
    if empty:
        raise BrushworkError(f"model {path} lists the part {empty[0]!r} but holds no tensors of it")
    return split


def load_part(
    path: str | Path, part: str, *, method: str, encoder: str | None = None
) -> dict[str, Tensor]:
    """One named network of a model file (see :func:`load_parts`), ready for
    ``module.load_state_dict``; a part the file lacks is refused naming those it holds."""
    found = load_parts(path, method=method, encoder=encoder)
    if part not in found:
        raise BrushworkError(f"model {path} has no part {part!r}; its parts: {', '.join(found)}")
    return found[part]
