"""Contact sheets of the creative controls, from the bundled examples only (committed in docs/):

* ``docs/style_scale.png``: one pair at style scales 0.25, 0.5, 1 and 2 (stroke size);
* ``docs/controls.png``: color preservation (none, luminance, linear, histogram), blending
  two styles (A, 50/50, B, A on fine layers + B on coarse ones), spatial masks and Style
  Swap.

    python scripts/controls_sheet.py                 # both sheets, ~10 min on 2 CPU cores
    python scripts/controls_sheet.py --sheet scale --size 256 --iterations 150

The networks run in float32 (``--precision``; brushwork's ``auto`` would pick bfloat16 on CPUs
with bfloat16 units, and the committed sheets were made in float32).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
from contact_sheet import LABEL_HEIGHT, label, tile
from PIL import Image, ImageDraw

import brushwork
from brushwork.api import Style
from brushwork.examples import content_image, style_path
from brushwork.image import save_image

ROOT = Path(__file__).resolve().parents[1]
FINE, COARSE = ("relu1_1", "relu2_1"), ("relu3_1", "relu4_1", "relu5_1")


def half_mask(image: Image.Image) -> Image.Image:
    """A label image made here: black on the left half, white on the right (soft-free)."""
    labels = np.zeros((image.height, image.width, 3), np.uint8)
    labels[:, image.width // 2 :] = 255
    return Image.fromarray(labels)


def ellipse_mask(image: Image.Image) -> Image.Image:
    """A grayscale mask made here: an ellipse around the centre."""
    mask = Image.new("L", image.size, 0)
    w, h = image.size
    ImageDraw.Draw(mask).ellipse((w * 0.2, h * 0.1, w * 0.8, h * 0.9), fill=255)
    return mask


def rows(sheet: str) -> list[tuple[str, list[tuple[str, Any]]]]:
    """(row name, [(column label, keyword arguments of brushwork.stylize)])."""
    chelsea, astronaut, coffee = (content_image(n) for n in ("chelsea", "astronaut", "coffee"))
    strokes, mosaic = style_path("strokes"), style_path("mosaic")
    if sheet == "scale":
        return [
            (
                "style scale",
                [
                    (f"--style-scale {s}", {"content": chelsea, "style": mosaic, "style_scale": s})
                    for s in (0.25, 0.5, 1.0, 2.0)
                ],
            )
        ]
    return [
        (
            "color",
            [
                (
                    f"--preserve-color {m}",
                    {"content": astronaut, "style": mosaic, "preserve_color": m},
                )
                for m in ("none", "luminance", "linear", "histogram")
            ],
        ),
        (
            "blend",
            [
                ("strokes", {"content": coffee, "style": strokes}),
                (
                    "strokes:0.5 + mosaic:0.5",
                    {"content": coffee, "style": [Style(strokes, 0.5), Style(mosaic, 0.5)]},
                ),
                ("mosaic", {"content": coffee, "style": mosaic}),
                (
                    "strokes fine + mosaic coarse",
                    {
                        "content": coffee,
                        "style": [Style(strokes, layers=FINE), Style(mosaic, layers=COARSE)],
                    },
                ),
            ],
        ),
        (
            "masks, Style Swap",
            [
                (
                    "--mask: left strokes, right mosaic",
                    {"content": chelsea, "style": [strokes, mosaic], "mask": half_mask(chelsea)},
                ),
                (
                    "--style-mask: mosaic in an ellipse",
                    {"content": chelsea, "style": [Style(mosaic, mask=ellipse_mask(chelsea))]},
                ),
                ("styleswap", {"content": chelsea, "style": mosaic, "method": "styleswap"}),
                (
                    "styleswap, 2 styles by mask",
                    {
                        "content": chelsea,
                        "style": [strokes, mosaic],
                        "mask": half_mask(chelsea),
                        "method": "styleswap",
                    },
                ),
            ],
        ),
    ]


def render(
    sheet: str, size: int, iterations: int, tile_size: int, precision: str = "float32"
) -> Image.Image:
    table = rows(sheet)
    columns = max(len(cells) for _, cells in table)
    canvas = Image.new(
        "RGB", (tile_size * columns, (tile_size + LABEL_HEIGHT) * len(table)), "white"
    )
    draw = ImageDraw.Draw(canvas)
    for r, (_, cells) in enumerate(table):
        top = r * (tile_size + LABEL_HEIGHT)
        for c, (caption, kwargs) in enumerate(cells):
            kwargs = dict(kwargs)
            method = kwargs.pop("method", "gatys")
            start = time.perf_counter()
            image = brushwork.stylize(
                kwargs.pop("content"),
                kwargs.pop("style"),
                method,
                size=size,
                iterations=iterations,
                precision=precision,
                **kwargs,
            )
            print(f"{sheet} / {caption}: {time.perf_counter() - start:.1f} s", flush=True)
            canvas.paste(tile(image, tile_size), (c * tile_size, top + LABEL_HEIGHT))
            label(draw, (c * tile_size, top), caption)
    return canvas


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sheet", choices=("scale", "controls", "both"), default="both")
    parser.add_argument("--size", type=int, default=192)
    parser.add_argument("--iterations", type=int, default=120)
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--out", default=str(ROOT / "docs"))
    parser.add_argument(
        "--precision",
        default="float32",
        choices=("float32", "bfloat16", "float16", "auto"),
        help="network precision (default float32)",
    )
    args = parser.parse_args()
    sheets = ("scale", "controls") if args.sheet == "both" else (args.sheet,)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    for sheet in sheets:
        name = "style_scale.png" if sheet == "scale" else "controls.png"
        image = render(sheet, args.size, args.iterations, args.tile, args.precision)
        print(save_image(image, Path(args.out) / name, force=True))


if __name__ == "__main__":
    main()
