"""Draw the styles the bundled per-style models paint, from the thumbnails their files carry,
for the model cards: one image per method (``docs/models/<method>-styles.png``), a cell per
style with its name and the models that paint it.

    python scripts/style_thumbnails.py [--out docs/models]
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

from PIL import Image, ImageDraw

from brushwork import models

ROOT = Path(__file__).resolve().parents[1]
CELL, BAND = 112, 30


def styles_of(method: str) -> dict[str, tuple[bytes | None, list[str]]]:
    """Each style of ``method``'s bundled models: its thumbnail and the models painting it."""
    found: dict[str, tuple[bytes | None, list[str]]] = {}
    for info in models.for_method(method):
        if info.style is not None:
            pairs = [(info.style, models.read_thumbnail(info.path))]
        else:
            pairs = list(zip(info.styles, models.read_thumbnails(info.path), strict=False))
        for style, png in pairs:
            found.setdefault(style.name, (png, []))[1].append(info.name)
    return found


def draw(styles: dict[str, tuple[bytes | None, list[str]]]) -> Image.Image:
    """A row of cells: the thumbnail centred, the style's name under it."""
    sheet = Image.new("RGB", (CELL * len(styles), CELL + BAND), "white")
    pen = ImageDraw.Draw(sheet)
    for number, (name, (png, owners)) in enumerate(styles.items()):
        left = number * CELL
        if png:
            image = Image.open(io.BytesIO(png)).convert("RGB")
            sheet.paste(image, (left + (CELL - image.width) // 2, (CELL - image.height) // 2))
        pen.text((left + 4, CELL + 2), name, fill="black")
        pen.text(
            (left + 4, CELL + 15), f"{len(owners)} model{'s' * (len(owners) > 1)}", fill="gray"
        )
    return sheet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "models")
    args = parser.parse_args()
    methods = sorted({info.method for info in models.MODELS.values() if info.style or info.styles})
    for method in methods:
        path = args.out / f"{method}-styles.png"
        draw(styles_of(method)).save(path, optimize=True)
        print(path)


if __name__ == "__main__":
    main()
