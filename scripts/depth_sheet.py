"""Contact sheet of the depth estimator: each row is a photo and its colour-mapped depth.

The bundled estimator (``brushwork.depth.estimator``, trained on NYU indoor frames) runs at
its training scale (shorter side 224 px). Its relative inverse depth is normalised per image
between the 2nd and 98th percentiles and mapped with matplotlib's ``turbo``: red/warm = near,
blue = far. The colour bar at the bottom says so.

Two sheets:

* always: the photos brushwork may ship, scikit-image's astronaut, coffee, chelsea and
  rocket → ``docs/depth.png`` (committed). The bundled examples in
  ``src/brushwork/examples`` are generated style images, not photos, so they are left out;
* with ``--shared``, or whenever ../shared/data/content exists: every image there →
  ``out/depth_sheet.png`` (git-ignored; such images are never written under docs/).

    python scripts/depth_sheet.py                          # both sheets
    python scripts/depth_sheet.py --no-shared --tile 224   # docs/depth.png only
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from matplotlib import colormaps
from PIL import Image, ImageDraw, ImageFont

from brushwork.depth.estimator import load_estimator, predict_depth
from brushwork.examples import content_image
from brushwork.image import open_image, resize, split_alpha, to_tensor

sys.path.insert(0, str(Path(__file__).resolve().parent))
from contact_sheet import LABEL_HEIGHT, label

ROOT = Path(__file__).resolve().parents[1]
SHARED_CONTENT = ROOT.parent / "shared" / "data" / "content"
SHIPPED = ("astronaut", "coffee", "chelsea", "rocket")
BAR_HEIGHT = 44
WORK_SIDE = 512  # photos are shrunk to this shorter side first (the net sees 224 anyway)


def colorize(inverse_depth: np.ndarray) -> np.ndarray:
    """Relative inverse depth (H, W) → uint8 (H, W, 3), turbo, 2–98 % per image, near = warm."""
    low, high = np.percentile(inverse_depth, (2, 98))
    scaled = np.clip((inverse_depth - low) / max(high - low, 1e-12), 0.0, 1.0)
    return (colormaps["turbo"](scaled)[..., :3] * 255).round().astype(np.uint8)


def depth_image(net: torch.nn.Module, photo: Image.Image) -> Image.Image:
    x = to_tensor(photo)
    with torch.inference_mode():
        inverse = predict_depth(net, x)[0, 0].numpy()
    return Image.fromarray(colorize(inverse))


def colour_bar(width: int) -> Image.Image:
    """Turbo from near (left, red) to far (right, blue), with its labels."""
    bar = Image.new("RGB", (width, BAR_HEIGHT), "white")
    draw = ImageDraw.Draw(bar)
    font = ImageFont.load_default(size=13)
    margin = 48
    ramp = np.linspace(1.0, 0.0, width - 2 * margin)[None].repeat(14, 0)
    bar.paste(Image.fromarray(colorize(ramp)), (margin, 6))
    draw.text((6, 5), "near", fill="black", font=font)
    draw.text((width - margin + 8, 5), "far", fill="black", font=font)
    draw.text(
        (margin, 24),
        "near <-> far: relative inverse depth, 2-98 % per image (turbo)",
        fill="black",
        font=font,
    )
    return bar


def fit(image: Image.Image, size: int) -> Image.Image:
    """``image`` shrunk (or enlarged) to fit a size×size box, aspect ratio kept."""
    factor = size / max(image.size)
    target = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
    return image.convert("RGB").resize(target, Image.Resampling.LANCZOS)


def render(photos: list[tuple[str, Image.Image]], net: torch.nn.Module, size: int) -> Image.Image:
    """One row per photo (as tall as the photo at ``size`` px across its longer side)."""
    rows = []
    for name, photo in photos:
        start = time.perf_counter()
        photo = split_alpha(photo)[0]
        if min(photo.size) > WORK_SIDE:
            photo = resize(photo, size=WORK_SIDE * max(photo.size) // min(photo.size))
        rows.append((name, fit(photo, size), fit(depth_image(net, photo), size)))
        print(
            f"{name}: {photo.width}×{photo.height}, {time.perf_counter() - start:.2f} s", flush=True
        )
    columns = ["photo", "estimated depth (red = near, blue = far)"]
    width = size * len(columns)
    height = LABEL_HEIGHT + sum(p.height for _, p, _ in rows) + BAR_HEIGHT
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=13)
    for i, name in enumerate(columns):
        draw.text((i * size + 6, 4), name, fill="black", font=font)
    top = LABEL_HEIGHT
    for name, photo, depth in rows:
        left = (size - photo.width) // 2
        sheet.paste(photo, (left, top))
        sheet.paste(depth, (size + left, top))
        label(draw, (left, top), name)
        top += photo.height
    sheet.paste(colour_bar(width), (0, top))
    return sheet


def save(sheet: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, optimize=True)
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="estimator name or checkpoint path")
    parser.add_argument(
        "--tile", type=int, default=256, help="longer side of each photo and depth tile, in pixels"
    )
    shared = parser.add_mutually_exclusive_group()
    shared.add_argument(
        "--shared",
        action="store_true",
        help="also render ../shared/data/content (default: if it exists)",
    )
    shared.add_argument("--no-shared", action="store_true", help="skip ../shared/data/content")
    parser.add_argument("--content-dir", default=str(SHARED_CONTENT))
    parser.add_argument(
        "--out",
        default="out/depth_sheet.png",
        help="sheet of the shared images (must not be under docs/)",
    )
    parser.add_argument(
        "--docs", default=str(ROOT / "docs" / "depth.png"), help="sheet of the shippable photos"
    )
    args = parser.parse_args()

    net = load_estimator(args.model)
    content_dir = Path(args.content_dir)
    if args.shared or (not args.no_shared and content_dir.is_dir()):
        out = Path(args.out).resolve()
        if (ROOT / "docs") in out.parents:
            sys.exit("depth_sheet: images from ../shared must not go under docs/; use out/")
        files = sorted(
            p
            for p in content_dir.glob("*")
            if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp")
        )
        if not files:
            sys.exit(f"depth_sheet: no images in {content_dir}")
        save(render([(p.name, open_image(p)) for p in files], net, args.tile), out)

    photos = [(f"skimage {name}", content_image(name)) for name in SHIPPED]
    save(render(photos, net, args.tile), Path(args.docs))


if __name__ == "__main__":
    main()
