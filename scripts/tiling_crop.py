"""A 1:1 crop of a 4096 px output painted in tiles, next to the same crop of a 1024 px
output enlarged four times: the detail print size gains. Bundled images (astronaut ×
strokes), AdaIN, `--max-memory 8G`; the tiles' seams are drawn on a third panel.

    python scripts/tiling_crop.py [--out docs/tiling_crop.jpg]   # ~2 min on a 2-core CPU
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw

from brushwork.examples import content_image, style_path
from brushwork.inputs import Style
from brushwork.painter import Painter
from brushwork.tiling import seams

ROOT = Path(__file__).resolve().parents[1]
SIDE = 512
"""The crop's side, centred where the first seams between rows and columns of tiles
cross."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "tiling_crop.jpg")
    args = parser.parse_args()
    content = Path(tempfile.mkdtemp()) / "astronaut.png"
    content_image("astronaut").save(content)
    style = [Style(style_path("strokes"))]
    large = Painter("adain", {"size": 4096, "max_memory": 8 * 2**30}).paint(content, style)
    small = Painter("adain", {"size": 1024}).paint(content, style)
    grid = large.plan.tiles
    assert grid is not None, "4096 px AdaIN should not fit whole in 8 GiB"
    (x, _), (y, _) = seams(grid.columns, grid.overlap)[0], seams(grid.rows, grid.overlap)[0]
    box = (x - SIDE // 2, y - SIDE // 2, x + SIDE // 2, y + SIDE // 2)
    crop = large.image.crop(box)
    enlarged = small.image.crop(tuple(v // 4 for v in box)).resize(crop.size, Image.LANCZOS)
    marked = crop.copy()
    pen = ImageDraw.Draw(marked)
    for first, end in seams(grid.columns, grid.overlap):
        for x in (first - box[0], end - box[0]):
            pen.line([(x, 0), (x, crop.height)], fill="yellow", width=1)
    for first, end in seams(grid.rows, grid.overlap):
        for y in (first - box[1], end - box[1]):
            pen.line([(0, y), (crop.width, y)], fill="yellow", width=1)
    band = 28
    sheet = Image.new("RGB", (crop.width * 3, crop.height + band), "white")
    labels = (
        "1024 px output, enlarged 4x",
        f"4096 px output at 1:1 ({grid.count} tiles)",
        "the same, seams' cross-fades marked",
    )
    pen = ImageDraw.Draw(sheet)
    for index, (panel, label) in enumerate(zip((enlarged, crop, marked), labels, strict=True)):
        sheet.paste(panel, (index * crop.width, band))
        pen.text((index * crop.width + 8, 8), label, fill="black")
    sheet.save(args.out, quality=92)
    print(args.out, large.seconds, grid)


if __name__ == "__main__":
    main()
