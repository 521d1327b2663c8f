"""Render a contact sheet: content, style and every registered method, one row per pair.

By default it uses the bundled examples and writes ``docs/contact_sheet.png`` (committed):
every method of the registry (nothing here names one) with its default options, the
optimization methods at ``--iterations`` steps.
``--content``/``--style`` take image files instead (for example the evaluation images in
../shared/data, whose results must not be committed: write them under out/).

    python scripts/contact_sheet.py                       # bundled examples → docs/
    python scripts/contact_sheet.py --methods gatys adain # some methods only
    python scripts/contact_sheet.py --content a.jpg --style b.jpg -o out/sheet.png
    python scripts/contact_sheet.py --grid ../shared/data/content ../shared/data/style \
        --size 128 --iterations 60 -o out/grid.png       # every content × style, one method

The networks run in float32 (``--precision``; brushwork's ``auto`` would pick bfloat16 on CPUs
with bfloat16 units, and the committed sheets were made in float32).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from PIL import Image, ImageDraw

import brushwork
from brushwork.examples import content_image, style_path
from brushwork.image import open_image, save_image, split_alpha
from brushwork.methods import REGISTRY, get_method
from brushwork.options import fields_of

ROOT = Path(__file__).resolve().parents[1]
LABEL_HEIGHT = 22
EXAMPLES = (("astronaut", "strokes"), ("chelsea", "mosaic"), ("coffee", "strokes"))
"""The bundled pairs of the default sheet."""


def method_options(method: str, iterations: int) -> dict[str, int]:
    """``iterations`` for a method that takes them (the feed-forward ones do not)."""
    fields = fields_of(get_method(method).options_class)
    return {"iterations": iterations} if any(f.name == "iterations" for f in fields) else {}


def tile(image: Image.Image, size: int) -> Image.Image:
    """Fit ``image`` into a size×size tile on white, keeping its aspect ratio."""
    image = image.convert("RGB").copy()
    image.thumbnail((size, size), Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (size, size), "white")
    canvas.paste(image, ((size - image.width) // 2, (size - image.height) // 2))
    return canvas


def label(draw: ImageDraw.ImageDraw, xy: tuple[int, int], text: str) -> None:
    """White text on a black box, readable on any tile."""
    _, _, right, bottom = draw.textbbox((xy[0] + 4, xy[1] + 3), text)
    draw.rectangle((xy[0], xy[1], right + 4, bottom + 3), fill="black")
    draw.text((xy[0] + 4, xy[1] + 3), text, fill="white")


def render(
    pairs: list[tuple[str, Image.Image, Image.Image]],
    methods: list[str],
    size: int,
    iterations: int,
    tile_size: int,
    precision: str = "float32",
) -> Image.Image:
    """Columns: content, style, then ``methods``; one row per (name, content, style)."""
    columns = ["content", "style", *methods]
    sheet = Image.new(
        "RGB", (tile_size * len(columns), LABEL_HEIGHT + tile_size * len(pairs)), "white"
    )
    draw = ImageDraw.Draw(sheet)
    for i, name in enumerate(columns):
        draw.text((i * tile_size + 6, 5), name, fill="black")
    for row, (name, content, style) in enumerate(pairs):
        tiles = [content, style]
        for method in methods:
            start = time.perf_counter()
            options = method_options(method, iterations)
            tiles.append(
                brushwork.stylize(content, style, method, size=size, precision=precision, **options)
            )
            print(f"{name} {method}: {time.perf_counter() - start:.1f} s", flush=True)
        for col, image in enumerate(tiles):
            sheet.paste(tile(image, tile_size), (col * tile_size, LABEL_HEIGHT + row * tile_size))
        label(draw, (0, LABEL_HEIGHT + row * tile_size), name)
    return sheet


def render_grid(
    contents: list[Path],
    styles: list[Path],
    method: str,
    size: int,
    iterations: int,
    tile_size: int,
    precision: str = "float32",
) -> Image.Image:
    """Rows: content images; columns: style images; first row and column show the inputs."""
    sheet = Image.new(
        "RGB", (tile_size * (len(styles) + 1), tile_size * (len(contents) + 1)), "white"
    )
    style_images = [split_alpha(open_image(s))[0] for s in styles]
    options = method_options(method, iterations)
    for col, image in enumerate(style_images, start=1):
        sheet.paste(tile(image, tile_size), (col * tile_size, 0))
    for row, content_path in enumerate(contents, start=1):
        content = split_alpha(open_image(content_path))[0]
        sheet.paste(tile(content, tile_size), (0, row * tile_size))
        for col, style in enumerate(style_images, start=1):
            start = time.perf_counter()
            result = brushwork.stylize(
                content, style, method, size=size, precision=precision, **options
            )
            sheet.paste(tile(result, tile_size), (col * tile_size, row * tile_size))
            print(
                f"{content_path.stem} × {styles[col - 1].stem}: "
                f"{time.perf_counter() - start:.1f} s",
                flush=True,
            )
    return sheet


def sheet_parser() -> argparse.ArgumentParser:
    """The script's arguments."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--content", nargs="*", help="content image files")
    parser.add_argument("--style", nargs="*", help="style image files (paired with --content)")
    parser.add_argument(
        "--grid",
        nargs=2,
        metavar=("CONTENT_DIR", "STYLE_DIR"),
        help="every content × style pair of two folders, one method",
    )
    parser.add_argument("--method", default="gatys", help="method for --grid")
    parser.add_argument(
        "--methods",
        nargs="+",
        choices=list(REGISTRY),
        default=list(REGISTRY),
        help="columns of the sheet (default: every registered method)",
    )
    parser.add_argument("--size", type=int, default=256, help="stylization size")
    parser.add_argument(
        "--iterations", type=int, default=100, help="steps of the optimization methods"
    )
    parser.add_argument("--tile", type=int, default=256, help="tile size in the sheet")
    parser.add_argument(
        "--precision",
        default="float32",
        choices=("float32", "bfloat16", "float16", "auto"),
        help="network precision (default float32)",
    )
    parser.add_argument("-o", "--output", default=str(ROOT / "docs" / "contact_sheet.png"))
    return parser


def main() -> None:
    """Render the sheet asked for and save it."""
    parser = sheet_parser()
    args = parser.parse_args()
    if args.grid:
        from brushwork.image import is_image_path

        contents, styles = (
            sorted(p for p in Path(d).iterdir() if is_image_path(p)) for d in args.grid
        )
        sheet = render_grid(
            contents, styles, args.method, args.size, args.iterations, args.tile, args.precision
        )
        print(save_image(sheet, args.output, force=True))
        return
    if args.content:
        if len(args.content) != len(args.style or []):
            parser.error("give one --style per --content")
        pairs = [
            (
                f"{Path(c).stem} x {Path(s).stem}",
                split_alpha(open_image(c))[0],
                split_alpha(open_image(s))[0],
            )
            for c, s in zip(args.content, args.style, strict=True)
        ]
    else:
        pairs = [
            (f"{c} x {s}", content_image(c), Image.open(style_path(s)).convert("RGB"))
            for c, s in EXAMPLES
        ]
    sheet = render(pairs, args.methods, args.size, args.iterations, args.tile, args.precision)
    print(save_image(sheet, args.output, force=True))


if __name__ == "__main__":
    main()
