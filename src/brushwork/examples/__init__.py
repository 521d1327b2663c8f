"""Bundled example images: photos that scikit-image ships in its wheel, and style images that
brushwork generated itself (``scripts/make_example_styles.py``)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from brushwork.errors import BrushworkError

FOLDER = Path(__file__).resolve().parent
CONTENTS = ("astronaut", "chelsea", "coffee", "rocket")
STYLES = ("strokes", "mosaic")


def content_image(name: str) -> Image.Image:
    """A scikit-image sample photo (astronaut, chelsea, coffee or rocket) as an RGB image."""
    if name not in CONTENTS:
        raise BrushworkError(f"unknown example {name!r}; examples: {', '.join(CONTENTS)}")
    from skimage import data

    return Image.fromarray(getattr(data, name)()).convert("RGB")


def style_path(name: str) -> Path:
    """Path of a bundled style image (strokes or mosaic)."""
    if name not in STYLES:
        raise BrushworkError(f"unknown example style {name!r}; styles: {', '.join(STYLES)}")
    return FOLDER / f"{name}.png"
